/**
 * Flow telemetry service for lqosd: polls the XDP flow table and the RTT ring buffer
 * (dataplane/flows.ts FlowTracker) on a timer, enriches remote addresses (lib/flows/enrich.ts) and
 * keeps a ready-to-serve `FlowSnapshot` for the web UI / bus:
 *   - globe: remote endpoints with lat/lon, bytes and RTT (active + recently finished flows)
 *   - asns: per remote ASN throughput, bytes, flows, RTT median, retransmit %
 *   - circuits: per circuit RTT percentiles (customer side / Internet side), retransmit rates and
 *     the circuit's top flows
 *   - topFlows / recent: flow lists for tables
 *
 * Usage (daemon):
 *   const ft = startFlowTracking({ pinRoot, intervalMs: 1000, resolveCircuit });
 *   ft.snapshot();   // cheap: returns the last built snapshot
 *   ft.stop();
 */
import { FlowTracker, type ActiveFlow, type CircuitFlowStats, type FlowEntry, type FlowTrackerOptions, type Percentiles, type TrackedFlowRef } from '../../dataplane/flows.ts';
import { defaultEnricher, type Enricher, type Enrichment } from './enrich.ts';

export interface CircuitRef {
  id: string;
  name?: string;
}

export interface FlowTrackingOptions extends FlowTrackerOptions {
  /** Poll period (ms). Default 1000. */
  intervalMs?: number;
  /** Map a flow's circuit hash (from the LPM mapping) to the circuit id/name. */
  resolveCircuit?: (circuitHash: bigint, localIp: string) => CircuitRef | undefined;
  /** Enricher (default: packaged GeoLite2 databases; `false` = no enrichment). */
  enricher?: Enricher | false;
  /** Length of flow lists in the snapshot (default 20 top flows, 10 per circuit, 500 recent). */
  topN?: number;
  perCircuitN?: number;
  recentN?: number;
  /** Only the busiest N circuits carry their flow list in the snapshot (default 100); the others:
   *  `handle.circuitFlows(circuit)` on demand. */
  circuitsWithFlows?: number;
  /** Called after each poll with the fresh snapshot (e.g. to publish on the bus). */
  onSnapshot?: (s: FlowSnapshot) => void;
  /** Called when a poll throws (the timer keeps running). */
  onError?: (e: unknown) => void;
}

export interface FlowView {
  id: string;
  protocol: string;
  localIp: string;
  localPort: number;
  remoteIp: string;
  remotePort: number;
  bytes: { down: number; up: number };
  packets: { down: number; up: number };
  rateBps: { down: number; up: number };
  retransmits: { down: number; up: number };
  /** ms; customer side (last mile + shaper queue) and Internet side; total = sum when both known. */
  rttMs: { customer: number | null; internet: number | null; total: number | null };
  durationMs: number;
  endStatus: 'open' | 'fin' | 'rst';
  tcHandle: number;
  circuitHash: string;
  circuitId: string | null;
  circuitName: string | null;
  asn: number | null;
  asName: string | null;
  country: string | null;
  /** 'private' for non-routable remotes, null when unknown. */
  remoteKind: 'public' | 'private' | 'unknown';
}

export interface GlobePoint {
  lat: number;
  lon: number;
  label: string;
  country: string | null;
  bytesDown: number;
  bytesUp: number;
  /** median RTT (ms) of the flows at this point, null if none. */
  rttMs: number | null;
  flows: number;
}

export interface AsnRow {
  asn: number | null;
  name: string;
  country: string | null;
  flows: number;
  rateBps: { down: number; up: number };
  bytes: { down: number; up: number };
  rttMs: number | null;
  retransmits: number;
  tcpPackets: number;
  retransmitPct: number | null;
}

/** Flows aggregated per remote country (from the ASN rows). */
export interface CountryRow {
  country: string;
  flows: number;
  asns: number;
  rateBps: { down: number; up: number };
  bytes: { down: number; up: number };
  /** Flow-weighted mean of the ASN median RTTs (ms), null if none. */
  rttMs: number | null;
}

