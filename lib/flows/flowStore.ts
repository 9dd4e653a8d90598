/**
 * The tracker's flow store: one fixed-size record per tracked flow (slot) in one ArrayBuffer, so a
 * poll over 100k flows compares and copies numbers in place, allocates nothing per flow and touches
 * three cache lines per changed row (the record) instead of one per field. A record holds the packed
 * kernel key (u32 words; addresses and the text id are decoded only when a view is built), the last
 * dumped counters and state, the rates of the last interval, the flow's circuit (a small circuit
 * index, `CircuitIds`), the slot that followed it in the last dump and a tag the snapshot uses for
 * its enrichment cache. Slots are found by a 52-bit hash of the key in an open-addressing Int32Array
 * table (probes compare the key words, so equal hashes need no special case); live slots are kept in
 * a dense list for iteration. The store starts small and grows by a quarter as flows arrive, up to `maxCap`.
 */
import { ADDR_SIZE, decodeAddr } from '../../dataplane/abi.ts';
import { FLOW_KEY_WORDS, FLOW_ROW_SIZE, FLOWF, flowId, readFlowKey, type EndStatus, type FlowEntry, type PerDirection } from '../../dataplane/flowAbi.ts';

const END: EndStatus[] = ['open', 'fin', 'rst'];

// sameKey compares the 10 words of a 40-byte key unrolled.
if (FLOW_KEY_WORDS !== 10) throw new Error(`flowStore: FLOW_KEY_WORDS is ${FLOW_KEY_WORDS}, sameKey expects 10`);

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

const TWO32 = 4294967296;

/** 52-bit hash of the packed key at word `off` of `k` (two FNV-1a style 32-bit lanes). */
export function keyHash(k: Uint32Array, off = 0): number {
  let h1 = 0x811c9dc5, h2 = 0x01000193;
  for (let j = 0; j < FLOW_KEY_WORDS; j++) {
    const x = k[off + j]!;
    h1 = Math.imul(h1 ^ x, 16777619);
    h2 = Math.imul(h2 ^ x, 0x5bd1e995) ^ (h2 >>> 15);
  }
  return (h1 >>> 0) + ((h2 >>> 0) & 0xfffff) * TWO32;
}

/** Home bucket of a key hash in a table of 2^bits buckets (Fibonacci hashing of the low 32 bits). */
function home(hash: number, shift: number): number {
  return Math.imul(hash >>> 0, 0x9e3779b1) >>> shift;
}

/**
 * Circuits referenced by tracked flows, as small indexes (per-flow grouping without bigint keys);
 * an index is reused once no flow refers to it.
 */
export class CircuitIds {
  private readonly byHash = new Map<bigint, number>();
  /** Index by the low 32 bits of the hash (as int32): the last circuit referenced with them (checked against lo/hi). */
  private readonly byLo = new Map<number, number>();
  hash: bigint[] = [];
  /** Low and high 32 bits of each index's hash. */
  lo: number[] = [];
  hi: number[] = [];
  tc: number[] = [];
  refs: number[] = [];
  private readonly free: number[] = [];

  ref(hash: bigint, tc: number): number {
    let id = this.byHash.get(hash);
    if (id === undefined) {
      id = this.free.pop() ?? this.hash.length;
      this.byHash.set(hash, id);
      this.hash[id] = hash;
      this.lo[id] = Number(hash & 0xffffffffn);
      this.hi[id] = Number((hash >> 32n) & 0xffffffffn);
      this.tc[id] = tc;
      this.refs[id] = 0;
    }
    if (tc) this.tc[id] = tc;
    this.refs[id]!++;
    return id;
  }

  /** `ref` of the hash given as its low and high 32 bits (no bigint when the circuit is already referenced). */
  refParts(lo: number, hi: number, tc: number): number {
    const id = this.byLo.get(lo | 0);
    if (id !== undefined && this.refs[id]! > 0 && this.lo[id] === lo && this.hi[id] === hi) {
      if (tc) this.tc[id] = tc;
      this.refs[id]!++;
      return id;
    }
    const nid = this.ref(BigInt(lo) + (BigInt(hi) << 32n), tc);
    this.byLo.set(lo | 0, nid);
    return nid;
  }

