/**
 * Compiles a ShapingPlan into `tc -batch` lines (pure, deterministic).
 *
 * A full build assumes a clean interface. Lines are grouped per item (a node or a circuit with
 * its leaf qdiscs, download then upload), in tree order, so adding or removing one circuit
 * changes only that circuit's lines.
 */
import type { LeafQdisc, PlannedCircuit, PlannedNode, ShapingPlan } from '../model.ts';
import { DEFAULT_MINOR, MQ_HANDLE, ROOT_MINOR, defaultClassRate } from '../plan/planner.ts';
import { tcHex } from '../util/classId.ts';

export interface CompileOptions {
  /**
   * Replacement leaves for qdisc kinds this kernel lacks (from the capability probe), e.g.
   * `{ cake: { kind: 'pfifo', args: ['limit', '1000'] } }`. Plans keep cake/fq_codel.
   */
  substitute?: Record<string, LeafQdisc>;
  /** Lazy queues (lib/shaping/lazyQueues.ts): circuits not materialised lack their leaf (Htb) or class and leaf (Full). */
  lazy?: LazyQueues;
}

/** `lazy_queues` in force: which circuits have their class and leaf qdisc in the kernel now. */
export interface LazyQueues {
  mode: 'Htb' | 'Full';
  isMaterialised(circuitId: string): boolean;
}

/** What lazy queues leave out of the kernel for this circuit now: its class (and leaf), its leaf, or nothing. */
export function lazyOmits(opts: CompileOptions, c: { id: string }): 'class' | 'leaf' | undefined {
  const lz = opts.lazy;
  if (!lz || lz.isMaterialised(c.id)) return undefined;
  return lz.mode === 'Full' ? 'class' : 'leaf';
}

/**
 * Template literals build rope ("cons") strings that keep every piece alive; reading a char
 * flattens them in place, cutting the memory of 100k-circuit batches by about a third.
 */
function flat(s: string): string {
  s.charCodeAt(0);
  return s;
}

/** tc rate string with kbit precision: `25mbit`, `2500kbit`, `10kbit`. */
export function formatRate(mbps: number): string {
  const kbit = Math.max(1, Math.round(mbps * 1000));
  return kbit % 1000 === 0 ? `${kbit / 1000}mbit` : `${kbit}kbit`;
}

/**
 * How long a class may go without being dequeued and still keep its rate: HTB keeps at most `burst`
 * bytes of tokens, so every millisecond the CPU is away beyond that is sending time lost for good.
 * tc's default (about one frame on high-resolution timers) starves fast classes between timer ticks;
 * 1 ms (what we used until 2026-12-07) lost up to a quarter of the rate when a hypervisor took a vCPU
 * for 4–8 ms at a time. 10 ms keeps every rate through such gaps (docs/PERFORMANCE.md "HTB burst and
 * hypervisor steal"); the price is that an idle class may send 10 ms of its rate back to back.
 */
export const HTB_BURST_MS = 10;

/** HTB burst for a rate: HTB_BURST_MS of traffic, at least two full-size frames. */
export function burstBytes(mbps: number): number {
  return Math.max(3028, Math.round(mbps * 125 * HTB_BURST_MS));
}

/** `burst Xb cburst Yb` for a class with this rate and ceil. */
function bursts(rateMbps: number, ceilMbps: number): string {
  return `burst ${burstBytes(rateMbps)}b cburst ${burstBytes(ceilMbps)}b`;
}

/** HTB rate-to-quantum divisor for a link: keeps the largest quantum near 60 kB. */
export function r2q(linkMbps: number): number {
  return Math.max(10, Math.ceil((linkMbps * 125000) / 60000));
}

/** HTB quantum for a class with the given ceil: at least one full-size frame (1522 B). */
export function quantum(ceilMbps: number, linkMbps: number): number {
  return Math.max(1522, Math.floor((Math.trunc(ceilMbps) * 125000) / r2q(linkMbps)));
}