/** Per-country roll-up of ASN rows (pure). */
export function countriesOf(asns: AsnRow[]): CountryRow[] {
  const by = new Map<string, CountryRow & { rttW: number; rttN: number }>();
  for (const a of asns) {
    const key = a.country ?? 'unknown';
    let c = by.get(key);
    if (!c) by.set(key, (c = { country: key, flows: 0, asns: 0, rateBps: { down: 0, up: 0 }, bytes: { down: 0, up: 0 }, rttMs: null, rttW: 0, rttN: 0 }));
    c.flows += a.flows;
    c.asns += 1;
    c.rateBps.down += a.rateBps.down;
    c.rateBps.up += a.rateBps.up;
    c.bytes.down += a.bytes.down;
    c.bytes.up += a.bytes.up;
    if (a.rttMs !== null) {
      c.rttW += a.rttMs * a.flows;
      c.rttN += a.flows;
    }
  }
  return [...by.values()]
    .map(({ rttW, rttN, ...c }) => ({ ...c, rttMs: rttN ? rttW / rttN : null }))
    .sort((x, y) => y.rateBps.down + y.rateBps.up - (x.rateBps.down + x.rateBps.up) || y.bytes.down - x.bytes.down);
}

export interface CircuitFlowView {
  circuitHash: string;
  circuitId: string | null;
  circuitName: string | null;
  tcHandle: number;
  activeFlows: number;
  rateBps: { down: number; up: number };
  rtt: { customer: Percentiles; internet: Percentiles };
  retransmits: CircuitFlowStats['retransmits'];
  flows: FlowView[];
}

export interface FlowSnapshot {
  /** Wall-clock ms of the poll this snapshot is from (0 before the first poll). */
  at: number;
  activeFlows: number;
  globe: GlobePoint[];
  asns: AsnRow[];
  countries: CountryRow[];
  circuits: CircuitFlowView[];
  topFlows: FlowView[];
  recent: FlowView[];
  stats: { pollMs: number; snapshotMs: number; rttEvents: number; expired: number; evicted: number; enrichCache: number };
}

export interface FlowTrackingHandle {
  snapshot(): FlowSnapshot;
  /** Poll now and rebuild the snapshot (tests; the timer does this every intervalMs). */
  pollNow(): FlowSnapshot;
  /** All flows of one circuit, by rate (by id if resolveCircuit is set, else by hash text). */
  circuitFlows(circuit: string): FlowView[];
  readonly tracker: FlowTracker;
  stop(): void;
}

const EMPTY: FlowSnapshot = {
  at: 0, activeFlows: 0, globe: [], asns: [], countries: [], circuits: [], topFlows: [], recent: [],
  stats: { pollMs: 0, snapshotMs: 0, rttEvents: 0, expired: 0, evicted: 0, enrichCache: 0 },
};

function median(a: number[]): number | null {
  if (!a.length) return null;
  const s = Float64Array.from(a).sort();
  return s[Math.floor((s.length - 1) / 2)]!;
}

