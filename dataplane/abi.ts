/**
 * Byte layouts shared with dataplane/bpf/lqos_abi.h (see dataplane/README.md). Pure functions: no
 * kernel access here, so this module is unit-testable anywhere.
 */
import ipaddr from 'ipaddr.js';

/** LQOS_ABI_VERSION: layout/meaning version of the pinned maps (stored in the `lqos_abi` map). */
export const ABI_VERSION = 2;

export const LPM_KEY_SIZE = 20;      // u32 prefixlen + 16-byte address
export const CLASS_INFO_SIZE = 32;   // u32 cpu, u32 tc_handle, u64 circuit_hash, u64 device_hash, u32 prefixlen, u32 reserved
export const ADDR_SIZE = 16;
export const HOT_ENTRY_SIZE = 56;    // 16-byte addr + class info + u32 epoch + u32 reserved
export const HOST_COUNTER_SIZE = 64; // see lqos_host_counter
export const UNKNOWN_IP_SIZE = 48;   // see lqos_unknown_ip
export const CFG_SIZE = 32;          // lqos_cfg
export const STATS_SIZE = 128;       // lqos_stats: 16 x u64 per CPU
export const META_MAGIC = 0x4c514f53;
export const MAX_CPUS = 1024;        // LQOS_MAX_CPUS: cpu_map / cpus_available / txq_config slots

// Capacities (max_entries), as in lqos_abi.h.
export const MAX_MAPPINGS = 524288;      // LQOS_MAX_MAPPINGS: ip_to_class
export const HOT_CACHE_SIZE = 524288;    // LQOS_HOT_CACHE_SIZE
export const MAX_HOSTS = 524288;         // LQOS_MAX_HOSTS: host_counters
export const UNKNOWN_SAMPLES = 4096;     // LQOS_UNKNOWN_SAMPLES: unknown_ips
export const MAX_LAZY = 524288;          // LQOS_MAX_LAZY: lazy_pending
export const UNKNOWN_INSERT_GAP_NS = 10_000_000n; // LQOS_UNKNOWN_INSERT_GAP_NS (whole box)

export const MODE_OFF = 0;
export const MODE_BRIDGE = 1;
export const MODE_STICK = 2;

export class AbiError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'AbiError';
  }
}

/** Parse dotted-quad IPv4 into out[off..off+4); returns false if `ip` is not IPv4 syntax. */
function writeV4(ip: string, out: Buffer, off: number): boolean {
  let part = 0, digits = 0, idx = 0;
  for (let i = 0; i <= ip.length; i++) {
    const c = i < ip.length ? ip.charCodeAt(i) : 46; /* virtual trailing '.' */
    if (c >= 48 && c <= 57) {
      part = part * 10 + (c - 48);
      if (++digits > 3) return false;
    } else if (c === 46) {
      if (digits === 0 || part > 255 || idx > 3) return false;
      out[off + idx++] = part;
      part = 0;
      digits = 0;
    } else return false;
  }
  return idx === 4;
}

function hexGroup(s: string): number {
  if (s.length === 0 || s.length > 4) return -1;
  let v = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    const d = c >= 48 && c <= 57 ? c - 48 : c >= 97 && c <= 102 ? c - 87 : c >= 65 && c <= 70 ? c - 55 : -1;
    if (d < 0) return -1;
    v = (v << 4) | d;
  }
  return v;
}

/** Parse IPv6 text (with optional '::' and embedded dotted IPv4 tail) into out[off..off+16). */
function writeV6(ip: string, out: Buffer, off: number): boolean {
  const dbl = ip.indexOf('::');
  if (dbl >= 0 && ip.indexOf('::', dbl + 1) >= 0) return false;
  const groups: number[] = [];
  const parse = (text: string, allowV4Tail: boolean): number[] | null => {
    if (text === '') return [];
    const parts = text.split(':');
    const res: number[] = [];
    for (let i = 0; i < parts.length; i++) {
      const p = parts[i]!;
      if (allowV4Tail && i === parts.length - 1 && p.includes('.')) {
        const b = Buffer.alloc(4);
        if (!writeV4(p, b, 0)) return null;
        res.push((b[0]! << 8) | b[1]!, (b[2]! << 8) | b[3]!);
        continue;
      }
      const g = hexGroup(p);
      if (g < 0) return null;
      res.push(g);
    }
    return res;
  };
  if (dbl >= 0) {
    const head = parse(ip.slice(0, dbl), false);
    const tail = parse(ip.slice(dbl + 2), true);
    if (!head || !tail || head.length + tail.length > 7) return false;
    groups.push(...head, ...new Array(8 - head.length - tail.length).fill(0), ...tail);
  } else {
    const all = parse(ip, true);
    if (!all || all.length !== 8) return false;
    groups.push(...all);
  }
  for (let i = 0; i < 8; i++) {
    out[off + i * 2] = groups[i]! >> 8;
    out[off + i * 2 + 1] = groups[i]! & 0xff;
  }
  return true;
}

