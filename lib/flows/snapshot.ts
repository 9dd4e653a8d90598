/**
 * The FlowSnapshot lqosd serves (GET /api/flows, `flows` channel), built on demand (when the API or
 * the web UI asks, at most once per poll) from the tracker's flow store: ASN, country and globe
 * tables, per-circuit stats with their busiest flows, top and recently finished flows. Two walks
 * over the store's live slots (the tracker's per-circuit sums, then this module's tables and top
 * lists) and one over the ring of finished flows; remote addresses are enriched once per flow (the
 * result is kept as a small tag in the store, `GeoTags`), and per-flow views are built only for the
 * lists returned.
 */
import type { CircuitFlowView, FlowSnapshot, FlowView, GeoDataInfo } from '../api/flows.ts';
import { AsnTable, GlobeTable, countriesOf, lastRttOf, type AsnAcc, type GlobeAcc } from './aggregates.ts';
import type { CircuitFlowStats } from './circuitWindows.ts';
import type { Enrichment, IpInfo } from './enrich.ts';
import type { FlowStore } from './flowStore.ts';
import { TopN, type ActiveFlow, type FlowTracker } from './tracker.ts';
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

/** Entries of GeoTags' IPv4 address → tag cache (direct-mapped). */
const V4_CACHE_BITS = 12;

/**
 * Per-flow enrichment cache: the store's `tag` of a slot names one distinct enrichment result, looked
 * up once per flow. Results are told apart by identity: the enricher already returns one shared
 * object per distinct content (many addresses share an ASN and a place). The tags of recently
 * looked-up IPv4 remotes are also kept by address (a small direct-mapped table), so a flow to a
 * remote seen before takes its tag without its address being decoded to text and looked up again:
 * the cold snapshot of 100k flows allocates next to nothing for them.
 */
export class GeoTags {
  geos: Enrichment[] = [null, 'private'];
  private byInfo = new Map<IpInfo, number>();
  private readonly v4Addr = new Uint32Array(1 << V4_CACHE_BITS);
  private readonly v4Tag = new Int32Array(1 << V4_CACHE_BITS).fill(-1);

  constructor(private readonly enrich: (ip: string) => Enrichment) {}

  /** Called before a scan: start over when too many distinct results piled up. */
  begin(tracker: FlowTracker): void {
    if (this.geos.length < MAX_GEOS) return;
    this.geos = [null, 'private'];
    this.byInfo = new Map();
    this.v4Tag.fill(-1);
    tracker.store.clearTags();
    tracker.finished.store.clearTags();
  }

  /** The tag of slot s of `st` (the tracker's store or its finished ring; enriched on first use). */
  of(st: FlowStore, s: number): number {
    const t = st.tag(s);
    if (t >= 0) return t;
    const a = st.remoteV4(s), h = a >= 0 ? Math.imul(a, 0x9e3779b1) >>> (32 - V4_CACHE_BITS) : -1;
    if (h >= 0 && this.v4Tag[h]! >= 0 && this.v4Addr[h] === a) {
      st.setTag(s, this.v4Tag[h]!);
      return this.v4Tag[h]!;
    }
    const id = this.intern(this.enrich(st.remoteIp(s)));
    if (h >= 0) {
      this.v4Addr[h] = a;
      this.v4Tag[h] = id;
    }
    st.setTag(s, id);
    return id;
  }

