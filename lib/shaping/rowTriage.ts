/**
 * Row triage: one bad row in ShapedDevices.csv must not freeze every other change. Pure: texts and
 * issues in, a valid devices text and the list of skipped rows out.
 *
 * Errors are split by code into
 * - row-level (ROW_LEVEL_CODES): the problem is confined to one row of the devices file. The whole
 *   circuit of that row is skipped: its rows in the current file are dropped and, when the circuit
 *   is in the last good inputs, its rows from there are used instead (the circuit stays at its last
 *   good shaping); a circuit that is new is left out. A row without a Circuit ID is dropped alone.
 * - file-level (everything else: unreadable or unparsable file, header problems, rows with the
 *   wrong number of fields, any network.json error, codes this module does not know): the run is
 *   refused, as before.
 * Duplicate addresses: the validator reports the later row and names the earlier one. The row whose
 * circuit had that address in the last good inputs (or a row restored from them) keeps it; the other
 * row introduced the duplicate and its circuit is skipped. When neither circuit had it (both new
 * claims), both circuits are skipped.
 *
 * The result text keeps every line number of the operator's file: dropped rows become empty lines,
 * and rows taken from the last good copy are appended at the end (in the current header's column
 * layout; issues on them are mapped back to the last good file's lines by `remap`). The text is
 * validated again, and skipping repeats (a restored row may collide with a new one) until it is
 * valid or nothing more can be skipped.
 */
import { normaliseHeader, parseShapedDevices, readCsvRecords, SHAPED_DEVICES_COLUMNS, type ShapedDeviceField, type ShapedDeviceRow } from '../inputs/shapedDevices.ts';
import { parseIPv4Prefix, parseIPv6Prefix } from '../inputs/ipPrefix.ts';
import { validateInputs } from '../inputs/validate.ts';
import type { InputIssue, ValidationResult } from '../model.ts';
import { csvRowsText } from '../inputs/csvText.ts';

/** Row-level error codes of ShapedDevices.csv and what they are about (docs/OPERATIONS.md has the table). */
export const ROW_LEVEL_CODES: Readonly<Record<string, string>> = {
  'empty-circuit-id': 'no Circuit ID',
  'empty-device-id': 'no Device ID',
  'invalid-ip': 'bad IP address',
  'host-bits-set': 'CIDR with host bits set',
  'ipv6-in-ipv4-column': 'IPv6 address in the IPv4 column',
  'ipv4-in-ipv6-column': 'IPv4 address in the IPv6 column',
  'ipv4-mapped-ipv6': 'IPv4-mapped IPv6 address',
  'duplicate-ip': 'address used by another row',
  'invalid-rate': 'bad rate',
  'rate-too-low': 'rate below the minimum',
  'min-above-max': 'min rate above max rate',
  'invalid-sqm': 'bad sqm override',
  'conflicting-parent': 'devices of one circuit name different parents',
  'conflicting-parent-id': 'devices of one circuit name different Parent Node IDs',
  'conflicting-anchor-id': 'devices of one circuit name different Anchor Node IDs',
  // A warning from the validator; the shaping run triages it as a row error (./run.ts).
  'unknown-parent': 'Parent Node not found in network.json',
};

export interface SkippedRow {
  file: string;
  line: number;
  /** '' for a row without a Circuit ID. */
  circuitId: string;
  code: string;
  column?: string;
  value?: string;
  reason: string;
  /** What the circuit does now: its rows from the last good inputs, or nothing (new circuit). */
  kept: 'last-good' | 'left-out';
}

export interface TriageArgs {
  devicesText: string;
  devicesFile: string;
  networkText: string;
  networkFile: string;
  /** The validation issues of exactly these texts. */
  issues: InputIssue[];
  lastGood?: { devicesText: string; devicesFile: string };
  /** Most re-validation rounds (default 10). */
  maxRounds?: number;
}

export type TriageResult =
  | {
      ok: true;
      /** Valid devices text (line numbers of the operator's rows unchanged). */
      devicesText: string;
      /** The validation of that text (no errors). */
      validation: ValidationResult;
      skipped: SkippedRow[];
      /** Maps an issue on an appended last-good row to that row's line in the last good file. */
      remap: (issue: InputIssue) => InputIssue;
    }
  | { ok: false; fileLevel: InputIssue[] };

export function isRowLevel(issue: InputIssue, devicesFile: string): boolean {
  return issue.file === devicesFile && issue.line !== undefined && Object.hasOwn(ROW_LEVEL_CODES, issue.code);
}

/** Canonical prefix of an address cell entry (as the validator writes it), or the entry itself. */
function canonical(entry: string): string {
  const t = entry.replace(/\s+/g, '');
  const r = t.includes(':') ? parseIPv6Prefix(t) : parseIPv4Prefix(t);
  return r.ok ? r.prefix : t;
}

