/**
 * What the pages take from the telemetry channels (shapes in lib/api/telemetry.ts): one sample of the
 * total throughput per `throughput` push, and the live rates by node path and by circuit id.
 */
import type { BitRates, CircuitRateView, CircuitRatesPayload, NodeRateView, ThroughputPayload } from '../../../lib/api/index.ts';

export interface ThroughputSample extends BitRates {
  /** ms since the epoch. */
  at: number;
  /** false: no dataplane attached (dry run or degraded), the counters stay at zero. */
  dataplane: boolean;
}

/** The totals of one push; before lqosd's first tick (`at` 0) it is stamped with the arrival time. */
export function throughputSample(p: ThroughputPayload, now = Date.now()): ThroughputSample {
  return { at: p.at > 0 ? p.at : now, downBps: p.totals.downBps, upBps: p.totals.upBps, dataplane: p.dataplane };
}

/** Live rates of the top-level nodes, by path. */
export function nodeRates(p: ThroughputPayload): Map<string, NodeRateView> {
  return new Map(p.nodes.map((n) => [n.path, n]));
}

/** Live rates of the circuits with traffic, by id (the top lists too: `active` is bounded). */
export function circuitRates(p: CircuitRatesPayload): Map<string, CircuitRateView> {
  const out = new Map<string, CircuitRateView>();
  for (const list of [p.active, p.topDownload, p.topUpload]) {
    for (const c of list) if (!out.has(c.id)) out.set(c.id, c);
  }
  return out;
}