  unref(id: number): void {
    if (id < 0 || --this.refs[id]! > 0) return;
    this.byHash.delete(this.hash[id]!);
    if (this.byLo.get(this.lo[id]! | 0) === id) this.byLo.delete(this.lo[id]! | 0);
    this.free.push(id);
  }

  /** Upper bound of the indexes in use (arrays indexed by circuit index need this length). */
  get span(): number {
    return this.hash.length;
  }
}

// ---------------------------------------------------------------------------------------------
// Record layout: REC_W u32 words per slot (192 bytes, three cache lines). f64 fields sit at even
// words (f64 index = word / 2). Word offsets:
const REC_W = 48;
const REC_B = REC_W * 4;
/** Words 0–9: the packed key. */
const W_HASH = 10, W_SEEN = 12, W_BYTES = 14, W_PKTS = 18, W_RATE = 22;
const W_START = 26, W_RET = 28, W_NEXT = 30, W_SYN = 32, W_RTT = 34, W_TC = 36, W_CIRC = 37;
const W_CID = 39, W_POS = 40, W_TAG = 41, W_FOLLOW = 42;
/** Bytes 0–2 of this word: end status, flags, tos (as bytes 76–78 of a table row, 124–126 of the kernel value). */
const W_MISC = 43;
const F_HASH = W_HASH / 2, F_SEEN = W_SEEN / 2, F_BYTES = W_BYTES / 2, F_PKTS = W_PKTS / 2, F_RATE = W_RATE / 2;

/** u32 words per table row (struct lqos_flow_row, flowAbi.ts FLOW_ROW_SIZE), and the word offsets of its fields. */
const V_W = FLOW_ROW_SIZE >>> 2;
const V_START = 0, V_SEEN = 2, V_BYTES = 4, V_PKTS = 8, V_RET = 12, V_NEXT = 14, V_RTT = 16, V_TC = 18, V_MISC = 19, V_CIRC = 20, V_SYN = 22;

/** What a scanned row did to its slot (`ScanSink.relink`): moved (a packet since the last dump); its tc handle or circuit changed. */
export const ABSORB = { CHANGED: 1, TC: 2, MOVED: 4 } as const;

/**
 * The owner's side of `FlowStore.scanRows` (the tracker): the rare paths (new, replaced, moved and
 * retired flows) and the per-circuit-index deltas of the poll.
 */
export interface ScanSink {
  /** Retransmit and packet deltas per circuit index (4 per index: retransmits down/up, packets down/up), whether an index has any, the indexes touched; `relink` may replace the arrays. */
  circDelta: Float64Array;
  circMarked: Uint8Array;
  circTouched: number[];
  /** A slot for dump row i whose key is not tracked: -2 = never tracked (the sink queues the key for deletion), -1 = no room. */
  admitRow(i: number, kw: Uint32Array, off: number, vw: Uint32Array, w: number): number;
  /** Free slot s (another connection took its key). */
  free(s: number): void;
  /** The row just taken moved slot s to another circuit (ABSORB.MOVED) or changed its tc handle (ABSORB.TC). */
  relink(s: number, got: number): void;
  /** Slot s (dump row i) is finished or idle: retire it and queue its key for deletion. */
  retireRow(s: number, i: number, reason: 'fin' | 'rst' | 'idle'): void;
}

