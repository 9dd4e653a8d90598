/**
 * Flow telemetry service for lqosd: polls the XDP flow table and the RTT ring buffer
 * (lib/flows/tracker.ts FlowTracker) on a timer; the `FlowSnapshot` (lib/api/flows.ts, built by
 * lib/flows/snapshot.ts, remote addresses enriched by lib/flows/enrich.ts) is built only when the
 * web UI / API asks for it, at most once per poll:
 *   - globe: remote endpoints with lat/lon, bytes and RTT (active + recently finished flows)
 *   - asns: per remote ASN throughput, bytes, flows, RTT median, retransmit %
 *   - circuits: per circuit RTT percentiles (customer side / Internet side), retransmit rates and
 *     the circuit's top flows
 *   - topFlows / recent: flow lists for tables
 *   - stats: poll cost and RTT records lost to a full ring buffer (ringDrops, ringDropsDelta; a
 *     rate-limited warning is logged when they grow)
 *
 * RTT events are drained from the ring buffer every `drainIntervalMs` (default 250 ms), more often
 * than the table is polled, so the 1 MiB ring (≈ 14.5k records) only has to hold a quarter second.
 *
 * Usage (daemon):
 *   const ft = startFlowTracking({ pinRoot, intervalMs: 1000, resolveCircuit });
 *   ft.snapshot();   // built from the last poll on the first call after it, then cached
 *   ft.stop();
 */
import type { FlowSnapshot, FlowView } from '../api/flows.ts';
import type { LqosConfig } from '../config/schema.ts';
import { createEnricher, defaultEnricher, type Enricher, type Enrichment } from './enrich.ts';
import type { GeoPaths } from './geoSources.ts';
import { EMPTY_SNAPSHOT, GeoTags, buildSnapshot, type SnapshotLimits, type SnapshotSources } from './snapshot.ts';
import { dataplaneLogger } from '../../dataplane/log.ts';
import { RingDropWarning } from './ringDrops.ts';
import { FlowTracker, type ActiveFlow, type FlowTrackerOptions, type PollStats } from './tracker.ts';
import { cachedCircuits, flowView, type ResolveCircuit } from './views.ts';
import { NetflowExporter, type NetflowExporterOptions, type NetflowExporterStats } from './netflow/exporter.ts';
import { flowRecords } from './netflow/fromFlows.ts';

export interface FlowTrackingOptions extends FlowTrackerOptions {
  /** Poll period (ms). Default 1000. */
  intervalMs?: number;
  /** How often RTT events are drained from the ring buffer between polls (ms). Default 250. */
  drainIntervalMs?: number;
  /** Where the ring-drop warning goes (default: the dataplane logger). */
  log?: { warn(msg: string): void; info?(msg: string): void };
  /** Map a flow's circuit hash (from the LPM mapping) to the circuit id/name. */
  resolveCircuit?: ResolveCircuit;
  /** Send every retired flow to a NetFlow/IPFIX collector (`[flows] netflow_*`). */
  netflow?: NetflowExporterOptions;
  /** Enricher (default: the bundled geo/ASN data, or `geoFiles`; `false` = no enrichment). */
  enricher?: Enricher | false;
  /** Operator geo/ASN MMDB files (lqos.conf `[flows] geo_mmdb_path` / `asn_mmdb_path`); unusable ones are warned about in `log`. */
  geoFiles?: GeoPaths;
  /** Length of flow lists in the snapshot (default 20 top flows, 10 per circuit, 500 recent). */
  topN?: number;
  perCircuitN?: number;
  recentN?: number;
  /** Only the busiest N circuits carry their flow list in the snapshot (default 100); the others:
   *  `handle.circuitFlows(circuit)` on demand. */
  circuitsWithFlows?: number;
  /** Called after each poll with the fresh snapshot (builds one every poll: costs CPU at scale). */
  onSnapshot?: (s: FlowSnapshot) => void;
  /** Called when a poll throws (the timer keeps running). */
  onError?: (e: unknown) => void;
}

export interface FlowTrackingHandle {
  /** The snapshot of the last poll: built on the first call after a poll, then served as is. */
  snapshot(): FlowSnapshot;
  /** Poll now and build the snapshot (tests). */
  pollNow(): FlowSnapshot;
  /** Poll now without building a snapshot (what the timer does every intervalMs). */
  poll(): PollStats;
  /** All flows of one circuit, by rate (by id if resolveCircuit is set, else by hash text). */
  circuitFlows(circuit: string): FlowView[];
  readonly tracker: FlowTracker;
  /** What the NetFlow/IPFIX exporter sent and dropped (undefined: export is off). */
  exportStats(): NetflowExporterStats | undefined;
  stop(): void;
}

/**
 * The tracker options lqos.conf's `[flows]` sets: flow_timeout_seconds (idle expiry of an open
 * flow) and do_not_track_subnets (flows with either endpoint inside are never tracked).
 */
export function flowOptionsOf(config: LqosConfig): Pick<FlowTrackingOptions, 'idleTimeoutMs' | 'doNotTrack' | 'netflow' | 'geoFiles'> {
  const f = config.flows;
  const geoFiles = f.geo_mmdb_path || f.asn_mmdb_path ? { geoFiles: { geoMmdbPath: f.geo_mmdb_path || undefined, asnMmdbPath: f.asn_mmdb_path || undefined } } : {};
  const netflow = f.netflow_enabled ? { host: f.netflow_ip ?? '127.0.0.1', port: f.netflow_port ?? 2055, version: f.netflow_version ?? 9 } : undefined;
  return { idleTimeoutMs: f.flow_timeout_seconds * 1000, doNotTrack: [...f.do_not_track_subnets], ...(netflow ? { netflow } : {}), ...geoFiles };
}

