/**
 * The optional services lqosd runs next to shaping: telemetry (1 Hz rates, queue stats, history,
 * `stats_hosts`) and flow tracking (per-flow table, RTT, ASN/geo). Each starts best effort: a
 * failure is logged and lqosd goes on without it. `LQOS_TELEMETRY=0` / `LQOS_FLOWS=0` turn them off.
 */
import type { CircuitTelemetry } from '../api/circuit.ts';
import type { FlowSnapshot, FlowView } from '../api/flows.ts';
import { bootTimeNs } from '../../dataplane/libbpf.ts';
import type { RequestOf } from '../bus/protocol.ts';
import type { ShapingPlan } from '../model.ts';
import type { ShapingMetrics } from '../telemetry/metrics.ts';
import { startTelemetry, telemetryOptionsOf, type Telemetry } from '../telemetry/service.ts';
import { liveUnknownIpRules } from '../telemetry/unknownIps.ts';
import { UNKNOWN_IPS_WINDOW_SECONDS, type CircuitRatesPayload, type UnknownIpsTable } from '../api/telemetry.ts';
import { startInfluxExport } from '../telemetry/influx/export.ts';
import { influxLines } from '../telemetry/influx/points.ts';
import { IndexBuilder } from '../util/keyIndex.ts';
import type { ChannelRegistry } from '../web/channels.ts';
import type { HistorySource, WebContext } from '../web/context.ts';
import type { DaemonContext } from './context.ts';
import { liveTopCircuits, type TopCircuitsData } from './topCircuits.ts';

export interface RunningServices {
  statsHosts?: (r: RequestOf<'stats_hosts'>) => unknown;
  /** The bus `top_circuits` reply without lqosd's status (lqtop); absent when telemetry is off. */
  topCircuits?: (r: RequestOf<'top_circuits'>) => TopCircuitsData;
  flows(): FlowSnapshot | undefined;
  /** The per-minute history (History page); undefined without telemetry or when its file cannot be opened. */
  history(): HistorySource | undefined;
  /** The Unknown IPs page (addresses seen in the last 5 minutes, as upstream); undefined without telemetry. */
  unknownIps(): UnknownIpsTable | undefined;
  /** The Circuit page's live detail of one circuit; absent when telemetry is off. */
  circuitTelemetry?: (id: string) => CircuitTelemetry | undefined;
  /** Every tracked flow of one circuit; undefined while flow tracking does not run. */
  circuitFlows(id: string): FlowView[] | undefined;
  stop(): Promise<void>;
}

interface Stoppable {
  stop(): Promise<void> | void;
}

export interface ServiceSinks {
  /** Where the live channels go (the web server pushes them). */
  channels: ChannelRegistry;
  /** The Prometheus gauges telemetry keeps current. */
  metrics: ShapingMetrics;
}

export async function startServices(
  ctx: DaemonContext,
  opts: { pinRoot: string; attached: () => boolean; onCircuitBytes?: (traffic: Iterable<[string, number]>) => void } & ServiceSinks,
): Promise<RunningServices> {
  const running: Stoppable[] = [];
  let statsHosts: RunningServices['statsHosts'];
  let telemetry: Telemetry | undefined;
  let flows: { snapshot(): FlowSnapshot; circuitFlows(id: string): FlowView[] } | undefined;
  if (process.env.LQOS_TELEMETRY !== '0') {
    try {
      telemetry = startTelemetry(ctx, {
        pinRoot: opts.pinRoot, ...telemetryOptionsOf(ctx.config()), isAttached: opts.attached, publish: opts.channels.publish, metrics: opts.metrics,
        // [ip_ranges] follows reloads (the Unknown IPs list and /metrics agree with the integrations' lists).
        unknownIps: liveUnknownIpRules(() => ctx.config()),
        flows: () => flows?.snapshot(), onCircuitBytes: opts.onCircuitBytes,
      });
      running.push(telemetry);
      const t = telemetry;
      statsHosts = (r) => t.statsHosts(r);
    } catch (e) {
      ctx.log.warn(`telemetry failed to start: ${(e as Error).message}; lqosd continues without it`);
    }
  }
  if (process.env.LQOS_FLOWS !== '0' && opts.attached()) {
    try {
      const handle = await startFlows(ctx, opts.pinRoot, opts.channels);
      running.push(handle);
      flows = handle;
      ctx.log.info('flow tracking started');
    } catch (e) {
      ctx.log.warn(`flow tracking failed to start: ${(e as Error).message}; lqosd continues without it`);
    }
  }
  const influx = ctx.config().influxdb;
  if (influx.enable_influxdb && telemetry) {
    const t = telemetry;
    const lines = () => {
      const snap = t.snapshot();
      // node_name as it is now: a reload that renames the node tags the next batch with the new name.
      return influxLines({ at: snap.at || Date.now(), node: ctx.config().node_name, totals: snap.totals, nodes: snap.nodes, circuits: t.payload('circuits') as CircuitRatesPayload, flows: flows?.snapshot() });
    };
    running.push(startInfluxExport({ url: influx.url, org: influx.org, bucket: influx.bucket, token: influx.token }, lines, ctx.log, influxIntervalMs()));
  } else if (influx.enable_influxdb) {
    ctx.log.warn('InfluxDB export is enabled but telemetry is not running (LQOS_TELEMETRY=0 or it failed to start): nothing is sent');
  }
  return {
    statsHosts,
    topCircuits: telemetry && liveTopCircuits(telemetry, () => flows?.snapshot(), () => ctx.appliedPlan()?.circuits.length ?? 0),
    flows: () => flows?.snapshot(),
    history: historySource(telemetry),
    unknownIps: () => (telemetry && opts.attached() ? telemetry.unknownIpTable(bootTimeNs(), UNKNOWN_IPS_WINDOW_SECONDS * 1000) : undefined),
    circuitTelemetry: telemetry && ((t) => (id: string) => t.circuitDetail(id, opts.attached() ? bootTimeNs() : 0n))(telemetry),
    circuitFlows: (id) => flows?.circuitFlows(id),
    stop: async () => {
      for (const s of running.reverse()) await s.stop();
    },
  };
}