/** Canonical prefix → circuit ID, over every address of `rows`. */
function addressOwners(rows: ShapedDeviceRow[]): Map<string, string> {
  const owners = new Map<string, string>();
  for (const r of rows) {
    for (const cell of [r.ipv4, r.ipv6]) for (const e of cell.split(',')) if (e.trim() !== '') owners.set(canonical(e), r.circuitId);
  }
  return owners;
}

function headerLayout(text: string, headerLine: number): (ShapedDeviceField | undefined)[] | undefined {
  // Only the lines up to the header are read again.
  let end = -1;
  for (let l = 0; l < headerLine && (end = text.indexOf('\n', end + 1)) >= 0; l++);
  const rec = readCsvRecords(end < 0 ? text : text.slice(0, end + 1)).records.find((r) => r.line === headerLine);
  return rec?.fields.map((h) => SHAPED_DEVICES_COLUMNS.find((c) => c.aliases.includes(normaliseHeader(h)))?.field);
}

interface Entry {
  row: ShapedDeviceRow;
  origin: 'current' | 'last-good';
  /** Line in the triaged text. */
  line: number;
  /** Line range [first, last] in the operator's file (current rows). */
  span?: [number, number];
  /** Line in the last good file (last-good rows). */
  lgLine?: number;
}

class Triage {
  readonly skipped: SkippedRow[] = [];
  private readonly lines: string[];
  private readonly current: Entry[];
  /** Current rows by circuit id (skipping a circuit drops all its rows). */
  private readonly currentByCircuit = new Map<string, Entry[]>();
  /** Skipped-row records by circuit id. */
  private readonly skippedByCircuit = new Map<string, SkippedRow[]>();
  private readonly lgByCircuit = new Map<string, ShapedDeviceRow[]>();
  /** Address (canonical prefix) → the circuit that had it in the last good inputs (built on first use). */
  private lgOwnersMap?: Map<string, string>;
  private readonly removed = new Set<Entry>();
  private readonly skippedCircuits = new Set<string>();
  /** Circuits restored from the last good inputs (in order) and those dropped from there too. */
  private readonly restored: string[] = [];
  private readonly droppedRestored = new Set<string>();
  private readonly lgRows: ShapedDeviceRow[];
  private appended: Entry[] = [];
  private byLine = new Map<number, Entry>();

  constructor(
    private readonly a: TriageArgs,
    rows: ShapedDeviceRow[],
    private readonly layout: (ShapedDeviceField | undefined)[],
    lgRows: ShapedDeviceRow[],
  ) {
    this.lines = a.devicesText.split(/\r\n|\r|\n/);
    this.current = rows.map((row, i) => ({ row, origin: 'current', line: row.line, span: [row.line, (rows[i + 1]?.line ?? this.lines.length + 1) - 1] }));
    for (const e of this.current) {
      const list = this.currentByCircuit.get(e.row.circuitId);
      if (list) list.push(e);
      else this.currentByCircuit.set(e.row.circuitId, [e]);
    }
    for (const r of lgRows) {
      const list = this.lgByCircuit.get(r.circuitId) ?? [];
      list.push(r);
      this.lgByCircuit.set(r.circuitId, list);
    }
    this.lgRows = lgRows;
  }

  /** The triaged text; refreshes the line → row index. */
  build(): string {
    const lines = this.lines.slice();
    for (const e of this.removed) {
      if (e.origin === 'current') for (let l = e.span![0]; l <= e.span![1]; l++) lines[l - 1] = '';
    }
    while (lines.length > 0 && lines[lines.length - 1] === '') lines.pop();
    this.appended = [];
    for (const id of this.restored) {
      if (this.droppedRestored.has(id)) continue;
      for (const row of this.lgByCircuit.get(id)!) {
        lines.push(csvRowsText([this.layout.map((f) => (f ? row[f] : ''))]).replace(/\n$/, ''));
        this.appended.push({ row, origin: 'last-good', line: lines.length, lgLine: row.line });
      }
    }
    this.byLine = new Map();
    for (const e of this.current) if (!this.removed.has(e)) this.byLine.set(e.line, e);
    for (const e of this.appended) this.byLine.set(e.line, e);
    return lines.join('\n') + '\n';
  }

  entryAt(line: number | undefined): Entry | undefined {
    return line === undefined ? undefined : this.byLine.get(line);
  }

  /** The row's circuit had `address` in the last good inputs (a restored row always has). */
  private owned(e: Entry, address: string | undefined): boolean {
    if (e.origin === 'last-good') return true;
    this.lgOwnersMap ??= addressOwners(this.lgRows);
    return address !== undefined && this.lgOwnersMap.get(canonical(address)) === e.row.circuitId;
  }

