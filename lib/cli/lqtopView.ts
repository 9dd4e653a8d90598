/**
 * lqtop's screen, pure: a `top_circuits` reply (lib/bus/protocol.ts) and the terminal's size → the
 * lines to print, each at most `width` columns wide, at most `height` lines. ANSI colour (SGR) only
 * when asked; no cursor movement (lib/cli/lqtop.ts does the terminal I/O).
 *
 *   3 header lines (lqosd, totals, a problem or note), the column header, the rows, the key help.
 *
 * Columns that do not fit are left out, least useful first (plan, drops, retransmits, …); the
 * circuit column takes the rest. Circuit names are the operator's text: control characters (which
 * could move the cursor or change colours) are shown as `?`.
 */
import type { TopCircuitRow, TopCircuitsReply, TopCircuitsSort } from '../bus/protocol.ts';

export interface ViewOptions {
  width: number;
  height: number;
  /** Circuit names (true) or ids. */
  names: boolean;
  colour: boolean;
  sortBy: TopCircuitsSort;
  /** A problem to show (lqosd went away, a request failed): the last data stays on screen. */
  error?: string;
  now: Date;
}

/** Lines above the rows and below them. */
export const HEADER_LINES = 4;
export const FOOTER_LINES = 1;
/** Rows a screen of `height` lines has room for (at least 1). */
export const rowsFor = (height: number) => Math.max(1, height - HEADER_LINES - FOOTER_LINES);

export const SORT_LABELS: Record<TopCircuitsSort, string> = { total: 'throughput', download: 'download', upload: 'upload', rtt: 'RTT' };
export const SORT_KEYS: Record<string, TopCircuitsSort> = { s: 'total', d: 'download', u: 'upload', r: 'rtt' };

// ---------------------------------------------------------------------------------------------
// Units

const RATE_UNITS = ['bps', 'kbps', 'Mbps', 'Gbps', 'Tbps'];

/** Bits/s with 3 significant digits and a unit: `0 bps`, `999 bps`, `1.23 kbps`, `48.9 Mbps`, `512 Mbps`, `10.0 Gbps`. */
export function formatRate(bps: number): string {
  if (!Number.isFinite(bps) || bps < 0) return '—';
  let v = bps;
  let u = 0;
  if (v < 999.5) return `${Math.round(v)} bps`;
  while (u < RATE_UNITS.length - 1 && v >= 999.5) {
    v /= 1000;
    u++;
  }
  const text = v < 9.995 ? v.toFixed(2) : v < 99.95 ? v.toFixed(1) : v.toFixed(0);
  return `${text} ${RATE_UNITS[u]}`;
}

/** Plan rates in Mbit/s without needless decimals: `50`, `2.5`, `0.25`. */
export const formatMbps = (mbps: number): string => String(Math.round(mbps * 100) / 100);
export const formatPlan = (r: TopCircuitRow) => `${formatMbps(r.planDownMbps)}/${formatMbps(r.planUpMbps)}`;
export const formatUtil = (r: TopCircuitRow) => `${Math.round(r.utilDownPct)}/${Math.round(r.utilUpPct)}`;

const oneDecimalBelow10 = (v: number) => (v < 9.95 ? (Math.round(v * 10) / 10).toString() : String(Math.round(v)));
/** RTT in ms: 2 decimals below 1 ms (a lab or a LAN), 1 below 10, whole above. */
export const formatRtt = (ms: number | null) => (ms === null ? '—' : `${ms < 0.995 ? ms.toFixed(2) : oneDecimalBelow10(ms)} ms`);
export const formatPct = (pct: number | null) => (pct === null ? '—' : `${oneDecimalBelow10(pct)}%`);
export const formatDrops = (perS: number | null) => (perS === null ? '—' : oneDecimalBelow10(perS));

export function formatUptime(seconds: number): string {
  const s = Math.max(0, Math.floor(seconds));
  const d = Math.floor(s / 86400), h = Math.floor((s % 86400) / 3600), m = Math.floor((s % 3600) / 60);
  if (d > 0) return `${d}d${h}h`;
  if (h > 0) return `${h}h${String(m).padStart(2, '0')}m`;
  return `${m}m${String(s % 60).padStart(2, '0')}s`;
}

// ---------------------------------------------------------------------------------------------
// Terminal text: widths, truncation, colour

