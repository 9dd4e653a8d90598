/**
 * Flow telemetry: userspace side of the XDP flow table (`flows`, LRU hash), the RTT event ring
 * buffer (`flow_events`) and the switch (`flow_ctl`) defined in bpf/lqos_flows.h.
 *
 * Low level: encode/decode of the ABI, `readFlows` (batch dump), `deleteFlows` (batch delete),
 * `setFlowControl`, `openRttEvents` (ring_buffer__consume driven by the caller's timer).
 * High level: `FlowTracker.poll()` — reads the table, computes per-flow rates, expires idle and
 * finished flows (kept in a "recently finished" list for the UI), folds RTT events into per-flow and
 * per-circuit sample windows, and answers top flows / per-circuit RTT percentiles / retransmit rates.
 *
 * Everything is synchronous (short syscalls); pinned maps are opened from `pinRoot`.
 */
import { join } from 'node:path';
import * as bpf from './libbpf.ts';
import { ADDR_SIZE, decodeAddr, writeAddr } from './abi.ts';
import { DEFAULT_PIN_ROOT, type MapContext } from './loader.ts';

export const FLOW_KEY_SIZE = 40;
export const FLOW_VALUE_SIZE = 136;
export const FLOW_EVENT_SIZE = 72;
export const FLOW_CTL_SIZE = 8;
export const MAX_FLOWS = 131072;

export const PROTO_NAMES: Record<number, string> = { 1: 'ICMP', 6: 'TCP', 17: 'UDP', 58: 'ICMPv6' };
export type EndStatus = 'open' | 'fin' | 'rst';
const END: EndStatus[] = ['open', 'fin', 'rst'];

export interface FlowKey {
  proto: number;
  /** Customer-side address (IPv4 dotted / IPv6 RFC 5952). */
  localIp: string;
  localPort: number;
  remoteIp: string;
  remotePort: number;
}

/** One entry of the kernel flow table, decoded. Index down = toward the customer. */
export interface FlowEntry extends FlowKey {
  /** Stable text id: "proto/local/lport/remote/rport". */
  id: string;
  startNs: bigint;
  lastSeenNs: bigint;
  bytes: { down: number; up: number };
  packets: { down: number; up: number };
  retransmits: { down: number; up: number };
  /** Latest RTT sample per side in µs (0 = none): customer side / Internet side. */
  lastRttUs: { customer: number; internet: number };
  tcHandle: number;
  circuitHash: bigint;
  endStatus: EndStatus;
  tos: number;
}

export interface RttEvent extends FlowKey {
  id: string;
  timeNs: bigint;
  rttUs: number;
  side: 'customer' | 'internet';
  tcHandle: number;
  circuitHash: bigint;
}

// ---------------------------------------------------------------------------------------------
// ABI

export function flowId(k: FlowKey): string {
  return `${k.proto}/${k.localIp}/${k.localPort}/${k.remoteIp}/${k.remotePort}`;
}

export function writeFlowKey(k: FlowKey, out: Buffer, off = 0): void {
  out.fill(0, off, off + FLOW_KEY_SIZE);
  writeAddr(k.localIp, out, off);
  writeAddr(k.remoteIp, out, off + ADDR_SIZE);
  out.writeUInt16LE(k.localPort, off + 32);
  out.writeUInt16LE(k.remotePort, off + 34);
  out[off + 36] = k.proto;
}

export function encodeFlowKey(k: FlowKey): Buffer {
  const b = Buffer.alloc(FLOW_KEY_SIZE);
  writeFlowKey(k, b, 0);
  return b;
}

export function readFlowKey(b: Buffer, off = 0): FlowKey {
  return {
    localIp: decodeAddr(b, off),
    remoteIp: decodeAddr(b, off + ADDR_SIZE),
    localPort: b.readUInt16LE(off + 32),
    remotePort: b.readUInt16LE(off + 34),
    proto: b[off + 36]!,
  };
}

