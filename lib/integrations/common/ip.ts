/**
 * IP handling shared by the integrations: canonicalisation (the same parser as validateInputs, so
 * what we write is what the validator reads) and the ignore/allow subnet filter of spec §2.8.
 */
import ipaddr from 'ipaddr.js';
import { parseIPv4Prefix, parseIPv6Prefix } from '../../inputs/ipPrefix.ts';

export type IpFamily = 'v4' | 'v6';

export interface CanonicalIp {
  family: IpFamily;
  /** `100.64.0.1/32`, `2001:db8::/56` (RFC 5952, always with a length). */
  prefix: string;
}

/**
 * Canonicalise one address or CIDR in either family. An interface-style address with host bits set
 * (`100.64.6.6/24`) becomes the host (`100.64.6.6/32`) — CRMs and NMSs report interface addresses
 * that way. Returns an error text for anything else that does not parse.
 */
export function canonicalIp(raw: string): CanonicalIp | { error: string } {
  const s = raw.trim();
  if (s === '') return { error: 'empty address' };
  const isV6 = s.includes(':');
  const parse = isV6 ? parseIPv6Prefix : parseIPv4Prefix;
  const r = parse(s);
  if (r.ok) return { family: isV6 ? 'v6' : 'v4', prefix: r.prefix };
  if (r.code === 'host-bits-set') {
    const host = s.slice(0, s.indexOf('/'));
    const h = parse(host);
    if (h.ok) return { family: isV6 ? 'v6' : 'v4', prefix: h.prefix };
  }
  return { error: r.message };
}

type Range = [ipaddr.IPv4 | ipaddr.IPv6, number];

/** A parsed list of subnets (from `[ip_ranges]`), with containment tests. */
export class SubnetList {
  private readonly ranges: Range[];
  readonly text: string[];
  constructor(cidrs: readonly string[]) {
    this.text = [...cidrs];
    this.ranges = cidrs.map((c) => ipaddr.parseCIDR(c.trim()));
  }
  get size(): number {
    return this.ranges.length;
  }
  /**
   * The subnet containing the whole canonical prefix (its address is inside and it is at least as
   * long), or undefined. IPv4 never matches an IPv6 subnet and vice versa.
   */
  containing(prefix: string): string | undefined {
    const slash = prefix.indexOf('/');
    const addr = ipaddr.parse(prefix.slice(0, slash));
    const len = Number(prefix.slice(slash + 1));
    for (let i = 0; i < this.ranges.length; i++) {
      const [net, bits] = this.ranges[i];
      if (net.kind() !== addr.kind()) continue;
      if (len >= bits && addr.match(net as never, bits)) return this.text[i];
    }
    return undefined;
  }

  /**
   * Whether an address (an optional `/len` is ignored; IPv4-mapped IPv6 counts as IPv4) is inside
   * one of the subnets. An unparsable address is in none.
   */
  has(ip: string): boolean {
    let a: ipaddr.IPv4 | ipaddr.IPv6;
    try {
      a = ipaddr.process(ip.replace(/\/\d+$/, ''));
    } catch {
      return false;
    }
    return this.ranges.some(([net, bits]) => net.kind() === a.kind() && a.match(net as never, bits));
  }
}

/**
 * The two filters of spec §2.8:
 * - `ignore-only` (the shared Python path — Splynx, Netzur, VISP, Powercode, Sonar, WISPGate): drop an
 *   address inside `ignore_subnets`; `allow_subnets` is not consulted, public addresses survive.
 * - `allow-and-ignore` (UISP): keep an address only if it is inside `allow_subnets` AND not inside
 *   `ignore_subnets`. With the default allow list (IPv4 only) this drops every IPv6 address.
 */
export type IpFilterMode = 'ignore-only' | 'allow-and-ignore';

export class IpFilter {
  readonly mode: IpFilterMode;
  private readonly ignore: SubnetList;
  private readonly allow: SubnetList;
  constructor(mode: IpFilterMode, ignoreSubnets: readonly string[], allowSubnets: readonly string[]) {
    this.mode = mode;
    this.ignore = new SubnetList(ignoreSubnets);
    this.allow = new SubnetList(allowSubnets);
  }
  /** null when the prefix is kept, else the reason it is dropped. */
  rejects(prefix: string): string | null {
    const ign = this.ignore.containing(prefix);
    if (ign !== undefined) return `in ignore_subnets (${ign})`;
    if (this.mode === 'allow-and-ignore' && this.allow.containing(prefix) === undefined) return 'outside allow_subnets';
    return null;
  }
}

/** Splits a CRM list cell (`"a, b,c"`, or an array) into trimmed non-empty strings, first occurrence kept. */
export function splitList(v: unknown, sep: RegExp = /[,;\s]+/): string[] {
  const parts: string[] = [];
  const push = (s: string) => {
    const t = s.trim();
    if (t !== '' && !parts.includes(t)) parts.push(t);
  };
  if (Array.isArray(v)) {
    for (const x of v) if (x !== null && x !== undefined) for (const p of String(x).split(sep)) push(p);
  } else if (typeof v === 'string' || typeof v === 'number') {
    for (const p of String(v).split(sep)) push(p);
  }
  return parts;
}