/** Columns a code point takes: 0 for combining marks and zero-width characters, 2 for East Asian wide ones. */
function charWidth(cp: number): number {
  if ((cp >= 0x300 && cp <= 0x36f) || (cp >= 0x200b && cp <= 0x200f) || (cp >= 0xfe00 && cp <= 0xfe0f)) return 0;
  const wide =
    (cp >= 0x1100 && cp <= 0x115f) || (cp >= 0x2e80 && cp <= 0xa4cf) || (cp >= 0xac00 && cp <= 0xd7a3) || (cp >= 0xf900 && cp <= 0xfaff) ||
    (cp >= 0xfe30 && cp <= 0xfe4f) || (cp >= 0xff00 && cp <= 0xff60) || (cp >= 0xffe0 && cp <= 0xffe6) || (cp >= 0x1f300 && cp <= 0x1faff) ||
    (cp >= 0x20000 && cp <= 0x3fffd);
  return wide ? 2 : 1;
}

export function displayWidth(s: string): number {
  let w = 0;
  for (const ch of s) w += charWidth(ch.codePointAt(0)!);
  return w;
}

/** Control characters (C0, DEL, C1) and bidi overrides of operator text, shown as `?`. */
export const sanitize = (s: string) => s.replace(/[\u0000-\u001f\u007f-\u009f\u202a-\u202e\u2066-\u2069]/g, '?');

/** `s` cut to at most `width` columns; `…` marks a cut. */
export function truncate(s: string, width: number): string {
  if (displayWidth(s) <= width) return s;
  if (width <= 0) return '';
  let out = '';
  let w = 0;
  for (const ch of s) {
    const cw = charWidth(ch.codePointAt(0)!);
    if (w + cw > width - 1) break;
    out += ch;
    w += cw;
  }
  return out + '…';
}

const pad = (s: string, width: number, right: boolean) => {
  const t = truncate(s, width);
  const fill = ' '.repeat(Math.max(0, width - displayWidth(t)));
  return right ? fill + t : t + fill;
};

/** A piece of a line with its SGR parameters (`1` bold, `7` inverse, `31` red…). */
interface Seg {
  text: string;
  sgr?: string;
}

