/**
 * FlowTracker: the userspace state over the XDP flow table (dataplane/flows.ts). `poll()` reads the
 * table (the kernel-side reader dataplane/flowScan.ts copies it into memory-mapped arrays; without it,
 * batch lookups into buffers the tracker reuses), compares each row with the flow's slot in the store (flowStore.ts,
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
  FLOW_KEY_SIZE, FLOW_KEY_WORDS, FLOW_ROW_SIZE, FLOW_VALUE_SIZE, MAX_FLOWS, compactFlowValues, encodeFlowKey, readFlowKey, readRttCore,
  type FlowEntry, type FlowKey,
} from '../../dataplane/flowAbi.ts';
import { deleteFlows, dumpFlowsChunked, openRttRecords, readRingDrops } from '../../dataplane/flows.ts';
import { openFlowScanner, type FlowScanner } from '../../dataplane/flowScan.ts';
import { pinRootOf, type MapContext } from '../../dataplane/pinned.ts';
import { CircuitWindows, type CircuitAcc, type CircuitFlowStats } from './circuitWindows.ts';
import { ABSORB, CircuitIds, FlowStore, keyHash, widen, type ActiveFlow, type FinishedFlow, type ScanSink } from './flowStore.ts';
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
   * Most flows tracked at once (default: the kernel table size, 131 072). The store grows with the
   * flows (≈ 200 B per flow, doubling) up to this; flows beyond it are left untracked until slots free up.
   */
  maxFlows?: number;
  /** Do not open the ring buffer (tests of the table only). */
  noEvents?: boolean;
  /**
   * How the table is read: "auto" (default) uses the kernel-side reader (dataplane/flowScan.ts) when
   * it loads and batch lookups otherwise; "batch" always uses batch lookups.
   */
  tableReader?: 'auto' | 'batch';
  /**
   * Subnets (CIDR) never tracked (`[flows] do_not_track_subnets`): a flow with either endpoint in
   * one is kept out of every table and query, and removed from the kernel table so it takes no slot.
   */
  doNotTrack?: string[];
  /**
   * Called for every flow as it is retired (before its slot is freed), with its final counters and
   * a converter from the kernel's boot-clock ns to wall ms (NetFlow/IPFIX export). Unset: no cost.
   */
  onRetired?: (flow: FlowEntry, wallOfBoot: (ns: bigint) => number, rttUs: number) => void;
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

/** What the chunks of one dump add up to: the previous row's slot, a slot predicted but not taken, keys to delete (packed, `nExpire` of them), counts. */
interface ScanAcc { prev: number; missed: number; nExpire: number; expired: number; skipped: number }

/** Per-flow RTT samples (ms), newest last; only for flows that had RTT events. */
interface FlowRtt { customer: number[]; internet: number[] }

const RTT_PER_FLOW = 32;
/**
 * RTT events of flows the store does not hold yet (the kernel saw the flow after the last table
 * read; events are drained every 250 ms, the table read every second, and a busy event loop can
 * drain many times before the next read): kept here as key words, side and µs, and handed to
 * their flows right after the next table read. Bounded: beyond this many the flow misses the
 * sample (its circuit still has it).
 */
const PENDING_RTT_MAX = 8_192;
const PENDING_ROW_WORDS = FLOW_KEY_WORDS + 2;
/** Rows per batch lookup at most (the dump buffers hold one batch: 3 MiB at 16k rows)… */
const DUMP_CHUNK = 2_048;
/** …and at first: they grow when a dump has more rows than they hold. */
const DUMP_CHUNK_MIN = 512;

function u32view(b: Buffer): Uint32Array {
  return new Uint32Array(b.buffer, b.byteOffset, b.length >>> 2);
}

