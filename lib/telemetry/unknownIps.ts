/**
 * Unknown IPs: addresses with traffic that map to no circuit. As upstream, they are listed (and
 * counted) only inside `[ip_ranges] allow_subnets` when `unknown_ip_honors_allow` is on, and only
 * outside `ignore_subnets` when `unknown_ip_honors_ignore` is on. An empty allow list restricts
 * nothing.
 */
import ipaddr from 'ipaddr.js';
import type { LqosConfig } from '../config/schema.ts';

export interface UnknownIpRules {
  allow: string[];
  ignore: string[];
  honorsAllow: boolean;
  honorsIgnore: boolean;
}

/** The rules lqos.conf's `[ip_ranges]` sets. */
export function unknownIpRulesOf(config: LqosConfig): UnknownIpRules {
  const r = config.ip_ranges;
  return { allow: [...r.allow_subnets], ignore: [...r.ignore_subnets], honorsAllow: r.unknown_ip_honors_allow, honorsIgnore: r.unknown_ip_honors_ignore };
}

type Net = [ipaddr.IPv4 | ipaddr.IPv6, number];

const parseNets = (cidrs: string[]): Net[] => cidrs.map((c) => ipaddr.parseCIDR(c));

function inAny(nets: Net[], ip: string): boolean {
  let a: ipaddr.IPv4 | ipaddr.IPv6;
  try {
    a = ipaddr.process(ip.replace(/\/\d+$/, ''));
  } catch {
    return false;
  }
  return nets.some(([net, bits]) => net.kind() === a.kind() && a.match(net, bits));
}

/** Decides (and remembers, bounded) whether an unmapped address is listed as an unknown IP. */
export class UnknownIpFilter {
  private readonly allow: Net[];
  private readonly ignore: Net[];
  private readonly cache = new Map<string, boolean>();

  constructor(rules?: UnknownIpRules) {
    this.allow = rules?.honorsAllow ? parseNets(rules.allow) : [];
    this.ignore = rules?.honorsIgnore ? parseNets(rules.ignore) : [];
  }

  listed(ip: string): boolean {
    if (!this.allow.length && !this.ignore.length) return true;
    let hit = this.cache.get(ip);
    if (hit === undefined) {
      hit = (!this.allow.length || inAny(this.allow, ip)) && !inAny(this.ignore, ip);
      if (this.cache.size > 100_000) this.cache.clear();
      this.cache.set(ip, hit);
    }
    return hit;
  }
}