/**
 * What the web server reads from the services (lib/web/context.ts), set on lqosd's context once they
 * run; `circuitTelemetry` only while telemetry runs (else the Circuit page says it does not).
 */
export function webSources(s: RunningServices): Pick<WebContext, 'flows' | 'history' | 'unknownIps' | 'circuitTelemetry' | 'circuitFlows'> {
  return {
    flows: s.flows,
    history: s.history,
    unknownIps: s.unknownIps,
    circuitFlows: s.circuitFlows,
    ...(s.circuitTelemetry ? { circuitTelemetry: s.circuitTelemetry } : {}),
  };
}

/** Flow tracking, with circuit names looked up in the applied plan. */
async function startFlows(ctx: DaemonContext, pinRoot: string, channels: ChannelRegistry) {
  const { startFlowTracking, flowOptionsOf } = await import('../flows/service.ts');
  let indexedPlan: ShapingPlan | undefined;
  // circuitHash → circuit position, in typed arrays (a Map of {id, name} was ~12 MB at 100k circuits).
  let byHash = new IndexBuilder<bigint>('last').build();
  const resolveCircuit = (hash: bigint) => {
    const plan = ctx.appliedPlan();
    if (plan !== indexedPlan) {
      indexedPlan = plan;
      const b = new IndexBuilder<bigint>('last');
      // Flow hashes are u64: a hash outside that range matches no flow (nor wraps onto another).
      (plan?.circuits ?? []).forEach((c, i) => c.circuitHash >= 0n && c.circuitHash < 1n << 64n && b.add(c.circuitHash, i));
      byHash = b.build();
    }
    const i = byHash.get(hash);
    const c = i === undefined ? undefined : indexedPlan!.circuits[i]!;
    return c && { id: c.id, name: c.name };
  };
  const handle = startFlowTracking({ pinRoot, resolveCircuit, intervalMs: 2000, log: ctx.log, ...flowOptionsOf(ctx.config()), onError: (e) => ctx.log.debug({ err: e }, 'flow poll failed') });
  const unregister = channels.register('flows', () => handle.snapshot());
  return {
    snapshot: () => handle.snapshot(),
    circuitFlows: (id: string) => handle.circuitFlows(id),
    stop: () => {
      unregister();
      handle.stop();
    },
  };
}

/** How often lqosd writes to InfluxDB: 10 s ($LQOS_INFLUX_INTERVAL_MS, 1 s at least, for tests). */
function influxIntervalMs(): number {
  const v = Number(process.env.LQOS_INFLUX_INTERVAL_MS);
  return Number.isFinite(v) && v >= 1000 ? v : 10_000;
}

/**
 * How often the web's queries (History, Executive summary) may write the minute in progress: a page,
 * or a script polling the API, costs one SQLite write of the minute's rows per interval at most.
 */
const WEB_FLUSH_EVERY_MS = 5000;

/**
 * The history as the web server reads it: the store, and a flush of the minute in progress with a
 * fresh TCP capture (at most every WEB_FLUSH_EVERY_MS, whichever route asks).
 */
function historySource(telemetry: Telemetry | undefined): () => HistorySource | undefined {
  const store = telemetry?.history;
  if (!telemetry || !store) return () => undefined;
  let lastFlushMs = 0;
  const flush = () => {
    const now = Date.now();
    if (now - lastFlushMs < WEB_FLUSH_EVERY_MS) return;
    lastFlushMs = now;
    telemetry.flushHistory();
  };
  const source: HistorySource = { store, flush };
  return () => source;
}
