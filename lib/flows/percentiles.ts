/** Nearest-rank percentiles of RTT sample lists. */
import type { Percentiles } from '../api/flows.ts';

export type { Percentiles };

/** Nearest-rank percentile `p` of an ascending sample array (non-empty). */
function rank(sorted: Float64Array, p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))]!;
}

/** Nearest-rank percentile of an unsorted sample list (null when empty). */
export function percentile(values: number[], p: number): number | null {
  if (values.length === 0) return null;
  return rank(Float64Array.from(values).sort(), p);
}

/** p50, p90 and p99 of an unsorted sample list (nulls when empty). */
export function percentiles(values: number[]): Percentiles {
  if (values.length === 0) return { p50: null, p90: null, p99: null, samples: 0 };
  const s = Float64Array.from(values).sort();
  return { p50: rank(s, 50), p90: rank(s, 90), p99: rank(s, 99), samples: s.length };
}
