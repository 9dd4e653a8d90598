/**
 * Unknown IPs: addresses with traffic that map to no circuit. As upstream, they are listed (and
 * counted) only inside `[ip_ranges] allow_subnets` when `unknown_ip_honors_allow` is on, and only
 * outside `ignore_subnets` when `unknown_ip_honors_ignore` is on. An empty allow list restricts
 * nothing.
 */
import { SubnetList } from '../integrations/common/ip.ts';
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

/**
 * The rules of the configuration in force, followed across reloads: the same object until
 * `[ip_ranges]` is replaced by a reload (so a filter built from it can be kept until then).
 */
export function liveUnknownIpRules(config: () => LqosConfig): () => UnknownIpRules {
  let ranges: LqosConfig['ip_ranges'] | undefined;
  let rules: UnknownIpRules | undefined;
  return () => {
    const c = config();
    if (c.ip_ranges !== ranges || rules === undefined) {
      ranges = c.ip_ranges;
      rules = unknownIpRulesOf(c);
    }
    return rules;
  };
}

/** Decides (and remembers, bounded) whether an unmapped address is listed as an unknown IP. */
export class UnknownIpFilter {
  private readonly allow: SubnetList;
  private readonly ignore: SubnetList;
  private readonly cache = new Map<string, boolean>();

  constructor(rules?: UnknownIpRules) {
    this.allow = new SubnetList(rules?.honorsAllow ? rules.allow : []);
    this.ignore = new SubnetList(rules?.honorsIgnore ? rules.ignore : []);
  }

  listed(ip: string): boolean {
    if (!this.allow.size && !this.ignore.size) return true;
    let hit = this.cache.get(ip);
    if (hit === undefined) {
      hit = (!this.allow.size || this.allow.has(ip)) && !this.ignore.has(ip);
      if (this.cache.size > 100_000) this.cache.clear();
      this.cache.set(ip, hit);
    }
    return hit;
  }
}