export class FlowTracker {
  readonly ctx: MapContext;
  /** The tracked flows (read by the snapshot builder; do not modify). */
  readonly store: FlowStore;
  /** Circuit indexes of the tracked flows (store.cid). */
  readonly circuitIds = new CircuitIds();
  private readonly o: Required<Omit<FlowTrackerOptions, 'pinRoot' | 'noEvents' | 'doNotTrack' | 'maxFlows' | 'onRetired' | 'tableReader'>>;
  private readonly onRetired: FlowTrackerOptions['onRetired'];
  private readonly untracked: SubnetList;
  private readonly circuits = new CircuitWindows();
  /** The circuit window of each circuit index (cached for flushCircuit; cleared when the index is freed). */
  private readonly accOf: (CircuitAcc | undefined)[] = [];
  /**
   * The store's scan (FlowStore.scanRows) calls back here for new, replaced, moved and retired flows.
   * It also carries the TCP retransmit and packet deltas of the current poll per circuit index
   * (circDelta, 4 per index: retransmits down/up, packets down/up), whether an index has any
   * (circMarked), and the indexes touched (circTouched): handed to the circuit windows at the end of
   * the poll, or earlier when the index is freed (it may be reused).
   */
  private readonly sink: ScanSink = {
    circDelta: new Float64Array(0), circMarked: new Uint8Array(0), circTouched: [],
    admitRow: (i, kw, off, vw, w) => {
      const s = this.admit(kw, off, w, vw);
      if (s === -2) this.expireRow(i, this.acc);
      return s;
    },
    free: (s) => this.free(s),
    relink: (s, got) => this.relink(s, got),
    retireRow: (s, i, reason) => {
      this.retire(s, this.pollClock, reason);
      this.expireRow(i, this.acc);
      this.acc.expired++;
    },
  };
  /** The accumulator and clock of the poll in progress (for the scan's callbacks). */
  private acc: ScanAcc = { prev: -1, missed: -1, nExpire: 0, expired: 0, skipped: 0 };
  private pollClock: PollClock = { seq: 0, nowBoot: 0n, nowBootN: 0, nowWall: 0, dtS: 0 };
  private readonly rtt = new Map<number, FlowRtt>();
  /** RTT events waiting for their flow's first table read (PENDING_ROW_WORDS each: key, side, µs). */
  private readonly pendingRtt = new Uint32Array(PENDING_RTT_MAX * PENDING_ROW_WORDS);
  private nPendingRtt = 0;
  /** Retired flows (recent(), the snapshot's globe and recent list). */
  readonly finished: RecentFlows;
  private events: RingBufferReader | null = null;
  /** The kernel-side table reader (null: batch lookups), and why it is not used. */
  private scanner: FlowScanner | null = null;
  /** Try to open the reader again at the next poll (it worked before; reopening after the maps were recreated failed). */
  private scannerRetry = false;
  /** How the table is read, and (for "batch" when the reader was wanted) why. */
  reader: { path: 'kernel-scan' | 'batch'; reason?: string } = { path: 'batch' };
  /**
   * The rows being scanned and their u32 views: the kernel-side reader's mapped arrays, or (batch
   * lookups) dump buffers of one chunk, reused and grown up to DUMP_CHUNK rows as the table fills.
   */
  private dumpKeys: Buffer = Buffer.alloc(0);
  private kw: Uint32Array = new Uint32Array(0);
  /** Rows (struct lqos_flow_row) of `kw`'s keys. */
  private vw: Uint32Array = new Uint32Array(0);
  /** Batch lookups only: the kernel's values of a chunk (FLOW_VALUE_SIZE each), compacted into `vw` before the scan. */
  private dumpVals: Buffer = Buffer.alloc(0);
  private dumpValWords: Uint32Array = new Uint32Array(0);
  /** Keys to delete from the kernel after a dump (retired or untracked flows), grown on demand. */
  private expireKeys = Buffer.alloc(0);
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
    this.sizeDump(DUMP_CHUNK_MIN);
    this.finished = new RecentFlows(Math.max(1, this.o.recentMax));
    this.untracked = new SubnetList(opts.doNotTrack ?? []);
    this.onRetired = opts.onRetired;
    if ((opts.tableReader ?? 'auto') === 'auto') this.openScanner();
    if (!opts.noEvents) this.events = openRttRecords((rec) => this.onRtt(rec), this.ctx);
  }

  close(): void {
    this.events?.close();
    this.events = null;
    this.dropScanner();
  }

  /** Open the kernel-side reader; on failure read with batch lookups from now on (the reason is kept in `reader`). */
  private openScanner(): void {
    try {
      this.scanner = openFlowScanner(this.ctx);
      this.reader = { path: 'kernel-scan' };
    } catch (e) {
      this.scanner = null;
      this.reader = { path: 'batch', reason: e instanceof Error ? e.message : String(e) };
    }
  }

  /** Close the reader and go back to the tracker's own dump buffers (its arrays are unmapped). */
  private dropScanner(): void {
    if (!this.scanner) return;
    this.scanner.close();
    this.scanner = null;
    this.sizeDump(DUMP_CHUNK_MIN, true);
  }

  /** Read the table: through the kernel-side reader when there is one, else by batch lookups; each row batch goes to `scan`. */
  private readTable(clock: PollClock, acc: ScanAcc): number {
    if (this.scannerRetry || this.scanner?.stale()) {
      // The maps were recreated (re-attach): the reader's program still reads the old table. The new
      // maps may not all be pinned yet: a failed reopen is tried again at the next poll.
      this.dropScanner();
      this.openScanner();
      this.scannerRetry = !this.scanner;
    }
    const sc = this.scanner;
    if (sc) {
      let n: number;
      try {
        n = sc.scan();
      } catch (e) {
        this.dropScanner();
        this.reader = { path: 'batch', reason: `the kernel-side reader failed: ${e instanceof Error ? e.message : String(e)}` };
        return this.readTable(clock, acc);
      }
      if (this.dumpKeys !== sc.keys) {
        this.dumpKeys = sc.keys;
        this.kw = u32view(sc.keys);
        this.vw = u32view(sc.rows);
      }
      if (n > 0) this.scan(n, clock, acc);
      return n;
    }
    const rows = dumpFlowsChunked(this.dumpKeys, this.dumpVals, (n) => {
      compactFlowValues(this.dumpValWords, this.vw, n);
      this.scan(n, clock, acc);
    }, this.ctx);
    if (rows > this.kw.length / FLOW_KEY_WORDS) this.sizeDump(rows);
    return rows;
  }

  private onRtt(rec: Buffer): void {
    const e = readRttCore(rec);
    if (!e) return;
    this.eventCount++;
    const ms = e.rttUs / 1000;
    const k = this.evKey;
    for (let j = 0; j < FLOW_KEY_WORDS; j++) k[j] = rec.readUInt32LE(j * 4);
    const s = this.store.find(k);
    if (s >= 0) this.addFlowRtt(s, e.side, ms);
    else if (this.nPendingRtt < PENDING_RTT_MAX) {
      const at = this.nPendingRtt++ * PENDING_ROW_WORDS, p = this.pendingRtt;
      p.set(k, at);
      p[at + FLOW_KEY_WORDS] = e.side;
      p[at + FLOW_KEY_WORDS + 1] = e.rttUs;
    }
    this.circuits.addRtt(e.circuitHash, e.tcHandle, e.side === 0 ? 'customer' : 'internet', ms, Date.now());
  }

  private addFlowRtt(s: number, side: number, ms: number): void {
    let r = this.rtt.get(s);
    if (!r) this.rtt.set(s, (r = { customer: [], internet: [] }));
    const arr = side === 0 ? r.customer : r.internet;
    arr.push(ms);
    if (arr.length > RTT_PER_FLOW) arr.shift();
  }

  /** After a table read: the waiting events go to their flows if the read found them, else they are dropped. */
  private attachPendingRtt(): void {
    const p = this.pendingRtt;
    for (let i = 0; i < this.nPendingRtt; i++) {
      const at = i * PENDING_ROW_WORDS;
      const s = this.store.find(p, at);
      if (s >= 0) this.addFlowRtt(s, p[at + FLOW_KEY_WORDS]!, p[at + FLOW_KEY_WORDS + 1]! / 1000);
    }
    this.nPendingRtt = 0;
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
    const acc: ScanAcc = { prev: -1, missed: -1, nExpire: 0, expired: 0, skipped: 0 };
    this.readTable(clock, acc);
    this.attachPendingRtt();
    const { nExpire, expired, skipped } = acc;
    if (nExpire) deleteFlows(this.expireKeys.subarray(0, nExpire * FLOW_KEY_SIZE), this.ctx);
    const evicted = this.retireEvicted(clock);
    for (const cid of this.sink.circTouched) this.flushCircuit(cid);
    this.sink.circTouched = [];
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
   * The rows of one dump chunk (FlowStore.scanRows: matched to their slots, counters taken in place,
   * per-circuit deltas summed); new flows get a slot (`sink.admitRow`), finished and idle ones are retired
   * (`sink.retireRow`), and the keys to delete from the kernel (retired or untracked) are collected.
   */
  private scan(n: number, clock: PollClock, acc: ScanAcc): void {
    this.acc = acc;
    this.pollClock = clock;
    this.store.scanRows(this.kw, this.vw, n, clock.seq, clock.nowBootN, clock.dtS, this.o.idleTimeoutMs * 1e6, this.o.finishedGraceMs * 1e6, acc, this.sink);
  }

  /** Queue the key of dump row i for deletion from the kernel table. */
  private expireRow(i: number, acc: ScanAcc): void {
    const need = (acc.nExpire + 1) * FLOW_KEY_SIZE;
    if (need > this.expireKeys.length) {
      const grown = Buffer.alloc(Math.max(64 * FLOW_KEY_SIZE, this.expireKeys.length * 2));
      this.expireKeys.copy(grown);
      this.expireKeys = grown;
    }
    this.dumpKeys.copy(this.expireKeys, acc.nExpire++ * FLOW_KEY_SIZE, i * FLOW_KEY_SIZE, (i + 1) * FLOW_KEY_SIZE);
  }

  /** Dump buffers for `rows` rows (rounded up to a power of two, at most DUMP_CHUNK); `fresh`: new ones even at the same size. */
  private sizeDump(rows: number, fresh = false): void {
    const n = Math.min(DUMP_CHUNK, 2 ** Math.ceil(Math.log2(Math.max(rows, DUMP_CHUNK_MIN))));
    if (!fresh && n * FLOW_KEY_WORDS === this.kw.length) return;
    this.dumpKeys = Buffer.alloc(n * FLOW_KEY_SIZE);
    this.dumpVals = Buffer.alloc(n * FLOW_VALUE_SIZE);
    this.kw = u32view(this.dumpKeys);
    this.dumpValWords = u32view(this.dumpVals);
    this.vw = new Uint32Array(n * (FLOW_ROW_SIZE >>> 2));
  }

  /** A slot for a row whose key is not tracked yet: -2 = in a do-not-track subnet, -1 = store full. */
  private admit(kw: Uint32Array, off: number, w: number, vw: Uint32Array): number {
    if (this.untracked.size > 0) {
      const k = readFlowKey(this.dumpKeys, off * 4);
      if (this.untracked.has(k.localIp) || this.untracked.has(k.remoteIp)) return -2;
    }
    const s = this.store.add(kw, off, keyHash(kw, off));
    if (s < 0) return -1;
    this.store.firstSight(s, vw, w);
    return s;
  }

  /** The row just taken moved slot s to another circuit (or changed its tc handle). */
  private relink(s: number, got: number): void {
    const st = this.store, ids = this.circuitIds;
    if (got & ABSORB.MOVED) {
      this.unrefCircuit(st.cid(s));
      st.setCid(s, ids.refParts(st.circLo(s), st.circHi(s), st.tc(s)));
      if (ids.span > this.sink.circMarked.length) this.widenCircuits(ids.span);
    } else if (st.tc(s)) ids.tc[st.cid(s)] = st.tc(s);
  }

  /** Room for circuit indexes below `span` in the per-poll delta arrays (doubling). */
  private widenCircuits(span: number): void {
    const n = Math.max(span, this.sink.circMarked.length * 2, 64);
    this.sink.circDelta = widen(this.sink.circDelta, new Float64Array(n * 4));
    this.sink.circMarked = widen(this.sink.circMarked, new Uint8Array(n));
  }

  /** Hand a circuit index's deltas of this poll to its circuit window (no-op when it has none). */
  private flushCircuit(cid: number): void {
    const marked = this.sink.circMarked;
    if (!marked[cid]) return;
    const ids = this.circuitIds, cd = this.sink.circDelta, b = cid * 4, tc = ids.tc[cid]!;
    let win = this.accOf[cid];
    if (!win || win.dead) win = this.accOf[cid] = this.circuits.get(ids.hash[cid]!, tc);
    else if (tc) win.tcHandle = tc;
    this.circuits.addDeltas(win, cd[b]!, cd[b + 1]!, cd[b + 2]!, cd[b + 3]!);
    cd[b] = cd[b + 1] = cd[b + 2] = cd[b + 3] = 0;
    marked[cid] = 0;
  }

  /** Drop a flow's reference to a circuit index; its deltas go out first when the index is freed. */
  private unrefCircuit(cid: number): void {
    if (cid >= 0 && this.circuitIds.refs[cid] === 1) {
      this.flushCircuit(cid);
      this.accOf[cid] = undefined;
    }
    this.circuitIds.unref(cid);
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

  /**
   * Entries that vanished without us deleting them were evicted by the LRU (table full). Found by
   * one pass over `seen` in slot order (live slots the dump did not see), then retired in the order
   * of their place in the live list from the end, as a walk down that list would retire them.
   */
  private retireEvicted(clock: PollClock): number {
    const st = this.store, seen = st.seen, seq = clock.seq, cap = st.cap;
    const gone: number[] = [];
    for (let s = 0; s < cap; s++) {
      const x = seen[s]!;
      if (x !== seq && x !== 0 && st.isLive(s)) gone.push(s);
    }
    if (gone.length > 1) gone.sort((a, b) => st.pos(b) - st.pos(a));
    for (const s of gone) this.retire(s, clock, 'evicted');
    return gone.length;
  }

  private free(s: number): void {
    const st = this.store;
    this.unrefCircuit(st.cid(s));
    st.setCid(s, -1);
    this.rtt.delete(s);
    st.remove(s);
  }

  private retire(s: number, clock: PollClock, reason: FinishedFlow['reason']): void {
    const idleMs = Math.max(0, (clock.nowBootN - this.store.seenNs(s)) / 1e6);
    const rtt = this.rttMsOf(s);
    this.finished.push(this.store, s, clock.nowWall, reason, rtt, idleMs);
    if (this.onRetired) this.onRetired(this.store.entry(s), (ns) => clock.nowWall - (clock.nowBootN - Number(ns)) / 1e6, Math.round((rtt.internet ?? 0) * 1000));
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
    return { customer: med(r?.customer, st.rttC(s)), internet: med(r?.internet, st.rttI(s)) };
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
    const top = new TopN(n);
    for (let i = 0; i < slots.length; i++) top.offer(slots[i]!, score(slots[i]!));
    return top.slots;
  }

  /** Top `n` active flows by current rate (default) or total bytes. */
  top(n = 10, by: 'rate' | 'bytes' = 'rate'): ActiveFlow[] {
    const st = this.store, now = this.viewTime;
    const score = by === 'rate' ? (s: number) => st.rate(s) : (s: number) => st.bytesD(s) + st.bytesU(s);
    return this.topSlots(n, score).map((s) => this.view(s, now));
  }

  /** Recently finished flows (oldest first). */
  recent(): FinishedFlow[] {
    return this.finished.views();
  }

  /**
   * Per-circuit aggregates (circuit hash 0 = unshaped/unknown hosts), indexed by circuit index, and
   * each circuit index's first live slot (-1: none).
   */
  circuitStatsByIndex(): { stats: CircuitFlowStats[]; byIndex: (CircuitFlowStats | undefined)[]; first: Int32Array } {
    const st = this.store, ids = this.circuitIds;
    const byIndex: (CircuitFlowStats | undefined)[] = new Array(ids.span);
    const first = new Int32Array(ids.span).fill(-1);
    const stats: CircuitFlowStats[] = [];
    const seen = new Set<bigint>();
    for (let p = 0; p < st.size; p++) {
      const s = st.live[p]!, c = st.cid(s);
      let x = byIndex[c];
      if (!x) {
        stats.push((x = byIndex[c] = this.circuits.baseStats(ids.hash[c]!, ids.tc[c]!)));
        seen.add(ids.hash[c]!);
        first[c] = s;
      }
      x.activeFlows++;
      x.bytes.down += st.bytesD(s);
      x.bytes.up += st.bytesU(s);
      x.rateBps.down += st.rateD(s);
      x.rateBps.up += st.rateU(s);
    }
    for (const [hash, tc] of this.circuits.handles()) if (!seen.has(hash)) stats.push(this.circuits.baseStats(hash, tc));
    return { stats, byIndex, first };
  }

  /** Per-circuit aggregates (circuit hash 0 = unshaped/unknown hosts). */
  circuitStats(): CircuitFlowStats[] {
    return this.circuitStatsByIndex().stats;
  }

  /** Active flows of one circuit, by rate. */
  circuitFlows(circuitHash: bigint): ActiveFlow[] {
    const st = this.store, now = this.viewTime, lo = Number(circuitHash & 0xffffffffn), hi = Number(circuitHash >> 32n);
    const mine = Array.from(this.slots()).filter((s) => st.circLo(s) === lo && st.circHi(s) === hi);
    return mine.sort((a, b) => st.rate(b) - st.rate(a)).map((s) => this.view(s, now));
  }

  get lastPollAt(): number {
    return this.lastPollWall;
  }
}

/** The `n` highest-scored slots offered, descending (ties: the first offered ranks higher). */
export class TopN {
  readonly slots: number[] = [];
  private readonly scores: number[] = [];

  constructor(private readonly n: number) {}

  offer(s: number, v: number): void {
    const top = this.slots, sc = this.scores, n = this.n;
    if (n <= 0 || (top.length === n && v <= sc[n - 1]!)) return;
    let j = top.length === n ? n - 1 : top.length;
    while (j > 0 && sc[j - 1]! < v) { top[j] = top[j - 1]!; sc[j] = sc[j - 1]!; j--; }
    top[j] = s;
    sc[j] = v;
  }
}
