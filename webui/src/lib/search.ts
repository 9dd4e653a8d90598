/**
 * The top bar's search over the applied plan, ranked: an address inside a circuit's prefix (longest
 * prefix first: an exact /32 or /128 beats the /56 around it), then exact matches of ids, names and
 * MACs, then prefixes, then substrings. Enter opens the first hit, so the first must be the one the
 * operator typed (issue 18: `100.64.0.12` used to open the owner of `100.64.0.123`).
 */
import ipaddr from 'ipaddr.js';
import type { CircuitInfo, TreeNode } from '../../../lib/api/index.ts';

export type HitKind = 'Circuit' | 'Device' | 'IP' | 'Site';

export interface SearchHit {
  kind: HitKind;
  key: string;
  /** Lower is better: 0..128 for addresses (128 − prefix length), then 200 exact, 300 prefix, 400 substring. */
  rank: number;
  circuit?: CircuitInfo;
  device?: CircuitInfo['devices'][number];
  /** The matching address or prefix (IP hits). */
  ip?: string;
  node?: TreeNode;
}

const EXACT = 200;
const PREFIX = 300;
const SUBSTRING = 400;

/** The address `s` names, or null when it is not one. */
export function parseAddress(s: string): ipaddr.IPv4 | ipaddr.IPv6 | null {
  return ipaddr.isValid(s) && (ipaddr.IPv4.isValidFourPartDecimal(s) || s.includes(':')) ? ipaddr.parse(s) : null;
}

/** The prefix length of `prefix` (`a.b.c.d/len`, bare = full length) when it contains `addr`, else -1. */
export function containsLength(prefix: string, addr: ipaddr.IPv4 | ipaddr.IPv6): number {
  try {
    const [net, bits] = prefix.includes('/') ? ipaddr.parseCIDR(prefix) : [ipaddr.parse(prefix), addr.kind() === 'ipv4' ? 32 : 128];
    return net.kind() === addr.kind() && addr.match(net, bits) ? bits : -1;
  } catch {
    return -1;
  }
}

function textRank(q: string, ...values: (string | undefined)[]): number {
  let best = Infinity;
  for (const v of values) {
    const x = v?.toLowerCase();
    if (!x) continue;
    if (x === q) return EXACT;
    if (x.startsWith(q)) best = Math.min(best, PREFIX);
    else if (x.includes(q)) best = Math.min(best, SUBSTRING);
  }
  return best;
}

/** An address without its single-host prefix length (`/32`, `/128`), as operators type it. */
export const stripLen = (ip: string) => ip.replace(/\/(32|128)$/, '');

/** Hits for `term` (at least 2 characters), best first, at most `max`. */
export function searchPlan(circuits: readonly CircuitInfo[], nodes: readonly TreeNode[], term: string, max = 30): SearchHit[] {
  const q = term.trim().toLowerCase();
  if (q.length < 2) return [];
  const addr = parseAddress(q);
  const hits: SearchHit[] = [];
  for (const c of circuits) {
    for (const ip of [...c.ipv4, ...c.ipv6]) {
      const inside = addr ? containsLength(ip, addr) : -1;
      const rank = inside >= 0 ? (addr!.kind() === 'ipv4' ? 32 : 128) - inside : stripLen(ip).toLowerCase().startsWith(q) ? PREFIX : Infinity;
      if (rank !== Infinity) hits.push({ kind: 'IP', key: `ip:${c.id}:${ip}`, rank, circuit: c, ip });
    }
    const cr = textRank(q, c.id, c.name);
    if (cr !== Infinity) hits.push({ kind: 'Circuit', key: `c:${c.id}`, rank: cr, circuit: c });
    for (const d of c.devices) {
      const dr = textRank(q, d.id, d.name, d.mac);
      if (dr !== Infinity) hits.push({ kind: 'Device', key: `d:${c.id}:${d.id}`, rank: dr, circuit: c, device: d });
    }
  }
  for (const n of nodes) {
    const nr = textRank(q, n.name);
    if (nr !== Infinity) hits.push({ kind: 'Site', key: `s:${n.path}`, rank: nr, node: n });
  }
  // Stable: equal ranks keep plan order.
  return hits
    .map((h, i) => [h, i] as const)
    .sort((a, b) => a[0].rank - b[0].rank || a[1] - b[1])
    .slice(0, max)
    .map(([h]) => h);
}