/** Decode key + value (value layout: struct lqos_flow, see bpf/lqos_abi.h). */
export function readFlowEntry(keys: Buffer, koff: number, vals: Buffer, v: number): FlowEntry {
  const k = readFlowKey(keys, koff);
  return {
    ...k,
    id: flowId(k),
    startNs: vals.readBigUInt64LE(v),
    lastSeenNs: vals.readBigUInt64LE(v + 8),
    bytes: { down: Number(vals.readBigUInt64LE(v + 16)), up: Number(vals.readBigUInt64LE(v + 24)) },
    packets: { down: Number(vals.readBigUInt64LE(v + 32)), up: Number(vals.readBigUInt64LE(v + 40)) },
    retransmits: { down: vals.readUInt32LE(v + 48), up: vals.readUInt32LE(v + 52) },
    lastRttUs: { customer: vals.readUInt32LE(v + 112), internet: vals.readUInt32LE(v + 116) },
    tcHandle: vals.readUInt32LE(v + 120),
    endStatus: END[vals[v + 124]!] ?? 'open',
    tos: vals[v + 126]!,
    circuitHash: vals.readBigUInt64LE(v + 128),
  };
}

/** Encode a flow value (tests and the benchmark populate the table from userspace). */
export function writeFlowValue(f: Partial<Omit<FlowEntry, keyof FlowKey | 'id'>>, out: Buffer, v = 0): void {
  out.fill(0, v, v + FLOW_VALUE_SIZE);
  out.writeBigUInt64LE(f.startNs ?? 0n, v);
  out.writeBigUInt64LE(f.lastSeenNs ?? f.startNs ?? 0n, v + 8);
  out.writeBigUInt64LE(BigInt(f.bytes?.down ?? 0), v + 16);
  out.writeBigUInt64LE(BigInt(f.bytes?.up ?? 0), v + 24);
  out.writeBigUInt64LE(BigInt(f.packets?.down ?? 0), v + 32);
  out.writeBigUInt64LE(BigInt(f.packets?.up ?? 0), v + 40);
  out.writeUInt32LE(f.retransmits?.down ?? 0, v + 48);
  out.writeUInt32LE(f.retransmits?.up ?? 0, v + 52);
  out.writeUInt32LE(f.lastRttUs?.customer ?? 0, v + 112);
  out.writeUInt32LE(f.lastRttUs?.internet ?? 0, v + 116);
  out.writeUInt32LE(f.tcHandle ?? 0, v + 120);
  out[v + 124] = Math.max(0, END.indexOf(f.endStatus ?? 'open'));
  out[v + 126] = f.tos ?? 0;
  out.writeBigUInt64LE(BigInt.asUintN(64, f.circuitHash ?? 0n), v + 128);
}

export function readRttEvent(b: Buffer): RttEvent | null {
  if (b.length < FLOW_EVENT_SIZE || b[64] !== 1) return null;
  const k = readFlowKey(b, 0);
  return {
    ...k,
    id: flowId(k),
    timeNs: b.readBigUInt64LE(40),
    circuitHash: b.readBigUInt64LE(48),
    rttUs: b.readUInt32LE(56),
    tcHandle: b.readUInt32LE(60),
    side: b[65] === 0 ? 'customer' : 'internet',
  };
}

// ---------------------------------------------------------------------------------------------
// Map access

const fds = new Map<string, number>();
function fdOf(name: 'flows' | 'flow_events' | 'flow_ctl', ctx?: MapContext): number {
  const path = join(ctx?.pinRoot ?? DEFAULT_PIN_ROOT, name);
  let fd = fds.get(path);
  if (fd === undefined) {
    fd = bpf.objGet(path);
    fds.set(path, fd);
  }
  return fd;
}

/** Close cached map fds (after a teardown/re-pin, or in tests). */
export function closeFlowMaps(ctx?: MapContext): void {
  const root = ctx?.pinRoot ?? DEFAULT_PIN_ROOT;
  for (const [path, fd] of fds) {
    if (path.startsWith(root + '/')) {
      bpf.closeFd(fd);
      fds.delete(path);
    }
  }
}

