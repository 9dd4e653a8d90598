/**
 * The tracker's flow store: one slot per tracked flow in typed arrays (struct of arrays), so a poll
 * over 100k flows compares and copies numbers in place and allocates nothing per flow. A slot holds
 * the packed kernel key (u32 words; addresses and the text id are decoded only when a view is
 * built), the last dumped counters and state, the rates of the last interval, the flow's circuit
 * (a small circuit index, `CircuitIds`) and a tag the snapshot uses for its enrichment cache.
 * Slots are found by a 52-bit hash of the key in an open-addressing Int32Array table (probes compare
 * the key words, so equal hashes need no special case); live slots are kept in a dense list for
 * iteration. Capacity is fixed (`maxFlows`).
 */
import { FLOW_KEY_SIZE, FLOW_KEY_WORDS, FLOWF, flowId, readFlowKey, type EndStatus, type FlowEntry, type PerDirection } from '../../dataplane/flowAbi.ts';

const END: EndStatus[] = ['open', 'fin', 'rst'];

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
  hash: bigint[] = [];
  tc: number[] = [];
  refs: number[] = [];
  private readonly free: number[] = [];

  ref(hash: bigint, tc: number): number {
    let id = this.byHash.get(hash);
    if (id === undefined) {
      id = this.free.pop() ?? this.hash.length;
      this.byHash.set(hash, id);
      this.hash[id] = hash;
      this.tc[id] = tc;
      this.refs[id] = 0;
    }
    if (tc) this.tc[id] = tc;
    this.refs[id]!++;
    return id;
  }

  unref(id: number): void {
    if (id < 0 || --this.refs[id]! > 0) return;
    this.byHash.delete(this.hash[id]!);
    this.free.push(id);
  }

  /** Upper bound of the indexes in use (arrays indexed by circuit index need this length). */
  get span(): number {
    return this.hash.length;
  }
}

/** The per-slot number fields `copyFrom` copies (everything but the key, index and list state). */
const SLOT_FIELDS = ['startLo', 'startHi', 'seenNs', 'bytesD', 'bytesU', 'pktsD', 'pktsU', 'retD', 'retU', 'rateD', 'rateU',
  'nextD', 'nextU', 'synD', 'synU', 'flags', 'rttC', 'rttI', 'tc', 'circLo', 'circHi', 'endSt', 'tos'] as const;

export class FlowStore {
  readonly cap: number;
  /** Keys: slot s at words [s * FLOW_KEY_WORDS, +FLOW_KEY_WORDS); `keyBuf` is the same memory. */
  readonly keyW: Uint32Array;
  readonly keyBuf: Buffer;
  readonly hash: Float64Array;
  readonly startLo: Uint32Array;
  readonly startHi: Uint32Array;
  /** last_seen (ns, boot clock) as a double. */
  readonly seenNs: Float64Array;
  readonly bytesD: Float64Array;
  readonly bytesU: Float64Array;
  readonly pktsD: Float64Array;
  readonly pktsU: Float64Array;
  readonly retD: Uint32Array;
  readonly retU: Uint32Array;
  /** bits/s over the last poll interval. */
  readonly rateD: Float64Array;
  readonly rateU: Float64Array;
  /** nextSeq down/up, synSeq down/up (valid per `flags`, struct lqos_flow flags). */
  readonly nextD: Uint32Array;
  readonly nextU: Uint32Array;
  readonly synD: Uint32Array;
  readonly synU: Uint32Array;
  readonly flags: Uint8Array;
  readonly rttC: Uint32Array;
  readonly rttI: Uint32Array;
  readonly tc: Uint32Array;
  readonly circLo: Uint32Array;
  readonly circHi: Uint32Array;
  readonly endSt: Uint8Array;
  readonly tos: Uint8Array;
  /** Poll sequence number of the last poll that saw the flow. */
  readonly seen: Uint32Array;
  /** Circuit index (CircuitIds) or -1. */
  readonly cid: Int32Array;
  /** Snapshot enrichment cache tag (-1 = not looked up yet). */
  readonly tag: Int32Array;
  /** Dense list of live slots (first `size` entries) and each slot's position in it. */
  readonly live: Int32Array;
  private readonly pos: Int32Array;
  private readonly freeList: Int32Array;
  private nFree: number;
  size = 0;
  /**
   * Slot index by key hash: open addressing with linear probing over an Int32Array (-1 = empty), at
   * most half full; keys with equal hashes simply sit in different buckets (probes compare the key).
   */
  private readonly table: Int32Array;
  private readonly mask: number;
  private readonly shift: number;

  constructor(cap: number) {
    this.cap = cap;
    const u32 = () => new Uint32Array(cap), f64 = () => new Float64Array(cap), u8 = () => new Uint8Array(cap);
    this.keyW = new Uint32Array(cap * FLOW_KEY_WORDS);
    this.keyBuf = Buffer.from(this.keyW.buffer, this.keyW.byteOffset, this.keyW.byteLength);
    this.hash = f64();
    this.startLo = u32(); this.startHi = u32(); this.seenNs = f64();
    this.bytesD = f64(); this.bytesU = f64(); this.pktsD = f64(); this.pktsU = f64();
    this.retD = u32(); this.retU = u32(); this.rateD = f64(); this.rateU = f64();
    this.nextD = u32(); this.nextU = u32(); this.synD = u32(); this.synU = u32(); this.flags = u8();
    this.rttC = u32(); this.rttI = u32(); this.tc = u32(); this.circLo = u32(); this.circHi = u32();
    this.endSt = u8(); this.tos = u8(); this.seen = u32();
    this.cid = new Int32Array(cap).fill(-1);
    this.tag = new Int32Array(cap).fill(-1);
    this.live = new Int32Array(cap);
    this.pos = new Int32Array(cap).fill(-1);
    this.freeList = new Int32Array(cap);
    for (let i = 0; i < cap; i++) this.freeList[i] = cap - 1 - i;
    this.nFree = cap;
    const bits = Math.max(4, Math.ceil(Math.log2(cap * 2)));
    this.table = new Int32Array(1 << bits).fill(-1);
    this.mask = (1 << bits) - 1;
    this.shift = 32 - bits;
  }