export class FlowStore {
  /** Most slots the store grows to. */
  readonly maxCap: number;
  cap = 0;
  /** The records, through three views and `keyBuf` (all the same memory; a slot's key starts at byte s * REC_B). */
  private u32 = new Uint32Array(0);
  private i32 = new Int32Array(0);
  private f64 = new Float64Array(0);
  keyBuf = Buffer.alloc(0);
  /** Poll sequence number (≥ 1) of the last poll that saw the flow (set by `scanRows`; 0 when free). */
  seen = new Uint32Array(0);
  /** Dense list of live slots (first `size` entries). */
  live = new Int32Array(0);
  private freeList = new Int32Array(0);
  private nFree = 0;
  size = 0;
  /**
   * Slot index by key hash: open addressing with linear probing over an Int32Array (-1 = empty), at
   * most half full; keys with equal hashes simply sit in different buckets (probes compare the key).
   */
  private table = new Int32Array(0);
  /**
   * The slot of the first row of the last dump; each slot records the one that followed it (the
   * record's follow link), so `scanRows` predicts the next row's slot.
   */
  private firstSlot = -1;
  private mask = 0;
  private shift = 0;

  /** `initial` slots now (default min(maxCap, 1024)), grown on demand up to `maxCap`. */
  constructor(maxCap: number, initial = Math.min(maxCap, 1024)) {
    this.maxCap = Math.max(1, maxCap);
    this.grow(Math.max(1, Math.min(this.maxCap, initial)));
  }

  /** Reallocate for `cap` slots, keeping every slot where it is; new slots are free. */
  grow(cap: number): void {
    const old = this.cap;
    if (cap <= old) return;
    const buf = new ArrayBuffer(cap * REC_B);
    const u32 = new Uint32Array(buf);
    u32.set(this.u32);
    this.u32 = u32;
    this.i32 = new Int32Array(buf);
    this.f64 = new Float64Array(buf);
    this.keyBuf = Buffer.from(buf);
    for (let s = old; s < cap; s++) {
      const b = s * REC_W;
      this.i32[b + W_CID] = this.i32[b + W_POS] = this.i32[b + W_TAG] = this.i32[b + W_FOLLOW] = -1;
    }
    this.seen = widen(this.seen, new Uint32Array(cap));
    this.live = widen(this.live, new Int32Array(cap));
    const free = new Int32Array(cap);
    free.set(this.freeList.subarray(0, this.nFree));
    for (let s = cap - 1; s >= old; s--) free[this.nFree++] = s;
    this.freeList = free;
    this.cap = cap;
    this.reindex();
  }

  /** Rebuild the key table for the current capacity. */
  private reindex(): void {
    const bits = Math.max(4, Math.ceil(Math.log2(this.cap * 2)));
    this.table = new Int32Array(1 << bits).fill(-1);
    this.mask = (1 << bits) - 1;
    this.shift = 32 - bits;
    for (let p = 0; p < this.size; p++) this.place(this.live[p]!);
  }

  private place(s: number): void {
    const t = this.table, m = this.mask;
    let i = home(this.f64[s * (REC_W / 2) + F_HASH]!, this.shift);
    while (t[i]! >= 0) i = (i + 1) & m;
    t[i] = s;
  }

  /** True when the key words of `slot` equal the words at `off` of `k` (unrolled: the scan checks every row's key). */
  sameKey(slot: number, k: Uint32Array, off: number): boolean {
    const u = this.u32, b = slot * REC_W;
    return u[b]! === k[off]! && u[b + 1]! === k[off + 1]! && u[b + 2]! === k[off + 2]! && u[b + 3]! === k[off + 3]!
      && u[b + 4]! === k[off + 4]! && u[b + 5]! === k[off + 5]! && u[b + 6]! === k[off + 6]! && u[b + 7]! === k[off + 7]!
      && u[b + 8]! === k[off + 8]! && u[b + 9]! === k[off + 9]!;
  }

  isLive(slot: number): boolean {
    return this.i32[slot * REC_W + W_POS]! >= 0;
  }

  /** Position of a live slot in `live` (-1: free). */
  pos(slot: number): number {
    return this.i32[slot * REC_W + W_POS]!;
  }

  /** The slot of the key at word `off` of `k`, or -1. */
  find(k: Uint32Array, off = 0, hash = keyHash(k, off)): number {
    const t = this.table, m = this.mask, f = this.f64;
    for (let i = home(hash, this.shift); ; i = (i + 1) & m) {
      const s = t[i]!;
      if (s < 0) return -1;
      if (f[s * (REC_W / 2) + F_HASH] === hash && this.sameKey(s, k, off)) return s;
    }
  }

