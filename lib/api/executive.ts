/**
 * GET /api/executive?range=24h|7d: the Executive summary over lqosd's per-minute history
 * (lib/telemetry/history.ts) joined with the network in force, and the top ASNs of flow tracking now.
 * Rates in bits/s, plan rates in Mbps, RTT in ms, shares in percent; times in unix seconds (UTC).
 */

export type ExecutiveRange = '24h' | '7d';

/** Seconds each range spans. */
export const EXECUTIVE_RANGES: Record<ExecutiveRange, number> = { '24h': 86_400, '7d': 7 * 86_400 };

/** How the rankings are made (the page prints them). */
export interface ExecutiveRules {
  /** Rows per site / node table. */
  siteLimit: number;
  circuitLimit: number;
  asnLimit: number;
  /** A site needs this many 10-s RTT captures in the range to be ranked by RTT. */
  minRttCaptures: number;
  /** A site needs this many TCP packets in the range to be ranked by retransmits. */
  minTcpPackets: number;
  /** A minute is "at the ceiling" when its peak download ≥ this share of the circuit's download ceil. */
  ceilingPct: number;
  /** A circuit needs this many minutes with traffic to be ranked. */
  minActiveMinutes: number;
}

export interface ExecutiveTotals {
  /** Minutes with a totals row (lqosd was running). */
  minutes: number;
  downAvgBps: number;
  upAvgBps: number;
  downPeakBps: number;
  /** Minute of the peak. */
  downPeakAt: number;
  upPeakBps: number;
  upPeakAt: number;
}

/** A site (network.json node) of the network in force with its TCP quality over the range. */
export interface ExecutiveSiteRow {
  path: string;
  name: string;
  /** Average of the minutes' p50 / p90 (weighted by captures); null without RTT samples. */
  rttP50Ms: number | null;
  rttP90Ms: number | null;
  rttCaptures: number;
  /** TCP retransmits / TCP packets, both directions together and per direction. */
  retransPct: number | null;
  retransDownPct: number | null;
  retransUpPct: number | null;
  tcpPackets: number;
}

/** A node's plan (ceil of the plan in force) against its measured peak over the range. */
export interface ExecutiveNodeLoad {
  path: string;
  name: string;
  planDownMbps: number;
  planUpMbps: number;
  peakDownBps: number;
  peakUpBps: number;
  /** Peak as percent of plan. */
  downPct: number;
  upPct: number;
}

/** A circuit that spends much of its active time at its download ceiling. */
export interface ExecutiveCeilingRow {
  id: string;
  name: string;
  parent: string;
  ceilDownMbps: number;
  /** Minutes of the range with traffic (either direction). */
  activeMinutes: number;
  /** Of those, minutes whose peak download reached ceilingPct of the ceil. */
  atCeilingMinutes: number;
  sharePct: number;
  peakDownBps: number;
}

/** A remote ASN by the bytes of its tracked flows now. */
export interface ExecutiveAsnRow {
  asn: number | null;
  name: string;
  country: string | null;
  flows: number;
  bytesDown: number;
  bytesUp: number;
  rateDownBps: number;
  rateUpBps: number;
}

export interface ExecutiveResponse {
  range: ExecutiveRange;
  /** [from, to), unix seconds; `to` ends with the minute in progress. */
  from: number;
  to: number;
  /** false: lqosd keeps no history (telemetry off, or its file could not be opened). */
  history: boolean;
  /** The network the rankings are joined with: applied, a dry run's plan, or none. */
  plan: 'applied' | 'planned' | 'none';
  /** null: no totals rows in the range (no history yet). */
  totals: ExecutiveTotals | null;
  worstRtt: ExecutiveSiteRow[];
  worstRetransmits: ExecutiveSiteRow[];
  oversubscribed: ExecutiveNodeLoad[];
  atCeiling: ExecutiveCeilingRow[];
  /** tracking false: flow tracking does not run; `at` = the snapshot's time (ms). */
  asns: { tracking: boolean; at: number | null; rows: ExecutiveAsnRow[] };
  rules: ExecutiveRules;
}
