/**
 * Flow telemetry maps: the XDP flow table (`flows`, LRU hash), the RTT event ring buffer
 * (`flow_events`) and the switch (`flow_ctl`) defined in bpf/lqos_flows.h. Batch dump and delete of
 * the table, the switch, the ring-buffer consumer (driven by the caller's timer) and the count of
 * RTT records the full ring dropped (read from dp_stats). Layouts in
 * flowAbi.ts; the tracker built on this is lib/flows/tracker.ts.
 *
 * Everything is synchronous (short syscalls); pinned maps are opened from `pinRoot`.
 */
import * as bpf from './libbpf.ts';
import {
  FLOW_CTL_SIZE, FLOW_KEY_SIZE, FLOW_VALUE_SIZE, decodeFlowControl, encodeFlowControl, readFlowEntry, writeFlowKey,
  type FlowControl, type FlowEntry, type FlowKey,
} from './flowAbi.ts';
import { PinnedFds, pinRootOf, type MapContext } from './pinned.ts';

const flowFds = new PinnedFds<'flows' | 'flow_events' | 'flow_ctl' | 'dp_stats'>();

/** dp_stats (bpf/lqos_abi.h struct lqos_stats): 16 u64 counters per CPU; RING_DROP is index 12. */
const STATS_BYTES_PER_CPU = 128;
const STAT_RING_DROP = 12;

/** Close cached map fds (after a teardown/re-pin, or in tests). */
export function closeFlowMaps(ctx?: MapContext): void {
  flowFds.forget(pinRootOf(ctx));
}

/** Dump the flow table (BPF_MAP_LOOKUP_BATCH). Raw buffers, for callers that decode lazily. */
export function dumpFlowsRaw(ctx?: MapContext): { keys: Buffer; values: Buffer; count: number } {
  return bpf.mapDump(flowFds.fd('flows', ctx), FLOW_KEY_SIZE, FLOW_VALUE_SIZE, 8192);
}

/**
 * Dump the flow table in chunks through caller-owned buffers (reused by every poll; the chunk is
 * what they hold): `onChunk(n)` reads the first `n` keys/values before the next batch overwrites
 * them. Returns the entry count. Kernels without batch lookup: one get_next_key walk, passed in chunks.
 */
export function dumpFlowsChunked(keys: Buffer, values: Buffer, onChunk: (n: number) => void, ctx?: MapContext): number {
  const fd = flowFds.fd('flows', ctx);
  const n = bpf.mapDumpChunks(fd, FLOW_KEY_SIZE, FLOW_VALUE_SIZE, keys, values, onChunk);
  if (n >= 0) return n;
  const d = bpf.mapWalk(fd, FLOW_KEY_SIZE, FLOW_VALUE_SIZE);
  const per = Math.min(keys.length / FLOW_KEY_SIZE, values.length / FLOW_VALUE_SIZE);
  for (let i = 0; i < d.count; i += per) {
    const m = Math.min(per, d.count - i);
    d.keys.copy(keys, 0, i * FLOW_KEY_SIZE, (i + m) * FLOW_KEY_SIZE);
    d.values.copy(values, 0, i * FLOW_VALUE_SIZE, (i + m) * FLOW_VALUE_SIZE);
    onChunk(m);
  }
  return d.count;
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
  bpf.mapDeleteBatch(flowFds.fd('flows', ctx), buf, n, FLOW_KEY_SIZE);
  return n;
}

/** Insert flows from userspace (packed keys/values); tests and benchmarks. */
export function writeFlows(keys: Buffer, values: Buffer, count: number, ctx?: MapContext): 'batch' | 'loop' {
  return bpf.mapUpdateBatch(flowFds.fd('flows', ctx), keys, values, count, FLOW_KEY_SIZE, FLOW_VALUE_SIZE);
}

export function setFlowControl(c: Partial<FlowControl>, ctx?: MapContext): void {
  const cur = getFlowControl(ctx);
  bpf.mapUpdateElem(flowFds.fd('flow_ctl', ctx), Buffer.alloc(4), encodeFlowControl({ enabled: c.enabled ?? cur.enabled, rttGapMs: c.rttGapMs ?? cur.rttGapMs }));
}

export function getFlowControl(ctx?: MapContext): FlowControl {
  const v = Buffer.alloc(FLOW_CTL_SIZE);
  bpf.mapLookupElem(flowFds.fd('flow_ctl', ctx), Buffer.alloc(4), v);
  return decodeFlowControl(v);
}

/**
 * RTT records lost since the programs' maps were created because the ring buffer was full
 * (dp_stats[LQOS_STAT_RING_DROP], summed over CPUs).
 */
export function readRingDrops(ctx?: MapContext): number {
  const ncpu = bpf.numPossibleCpus();
  const v = Buffer.alloc(ncpu * STATS_BYTES_PER_CPU);
  bpf.mapLookupElem(flowFds.fd('dp_stats', ctx), Buffer.alloc(4), v);
  let total = 0n;
  for (let c = 0; c < ncpu; c++) total += v.readBigUInt64LE(c * STATS_BYTES_PER_CPU + STAT_RING_DROP * 8);
  return Number(total);
}

/**
 * RTT event consumer on raw records (no decoding: the caller reads the fields it needs, see
 * flowAbi.ts readRttCore). Call `consume()` from a timer.
 */
export function openRttRecords(onRecord: (rec: Buffer) => void, ctx?: MapContext): bpf.RingBufferReader {
  return bpf.ringBufferOpen(flowFds.fd('flow_events', ctx), onRecord);
}
