/**
 * tc qdisc statistics: every `queueIntervalMs` (2 s) `tc -s -j qdisc show dev X` for the shaping
 * interfaces (once on a stick), parsed per leaf qdisc, keyed by its parent class id, mapped to
 * circuits (download classes on the download interface, upload classes — major + stick offset — on
 * the upload interface) with deltas per interval.
 *
 * Unlike upstream, unknown qdisc kinds (pfifo, pfifo_fast, noqueue, fq, sfq, ingress, ...) never
 * make the parse fail: every qdisc with a parent class is a leaf candidate. CAKE extras (ECN marks,
 * ACK drops summed over tins) and fq_codel's `ecn_mark` are read when present.
 *
 * Counters are parsed as JS numbers: exact up to 2^53 (well beyond u32).
 */
import type { CakeTinView } from '../api/telemetry.ts';
import { tc } from '../apply/tcBatch.ts';
import { formatClassId, packClassId, parseClassId, unpackClassId } from '../util/classId.ts';
import type { Log } from '../util/log.ts';
import type { SortedIndex } from '../util/keyIndex.ts';
import type { PlanIndex } from './rollup.ts';

export interface QdiscStat {
  kind: string;
  /** "MAJ:" / "MAJ:MIN" as tc prints it. */
  handle: string;
  /** Parent class as text ("1:3"), undefined for the root. */
  parent?: string;
  /** Parent class as a number (major<<16 | minor), -1 for root/none. */
  parentId: number;
  bytes: number;
  packets: number;
  drops: number;
  overlimits: number;
  requeues: number;
  backlog: number;
  qlen: number;
  /** CAKE: sum of tins[].ecn_mark; fq_codel: ecn_mark; else 0. */
  ecnMarks: number;
  /** CAKE: sum of tins[].ack_drops. */
  ackDrops: number;
  /** CAKE: number of tins (0 for other kinds). */
  tins: number;
  /** CAKE: the tins as tc printed them (the parsed objects, kept by reference: no copy per poll). */
  tinList?: readonly Record<string, unknown>[];
}

/** A tc handle as one number (major<<16 | minor); "root"/"none"/bad → -1. */
export function parseHandle(text: string | undefined): number {
  const id = parseClassId(text);
  return id ? packClassId(id) : -1;
}

export function formatHandle(id: number): string {
  const { major, minor } = unpackClassId(id);
  return formatClassId(major, minor);
}

const num = (v: unknown): number => (typeof v === 'number' && Number.isFinite(v) ? v : typeof v === 'string' && v !== '' && Number.isFinite(Number(v)) ? Number(v) : 0);

/** Parses `tc -s -j qdisc show` output (text or already-parsed JSON). Unknown kinds are kept, not fatal. */
export function parseQdiscStats(input: string | unknown): QdiscStat[] {
  let raw: unknown = input;
  if (typeof input === 'string') {
    const t = input.trim();
    if (!t) return [];
    raw = JSON.parse(t);
  }
  if (!Array.isArray(raw)) return [];
  const out: QdiscStat[] = [];
  for (const q of raw as Record<string, unknown>[]) {
    if (typeof q !== 'object' || q === null || typeof q.kind !== 'string') continue;
    let ecnMarks = num(q.ecn_mark);
    let ackDrops = 0;
    let tins = 0;
    let tinList: Record<string, unknown>[] | undefined;
    if (Array.isArray(q.tins)) {
      tinList = q.tins as Record<string, unknown>[];
      tins = q.tins.length;
      ecnMarks = 0;
      for (const t of q.tins as Record<string, unknown>[]) {
        ecnMarks += num(t?.ecn_mark);
        ackDrops += num(t?.ack_drops);
      }
    }
    out.push({
      kind: q.kind,
      handle: String(q.handle ?? ''),
      parent: typeof q.parent === 'string' ? q.parent : undefined,
      parentId: q.root === true ? -1 : parseHandle(typeof q.parent === 'string' ? q.parent : undefined),
      bytes: num(q.bytes),
      packets: num(q.packets),
      drops: num(q.drops),
      overlimits: num(q.overlimits),
      requeues: num(q.requeues),
      backlog: num(q.backlog),
      qlen: num(q.qlen),
      ecnMarks,
      ackDrops,
      tins,
      ...(tinList ? { tinList } : {}),
    });
  }
  return out;
}

const TIN_NAMES: Record<number, string[]> = { 1: ['Best Effort'], 3: ['Bulk', 'Best Effort', 'Voice'], 4: ['Bulk', 'Best Effort', 'Video', 'Voice'] };

