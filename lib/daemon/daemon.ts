/**
 * lqosd: the long-running shaper daemon. Holds the single-instance lock, the config, the urgent
 * issues and the scheduler status; checks the host (preflight); attaches the eBPF dataplane;
 * serves the bus and (when present) the web UI.
 *
 * Shaping outlives the daemon: stopping lqosd leaves the pinned maps, programs and tc tree in the
 * kernel, and the next start re-adopts them.
 *
 * Plug-in points (all optional): `applyPlan` (the apply engine, bus `submit_plan`), `statsHosts`
 * (bus `stats_hosts`), `web` (the web server; default: lib/web/server.ts if it exists).
 */
import { readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { ConfigError, interfacesOf, loadConfig } from '../config/load.ts';
import type { LqosConfig } from '../config/schema.ts';
import type { ShapingPlan } from '../model.ts';
import { resolveQueueCount } from '../plan/planConfig.ts';
import { acquireLock, LockHeldError, type Lock } from '../run/lock.ts';
import { cpuCount } from '../run/queueCount.ts';
import { createLogger, type Logger } from '../util/log.ts';
import { BusError, type RequestOf } from '../bus/protocol.ts';
import { DEFAULT_RUN_DIR, startBusServer, type BusHandlers, type BusServer } from '../bus/server.ts';
import { SchedulerStatusTracker, makePreview } from '../scheduler/status.ts';
import { FileUrgentIssueStore, urgentFileIn } from '../urgent/store.ts';
import type { DaemonContext, ShapingStatus } from './context.ts';
import { kernelMappings, MemoryMappings, type MappingBackend } from './mappings.ts';
import { appliedPlanOnDisk } from './applyService.ts';
import { runPreflight, type PreflightResult, type ShapingInterfaces } from './preflight.ts';
import { defaultRefreshCommand, REPO_ROOT, runRefresh, type RefreshCommand, type RefreshResult } from './refresh.ts';
import { startTelemetry } from '../telemetry/service.ts'; // telemetry (lib/telemetry)

export const VERSION: string = (() => {
  try {
    return (JSON.parse(readFileSync(join(REPO_ROOT, 'package.json'), 'utf8')) as { version: string }).version;
  } catch {
    return '0.0.0';
  }
})();

/** How long stop() waits for a running refresh/apply. */
export const STOP_WAIT_MS = 20_000;

const PREFLIGHT_KEY = 'lqosd:preflight';
const PREFLIGHT_WARNING_KEY = 'lqosd:preflight-warning';
const ATTACH_KEY = 'lqosd:dataplane-attach';
const INTERFACES_CHANGED_KEY = 'lqosd:interfaces-changed';

// ---------------------------------------------------------------------------------------------
// Plug-in types

/** What the apply engine receives from a bus `submit_plan` (paths already read to text). */
export interface ApplyPlanRequest {
  mode: 'full' | 'incremental';
  devicesCsv: string;
  networkJson: string;
  /** File names for messages (the paths the client submitted, if any). */
  devicesFile?: string;
  networkFile?: string;
  updateonly?: boolean;
  verbose?: boolean;
}

/** What the apply engine reports back; lqosd records it in the shaping status. */
export interface ApplyReport {
  ok: boolean;
  /** What was actually done: a rebuild, a live incremental update, or nothing (no changes). */
  mode: 'full' | 'incremental' | 'none';
  commands: number;
  seconds: number;
  /** The plan now in force (becomes DaemonContext.appliedPlan()). */
  plan?: ShapingPlan;
  /** Anything else worth returning to the bus client (issues, counts, ...). */
  [extra: string]: unknown;
}

export type ApplyPlanHandler = (req: ApplyPlanRequest, ctx: DaemonContext) => Promise<ApplyReport>;
export type StatsHostsHandler = (req: RequestOf<'stats_hosts'>, ctx: DaemonContext) => Promise<unknown> | unknown;
/** Starts the web server; the returned object's close()/stop() is called when lqosd stops. */
export type WebStarter = (ctx: DaemonContext, log: Logger) => Promise<{ close?: () => Promise<unknown> | unknown; stop?: () => Promise<unknown> | unknown } | void>;

/** How the dataplane gets attached; replaceable for tests. */
export type DataplaneAttacher = (args: { config: LqosConfig; interfaces: ShapingInterfaces; txQueues: Record<string, number>; pinRoot: string; log: Logger }) => Promise<unknown>;

export interface StartDaemonOptions {
  /** Config file; default $LQOS_CONFIG, else /etc/lqos.conf. */
  configPath?: string;
  /** Directory of the lock (and default bus socket); default $LQOS_RUN_DIR, else /run/lqos. */
  runDir?: string;
  /** Bus socket; default $LQOS_BUS_PATH, else <runDir>/bus. */
  busPath?: string;
  /** bpffs directory of the pinned maps; default $LQOS_BPF_PIN_ROOT, else /sys/fs/bpf/lqos. */
  pinRoot?: string;
  log?: Logger;
  /** Apply engine for bus `submit_plan`. Absent → `not_implemented`. */
  applyPlan?: ApplyPlanHandler;
  /** Bus `stats_hosts`. Absent → top hosts from the dataplane counters (empty in a dry run). */
  statsHosts?: StatsHostsHandler;
  /** false: no web server. Default: lib/web/server.ts's startWebServer, if that module exists. */
  web?: false | WebStarter;
  /** The command bus `refresh` runs; default `<repo>/LibreQoS --config <configPath>`. */
  refreshCommand?: RefreshCommand;
  /** Replaces attachDataplane (tests). */
  attachDataplane?: DataplaneAttacher;
  /** Clock for the scheduler tracker and urgent store (tests). */
  now?: () => Date;
}

export interface RunningDaemon {
  context: DaemonContext;
  /** Closes the web server and the bus, removes the socket and the lock. Shaping stays in the kernel. */
  stop(): Promise<void>;
}

const locksHeldHere = new Set<string>();

export class DaemonAlreadyRunningError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'DaemonAlreadyRunningError';
  }
}

