/**
 * Operations on the pinned shaping maps of a loaded dataplane, from any process: IP mappings
 * (ip_to_class LPM) with hot-cache invalidation, host counters, the bypass switch, event counters and
 * the mapping epoch. Byte layouts come from abi.ts; `ctx.pinRoot` selects the pinned maps.
 */
import type { IpMapping } from '../lib/model.ts';
import * as bpf from './libbpf.ts';
import {
  ADDR_SIZE, CLASS_INFO_SIZE, HOST_COUNTER_SIZE, LPM_KEY_SIZE, HOT_ENTRY_SIZE, STATS_SIZE,
  decodeAddr, decodeLpmKey, encodeU32, writeAddr, readClassInfo, sumHostCounters, sumStats, tcHandle, writeClassInfo, writeLpmKey,
  type DataplaneStats, type HostCounters,
} from './abi.ts';
import { shapingFds, type MapContext, type PinnedMapName } from './pinned.ts';

const fdOf = (name: PinnedMapName, ctx?: MapContext) => shapingFds.fd(name, ctx);

/** Read element 0 of a u32 array map. */
function readU32(name: PinnedMapName, ctx?: MapContext): number {
  const v = Buffer.alloc(4);
  bpf.mapLookupElem(fdOf(name, ctx), encodeU32(0), v);
  return v.readUInt32LE(0);
}

function writeU32(name: PinnedMapName, value: number, ctx?: MapContext): void {
  bpf.mapUpdateElem(fdOf(name, ctx), encodeU32(0), encodeU32(value));
}

// ---------------------------------------------------------------------------------------------
// IP mappings

export interface MappingEntry {
  prefix: string;
  cpu: number;
  major: number;
  minor: number;
  tcHandle: number;
  circuitHash: bigint;
  deviceHash: bigint;
}

export interface UpdateResult { count: number; method: 'batch' | 'loop'; elapsedMs: number }

/** Insert or replace mappings (one syscall for all when the kernel supports batch ops), then invalidate the hot cache. */
export function updateMappings(mappings: IpMapping[], ctx?: MapContext): Promise<UpdateResult> {
  const t0 = performance.now();
  const n = mappings.length;
  const keys = Buffer.alloc(n * LPM_KEY_SIZE);
  const vals = Buffer.alloc(n * CLASS_INFO_SIZE);
  for (let i = 0; i < n; i++) {
    const m = mappings[i]!;
    writeLpmKey(m.prefix, keys, i * LPM_KEY_SIZE);
    writeClassInfo({ cpu: m.cpu, tcHandle: tcHandle(m.major, m.minor), circuitHash: m.circuitHash, deviceHash: m.deviceHash }, vals, i * CLASS_INFO_SIZE);
  }
  const method = bpf.mapUpdateBatch(fdOf('ip_to_class', ctx), keys, vals, n, LPM_KEY_SIZE, CLASS_INFO_SIZE);
  invalidateHotCacheSync(ctx);
  return Promise.resolve({ count: n, method, elapsedMs: performance.now() - t0 });
}

/** Delete mappings by prefix (missing ones are ignored), then invalidate the hot cache. */
export function deleteMappings(prefixes: string[], ctx?: MapContext): Promise<number> {
  const keys = Buffer.alloc(prefixes.length * LPM_KEY_SIZE);
  prefixes.forEach((p, i) => writeLpmKey(p, keys, i * LPM_KEY_SIZE));
  bpf.mapDeleteBatch(fdOf('ip_to_class', ctx), keys, prefixes.length, LPM_KEY_SIZE);
  invalidateHotCacheSync(ctx);
  return Promise.resolve(prefixes.length);
}

/** Remove every mapping. Returns how many were removed. */
export function clearMappings(ctx?: MapContext): Promise<number> {
  const fd = fdOf('ip_to_class', ctx);
  let total = 0;
  for (;;) {
    const d = bpf.mapDump(fd, LPM_KEY_SIZE, CLASS_INFO_SIZE);
    if (d.count === 0) break;
    bpf.mapDeleteBatch(fd, d.keys, d.count, LPM_KEY_SIZE);
    total += d.count;
  }
  invalidateHotCacheSync(ctx);
  return Promise.resolve(total);
}

