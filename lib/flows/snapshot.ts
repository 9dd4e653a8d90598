/**
 * The FlowSnapshot lqosd serves (GET /api/flows, `flows` channel), built on demand (when the API or
 * the web UI asks, at most once per poll) from the tracker's flow store: ASN, country and globe
 * tables, per-circuit stats with their busiest flows, top and recently finished flows. One pass
 * over the store's typed arrays (and the ring of finished flows); remote addresses are enriched once per flow (the result is kept as
 * a small tag in the store, `GeoTags`), and per-flow views are built only for the lists returned.
 */
import { ADDR_SIZE, decodeAddr } from '../../dataplane/abi.ts';
import { FLOW_KEY_SIZE, FLOW_KEY_WORDS } from '../../dataplane/flowAbi.ts';
import type { CircuitFlowView, FlowSnapshot, FlowView } from '../api/flows.ts';
import { AsnTable, GlobeTable, countriesOf, lastRttOf, type AsnAcc, type GlobeAcc } from './aggregates.ts';
import type { CircuitFlowStats } from './circuitWindows.ts';
import type { Enrichment } from './enrich.ts';
import type { FlowStore } from './flowStore.ts';
import type { ActiveFlow, FlowTracker } from './tracker.ts';
import type { ResolveCircuit } from './views.ts';

export interface SnapshotLimits {
  topN: number;
  perCircuitN: number;
  recentN: number;
  /** Only the busiest N circuits carry their flow list. */
  circuitsWithFlows: number;
}

/** Distinct enrichment results the tags may name before they start over. */
const MAX_GEOS = 65_536;

/**
 * Per-flow enrichment cache: the store's `tag` of a slot names one distinct enrichment result
 * (interned by content: many addresses share an ASN and a place), looked up once per flow.
 */
export class GeoTags {
  geos: Enrichment[] = [null, 'private'];
  private byKey = new Map<string, number>();

  constructor(private readonly enrich: (ip: string) => Enrichment) {}

  /** Called before a scan: start over when too many distinct results piled up. */
  begin(tracker: FlowTracker): void {
    if (this.geos.length < MAX_GEOS) return;
    this.geos = [null, 'private'];
    this.byKey = new Map();
    tracker.store.tag.fill(-1);
    tracker.finished.store.tag.fill(-1);
  }

  /** The tag of slot s of `st` (the tracker's store or its finished ring; enriched on first use). */
  of(st: FlowStore, s: number): number {
    const t = st.tag[s]!;
    if (t >= 0) return t;
    const id = this.intern(this.enrich(decodeAddr(st.keyBuf, s * FLOW_KEY_SIZE + ADDR_SIZE)));
    st.tag[s] = id;
    return id;
  }

  private intern(g: Enrichment): number {
    if (g === null) return 0;
    if (g === 'private') return 1;
    const k = `${g.asn}|${g.asName}|${g.country}|${g.countryName}|${g.city}|${g.lat}|${g.lon}`;
    let id = this.byKey.get(k);
    if (id === undefined) {
      id = this.geos.length;
      this.geos.push(g);
      this.byKey.set(k, id);
    }
    return id;
  }
}

export interface SnapshotSources {
  tracker: FlowTracker;
  enrich(ip: string): Enrichment;
  geo: GeoTags;
  circuitOf: ResolveCircuit;
  /** The FlowView of a flow with its remote's enrichment (looked up when not given). */
  view(f: ActiveFlow, geo?: Enrichment): FlowView;
  /** Entries in the enricher's cache (stats). */
  enrichCache(): number;
}

export const EMPTY_SNAPSHOT: FlowSnapshot = {
  at: 0, activeFlows: 0, globe: [], asns: [], countries: [], circuits: [], topFlows: [], recent: [],
  stats: { pollMs: 0, snapshotMs: 0, rttEvents: 0, ringDrops: 0, ringDropsDelta: 0, expired: 0, evicted: 0, enrichCache: 0 },
};

/** One pass over the active flows: ASN and globe tables. */
function scanFlows(src: SnapshotSources): { asns: AsnTable; globe: GlobeTable } {
  const t = src.tracker, st = t.store, geo = src.geo;
  const asns = new AsnTable(), globe = new GlobeTable();
  const rowOf: (AsnAcc | undefined)[] = [], pointOf: (GlobeAcc | null | undefined)[] = [];
  geo.begin(t);
  for (let p = 0; p < st.size; p++) {
    const s = st.live[p]!, g = geo.of(st, s), info = geo.geos[g] as Enrichment;
    const rtt = lastRttOf(st.rttC[s]!, st.rttI[s]!);
    const tcp = (st.keyW[s * FLOW_KEY_WORDS + 9]! & 0xff) === 6;
    AsnTable.addTo(rowOf[g] ??= asns.row(info), st.rateD[s]!, st.rateU[s]!, st.bytesD[s]!, st.bytesU[s]!,
      tcp ? st.retD[s]! + st.retU[s]! : 0, tcp ? st.pktsD[s]! + st.pktsU[s]! : 0, rtt);
    let pt = pointOf[g];
    if (pt === undefined) pt = pointOf[g] = globe.point(info, () => decodeAddr(st.keyBuf, s * FLOW_KEY_SIZE + ADDR_SIZE));
    if (pt) GlobeTable.addTo(pt, st.bytesD[s]!, st.bytesU[s]!, rtt);
  }
  return { asns, globe };
}