/** Segments → one line of at most `width` columns, coloured when asked. */
function line(segs: Seg[], width: number, colour: boolean): string {
  let left = width;
  let out = '';
  for (const s of segs) {
    if (left <= 0) break;
    const t = displayWidth(s.text) <= left ? s.text : truncate(s.text, left);
    left -= displayWidth(t);
    out += colour && s.sgr && t ? `\x1b[${s.sgr}m${t}\x1b[0m` : t;
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Columns

interface Column {
  key: string;
  header: string;
  cell: (r: TopCircuitRow) => string;
  /** Higher is kept longer when the terminal is narrow. */
  keep: number;
  sort?: TopCircuitsSort;
  sgr?: (r: TopCircuitRow) => string | undefined;
}

const utilSgr = (r: TopCircuitRow) => {
  const u = Math.max(r.utilDownPct, r.utilUpPct);
  return u >= 90 ? '31' : u >= 75 ? '33' : undefined;
};

const COLUMNS: Column[] = [
  { key: 'down', header: 'Down', cell: (r) => formatRate(r.downBps), keep: 10, sort: 'download' },
  { key: 'up', header: 'Up', cell: (r) => formatRate(r.upBps), keep: 9, sort: 'upload' },
  { key: 'plan', header: 'Plan Mbps', cell: formatPlan, keep: 1 },
  { key: 'util', header: 'Util %', cell: formatUtil, keep: 7, sgr: utilSgr },
  { key: 'rtt', header: 'RTT p50', cell: (r) => formatRtt(r.rttMs), keep: 8, sort: 'rtt' },
  { key: 'retx', header: 'Retx', cell: (r) => formatPct(r.retransmitPct), keep: 5 },
  { key: 'drops', header: 'Drops/s', cell: (r) => formatDrops(r.dropsPerSecond), keep: 6, sgr: (r) => ((r.dropsPerSecond ?? 0) > 0 ? '33' : undefined) },
];

const GAP = 2;
/** The circuit column is never narrower than this while other columns can go instead. */
export const MIN_NAME_WIDTH = 16;
const MAX_NAME_WIDTH = 48;

interface Layout {
  name: number;
  columns: Array<Column & { width: number }>;
}

/** Which columns fit in `width`, and how wide each is (numbers as wide as their widest cell). */
export function layout(rows: readonly TopCircuitRow[], width: number, sortBy: TopCircuitsSort): Layout {
  const cols = COLUMNS.map((c) => ({ ...c, width: Math.max(displayWidth(headerOf(c, sortBy)), ...rows.map((r) => displayWidth(c.cell(r)))) }));
  const used = () => cols.reduce((a, c) => a + c.width + GAP, 0);
  while (cols.length > 1 && width - used() < MIN_NAME_WIDTH) {
    const drop = cols.reduce((lo, c) => (c.keep < lo.keep ? c : lo));
    cols.splice(cols.indexOf(drop), 1);
  }
  return { name: Math.max(1, Math.min(MAX_NAME_WIDTH, width - used())), columns: cols };
}

/** A column's header; the one sorted on is marked (throughput marks both Down and Up). */
function headerOf(c: Column, sortBy: TopCircuitsSort): string {
  const sorted = c.sort === sortBy || (sortBy === 'total' && (c.key === 'down' || c.key === 'up'));
  return sorted ? `${c.header}▼` : c.header;
}

// ---------------------------------------------------------------------------------------------
// The frame

/** Local time, as top shows it. */
const clock = (d: Date) => d.toTimeString().slice(0, 8);

function headerLines(data: TopCircuitsReply | undefined, o: ViewOptions): Seg[][] {
  const title: Seg[] = [{ text: 'lqtop', sgr: '1' }, { text: `  ${clock(o.now)}` }];
  if (data) {
    const l = data.lqosd;
    title.push({ text: `  lqosd ${l.version} (${l.dataplane.replace('_', ' ')}, up ${formatUptime(l.uptimeSeconds)})  ${data.circuits.shaped} circuits shaped, ${data.circuits.active} active` });
  }
  const sorted = { text: `  sort: ${SORT_LABELS[o.sortBy]}` };
  const totals: Seg[] = data
    ? [
        { text: `Down ${formatRate(data.totals.downBps)}  Up ${formatRate(data.totals.upBps)}`, sgr: '1' },
        sorted,
        { text: `  (shaped ${formatRate(data.totals.shapedDownBps)} / ${formatRate(data.totals.shapedUpBps)})` },
      ]
    : [sorted];
  const problem = o.error ?? (data?.lqosd.degraded ? `lqosd is degraded: ${data.lqosd.degraded}` : undefined);
  const info = problem !== undefined ? [{ text: sanitize(problem), sgr: '1;31' }] : data?.note ? [{ text: data.note, sgr: '33' }] : data && !data.flows ? [{ text: 'flow tracking is off: no RTT or retransmits' }] : [];
  return [title, totals, info];
}

function rowLine(r: TopCircuitRow, lay: Layout, o: ViewOptions): string {
  const segs: Seg[] = [{ text: pad(sanitize(o.names ? r.name || r.id : r.id), lay.name, false) }];
  for (const c of lay.columns) segs.push({ text: ' '.repeat(GAP) }, { text: pad(c.cell(r), c.width, true), sgr: c.sgr?.(r) });
  return line(segs, o.width, o.colour);
}

export const KEY_HELP = 'q quit  s throughput  d down  u up  r RTT  n names/ids';

/** The whole screen: at most `o.height` lines of at most `o.width` columns. */
export function renderFrame(data: TopCircuitsReply | undefined, o: ViewOptions): string[] {
  const width = Math.max(1, Math.floor(o.width));
  const opts = { ...o, width };
  const rows = (data?.rows ?? []).slice(0, rowsFor(o.height));
  const lay = layout(rows, width, o.sortBy);
  const out = headerLines(data, opts).map((segs) => line(segs, width, o.colour));
  const head = pad(o.names ? 'Circuit' : 'Circuit ID', lay.name, false) + lay.columns.map((c) => ' '.repeat(GAP) + pad(headerOf(c, o.sortBy), c.width, true)).join('');
  out.push(line([{ text: head.padEnd(width), sgr: '7' }], width, o.colour));
  for (const r of rows) out.push(rowLine(r, lay, opts));
  if (data && rows.length === 0) out.push(line([{ text: 'no circuit has traffic' }], width, o.colour));
  out.push(line([{ text: KEY_HELP, sgr: '2' }], width, o.colour));
  return out.slice(0, Math.max(1, Math.floor(o.height)));
}
