/**
 * What lqosd writes to InfluxDB each interval, as line protocol (pure): measurement `shaper`
 * (totals), `site` (the top-level nodes of the plan, whose rates telemetry keeps), `circuit` (every circuit with traffic this tick, from
 * the `circuits` channel, bounded there), each tagged with `node` (lqos.conf node_name, so several
 * shapers can share a bucket). Circuits carry their TCP RTT (p50/p90, ms) and retransmit share when
 * flow tracking has them (../circuitTcp.ts, shared with /metrics). Tags are ids and paths only (names of subscribers stay out of the tags).
 */
import type { FlowSnapshot } from '../../api/flows.ts';
import type { CircuitRatesPayload, NodeRateView, Totals } from '../../api/telemetry.ts';
import { circuitTcpById } from '../circuitTcp.ts';
import { pointLine } from './lineProtocol.ts';

export interface InfluxSources {
  /** ms of the telemetry tick. */
  at: number;
  node: string;
  totals: Totals;
  nodes: readonly NodeRateView[];
  circuits: CircuitRatesPayload | undefined;
  flows: FlowSnapshot | undefined;
}

export function influxLines(s: InfluxSources): string[] {
  const t = s.at / 1000;
  const out: (string | undefined)[] = [
    pointLine(
      'shaper',
      { node: s.node },
      {
        down_bps: s.totals.downBps,
        up_bps: s.totals.upBps,
        shaped_down_bps: s.totals.shapedDownBps,
        shaped_up_bps: s.totals.shapedUpBps,
        unmapped_down_bps: s.totals.unmappedDownBps,
        unmapped_up_bps: s.totals.unmappedUpBps,
        active_circuits: { int: s.circuits?.activeCount ?? 0 },
      },
      t,
    ),
  ];
  // Live rates are kept for top-level sites only (the roll-up); deeper nodes would read 0.
  const top = s.nodes.reduce((d, x) => Math.min(d, x.depth), Infinity);
  for (const n of s.nodes.filter((x) => x.depth === top)) {
    out.push(pointLine('site', { node: s.node, site: n.path }, { down_bps: n.downBps, up_bps: n.upBps, util_down_pct: n.utilDownPct, util_up_pct: n.utilUpPct }, t));
  }
  const tcpOf = circuitTcpById(s.flows);
  for (const c of s.circuits?.active ?? []) {
    const f = tcpOf.get(c.id);
    out.push(
      pointLine(
        'circuit',
        { node: s.node, circuit_id: c.id, parent: c.parentPath },
        {
          down_bps: c.downBps,
          up_bps: c.upBps,
          util_down_pct: c.utilDownPct,
          util_up_pct: c.utilUpPct,
          rtt_p50_ms: f?.rttP50Ms ?? undefined,
          rtt_p90_ms: f?.rttP90Ms ?? undefined,
          retransmit_down_pct: f?.retransmitDownPct ?? undefined,
          retransmit_up_pct: f?.retransmitUpPct ?? undefined,
        },
        t,
      ),
    );
  }
  return out.filter((l): l is string => l !== undefined);
}