/** Recently finished flows join the globe, with their RTT (sum of both sides, or the one known). */
function addRecentToGlobe(src: SnapshotSources, globe: GlobeTable): void {
  const ring = src.tracker.finished, st = ring.store;
  for (let i = 0; i < ring.count; i++) {
    const d = ring.at(i), r = ring.rttOf(d);
    const t = r.customer !== null && r.internet !== null ? r.customer + r.internet : (r.internet ?? r.customer);
    const p = globe.point(src.geo.geos[src.geo.of(st, d)] as Enrichment, () => decodeAddr(st.keyBuf, d * FLOW_KEY_SIZE + ADDR_SIZE));
    if (p) GlobeTable.addTo(p, st.bytesD[d]!, st.bytesU[d]!, t);
  }
}

/** The view of a live slot, enriched through its tag. */
function slotView(src: SnapshotSources, s: number): FlowView {
  const t = src.tracker;
  return src.view(t.viewSlot(s), src.geo.geos[src.geo.of(t.store, s)] as Enrichment);
}

/** The newest `n` finished flows, newest first, enriched through their tags. */
function recentViews(src: SnapshotSources, n: number): FlowView[] {
  const ring = src.tracker.finished, out: FlowView[] = [];
  for (let i = ring.count - 1; i >= Math.max(0, ring.count - n); i--) {
    const d = ring.at(i);
    out.push(src.view(ring.view(d), src.geo.geos[src.geo.of(ring.store, d)] as Enrichment));
  }
  return out;
}

/** Circuits by rate; the busiest `circuitsWithFlows` carry their top `perCircuitN` flows. */
function circuitViews(src: SnapshotSources, limits: SnapshotLimits): CircuitFlowView[] {
  const t = src.tracker, st = t.store;
  const { stats, byIndex } = t.circuitStatsByIndex();
  const cidOf = new Map<CircuitFlowStats, number>();
  byIndex.forEach((x, cid) => x && cidOf.set(x, cid));
  stats.sort((a, b) => b.rateBps.down + b.rateBps.up - (a.rateBps.down + a.rateBps.up));
  // Per circuit index: its first flow (names the circuit) and, for the busiest, all its flows.
  const first = new Int32Array(t.circuitIds.span).fill(-1);
  const lists = new Map<number, number[]>();
  if (limits.perCircuitN > 0) for (let r = 0; r < Math.min(limits.circuitsWithFlows, stats.length); r++) {
    const cid = cidOf.get(stats[r]!);
    if (cid !== undefined) lists.set(cid, []);
  }
  for (let p = 0; p < st.size; p++) {
    const s = st.live[p]!, c = st.cid[s]!;
    if (first[c] === -1) first[c] = s;
    lists.get(c)?.push(s);
  }
  const rate = (s: number) => st.rateD[s]! + st.rateU[s]!;
  return stats.map((s) => {
    const cid = cidOf.get(s);
    const f = cid === undefined ? -1 : first[cid]!;
    const c = f >= 0 ? src.circuitOf(s.circuitHash, decodeAddr(st.keyBuf, f * FLOW_KEY_SIZE)) : undefined;
    const mine = cid === undefined ? undefined : lists.get(cid);
    const top = mine ? t.topSlots(limits.perCircuitN, rate, mine) : [];
    return {
      circuitHash: s.circuitHash.toString(), circuitId: c?.id ?? null, circuitName: c?.name ?? null, tcHandle: s.tcHandle,
      activeFlows: s.activeFlows, rateBps: s.rateBps, rtt: s.rtt, retransmits: s.retransmits,
      flows: top.map((x) => slotView(src, x)),
    };
  });
}

export function buildSnapshot(src: SnapshotSources, limits: SnapshotLimits): FlowSnapshot {
  const t0 = performance.now();
  const { tracker } = src;
  const st = tracker.store;
  const { asns, globe } = scanFlows(src);
  addRecentToGlobe(src, globe);
  const circuits = circuitViews(src, limits);
  const ps = tracker.lastStats;
  const asnRows = asns.rows();
  const top = tracker.topSlots(limits.topN, (s) => st.rateD[s]! + st.rateU[s]!);
  return {
    at: tracker.lastPollAt,
    activeFlows: tracker.activeCount,
    globe: globe.rows(),
    asns: asnRows,
    countries: countriesOf(asnRows),
    circuits,
    topFlows: top.map((s) => slotView(src, s)),
    recent: recentViews(src, limits.recentN),
    stats: { pollMs: ps.pollMs, snapshotMs: performance.now() - t0, rttEvents: ps.events, ringDrops: ps.ringDrops, ringDropsDelta: ps.ringDropsDelta, expired: ps.expired, evicted: ps.evicted, enrichCache: src.enrichCache() },
  };
}