/** The default-class leaf handle for queue major N (below the circuit leaf range). */
export function defaultLeafHandle(major: number): number {
  return 0x1000 + major;
}

interface Side {
  dev: string;
  /** Upload side on a stick: majors shifted by stickOffset. */
  majorOffset: number;
  linkMbps: number;
  dir: 'download' | 'upload';
}

export function sidesOf(plan: ShapingPlan): Side[] {
  const { interfaces, link, stickOffset } = plan;
  return [
    { dev: interfaces.download, majorOffset: 0, linkMbps: link.downloadMbps, dir: 'download' },
    { dev: interfaces.upload, majorOffset: stickOffset, linkMbps: link.uploadMbps, dir: 'upload' },
  ];
}

/** The leaf qdisc tokens of one direction of a circuit, or null when it gets no leaf (no SQM, no handle, or a kind tc is asked to leave out). */
export function circuitLeafTokens(d: { leaf: LeafQdisc | null; leafHandle: number }, opts: CompileOptions): string | null {
  return d.leaf && d.leafHandle ? leafTokens(d.leaf, opts) : null;
}

/** tc tokens of a leaf after capability substitution; null when no leaf qdisc can be used. */
export function leafTokens(leaf: LeafQdisc, opts: CompileOptions): string | null {
  const l = opts.substitute?.[leaf.kind] ?? leaf;
  if (l.kind === 'none') return null;
  return [l.kind, ...l.args].join(' ');
}

export function compileSkeleton(plan: ShapingPlan, opts: CompileOptions = {}): string[] {
  const lines: string[] = [];
  const sides = sidesOf(plan);
  const devs = [...new Set(sides.map((s) => s.dev))];
  for (const dev of devs) lines.push(`qdisc replace dev ${dev} root handle ${tcHex(MQ_HANDLE)}: mq`);
  if (plan.mode === 'observe') return lines;
  for (const s of sides) {
    for (let q = 1; q <= plan.queues; q++) {
      const major = tcHex(q + s.majorOffset);
      const link = formatRate(s.linkMbps);
      const qn = quantum(s.linkMbps, s.linkMbps);
      lines.push(`qdisc add dev ${s.dev} parent ${tcHex(MQ_HANDLE)}:${major} handle ${major}: htb default ${tcHex(DEFAULT_MINOR)}`);
      lines.push(`class add dev ${s.dev} parent ${major}: classid ${major}:${tcHex(ROOT_MINOR)} htb rate ${link} ceil ${link} ${bursts(s.linkMbps, s.linkMbps)} quantum ${qn}`);
      lines.push(
        `class add dev ${s.dev} parent ${major}:${tcHex(ROOT_MINOR)} classid ${major}:${tcHex(DEFAULT_MINOR)} htb rate ${formatRate(defaultClassRate(s.linkMbps))} ceil ${link} ${bursts(defaultClassRate(s.linkMbps), s.linkMbps)} prio 5 quantum ${qn}`,
      );
      const tokens = leafTokens(plan.defaultLeaf, opts);
      if (tokens) lines.push(`qdisc add dev ${s.dev} parent ${major}:${tcHex(DEFAULT_MINOR)} handle ${tcHex(defaultLeafHandle(q + s.majorOffset))}: ${tokens}`);
    }
  }
  return lines;
}

export function compileNodeLines(plan: ShapingPlan, n: PlannedNode, verb: 'add' | 'replace' | 'change' = 'add'): string[] {
  return sidesOf(plan).map((s) => {
    const major = tcHex(n.queue + s.majorOffset);
    const r = s.dir === 'download' ? n.download : n.upload;
    return flat(`class ${verb} dev ${s.dev} parent ${major}:${tcHex(n.parentMinor)} classid ${major}:${tcHex(n.minor)} htb rate ${formatRate(r.rateMbps)} ceil ${formatRate(r.ceilMbps)} ${bursts(r.rateMbps, r.ceilMbps)} prio 3 quantum ${quantum(r.ceilMbps, s.linkMbps)}`);
  });
}

