/**
 * FlowTracker: the userspace state over the XDP flow table (dataplane/flows.ts). `poll()` reads the
 * table, computes per-flow rates, expires idle and finished flows (kept in a "recently finished"
 * list for the UI), notices entries the kernel's LRU evicted, and folds RTT events into per-flow and
 * per-circuit sample windows; the queries answer active/top/recent flows, per-circuit RTT
 * percentiles and retransmit rates. Each poll also reads how many RTT records the kernel dropped
 * because the ring buffer was full (total and the increase since the previous poll).
 */
import { SubnetList } from '../integrations/common/ip.ts';
import { bootTimeNs, type RingBufferReader } from '../../dataplane/libbpf.ts';
import { FLOW_KEY_WORDS, FlowDump, flowKeyWords, type FlowEntry, type FlowStamp, type PerDirection, type RttEvent } from '../../dataplane/flowAbi.ts';
import { deleteFlows, dumpFlowsRaw, openRttEvents, readRingDrops } from '../../dataplane/flows.ts';
import { pinRootOf, type MapContext } from '../../dataplane/pinned.ts';
import { CircuitWindows, type CircuitAcc, type CircuitFlowStats } from './circuitWindows.ts';
import { FlowIndex, keyHash, type IndexedFlow } from './flowIndex.ts';
import { percentile } from './percentiles.ts';

export interface ActiveFlow extends FlowEntry {
  /** bits/s over the last poll interval. */
  rateBps: PerDirection;
  /** Median of this flow's recent RTT samples (ms), falling back to the last kernel sample. */
  rttMs: { customer: number | null; internet: number | null };
  durationMs: number;
  /** ms since the last packet. */
  idleMs: number;
}

export interface FinishedFlow extends ActiveFlow {
  /** Wall-clock ms when userspace retired it. */
  endedAt: number;
  reason: 'fin' | 'rst' | 'idle' | 'evicted';
}

export interface FlowTrackerOptions extends MapContext {
  /** Idle time after which an open flow is retired (ms). Default 30 000. */
  idleTimeoutMs?: number;
  /** Idle time after FIN/RST before a flow is retired (ms). Default 2 000. */
  finishedGraceMs?: number;
  /** How long retired flows stay in `recent()` (ms). Default 60 000; at most `recentMax` entries. */
  recentWindowMs?: number;
  recentMax?: number;
  /** Window for per-circuit RTT samples (ms). Default 30 000, at most 2 048 samples per side. */
  rttWindowMs?: number;
  /** Window for per-circuit retransmit rates (ms). Default 10 000. */
  retransWindowMs?: number;
  /** Do not open the ring buffer (tests of the table only). */
  noEvents?: boolean;
  /**
   * Subnets (CIDR) never tracked (`[flows] do_not_track_subnets`): a flow with either endpoint in
   * one is kept out of every table and query, and removed from the kernel table so it takes no slot.
   */
  doNotTrack?: string[];
}

export interface PollStats {
  entries: number;
  expired: number;
  evicted: number;
  /** RTT events consumed since the previous poll (including drains between polls). */
  events: number;
  /** RTT records lost to a full ring buffer since the maps were created (kernel counter). */
  ringDrops: number;
  /** Increase of ringDrops since the previous poll (0 on the first poll: that read is the baseline). */
  ringDropsDelta: number;
  pollMs: number;
}

/** Read-only view of a tracked flow for aggregation without allocating views. */
export interface TrackedFlowRef {
  readonly entry: FlowEntry;
  readonly rateBps: PerDirection;
}

interface Tracked extends IndexedFlow {
  stamp: FlowStamp;
  /** pollSeq of the last poll that saw it in the table */
  seen: number;
  prevBytesDown: number;
  prevBytesUp: number;
  prevPacketsDown: number;
  prevPacketsUp: number;
  prevRetransDown: number;
  prevRetransUp: number;
  rateBps: PerDirection;
  rtt: { customer: number[]; internet: number[] };
  circ: CircuitAcc | null;
}

/** The clocks of one poll. */
interface PollClock {
  seq: number;
  nowBoot: bigint;
  nowBootN: number;
  nowWall: number;
  /** Seconds since the previous poll (0 on the first). */
  dtS: number;
}

const RTT_PER_FLOW = 32;