  /**
   * A new slot for the key at word `off` of `k` (zeroed counters and rates, no circuit), or -1 when
   * the store is full at `maxCap`.
   */
  add(k: Uint32Array, off: number, hash: number): number {
    if (this.nFree === 0) {
      if (this.cap >= this.maxCap) return -1;
      this.grow(Math.min(this.maxCap, growthOf(this.cap)));
    }
    const s = this.freeList[--this.nFree]!, b = s * REC_W, u = this.u32, i = this.i32;
    for (let j = 0; j < FLOW_KEY_WORDS; j++) u[b + j] = k[off + j]!;
    u.fill(0, b + W_SEEN, b + W_TC + 3); // last_seen … circuit words
    this.f64[(b >> 1) + F_HASH] = hash;
    i[b + W_CID] = i[b + W_TAG] = i[b + W_FOLLOW] = -1;
    u[b + W_MISC] = 0;
    this.place(s);
    i[b + W_POS] = this.size;
    this.live[this.size++] = s;
    return s;
  }

  /** Free a live slot (its circuit reference is dropped by the caller). */
  remove(s: number): void {
    this.unindex(s);
    const i = this.i32, p = i[s * REC_W + W_POS]!;
    const last = this.live[--this.size]!;
    this.live[p] = last;
    i[last * REC_W + W_POS] = p;
    i[s * REC_W + W_POS] = -1;
    this.seen[s] = 0;
    this.freeList[this.nFree++] = s;
  }

  /** Take slot s out of the hash table (backward-shift deletion: no tombstones). */
  private unindex(s: number): void {
    const t = this.table, m = this.mask, sh = this.shift, f = this.f64, H = REC_W / 2;
    let i = home(f[s * H + F_HASH]!, sh);
    while (t[i] !== s) i = (i + 1) & m;
    for (let j = (i + 1) & m; t[j]! >= 0; j = (j + 1) & m) {
      const h = home(f[t[j]! * H + F_HASH]!, sh);
      // Entry j may move into the hole at i when its home is not in the cyclic range (i, j].
      if (i <= j ? h <= i || h > j : h <= i && h > j) {
        t[i] = t[j]!;
        i = j;
      }
    }
    t[i] = -1;
  }

  /** Copy slot `s` of `src` (the whole record) into slot `d` of this store (plain storage: not indexed); its tag is cleared. */
  copyFrom(src: FlowStore, s: number, d: number): void {
    const a = this.u32, b = src.u32, sb = s * REC_W, db = d * REC_W;
    for (let j = 0; j < REC_W; j++) a[db + j] = b[sb + j]!;
    this.i32[db + W_TAG] = -1;
  }

  // -------------------------------------------------------------------------------------------
  // The poll's per-row work (table rows: key words at `i * FLOW_KEY_WORDS` of `kw`, row words at `i * V_W` of `vw`)

  /**
   * A fresh slot meets its first row: start time from the row, the whole history counts as this
   * interval's delta, and the circuit is forced to differ so the scan links it.
   */
  firstSight(s: number, vw: Uint32Array, w: number): void {
    const u = this.u32, b = s * REC_W;
    u[b + W_START] = vw[w + V_START]!;
    u[b + W_START + 1] = vw[w + V_START + 1]!;
    this.f64[(b >> 1) + F_SEEN] = -1;
    u[b + W_CIRC] = ~vw[w + V_CIRC]! >>> 0;
    u[b + W_CIRC + 1] = 0;
    u[b + W_TC] = 0;
  }

