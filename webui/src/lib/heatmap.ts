/**
 * Heatmap data: samples (time + one value per row) averaged into time buckets on a continuous
 * timeline (the last `maxBuckets` buckets up to the newest sample; buckets without data stay
 * empty). Each page scales a row's means to 0..1 for the colour (utilisation of the plan, RTT
 * against the configured thresholds, ...).
 */

/** The window a heatmap shows: 30 buckets of 10 s. */
export const HEATMAP_BUCKET_SECONDS = 10;
export const HEATMAP_BUCKETS = 30;

/** The green → yellow → red scale of heatmaps and RTT colours (at 0, 0.5 and 1). */
export const SCALE_PALETTE = ['#3fb950', '#d29922', '#f85149'] as const;

export interface Sample {
  /** ms since the epoch */
  t: number;
  values: (number | null)[];
}

export interface HeatmapGrid {
  /** Start of each bucket (ms), oldest first. */
  buckets: number[];
  /** [bucket index, row index, mean] for every cell with data. */
  cells: [number, number, number][];
}

export function bucketize(samples: Sample[], rows: number, bucketMs: number, maxBuckets: number): HeatmapGrid {
  if (!samples.length) return { buckets: [], cells: [] };
  const newest = Math.floor(Math.max(...samples.map((s) => s.t)) / bucketMs) * bucketMs;
  const first = newest - (maxBuckets - 1) * bucketMs;
  const buckets = Array.from({ length: maxBuckets }, (_, i) => first + i * bucketMs);
  const sum = buckets.map(() => new Array<number>(rows).fill(0));
  const n = buckets.map(() => new Array<number>(rows).fill(0));
  for (const s of samples) {
    const i = Math.floor((s.t - first) / bucketMs);
    if (i < 0 || i >= maxBuckets) continue;
    s.values.forEach((v, r) => {
      if (v === null || !Number.isFinite(v) || r >= rows) return;
      sum[i]![r]! += v;
      n[i]![r]!++;
    });
  }
  const cells: HeatmapGrid['cells'] = [];
  for (let i = 0; i < maxBuckets; i++) for (let r = 0; r < rows; r++) if (n[i]![r]) cells.push([i, r, sum[i]![r]! / n[i]![r]!]);
  return { buckets, cells };
}

/** 0..1 for the colour: v / full, clamped. */
export const share = (v: number, full: number): number => (full > 0 ? Math.max(0, Math.min(1, v / full)) : 0);

/** 0..1 for an RTT: 0 at or below greenMs, 0.5 at yellowMs, 1 at or above redMs. */
export function rttScale(ms: number, t: { greenMs: number; yellowMs: number; redMs: number }): number {
  if (ms <= t.greenMs) return 0;
  if (ms < t.yellowMs) return (0.5 * (ms - t.greenMs)) / Math.max(1e-9, t.yellowMs - t.greenMs);
  if (ms < t.redMs) return 0.5 + (0.5 * (ms - t.yellowMs)) / Math.max(1e-9, t.redMs - t.yellowMs);
  return 1;
}
