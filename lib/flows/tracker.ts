/**
 * FlowTracker: the userspace state over the XDP flow table (dataplane/flows.ts). `poll()` dumps the
 * table into buffers it reuses, compares each row with the flow's slot in the store (flowStore.ts,
 * typed arrays: nothing is allocated per flow), computes per-flow rates, expires idle and finished
 * flows (kept in a "recently finished" list for the UI), notices entries the kernel's LRU evicted,
 * and folds RTT events into per-flow and per-circuit sample windows. Addresses and text ids are
 * decoded only for the views a query returns (active/top/recent flows, circuit flows); per-circuit
 * RTT percentiles and retransmit rates come from circuitWindows.ts. Each poll also reads how many
 * RTT records the kernel dropped because the ring buffer was full (total and the increase).
 */
import { SubnetList } from '../integrations/common/ip.ts';
import { bootTimeNs, type RingBufferReader } from '../../dataplane/libbpf.ts';
import {
  FLOW_KEY_SIZE, FLOW_KEY_WORDS, FLOW_VALUE_SIZE, MAX_FLOWS, encodeFlowKey, readFlowKey, readRttCore,
  type FlowKey,
} from '../../dataplane/flowAbi.ts';
import { deleteFlows, dumpFlowsChunked, openRttRecords, readRingDrops } from '../../dataplane/flows.ts';
import { pinRootOf, type MapContext } from '../../dataplane/pinned.ts';
import { CircuitWindows, type CircuitAcc, type CircuitFlowStats } from './circuitWindows.ts';
import { CircuitIds, FlowStore, keyHash, type ActiveFlow, type FinishedFlow } from './flowStore.ts';
import { RecentFlows } from './recent.ts';
import { percentile } from './percentiles.ts';

export type { ActiveFlow, FinishedFlow } from './flowStore.ts';

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
  /**
   * Most flows tracked at once (default: the kernel table size, 131 072). Memory is reserved for
   * this many up front (≈ 200 B per flow); flows beyond it are left untracked until slots free up.
   */
  maxFlows?: number;
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
  /** Kernel entries left untracked this poll because `maxFlows` slots were in use. */
  skipped: number;
  pollMs: number;
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

/** What the chunks of one dump add up to: rows seen, keys to delete, counts. */
interface ScanAcc { prev: number; expire: Buffer[]; expired: number; skipped: number }

/** Per-flow RTT samples (ms), newest last; only for flows that had RTT events. */
interface FlowRtt { customer: number[]; internet: number[] }

const RTT_PER_FLOW = 32;
const TWO32 = 4294967296;
/** u32 word offsets of struct lqos_flow fields (flowAbi.ts layout). */
const W_SEEN = 2, W_BYTES = 4, W_PKTS = 8, W_RET = 12, W_NEXT = 14, W_RTT = 28, W_TC = 30, W_CIRC = 32, W_SYN = 34;
const VW = FLOW_VALUE_SIZE >>> 2;
/** Rows per batch lookup (the dump buffers hold one batch: 3 MiB). */
const DUMP_CHUNK = 16_384;

function u32view(b: Buffer): Uint32Array {
  return new Uint32Array(b.buffer, b.byteOffset, b.length >>> 2);
}

