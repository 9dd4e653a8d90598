/**
 * The bus `top_circuits` reply (lqtop's data), pure: the circuits with traffic from telemetry's
 * `circuits` channel payload (rates, plan, utilisation), joined with flow tracking's per-circuit RTT
 * and retransmits and the queue stats' drops, sorted, the first `limit` kept. lib/daemon/services.ts
 * hands in the live sources; busHandlers.ts adds lqosd's own status.
 */
import type { CircuitFlowView, FlowSnapshot } from '../api/flows.ts';
import type { CircuitRateView, QueueCircuitView, Totals } from '../api/telemetry.ts';
import type { RequestOf, TopCircuitRow, TopCircuitsReply, TopCircuitsSort } from '../bus/protocol.ts';
import type { CircuitRatesPayload } from '../api/telemetry.ts';
import type { Telemetry } from '../telemetry/service.ts';

export interface TopCircuitsSources {
  /** ms of the telemetry tick. */
  at: number;
  dataplane: boolean;
  totals: Totals;
  /** Circuits in the plan in force. */
  shaped: number;
  /** Circuits with traffic this tick (telemetry's `circuits` channel: the busiest, bounded). */
  active: readonly CircuitRateView[];
  activeCount: number;
  /** A circuit's leaf-qdisc stats (deltas over `queueDtMs`). */
  queues(id: string): QueueCircuitView | undefined;
  queueDtMs: number;
  /** Flow tracking's snapshot; undefined when it does not run. */
  flows: FlowSnapshot | undefined;
}

export type TopCircuitsData = Omit<TopCircuitsReply, 'lqosd'>;

/**
 * The p50 RTT lqtop shows: the customer side (last mile + queue, what the subscriber feels), else the
 * Internet side. History, Prometheus and InfluxDB keep the Internet side (lib/telemetry/circuitTcp.ts);
 * OPERATIONS says which is which.
 */
export const rttOf = (f: CircuitFlowView | undefined): number | null => f?.rtt.customer.p50 ?? f?.rtt.internet.p50 ?? null;

export function retransmitPctOf(f: CircuitFlowView | undefined): number | null {
  const r = f?.retransmits;
  const packets = r ? r.packetsDown + r.packetsUp : 0;
  return r && packets > 0 ? Math.round(((r.down + r.up) / packets) * 1000) / 10 : null;
}

export function dropsPerSecondOf(q: QueueCircuitView | undefined, dtMs: number): number | null {
  if (!q || (!q.down && !q.up) || !(dtMs > 0)) return null;
  return Math.round((((q.down?.dDrops ?? 0) + (q.up?.dDrops ?? 0)) * 10000) / dtMs) / 10;
}

interface Keyed {
  c: CircuitRateView;
  rtt: number | null;
}

const total = (k: Keyed) => k.c.downBps + k.c.upBps;
const KEYS: Record<TopCircuitsSort, (k: Keyed) => number> = {
  total,
  download: (k) => k.c.downBps,
  upload: (k) => k.c.upBps,
  // Circuits without an RTT sort after every circuit with one.
  rtt: (k) => k.rtt ?? -1,
};

/** Highest key first; ties by total rate, then by id (a stable order from one second to the next). */
export function sortRows<T extends Keyed>(rows: T[], by: TopCircuitsSort): T[] {
  const key = KEYS[by];
  return rows.sort((a, b) => key(b) - key(a) || total(b) - total(a) || (a.c.id < b.c.id ? -1 : a.c.id > b.c.id ? 1 : 0));
}

export function topCircuitsData(s: TopCircuitsSources, req: Pick<RequestOf<'top_circuits'>, 'limit' | 'sortBy'>): TopCircuitsData {
  // Only the active circuits' flow stats are looked up (the snapshot holds every circuit with flows).
  const active = new Set(s.active.map((c) => c.id));
  const flowsOf = new Map<string, CircuitFlowView>();
  for (const f of s.flows?.circuits ?? []) if (f.circuitId !== null && active.has(f.circuitId)) flowsOf.set(f.circuitId, f);
  const keyed = s.active.map((c) => ({ c, rtt: rttOf(flowsOf.get(c.id)) }));
  const rows = sortRows(keyed, req.sortBy).slice(0, req.limit).map(({ c, rtt }): TopCircuitRow => ({
    id: c.id,
    name: c.name,
    parentPath: c.parentPath,
    downBps: c.downBps,
    upBps: c.upBps,
    planDownMbps: c.ceilDownMbps,
    planUpMbps: c.ceilUpMbps,
    utilDownPct: c.utilDownPct,
    utilUpPct: c.utilUpPct,
    rttMs: rtt,
    retransmitPct: retransmitPctOf(flowsOf.get(c.id)),
    dropsPerSecond: dropsPerSecondOf(s.queues(c.id), s.queueDtMs),
  }));
  const t = s.totals;
  return {
    at: s.at,
    sortBy: req.sortBy,
    totals: { downBps: Math.round(t.downBps), upBps: Math.round(t.upBps), shapedDownBps: Math.round(t.shapedDownBps), shapedUpBps: Math.round(t.shapedUpBps) },
    circuits: { shaped: s.shaped, active: s.activeCount },
    flows: s.flows !== undefined,
    rows,
    ...(s.dataplane ? {} : { note: 'no dataplane attached (dry run or degraded): no circuit rates' }),
  };
}

/** The live sources: telemetry's current state, the flow snapshot of the last poll, the plan's circuit count. */
export function liveTopCircuits(t: Telemetry, flows: () => FlowSnapshot | undefined, shaped: () => number) {
  return (req: RequestOf<'top_circuits'>): TopCircuitsData => {
    const snap = t.snapshot();
    const circuits = t.payload('circuits') as CircuitRatesPayload;
    const sources: TopCircuitsSources = {
      at: snap.at,
      dataplane: snap.dataplane,
      totals: snap.totals,
      shaped: shaped(),
      active: circuits.active,
      activeCount: circuits.activeCount,
      queues: (id) => t.circuitQueues(id),
      queueDtMs: snap.queues.dtMs,
      flows: flows(),
    };
    return topCircuitsData(sources, req);
  };
}
