/**
 * lqosd: the long-running shaper daemon. startDaemon() wires the parts together — lock, config,
 * urgent issues, scheduler status, the dataplane host, the shaping jobs, telemetry and flows, the
 * bus and the web UI — and hands each the pieces it needs.
 *
 * Shaping outlives the daemon: stopping lqosd leaves the pinned maps, programs and tc tree in the
 * kernel, and the next start re-adopts them (the applied plan is read back from the state files).
 */
import { loadAppliedPlanCompact } from '../apply/appliedPlan.ts';
import { startBusServer, defaultBusPath, type BusServer } from '../bus/server.ts';
import type { ShapingPlan } from '../model.ts';
import { SchedulerStatusTracker } from '../scheduler/status.ts';
import { applyHostTuning } from '../kernel/hostTuningApply.ts';
import { attachForConfig, leafSubstitutes } from '../shaping/kernel.ts';
import { acquireLock, acquireLockWaiting, kernelLockPath, LockHeldError } from '../shaping/lock.ts';
import { LazyQueueManager } from '../shaping/lazyQueues.ts';
import { dataplaneLazySignals } from '../shaping/lazyFirstPackets.ts';
import { ShapingService } from '../shaping/service.ts';
import { FileUrgentIssueStore } from '../urgent/store.ts';
import { ensureStateDir, leftReason, STATE_DIR_MODE } from '../util/fileModes.ts';
import { createLogger, type Logger } from '../util/log.ts';
import { pinRoot as defaultPinRoot, runDir as defaultRunDir, VERSION } from '../util/paths.ts';
import { createShapingMetrics, type ShapingMetrics } from '../telemetry/metrics.ts';
import { ChannelRegistry } from '../web/channels.ts';
import { startWebServer } from '../web/server.ts';
import { busHandlers } from './busHandlers.ts';
import { ConfigHolder } from './configHolder.ts';
import type { DaemonContext, ShapingStatus } from './context.ts';
import { DataplaneHost, type DataplaneAttacher, type HostTuner } from './dataplaneHost.ts';
import { lockDaemon } from './instanceLock.ts';
import { JobRunner } from './jobs.ts';
import { startServices, webSources } from './services.ts';
import { ShapingJobs } from './shapingJobs.ts';

export { DaemonAlreadyRunningError } from './instanceLock.ts';

/** How long stop() waits for a running refresh/apply. */
export const STOP_WAIT_MS = 20_000;

const INTERFACES_CHANGED_KEY = 'lqosd:interfaces-changed';

/** What the web server is handed besides the context: the live channels and the metrics. */
export interface WebSinks {
  channels: ChannelRegistry;
  metrics: ShapingMetrics;
}

/** Starts the web server; the returned object's close() is called when lqosd stops. */
export type WebStarter = (ctx: DaemonContext, sinks: WebSinks) => Promise<{ close(): Promise<unknown> | unknown } | void>;

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
  /** false: no web server. Default: lib/web/server.ts on [web] bind_address:port. */
  web?: false | WebStarter;
  /** The shaping service (default: the real one, probing the kernel's qdiscs once). Tests wrap it. */
  shaping?: Pick<ShapingService, 'run'>;
  /** Replaces the dataplane attach (tests without bpffs). */
  attachDataplane?: DataplaneAttacher;
  /** Replaces the host tuning (default: the real one, unless attachDataplane is replaced). */
  tuneHost?: HostTuner;
  /** Clock for the scheduler tracker and urgent store (tests). */
  now?: () => Date;
  /**
   * Shape once at start (the configured inputs, or the last good inputs when they are unusable);
   * default: only with the real shaping service and dataplane. Never in a dry run or degraded.
   */
  shapeAtStart?: boolean;
}

export interface RunningDaemon {
  context: DaemonContext;
  /** Closes the web server and the bus, removes the socket and the lock. Shaping stays in the kernel. */
  stop(): Promise<void>;
}

const defaultWeb: WebStarter = async (ctx, sinks) => startWebServer(ctx, sinks);

/** Runs cleanup steps in reverse order, logging (not throwing) failures. */
class Cleanups {
  private readonly steps: (() => Promise<unknown> | unknown)[] = [];
  constructor(private readonly log: Logger) {}
  push(step: () => Promise<unknown> | unknown): void {
    this.steps.push(step);
  }
  async run(): Promise<void> {
    for (const step of this.steps.splice(0).reverse()) {
      try {
        await step();
      } catch (e) {
        this.log.warn(`cleanup step failed: ${(e as Error).message}`);
      }
    }
  }
}