/** Write the 16-byte address encoding of `ip` into `out` at `off`. Returns true for IPv4. */
export function writeAddr(ip: string, out: Buffer, off: number): boolean {
  if (ip.indexOf(':') < 0) {
    if (!writeV4(ip, out, off + 12)) throw new AbiError(`invalid IPv4 address "${ip}"`);
    out.fill(0, off, off + 10);
    out[off + 10] = 0xff;
    out[off + 11] = 0xff;
    return true;
  }
  if (!writeV6(ip, out, off)) throw new AbiError(`invalid IPv6 address "${ip}"`);
  return false;
}

export function encodeAddr(ip: string): Buffer {
  const b = Buffer.alloc(ADDR_SIZE);
  writeAddr(ip, b, 0);
  return b;
}

function isV4Mapped(b: Buffer, off: number): boolean {
  for (let i = 0; i < 10; i++) if (b[off + i] !== 0) return false;
  return b[off + 10] === 0xff && b[off + 11] === 0xff;
}

/** Decode a 16-byte address (IPv4-mapped → dotted quad, else RFC 5952 IPv6). */
export function decodeAddr(b: Buffer, off = 0): string {
  if (isV4Mapped(b, off)) return `${b[off + 12]}.${b[off + 13]}.${b[off + 14]}.${b[off + 15]}`;
  return ipaddr.fromByteArray(Array.from(b.subarray(off, off + 16))).toString();
}

function maskFrom(out: Buffer, addrOff: number, bits: number): void {
  for (let i = 0; i < 16; i++) {
    const keep = bits - i * 8;
    if (keep >= 8) continue;
    out[addrOff + i]! &= keep <= 0 ? 0 : (0xff << (8 - keep)) & 0xff;
  }
}

/**
 * Write the LPM key of `prefix` ("a.b.c.d[/n]" or "v6[/n]"; no length = host route) at `off`.
 * Host bits are cleared so one prefix always has exactly one key.
 */
export function writeLpmKey(prefix: string, out: Buffer, off: number): void {
  const slash = prefix.indexOf('/');
  const ip = slash < 0 ? prefix : prefix.slice(0, slash);
  const v4 = writeAddr(ip, out, off + 4);
  let len: number;
  if (slash < 0) len = 128;
  else {
    const s = prefix.slice(slash + 1);
    if (!/^\d{1,3}$/.test(s)) throw new AbiError(`invalid prefix length in "${prefix}"`);
    len = Number(s);
    if (len > (v4 ? 32 : 128)) throw new AbiError(`prefix length out of range in "${prefix}"`);
    if (v4) len += 96;
  }
  out.writeUInt32LE(len, off);
  maskFrom(out, off + 4, len);
}

export function encodeLpmKey(prefix: string): Buffer {
  const b = Buffer.alloc(LPM_KEY_SIZE);
  writeLpmKey(prefix, b, 0);
  return b;
}

/** Canonical prefix text of the LPM key at `off` (IPv4 lengths are reported without the +96). */
export function decodeLpmKey(b: Buffer, off = 0): string {
  const len = b.readUInt32LE(off);
  const addrOff = off + 4;
  if (isV4Mapped(b, addrOff) && len >= 96) return `${decodeAddr(b, addrOff)}/${len - 96}`;
  return `${decodeAddr(b, addrOff)}/${len}`;
}

/**
 * Text of a host_counters key (the matched mapping): the address alone for a full-length prefix
 * (/32 IPv4, /128 IPv6), else canonical "addr/len" (IPv4 lengths without the +96).
 */
