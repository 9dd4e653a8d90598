/**
 * Byte layouts of the flow telemetry maps (bpf/lqos_flows.h, see dataplane/README.md "Flow
 * telemetry"): the flow key (`lqos_flow_key`), the flow value (`lqos_flow`), RTT events from the
 * ring buffer (`lqos_flow_event`), and `FlowDump`, a dumped table read in place. Pure: no kernel
 * access (flows.ts does the map I/O).
 */
import { ADDR_SIZE, decodeAddr, writeAddr } from './abi.ts';

export const FLOW_KEY_SIZE = 40;
export const FLOW_VALUE_SIZE = 144;
export const FLOW_EVENT_SIZE = 72;
export const FLOW_CTL_SIZE = 8;
export const MAX_FLOWS = 131072;

export const PROTO_NAMES: Record<number, string> = { 1: 'ICMP', 6: 'TCP', 17: 'UDP', 58: 'ICMPv6' };
export type EndStatus = 'open' | 'fin' | 'rst';
const END: EndStatus[] = ['open', 'fin', 'rst'];
/** struct lqos_flow flags (LQOS_FLOWF_*). */
export const FLOWF = { SEQ_DOWN: 1, SEQ_UP: 2, SYN_DOWN: 4, SYN_UP: 8 } as const;

/** A count per direction: down = toward the customer, up = from the customer. */
export interface PerDirection { down: number; up: number }

export interface FlowKey {
  proto: number;
  /** Customer-side address (IPv4 dotted / IPv6 RFC 5952). */
  localIp: string;
  localPort: number;
  remoteIp: string;
  remotePort: number;
}