/** The tracker options that send each retired flow to `exporter` (with its circuit id). */
function exportingTo(exporter: NetflowExporter, opts: FlowTrackingOptions, circuitOf: ResolveCircuit): FlowTrackingOptions {
  return { ...opts, onRetired: (f, wallOfBoot, rttUs) => exporter.export(flowRecords(f, wallOfBoot, circuitOf(f.circuitHash, f.localIp)?.id, rttUs)) };
}

function snapshotLimits(opts: FlowTrackingOptions): SnapshotLimits {
  return { topN: opts.topN ?? 20, perCircuitN: opts.perCircuitN ?? 10, recentN: opts.recentN ?? 500, circuitsWithFlows: opts.circuitsWithFlows ?? 100 };
}

/**
 * The tracker plus enrichment and circuit lookup, as the snapshot builder reads them. `circuitOf`
 * is the one cached circuit lookup (the NetFlow exporter shares it).
 */
function snapshotSources(opts: FlowTrackingOptions, circuitOf: ResolveCircuit): SnapshotSources {
  const tracker = new FlowTracker(opts);
  const enricher = opts.enricher === false ? null : (opts.enricher ?? (opts.geoFiles ? createEnricher({ ...opts.geoFiles, log: opts.log ?? dataplaneLogger() }) : defaultEnricher()));
  const enrich = (ip: string): Enrichment => (enricher ? enricher.lookup(ip) : null);
  const view = (f: ActiveFlow, geo?: Enrichment): FlowView => flowView(f, geo !== undefined ? geo : enrich(f.remoteIp), circuitOf(f.circuitHash, f.localIp));
  return { tracker, enrich, geo: new GeoTags(enrich), circuitOf, view, enrichCache: () => enricher?.cacheSize ?? 0, geoData: () => enricher?.info ?? EMPTY_SNAPSHOT.geoData };
}

export function startFlowTracking(opts: FlowTrackingOptions = {}): FlowTrackingHandle {
  const exporter = opts.netflow ? new NetflowExporter({ ...opts.netflow, onProblem: (msg) => (opts.log ?? dataplaneLogger()).warn(msg) }) : undefined;
  const circuitOf = cachedCircuits(opts.resolveCircuit);
  const src = snapshotSources(exporter ? exportingTo(exporter, opts, circuitOf) : opts, circuitOf);
  const { tracker, view } = src;
  const limits = snapshotLimits(opts);
  let current: FlowSnapshot = { ...EMPTY_SNAPSHOT, geoData: src.geoData() };
  let builtSeq = 0;
  let stopped = false;
  const drops = new RingDropWarning();
  const log = opts.log ?? dataplaneLogger();
  // How the flow table is read: said at start, and again whenever it changes (a reader that fails
  // falls back to batch lookups; after the maps are recreated it is loaded again).
  let readerSaid = '';
  const sayReader = (atStart: boolean) => {
    const r = tracker.reader;
    const now = r.path === 'kernel-scan' ? 'kernel-scan' : `batch:${r.reason ?? ''}`;
    if (now === readerSaid) return;
    readerSaid = now;
    if (r.path === 'kernel-scan') log.info?.('flow tracking: the flow table is read by the kernel-side reader (lqos_flow_scan.o)');
    else if (r.reason && atStart) log.info?.(`flow tracking: the flow table is read with batch lookups (the kernel-side reader is not available: ${r.reason})`);
    else if (r.reason) log.warn(`flow tracking: the flow table is now read with batch lookups (${r.reason}); flows keep being tracked, at about twice the CPU per poll`);
  };
  sayReader(true);

  /** The snapshot of the last poll, built on the first ask after it. */
  const build = (): FlowSnapshot => {
    if (tracker.pollSeq !== builtSeq) {
      current = buildSnapshot(src, limits);
      builtSeq = tracker.pollSeq;
    }
    return current;
  };

  const poll = (): PollStats => {
    const st = tracker.poll();
    sayReader(false);
    const warning = drops.observe(st.ringDropsDelta, st.ringDrops, Date.now());
    if (warning) log.warn(warning);
    if (opts.onSnapshot) opts.onSnapshot(build());
    return st;
  };

  const guarded = (fn: () => unknown) => () => {
    if (stopped) return;
    try {
      fn();
    } catch (e) {
      opts.onError?.(e);
    }
  };
  const timer = setInterval(guarded(poll), opts.intervalMs ?? 1000);
  const drainTimer = setInterval(guarded(() => tracker.drainEvents()), opts.drainIntervalMs ?? 250);
  timer.unref();
  drainTimer.unref();

  return {
    snapshot() {
      try {
        return build();
      } catch (e) {
        opts.onError?.(e);
        return current;
      }
    },
    pollNow() {
      poll();
      return build();
    },
    poll,
    circuitFlows(circuit: string): FlowView[] {
      const hit = build().circuits.find((c) => c.circuitId === circuit || c.circuitHash === circuit);
      if (!hit) return [];
      return tracker.circuitFlows(BigInt(hit.circuitHash)).map((f) => view(f));
    },
    tracker,
    exportStats: () => exporter?.stats(),
    stop() {
      stopped = true;
      clearInterval(timer);
      clearInterval(drainTimer);
      tracker.close();
      void exporter?.close();
    },
  };
}