function newTracked(raw: number, words: Uint32Array, entry: FlowEntry, stamp: FlowStamp): Tracked {
  return {
    raw, words, entry, stamp, seen: 0,
    // First sight: the whole history counts as this interval's delta.
    prevBytesDown: 0, prevBytesUp: 0, prevPacketsDown: 0, prevPacketsUp: 0, prevRetransDown: 0, prevRetransUp: 0,
    rateBps: { down: 0, up: 0 }, rtt: { customer: [], internet: [] }, circ: null,
  };
}

export class FlowTracker {
  readonly ctx: MapContext;
  private readonly o: Required<Omit<FlowTrackerOptions, 'pinRoot' | 'noEvents' | 'doNotTrack'>>;
  private readonly untracked: SubnetList;
  private readonly index = new FlowIndex<Tracked>();
  private readonly circuits = new CircuitWindows();
  private recentList: FinishedFlow[] = [];
  private events: RingBufferReader | null = null;
  private lastPollBoot = 0n;
  private lastPollWall = 0;
  private eventCount = 0;
  /** eventCount at the end of the previous poll (events are also drained between polls). */
  private eventsAtLastPoll = 0;
  private pollSeq = 0;
  private ringDrops = 0;
  private dropsBaselined = false;
  lastStats: PollStats = { entries: 0, expired: 0, evicted: 0, events: 0, ringDrops: 0, ringDropsDelta: 0, pollMs: 0 };

  constructor(opts: FlowTrackerOptions = {}) {
    this.ctx = { pinRoot: pinRootOf(opts) };
    this.o = {
      idleTimeoutMs: opts.idleTimeoutMs ?? 30_000,
      finishedGraceMs: opts.finishedGraceMs ?? 2_000,
      recentWindowMs: opts.recentWindowMs ?? 60_000,
      recentMax: opts.recentMax ?? 20_000,
      rttWindowMs: opts.rttWindowMs ?? 30_000,
      retransWindowMs: opts.retransWindowMs ?? 10_000,
    };
    this.untracked = new SubnetList(opts.doNotTrack ?? []);
    if (!opts.noEvents) this.events = openRttEvents((e, rec) => this.onRtt(e, rec), this.ctx);
  }

  close(): void {
    this.events?.close();
    this.events = null;
  }

  private onRtt(e: RttEvent, rec: Buffer): void {
    this.eventCount++;
    const ms = e.rttUs / 1000;
    const t = this.index.find(flowKeyWords(rec));
    if (t) {
      const arr = t.rtt[e.side];
      arr.push(ms);
      if (arr.length > RTT_PER_FLOW) arr.shift();
    }
    this.circuits.addRtt(e, ms, Date.now());
  }

  /** Drain pending RTT events only (cheap; poll() does it too). */
  drainEvents(): number {
    return this.events ? this.events.consume() : 0;
  }

  // -------------------------------------------------------------------------------------------
  // Polling

  /** One tick: table dump, rates, expiry, RTT events. */
  poll(): PollStats {
    const t0 = performance.now();
    const clock = this.clock();
    const dump = new FlowDump(dumpFlowsRaw(this.ctx));
    const expireKeys: Buffer[] = [];
    for (let i = 0; i < dump.count; i++) {
      const t = this.track(dump, i, clock.seq);
      if (!t) {
        expireKeys.push(dump.key(i));
        continue;
      }
      this.takeDeltas(t, clock.dtS);
      if (this.expireIfDone(t, dump.lastSeenNs(i), clock)) expireKeys.push(dump.key(i));
    }
    if (expireKeys.length) deleteFlows(Buffer.concat(expireKeys), this.ctx);
    const evicted = this.retireEvicted(clock);
    this.circuits.commit(clock.nowWall);
    this.drainEvents();
    const drops = this.readDrops();
    const events = this.eventCount - this.eventsAtLastPoll;
    this.eventsAtLastPoll = this.eventCount;
    this.prune(clock.nowWall);
    this.lastPollBoot = clock.nowBoot;
    this.lastPollWall = clock.nowWall;
    this.lastStats = { entries: this.activeCount, expired: expireKeys.length, evicted, events, ...drops, pollMs: performance.now() - t0 };
    return this.lastStats;
  }

