/**
 * Leaf qdisc selection for circuit classes (pure).
 *
 * Rules (per direction):
 *  - no override: ceil >= fast threshold → fq_codel; otherwise the default SQM, with the CAKE
 *    low-rate rtt adjustment for very slow plans;
 *  - `fq_codel` → fq_codel; `cake` → the default SQM if it is CAKE, else `cake diffserv4`
 *    (low-rate adjustment applies, the fast threshold does not); `none` → no leaf qdisc.
 */
import type { LeafQdisc, SqmKind } from '../model.ts';

export function parseSqmString(defaultSqm: string): LeafQdisc {
  const tokens = defaultSqm.trim().split(/\s+/).filter(Boolean);
  const kind = tokens[0] ?? 'cake';
  return { kind, args: tokens.slice(1) };
}

/** CAKE's rtt parameter for very slow links (shorter targets would starve a 1 Mbit/s plan). */
function lowRateRtt(ceilMbps: number): string | undefined {
  if (ceilMbps <= 1) return '300ms';
  if (ceilMbps <= 2) return '180ms';
  if (ceilMbps <= 3) return '140ms';
  if (ceilMbps <= 4) return '120ms';
  return undefined;
}

function withLowRateFix(leaf: LeafQdisc, ceilMbps: number): LeafQdisc {
  if (leaf.kind !== 'cake' || leaf.args.includes('rtt')) return leaf;
  const rtt = lowRateRtt(ceilMbps);
  return rtt ? { kind: leaf.kind, args: [...leaf.args, 'rtt', rtt] } : leaf;
}

export function chooseLeaf(
  override: SqmKind | undefined,
  ceilMbps: number,
  defaultLeaf: LeafQdisc,
  fastQueuesFqCodelMbps: number,
): LeafQdisc | null {
  switch (override) {
    case 'none':
      return null;
    case 'fq_codel':
      return { kind: 'fq_codel', args: [] };
    case 'cake': {
      const cake = defaultLeaf.kind === 'cake' ? defaultLeaf : { kind: 'cake', args: ['diffserv4'] };
      return withLowRateFix(cake, ceilMbps);
    }
    default:
      if (ceilMbps >= fastQueuesFqCodelMbps) return { kind: 'fq_codel', args: [] };
      return withLowRateFix(defaultLeaf, ceilMbps);
  }
}