/** CAKE's tins as the web UI shows them (names by tin count: besteffort, diffserv3, diffserv4; else "Tin N"). */
export function cakeTinViews(list: readonly Record<string, unknown>[]): CakeTinView[] {
  const names = TIN_NAMES[list.length];
  return list.map((t, i) => ({
    name: names?.[i] ?? `Tin ${i}`,
    sentBytes: num(t?.sent_bytes),
    sentPackets: num(t?.sent_packets),
    drops: num(t?.drops),
    ecnMarks: num(t?.ecn_mark),
    ackDrops: num(t?.ack_drops),
    backlogBytes: num(t?.backlog_bytes),
    avgDelayUs: num(t?.avg_delay_us),
    peakDelayUs: num(t?.peak_delay_us),
    baseDelayUs: num(t?.base_delay_us),
  }));
}

/** Kinds that are structure, not circuit leaves. */
const STRUCTURAL = new Set(['mq', 'htb', 'clsact', 'ingress']);

export interface LeafStats {
  kind: string;
  handle: string;
  /** Cumulative (as tc reports them). */
  bytes: number;
  packets: number;
  drops: number;
  overlimits: number;
  requeues: number;
  ecnMarks: number;
  ackDrops: number;
  /** Instantaneous. */
  backlog: number;
  qlen: number;
  /** CAKE: the tins of the latest poll as tc printed them (cumulative counters, current delays). */
  tinList?: readonly Record<string, unknown>[];
  /** Since the previous poll (saturating: a counter that went down — qdisc replaced — counts from 0). */
  d: { bytes: number; packets: number; drops: number; overlimits: number; requeues: number; ecnMarks: number; ackDrops: number };
  /** Poll number this leaf was last seen in. */
  seen: number;
}

const sat = (cur: number, prev: number) => (cur >= prev ? cur - prev : cur);

/**
 * Cumulative → delta bookkeeping per (interface, parent class). Pure: feed it parsed stats.
 * Records are reused across polls; leaves that disappear are dropped.
 */
export class QueueStatsTracker {
  /** iface → parent class id → leaf. */
  readonly leaves = new Map<string, Map<number, LeafStats>>();
  private poll = 0;
  /** Wall time (ms) of the last ingest and the interval before it. */
  lastAt: number | undefined;
  lastDtMs = 0;

  beginPoll(tMs: number): void {
    this.poll++;
    this.lastDtMs = this.lastAt === undefined ? 0 : tMs - this.lastAt;
    this.lastAt = tMs;
  }

  ingest(iface: string, stats: QdiscStat[]): void {
    let m = this.leaves.get(iface);
    if (!m) this.leaves.set(iface, (m = new Map()));
    for (const s of stats) {
      if (s.parentId < 0 || STRUCTURAL.has(s.kind)) continue;
      let l = m.get(s.parentId);
      const fresh = !l || l.handle !== s.handle || l.kind !== s.kind;
      if (!l) {
        l = {
          kind: s.kind, handle: s.handle, bytes: 0, packets: 0, drops: 0, overlimits: 0, requeues: 0, ecnMarks: 0, ackDrops: 0,
          backlog: 0, qlen: 0, d: { bytes: 0, packets: 0, drops: 0, overlimits: 0, requeues: 0, ecnMarks: 0, ackDrops: 0 }, seen: 0,
        };
        m.set(s.parentId, l);
      }
      const first = l.seen === 0;
      if (fresh && !first) {
        // Leaf replaced (kind/handle changed): its counters restart.
        l.bytes = l.packets = l.drops = l.overlimits = l.requeues = l.ecnMarks = l.ackDrops = 0;
      }
      const d = l.d;
      if (first) {
        // No baseline: the first poll only records.
        d.bytes = d.packets = d.drops = d.overlimits = d.requeues = d.ecnMarks = d.ackDrops = 0;
      } else {
        d.bytes = sat(s.bytes, l.bytes);
        d.packets = sat(s.packets, l.packets);
        d.drops = sat(s.drops, l.drops);
        d.overlimits = sat(s.overlimits, l.overlimits);
        d.requeues = sat(s.requeues, l.requeues);
        d.ecnMarks = sat(s.ecnMarks, l.ecnMarks);
        d.ackDrops = sat(s.ackDrops, l.ackDrops);
      }
      l.kind = s.kind;
      l.handle = s.handle;
      l.bytes = s.bytes;
      l.packets = s.packets;
      l.drops = s.drops;
      l.overlimits = s.overlimits;
      l.requeues = s.requeues;
      l.ecnMarks = s.ecnMarks;
      l.ackDrops = s.ackDrops;
      l.backlog = s.backlog;
      l.qlen = s.qlen;
      l.tinList = s.tinList;
      l.seen = this.poll;
    }
  }