/** Dump the flow table (BPF_MAP_LOOKUP_BATCH). Raw buffers, for callers that decode lazily. */
export function dumpFlowsRaw(ctx?: MapContext): { keys: Buffer; values: Buffer; count: number } {
  return bpf.mapDump(fdOf('flows', ctx), FLOW_KEY_SIZE, FLOW_VALUE_SIZE, 8192);
}

export function readFlows(ctx?: MapContext): FlowEntry[] {
  const d = dumpFlowsRaw(ctx);
  const out: FlowEntry[] = new Array(d.count);
  for (let i = 0; i < d.count; i++) out[i] = readFlowEntry(d.keys, i * FLOW_KEY_SIZE, d.values, i * FLOW_VALUE_SIZE);
  return out;
}

/** Delete flows (missing ones ignored). `keys` are packed 40-byte keys or FlowKey objects. */
export function deleteFlows(keys: Buffer | FlowKey[], ctx?: MapContext): number {
  let buf: Buffer;
  if (Buffer.isBuffer(keys)) buf = keys;
  else {
    buf = Buffer.alloc(keys.length * FLOW_KEY_SIZE);
    keys.forEach((k, i) => writeFlowKey(k, buf, i * FLOW_KEY_SIZE));
  }
  const n = buf.length / FLOW_KEY_SIZE;
  bpf.mapDeleteBatch(fdOf('flows', ctx), buf, n, FLOW_KEY_SIZE);
  return n;
}

/** Insert flows from userspace (packed keys/values); tests and benchmarks. */
export function writeFlows(keys: Buffer, values: Buffer, count: number, ctx?: MapContext): 'batch' | 'loop' {
  return bpf.mapUpdateBatch(fdOf('flows', ctx), keys, values, count, FLOW_KEY_SIZE, FLOW_VALUE_SIZE);
}

export interface FlowControl {
  /** false: XDP does no flow work at all. Default true. */
  enabled: boolean;
  /** Minimum gap between ring-buffer RTT events per flow and side (ms); default 100. */
  rttGapMs: number;
}

export function setFlowControl(c: Partial<FlowControl>, ctx?: MapContext): void {
  const cur = getFlowControl(ctx);
  const v = Buffer.alloc(FLOW_CTL_SIZE);
  v.writeUInt32LE((c.enabled ?? cur.enabled) ? 0 : 1, 0);
  v.writeUInt32LE(Math.max(0, Math.round(c.rttGapMs ?? cur.rttGapMs)), 4);
  bpf.mapUpdateElem(fdOf('flow_ctl', ctx), Buffer.alloc(4), v);
}

export function getFlowControl(ctx?: MapContext): FlowControl {
  const v = Buffer.alloc(FLOW_CTL_SIZE);
  bpf.mapLookupElem(fdOf('flow_ctl', ctx), Buffer.alloc(4), v);
  return { enabled: v.readUInt32LE(0) === 0, rttGapMs: v.readUInt32LE(4) || 100 };
}

/** RTT event consumer. Call `consume()` from a timer; events arrive synchronously in `onEvent`. */
export function openRttEvents(onEvent: (e: RttEvent) => void, ctx?: MapContext): bpf.RingBufferReader {
  return bpf.ringBufferOpen(fdOf('flow_events', ctx), (rec) => {
    const e = readRttEvent(rec);
    if (e) onEvent(e);
  });
}

// ---------------------------------------------------------------------------------------------
// Statistics helpers

/** Nearest-rank percentile of an unsorted sample list (null when empty). */
export function percentile(values: number[], p: number): number | null {
  if (values.length === 0) return null;
  const s = Float64Array.from(values).sort();
  const idx = Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1));
  return s[idx]!;
}

export interface Percentiles { p50: number | null; p90: number | null; p99: number | null; samples: number }

function pct(values: number[]): Percentiles {
  if (values.length === 0) return { p50: null, p90: null, p99: null, samples: 0 };
  const s = Float64Array.from(values).sort();
  const at = (p: number) => s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))]!;
  return { p50: at(50), p90: at(90), p99: at(99), samples: s.length };
}