export function compileCircuitLines(
  plan: ShapingPlan,
  c: PlannedCircuit,
  opts: CompileOptions = {},
  verb: 'add' | 'replace' | 'change' = 'add',
): string[] {
  const lines: string[] = [];
  pushCircuitLines(lines, sidesOf(plan), c, opts, verb);
  return lines;
}

/**
 * compileCircuitLines into `lines`, with the plan's sides computed once by the caller. `finish` is
 * applied to each line: flat (kept lines) or nothing (lines joined into a chunk right away).
 */
function pushCircuitLines(
  lines: string[],
  sides: readonly Side[],
  c: PlannedCircuit,
  opts: CompileOptions,
  verb: 'add' | 'replace' | 'change',
  finish: (line: string) => string = flat,
): void {
  const omit = lazyOmits(opts, c);
  if (omit === 'class') return;
  const minor = tcHex(c.minor);
  for (const s of sides) {
    const major = tcHex(c.queue + s.majorOffset);
    const d = s.dir === 'download' ? c.download : c.upload;
    lines.push(
      finish(`class ${verb} dev ${s.dev} parent ${major}:${tcHex(c.parentMinor)} classid ${major}:${minor} htb rate ${formatRate(d.rateMbps)} ceil ${formatRate(d.ceilMbps)} ${bursts(d.rateMbps, d.ceilMbps)} prio 3 quantum ${quantum(d.ceilMbps, s.linkMbps)}`),
    );
    const tokens = omit ? null : circuitLeafTokens(d, opts);
    if (tokens) {
      const qverb = verb === 'add' ? 'add' : 'replace';
      lines.push(finish(`qdisc ${qverb} dev ${s.dev} parent ${major}:${minor} handle ${tcHex(d.leafHandle)}: ${tokens}`));
    }
  }
}

/**
 * The whole tree for a clean interface, a group of lines at a time: the skeleton, then each node
 * followed by the circuits under it, in tree order.
 */
function* batchGroups(plan: ShapingPlan, opts: CompileOptions, finish: (line: string) => string): Generator<string[]> {
  yield compileSkeleton(plan, opts);
  if (plan.mode === 'observe') return;
  const byParent = new Map<string, PlannedCircuit[]>();
  for (const c of plan.circuits) {
    let list = byParent.get(c.parentPath);
    if (!list) byParent.set(c.parentPath, (list = []));
    list.push(c);
  }
  const sides = sidesOf(plan);
  for (const n of plan.nodes) {
    const lines = compileNodeLines(plan, n);
    const circuits = byParent.get(n.path);
    if (circuits) for (const c of circuits) pushCircuitLines(lines, sides, c, opts, 'add', finish);
    yield lines;
  }
}

/** The whole tree for a clean interface: skeleton, then every node and circuit in tree order. */
export function compileTcBatch(plan: ShapingPlan, opts: CompileOptions = {}): string[] {
  const lines: string[] = [];
  for (const group of batchGroups(plan, opts, flat)) for (const l of group) lines.push(l);
  return lines;
}

const unchanged = (line: string) => line;

/** Text gathered per chunk of tcBatchTextChunks (UTF-16 units; well under V8's large-object size). */
const CHUNK_UNITS = 1 << 15;

/**
 * The text of compileTcBatch's file (`lines.join('\n') + '\n'`) as chunks, compiled as it is
 * consumed: the lines of a large batch (200k strings, 26 MB at 50k circuits) never exist all at
 * once. Once consumed, `count.lines` is the number of lines.
 */
export function* tcBatchTextChunks(plan: ShapingPlan, opts: CompileOptions = {}, count = { lines: 0 }): Generator<string> {
  let text = '';
  let lines = 0;
  // Lines are not flattened one by one: the chunk is, once, when it is written.
  for (const group of batchGroups(plan, opts, unchanged)) {
    for (const l of group) text += l + '\n';
    lines += group.length;
    if (text.length >= CHUNK_UNITS) {
      yield text;
      text = '';
    }
  }
  count.lines = lines;
  yield lines === 0 ? '\n' : text;
}