export async function startDaemon(opts: StartDaemonOptions = {}): Promise<RunningDaemon> {
  const log = opts.log ?? createLogger('lqosd');
  const runDir = opts.runDir ?? defaultRunDir();
  const cleanups = new Cleanups(log);
  const lock = lockDaemon(runDir, log);
  cleanups.push(() => lock.release());
  try {
    const context = await assemble(opts, log, runDir, cleanups);
    let stopped: Promise<void> | undefined;
    return {
      context,
      stop: () =>
        (stopped ??= (async () => {
          log.info('lqosd stopping; shaping stays in the kernel');
          await cleanups.run();
        })()),
    };
  } catch (e) {
    await cleanups.run();
    throw e;
  }
}

/**
 * Creates the state directory (0750) or narrows it to 0750, but only when it is lqos-ts's own
 * (lib/util/fileModes.ts ensureStateDir: it holds nothing but lqos state); one holding other files
 * keeps its mode, with a warning saying what to do. A system directory never gets here: the config
 * is refused first (lib/config/resolve.ts loadResolvedConfig, absolute or relative), so lqosd does
 * not start with it.
 */
function prepareStateDir(dir: string, log: Logger): void {
  const done = ensureStateDir(dir, STATE_DIR_MODE);
  if (done.action !== 'left') return;
  log.warn(
    { stateDirectory: dir, mode: `0${done.mode.toString(8)}` },
    `state_directory ${dir} ${leftReason(done)}, so lqosd leaves its mode as it is (it narrows only a ` +
      `directory of its own to 0750): move state_directory to a directory of its own, or run chmod 0750 ${dir} if nothing else needs it wider`,
  );
}

/** Builds and starts every part; cleanups undo them in reverse order. */
async function assemble(opts: StartDaemonOptions, log: Logger, runDir: string, cleanups: Cleanups): Promise<DaemonContext> {
  const busPath = opts.busPath ?? defaultBusPath({ ...process.env, LQOS_RUN_DIR: runDir });
  const pinRoot = opts.pinRoot ?? defaultPinRoot();
  const now = opts.now ?? (() => new Date());
  const startedAt = now();

  // Config (fatal at start: without it there is no state directory).
  const config = new ConfigHolder(opts.configPath, log);
  log.info({ config: config.path, version: VERSION }, `lqosd ${VERSION} starting with ${config.path}`);
  // The state directory holds subscriber data and the users file: 0750 at most (created or narrowed).
  prepareStateDir(config.config.state_directory, log);
  const urgent = new FileUrgentIssueStore({ path: config.current.state.urgentIssues, log, now });
  const scheduler = new SchedulerStatusTracker({ now });
  const status: ShapingStatus = {};
  // Re-adopt the plan in force: shaping survived our restart.
  let appliedPlan: ShapingPlan | undefined = loadAppliedPlanCompact(config.current.state.appliedPlan, log, now); // lib/apply/compactPlan.ts
  /** A dry run's last plan (`[queues] dry_run`): shown by the web UI as planned, not applied. */
  let plannedPlan: ShapingPlan | undefined;
  // Tests that replace the attach never tune the real host unless they hand in a tuner.
  const tune = opts.tuneHost ?? (opts.attachDataplane ? undefined : applyHostTuning);
  const host = new DataplaneHost({ pinRoot, log, urgent, status, attach: opts.attachDataplane ?? attachForConfig, tune });
  // Attaching (and re-tuning) changes the kernel too: under the same lock as every apply, so it
  // never runs while `LibreQoS --clearrules` / `--direct` tear down or apply.
  // Lazy queues add and remove circuit classes/leaves between applies (lib/shaping/lazyQueues.ts);
  // every kernel change of lqosd holds its gate (pause) first, so the two never interleave.
  const lazySignals = dataplaneLazySignals(pinRoot);
  const lazy = new LazyQueueManager({
    log,
    config: () => config.config,
    publish: (s) => (s ? (status.lazyQueues = s) : delete status.lazyQueues),
    tryLockKernel: () => acquireLock(kernelLockPath(runDir), 'lqosd: lazy queues'),
    // First-packet reports from our own dataplane (not from a test's stand-in attach).
    ...(opts.attachDataplane ? {} : { signals: () => (host.attached ? lazySignals : undefined) }),
  });
  const { lockKernel, underKernelLock } = kernelLocking(runDir, lazy, log);
  await underKernelLock('lqosd: dataplane attach', () => host.ensure(config.current));

  const jobs = new JobRunner(now);
  // On stop (after the bus is closed): let a running refresh/apply finish rather than cut it off.
  cleanups.push(() => jobs.drain(STOP_WAIT_MS, log));
  cleanups.push(() => lazy.idle());
  cleanups.push(() => lazy.stop());
  const shaping = new ShapingJobs({
    jobs,
    service: opts.shaping ?? new ShapingService({ substitutes: () => leafSubstitutes(log), lazy: (c) => lazy.control(c) }),
    // The same kernel lock `LibreQoS --direct` / `--clearrules` take: no two tc batches interleave.
    lockKernel,
    host,
    config: () => config.current,
    status,
    urgent,
    log,
    now,
    onApplied: (plan) => (appliedPlan = plan),
    onPlanned: (plan) => (plannedPlan = plan),
  });

  const reloadConfig = async (): Promise<void> => {
    const change = config.reload();
    lazy.configChanged(); // lazy_threshold_bytes decides whether first packets are reported
    if (!host.attached) return underKernelLock('lqosd: dataplane attach', () => host.ensure(config.current));
    await underKernelLock('lqosd: host tuning', () => host.retune(config.config));
    if (change.interfacesChanged) {
      const msg = 'the shaping interfaces changed in the config; restart lqosd (systemctl restart lqosd) and run LibreQoS to shape on them';
      log.warn(msg);
      urgent.submit({ source: 'lqosd', severity: 'warning', code: 'INTERFACES_CHANGED', message: msg, dedupeKey: INTERFACES_CHANGED_KEY });
    }
  };

  const context: DaemonContext = {
    log,
    configPath: config.path,
    config: () => config.config,
    reloadConfig,
    urgent,
    scheduler,
    appliedPlan: () => appliedPlan,
    plannedPlan: () => plannedPlan,
    shapingStatus: () => ({ ...status }),
    startedAt,
    version: VERSION,
    busPath,
    refresh: () => shaping.refresh(),
  };

  const sinks: WebSinks = { channels: new ChannelRegistry(), metrics: createShapingMetrics() };
  const services = await startServices(context, { pinRoot, attached: () => host.attached, onCircuitBytes: (t) => lazy.observe(t), ...sinks });
  cleanups.push(() => services.stop());
  Object.assign(context, webSources(services));

  let bus: BusServer | undefined;
  const handlers = busHandlers({
    version: VERSION,
    startedAt,
    now,
    pinRoot,
    busPath,
    config,
    host,
    jobs,
    shaping,
    urgent,
    scheduler,
    status,
    reloadConfig,
    busConnections: () => bus?.connections() ?? 0,
    statsHosts: services.statsHosts,
    topCircuits: services.topCircuits,
  });
  if (opts.shapeAtStart ?? (opts.shaping === undefined && opts.attachDataplane === undefined)) {
    // Started before the bus opens, so no request can take the job first; it runs in the
    // background: the bus and the web UI answer meanwhile (shaping requests wait for it).
    shaping.atStart().catch((e: unknown) => log.error({ err: e }, `start-up run failed: ${(e as Error).message}`));
  }
  bus = await startBusServer({ path: busPath, handlers, log });
  const openBus = bus;
  cleanups.push(() => openBus.close());

  await startWeb(opts, context, sinks, cleanups);
  log.info(
    { degraded: status.degraded, dataplane: host.state.state },
    status.degraded ? `lqosd ready (degraded: ${status.degraded})` : `lqosd ready (dataplane: ${host.state.state})`,
  );
  return context;
}