// ---------------------------------------------------------------------------------------------
// Tracker

export interface ActiveFlow extends FlowEntry {
  /** bits/s over the last poll interval. */
  rateBps: { down: number; up: number };
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

export interface CircuitFlowStats {
  circuitHash: bigint;
  tcHandle: number;
  activeFlows: number;
  bytes: { down: number; up: number };
  rateBps: { down: number; up: number };
  /** RTT percentiles (ms) over the sample window: per side and their per-flow sum. */
  rtt: { customer: Percentiles; internet: Percentiles };
  /** TCP retransmits / TCP packets over the retransmit window, per direction. */
  retransmits: { down: number; up: number; packetsDown: number; packetsUp: number; pctDown: number | null; pctUp: number | null };
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
}

interface Tracked {
  /** 52-bit hash of the raw key (internal map key) and the key words for verification. */
  raw: number;
  words: Uint32Array;
  entry: FlowEntry;
  startLo: number;
  startHi: number;
  seenLo: number;
  circLo: number;
  circHi: number;
  /** pollSeq of the last poll that saw it in the table */
  seen: number;
  prevBytesDown: number;
  prevBytesUp: number;
  prevPacketsDown: number;
  prevPacketsUp: number;
  prevRetransDown: number;
  prevRetransUp: number;
  rateBps: { down: number; up: number };
  rtt: { customer: number[]; internet: number[] };
  circ: CircuitAcc | null;
}

interface CircuitAcc {
  hash: bigint;
  tcHandle: number;
  rtt: { customer: Array<[number, number]>; internet: Array<[number, number]> }; // [wall ms, rtt ms]
  retrans: Array<{ t: number; rd: number; ru: number; pd: number; pu: number }>;
  dead?: boolean;
  /** Deltas accumulated during the current poll. */
  cur: { rd: number; ru: number; pd: number; pu: number } | null;
}

const RTT_PER_FLOW = 32;
const RTT_PER_CIRCUIT = 2048;
const TWO32 = 4294967296;
const u64n = (b: Buffer, o: number) => b.readUInt32LE(o) + b.readUInt32LE(o + 4) * TWO32;
const KEY_WORDS = FLOW_KEY_SIZE / 4;

/** 52-bit hash of a packed 40-byte key (two FNV-1a style 32-bit lanes). */
function keyHash(b: Buffer, o: number): number {
  let h1 = 0x811c9dc5, h2 = 0x01000193;
  for (let j = 0; j < KEY_WORDS; j++) {
    const w = b.readUInt32LE(o + j * 4);
    h1 = Math.imul(h1 ^ w, 16777619);
    h2 = Math.imul(h2 ^ w, 0x5bd1e995) ^ (h2 >>> 15);
  }
  return (h1 >>> 0) + ((h2 >>> 0) & 0xfffff) * TWO32;
}

/** Same hash as keyHash over a Uint32Array view (little-endian host). */
function keyHashW(k: Uint32Array, o: number): number {
  let h1 = 0x811c9dc5, h2 = 0x01000193;
  for (let j = 0; j < KEY_WORDS; j++) {
    const x = k[o + j]!;
    h1 = Math.imul(h1 ^ x, 16777619);
    h2 = Math.imul(h2 ^ x, 0x5bd1e995) ^ (h2 >>> 15);
  }
  return (h1 >>> 0) + ((h2 >>> 0) & 0xfffff) * TWO32;
}

/** Uint32 view of a buffer (copied when unaligned). */
function words(b: Buffer): Uint32Array {
  if (b.byteOffset % 4 === 0) return new Uint32Array(b.buffer, b.byteOffset, b.length >>> 2);
  const c = new Uint8Array(b.length);
  c.set(b);
  return new Uint32Array(c.buffer, 0, b.length >>> 2);
}

function sameKey(t: Tracked, b: Buffer, o: number): boolean {
  for (let j = 0; j < KEY_WORDS; j++) if (t.words[j] !== b.readUInt32LE(o + j * 4)) return false;
  return true;
}

function keyWords(b: Buffer, o: number): Uint32Array {
  const w = new Uint32Array(KEY_WORDS);
  for (let j = 0; j < KEY_WORDS; j++) w[j] = b.readUInt32LE(o + j * 4);
  return w;
}

export interface PollStats {
  entries: number;
  expired: number;
  evicted: number;
  events: number;
  pollMs: number;
}

/** Read-only view of a tracked flow for aggregation without allocating views. */
export interface TrackedFlowRef {
  readonly entry: FlowEntry;
  readonly rateBps: { down: number; up: number };
}

export class FlowTracker {
  readonly ctx: MapContext;
  private readonly o: Required<Omit<FlowTrackerOptions, 'pinRoot' | 'noEvents'>>;
  /** key hash -> flow (a colliding second key lives in `collided`) */
  private readonly flows = new Map<number, Tracked>();
  private readonly collided = new Map<string, Tracked>();
  /** text id -> flow */
  private readonly byId = new Map<string, Tracked>();
  private readonly circuits = new Map<bigint, CircuitAcc>();
  private recentList: FinishedFlow[] = [];
  private events: bpf.RingBufferReader | null = null;
  private lastPollBoot = 0n;
  private lastPollWall = 0;
  private eventCount = 0;
  private pollSeq = 0;
  lastStats: PollStats = { entries: 0, expired: 0, evicted: 0, events: 0, pollMs: 0 };