export class FlowTracker {
  readonly ctx: MapContext;
  /** The tracked flows (read by the snapshot builder; do not modify). */
  readonly store: FlowStore;
  /** Circuit indexes of the tracked flows (store.cid). */
  readonly circuitIds = new CircuitIds();
  private readonly o: Required<Omit<FlowTrackerOptions, 'pinRoot' | 'noEvents' | 'doNotTrack' | 'maxFlows'>>;
  private readonly untracked: SubnetList;
  private readonly circuits = new CircuitWindows();
  /** Per-slot circuit accumulator (TCP flows), re-fetched when pruned or moved. */
  private readonly circ: (CircuitAcc | null)[];
  private readonly rtt = new Map<number, FlowRtt>();
  /** Retired flows (recent(), the snapshot's globe and recent list). */
  readonly finished: RecentFlows;
  private events: RingBufferReader | null = null;
  /** Dump buffers (one chunk, reused) and the slot each row had in the previous dump. */
  private readonly dumpKeys = Buffer.alloc(DUMP_CHUNK * FLOW_KEY_SIZE);
  private readonly dumpVals = Buffer.alloc(DUMP_CHUNK * FLOW_VALUE_SIZE);
  private readonly kw = u32view(this.dumpKeys);
  private readonly vw = u32view(this.dumpVals);
  /**
   * The slot that followed each slot in the previous dump (and the first one): the kernel returns
   * the table in bucket order, so the next row is almost always the predicted slot (inserts and
   * deletes only break the chain locally) and the key hash is computed only when it is not.
   */
  private readonly follow: Int32Array;
  private firstSlot = -1;
  private readonly evKey = new Uint32Array(FLOW_KEY_WORDS);
  private lastPollBoot = 0n;
  private lastPollWall = 0;
  private eventCount = 0;
  /** eventCount at the end of the previous poll (events are also drained between polls). */
  private eventsAtLastPoll = 0;
  private seq = 0;
  private ringDrops = 0;
  private dropsBaselined = false;
  lastStats: PollStats = { entries: 0, expired: 0, evicted: 0, events: 0, ringDrops: 0, ringDropsDelta: 0, skipped: 0, pollMs: 0 };

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
    this.store = new FlowStore(Math.max(1, Math.min(MAX_FLOWS, opts.maxFlows ?? MAX_FLOWS)));
    this.circ = new Array<CircuitAcc | null>(this.store.cap).fill(null);
    this.follow = new Int32Array(this.store.cap).fill(-1);
    this.finished = new RecentFlows(Math.max(1, this.o.recentMax));
    this.untracked = new SubnetList(opts.doNotTrack ?? []);
    if (!opts.noEvents) this.events = openRttRecords((rec) => this.onRtt(rec), this.ctx);
  }

  close(): void {
    this.events?.close();
    this.events = null;
  }

  private onRtt(rec: Buffer): void {
    const e = readRttCore(rec);
    if (!e) return;
    this.eventCount++;
    const ms = e.rttUs / 1000;
    const k = this.evKey;
    for (let j = 0; j < FLOW_KEY_WORDS; j++) k[j] = rec.readUInt32LE(j * 4);
    const s = this.store.find(k);
    if (s >= 0) {
      let r = this.rtt.get(s);
      if (!r) this.rtt.set(s, (r = { customer: [], internet: [] }));
      const arr = e.side === 0 ? r.customer : r.internet;
      arr.push(ms);
      if (arr.length > RTT_PER_FLOW) arr.shift();
    }
    this.circuits.addRtt(e.circuitHash, e.tcHandle, e.side === 0 ? 'customer' : 'internet', ms, Date.now());
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
    const acc: ScanAcc = { prev: -1, expire: [], expired: 0, skipped: 0 };
    dumpFlowsChunked(this.dumpKeys, this.dumpVals, (n) => this.scan(n, clock, acc), this.ctx);
    const { expire, expired, skipped } = acc;
    if (expire.length) deleteFlows(Buffer.concat(expire), this.ctx);
    const evicted = this.retireEvicted(clock);
    this.circuits.commit(clock.nowWall);
    this.drainEvents();
    const drops = this.readDrops();
    const events = this.eventCount - this.eventsAtLastPoll;
    this.eventsAtLastPoll = this.eventCount;
    this.prune(clock.nowWall);
    this.lastPollBoot = clock.nowBoot;
    this.lastPollWall = clock.nowWall;
    this.lastStats = { entries: this.activeCount, expired, evicted, events, ...drops, skipped, pollMs: performance.now() - t0 };
    return this.lastStats;
  }

  /**
   * The rows of one dump chunk: each is matched to its slot (the slot the same row had last time, else
   * the key hash), its counters copied in place and its deltas taken; new flows get a slot. Keys to
   * delete from the kernel (retired or untracked) are collected.
   */
  private scan(n: number, clock: PollClock, acc: ScanAcc): void {
    const st = this.store, kw = this.kw, vw = this.vw, V = this.dumpVals;
    const follow = this.follow, dtS = clock.dtS, seq = clock.seq, now = clock.nowBootN;
    const idleNs = this.o.idleTimeoutMs * 1e6, graceNs = this.o.finishedGraceMs * 1e6;
    const keyCopy = (i: number) => Buffer.from(this.dumpKeys.subarray(i * FLOW_KEY_SIZE, (i + 1) * FLOW_KEY_SIZE));
    let prev = acc.prev;
    for (let i = 0; i < n; i++) {
      const off = i * FLOW_KEY_WORDS, w = i * VW;
      let s = prev >= 0 ? follow[prev]! : this.firstSlot;
      if (s < 0 || !st.isLive(s) || !st.sameKey(s, kw, off)) s = st.find(kw, off);
      if (s >= 0 && (st.startLo[s] !== vw[w] || st.startHi[s] !== vw[w + 1])) {
        this.free(s); // another connection under the same key: starts over
        s = -1;
      }
      if (s < 0) {
        s = this.admit(kw, off, w, vw);
        if (s === -2) { acc.expire.push(keyCopy(i)); continue; }
        if (s < 0) { acc.skipped++; continue; }
      }
      if (prev >= 0) follow[prev] = s;
      else this.firstSlot = s;
      prev = s;
      st.seen[s] = seq;
      // Counters and state only move with a packet, and every packet moves last_seen.
      if (vw[w + W_SEEN]! + vw[w + W_SEEN + 1]! * TWO32 === st.seenNs[s]) {
        if (dtS > 0) st.rateD[s] = st.rateU[s] = 0;
      } else {
        const bd = vw[w + W_BYTES]! + vw[w + W_BYTES + 1]! * TWO32, bu = vw[w + W_BYTES + 2]! + vw[w + W_BYTES + 3]! * TWO32;
        const pd = vw[w + W_PKTS]! + vw[w + W_PKTS + 1]! * TWO32, pu = vw[w + W_PKTS + 2]! + vw[w + W_PKTS + 3]! * TWO32;
        const rd = vw[w + W_RET]!, ru = vw[w + W_RET + 1]!;
        if (dtS > 0) {
          st.rateD[s] = (bd > st.bytesD[s]! ? bd - st.bytesD[s]! : 0) * 8 / dtS;
          st.rateU[s] = (bu > st.bytesU[s]! ? bu - st.bytesU[s]! : 0) * 8 / dtS;
        }
        this.refreshState(s, w, vw, V);
        if ((kw[off + 9]! & 0xff) === 6) {
          let c = this.circ[s];
          if (!c || c.dead) c = this.circ[s] = this.circuits.get(this.circuitIds.hash[st.cid[s]!]!, st.tc[s]!);
          this.circuits.addDeltas(c, rd > st.retD[s]! ? rd - st.retD[s]! : 0, ru > st.retU[s]! ? ru - st.retU[s]! : 0,
            pd > st.pktsD[s]! ? pd - st.pktsD[s]! : 0, pu > st.pktsU[s]! ? pu - st.pktsU[s]! : 0);
        }
        st.bytesD[s] = bd; st.bytesU[s] = bu; st.pktsD[s] = pd; st.pktsU[s] = pu; st.retD[s] = rd; st.retU[s] = ru;
      }
      const idle = now - st.seenNs[s]!;
      const done = st.endSt[s] !== 0 && idle >= graceNs;
      if (!done && idle < idleNs) continue;
      this.retire(s, clock, done ? (st.endSt[s] === 2 ? 'rst' : 'fin') : 'idle');
      acc.expire.push(keyCopy(i));
      acc.expired++;
    }
    acc.prev = prev;
  }

  /** A slot for a row whose key is not tracked yet: -2 = in a do-not-track subnet, -1 = store full. */
  private admit(kw: Uint32Array, off: number, w: number, vw: Uint32Array): number {
    if (this.untracked.size > 0) {
      const k = readFlowKey(this.dumpKeys, off * 4);
      if (this.untracked.has(k.localIp) || this.untracked.has(k.remoteIp)) return -2;
    }
    const st = this.store;
    const s = st.add(kw, off, keyHash(kw, off));
    if (s < 0) return -1;
    st.startLo[s] = vw[w]!;
    st.startHi[s] = vw[w + 1]!;
    st.seenNs[s] = -1;
    // First sight: the whole history counts as this interval's delta; circuit set by refreshState.
    st.circLo[s] = ~vw[w + W_CIRC]! >>> 0;
    st.circHi[s] = 0;
    st.tc[s] = 0;
    this.circ[s] = null;
    return s;
  }

  /** Copy the row's state (not the counters) into slot s; a new circuit hash re-links the circuit. */
  private refreshState(s: number, w: number, vw: Uint32Array, V: Buffer): void {
    const st = this.store, b = w * 4;
    st.seenNs[s] = vw[w + W_SEEN]! + vw[w + W_SEEN + 1]! * TWO32;
    const flags = V[b + 125]!;
    st.flags[s] = flags;
    st.nextD[s] = vw[w + W_NEXT]!; st.nextU[s] = vw[w + W_NEXT + 1]!;
    st.synD[s] = vw[w + W_SYN]!; st.synU[s] = vw[w + W_SYN + 1]!;
    st.rttC[s] = vw[w + W_RTT]!; st.rttI[s] = vw[w + W_RTT + 1]!;
    st.endSt[s] = V[b + 124]!;
    st.tos[s] = V[b + 126]!;
    const tc = vw[w + W_TC]!, cLo = vw[w + W_CIRC]!, cHi = vw[w + W_CIRC + 1]!;
    if (cLo === st.circLo[s] && cHi === st.circHi[s] && tc === st.tc[s]) return;
    const moved = cLo !== st.circLo[s] || cHi !== st.circHi[s];
    st.tc[s] = tc;
    st.circLo[s] = cLo;
    st.circHi[s] = cHi;
    if (moved) {
      this.circuitIds.unref(st.cid[s]!);
      st.cid[s] = this.circuitIds.ref(BigInt(cLo) + (BigInt(cHi) << 32n), tc);
    } else if (tc) this.circuitIds.tc[st.cid[s]!] = tc;
    this.circ[s] = null;
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
      seq: ++this.seq, nowBoot, nowBootN: Number(nowBoot), nowWall: Date.now(),
      dtS: this.lastPollBoot ? Number(nowBoot - this.lastPollBoot) / 1e9 : 0,
    };
  }

  /** Entries that vanished without us deleting them were evicted by the LRU (table full). */
  private retireEvicted(clock: PollClock): number {
    const st = this.store;
    let evicted = 0;
    for (let p = st.size - 1; p >= 0; p--) {
      const s = st.live[p]!;
      if (st.seen[s] === clock.seq) continue;
      this.retire(s, clock, 'evicted');
      evicted++;
    }
    return evicted;
  }

  private free(s: number): void {
    const st = this.store;
    this.circuitIds.unref(st.cid[s]!);
    st.cid[s] = -1;
    this.circ[s] = null;
    this.rtt.delete(s);
    st.remove(s);
  }

  private retire(s: number, clock: PollClock, reason: FinishedFlow['reason']): void {
    const idleMs = Math.max(0, (clock.nowBootN - this.store.seenNs[s]!) / 1e6);
    this.finished.push(this.store, s, clock.nowWall, reason, this.rttMsOf(s), idleMs);
    this.free(s);
  }

  private prune(nowWall: number): void {
    this.finished.prune(nowWall - this.o.recentWindowMs);
    this.circuits.prune(nowWall, this.o.rttWindowMs, this.o.retransWindowMs);
  }

  // -------------------------------------------------------------------------------------------
  // Queries (as of the last poll)

  /** RTT medians of slot s: its recent samples, else the kernel's last sample (ms; null = none). */
  private rttMsOf(s: number): { customer: number | null; internet: number | null } {
    const r = this.rtt.get(s), st = this.store;
    const med = (a: number[] | undefined, lastUs: number) => (a?.length ? percentile(a, 50) : lastUs ? lastUs / 1000 : null);
    return { customer: med(r?.customer, st.rttC[s]!), internet: med(r?.internet, st.rttI[s]!) };
  }

  private view(s: number, nowBoot: bigint): ActiveFlow {
    const e = this.store.entry(s);
    return Object.assign(e, {
      rttMs: this.rttMsOf(s),
      durationMs: Number(e.lastSeenNs - e.startNs) / 1e6,
      idleMs: Math.max(0, Number(nowBoot - e.lastSeenNs) / 1e6),
    });
  }

  /** Boot time of the last poll (now before the first one). */
  private get viewTime(): bigint {
    return this.lastPollBoot || bootTimeNs();
  }

  /** Full view of a live slot (as of the last poll). */
  viewSlot(s: number): ActiveFlow {
    return this.view(s, this.viewTime);
  }

  /** Live slots (a copy of the dense list). */
  slots(): Int32Array {
    return this.store.live.slice(0, this.store.size);
  }

  /** Active flows (as of the last poll). */
  active(): ActiveFlow[] {
    const now = this.viewTime;
    return Array.from(this.slots(), (s) => this.view(s, now));
  }

  get activeCount(): number {
    return this.store.size;
  }

  /** Poll sequence number (changes on every poll). */
  get pollSeq(): number {
    return this.seq;
  }

  /** Flow by text id "proto/local/lport/remote/rport" (as of the last poll). */
  get(id: string): ActiveFlow | undefined {
    const p = id.split('/');
    if (p.length !== 5) return undefined;
    let key: FlowKey;
    try {
      key = { proto: Number(p[0]), localIp: p[1]!, localPort: Number(p[2]), remoteIp: p[3]!, remotePort: Number(p[4]) };
      const s = this.store.find(new Uint32Array(new Uint8Array(encodeFlowKey(key)).buffer));
      return s >= 0 ? this.view(s, this.viewTime) : undefined;
    } catch {
      return undefined;
    }
  }

  /** The `n` live slots with the highest score (descending). */
  topSlots(n: number, score: (s: number) => number, slots: ArrayLike<number> = this.slots()): number[] {
    const top: number[] = [], sc: number[] = [];
    for (let i = 0; i < slots.length; i++) {
      const s = slots[i]!, v = score(s);
      if (top.length === n && v <= sc[n - 1]!) continue;
      let j = top.length === n ? n - 1 : top.length;
      while (j > 0 && sc[j - 1]! < v) { top[j] = top[j - 1]!; sc[j] = sc[j - 1]!; j--; }
      top[j] = s;
      sc[j] = v;
    }
    return top;
  }

  /** Top `n` active flows by current rate (default) or total bytes. */
  top(n = 10, by: 'rate' | 'bytes' = 'rate'): ActiveFlow[] {
    const st = this.store, now = this.viewTime;
    const score = by === 'rate' ? (s: number) => st.rateD[s]! + st.rateU[s]! : (s: number) => st.bytesD[s]! + st.bytesU[s]!;
    return this.topSlots(n, score).map((s) => this.view(s, now));
  }

  /** Recently finished flows (oldest first). */
  recent(): FinishedFlow[] {
    return this.finished.views();
  }

  /** Per-circuit aggregates (circuit hash 0 = unshaped/unknown hosts), indexed by circuit index. */
  circuitStatsByIndex(): { stats: CircuitFlowStats[]; byIndex: (CircuitFlowStats | undefined)[] } {
    const st = this.store, ids = this.circuitIds;
    const byIndex: (CircuitFlowStats | undefined)[] = new Array(ids.span);
    const stats: CircuitFlowStats[] = [];
    const seen = new Set<bigint>();
    for (let p = 0; p < st.size; p++) {
      const s = st.live[p]!, c = st.cid[s]!;
      let x = byIndex[c];
      if (!x) {
        stats.push((x = byIndex[c] = this.circuits.baseStats(ids.hash[c]!, ids.tc[c]!)));
        seen.add(ids.hash[c]!);
      }
      x.activeFlows++;
      x.bytes.down += st.bytesD[s]!;
      x.bytes.up += st.bytesU[s]!;
      x.rateBps.down += st.rateD[s]!;
      x.rateBps.up += st.rateU[s]!;
    }
    for (const [hash, tc] of this.circuits.handles()) if (!seen.has(hash)) stats.push(this.circuits.baseStats(hash, tc));
    return { stats, byIndex };
  }

  /** Per-circuit aggregates (circuit hash 0 = unshaped/unknown hosts). */
  circuitStats(): CircuitFlowStats[] {
    return this.circuitStatsByIndex().stats;
  }

  /** Active flows of one circuit, by rate. */
  circuitFlows(circuitHash: bigint): ActiveFlow[] {
    const st = this.store, now = this.viewTime, lo = Number(circuitHash & 0xffffffffn), hi = Number(circuitHash >> 32n);
    const mine = Array.from(this.slots()).filter((s) => st.circLo[s] === lo && st.circHi[s] === hi);
    return mine.sort((a, b) => st.rateD[b]! + st.rateU[b]! - (st.rateD[a]! + st.rateU[a]!)).map((s) => this.view(s, now));
  }

  get lastPollAt(): number {
    return this.lastPollWall;
  }
}