  private intern(g: Enrichment): number {
    if (g === null) return 0;
    if (g === 'private') return 1;
    let id = this.byInfo.get(g);
    if (id === undefined) {
      id = this.geos.length;
      this.geos.push(g);
      this.byInfo.set(g, id);
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
  /** Where the enrichment data comes from, with its build dates. */
  geoData(): GeoDataInfo;
}

export const EMPTY_SNAPSHOT: FlowSnapshot = {
  at: 0, geoData: { sources: [], warnings: [] }, activeFlows: 0, globe: [], asns: [], countries: [], circuits: [], topFlows: [], recent: [],
  stats: { pollMs: 0, snapshotMs: 0, rttEvents: 0, ringDrops: 0, ringDropsDelta: 0, expired: 0, evicted: 0, enrichCache: 0 },
};

/** The per-circuit stats, busiest first, and the busiest circuits' flow selections (by circuit index). */
interface CircuitPass {
  stats: CircuitFlowStats[];
  cidOf: Map<CircuitFlowStats, number>;
  first: Int32Array;
  tops: Map<number, TopN>;
}

/** The tracker's per-circuit sums (its walk over the live slots), busiest first. */
function circuitPass(t: FlowTracker, limits: SnapshotLimits): CircuitPass {
  const { stats, byIndex, first } = t.circuitStatsByIndex();
  const cidOf = new Map<CircuitFlowStats, number>();
  byIndex.forEach((x, cid) => x && cidOf.set(x, cid));
  stats.sort((a, b) => b.rateBps.down + b.rateBps.up - (a.rateBps.down + a.rateBps.up));
  const tops = new Map<number, TopN>();
  if (limits.perCircuitN > 0) for (let r = 0; r < Math.min(limits.circuitsWithFlows, stats.length); r++) {
    const cid = cidOf.get(stats[r]!);
    if (cid !== undefined) tops.set(cid, new TopN(limits.perCircuitN));
  }
  return { stats, cidOf, first, tops };
}

/** One walk over the active flows: ASN and globe tables, the overall top flows and the busiest circuits' top flows. */
function scanFlows(src: SnapshotSources, circuits: CircuitPass, top: TopN): { asns: AsnTable; globe: GlobeTable } {
  const t = src.tracker, st = t.store, geo = src.geo, tops = circuits.tops;
  const asns = new AsnTable(), globe = new GlobeTable();
  const rowOf: (AsnAcc | undefined)[] = [], pointOf: (GlobeAcc | null | undefined)[] = [];
  geo.begin(t);
  for (let p = 0; p < st.size; p++) {
    const s = st.live[p]!, g = geo.of(st, s), info = geo.geos[g] as Enrichment;
    const rtt = lastRttOf(st.rttC(s), st.rttI(s)), tcp = st.isTcp(s), rate = st.rate(s);
    AsnTable.addTo(rowOf[g] ??= asns.row(info), st.rateD(s), st.rateU(s), st.bytesD(s), st.bytesU(s),
      tcp ? st.retD(s) + st.retU(s) : 0, tcp ? st.pktsD(s) + st.pktsU(s) : 0, rtt);
    let pt = pointOf[g];
    if (pt === undefined) pt = pointOf[g] = globe.point(info, () => st.remoteIp(s));
    if (pt) GlobeTable.addTo(pt, st.bytesD(s), st.bytesU(s), rtt);
    top.offer(s, rate);
    tops.get(st.cid(s))?.offer(s, rate);
  }
  return { asns, globe };
}

/** Recently finished flows join the globe, with their RTT (sum of both sides, or the one known). */
function addRecentToGlobe(src: SnapshotSources, globe: GlobeTable): void {
  const ring = src.tracker.finished, st = ring.store;
  for (let i = 0; i < ring.count; i++) {
    const d = ring.at(i), r = ring.rttOf(d);
    const t = r.customer !== null && r.internet !== null ? r.customer + r.internet : (r.internet ?? r.customer);
    const p = globe.point(src.geo.geos[src.geo.of(st, d)] as Enrichment, () => st.remoteIp(d));
    if (p) GlobeTable.addTo(p, st.bytesD(d), st.bytesU(d), t);
  }
}

/** The view of a live slot, enriched through its tag. */
function slotView(src: SnapshotSources, s: number): FlowView {
  const t = src.tracker;
  return src.view(t.viewSlot(s), src.geo.geos[src.geo.of(t.store, s)] as Enrichment);
}

/** The newest `n` finished flows, newest first, enriched through their tags. */
function recentViews(src: SnapshotSources, n: number): FlowView[] {
  const ring = src.tracker.finished;
  return ring.lastSlots(n).reverse().map((d) => src.view(ring.view(d), src.geo.geos[src.geo.of(ring.store, d)] as Enrichment));
}

/** Circuits by rate; the busiest `circuitsWithFlows` carry their top `perCircuitN` flows. */
function circuitViews(src: SnapshotSources, pass: CircuitPass): CircuitFlowView[] {
  const st = src.tracker.store;
  return pass.stats.map((s) => {
    const cid = pass.cidOf.get(s);
    const f = cid === undefined ? -1 : pass.first[cid]!;
    const c = f >= 0 ? src.circuitOf(s.circuitHash, st.localIp(f)) : undefined;
    const top = cid === undefined ? undefined : pass.tops.get(cid);
    return {
      circuitHash: s.circuitHash.toString(), circuitId: c?.id ?? null, circuitName: c?.name ?? null, tcHandle: s.tcHandle,
      activeFlows: s.activeFlows, rateBps: s.rateBps, rtt: s.rtt, retransmits: s.retransmits,
      flows: (top?.slots ?? []).map((x) => slotView(src, x)),
    };
  });
}

export function buildSnapshot(src: SnapshotSources, limits: SnapshotLimits): FlowSnapshot {
  const t0 = performance.now();
  const { tracker } = src;
  const pass = circuitPass(tracker, limits);
  const top = new TopN(limits.topN);
  const { asns, globe } = scanFlows(src, pass, top);
  addRecentToGlobe(src, globe);
  const circuits = circuitViews(src, pass);
  const ps = tracker.lastStats;
  const asnRows = asns.rows();
  return {
    at: tracker.lastPollAt,
    geoData: src.geoData(),
    activeFlows: tracker.activeCount,
    globe: globe.rows(),
    asns: asnRows,
    countries: countriesOf(asnRows),
    circuits,
    topFlows: top.slots.map((s) => slotView(src, s)),
    recent: recentViews(src, limits.recentN),
    stats: { pollMs: ps.pollMs, snapshotMs: performance.now() - t0, rttEvents: ps.events, ringDrops: ps.ringDrops, ringDropsDelta: ps.ringDropsDelta, expired: ps.expired, evicted: ps.evicted, enrichCache: src.enrichCache() },
  };
}