  /** True when the key words of `slot` equal the words at `off` of `k`. */
  sameKey(slot: number, k: Uint32Array, off: number): boolean {
    const w = this.keyW, b = slot * FLOW_KEY_WORDS;
    for (let j = 0; j < FLOW_KEY_WORDS; j++) if (w[b + j] !== k[off + j]) return false;
    return true;
  }

  isLive(slot: number): boolean {
    return this.pos[slot]! >= 0;
  }

  /** The slot of the key at word `off` of `k`, or -1. */
  find(k: Uint32Array, off = 0, hash = keyHash(k, off)): number {
    const t = this.table, m = this.mask;
    for (let i = home(hash, this.shift); ; i = (i + 1) & m) {
      const s = t[i]!;
      if (s < 0) return -1;
      if (this.hash[s] === hash && this.sameKey(s, k, off)) return s;
    }
  }

  /** A new slot for the key at word `off` of `k` (zeroed counters), or -1 when the store is full. */
  add(k: Uint32Array, off: number, hash: number): number {
    if (this.nFree === 0) return -1;
    const s = this.freeList[--this.nFree]!;
    this.keyW.set(k.subarray(off, off + FLOW_KEY_WORDS), s * FLOW_KEY_WORDS);
    this.hash[s] = hash;
    const t = this.table, m = this.mask;
    let i = home(hash, this.shift);
    while (t[i]! >= 0) i = (i + 1) & m;
    t[i] = s;
    this.bytesD[s] = this.bytesU[s] = this.pktsD[s] = this.pktsU[s] = this.rateD[s] = this.rateU[s] = 0;
    this.retD[s] = this.retU[s] = 0;
    this.cid[s] = -1;
    this.tag[s] = -1;
    this.pos[s] = this.size;
    this.live[this.size++] = s;
    return s;
  }

  /** Free a live slot (its circuit reference is dropped by the caller). */
  remove(s: number): void {
    this.unindex(s);
    const p = this.pos[s]!;
    const last = this.live[--this.size]!;
    this.live[p] = last;
    this.pos[last] = p;
    this.pos[s] = -1;
    this.freeList[this.nFree++] = s;
  }

  /** Take slot s out of the hash table (backward-shift deletion: no tombstones). */
  private unindex(s: number): void {
    const t = this.table, m = this.mask, sh = this.shift;
    let i = home(this.hash[s]!, sh);
    while (t[i] !== s) i = (i + 1) & m;
    for (let j = (i + 1) & m; t[j]! >= 0; j = (j + 1) & m) {
      const h = home(this.hash[t[j]!]!, sh);
      // Entry j may move into the hole at i when its home is not in the cyclic range (i, j].
      if (i <= j ? h <= i || h > j : h <= i && h > j) {
        t[i] = t[j]!;
        i = j;
      }
    }
    t[i] = -1;
  }

  /** Copy slot `s` of `src` (key, counters, state, rates, circuit words) into slot `d` of this store (not indexed). */
  copyFrom(src: FlowStore, s: number, d: number): void {
    this.keyW.set(src.keyW.subarray(s * FLOW_KEY_WORDS, (s + 1) * FLOW_KEY_WORDS), d * FLOW_KEY_WORDS);
    const a = this as unknown as Record<string, Float64Array>, b = src as unknown as Record<string, Float64Array>;
    for (const f of SLOT_FIELDS) a[f]![d] = b[f]![s]!;
    this.tag[d] = -1;
  }

  /**
   * The decoded flow in slot s with its rates: one literal (no object spread: spreading into a
   * literal this size takes V8's slow path, ~15 µs per flow).
   */
  entry(s: number): FlowEntry & { rateBps: PerDirection } {
    const f = this.flags[s]!;
    const k = readFlowKey(this.keyBuf, s * FLOW_KEY_SIZE);
    return {
      proto: k.proto, localIp: k.localIp, localPort: k.localPort, remoteIp: k.remoteIp, remotePort: k.remotePort, id: flowId(k),
      startNs: (BigInt(this.startHi[s]!) << 32n) | BigInt(this.startLo[s]!),
      lastSeenNs: BigInt(this.seenNs[s]!),
      bytes: { down: this.bytesD[s]!, up: this.bytesU[s]! },
      packets: { down: this.pktsD[s]!, up: this.pktsU[s]! },
      retransmits: { down: this.retD[s]!, up: this.retU[s]! },
      nextSeq: { down: f & FLOWF.SEQ_DOWN ? this.nextD[s]! : null, up: f & FLOWF.SEQ_UP ? this.nextU[s]! : null },
      synSeq: { down: f & FLOWF.SYN_DOWN ? this.synD[s]! : null, up: f & FLOWF.SYN_UP ? this.synU[s]! : null },
      lastRttUs: { customer: this.rttC[s]!, internet: this.rttI[s]! },
      tcHandle: this.tc[s]!,
      circuitHash: (BigInt(this.circHi[s]!) << 32n) | BigInt(this.circLo[s]!),
      endStatus: END[this.endSt[s]!] ?? 'open',
      tos: this.tos[s]!,
      rateBps: { down: this.rateD[s]!, up: this.rateU[s]! },
    };
  }
}
