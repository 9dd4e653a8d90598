/**
 * lqosd's bus handlers: one named function per request type (lib/bus/protocol.ts), each reading
 * or changing the daemon's parts. busHandlers() puts them in the table the bus server dispatches on.
 */
import type { SchedulerTracker } from '../api/scheduler.ts';
import type { ShapingStatus } from '../api/status.ts';
import type { UrgentIssueStore } from '../api/urgent.ts';
import { toIpMapping, type MappingSink } from '../apply/mappingSink.ts';
import { BusError, type RequestOf, type TopCircuitsReply } from '../bus/protocol.ts';
import type { BusHandlers } from '../bus/server.ts';
import type { ConfigHolder } from './configHolder.ts';
import { changedKeys } from './configHolder.ts';
import type { DataplaneHost } from './dataplaneHost.ts';
import type { JobRunner } from './jobs.ts';
import type { ShapingJobs } from './shapingJobs.ts';
import type { TopCircuitsData } from './topCircuits.ts';

export interface DaemonParts {
  version: string;
  startedAt: Date;
  now: () => Date;
  pinRoot: string;
  busPath: string;
  config: ConfigHolder;
  host: DataplaneHost;
  jobs: JobRunner;
  shaping: ShapingJobs;
  urgent: UrgentIssueStore;
  scheduler: SchedulerTracker;
  status: ShapingStatus;
  reloadConfig(): Promise<void>;
  busConnections(): number;
  /** Telemetry's top hosts; absent when telemetry is off (LQOS_TELEMETRY=0). */
  statsHosts?: (r: RequestOf<'stats_hosts'>) => unknown;
  /** The busiest circuits for lqtop (lib/daemon/topCircuits.ts); absent when telemetry is off. */
  topCircuits?: (r: RequestOf<'top_circuits'>) => TopCircuitsData;
}

const ping = (d: DaemonParts) => ({ pong: true, version: d.version, pid: process.pid });

function status(d: DaemonParts) {
  const pf = d.host.lastPreflight;
  const config = d.config.config;
  return {
    version: d.version,
    pid: process.pid,
    startedAt: d.startedAt.toISOString(),
    uptimeSeconds: Math.round((d.now().getTime() - d.startedAt.getTime()) / 1000),
    configPath: d.config.path,
    dryRun: config.queues.dry_run,
    shaping: { ...d.status },
    dataplane: { ...d.host.state, pinRoot: d.pinRoot, mappings: d.host.sink?.kind ?? 'none' },
    preflight: pf ? { ok: pf.ok, errors: pf.errors, warnings: pf.warnings } : undefined,
    urgentActive: d.urgent.activeCount(),
    scheduler: d.scheduler.status().health,
    job: d.jobs.current() ?? null,
    bus: { path: d.busPath, connections: d.busConnections() },
  };
}

function sinkOf(d: DaemonParts): MappingSink {
  const sink = d.host.sink;
  if (sink) return sink;
  throw new BusError('unavailable', d.status.degraded ?? 'the dataplane is not attached; IP mappings cannot be changed');
}

async function mapAdd(d: DaemonParts, r: RequestOf<'map_ip_add'>) {
  const sink = sinkOf(d);
  return { count: await sink.update(r.entries.map(toIpMapping)), backend: sink.kind };
}

async function mapDelete(d: DaemonParts, r: RequestOf<'map_ip_delete'>) {
  const sink = sinkOf(d);
  return { count: await sink.remove(r.prefixes), backend: sink.kind };
}

async function mapClear(d: DaemonParts) {
  const sink = sinkOf(d);
  return { removed: await sink.clear(), backend: sink.kind };
}

async function mapList(d: DaemonParts) {
  const sink = sinkOf(d);
  return { mappings: await sink.list(), backend: sink.kind };
}

function urgentAck(d: DaemonParts, r: RequestOf<'urgent_ack'>) {
  if (!d.urgent.acknowledge(r.issueId)) throw new BusError('not_found', `no urgent issue with id ${r.issueId}`);
  return { acknowledged: true, active: d.urgent.activeCount() };
}

async function reloadConfig(d: DaemonParts) {
  const before = d.config.config;
  await d.reloadConfig();
  return { changed: changedKeys(before, d.config.config), shaping: { ...d.status } };
}

function statsHosts(d: DaemonParts, r: RequestOf<'stats_hosts'>) {
  if (!d.statsHosts) throw new BusError('unavailable', 'telemetry is off in this lqosd (LQOS_TELEMETRY=0): no host rates');
  return d.statsHosts(r);
}

/** `top_circuits` (lqtop): the busiest circuits, with lqosd's own state for lqtop's header. */
function topCircuits(d: DaemonParts, r: RequestOf<'top_circuits'>): TopCircuitsReply {
  if (!d.topCircuits) throw new BusError('unavailable', 'telemetry is off in this lqosd (LQOS_TELEMETRY=0): no circuit rates');
  const lqosd = {
    version: d.version,
    pid: process.pid,
    uptimeSeconds: Math.round((d.now().getTime() - d.startedAt.getTime()) / 1000),
    dataplane: d.host.state.state,
    degraded: d.status.degraded ?? null,
  };
  return { ...d.topCircuits(r), lqosd };
}

export function busHandlers(d: DaemonParts): BusHandlers {
  const { scheduler, urgent } = d;
  return {
    ping: () => ping(d),
    status: () => status(d),
    refresh: (r) => d.shaping.refresh(r.force),
    submit_plan: (r) => d.shaping.submit(r),
    map_ip_add: (r) => mapAdd(d, r),
    map_ip_delete: (r) => mapDelete(d, r),
    map_ip_clear: () => mapClear(d),
    map_ip_list: () => mapList(d),
    scheduler_heartbeat: (r) => (scheduler.heartbeat(r.phase, r.nextRun), scheduler.status()),
    scheduler_success: (r) => (scheduler.success(r.at), scheduler.status()),
    scheduler_error: (r) => (scheduler.error({ message: r.message, integration: r.integration, preview: r.output, logFile: r.logFile }), scheduler.status()),
    scheduler_progress: (r) => (scheduler.progress({ active: r.active, phase: r.phase, label: r.label, step: r.step, steps: r.steps, percent: r.percent }), scheduler.status()),
    scheduler_summary: (r) => (scheduler.integrationSummary(r.summary), scheduler.status()),
    scheduler_status: () => scheduler.status(),
    urgent_submit: (r) => urgent.submit({ source: r.source, severity: r.severity, code: r.code, message: r.message, context: r.context, dedupeKey: r.dedupeKey }),
    urgent_list: () => ({ issues: urgent.list(), active: urgent.activeCount() }),
    urgent_ack: (r) => urgentAck(d, r),
    urgent_clear: (r) => ({ removed: urgent.clear(r.issueId), active: urgent.activeCount() }),
    urgent_resolve: (r) => ({ resolved: urgent.resolveKey(r.key), active: urgent.activeCount() }),
    reload_config: () => reloadConfig(d),
    stats_hosts: (r) => statsHosts(d, r),
    top_circuits: (r) => topCircuits(d, r),
  };
}