export function hostKeyText(b: Buffer, off = 0): string {
  const len = b.readUInt32LE(off);
  if (len === 128) return decodeAddr(b, off + 4);
  return decodeLpmKey(b, off);
}

export interface ClassInfo {
  cpu: number;
  /** (major << 16) | minor; 0 = counted but unshaped (observe mode) */
  tcHandle: number;
  circuitHash: bigint;
  deviceHash: bigint;
  /** Prefix length of the entry's own LPM key (0..128, IPv4 + 96); readClassInfo fills it. */
  prefixlen?: number;
}

/** (major << 16) | minor. tcHandle(0, 0) = 0: a counted mapping without a class (observe mode). */
export function tcHandle(major: number, minor: number): number {
  if (major === 0 && minor === 0) return 0;
  if (!Number.isInteger(major) || major < 1 || major > 0xffff) throw new AbiError(`class major ${major} out of range 1..0xffff (0:0 = unshaped)`);
  if (!Number.isInteger(minor) || minor < 0 || minor > 0xffff) throw new AbiError(`class minor ${minor} out of range 0..0xffff`);
  return ((major << 16) | minor) >>> 0;
}

/**
 * Write an ip_to_class value. `prefixlen` is that of the entry's LPM key (the kernel keys the host
 * counters by the matched prefix): pass the key's first u32, or use writeMappingEntry.
 */
export function writeClassInfo(v: ClassInfo, out: Buffer, off: number, prefixlen = v.prefixlen ?? 128): void {
  if (!Number.isInteger(prefixlen) || prefixlen < 0 || prefixlen > 128) throw new AbiError(`prefix length ${prefixlen} out of range 0..128`);
  out.writeUInt32LE(v.cpu >>> 0, off);
  out.writeUInt32LE(v.tcHandle >>> 0, off + 4);
  out.writeBigUInt64LE(BigInt.asUintN(64, v.circuitHash), off + 8);
  out.writeBigUInt64LE(BigInt.asUintN(64, v.deviceHash), off + 16);
  out.writeUInt32LE(prefixlen, off + 24);
  out.writeUInt32LE(0, off + 28);
}

/** Key and value of one mapping: the value's prefixlen is taken from the key just written. */
export function writeMappingEntry(prefix: string, v: ClassInfo, keys: Buffer, keyOff: number, vals: Buffer, valOff: number): void {
  writeLpmKey(prefix, keys, keyOff);
  writeClassInfo(v, vals, valOff, keys.readUInt32LE(keyOff));
}

export function readClassInfo(b: Buffer, off = 0): ClassInfo {
  return {
    cpu: b.readUInt32LE(off),
    tcHandle: b.readUInt32LE(off + 4),
    circuitHash: b.readBigUInt64LE(off + 8),
    deviceHash: b.readBigUInt64LE(off + 16),
    prefixlen: b.readUInt32LE(off + 24),
  };
}

export interface HostCounters {
  downloadBytes: bigint;
  uploadBytes: bigint;
  downloadPackets: bigint;
  uploadPackets: bigint;
  /** ns since boot (CLOCK_BOOTTIME) of the last packet. */
  lastSeenNs: bigint;
  /** Class of the last packet (stick offset included); 0 = unshaped. */
  tcHandle: number;
  circuitHash: bigint;
  deviceHash: bigint;
}

/** Decode one lqos_host_counter value (shared by all CPUs: one copy per entry). */
export function readHostCounter(b: Buffer, off = 0): HostCounters {
  return {
    downloadBytes: b.readBigUInt64LE(off),
    uploadBytes: b.readBigUInt64LE(off + 8),
    downloadPackets: b.readBigUInt64LE(off + 16),
    uploadPackets: b.readBigUInt64LE(off + 24),
    lastSeenNs: b.readBigUInt64LE(off + 32),
    tcHandle: b.readUInt32LE(off + 40),
    circuitHash: b.readBigUInt64LE(off + 48),
    deviceHash: b.readBigUInt64LE(off + 56),
  };
}

