/**
 * GET /api/history: lqosd's per-minute history (lib/telemetry/history.ts) for the network, a site
 * (network.json node path) or a circuit, downsampled to at most ~600 buckets. Rates in bits/s,
 * drops/marks in packets, RTT in ms, retransmits in percent of TCP packets; `t` in unix seconds (UTC).
 */

export type HistoryScope = 'network' | 'site' | 'circuit';
export type HistoryRange = '1h' | '24h' | '7d' | '30d';

/** Seconds each range button spans. */
export const HISTORY_RANGES: Record<HistoryRange, number> = { '1h': 3600, '24h': 86_400, '7d': 7 * 86_400, '30d': 30 * 86_400 };

/** One bucket: averages (idle seconds count as 0) and maxima of the 1 Hz rates, summed drops/marks. */
export interface HistoryPoint {
  /** Bucket start, unix seconds. */
  t: number;
  downAvgBps: number;
  downMaxBps: number;
  upAvgBps: number;
  upMaxBps: number;
  dropsDown: number;
  dropsUp: number;
  marksDown: number;
  marksUp: number;
  /** Internet-side TCP RTT (ms): the bucket's average of the per-minute p50 and p90; null without samples. */
  rttP50Ms: number | null;
  rttP90Ms: number | null;
  /** TCP retransmits / TCP packets in the bucket, percent; null without TCP packets. */
  retransDownPct: number | null;
  retransUpPct: number | null;
}

export interface HistoryResponse {
  scope: HistoryScope;
  /** Site path or Circuit ID ('' for the network). */
  id: string;
  /** Display name: the circuit's or site's name in the plan in force (id when no longer in it). */
  name: string;
  /** Unix seconds: [from, to). */
  from: number;
  to: number;
  /** Bucket size in seconds (60 = minute rows). */
  step: number;
  points: HistoryPoint[];
  /** Days kept for this scope ([history] retention_days / circuit_retention_days). */
  retentionDays: number;
  /** false: lqosd keeps no history (telemetry off, or its file could not be opened). */
  available: boolean;
}