/**
 * lqosd's kernel lock, lazy queues paused until it is released. `ifHeld: 'proceed'` (attach, host
 * tuning): when another process keeps it past the wait, warn and go ahead without it.
 */
function kernelLocking(runDir: string, lazy: LazyQueueManager, log: Logger) {
  const lockKernel = async (what: string, ifHeld: 'throw' | 'proceed' = 'throw'): Promise<{ release(): void }> => {
    const resume = await lazy.pause();
    let lock: { release(): void } | undefined;
    try {
      lock = await acquireLockWaiting(kernelLockPath(runDir), { what, log });
    } catch (e) {
      if (ifHeld === 'throw' || !(e instanceof LockHeldError)) {
        resume();
        throw e;
      }
      log.warn(`${e.message}; going ahead with the ${what.replace(/^lqosd: /, '')} anyway`);
    }
    return { release: () => (lock?.release(), resume()) };
  };
  const underKernelLock = async (what: string, fn: () => Promise<void>): Promise<void> => {
    const lock = await lockKernel(what, 'proceed');
    try {
      await fn();
    } finally {
      lock.release();
    }
  };
  return { lockKernel, underKernelLock };
}

async function startWeb(opts: StartDaemonOptions, context: DaemonContext, sinks: WebSinks, cleanups: Cleanups): Promise<void> {
  const log = context.log;
  if (opts.web === false) return;
  if (context.config().disable_webserver) {
    log.info('web UI disabled (disable_webserver = true)');
    return;
  }
  try {
    const web = await (opts.web ?? defaultWeb)(context, sinks);
    if (web) cleanups.push(() => web.close());
  } catch (e) {
    log.error({ err: e }, `web UI failed to start: ${(e as Error).message}; lqosd continues without it`);
  }
}