// ---------------------------------------------------------------------------------------------

function loadResolvedConfig(path: string | undefined): { config: LqosConfig; path: string; warnings: string[] } {
  const loaded = loadConfig({ path });
  // Relative directories are relative to the config file (as for the LibreQoS command).
  const base = dirname(resolve(loaded.path));
  const config = {
    ...loaded.config,
    lqos_directory: resolve(base, loaded.config.lqos_directory),
    state_directory: resolve(base, loaded.config.state_directory),
  };
  return { config, path: resolve(loaded.path), warnings: loaded.warnings };
}

/** Key paths whose values differ (values are not returned: the config holds secrets). */
export function changedKeys(a: unknown, b: unknown, at = ''): string[] {
  const isObj = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
  if (isObj(a) && isObj(b)) {
    const out: string[] = [];
    for (const k of [...new Set([...Object.keys(a), ...Object.keys(b)])].sort()) out.push(...changedKeys(a[k], b[k], at ? `${at}.${k}` : k));
    return out;
  }
  return JSON.stringify(a) === JSON.stringify(b) ? [] : [at || '(whole config)'];
}

const sameInterfaces = (a: ShapingInterfaces | null, b: ShapingInterfaces | null) =>
  JSON.stringify(a) === JSON.stringify(b);

async function defaultAttach({ config, interfaces, txQueues, pinRoot, log }: Parameters<DataplaneAttacher>[0]): Promise<unknown> {
  const { attachDataplane } = await import('../../dataplane/loader.ts');
  const override = config.queues.override_available_queues ?? 0;
  const known = Object.values(txQueues);
  const { queues, reason } = resolveQueueCount({
    override,
    txQueues: known.length ? known : [cpuCount()],
    cpus: cpuCount(),
    onAStick: interfaces.onAStick,
  });
  log.info(`attaching the dataplane with ${queues} queue(s) per direction (${reason})`);
  return attachDataplane({
    downloadIf: interfaces.download,
    uploadIf: interfaces.upload,
    onAStick: interfaces.onAStick,
    queues,
    stickOffset: interfaces.onAStick ? queues : 0,
    vlan: config.single_interface ? { internet: config.single_interface.internet_vlan, network: config.single_interface.network_vlan } : undefined,
    pinRoot,
    // [tuning]: offloads off (plus VLAN offloads so XDP sees 802.1Q tags inline) and coalescing.
    disableOffloads: true,
    offloads: [
      ...config.tuning.disable_offload,
      ...(config.tuning.disable_rxvlan ? ['rxvlan'] : []),
      ...(config.tuning.disable_txvlan ? ['txvlan'] : []),
    ],
    coalesce: { rxUsecs: config.tuning.rx_usecs, txUsecs: config.tuning.tx_usecs },
    logger: { info: (m) => log.info(m), warn: (m) => log.warn(m) },
  });
}

