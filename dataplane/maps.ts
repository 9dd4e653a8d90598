/**
 * Operations on the pinned shaping maps of a loaded dataplane, from any process: IP mappings
 * (ip_to_class LPM) with hot-cache invalidation, host counters, the bypass switch, event counters and
 * the mapping epoch. Byte layouts come from abi.ts; `ctx.pinRoot` selects the pinned maps.
 */
import { constants as osConstants } from 'node:os';
import type { IpMapping } from '../lib/model.ts';
import * as bpf from './libbpf.ts';
import { DataplaneError } from './libbpf.ts';
import {
  ADDR_SIZE, CLASS_INFO_SIZE, HOST_COUNTER_SIZE, LPM_KEY_SIZE, HOT_ENTRY_SIZE, STATS_SIZE, UNKNOWN_IP_SIZE,
  decodeLpmKey, encodeU32, hostKeyText, readClassInfo, readHostCounter, readUnknownIp, sumStats, tcHandle, writeLpmKey,
  writeMappingEntry, type DataplaneStats, type HostCounters, type UnknownIp,
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

/** max_entries of ip_to_class: how many prefixes the dataplane can map. */
export function mappingCapacity(ctx?: MapContext): number {
  return bpf.mapInfoByFd(fdOf('ip_to_class', ctx)).maxEntries;
}

/**
 * An upper bound of the entries in ip_to_class, per pin root, valid while the mapping epoch is the
 * one this process left after its own last write (every writer bumps the epoch, so a write by any
 * other process invalidates it). It spares the O(n) dump of the LPM (no batch lookup for LPM tries:
 * about 1 s at 500k prefixes) on every incremental update: the dump runs only when the bound says
 * the batch might not fit, or after someone else wrote.
 */
const entryBound = new Map<string, { epoch: number; mapId: number; entries: number }>();
const boundKey = (ctx?: MapContext) => ctx?.pinRoot ?? '';
// The map's id is part of the key: recreated maps start again at epoch 0.
const lpmId = (ctx?: MapContext) => bpf.mapInfoByFd(fdOf('ip_to_class', ctx)).id;

function knownBound(ctx?: MapContext): number | undefined {
  const b = entryBound.get(boundKey(ctx));
  return b && b.epoch === readU32('mapping_epoch', ctx) && b.mapId === lpmId(ctx) ? b.entries : undefined;
}

/** Remember `entries` (an upper bound) as valid for the epoch `epoch`. */
function setBound(epoch: number, entries: number, ctx?: MapContext): void {
  entryBound.set(boundKey(ctx), { epoch, mapId: lpmId(ctx), entries: Math.max(0, entries) });
}

/**
 * Throws (before anything is written) when `count` packed keys cannot all fit: entries present plus
 * the batch's keys not present yet must stay within max_entries. Returns an upper bound of the
 * entries present after the write. The LPM is dumped only when the cheap bound (entries known from
 * this process's last write, plus the batch size) is over capacity or unknown.
 */
function assertRoom(fd: number, keys: Buffer, count: number, ctx?: MapContext): number {
  const capacity = bpf.mapInfoByFd(fd).maxEntries;
  const bound = knownBound(ctx);
  if (bound !== undefined && bound + count <= capacity) return bound + count;
  const present = bpf.mapDump(fd, LPM_KEY_SIZE, CLASS_INFO_SIZE);
  if (present.count + count <= capacity) return present.count + count;
  const known = new Set<string>();
  for (let i = 0; i < present.count; i++) known.add(present.keys.toString('latin1', i * LPM_KEY_SIZE, (i + 1) * LPM_KEY_SIZE));
  const fresh = new Set<string>();
  for (let i = 0; i < count; i++) {
    const k = keys.toString('latin1', i * LPM_KEY_SIZE, (i + 1) * LPM_KEY_SIZE);
    if (!known.has(k)) fresh.add(k);
  }
  if (present.count + fresh.size <= capacity) return present.count + fresh.size;
  throw new DataplaneError('update IP mappings', osConstants.errno.ENOSPC,
    `${present.count} prefixes mapped + ${fresh.size} new in this batch = ${present.count + fresh.size}, ` +
    `over the dataplane capacity of ${capacity} (ip_to_class max_entries); nothing was written`,
    'map fewer prefixes (aggregate customer addresses into shorter prefixes, drop unused ones), or raise ' +
    'LQOS_MAX_MAPPINGS in dataplane/bpf/lqos_abi.h, rebuild (`bash dataplane/build.sh`) and restart lqosd');
}

/**
 * Write `count` packed ip_to_class keys and values (LPM_KEY_SIZE / CLASS_INFO_SIZE each): refused
 * before any write when they cannot fit; the hot cache is invalidated afterwards even when the
 * kernel rejects an element partway (elements before it are written, so cached classes are stale).
 */
export function writeMappingBatch(keys: Buffer, vals: Buffer, count: number, ctx?: MapContext): 'batch' | 'loop' {
  const fd = fdOf('ip_to_class', ctx);
  if (count === 0) return 'batch';
  const after = assertRoom(fd, keys, count, ctx);
  try {
    return bpf.mapUpdateBatch(fd, keys, vals, count, LPM_KEY_SIZE, CLASS_INFO_SIZE);
  } finally {
    // Also after a partial failure: `after` stays an upper bound.
    setBound(invalidateHotCacheSync(ctx), after, ctx);
  }
}

/** Insert or replace mappings (one syscall for all when the kernel supports batch ops), then invalidate the hot cache. */
export function updateMappings(mappings: IpMapping[], ctx?: MapContext): Promise<UpdateResult> {
  const t0 = performance.now();
  const n = mappings.length;
  const keys = Buffer.alloc(n * LPM_KEY_SIZE);
  const vals = Buffer.alloc(n * CLASS_INFO_SIZE);
  for (let i = 0; i < n; i++) {
    const m = mappings[i]!;
    writeMappingEntry(m.prefix, { cpu: m.cpu, tcHandle: tcHandle(m.major, m.minor), circuitHash: m.circuitHash, deviceHash: m.deviceHash },
      keys, i * LPM_KEY_SIZE, vals, i * CLASS_INFO_SIZE);
  }
  const method = writeMappingBatch(keys, vals, n, ctx);
  return Promise.resolve({ count: n, method, elapsedMs: performance.now() - t0 });
}

/** Delete packed LPM keys from ip_to_class and their host counters; the hot cache is invalidated in any case. */
function deleteKeys(keys: Buffer, count: number, ctx?: MapContext): void {
  const bound = knownBound(ctx);
  try {
    bpf.mapDeleteBatch(fdOf('ip_to_class', ctx), keys, count, LPM_KEY_SIZE);
  } finally {
    // Deleting never adds entries: a known bound stays an upper bound.
    const epoch = invalidateHotCacheSync(ctx);
    if (bound !== undefined) setBound(epoch, bound, ctx);
    // host_counters is keyed by the same bytes (prefixlen + masked address); dropped even when the
    // LPM delete failed partway, so no counter outlives its mapping as a phantom host.
    bpf.mapDeleteBatch(fdOf('host_counters', ctx), keys, count, LPM_KEY_SIZE);
  }
}

/** Delete mappings by prefix (missing ones are ignored) with their host counters, then invalidate the hot cache. */
export function deleteMappings(prefixes: string[], ctx?: MapContext): Promise<number> {
  const keys = Buffer.alloc(prefixes.length * LPM_KEY_SIZE);
  prefixes.forEach((p, i) => writeLpmKey(p, keys, i * LPM_KEY_SIZE));
  deleteKeys(keys, prefixes.length, ctx);
  return Promise.resolve(prefixes.length);
}

/** Remove every mapping (and their host counters). Returns how many were removed. */
export function clearMappings(ctx?: MapContext): Promise<number> {
  const fd = fdOf('ip_to_class', ctx);
  let total = 0;
  let emptied = false;
  try {
    for (;;) {
      const d = bpf.mapDump(fd, LPM_KEY_SIZE, CLASS_INFO_SIZE);
      if (d.count === 0) break;
      deleteKeys(d.keys, d.count, ctx);
      total += d.count;
    }
    emptied = true;
  } finally {
    const epoch = invalidateHotCacheSync(ctx);
    if (emptied) setBound(epoch, 0, ctx);
  }
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
// Host counters, unknown addresses, bypass, event counters

/**
 * Counters per mapping that saw traffic: keyed by the address text for a full-length prefix
 * (`100.64.0.1`, `2001:db8::1`), else canonical `addr/len` (`100.64.1.0/24`, `2001:db8:5::/56`).
 */
export function readHostCounters(ctx?: MapContext): Promise<Map<string, HostCounters>> {
  const d = bpf.mapDump(fdOf('host_counters', ctx), LPM_KEY_SIZE, HOST_COUNTER_SIZE);
  const out = new Map<string, HostCounters>();
  for (let i = 0; i < d.count; i++) out.set(hostKeyText(d.keys, i * LPM_KEY_SIZE), readHostCounter(d.values, i * HOST_COUNTER_SIZE));
  return Promise.resolve(out);
}

/** Drop host counter entries by mapping prefix (a bare address = full length); missing ones are ignored. */
export function deleteHostCounters(prefixes: string[], ctx?: MapContext): Promise<void> {
  const keys = Buffer.alloc(prefixes.length * LPM_KEY_SIZE);
  prefixes.forEach((p, i) => writeLpmKey(p, keys, i * LPM_KEY_SIZE));
  bpf.mapDeleteBatch(fdOf('host_counters', ctx), keys, prefixes.length, LPM_KEY_SIZE);
  return Promise.resolve();
}

/** The sampled table of addresses without a mapping (at most LQOS_UNKNOWN_SAMPLES entries). */
export function readUnknownIps(ctx?: MapContext): Promise<UnknownIp[]> {
  const d = bpf.mapDump(fdOf('unknown_ips', ctx), ADDR_SIZE, UNKNOWN_IP_SIZE);
  const out: UnknownIp[] = new Array(d.count);
  for (let i = 0; i < d.count; i++) out[i] = readUnknownIp(d.keys, i * ADDR_SIZE, d.values, i * UNKNOWN_IP_SIZE);
  return Promise.resolve(out);
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