/** One entry of the kernel flow table, decoded. */
export interface FlowEntry extends FlowKey {
  /** Stable text id: "proto/local/lport/remote/rport". */
  id: string;
  startNs: bigint;
  lastSeenNs: bigint;
  bytes: PerDirection;
  packets: PerDirection;
  retransmits: PerDirection;
  /** Highest sequence + payload length seen per direction (null = no payload segment seen yet). */
  nextSeq: { down: number | null; up: number | null };
  /** ISN of the last SYN (without ACK) per direction (null = none seen on this entry). */
  synSeq: { down: number | null; up: number | null };
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

export function flowId(k: FlowKey): string {
  return `${k.proto}/${k.localIp}/${k.localPort}/${k.remoteIp}/${k.remotePort}`;
}

// ---------------------------------------------------------------------------------------------
// Keys, values, events

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

/** A u32 field pair (down at `off`, up at `off + 4`) valid per the flag bits `fDown`/`fUp`. */
function flagged(vals: Buffer, v: number, off: number, fDown: number, fUp: number): { down: number | null; up: number | null } {
  const flags = vals[v + 125]!;
  return { down: flags & fDown ? vals.readUInt32LE(v + off) : null, up: flags & fUp ? vals.readUInt32LE(v + off + 4) : null };
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
    nextSeq: flagged(vals, v, 56, FLOWF.SEQ_DOWN, FLOWF.SEQ_UP),
    synSeq: flagged(vals, v, 136, FLOWF.SYN_DOWN, FLOWF.SYN_UP),
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
  let flags = 0;
  const seqs: [number | null | undefined, number, number][] = [
    [f.nextSeq?.down, 56, FLOWF.SEQ_DOWN], [f.nextSeq?.up, 60, FLOWF.SEQ_UP], [f.synSeq?.down, 136, FLOWF.SYN_DOWN], [f.synSeq?.up, 140, FLOWF.SYN_UP],
  ];
  for (const [val, off, bit] of seqs) {
    if (val === null || val === undefined) continue;
    out.writeUInt32LE(val >>> 0, v + off);
    flags |= bit;
  }
  out[v + 125] = flags;
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

/** The fields of an RTT event record the tracker needs, without decoding the key (null: not an RTT record). */
export function readRttCore(b: Buffer): { rttUs: number; side: 0 | 1; tcHandle: number; circuitHash: bigint } | null {
  if (b.length < FLOW_EVENT_SIZE || b[64] !== 1) return null;
  return { rttUs: b.readUInt32LE(56), side: b[65] === 0 ? 0 : 1, tcHandle: b.readUInt32LE(60), circuitHash: b.readBigUInt64LE(48) };
}

/** The flow switch (`flow_ctl[0]`: u32 disabled, u32 rtt_gap_ms). */
export interface FlowControl {
  /** false: XDP does no flow work at all. Default true. */
  enabled: boolean;
  /** Minimum gap between ring-buffer RTT events per flow and side (ms); default 100. */
  rttGapMs: number;
}

export function encodeFlowControl(c: FlowControl): Buffer {
  const v = Buffer.alloc(FLOW_CTL_SIZE);
  v.writeUInt32LE(c.enabled ? 0 : 1, 0);
  v.writeUInt32LE(Math.max(0, Math.round(c.rttGapMs)), 4);
  return v;
}

export function decodeFlowControl(v: Buffer): FlowControl {
  return { enabled: v.readUInt32LE(0) === 0, rttGapMs: v.readUInt32LE(4) || 100 };
}

// ---------------------------------------------------------------------------------------------
// Raw keys and the dumped table, read as u32 words (no decoding of unchanged flows)

export const FLOW_KEY_WORDS = FLOW_KEY_SIZE / 4;
const TWO32 = 4294967296;

/** Uint32 view of a buffer (copied when unaligned). */
function words(b: Buffer): Uint32Array {
  if (b.byteOffset % 4 === 0) return new Uint32Array(b.buffer, b.byteOffset, b.length >>> 2);
  const c = new Uint8Array(b.length);
  c.set(b);
  return new Uint32Array(c.buffer, 0, b.length >>> 2);
}

/** Copy of the packed key at `off` (a dumped key or the key at the start of an RTT event) as u32 words. */
export function flowKeyWords(b: Buffer, off = 0): Uint32Array {
  const w = new Uint32Array(FLOW_KEY_WORDS);
  for (let j = 0; j < FLOW_KEY_WORDS; j++) w[j] = b.readUInt32LE(off + j * 4);
  return w;
}

/**
 * The u32 words of a flow value that tell whether a row is another flow under the same key (start
 * time), was seen again (low word of last_seen) or moved to another circuit (circuit hash).
 */
export interface FlowStamp {
  startLo: number;
  startHi: number;
  seenLo: number;
  circLo: number;
  circHi: number;
}

/** u32 word indexes of struct lqos_flow fields. */
const W = { start: 0, seen: 2, bytes: 4, packets: 8, retrans: 12, nextSeq: 14, rtt: 28, tcHandle: 30, circuit: 32, synSeq: 34 } as const;

/** A dumped flow table (packed keys and values) read in place. */
export class FlowDump {
  readonly count: number;
  /** All keys as u32 words: row i's key is at [i * FLOW_KEY_WORDS, (i + 1) * FLOW_KEY_WORDS). */
  readonly keyWords: Uint32Array;
  private readonly keys: Buffer;
  private readonly values: Buffer;
  private readonly vw: Uint32Array;

  constructor(d: { keys: Buffer; values: Buffer; count: number }) {
    this.count = d.count;
    this.keys = d.keys;
    this.values = d.values;
    this.keyWords = words(d.keys);
    this.vw = words(d.values);
  }

  /** The packed key of row i (a view into the dump). */
  key(i: number): Buffer {
    const ko = i * FLOW_KEY_SIZE;
    return this.keys.subarray(ko, ko + FLOW_KEY_SIZE);
  }

  /** Row i fully decoded. */
  entry(i: number): FlowEntry {
    return readFlowEntry(this.keys, i * FLOW_KEY_SIZE, this.values, i * FLOW_VALUE_SIZE);
  }

  stamp(i: number): FlowStamp {
    const w = (i * FLOW_VALUE_SIZE) >>> 2, vw = this.vw;
    return { startLo: vw[w + W.start]!, startHi: vw[w + W.start + 1]!, seenLo: vw[w + W.seen]!, circLo: vw[w + W.circuit]!, circHi: vw[w + W.circuit + 1]! };
  }

  /** Whether row i started at the stamp's start time (the same flow, not a new one under its key). */
  sameStart(i: number, s: FlowStamp): boolean {
    const w = (i * FLOW_VALUE_SIZE) >>> 2;
    return this.vw[w + W.start] === s.startLo && this.vw[w + W.start + 1] === s.startHi;
  }

  /** last_seen of row i in ns (as a double). */
  lastSeenNs(i: number): number {
    const w = (i * FLOW_VALUE_SIZE) >>> 2;
    return this.vw[w + W.seen]! + this.vw[w + W.seen + 1]! * TWO32;
  }

  /**
   * Update `e` (decoded from an earlier dump of the same flow, stamped `s`) to row i in place: the
   * counters always, last_seen and the circuit hash only when their words changed. Returns true
   * when the circuit hash changed.
   */
  refresh(i: number, e: FlowEntry, s: FlowStamp): boolean {
    const v = i * FLOW_VALUE_SIZE, w = v >>> 2, vw = this.vw, V = this.values;
    const seenLo = vw[w + W.seen]!;
    if (seenLo !== s.seenLo) {
      s.seenLo = seenLo;
      e.lastSeenNs = V.readBigUInt64LE(v + 8);
    }
    e.bytes.down = (vw[w + W.bytes]! + vw[w + W.bytes + 1]! * TWO32);
    e.bytes.up = (vw[w + W.bytes + 2]! + vw[w + W.bytes + 3]! * TWO32);
    e.packets.down = (vw[w + W.packets]! + vw[w + W.packets + 1]! * TWO32);
    e.packets.up = (vw[w + W.packets + 2]! + vw[w + W.packets + 3]! * TWO32);
    e.retransmits.down = vw[w + W.retrans]!;
    e.retransmits.up = vw[w + W.retrans + 1]!;
    const flags = V[v + 125]!;
    e.nextSeq.down = flags & FLOWF.SEQ_DOWN ? vw[w + W.nextSeq]! : null;
    e.nextSeq.up = flags & FLOWF.SEQ_UP ? vw[w + W.nextSeq + 1]! : null;
    e.synSeq.down = flags & FLOWF.SYN_DOWN ? vw[w + W.synSeq]! : null;
    e.synSeq.up = flags & FLOWF.SYN_UP ? vw[w + W.synSeq + 1]! : null;
    e.lastRttUs.customer = vw[w + W.rtt]!;
    e.lastRttUs.internet = vw[w + W.rtt + 1]!;
    e.tcHandle = vw[w + W.tcHandle]!;
    e.endStatus = END[V[v + 124]!] ?? 'open';
    e.tos = V[v + 126]!;
    const cLo = vw[w + W.circuit]!, cHi = vw[w + W.circuit + 1]!;
    if (cLo === s.circLo && cHi === s.circHi) return false;
    s.circLo = cLo;
    s.circHi = cHi;
    e.circuitHash = V.readBigUInt64LE(v + 128);
    return true;
  }
}