  /**
   * The kernel's ring-drop counter and its increase since the last read (a reset counts from 0). The
   * first read is the baseline (delta 0): drops from before this process started (the ring fills
   * while nobody drains it, e.g. across an lqosd restart) are not reported as just lost.
   */
  private readDrops(): { ringDrops: number; ringDropsDelta: number } {
    const total = readRingDrops(this.ctx);
    const delta = this.dropsBaselined ? (total >= this.ringDrops ? total - this.ringDrops : total) : 0;
    this.dropsBaselined = true;
    this.ringDrops = total;
    return { ringDrops: total, ringDropsDelta: delta };
  }

  private clock(): PollClock {
    const nowBoot = bootTimeNs();
    return {
      seq: ++this.pollSeq, nowBoot, nowBootN: Number(nowBoot), nowWall: Date.now(),
      dtS: this.lastPollBoot ? Number(nowBoot - this.lastPollBoot) / 1e9 : 0,
    };
  }

  /** True when either endpoint is in a do-not-track subnet. */
  private isUntracked(e: FlowEntry): boolean {
    return this.untracked.size > 0 && (this.untracked.has(e.localIp) || this.untracked.has(e.remoteIp));
  }

  /**
   * The tracked flow of row i: refreshed in place, or new (first sight, or a new flow under a known
   * key); undefined for a flow in a do-not-track subnet.
   */
  private track(dump: FlowDump, i: number, seq: number): Tracked | undefined {
    const off = i * FLOW_KEY_WORDS;
    const raw = keyHash(dump.keyWords, off);
    let t = this.index.find(dump.keyWords, off, raw);
    if (!t || !dump.sameStart(i, t.stamp)) {
      if (t) this.index.remove(t);
      const entry = dump.entry(i);
      if (this.isUntracked(entry)) return undefined;
      t = newTracked(raw, dump.keyWords.slice(off, off + FLOW_KEY_WORDS), entry, dump.stamp(i));
      this.index.add(t);
    } else if (dump.refresh(i, t.entry, t.stamp)) {
      t.circ = null;
    }
    t.seen = seq;
    return t;
  }

  /** Rates from the byte deltas, TCP retransmit/packet deltas into the flow's circuit. */
  private takeDeltas(t: Tracked, dtS: number): void {
    const e = t.entry;
    if (dtS > 0) {
      t.rateBps.down = (Math.max(0, e.bytes.down - t.prevBytesDown) * 8) / dtS;
      t.rateBps.up = (Math.max(0, e.bytes.up - t.prevBytesUp) * 8) / dtS;
    }
    if (e.proto === 6) {
      if (!t.circ || t.circ.dead) t.circ = this.circuits.get(e.circuitHash, e.tcHandle);
      this.circuits.addDeltas(t.circ,
        Math.max(0, e.retransmits.down - t.prevRetransDown), Math.max(0, e.retransmits.up - t.prevRetransUp),
        Math.max(0, e.packets.down - t.prevPacketsDown), Math.max(0, e.packets.up - t.prevPacketsUp));
    }
    t.prevBytesDown = e.bytes.down;
    t.prevBytesUp = e.bytes.up;
    t.prevPacketsDown = e.packets.down;
    t.prevPacketsUp = e.packets.up;
    t.prevRetransDown = e.retransmits.down;
    t.prevRetransUp = e.retransmits.up;
  }

  /** Retire a flow idle too long, or finished (FIN/RST) and idle past the grace time. */
  private expireIfDone(t: Tracked, lastSeenNs: number, clock: PollClock): boolean {
    const e = t.entry;
    const idle = clock.nowBootN - lastSeenNs;
    const done = e.endStatus !== 'open' && idle >= this.o.finishedGraceMs * 1e6;
    if (!done && idle < this.o.idleTimeoutMs * 1e6) return false;
    this.retire(t, clock, done ? (e.endStatus as 'fin' | 'rst') : 'idle');
    return true;
  }

  /** Entries that vanished without us deleting them were evicted by the LRU (table full). */
  private retireEvicted(clock: PollClock): number {
    let evicted = 0;
    for (const t of [...this.index.values()]) {
      if (t.seen === clock.seq) continue;
      this.retire(t, clock, 'evicted');
      evicted++;
    }
    return evicted;
  }

  private retire(t: Tracked, clock: PollClock, reason: FinishedFlow['reason']): void {
    this.index.remove(t);
    this.recentList.push({ ...this.view(t, clock.nowBoot), endedAt: clock.nowWall, reason });
  }