  /** Drops leaves (and interfaces) not seen in the current poll. */
  endPoll(): void {
    for (const [iface, m] of this.leaves) {
      for (const [k, l] of m) if (l.seen !== this.poll) m.delete(k);
      if (m.size === 0) this.leaves.delete(iface);
    }
  }
}

export interface CircuitQueueStats {
  down?: LeafStats;
  up?: LeafStats;
}

/**
 * Per-circuit view of the tracked leaves: download side = leaf under the circuit's download class on
 * the download interface, upload side = under its upload class on the upload interface.
 */
export class CircuitQueues {
  down: (LeafStats | undefined)[] = [];
  up: (LeafStats | undefined)[] = [];
  /** Circuits with a leaf on either side. */
  circuits: number[] = [];
  totals = { drops: { down: 0, up: 0 }, marks: { down: 0, up: 0 }, backlog: { down: 0, up: 0 }, overlimits: { down: 0, up: 0 } };

  map(ix: PlanIndex, tracker: QueueStatsTracker): void {
    const p = ix.plan;
    if (this.down.length !== ix.circuitCount) {
      this.down = new Array(ix.circuitCount);
      this.up = new Array(ix.circuitCount);
    } else {
      for (const c of this.circuits) this.down[c] = this.up[c] = undefined;
    }
    this.circuits.length = 0;
    const t = this.totals;
    t.drops.down = t.drops.up = t.marks.down = t.marks.up = t.backlog.down = t.backlog.up = t.overlimits.down = t.overlimits.up = 0;
    const side = (iface: string, byHandle: SortedIndex<number>, into: (LeafStats | undefined)[], dir: 'down' | 'up') => {
      const m = tracker.leaves.get(iface);
      if (!m) return;
      for (const [parent, leaf] of m) {
        const c = byHandle.get(parent);
        if (c === undefined) continue;
        if (!this.down[c] && !this.up[c]) this.circuits.push(c);
        into[c] = leaf;
        t.drops[dir] += leaf.d.drops;
        t.marks[dir] += leaf.d.ecnMarks;
        t.overlimits[dir] += leaf.d.overlimits;
        t.backlog[dir] += leaf.backlog;
      }
    };
    side(p.interfaces.download, ix.byDownHandle, this.down, 'down');
    side(p.interfaces.upload, ix.byUpHandle, this.up, 'up');
  }

  get(c: number): CircuitQueueStats {
    return { down: this.down[c], up: this.up[c] };
  }
}

export interface QueueCollectorOptions {
  /** Command prefix for tc, e.g. ['ip', 'netns', 'exec', 'ns1'] (tests). */
  wrap?: string[];
  log?: Log;
  now?: () => number;
  /** Replaces running tc (tests): returns the JSON text for an interface. */
  readQdiscs?: (iface: string) => Promise<string>;
}

/** Runs tc for the plan's interfaces and keeps the tracker and the per-circuit view current. */
export class QueueStatsCollector {
  readonly tracker = new QueueStatsTracker();
  readonly circuits = new CircuitQueues();
  private readonly now: () => number;
  private warned = new Set<string>();

  constructor(private readonly opts: QueueCollectorOptions = {}) {
    this.now = opts.now ?? Date.now;
  }

  private async read(iface: string): Promise<QdiscStat[]> {
    if (this.opts.readQdiscs) return parseQdiscStats(await this.opts.readQdiscs(iface));
    const r = await tc(['-s', '-j', 'qdisc', 'show', 'dev', iface], { wrap: this.opts.wrap, reject: false });
    if (!r.ok) {
      if (!this.warned.has(iface)) {
        this.warned.add(iface);
        this.opts.log?.warn(`queue stats: tc qdisc show dev ${iface} failed: ${r.stderr.trim()}`);
      }
      return [];
    }
    this.warned.delete(iface);
    return parseQdiscStats(r.stdout);
  }

  /** One poll of every shaping interface of the plan. */
  async poll(ix: PlanIndex): Promise<void> {
    const { download, upload } = ix.plan.interfaces;
    const ifaces = download === upload ? [download] : [download, upload];
    const stats = await Promise.all(ifaces.map((i) => this.read(i)));
    this.tracker.beginPoll(this.now());
    ifaces.forEach((i, k) => this.tracker.ingest(i, stats[k]!));
    this.tracker.endPoll();
    this.circuits.map(ix, this.tracker);
  }
}
