/**
 * The FlowSnapshot lqosd serves (GET /api/flows, `flows` channel), built from a FlowTracker after a
 * poll: ASN, country and globe tables, per-circuit stats with their busiest flows, top and recently
 * finished flows. Per-flow views are built only for the lists that are returned.
 */
import type { CircuitFlowView, FlowSnapshot, FlowView } from '../api/flows.ts';
import { AsnTable, GlobeTable, countriesOf, lastRttMs } from './aggregates.ts';
import type { Enrichment } from './enrich.ts';
import type { ActiveFlow, FlowTracker, TrackedFlowRef } from './tracker.ts';
import type { ResolveCircuit } from './views.ts';

export interface SnapshotLimits {
  topN: number;
  perCircuitN: number;
  recentN: number;
  /** Only the busiest N circuits carry their flow list. */
  circuitsWithFlows: number;
}

export interface SnapshotSources {
  tracker: FlowTracker;
  enrich(ip: string): Enrichment;
  circuitOf: ResolveCircuit;
  view(f: ActiveFlow): FlowView;
  /** Entries in the enricher's cache (stats). */
  enrichCache(): number;
}

export const EMPTY_SNAPSHOT: FlowSnapshot = {
  at: 0, activeFlows: 0, globe: [], asns: [], countries: [], circuits: [], topFlows: [], recent: [],
  stats: { pollMs: 0, snapshotMs: 0, rttEvents: 0, ringDrops: 0, ringDropsDelta: 0, expired: 0, evicted: 0, enrichCache: 0 },
};

const rate = (f: TrackedFlowRef) => f.rateBps.down + f.rateBps.up;

interface FlowScan {
  asns: AsnTable;
  globe: GlobeTable;
  byCircuit: Map<bigint, TrackedFlowRef[]>;
  all: TrackedFlowRef[];
}

/** One pass over the active flows: ASN and globe tables, flows grouped by circuit. */
function scanFlows(src: SnapshotSources): FlowScan {
  const scan: FlowScan = { asns: new AsnTable(), globe: new GlobeTable(), byCircuit: new Map(), all: [] };
  src.tracker.forEachFlow((f) => {
    const e = f.entry;
    scan.all.push(f);
    let l = scan.byCircuit.get(e.circuitHash);
    if (!l) scan.byCircuit.set(e.circuitHash, (l = []));
    l.push(f);
    const geo = src.enrich(e.remoteIp);
    const rtt = lastRttMs(e);
    scan.asns.add(f, geo, rtt);
    scan.globe.add(e, geo, rtt);
  });
  return scan;
}

/** Recently finished flows join the globe, with their RTT (sum of both sides, or the one known). */
function addRecentToGlobe(src: SnapshotSources, globe: GlobeTable, recent: ActiveFlow[]): void {
  for (const f of recent) {
    const t = f.rttMs.customer !== null && f.rttMs.internet !== null ? f.rttMs.customer + f.rttMs.internet : (f.rttMs.internet ?? f.rttMs.customer);
    globe.add(f, src.enrich(f.remoteIp), t);
  }
}

/** Circuits by rate; the busiest `circuitsWithFlows` carry their top `perCircuitN` flows. */
function circuitViews(src: SnapshotSources, byCircuit: Map<bigint, TrackedFlowRef[]>, limits: SnapshotLimits): CircuitFlowView[] {
  const stats = src.tracker.circuitStats().sort((a, b) => b.rateBps.down + b.rateBps.up - (a.rateBps.down + a.rateBps.up));
  return stats.map((s, rank) => {
    const flows = byCircuit.get(s.circuitHash) ?? [];
    let top: TrackedFlowRef[] = [];
    if (rank < limits.circuitsWithFlows && limits.perCircuitN > 0) top = flows.sort((a, b) => rate(b) - rate(a)).slice(0, limits.perCircuitN);
    const c = flows.length ? src.circuitOf(s.circuitHash, flows[0]!.entry.localIp) : undefined;
    return {
      circuitHash: s.circuitHash.toString(), circuitId: c?.id ?? null, circuitName: c?.name ?? null, tcHandle: s.tcHandle,
      activeFlows: s.activeFlows, rateBps: s.rateBps, rtt: s.rtt, retransmits: s.retransmits,
      flows: top.map((f) => src.view(src.tracker.viewOf(f))),
    };
  });
}

export function buildSnapshot(src: SnapshotSources, limits: SnapshotLimits): FlowSnapshot {
  const t0 = performance.now();
  const { tracker } = src;
  const recent = tracker.recent();
  const scan = scanFlows(src);
  addRecentToGlobe(src, scan.globe, recent);
  const circuits = circuitViews(src, scan.byCircuit, limits);
  const st = tracker.lastStats;
  const asnRows = scan.asns.rows();
  return {
    at: tracker.lastPollAt,
    activeFlows: tracker.activeCount,
    globe: scan.globe.rows(),
    asns: asnRows,
    countries: countriesOf(asnRows),
    circuits,
    topFlows: scan.all.sort((a, b) => rate(b) - rate(a)).slice(0, limits.topN).map((f) => src.view(tracker.viewOf(f))),
    recent: recent.slice(-limits.recentN).reverse().map(src.view),
    stats: { pollMs: st.pollMs, snapshotMs: performance.now() - t0, rttEvents: st.events, ringDrops: st.ringDrops, ringDropsDelta: st.ringDropsDelta, expired: st.expired, evicted: st.evicted, enrichCache: src.enrichCache() },
  };
}