/** One sampled address without a mapping (unknown_ips). */
export interface UnknownIp {
  ip: string;
  downloadBytes: bigint;
  uploadBytes: bigint;
  downloadPackets: bigint;
  uploadPackets: bigint;
  /** ns since boot (CLOCK_BOOTTIME) */
  firstSeenNs: bigint;
  lastSeenNs: bigint;
}

export function readUnknownIp(key: Buffer, keyOff: number, b: Buffer, off: number): UnknownIp {
  return {
    ip: decodeAddr(key, keyOff),
    downloadBytes: b.readBigUInt64LE(off),
    uploadBytes: b.readBigUInt64LE(off + 8),
    downloadPackets: b.readBigUInt64LE(off + 16),
    uploadPackets: b.readBigUInt64LE(off + 24),
    firstSeenNs: b.readBigUInt64LE(off + 32),
    lastSeenNs: b.readBigUInt64LE(off + 40),
  };
}

export interface DataplaneStats {
  xdpSeen: bigint;
  xdpRedirect: bigint;
  xdpUnshaped: bigint;
  tcSeen: bigint;
  tcMeta: bigint;
  tcLookup: bigint;
  tcUnclassified: bigint;
  metaFail: bigint;
  /** L2 bytes / packets toward (down) and from (up) addresses without a mapping. */
  unmappedBytesDown: bigint;
  unmappedBytesUp: bigint;
  unmappedPacketsDown: bigint;
  unmappedPacketsUp: bigint;
  /** flow_events records lost because the ring buffer was full. */
  ringDrops: bigint;
  /** Control frames (non-IP, ICMPv6 ND/RA) sent to HTB's direct queue. */
  ctrlDirect: bigint;
  /** XDP metadata naming a class outside 1..max_major: tc looked the address up itself. */
  metaReject: bigint;
  /** Addresses inserted into unknown_ips. */
  unknownSampled: bigint;
}

/** enum lqos_stat order. */
const STAT_FIELDS: (keyof DataplaneStats)[] = [
  'xdpSeen', 'xdpRedirect', 'xdpUnshaped', 'tcSeen', 'tcMeta', 'tcLookup', 'tcUnclassified', 'metaFail',
  'unmappedBytesDown', 'unmappedBytesUp', 'unmappedPacketsDown', 'unmappedPacketsUp', 'ringDrops', 'ctrlDirect',
  'metaReject', 'unknownSampled',
];

/** Sum the per-CPU lqos_stats slots of dp_stats[0]. */
export function sumStats(b: Buffer, ncpu: number): DataplaneStats {
  const out = {} as DataplaneStats;
  STAT_FIELDS.forEach((name, i) => {
    let t = 0n;
    for (let c = 0; c < ncpu; c++) t += b.readBigUInt64LE(c * STATS_SIZE + i * 8);
    out[name] = t;
  });
  return out;
}

/** A u32 map key or value (array indexes, epoch, switches). */
export function encodeU32(n: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32LE(n >>> 0);
  return b;
}

export interface CfgValues {
  mode: number;
  internetIfindex: number;
  ispIfindex: number;
  stickOffset: number;
  internetVlan: number;
  ispVlan: number;
  /** Highest HTB major in use (queues + stick offset): tc ignores metadata naming another major. 0 = no check. */
  maxMajor?: number;
  /** Stick: the tc ingress program swaps the VLAN instead of XDP (LQOS_CFG_STICK_TC_SWAP; generic XDP). */
  stickTcSwap?: boolean;
}

/** lqos_cfg.flags bits (bpf/lqos_abi.h). */
export const CFG_STICK_TC_SWAP = 1;

export function encodeCfg(c: CfgValues): Buffer {
  const b = Buffer.alloc(CFG_SIZE);
  b.writeUInt32LE(c.mode, 0);
  b.writeUInt32LE(c.internetIfindex, 4);
  b.writeUInt32LE(c.ispIfindex, 8);
  b.writeUInt32LE(c.stickOffset, 12);
  b.writeUInt32LE(c.internetVlan & 0xfff, 16);
  b.writeUInt32LE(c.ispVlan & 0xfff, 20);
  b.writeUInt32LE((c.maxMajor ?? 0) >>> 0, 24);
  b.writeUInt32LE(c.stickTcSwap ? CFG_STICK_TC_SWAP : 0, 28);
  return b;
}