  /** Skips what an error points at; false when it changed nothing. */
  handle(e: InputIssue): boolean {
    const entry = this.entryAt(e.line);
    if (!entry) return false;
    const other = e.code === 'duplicate-ip' ? this.entryAt(e.relatedLine) : undefined;
    if (!other) return this.skip(entry, e, e.message);
    const mine = this.owned(entry, e.value);
    const theirs = this.owned(other, e.value);
    const otherReason = `${e.value ?? 'an address'} is also on line ${entry.origin === 'current' ? entry.line : `${entry.lgLine} of ${this.a.lastGood!.devicesFile}`}; an address may belong to only one device — remove it from one of the two rows`;
    if (mine && !theirs) return this.skip(other, e, otherReason);
    if (theirs && !mine) return this.skip(entry, e, e.message);
    const a = this.skip(entry, e, e.message);
    const b = this.skip(other, e, otherReason);
    return a || b;
  }

  private skip(entry: Entry, e: InputIssue, reason: string): boolean {
    const cid = entry.row.circuitId;
    const base = { circuitId: cid, code: e.code, column: e.column, value: e.value, reason };
    if (entry.origin === 'last-good') {
      // A restored row that collides with something newer than it cannot also be kept.
      if (this.droppedRestored.has(cid)) return false;
      this.droppedRestored.add(cid);
      this.record({ ...base, file: this.a.lastGood!.devicesFile, line: entry.lgLine!, kept: 'left-out' });
      for (const s of this.skippedByCircuit.get(cid) ?? []) s.kept = 'left-out';
      return true;
    }
    if (cid === '') {
      if (this.removed.has(entry)) return false;
      this.removed.add(entry);
      this.record({ ...base, file: this.a.devicesFile, line: entry.line, kept: 'left-out' });
      return true;
    }
    const kept = this.lgByCircuit.has(cid) && !this.droppedRestored.has(cid) ? 'last-good' : 'left-out';
    this.record({ ...base, file: this.a.devicesFile, line: entry.line, kept });
    if (this.skippedCircuits.has(cid)) return false;
    this.skippedCircuits.add(cid);
    for (const c of this.currentByCircuit.get(cid) ?? []) this.removed.add(c);
    if (kept === 'last-good') this.restored.push(cid);
    return true;
  }

  /**
   * Restored circuits whose last good rows name a parent that network.json no longer has are not
   * shaped after all: say so instead of "kept at its last good shaping".
   */
  markUnattached(issues: InputIssue[]): void {
    for (const i of issues) {
      if (i.code !== 'unknown-parent') continue;
      const e = this.entryAt(i.line);
      if (!e || e.origin !== 'last-good') continue;
      for (const s of this.skippedByCircuit.get(e.row.circuitId) ?? []) {
        if (s.kept !== 'last-good') continue;
        s.kept = 'left-out';
        s.reason += `; its last good row names parent "${i.value ?? ''}", which network.json no longer has either`;
      }
    }
  }

  private record(s: SkippedRow): void {
    this.skipped.push(s);
    const list = this.skippedByCircuit.get(s.circuitId);
    if (list) list.push(s);
    else this.skippedByCircuit.set(s.circuitId, [s]);
  }

  remap = (issue: InputIssue): InputIssue => {
    if (issue.file !== this.a.devicesFile || issue.line === undefined) return issue;
    const e = this.byLine.get(issue.line);
    if (!e || e.origin !== 'last-good') return issue;
    return { ...issue, file: this.a.lastGood!.devicesFile, line: e.lgLine };
  };
}

/** See the file comment. */
export function triageRows(a: TriageArgs): TriageResult {
  const errors = (issues: InputIssue[]) => issues.filter((i) => i.severity === 'error');
  const first = errors(a.issues);
  const fileLevel = first.filter((i) => !isRowLevel(i, a.devicesFile));
  if (fileLevel.length > 0) return { ok: false, fileLevel };
  const cur = parseShapedDevices(a.devicesText, a.devicesFile);
  const layout = cur.headerLine === undefined ? undefined : headerLayout(a.devicesText, cur.headerLine);
  if (!layout) return { ok: false, fileLevel: first };
  const lgRows = a.lastGood ? parseShapedDevices(a.lastGood.devicesText, a.lastGood.devicesFile).rows : [];
  const t = new Triage(a, cur.rows, layout, lgRows);
  t.build();
  let pending = first;
  for (let round = 0; round < (a.maxRounds ?? 10); round++) {
    const unplaced = pending.filter((e) => !isRowLevel(e, a.devicesFile) || !t.entryAt(e.line));
    if (unplaced.length > 0) return { ok: false, fileLevel: unplaced.map(t.remap) };
    let progress = false;
    for (const e of pending) progress = t.handle(e) || progress;
    if (!progress) return { ok: false, fileLevel: pending.map(t.remap) };
    const text = t.build();
    const validation = validateInputs({ devicesText: text, devicesFile: a.devicesFile, networkText: a.networkText, networkFile: a.networkFile });
    pending = errors(validation.issues);
    if (pending.length === 0) {
      t.markUnattached(validation.issues);
      return { ok: true, devicesText: text, validation, skipped: t.skipped, remap: t.remap };
    }
  }
  return { ok: false, fileLevel: pending.map(t.remap) };
}
