/**
 * The history's TCP quality capture (./history.ts, every 10 s in lqosd): flow tracking's per-circuit
 * figures (./circuitTcp.ts: Internet-side RTT p50/p90 over a 30 s window, retransmits and TCP packets
 * over a 10 s window) for the circuits of the plan, and their nodes and the totals:
 * the RTT p50/p90 across the medians of the circuits below (each circuit with RTT samples counts
 * once) and the summed retransmits / packets. Pure.
 */
import type { FlowSnapshot } from '../api/flows.ts';
import { percentile } from '../flows/percentiles.ts';
import { circuitTcpById, type CircuitTcp } from './circuitTcp.ts';
import type { QualityValues } from './historyAcc.ts';
import type { QualitySample } from './history.ts';
import type { PlanIndex } from './rollup.ts';

const valuesOf = (t: CircuitTcp): QualityValues => ({
  rttP50: t.rttP50Ms,
  rttP90: t.rttP90Ms,
  retransDown: t.retransmitsDown,
  retransUp: t.retransmitsUp,
  tcpDown: t.packetsDown,
  tcpUp: t.packetsUp,
});

/** Sums of an aggregate (a node, the totals) while its circuits are visited. */
class Aggregate {
  private medians: number[] = [];
  private v: QualityValues = { rttP50: null, rttP90: null, retransDown: 0, retransUp: 0, tcpDown: 0, tcpUp: 0 };
  add(q: QualityValues): void {
    if (q.rttP50 !== null) this.medians.push(q.rttP50);
    this.v.retransDown += q.retransDown;
    this.v.retransUp += q.retransUp;
    this.v.tcpDown += q.tcpDown;
    this.v.tcpUp += q.tcpUp;
  }
  done(): QualityValues {
    return { ...this.v, rttP50: percentile(this.medians, 50), rttP90: percentile(this.medians, 90) };
  }
}

/** One capture: the plan's circuits flow tracking knows, their nodes (every ancestor) and the totals. */
export function qualitySample(ix: PlanIndex, snap: FlowSnapshot | undefined): QualitySample {
  const circuits = new Map<number, QualityValues>();
  const nodeAggs = new Map<number, Aggregate>();
  const totals = new Aggregate();
  for (const [id, tcp] of circuitTcpById(snap)) {
    const c = ix.circuitById.get(id);
    if (c === undefined) continue;
    const q = valuesOf(tcp);
    circuits.set(c, q);
    totals.add(q);
    for (let n = ix.circuitNode[c]!; n >= 0; n = ix.nodeParent[n]!) {
      let a = nodeAggs.get(n);
      if (!a) nodeAggs.set(n, (a = new Aggregate()));
      a.add(q);
    }
  }
  const nodes = new Map([...nodeAggs].map(([n, a]) => [n, a.done()]));
  return { totals: circuits.size ? totals.done() : undefined, nodeKeys: ix.nodePaths, nodes, circuitKeys: ix.circuitIds, circuits };
}