  private prune(nowWall: number): void {
    const cutRecent = nowWall - this.o.recentWindowMs;
    if (this.recentList.length > this.o.recentMax) this.recentList.splice(0, this.recentList.length - this.o.recentMax);
    let i = 0;
    while (i < this.recentList.length && this.recentList[i]!.endedAt < cutRecent) i++;
    if (i) this.recentList.splice(0, i);
    this.circuits.prune(nowWall, this.o.rttWindowMs, this.o.retransWindowMs);
  }

  // -------------------------------------------------------------------------------------------
  // Queries (as of the last poll)

  private view(t: Tracked, nowBoot: bigint): ActiveFlow {
    const e = t.entry;
    const med = (a: number[], lastUs: number) => (a.length ? percentile(a, 50) : lastUs ? lastUs / 1000 : null);
    return {
      ...e,
      bytes: { ...e.bytes }, packets: { ...e.packets }, retransmits: { ...e.retransmits }, lastRttUs: { ...e.lastRttUs },
      nextSeq: { ...e.nextSeq }, synSeq: { ...e.synSeq },
      rateBps: { ...t.rateBps },
      rttMs: { customer: med(t.rtt.customer, e.lastRttUs.customer), internet: med(t.rtt.internet, e.lastRttUs.internet) },
      durationMs: Number(e.lastSeenNs - e.startNs) / 1e6,
      idleMs: Math.max(0, Number(nowBoot - e.lastSeenNs) / 1e6),
    };
  }

  /** Boot time of the last poll (now before the first one). */
  private get viewTime(): bigint {
    return this.lastPollBoot || bootTimeNs();
  }

  /** Iterate tracked flows without building views (aggregation over large tables). */
  forEachFlow(fn: (f: TrackedFlowRef) => void): void {
    for (const t of this.index.values()) fn(t);
  }

  /** Full view of a tracked flow reference obtained from forEachFlow. */
  viewOf(ref: TrackedFlowRef): ActiveFlow {
    return this.view(ref as Tracked, this.viewTime);
  }

  /** Active flows (as of the last poll). */
  active(): ActiveFlow[] {
    const now = this.viewTime;
    return [...this.index.values()].map((t) => this.view(t, now));
  }

  get activeCount(): number {
    return this.index.size;
  }

  /** Flow by text id (as of the last poll). */
  get(id: string): ActiveFlow | undefined {
    const t = this.index.byTextId(id);
    return t ? this.view(t, this.viewTime) : undefined;
  }

  /** Top `n` active flows by current rate (default) or total bytes. */
  top(n = 10, by: 'rate' | 'bytes' = 'rate'): ActiveFlow[] {
    const score = (t: Tracked) => (by === 'rate' ? t.rateBps.down + t.rateBps.up : t.entry.bytes.down + t.entry.bytes.up);
    const all = [...this.index.values()];
    all.sort((a, b) => score(b) - score(a));
    const now = this.viewTime;
    return all.slice(0, n).map((t) => this.view(t, now));
  }

  /** Recently finished flows (oldest first). */
  recent(): FinishedFlow[] {
    return this.recentList.slice();
  }

  /** Per-circuit aggregates (circuit hash 0 = unshaped/unknown hosts). */
  circuitStats(): CircuitFlowStats[] {
    const out = new Map<bigint, CircuitFlowStats>();
    const get = (hash: bigint, tc: number): CircuitFlowStats => {
      let s = out.get(hash);
      if (!s) out.set(hash, (s = this.circuits.baseStats(hash, tc)));
      return s;
    };
    for (const t of this.index.values()) {
      const s = get(t.entry.circuitHash, t.entry.tcHandle);
      s.activeFlows++;
      s.bytes.down += t.entry.bytes.down;
      s.bytes.up += t.entry.bytes.up;
      s.rateBps.down += t.rateBps.down;
      s.rateBps.up += t.rateBps.up;
    }
    for (const [hash, tc] of this.circuits.handles()) get(hash, tc);
    return [...out.values()];
  }

  /** Active flows of one circuit, by rate. */
  circuitFlows(circuitHash: bigint): ActiveFlow[] {
    const now = this.viewTime;
    return [...this.index.values()].filter((t) => t.entry.circuitHash === circuitHash)
      .sort((a, b) => b.rateBps.down + b.rateBps.up - (a.rateBps.down + a.rateBps.up))
      .map((t) => this.view(t, now));
  }

  get lastPollAt(): number {
    return this.lastPollWall;
  }
}