export function startFlowTracking(opts: FlowTrackingOptions = {}): FlowTrackingHandle {
  const tracker = new FlowTracker(opts);
  const enricher = opts.enricher === false ? null : (opts.enricher ?? defaultEnricher());
  const topN = opts.topN ?? 20, perCircuitN = opts.perCircuitN ?? 10, recentN = opts.recentN ?? 500;
  const circuitsWithFlows = opts.circuitsWithFlows ?? 100;
  const circuitCache = new Map<string, CircuitRef | undefined>();
  let current: FlowSnapshot = EMPTY;
  let stopped = false;

  const enrich = (ip: string): Enrichment => (enricher ? enricher.lookup(ip) : null);
  const circuitOf = (hash: bigint, localIp: string): CircuitRef | undefined => {
    if (!opts.resolveCircuit || hash === 0n) return undefined;
    const k = `${hash}/${localIp}`;
    if (!circuitCache.has(k)) {
      circuitCache.set(k, opts.resolveCircuit(hash, localIp));
      if (circuitCache.size > 200_000) circuitCache.clear();
    }
    return circuitCache.get(k);
  };

  const view = (f: ActiveFlow): FlowView => {
    const geo = enrich(f.remoteIp);
    const c = circuitOf(f.circuitHash, f.localIp);
    const info = geo && geo !== 'private' ? geo : null;
    return {
      id: f.id,
      protocol: ({ 1: 'ICMP', 6: 'TCP', 17: 'UDP', 58: 'ICMPv6' } as Record<number, string>)[f.proto] ?? String(f.proto),
      localIp: f.localIp, localPort: f.localPort, remoteIp: f.remoteIp, remotePort: f.remotePort,
      bytes: f.bytes, packets: f.packets, rateBps: f.rateBps, retransmits: f.retransmits,
      rttMs: {
        customer: f.rttMs.customer, internet: f.rttMs.internet,
        total: f.rttMs.customer !== null && f.rttMs.internet !== null ? f.rttMs.customer + f.rttMs.internet : null,
      },
      durationMs: f.durationMs, endStatus: f.endStatus, tcHandle: f.tcHandle,
      circuitHash: f.circuitHash.toString(), circuitId: c?.id ?? null, circuitName: c?.name ?? null,
      asn: info?.asn ?? null, asName: info?.asName ?? null, country: info?.country ?? null,
      remoteKind: geo === 'private' ? 'private' : info ? 'public' : 'unknown',
    };
  };

  const build = (): FlowSnapshot => {
    const t0 = performance.now();
    const recent = tracker.recent();
    // ASN table and globe over active flows (+ recently finished ones for the globe); no per-flow
    // views are built here (100k flows), only for the lists that are returned.
    const asns = new Map<string, AsnRow & { rtts: number[] }>();
    const globe = new Map<string, GlobePoint & { rtts: number[] }>();
    const lastRtt = (e: FlowEntry): number | null => {
      const c = e.lastRttUs.customer, i = e.lastRttUs.internet;
      if (c && i) return (c + i) / 1000;
      return i ? i / 1000 : c ? c / 1000 : null;
    };
    const addGlobe = (e: FlowEntry, geo: Enrichment, rtt: number | null) => {
      if (!geo || geo === 'private' || geo.lat === null || geo.lon === null) return;
      const k = `${geo.lat},${geo.lon}`;
      let p = globe.get(k);
      if (!p) {
        const label = [geo.city, geo.countryName].filter(Boolean).join(', ') || geo.country || e.remoteIp;
        globe.set(k, (p = { lat: geo.lat, lon: geo.lon, label, country: geo.country, bytesDown: 0, bytesUp: 0, rttMs: null, flows: 0, rtts: [] }));
      }
      p.bytesDown += e.bytes.down;
      p.bytesUp += e.bytes.up;
      p.flows++;
      if (rtt !== null && p.rtts.length < 1000) p.rtts.push(rtt);
    };
    const rate = (f: TrackedFlowRef) => f.rateBps.down + f.rateBps.up;
    const byCircuit = new Map<bigint, TrackedFlowRef[]>();
    const all: TrackedFlowRef[] = [];
    tracker.forEachFlow((f) => {
      const e = f.entry;
      all.push(f);
      let l = byCircuit.get(e.circuitHash);
      if (!l) byCircuit.set(e.circuitHash, (l = []));
      l.push(f);
      const g = enrich(e.remoteIp);
      const info = g && g !== 'private' ? g : null;
      const key = info?.asn != null ? `AS${info.asn}` : g === 'private' ? 'private' : 'unknown';
      let row = asns.get(key);
      if (!row) {
        asns.set(key, (row = {
          asn: info?.asn ?? null, name: info?.asName ?? (g === 'private' ? 'Private/local' : 'Unknown'), country: info?.country ?? null,
          flows: 0, rateBps: { down: 0, up: 0 }, bytes: { down: 0, up: 0 }, rttMs: null, retransmits: 0, tcpPackets: 0, retransmitPct: null, rtts: [],
        }));
      }
      row.flows++;
      row.rateBps.down += f.rateBps.down;
      row.rateBps.up += f.rateBps.up;
      row.bytes.down += e.bytes.down;
      row.bytes.up += e.bytes.up;
      if (e.proto === 6) {
        row.retransmits += e.retransmits.down + e.retransmits.up;
        row.tcpPackets += e.packets.down + e.packets.up;
      }
      const r = lastRtt(e);
      if (r !== null && row.rtts.length < 1000) row.rtts.push(r);
      addGlobe(e, g, r);
    });
    for (const f of recent) {
      const t = f.rttMs.customer !== null && f.rttMs.internet !== null ? f.rttMs.customer + f.rttMs.internet : (f.rttMs.internet ?? f.rttMs.customer);
      addGlobe(f, enrich(f.remoteIp), t);
    }

    const stats = tracker.circuitStats().sort((a, b) => b.rateBps.down + b.rateBps.up - (a.rateBps.down + a.rateBps.up));
    const circuits: CircuitFlowView[] = stats.map((s, rank) => {
      const flows = byCircuit.get(s.circuitHash) ?? [];
      let top: TrackedFlowRef[] = [];
      if (rank < circuitsWithFlows && perCircuitN > 0) top = flows.sort((a, b) => rate(b) - rate(a)).slice(0, perCircuitN);
      const c = flows.length ? circuitOf(s.circuitHash, flows[0]!.entry.localIp) : undefined;
      return {
        circuitHash: s.circuitHash.toString(), circuitId: c?.id ?? null, circuitName: c?.name ?? null, tcHandle: s.tcHandle,
        activeFlows: s.activeFlows, rateBps: s.rateBps, rtt: s.rtt, retransmits: s.retransmits,
        flows: top.map((f) => view(tracker.viewOf(f))),
      };
    });

    const st = tracker.lastStats;
    const asnRows: AsnRow[] = [...asns.values()]
      .map(({ rtts, ...r }) => ({ ...r, rttMs: median(rtts), retransmitPct: r.tcpPackets ? (100 * r.retransmits) / r.tcpPackets : null }))
      .sort((a, b) => b.rateBps.down + b.rateBps.up - (a.rateBps.down + a.rateBps.up) || b.bytes.down - a.bytes.down);
    return {
      at: tracker.lastPollAt,
      activeFlows: tracker.activeCount,
      globe: [...globe.values()].map(({ rtts, ...p }) => ({ ...p, rttMs: median(rtts) })).sort((a, b) => b.bytesDown - a.bytesDown),
      asns: asnRows,
      countries: countriesOf(asnRows),
      circuits,
      topFlows: all.sort((a, b) => rate(b) - rate(a)).slice(0, topN).map((f) => view(tracker.viewOf(f))),
      recent: recent.slice(-recentN).reverse().map(view),
      stats: { pollMs: st.pollMs, snapshotMs: performance.now() - t0, rttEvents: st.events, expired: st.expired, evicted: st.evicted, enrichCache: enricher?.cacheSize ?? 0 },
    };
  };

  const pollNow = (): FlowSnapshot => {
    tracker.poll();
    current = build();
    opts.onSnapshot?.(current);
    return current;
  };

  const timer = setInterval(() => {
    if (stopped) return;
    try {
      pollNow();
    } catch (e) {
      opts.onError?.(e);
    }
  }, opts.intervalMs ?? 1000);
  timer.unref();

  return {
    snapshot: () => current,
    pollNow,
    circuitFlows(circuit: string): FlowView[] {
      const hit = current.circuits.find((c) => c.circuitId === circuit || c.circuitHash === circuit);
      if (!hit) return [];
      return tracker.circuitFlows(BigInt(hit.circuitHash)).map(view);
    },
    tracker,
    stop() {
      stopped = true;
      clearInterval(timer);
      tracker.close();
    },
  };
}
