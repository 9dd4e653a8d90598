/**
 * FlowView: one tracked flow as the web UI shows it (lib/api/flows.ts): protocol name, RTT total,
 * the circuit it belongs to and the remote's ASN/country.
 */
import { PROTO_NAMES } from '../../dataplane/flowAbi.ts';
import type { FlowView } from '../api/flows.ts';
import type { Enrichment } from './enrich.ts';
import type { ActiveFlow } from './tracker.ts';

export interface CircuitRef {
  id: string;
  name?: string;
}

/** Map a flow's circuit hash (from the LPM mapping) and local IP to the circuit id/name. */
export type ResolveCircuit = (circuitHash: bigint, localIp: string) => CircuitRef | undefined;

/** `resolve` cached per (hash, local IP); hash 0 (unshaped host) and no resolver give no circuit. */
export function cachedCircuits(resolve?: ResolveCircuit): ResolveCircuit {
  const cache = new Map<string, CircuitRef | undefined>();
  return (hash, localIp) => {
    if (!resolve || hash === 0n) return undefined;
    const k = `${hash}/${localIp}`;
    if (!cache.has(k)) {
      cache.set(k, resolve(hash, localIp));
      if (cache.size > 200_000) cache.clear();
    }
    return cache.get(k);
  };
}

/** Customer + Internet side RTT when both are known, else null. */
export function totalRtt(rtt: { customer: number | null; internet: number | null }): number | null {
  return rtt.customer !== null && rtt.internet !== null ? rtt.customer + rtt.internet : null;
}

export function flowView(f: ActiveFlow, geo: Enrichment, c: CircuitRef | undefined): FlowView {
  const info = geo && geo !== 'private' ? geo : null;
  return {
    id: f.id,
    protocol: PROTO_NAMES[f.proto] ?? String(f.proto),
    localIp: f.localIp, localPort: f.localPort, remoteIp: f.remoteIp, remotePort: f.remotePort,
    bytes: f.bytes, packets: f.packets, rateBps: f.rateBps, retransmits: f.retransmits,
    rttMs: { customer: f.rttMs.customer, internet: f.rttMs.internet, total: totalRtt(f.rttMs) },
    durationMs: f.durationMs, endStatus: f.endStatus, tcHandle: f.tcHandle,
    circuitHash: f.circuitHash.toString(), circuitId: c?.id ?? null, circuitName: c?.name ?? null,
    asn: info?.asn ?? null, asName: info?.asName ?? null, country: info?.country ?? null,
    remoteKind: geo === 'private' ? 'private' : info ? 'public' : 'unknown',
  };
}