/** Dump the LPM, decoded back to canonical prefixes, sorted by prefix text. */
export function listMappings(ctx?: MapContext): Promise<MappingEntry[]> {
  const d = bpf.mapDump(fdOf('ip_to_class', ctx), LPM_KEY_SIZE, CLASS_INFO_SIZE);
  const out: MappingEntry[] = new Array(d.count);
  for (let i = 0; i < d.count; i++) {
    const v = readClassInfo(d.values, i * CLASS_INFO_SIZE);
    out[i] = {
      prefix: decodeLpmKey(d.keys, i * LPM_KEY_SIZE),
      cpu: v.cpu, major: v.tcHandle >>> 16, minor: v.tcHandle & 0xffff, tcHandle: v.tcHandle,
      circuitHash: v.circuitHash, deviceHash: v.deviceHash,
    };
  }
  out.sort((a, b) => (a.prefix < b.prefix ? -1 : a.prefix > b.prefix ? 1 : 0));
  return Promise.resolve(out);
}

/** Number of mappings in the LPM (full dump; O(n)). */
export function countMappings(ctx?: MapContext): Promise<number> {
  return Promise.resolve(bpf.mapDump(fdOf('ip_to_class', ctx), LPM_KEY_SIZE, CLASS_INFO_SIZE).count);
}

// ---------------------------------------------------------------------------------------------
// Hot cache and epoch

function invalidateHotCacheSync(ctx?: MapContext): number {
  // Bump the epoch first: from here on every cached entry is a miss, whatever the wipe below races with.
  const next = (readU32('mapping_epoch', ctx) + 1) >>> 0;
  writeU32('mapping_epoch', next, ctx);
  // Then drop the stale entries (memory hygiene; correctness comes from the epoch).
  const hcFd = fdOf('hot_cache', ctx);
  const d = bpf.mapDump(hcFd, ADDR_SIZE, HOT_ENTRY_SIZE);
  bpf.mapDeleteBatch(hcFd, d.keys, d.count, ADDR_SIZE);
  return next;
}

/** Bump the mapping epoch and wipe the hot cache. Returns the new epoch. */
export function invalidateHotCache(ctx?: MapContext): Promise<number> {
  return Promise.resolve(invalidateHotCacheSync(ctx));
}

/** Current mapping epoch (for diagnostics/tests). */
export function readEpoch(ctx?: MapContext): number {
  return readU32('mapping_epoch', ctx);
}

/** Number of hot-cache entries (diagnostics/tests). */
export function hotCacheSize(ctx?: MapContext): number {
  return bpf.mapDump(fdOf('hot_cache', ctx), ADDR_SIZE, HOT_ENTRY_SIZE).count;
}

// ---------------------------------------------------------------------------------------------
// Host counters, bypass, event counters

/** Per-host counters summed over CPUs, keyed by IP text (IPv4 dotted, IPv6 RFC 5952). */
export function readHostCounters(ctx?: MapContext): Promise<Map<string, HostCounters>> {
  const ncpu = bpf.numPossibleCpus();
  const stride = ncpu * HOST_COUNTER_SIZE;
  const d = bpf.mapDump(fdOf('host_counters', ctx), ADDR_SIZE, stride, 1024);
  const out = new Map<string, HostCounters>();
  for (let i = 0; i < d.count; i++) out.set(decodeAddr(d.keys, i * ADDR_SIZE), sumHostCounters(d.values, i * stride, ncpu));
  return Promise.resolve(out);
}

/** Drop host counter entries (e.g. idle hosts); missing ones are ignored. */
export function deleteHostCounters(ips: string[], ctx?: MapContext): Promise<void> {
  const keys = Buffer.alloc(ips.length * ADDR_SIZE);
  ips.forEach((ip, i) => writeAddr(ip, keys, i * ADDR_SIZE));
  bpf.mapDeleteBatch(fdOf('host_counters', ctx), keys, ips.length, ADDR_SIZE);
  return Promise.resolve();
}

/** Pass-through switch: when on, XDP passes everything and tc leaves packets unclassified. */
export function setBypass(on: boolean, ctx?: MapContext): Promise<void> {
  writeU32('classify_ctl', on ? 1 : 0, ctx);
  return Promise.resolve();
}

export function getBypass(ctx?: MapContext): Promise<boolean> {
  return Promise.resolve(readU32('classify_ctl', ctx) !== 0);
}

/** Event counters of both programs, summed over CPUs. */
export function readStats(ctx?: MapContext): Promise<DataplaneStats> {
  const ncpu = bpf.numPossibleCpus();
  const v = Buffer.alloc(ncpu * STATS_SIZE);
  bpf.mapLookupElem(fdOf('dp_stats', ctx), encodeU32(0), v);
  return Promise.resolve(sumStats(v, ncpu));
}