async function defaultWeb(ctx: DaemonContext, log: Logger): Promise<Awaited<ReturnType<WebStarter>>> {
  const url = new URL('../web/server.ts', import.meta.url);
  let mod: { startWebServer?: (ctx: DaemonContext, opts: unknown) => Promise<unknown> };
  try {
    mod = (await import(url.href)) as typeof mod;
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ERR_MODULE_NOT_FOUND' && String((e as Error).message).includes('web/server')) {
      log.warn('web UI not available in this build (lib/web/server.ts is missing); running without it');
    } else {
      log.warn({ err: e }, `web UI could not be loaded: ${(e as Error).message}; running without it`);
    }
    return;
  }
  if (typeof mod.startWebServer !== 'function') {
    log.warn('lib/web/server.ts has no startWebServer export; running without the web UI');
    return;
  }
  const cfg = ctx.config();
  const server = (await mod.startWebServer(ctx, { host: cfg.web.bind_address, port: cfg.web.port })) as
    | { close?: () => Promise<unknown>; stop?: () => Promise<unknown> }
    | undefined;
  return server ?? undefined;
}

export async function startDaemon(opts: StartDaemonOptions = {}): Promise<RunningDaemon> {
  const log = opts.log ?? createLogger('lqosd');
  const runDir = opts.runDir ?? (process.env.LQOS_RUN_DIR || DEFAULT_RUN_DIR);
  const busPath = opts.busPath ?? (process.env.LQOS_BUS_PATH || join(runDir, 'bus'));
  const pinRoot = opts.pinRoot ?? (process.env.LQOS_BPF_PIN_ROOT || '/sys/fs/bpf/lqos');
  const now = opts.now ?? (() => new Date());
  const startedAt = now();

  // 1. Single instance. (acquireLock treats a lock holding our own PID as stale, so daemons
  // started in this same process are tracked here.)
  const lockFile = resolve(runDir, 'lqosd.lock');
  if (locksHeldHere.has(lockFile)) {
    throw new DaemonAlreadyRunningError(`lqosd already running (PID ${process.pid} holds ${lockFile}); stop it first (systemctl stop lqosd)`);
  }
  let lock: Lock;
  try {
    lock = acquireLock(lockFile);
  } catch (e) {
    if (e instanceof LockHeldError) {
      throw new DaemonAlreadyRunningError(`lqosd already running (PID ${e.pid} holds ${lockFile}); stop it first (systemctl stop lqosd)`);
    }
    throw e;
  }
  if (lock.staleReplaced !== undefined) log.warn(`replaced a stale lqosd lock left by PID ${lock.staleReplaced}`);

  locksHeldHere.add(lockFile);
  const cleanups: (() => Promise<void> | void)[] = [
    () => {
      lock.release();
      locksHeldHere.delete(lockFile);
    },
  ];
  const runCleanups = async () => {
    for (const c of cleanups.splice(0).reverse()) {
      try {
        await c();
      } catch (e) {
        log.warn(`cleanup step failed: ${(e as Error).message}`);
      }
    }
  };

  try {
    // 2. Config (fatal at start: without it there is no state directory).
    let loaded = loadResolvedConfig(opts.configPath);
    for (const w of loaded.warnings) log.warn(w);
    let config = loaded.config;
    const configPath = loaded.path;
    log.info({ config: configPath, version: VERSION }, `lqosd ${VERSION} starting with ${configPath}`);

    const urgent = new FileUrgentIssueStore({ path: urgentFileIn(config.state_directory), log, now });
    const scheduler = new SchedulerStatusTracker({ now });
    const shaping: ShapingStatus = {};
    // Re-adopt the plan in force from the state directory: shaping survived our restart.
    let appliedPlan: ShapingPlan | undefined = appliedPlanOnDisk(config.state_directory);
    let mappings: MappingBackend | undefined;
    const memoryMappings = new MemoryMappings();
    let dataplane: { state: 'attached' | 'dry_run' | 'not_attached'; interfaces?: ShapingInterfaces; detail?: string } = { state: 'not_attached' };
    let lastPreflight: PreflightResult | undefined;

    // 3. Preflight and dataplane (also re-run on reload while shaping is not up).
    const ensureShaping = async (): Promise<void> => {
      const pf = await runPreflight(config, configPath);
      lastPreflight = pf;
      for (const w of pf.warnings) log.warn(`preflight: ${w}`);
      if (pf.warnings.length) {
        urgent.submit({ source: 'lqosd', severity: 'warning', code: 'PREFLIGHT_WARNING', message: pf.warnings.join('\n'), dedupeKey: PREFLIGHT_WARNING_KEY });
      } else urgent.resolveKey(PREFLIGHT_WARNING_KEY);
      if (!pf.ok) {
        const msg = `preflight failed, not shaping: ${pf.errors.join('; ')}`;
        for (const e of pf.errors) log.error(`preflight: ${e}`);
        log.error('lqosd stays up without shaping (degraded); fix the problem and reload (systemctl reload lqosd)');
        shaping.degraded = msg;
        urgent.submit({ source: 'lqosd', severity: 'error', code: 'PREFLIGHT_FAILED', message: msg, context: { errors: pf.errors }, dedupeKey: PREFLIGHT_KEY });
        mappings = undefined;
        if (dataplane.state !== 'attached') dataplane = { state: 'not_attached', detail: 'preflight failed' };
        return;
      }
      urgent.resolveKey(PREFLIGHT_KEY);
      if (config.queues.dry_run) {
        log.info('dry run (queues.dry_run): not attaching the dataplane; IP mappings are kept in memory only');
        delete shaping.degraded;
        if (dataplane.state !== 'attached') {
          dataplane = { state: 'dry_run', interfaces: pf.interfaces };
          mappings = memoryMappings;
        }
        return;
      }
      if (dataplane.state === 'attached') {
        delete shaping.degraded;
        return;
      }
      try {
        await (opts.attachDataplane ?? defaultAttach)({ config, interfaces: pf.interfaces!, txQueues: pf.txQueues, pinRoot, log });
        dataplane = { state: 'attached', interfaces: pf.interfaces };
        mappings = kernelMappings(pinRoot);
        delete shaping.degraded;
        urgent.resolveKey(ATTACH_KEY);
      } catch (e) {
        const msg = `attaching the dataplane failed, not shaping: ${(e as Error).message}`;
        log.error(msg);
        shaping.degraded = msg;
        dataplane = { state: 'not_attached', detail: (e as Error).message };
        mappings = undefined;
        urgent.submit({ source: 'lqosd', severity: 'error', code: 'DATAPLANE_ATTACH_FAILED', message: msg, dedupeKey: ATTACH_KEY });
      }
    };
    await ensureShaping();

    // The flow tracker starts later (after the dataplane attach); the context reads it lazily.
    const flowsHandleHolder: { current?: { snapshot(): unknown; stop(): void } } = {};
    const flowsHandleRef = (): unknown => flowsHandleHolder.current?.snapshot();
    // 4. Shaping jobs (refresh / submit_plan) run one at a time.
    let job: { kind: string; since: string } | undefined;
    let jobDone: Promise<unknown> | undefined;
    const exclusive = async <T>(kind: string, fn: () => Promise<T>): Promise<T> => {
      if (job) throw new BusError('busy', `a ${job.kind} is already running (since ${job.since}); try again when it finishes`);
      job = { kind, since: now().toISOString() };
      const p = fn();
      jobDone = p.catch(() => undefined);
      try {
        return await p;
      } finally {
        job = undefined;
        jobDone = undefined;
      }
    };
    // On stop (after the bus is closed): let a running refresh/apply finish rather than cut it off.
    cleanups.push(async () => {
      const running = job;
      if (!running || !jobDone) return;
      log.info(`waiting up to ${STOP_WAIT_MS / 1000} s for the running ${running.kind} to finish`);
      let timer: NodeJS.Timeout | undefined;
      const finished = await Promise.race([
        jobDone.then(() => true),
        new Promise<boolean>((r) => (timer = setTimeout(() => r(false), STOP_WAIT_MS))),
      ]);
      clearTimeout(timer);
      if (!finished) log.warn(`the ${running.kind} did not finish in time; stopping anyway`);
    });

    const refreshCommand = () => opts.refreshCommand ?? defaultRefreshCommand(configPath);
    // Kernel lacks cake/fq_codel: shown in the status and raised once as an urgent issue.
    const noteFallbacks = (report: ApplyReport) => {
      const fb = report.leafFallbacks as Record<string, string> | undefined;
      if (!fb || Object.keys(fb).length === 0) return;
      shaping.leafFallbacks = fb;
      urgent.submit({
        source: 'lqosd',
        severity: 'warning',
        code: 'QDISC_FALLBACK',
        message: `This kernel lacks ${Object.keys(fb).join(' and ')}; circuits use ${[...new Set(Object.values(fb))].join(', ')} instead (shaping works, with less fairness/AQM). Load sch_cake / sch_fq_codel to restore them.`,
        context: fb,
        dedupeKey: 'lqosd:qdisc-fallback',
      });
    };
    // With an apply engine in this process, a refresh is a submit_plan of the configured files
    // (running the LibreQoS command would only come back to us over the bus).
    const refreshInProcess = async (apply: ApplyPlanHandler): Promise<RefreshResult> => {
      const t0 = performance.now();
      const dir = config.lqos_directory;
      const devicesFile = join(dir, 'ShapedDevices.csv');
      const networkFile = join(dir, 'network.json');
      let report: ApplyReport;
      try {
        report = await apply(
          { mode: 'incremental', devicesCsv: readFileSync(devicesFile, 'utf8'), networkJson: readFileSync(networkFile, 'utf8'), devicesFile, networkFile },
          context,
        );
      } catch (e) {
        return { exitCode: 1, ok: false, durationMs: Math.round(performance.now() - t0), lines: [`ERROR ${(e as Error).message}`] };
      }
      if (report.ok && report.plan) appliedPlan = report.plan;
      noteFallbacks(report);
      const lines = ((report.log as string[] | undefined) ?? []).slice(-40).map((l) => {
        try {
          const j = JSON.parse(l) as { level: number; msg: string };
          return `${j.level >= 50 ? 'ERROR' : j.level >= 40 ? 'WARN' : 'INFO'} ${j.msg}`;
        } catch {
          return l;
        }
      });
      return {
        exitCode: (report.exitCode as number | undefined) ?? (report.ok ? 0 : 1),
        ok: report.ok,
        durationMs: Math.round(performance.now() - t0),
        lines,
        applied: report.ok ? { mode: report.mode, commands: report.commands } : undefined,
      };
    };
    const refresh = (): Promise<RefreshResult> =>
      exclusive('refresh', async () => {
        log.info('refresh: running the LibreQoS pipeline');
        const r = opts.applyPlan && !opts.refreshCommand ? await refreshInProcess(opts.applyPlan) : await runRefresh(refreshCommand());
        if (r.ok) {
          shaping.lastApply = {
            at: now().toISOString(),
            mode: r.applied?.mode ?? 'none',
            commands: r.applied?.commands ?? 0,
            seconds: +(r.durationMs / 1000).toFixed(3),
          };
          urgent.resolveKey('lqosd:refresh');
          log.info(`refresh: LibreQoS finished in ${r.durationMs} ms`);
        } else {
          log.error(`refresh: LibreQoS exited with ${r.exitCode}`);
          urgent.submit({
            source: 'lqosd',
            severity: 'error',
            code: 'REFRESH_FAILED',
            message: `LibreQoS exited with ${r.exitCode}:\n${makePreview(r.lines.slice(-10).join('\n'))}`,
            dedupeKey: 'lqosd:refresh',
          });
        }
        return r;
      });

    const reloadConfig = async (): Promise<void> => {
      let next;
      try {
        next = loadResolvedConfig(configPath);
      } catch (e) {
        const msg = e instanceof ConfigError ? e.message : (e as Error).message;
        log.error(`config reload failed; keeping the config in force: ${msg}`);
        throw new BusError('config_error', msg);
      }
      for (const w of next.warnings) log.warn(w);
      const changed = changedKeys(config, next.config);
      const interfacesChanged = !sameInterfaces(interfacesOf(config), interfacesOf(next.config));
      const prev = config;
      config = next.config;
      loaded = next;
      log.info({ changed }, changed.length ? `config reloaded from ${configPath}; changed: ${changed.join(', ')}` : `config reloaded from ${configPath}; nothing changed`);
      if (prev.state_directory !== config.state_directory) {
        log.warn('state_directory changed: urgent issues keep being stored in the old one until lqosd restarts');
      }
      if (dataplane.state === 'attached') {
        if (interfacesChanged) {
          const msg = 'the shaping interfaces changed in the config; restart lqosd (systemctl restart lqosd) and run LibreQoS to shape on them';
          log.warn(msg);
          urgent.submit({ source: 'lqosd', severity: 'warning', code: 'INTERFACES_CHANGED', message: msg, dedupeKey: INTERFACES_CHANGED_KEY });
        }
        return;
      }
      await ensureShaping();
    };

    const context: DaemonContext = {
      flows: () => flowsHandleRef(),
      log,
      configPath,
      config: () => config,
      reloadConfig,
      urgent,
      scheduler,
      appliedPlan: () => appliedPlan,
      shapingStatus: () => ({ ...shaping }),
      startedAt,
      version: VERSION,
      busPath,
      refresh,
    };

    const needMappings = (): MappingBackend => {
      if (mappings) return mappings;
      throw new BusError('unavailable', shaping.degraded ?? 'the dataplane is not attached; IP mappings cannot be changed');
    };

    const readInput = (text: string | undefined, path: string | undefined, what: string): string => {
      if (text !== undefined) return text;
      try {
        return readFileSync(path!, 'utf8');
      } catch (e) {
        throw new BusError('failed', `cannot read ${what} ${path}: ${(e as Error).message}`);
      }
    };

    // 5. Bus.
    let bus: BusServer | undefined;
    const handlers: BusHandlers = {
      ping: () => ({ pong: true, version: VERSION, pid: process.pid }),
      status: () => ({
        version: VERSION,
        pid: process.pid,
        startedAt: startedAt.toISOString(),
        uptimeSeconds: Math.round((now().getTime() - startedAt.getTime()) / 1000),
        configPath,
        dryRun: config.queues.dry_run,
        shaping: { ...shaping },
        dataplane: { ...dataplane, pinRoot, mappings: mappings?.kind ?? 'none' },
        preflight: lastPreflight ? { ok: lastPreflight.ok, errors: lastPreflight.errors, warnings: lastPreflight.warnings } : undefined,
        urgentActive: urgent.activeCount(),
        scheduler: scheduler.status().health,
        job: job ?? null,
        bus: { path: busPath, connections: bus?.connections() ?? 0 },
      }),
      refresh: () => refresh(),
      submit_plan: async (r) => {
        const apply = opts.applyPlan;
        if (!apply) throw new BusError('not_implemented', 'the apply engine is not part of this lqosd build; use the refresh request (runs LibreQoS) instead');
        if (shaping.degraded && !config.queues.dry_run) throw new BusError('unavailable', shaping.degraded);
        const req: ApplyPlanRequest = {
          mode: r.mode,
          devicesCsv: readInput(r.devicesCsv, r.devicesPath, 'ShapedDevices file'),
          networkJson: readInput(r.networkJson, r.networkPath, 'network file'),
          ...(r.devicesPath ? { devicesFile: r.devicesPath } : {}),
          ...(r.networkPath ? { networkFile: r.networkPath } : {}),
          ...(r.updateonly !== undefined ? { updateonly: r.updateonly } : {}),
          ...(r.verbose !== undefined ? { verbose: r.verbose } : {}),
        };
        return exclusive('plan apply', async () => {
          const report = await apply(req, context);
          if (report.ok) {
            shaping.lastApply = { at: now().toISOString(), mode: report.mode, commands: report.commands, seconds: report.seconds };
            if (report.plan) appliedPlan = report.plan;
          }
          noteFallbacks(report);
          const { plan: _plan, ...rest } = report;
          return rest;
        });
      },
      map_ip_add: async (r) => ({ count: await needMappings().add(r.entries), backend: needMappings().kind }),
      map_ip_delete: async (r) => ({ count: await needMappings().delete(r.prefixes), backend: needMappings().kind }),
      map_ip_clear: async () => ({ removed: await needMappings().clear(), backend: needMappings().kind }),
      map_ip_list: async () => ({ mappings: await needMappings().list(), backend: needMappings().kind }),
      scheduler_heartbeat: (r) => {
        scheduler.heartbeat(r.phase, r.nextRun);
        return scheduler.status();
      },
      scheduler_success: (r) => {
        scheduler.success(r.at);
        return scheduler.status();
      },
      scheduler_error: (r) => {
        scheduler.error({ message: r.message, integration: r.integration, preview: r.output, logFile: r.logFile });
        return scheduler.status();
      },
      scheduler_status: () => scheduler.status(),
      urgent_submit: (r) =>
        urgent.submit({ source: r.source, severity: r.severity, code: r.code, message: r.message, context: r.context, dedupeKey: r.dedupeKey }),
      urgent_list: () => ({ issues: urgent.list(), active: urgent.activeCount() }),
      urgent_ack: (r) => {
        if (!urgent.acknowledge(r.issueId)) throw new BusError('not_found', `no urgent issue with id ${r.issueId}`);
        return { acknowledged: true, active: urgent.activeCount() };
      },
      urgent_clear: (r) => ({ removed: urgent.clear(r.issueId), active: urgent.activeCount() }),
      urgent_resolve: (r) => ({ resolved: urgent.resolveKey(r.key), active: urgent.activeCount() }),
      reload_config: async () => {
        const before = config;
        await reloadConfig();
        return { changed: changedKeys(before, config), shaping: { ...shaping } };
      },
      stats_hosts: async (r) => {
        if (opts.statsHosts) return opts.statsHosts(r, context);
        if (dataplane.state !== 'attached') return { hosts: [], note: 'no dataplane attached (dry run or degraded): no host counters' };
        const { readHostCounters } = await import('../../dataplane/loader.ts');
        const counters = await readHostCounters({ pinRoot });
        const key = (c: { downloadBytes: bigint; uploadBytes: bigint }) =>
          r.sortBy === 'download' ? c.downloadBytes : r.sortBy === 'upload' ? c.uploadBytes : c.downloadBytes + c.uploadBytes;
        const hosts = [...counters.entries()]
          .sort((a, b) => (key(b[1]) > key(a[1]) ? 1 : key(b[1]) < key(a[1]) ? -1 : 0))
          .slice(0, r.limit)
          .map(([ip, c]) => ({ ip, ...c }));
        return { hosts };
      },
    };
    // ---- telemetry (lib/telemetry/service.ts) -------------------------------------------------
    // 1 Hz host rates / roll-ups / history, 2 s queue stats, websocket channels, Prometheus gauges.
    // Bus `stats_hosts` answers from it unless a handler was plugged in. LQOS_TELEMETRY=0 disables.
    if (process.env.LQOS_TELEMETRY !== '0') {
      try {
        const telemetry = startTelemetry(context, { pinRoot, isAttached: () => dataplane.state === 'attached' });
        cleanups.push(() => telemetry.stop());
        if (!opts.statsHosts) handlers.stats_hosts = (r) => telemetry.statsHosts(r);
      } catch (e) {
        log.warn(`telemetry failed to start: ${(e as Error).message}; lqosd continues without it`);
      }
    }
    // ---- end telemetry ------------------------------------------------------------------------
    // ---- flows (lib/flows/service.ts): per-flow tracking, RTT, ASN/geo; web channel `flows` ----
    let flowsHandle: { snapshot(): unknown; stop(): void } | undefined;
    if (process.env.LQOS_FLOWS !== '0' && dataplane.state === 'attached') {
      try {
        const { startFlowTracking } = await import('../flows/service.ts');
        let indexedPlan: ShapingPlan | undefined;
        let byHash = new Map<bigint, { id: string; name: string }>();
        const resolveCircuit = (hash: bigint) => {
          const plan = context.appliedPlan();
          if (plan !== indexedPlan) {
            indexedPlan = plan;
            byHash = new Map((plan?.circuits ?? []).map((c) => [c.circuitHash, { id: c.id, name: c.name }]));
          }
          return byHash.get(hash);
        };
        flowsHandle = flowsHandleHolder.current = startFlowTracking({ pinRoot, resolveCircuit, intervalMs: 2000, onError: (e) => log.debug({ err: e }, 'flow poll failed') });
        const handle = flowsHandle;
        cleanups.push(() => handle.stop());
        const { registerChannel } = await import('../web/channels.ts');
        cleanups.push(registerChannel('flows', () => handle.snapshot()));
        log.info('flow tracking started');
      } catch (e) {
        log.warn(`flow tracking failed to start: ${(e as Error).message}; lqosd continues without it`);
      }
    }
    // ---- end flows ----------------------------------------------------------------------------
    bus = await startBusServer({ path: busPath, handlers, log });
    const busRef = bus;
    cleanups.push(() => busRef.close());

    // 6. Web UI.
    if (opts.web !== false && !config.disable_webserver) {
      try {
        const web = await (opts.web ?? defaultWeb)(context, log);
        if (web && (web.close || web.stop)) cleanups.push(async () => void (await (web.close ?? web.stop)!.call(web)));
      } catch (e) {
        log.error({ err: e }, `web UI failed to start: ${(e as Error).message}; lqosd continues without it`);
      }
    } else if (config.disable_webserver) {
      log.info('web UI disabled (disable_webserver = true)');
    }

    log.info(
      { degraded: shaping.degraded, dataplane: dataplane.state },
      shaping.degraded ? `lqosd ready (degraded: ${shaping.degraded})` : `lqosd ready (dataplane: ${dataplane.state})`,
    );

    let stopped: Promise<void> | undefined;
    return {
      context,
      stop: () => {
        stopped ??= (async () => {
          log.info('lqosd stopping; shaping stays in the kernel');
          await runCleanups();
        })();
        return stopped;
      },
    };
  } catch (e) {
    await runCleanups();
    throw e;
  }
}
