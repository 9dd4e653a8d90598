/**
 * A circuit's TCP figures as lqosd exports them (InfluxDB `circuit` points, Prometheus circuit and
 * site series), read from flow tracking's snapshot: the Internet-side RTT percentiles (ms) and the
 * retransmits over the tracker's windows. Pure; one place, so both exports say the same thing.
 */
import type { CircuitFlowView, FlowSnapshot } from '../api/flows.ts';

export interface CircuitTcp {
  rttP50Ms: number | null;
  rttP90Ms: number | null;
  /** RTT samples behind the percentiles. */
  rttSamples: number;
  /** TCP retransmits and TCP packets over the retransmit window, per direction, and their share (%). */
  retransmitsDown: number;
  retransmitsUp: number;
  packetsDown: number;
  packetsUp: number;
  retransmitDownPct: number | null;
  retransmitUpPct: number | null;
}

export function circuitTcpOf(f: CircuitFlowView): CircuitTcp {
  const rtt = f.rtt.internet;
  const r = f.retransmits;
  return {
    rttP50Ms: rtt.p50,
    rttP90Ms: rtt.p90,
    rttSamples: rtt.samples,
    retransmitsDown: r.down,
    retransmitsUp: r.up,
    packetsDown: r.packetsDown,
    packetsUp: r.packetsUp,
    retransmitDownPct: r.pctDown,
    retransmitUpPct: r.pctUp,
  };
}

/** The TCP figures of every circuit flow tracking knows, by Circuit ID (flows of no circuit are left out). */
export function circuitTcpById(flows: FlowSnapshot | undefined): Map<string, CircuitTcp> {
  const out = new Map<string, CircuitTcp>();
  for (const f of flows?.circuits ?? []) if (f.circuitId) out.set(f.circuitId, circuitTcpOf(f));
  return out;
}
