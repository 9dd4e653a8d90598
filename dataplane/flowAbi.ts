/**
 * Byte layouts of the flow telemetry maps (bpf/lqos_flows.h, see dataplane/README.md "Flow
 * telemetry"): the flow key (`lqos_flow_key`), the flow value (`lqos_flow`), RTT events from the
 * ring buffer (`lqos_flow_event`, read by `readRttCore`). Pure: no kernel
 * access (flows.ts does the map I/O).
 */
import { ADDR_SIZE, decodeAddr, writeAddr } from './abi.ts';

export const FLOW_KEY_SIZE = 40;
export const FLOW_VALUE_SIZE = 144;
/** struct lqos_flow_row: a table row as userspace reads it (the flow table reader's output, or compactFlowValues). */
export const FLOW_ROW_SIZE = 96;
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

/** The packed flow key as u32 words (the tracker's store keeps keys this way). */
export const FLOW_KEY_WORDS = FLOW_KEY_SIZE / 4;

/**
 * Rewrite `n` struct lqos_flow values (FLOW_VALUE_SIZE each, as a batch lookup returns them) as
 * struct lqos_flow_row (FLOW_ROW_SIZE each) into `rows`, as bpf/lqos_flow_scan.c writes them:
 * words 0-15 as they are (start .. next_seq), then rtt_us, tc_handle, end/flags/tos, circuit_hash
 * and syn_seq; the RTT matching state is left out.
 */
export function compactFlowValues(values: Uint32Array, rows: Uint32Array, n: number): void {
  // Unrolled: a loop over the first 16 words ran at half this speed (7 ms per 100k rows).
  for (let i = 0, v = 0, r = 0; i < n; i++, v += FLOW_VALUE_SIZE >>> 2, r += FLOW_ROW_SIZE >>> 2) {
    rows[r] = values[v]!; rows[r + 1] = values[v + 1]!; rows[r + 2] = values[v + 2]!; rows[r + 3] = values[v + 3]!;
    rows[r + 4] = values[v + 4]!; rows[r + 5] = values[v + 5]!; rows[r + 6] = values[v + 6]!; rows[r + 7] = values[v + 7]!;
    rows[r + 8] = values[v + 8]!; rows[r + 9] = values[v + 9]!; rows[r + 10] = values[v + 10]!; rows[r + 11] = values[v + 11]!;
    rows[r + 12] = values[v + 12]!; rows[r + 13] = values[v + 13]!; rows[r + 14] = values[v + 14]!; rows[r + 15] = values[v + 15]!;
    rows[r + 16] = values[v + 28]!; // rtt_us
    rows[r + 17] = values[v + 29]!;
    rows[r + 18] = values[v + 30]!; // tc_handle
    rows[r + 19] = values[v + 31]! & 0xffffff; // end_status, flags, tos (pad 0)
    rows[r + 20] = values[v + 32]!; // circuit_hash
    rows[r + 21] = values[v + 33]!;
    rows[r + 22] = values[v + 34]!; // syn_seq
    rows[r + 23] = values[v + 35]!;
  }
}