  /**
   * Take `n` dumped rows, in dump order, continuing the dump at `acc` (the previous row's slot and a
   * prediction not taken; -1 at the start of a dump). Each row is matched to its slot: the slot that
   * followed the previous row in the last dump (the kernel returns the table in bucket order, so this
   * is almost always right; after a deleted row the next one, after an inserted row the one the
   * inserted row did not take), else by key hash; a row whose start
   * time differs is another connection under the same key and starts over. The slot is marked seen
   * (`seq`). Counters and state only move with a packet, and every packet moves last_seen: when it
   * did not move, only the rates drop to 0 (when `dtS` > 0). Otherwise counters, state and rates
   * (bits/s over `dtS`) are updated, and a TCP row's retransmit and packet increments are added to
   * its circuit index in `sink.circDelta`. Flows idle for `idleNs` (`graceNs` after FIN/RST) are
   * handed to `sink.retireRow`. One loop over the record views: this runs for every flow on every poll.
   */
  scanRows(kw: Uint32Array, vw: Uint32Array, n: number, seq: number, nowNs: number, dtS: number, idleNs: number, graceNs: number, acc: { prev: number; missed: number; skipped: number }, sink: ScanSink): void {
    let u = this.u32, i32 = this.i32, f = this.f64, seen = this.seen;
    let cd = sink.circDelta, marked = sink.circMarked;
    let prev = acc.prev, missed = acc.missed;
    for (let i = 0; i < n; i++) {
      const off = i * FLOW_KEY_WORDS, w = i * V_W;
      // The predicted slot: the one that followed the previous row last time; after a new row (no
      // follow link yet), the prediction it did not take (a row inserted before it).
      let s = prev >= 0 ? i32[prev * REC_W + W_FOLLOW]! : this.firstSlot;
      if (s < 0) s = missed;
      let b = s * REC_W;
      missed = -1;
      if (s >= 0 && !this.holds(s, kw, off)) {
        // Not it: a row deleted since (try the slot that followed the predicted one), or inserted.
        missed = s;
        s = i32[b + W_FOLLOW]!;
        b = s * REC_W;
        if (s >= 0 && !this.holds(s, kw, off)) s = -1;
      }
      if (s < 0) {
        s = this.find(kw, off);
        b = s * REC_W;
      } else missed = -1;
      if (s >= 0 && (u[b + W_START] !== vw[w + V_START] || u[b + W_START + 1] !== vw[w + V_START + 1])) {
        sink.free(s); // another connection under the same key: starts over
        s = -1;
      }
      if (s < 0) {
        s = sink.admitRow(i, kw, off, vw, w);
        if (s === -2) continue;
        if (s < 0) { acc.skipped++; continue; }
        u = this.u32; i32 = this.i32; f = this.f64; seen = this.seen; // the store may have grown
        b = s * REC_W;
      }
      if (prev >= 0) i32[prev * REC_W + W_FOLLOW] = s;
      else this.firstSlot = s;
      prev = s;
      seen[s] = seq;
      const h = b >> 1;
      const last = vw[w + V_SEEN]! + vw[w + V_SEEN + 1]! * TWO32;
      if (last === f[h + F_SEEN]) {
        if (dtS > 0) f[h + F_RATE] = f[h + F_RATE + 1] = 0;
      } else {
        f[h + F_SEEN] = last;
        const bd = vw[w + V_BYTES]! + vw[w + V_BYTES + 1]! * TWO32, bu = vw[w + V_BYTES + 2]! + vw[w + V_BYTES + 3]! * TWO32;
        const pd = vw[w + V_PKTS]! + vw[w + V_PKTS + 1]! * TWO32, pu = vw[w + V_PKTS + 2]! + vw[w + V_PKTS + 3]! * TWO32;
        const rd = vw[w + V_RET]!, ru = vw[w + V_RET + 1]!;
        const obd = f[h + F_BYTES]!, obu = f[h + F_BYTES + 1]!, opd = f[h + F_PKTS]!, opu = f[h + F_PKTS + 1]!;
        const ord = u[b + W_RET]!, oru = u[b + W_RET + 1]!;
        if (dtS > 0) {
          f[h + F_RATE] = (bd > obd ? bd - obd : 0) * 8 / dtS;
          f[h + F_RATE + 1] = (bu > obu ? bu - obu : 0) * 8 / dtS;
        }
        f[h + F_BYTES] = bd; f[h + F_BYTES + 1] = bu; f[h + F_PKTS] = pd; f[h + F_PKTS + 1] = pu;
        u[b + W_RET] = rd; u[b + W_RET + 1] = ru;
        u[b + W_NEXT] = vw[w + V_NEXT]!; u[b + W_NEXT + 1] = vw[w + V_NEXT + 1]!;
        u[b + W_SYN] = vw[w + V_SYN]!; u[b + W_SYN + 1] = vw[w + V_SYN + 1]!;
        u[b + W_RTT] = vw[w + V_RTT]!; u[b + W_RTT + 1] = vw[w + V_RTT + 1]!;
        u[b + W_MISC] = vw[w + V_MISC]! & 0xffffff;
        const tc = vw[w + V_TC]!, cLo = vw[w + V_CIRC]!, cHi = vw[w + V_CIRC + 1]!;
        if (cLo !== u[b + W_CIRC] || cHi !== u[b + W_CIRC + 1] || tc !== u[b + W_TC]) {
          const moved = cLo !== u[b + W_CIRC] || cHi !== u[b + W_CIRC + 1];
          u[b + W_TC] = tc; u[b + W_CIRC] = cLo; u[b + W_CIRC + 1] = cHi;
          sink.relink(s, ABSORB.CHANGED | (moved ? ABSORB.MOVED : ABSORB.TC));
          cd = sink.circDelta; marked = sink.circMarked; // may have been widened
        }
        if ((kw[off + 9]! & 0xff) === 6) {
          const cid = i32[b + W_CID]!, c = cid * 4;
          if (!marked[cid]) {
            marked[cid] = 1;
            sink.circTouched.push(cid);
          }
          cd[c] += rd > ord ? rd - ord : 0;
          cd[c + 1] += ru > oru ? ru - oru : 0;
          cd[c + 2] += pd > opd ? pd - opd : 0;
          cd[c + 3] += pu > opu ? pu - opu : 0;
        }
      }
      const idle = nowNs - f[h + F_SEEN]!, end = u[b + W_MISC]! & 0xff;
      const done = end !== 0 && idle >= graceNs;
      if (!done && idle < idleNs) continue;
      sink.retireRow(s, i, done ? (end === 2 ? 'rst' : 'fin') : 'idle');
    }
    acc.prev = prev;
    acc.missed = missed;
  }