  constructor(opts: FlowTrackerOptions = {}) {
    this.ctx = { pinRoot: opts.pinRoot ?? DEFAULT_PIN_ROOT };
    this.o = {
      idleTimeoutMs: opts.idleTimeoutMs ?? 30_000,
      finishedGraceMs: opts.finishedGraceMs ?? 2_000,
      recentWindowMs: opts.recentWindowMs ?? 60_000,
      recentMax: opts.recentMax ?? 20_000,
      rttWindowMs: opts.rttWindowMs ?? 30_000,
      retransWindowMs: opts.retransWindowMs ?? 10_000,
    };
    if (!opts.noEvents) {
      this.events = bpf.ringBufferOpen(fdOf('flow_events', this.ctx), (rec) => {
        const e = readRttEvent(rec);
        if (e) this.onRtt(e, rec);
      });
    }
  }

  close(): void {
    this.events?.close();
    this.events = null;
  }

  private circuit(hash: bigint, tcHandle: number): CircuitAcc {
    let c = this.circuits.get(hash);
    if (!c) {
      c = { hash, tcHandle, rtt: { customer: [], internet: [] }, retrans: [], cur: null };
      this.circuits.set(hash, c);
    }
    if (tcHandle) c.tcHandle = tcHandle;
    return c;
  }

  private lookup(b: Buffer, o: number, hash = keyHash(b, o)): Tracked | undefined {
    const t = this.flows.get(hash);
    if (!t || sameKey(t, b, o)) return t;
    return this.collided.get(b.toString('latin1', o, o + FLOW_KEY_SIZE));
  }

  private onRtt(e: RttEvent, rec: Buffer): void {
    this.eventCount++;
    const ms = e.rttUs / 1000;
    const t = this.lookup(rec, 0);
    if (t) {
      const arr = t.rtt[e.side];
      arr.push(ms);
      if (arr.length > RTT_PER_FLOW) arr.shift();
    }
    const c = this.circuit(e.circuitHash, e.tcHandle);
    const arr = c.rtt[e.side];
    arr.push([Date.now(), ms]);
    if (arr.length > RTT_PER_CIRCUIT) arr.splice(0, arr.length - RTT_PER_CIRCUIT);
  }

  /** Drain pending RTT events only (cheap; poll() does it too). */
  drainEvents(): number {
    return this.events ? this.events.consume() : 0;
  }