  /** True when slot s is live and holds the key at word `off` of `k`. */
  private holds(s: number, k: Uint32Array, off: number): boolean {
    return this.i32[s * REC_W + W_POS]! >= 0 && this.sameKey(s, k, off);
  }

  // -------------------------------------------------------------------------------------------
  // Fields of slot s

  seenNs(s: number): number { return this.f64[s * (REC_W / 2) + F_SEEN]!; }
  bytesD(s: number): number { return this.f64[s * (REC_W / 2) + F_BYTES]!; }
  bytesU(s: number): number { return this.f64[s * (REC_W / 2) + F_BYTES + 1]!; }
  pktsD(s: number): number { return this.f64[s * (REC_W / 2) + F_PKTS]!; }
  pktsU(s: number): number { return this.f64[s * (REC_W / 2) + F_PKTS + 1]!; }
  rateD(s: number): number { return this.f64[s * (REC_W / 2) + F_RATE]!; }
  rateU(s: number): number { return this.f64[s * (REC_W / 2) + F_RATE + 1]!; }
  /** Rate down + up (bits/s). */
  rate(s: number): number { const h = s * (REC_W / 2) + F_RATE; return this.f64[h]! + this.f64[h + 1]!; }
  retD(s: number): number { return this.u32[s * REC_W + W_RET]!; }
  retU(s: number): number { return this.u32[s * REC_W + W_RET + 1]!; }
  rttC(s: number): number { return this.u32[s * REC_W + W_RTT]!; }
  rttI(s: number): number { return this.u32[s * REC_W + W_RTT + 1]!; }
  tc(s: number): number { return this.u32[s * REC_W + W_TC]!; }
  circLo(s: number): number { return this.u32[s * REC_W + W_CIRC]!; }
  circHi(s: number): number { return this.u32[s * REC_W + W_CIRC + 1]!; }
  /** 0 open, 1 fin, 2 rst. */
  endSt(s: number): number { return this.u32[s * REC_W + W_MISC]! & 0xff; }
  isTcp(s: number): boolean { return (this.u32[s * REC_W + 9]! & 0xff) === 6; }
  /** Circuit index (CircuitIds) or -1. */
  cid(s: number): number { return this.i32[s * REC_W + W_CID]!; }
  setCid(s: number, cid: number): void { this.i32[s * REC_W + W_CID] = cid; }
  /** Snapshot enrichment cache tag (-1 = not looked up yet). */
  tag(s: number): number { return this.i32[s * REC_W + W_TAG]!; }
  setTag(s: number, tag: number): void { this.i32[s * REC_W + W_TAG] = tag; }
  /** Forget every slot's tag. */
  clearTags(): void {
    for (let s = 0; s < this.cap; s++) this.i32[s * REC_W + W_TAG] = -1;
  }
  localIp(s: number): string { return decodeAddr(this.keyBuf, s * REC_B); }
  remoteIp(s: number): string { return decodeAddr(this.keyBuf, s * REC_B + ADDR_SIZE); }
  /** The remote address as an unsigned 32-bit number when it is IPv4 (IPv4-mapped in the key), else -1. */
  remoteV4(s: number): number {
    const u = this.u32, b = s * REC_W + ADDR_SIZE / 4;
    if (u[b] !== 0 || u[b + 1] !== 0 || u[b + 2] !== 0xffff0000) return -1;
    const x = u[b + 3]!; // bytes a.b.c.d in memory order
    return ((x & 0xff) * 16777216) + ((x >>> 8) & 0xff) * 65536 + ((x >>> 16) & 0xff) * 256 + (x >>> 24);
  }