  /** One tick: table dump, rates, expiry, RTT events. */
  poll(): PollStats {
    const t0 = performance.now();
    const ev0 = this.eventCount;
    const seq = ++this.pollSeq;
    const nowBoot = bpf.bootTimeNs();
    const nowBootN = Number(nowBoot);
    const nowWall = Date.now();
    const dtS = this.lastPollBoot ? Number(nowBoot - this.lastPollBoot) / 1e9 : 0;
    const d = dumpFlowsRaw(this.ctx);
    const K = d.keys, V = d.values;
    const VW = words(V);
    const KW = words(K);
    const expireKeys: Buffer[] = [];
    const touched: CircuitAcc[] = [];
    let expired = 0;
    const idleNs = this.o.idleTimeoutMs * 1e6, graceNs = this.o.finishedGraceMs * 1e6;

    for (let i = 0; i < d.count; i++) {
      const ko = i * FLOW_KEY_SIZE, v = i * FLOW_VALUE_SIZE, w = v >>> 2;
      const raw = keyHashW(KW, ko >>> 2);
      let t = this.lookup(K, ko, raw);
      const sLo = VW[w]!, sHi = VW[w + 1]!;
      if (!t || t.startLo !== sLo || t.startHi !== sHi) {
        if (t) this.forget(t);
        const e = readFlowEntry(K, ko, V, v);
        t = {
          raw, words: keyWords(K, ko), entry: e, startLo: sLo, startHi: sHi, seenLo: VW[w + 2]!, circLo: VW[w + 32]!, circHi: VW[w + 33]!, seen: 0,
          // First sight: the whole history counts as this interval's delta.
          prevBytesDown: 0, prevBytesUp: 0, prevPacketsDown: 0, prevPacketsUp: 0, prevRetransDown: 0, prevRetransUp: 0,
          rateBps: { down: 0, up: 0 }, rtt: { customer: [], internet: [] }, circ: null,
        };
        const other = this.flows.get(raw);
        if (other && other !== t) this.collided.set(K.toString('latin1', ko, ko + FLOW_KEY_SIZE), t);
        else this.flows.set(raw, t);
        this.byId.set(e.id, t);
      } else {
        // Known flow: refresh the mutable fields in place (no address decoding).
        const e = t.entry;
        const lsLo = VW[w + 2]!;
        if (lsLo !== t.seenLo) {
          t.seenLo = lsLo;
          e.lastSeenNs = V.readBigUInt64LE(v + 8);
        }
        e.bytes.down = (VW[w + 4]! + VW[w + 5]! * TWO32);
        e.bytes.up = (VW[w + 6]! + VW[w + 7]! * TWO32);
        e.packets.down = (VW[w + 8]! + VW[w + 9]! * TWO32);
        e.packets.up = (VW[w + 10]! + VW[w + 11]! * TWO32);
        e.retransmits.down = VW[w + 12]!;
        e.retransmits.up = VW[w + 13]!;
        e.lastRttUs.customer = VW[w + 28]!;
        e.lastRttUs.internet = VW[w + 29]!;
        e.tcHandle = VW[w + 30]!;
        e.endStatus = END[V[v + 124]!] ?? 'open';
        e.tos = V[v + 126]!;
        const cLo = VW[w + 32]!, cHi = VW[w + 33]!;
        if (cLo !== t.circLo || cHi !== t.circHi) {
          t.circLo = cLo;
          t.circHi = cHi;
          e.circuitHash = V.readBigUInt64LE(v + 128);
          t.circ = null;
        }
      }
      t.seen = seq;
      const e = t.entry;
      if (dtS > 0) {
        t.rateBps.down = (Math.max(0, e.bytes.down - t.prevBytesDown) * 8) / dtS;
        t.rateBps.up = (Math.max(0, e.bytes.up - t.prevBytesUp) * 8) / dtS;
      }
      if (e.proto === 6) {
        if (!t.circ || t.circ.dead) t.circ = this.circuit(e.circuitHash, e.tcHandle);
        const c = t.circ;
        if (!c.cur) {
          c.cur = { rd: 0, ru: 0, pd: 0, pu: 0 };
          touched.push(c);
        }
        c.cur.rd += Math.max(0, e.retransmits.down - t.prevRetransDown);
        c.cur.ru += Math.max(0, e.retransmits.up - t.prevRetransUp);
        c.cur.pd += Math.max(0, e.packets.down - t.prevPacketsDown);
        c.cur.pu += Math.max(0, e.packets.up - t.prevPacketsUp);
      }
      t.prevBytesDown = e.bytes.down;
      t.prevBytesUp = e.bytes.up;
      t.prevPacketsDown = e.packets.down;
      t.prevPacketsUp = e.packets.up;
      t.prevRetransDown = e.retransmits.down;
      t.prevRetransUp = e.retransmits.up;

      const idle = nowBootN - (VW[w + 2]! + VW[w + 3]! * TWO32);
      const done = e.endStatus !== 'open' && idle >= graceNs;
      if (done || idle >= idleNs) {
        expireKeys.push(K.subarray(ko, ko + FLOW_KEY_SIZE));
        this.retire(t, nowBoot, nowWall, done ? (e.endStatus as 'fin' | 'rst') : 'idle');
        expired++;
      }
    }
    if (expireKeys.length) deleteFlows(Buffer.concat(expireKeys), this.ctx);

    // Entries that vanished without us deleting them were evicted by the LRU (table full).
    let evicted = 0;
    for (const t of [...this.allFlows()]) {
      if (t.seen === seq) continue;
      this.retire(t, nowBoot, nowWall, 'evicted');
      evicted++;
    }
    for (const c of touched) {
      c.retrans.push({ t: nowWall, ...c.cur! });
      c.cur = null;
    }
    this.drainEvents();
    this.prune(nowWall);
    this.lastPollBoot = nowBoot;
    this.lastPollWall = nowWall;
    this.lastStats = { entries: this.activeCount, expired, evicted, events: this.eventCount - ev0, pollMs: performance.now() - t0 };
    return this.lastStats;
  }

  private forget(t: Tracked): void {
    if (this.flows.get(t.raw) === t) this.flows.delete(t.raw);
    else {
      for (const [k, c] of this.collided) if (c === t) this.collided.delete(k);
    }
    this.byId.delete(t.entry.id);
  }

  private retire(t: Tracked, nowBoot: bigint, nowWall: number, reason: FinishedFlow['reason']): void {
    this.forget(t);
    this.recentList.push({ ...this.view(t, nowBoot), endedAt: nowWall, reason });
  }

  private prune(nowWall: number): void {
    const cutRecent = nowWall - this.o.recentWindowMs;
    if (this.recentList.length > this.o.recentMax) this.recentList.splice(0, this.recentList.length - this.o.recentMax);
    let i = 0;
    while (i < this.recentList.length && this.recentList[i]!.endedAt < cutRecent) i++;
    if (i) this.recentList.splice(0, i);
    const cutRtt = nowWall - this.o.rttWindowMs;
    const cutRe = nowWall - this.o.retransWindowMs;
    for (const [hash, c] of this.circuits) {
      for (const side of ['customer', 'internet'] as const) {
        const a = c.rtt[side];
        let j = 0;
        while (j < a.length && a[j]![0] < cutRtt) j++;
        if (j) a.splice(0, j);
      }
      let j = 0;
      while (j < c.retrans.length && c.retrans[j]!.t < cutRe) j++;
      if (j) c.retrans.splice(0, j);
      if (!c.rtt.customer.length && !c.rtt.internet.length && !c.retrans.length) {
        this.circuits.delete(hash);
        c.dead = true; // flows still pointing at it re-attach on their next poll

      }
    }
  }

  private view(t: Tracked, nowBoot: bigint): ActiveFlow {
    const e = t.entry;
    const med = (a: number[], lastUs: number) => (a.length ? percentile(a, 50) : lastUs ? lastUs / 1000 : null);
    return {
      ...e,
      bytes: { ...e.bytes }, packets: { ...e.packets }, retransmits: { ...e.retransmits }, lastRttUs: { ...e.lastRttUs },
      rateBps: { ...t.rateBps },
      rttMs: { customer: med(t.rtt.customer, e.lastRttUs.customer), internet: med(t.rtt.internet, e.lastRttUs.internet) },
      durationMs: Number(e.lastSeenNs - e.startNs) / 1e6,
      idleMs: Math.max(0, Number(nowBoot - e.lastSeenNs) / 1e6),
    };
  }