  /**
   * The decoded flow in slot s with its rates: one literal (no object spread: spreading into a
   * literal this size takes V8's slow path, ~15 µs per flow).
   */
  entry(s: number): FlowEntry & { rateBps: PerDirection } {
    const u = this.u32, b = s * REC_W, misc = u[b + W_MISC]!, f = (misc >>> 8) & 0xff;
    const k = readFlowKey(this.keyBuf, s * REC_B);
    return {
      proto: k.proto, localIp: k.localIp, localPort: k.localPort, remoteIp: k.remoteIp, remotePort: k.remotePort, id: flowId(k),
      startNs: (BigInt(u[b + W_START + 1]!) << 32n) | BigInt(u[b + W_START]!),
      lastSeenNs: BigInt(this.seenNs(s)),
      bytes: { down: this.bytesD(s), up: this.bytesU(s) },
      packets: { down: this.pktsD(s), up: this.pktsU(s) },
      retransmits: { down: this.retD(s), up: this.retU(s) },
      nextSeq: { down: f & FLOWF.SEQ_DOWN ? u[b + W_NEXT]! : null, up: f & FLOWF.SEQ_UP ? u[b + W_NEXT + 1]! : null },
      synSeq: { down: f & FLOWF.SYN_DOWN ? u[b + W_SYN]! : null, up: f & FLOWF.SYN_UP ? u[b + W_SYN + 1]! : null },
      lastRttUs: { customer: this.rttC(s), internet: this.rttI(s) },
      tcHandle: this.tc(s),
      circuitHash: (BigInt(this.circHi(s)) << 32n) | BigInt(this.circLo(s)),
      endStatus: END[misc & 0xff] ?? 'open',
      tos: (misc >>> 16) & 0xff,
      rateBps: { down: this.rateD(s), up: this.rateU(s) },
    };
  }
}

/** The next capacity: a quarter more (whole KiB of slots), so a full store wastes at most a fifth. */
function growthOf(cap: number): number {
  return Math.ceil((cap * 1.25) / 1024) * 1024;
}

/** `to` (a larger typed array) with `from` copied into its start. */
export function widen<T extends Float64Array | Uint32Array | Int32Array | Uint8Array>(from: T, to: T): T {
  to.set(from);
  return to;
}