  private *allFlows(): IterableIterator<Tracked> {
    yield* this.flows.values();
    if (this.collided.size) yield* this.collided.values();
  }

  /** Iterate tracked flows without building views (aggregation over large tables). */
  forEachFlow(fn: (f: TrackedFlowRef) => void): void {
    for (const t of this.allFlows()) fn(t);
  }

  /** Full view of a tracked flow reference obtained from forEachFlow. */
  viewOf(ref: TrackedFlowRef): ActiveFlow {
    return this.view(ref as Tracked, this.lastPollBoot || bpf.bootTimeNs());
  }

  /** Active flows (as of the last poll). */
  active(): ActiveFlow[] {
    const now = this.lastPollBoot || bpf.bootTimeNs();
    return [...this.allFlows()].map((t) => this.view(t, now));
  }

  get activeCount(): number {
    return this.flows.size + this.collided.size;
  }

  /** Flow by text id (as of the last poll). */
  get(id: string): ActiveFlow | undefined {
    const t = this.byId.get(id);
    return t ? this.view(t, this.lastPollBoot || bpf.bootTimeNs()) : undefined;
  }

  /** Top `n` active flows by current rate (default) or total bytes. */
  top(n = 10, by: 'rate' | 'bytes' = 'rate'): ActiveFlow[] {
    const score = (t: Tracked) => (by === 'rate' ? t.rateBps.down + t.rateBps.up : t.entry.bytes.down + t.entry.bytes.up);
    const all = [...this.allFlows()];
    all.sort((a, b) => score(b) - score(a));
    const now = this.lastPollBoot || bpf.bootTimeNs();
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
      if (!s) {
        const c = this.circuits.get(hash);
        const re = { down: 0, up: 0, packetsDown: 0, packetsUp: 0, pctDown: null as number | null, pctUp: null as number | null };
        for (const r of c?.retrans ?? []) { re.down += r.rd; re.up += r.ru; re.packetsDown += r.pd; re.packetsUp += r.pu; }
        re.pctDown = re.packetsDown ? (100 * re.down) / re.packetsDown : null;
        re.pctUp = re.packetsUp ? (100 * re.up) / re.packetsUp : null;
        s = {
          circuitHash: hash, tcHandle: tc || c?.tcHandle || 0, activeFlows: 0, bytes: { down: 0, up: 0 }, rateBps: { down: 0, up: 0 },
          rtt: { customer: pct((c?.rtt.customer ?? []).map((x) => x[1])), internet: pct((c?.rtt.internet ?? []).map((x) => x[1])) },
          retransmits: re,
        };
        out.set(hash, s);
      }
      return s;
    };
    for (const t of this.allFlows()) {
      const s = get(t.entry.circuitHash, t.entry.tcHandle);
      s.activeFlows++;
      s.bytes.down += t.entry.bytes.down;
      s.bytes.up += t.entry.bytes.up;
      s.rateBps.down += t.rateBps.down;
      s.rateBps.up += t.rateBps.up;
    }
    for (const [hash, c] of this.circuits) get(hash, c.tcHandle);
    return [...out.values()];
  }

  /** Active flows of one circuit, by rate. */
  circuitFlows(circuitHash: bigint): ActiveFlow[] {
    const now = this.lastPollBoot || bpf.bootTimeNs();
    return [...this.allFlows()].filter((t) => t.entry.circuitHash === circuitHash)
      .sort((a, b) => b.rateBps.down + b.rateBps.up - (a.rateBps.down + a.rateBps.up))
      .map((t) => this.view(t, now));
  }

  get lastPollAt(): number {
    return this.lastPollWall;
  }
}
