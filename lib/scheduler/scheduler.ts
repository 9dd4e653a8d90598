/**
 * lqos_scheduler: keeps the shaping in step with the CRM and the operator's files.
 *
 *   start ── wait for lqosd's bus (bounded) ── full setup: integrations, then shaping (mode full)
 *     └─ every integration_common.queue_refresh_interval_mins (config re-read every cycle):
 *        integrations, then shaping
 *     └─ between cycles: a change to network.json / ShapedDevices.csv / lqos_overrides.json in
 *        lqos_directory → one debounced shaping run (only if the content differs from what was last
 *        shaped, so the scheduler's own integration writes never cause a second run)
 *
 * Everything runs one job at a time. Integrations run as child processes with a timeout
 * (./integrationRunner.ts); a failure keeps the last good inputs and is reported (scheduler status,
 * urgent issue `scheduler:integration:<name>`, full output in /tmp/lqos_scheduler__*.log) — it never
 * stops the scheduler. Shaping goes through lqosd (./shape.ts). Status goes to lqosd as heartbeats
 * (every phase change and at least every 60 s), `scheduler_success` after a fully good cycle and
 * `scheduler_error` on failures. Bus outages are logged and retried, never fatal.
 */
import { join } from 'node:path';
import { ConfigError } from '../config/load.ts';
import { loadResolvedConfig, type ResolvedConfig } from '../config/resolve.ts';
import type { LqosConfig } from '../config/schema.ts';
import { waitForBus, defaultBusPath } from '../bus/client.ts';
import { enabledIntegrations } from '../integrations/registry.ts';
import type { Logger } from '../util/log.ts';
import { REPO_ROOT } from '../util/paths.ts';
import { runIntegration, type IntegrationCommand, type IntegrationRunResult } from './integrationRunner.ts';
import { StatusReporter } from './reporter.ts';
import { EXIT } from '../shaping/exitCodes.ts';
import { shapeOnce, type ShapeResult } from './shape.ts';
import { hashInputs, InputWatcher, sameHashes } from './watcher.ts';

/** `--once` exit codes (see lib/scheduler/README.md). */
export const SCHEDULER_EXIT = {
  ok: 0,
  /** Shaping failed: invalid inputs, invalid lqos_overrides.json or lqos.conf, LibreQoS/lqosd failure. */
  shapingFailed: 1,
  /** An integration failed, but shaping with the last good inputs worked. */
  integrationFailed: 2,
  /** lqosd's bus did not answer within the wait. */
  lqosdUnreachable: 3,
} as const;
export type SchedulerExitCode = (typeof SCHEDULER_EXIT)[keyof typeof SCHEDULER_EXIT];

export const DEFAULT_BUS_WAIT_MS = 120_000;
export const HEARTBEAT_MS = 60_000;
/** Env hook (tests, diagnostics): JSON list of `{name, file, args?}` run instead of the enabled integrations. */
export const TEST_INTEGRATIONS_ENV = 'LQOS_SCHEDULER_TEST_INTEGRATIONS';

export const urgentKeyFor = (integration: string) => `scheduler:integration:${integration}`;
export const OVERRIDES_KEY = 'scheduler:overrides';
export const CONFIG_KEY = 'scheduler:config';
export const SHAPING_KEY = 'scheduler:shaping';

export interface SchedulerOptions {
  configPath?: string;
  busPath?: string;
  log: Logger;
  /** How long to wait for lqosd's bus at start (default 120 s). */
  busWaitMs?: number;
  /** Replaces queue_refresh_interval_mins (tests). */
  intervalMs?: number;
  heartbeatMs?: number;
  debounceMs?: number;
  /** Replaces queues.integration_timeout_secs (tests). */
  integrationTimeoutMs?: number;
  /** Where failed integration output goes (default $LQOS_SCHEDULER_LOG_DIR or /tmp). */
  logDir?: string;
  /** Replaces the enabled integrations (tests). */
  integrations?: (sc: ResolvedConfig) => IntegrationCommand[];
  busyRetryMs?: number;
}

export class BusWaitTimeoutError extends Error {}

export interface CycleResult {
  code: SchedulerExitCode;
  integrations: IntegrationRunResult[];
  shape?: ShapeResult;
}

/** The commands for the enabled integrations: only the first in upstream priority order runs. */
export function integrationCommands(sc: ResolvedConfig, log?: Logger): IntegrationCommand[] {
  const env = process.env[TEST_INTEGRATIONS_ENV];
  if (env) {
    const list = JSON.parse(env) as { name: string; file: string; args?: string[] }[];
    return list.map((i) => ({ name: i.name, file: i.file, args: i.args ?? [] }));
  }
  const enabled = enabledIntegrations(sc.config);
  if (enabled.length > 1) {
    log?.warn(`several integrations are enabled (${enabled.map((e) => e.name).join(', ')}); only the first, ${enabled[0].name}, runs (upstream priority order)`);
  }
  return enabled.slice(0, 1).map((e) => ({
    name: e.name,
    file: join(REPO_ROOT, 'bin/launch'),
    args: ['integration', e.name, '--config', sc.path, '--out', sc.config.lqos_directory],
    env: { LQOS_LOG_FORMAT: 'pretty' },
    cwd: REPO_ROOT,
  }));
}

function intervalOf(config: LqosConfig): number {
  return config.integration_common.queue_refresh_interval_mins * 60_000;
}

export class Scheduler {
  readonly reporter: StatusReporter;
  private readonly log: Logger;
  private phase = 'starting';
  private nextRun?: string;
  private heartbeatTimer?: NodeJS.Timeout;
  private cycleTimer?: NodeJS.Timeout;
  private watcher?: InputWatcher;
  private chain: Promise<unknown> = Promise.resolve();
  private busy = false;
  private recheck = false;
  private stopped = false;
  private lastShaped?: Record<string, string>;
  private lastConfig?: ResolvedConfig;
  private runningPids = new Set<number>();
  /** Integrations whose last run failed (their urgent issue is open). */
  private failedIntegrations = new Set<string>();
  private shapeCount = 0;
  private configFailed = false;

  constructor(private readonly opts: SchedulerOptions) {
    this.log = opts.log;
    this.reporter = new StatusReporter(opts.log, opts.busPath);
  }

  /** Number of shaping runs started (tests). */
  get shapes(): number {
    return this.shapeCount;
  }

  private setPhase(phase: string, nextRun?: string): void {
    this.phase = phase;
    this.nextRun = nextRun;
    void this.reporter.heartbeat(phase, nextRun);
  }

  /** `logWarnings`: false for a file-change check (the warnings are logged by the run it leads to). */
  private loadConfig(logWarnings = true): ResolvedConfig | ConfigError {
    try {
      const sc = loadResolvedConfig({ path: this.opts.configPath });
      if (logWarnings) for (const w of sc.warnings) this.log.warn(w);
      this.lastConfig = sc;
      if (this.configFailed) void this.reporter.resolve(CONFIG_KEY);
      this.configFailed = false;
      return sc;
    } catch (e) {
      if (!(e instanceof ConfigError)) throw e;
      this.configFailed = true;
      return e;
    }
  }

  async waitForLqosd(): Promise<void> {
    const path = this.opts.busPath ?? defaultBusPath();
    const timeoutMs = this.opts.busWaitMs ?? DEFAULT_BUS_WAIT_MS;
    this.phase = 'waiting for lqosd';
    this.log.info(`waiting for lqosd on ${path} (up to ${Math.round(timeoutMs / 1000)} s)`);
    let lastLog = Date.now();
    try {
      await waitForBus({
        path,
        timeoutMs,
        intervalMs: 250,
        onProgress: ({ elapsedMs, error }) => {
          if (Date.now() - lastLog >= 5000) {
            lastLog = Date.now();
            this.log.info(`still waiting for lqosd (${Math.round(elapsedMs / 1000)} s): ${error}`);
          }
        },
      });
    } catch (e) {
      throw new BusWaitTimeoutError(`lqosd did not answer on ${path} within ${Math.round(timeoutMs / 1000)} s: ${(e as Error).message}`);
    }
    this.log.info('lqosd is up');
  }

  /** Serialises jobs (cycles and watcher refreshes). */
  private exclusive<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.chain.then(async () => {
      this.busy = true;
      try {
        return await fn();
      } finally {
        this.busy = false;
      }
    });
    this.chain = run.catch(() => undefined);
    return run;
  }

  private async runIntegrations(sc: ResolvedConfig): Promise<IntegrationRunResult[]> {
    const cmds = this.opts.integrations ? this.opts.integrations(sc) : integrationCommands(sc, this.log);
    if (cmds.length === 0) {
      this.log.info('no integration enabled; shaping the files in lqos_directory as they are');
      return [];
    }
    const timeoutMs = this.opts.integrationTimeoutMs ?? sc.config.queues.integration_timeout_secs * 1000;
    const results: IntegrationRunResult[] = [];
    for (const cmd of cmds) {
      if (this.stopped) break;
      this.setPhase(`running integration ${cmd.name}`);
      this.log.info(`running integration ${cmd.name} (timeout ${Math.round(timeoutMs / 1000)} s)`);
      const r = await runIntegration(cmd, {
        timeoutMs,
        logDir: this.opts.logDir,
        onSpawn: (pid) => this.runningPids.add(pid),
      }).catch((e: unknown): IntegrationRunResult => ({
        name: cmd.name,
        ok: false,
        timedOut: false,
        spawnError: (e as Error).message,
        durationMs: 0,
        output: '',
        totalBytes: 0,
        droppedBytes: 0,
        preview: '',
        summary: `integration ${cmd.name} could not be run: ${(e as Error).message}`,
      }));
      this.runningPids.clear();
      results.push(r);
      if (r.ok) {
        this.log.info(r.summary);
        this.failedIntegrations.delete(cmd.name);
        void this.reporter.resolve(urgentKeyFor(cmd.name));
      } else {
        this.failedIntegrations.add(cmd.name);
        this.log.error({ integration: cmd.name, logFile: r.logFile, exitCode: r.exitCode, timedOut: r.timedOut }, r.summary);
        if (r.preview) this.log.error(`output preview of ${cmd.name}:\n${r.preview}`);
        await this.reporter.error({ message: r.summary, integration: cmd.name, output: r.preview || undefined, logFile: r.logFile });
        await this.reporter.urgent(
          'INTEGRATION_FAILED',
          r.preview ? `${r.summary}\nOutput preview:\n${r.preview}` : r.summary,
          urgentKeyFor(cmd.name),
          { integration: cmd.name, exitCode: r.exitCode, signal: r.signal, timedOut: r.timedOut, logFile: r.logFile, outputBytes: r.totalBytes },
        );
      }
    }
    return results;
  }

  /** One shaping run (overrides → lqosd) with status reporting. */
  private async shape(sc: ResolvedConfig, mode: 'full' | 'incremental', why: string): Promise<ShapeResult> {
    this.setPhase('refreshing');
    this.shapeCount++;
    this.log.info(`shaping (${why})`);
    const snapshot = hashInputs(sc.config.lqos_directory);
    const r = await shapeOnce(sc, this.reporter, this.log, { mode, busyRetryMs: this.opts.busyRetryMs });
    // Transport problems: forget the snapshot so the same content is tried again.
    this.lastShaped = r.transient ? undefined : snapshot;
    if (r.ok) {
      this.log.info(`${r.message} (via ${r.via})`);
      void this.reporter.resolve(OVERRIDES_KEY);
      void this.reporter.resolve(SHAPING_KEY);
      return r;
    }
    this.log.error(r.message);
    if (r.output && !r.overridesError) this.log.error(`output:\n${r.output}`);
    this.phase = 'error';
    void this.reporter.heartbeat('error');
    await this.reporter.error({ message: r.message, output: r.output });
    if (r.overridesError) {
      await this.reporter.urgent('OVERRIDES_INVALID', r.overridesError.message, OVERRIDES_KEY, { file: r.overridesError.file, problems: r.overridesError.details });
    } else {
      void this.reporter.resolve(OVERRIDES_KEY);
      // lqosd raises its own issue for a failed bus refresh; a failed submit_plan is ours to report.
      // A refused mass removal is lqosd's MASS_REMOVAL_REFUSED either way.
      if (r.via === 'submit_plan' && r.exitCode !== EXIT.massRemoval) await this.reporter.urgent('SHAPING_FAILED', `${r.message}\n${r.output ?? ''}`.trim(), SHAPING_KEY);
    }
    return r;
  }

  /** Integrations + shaping. Never throws. */
  runCycle(kind: 'startup' | 'scheduled' | 'once'): Promise<CycleResult> {
    return this.exclusive(async () => {
      try {
        return await this.cycle(kind);
      } catch (e) {
        await this.unexpected(e, `${kind} cycle`);
        return { code: SCHEDULER_EXIT.shapingFailed, integrations: [] };
      }
    });
  }

  /** A bug or an environment problem (disk full, permissions): report it, keep running. */
  private async unexpected(e: unknown, what: string): Promise<void> {
    const message = `${what} failed unexpectedly: ${(e as Error)?.message ?? String(e)}`;
    this.log.error({ err: e }, message);
    void this.reporter.heartbeat('error');
    await this.reporter.error({ message });
    this.idle();
  }

  private async cycle(kind: 'startup' | 'scheduled' | 'once'): Promise<CycleResult> {
    const sc = this.loadConfig();
    if (sc instanceof ConfigError) {
      const message = `cannot use the configuration, cycle skipped: ${sc.message}`;
      this.log.error(message);
      void this.reporter.heartbeat('error');
      await this.reporter.error({ message });
      await this.reporter.urgent('SCHEDULER_CONFIG_INVALID', message, CONFIG_KEY);
      return { code: SCHEDULER_EXIT.shapingFailed, integrations: [] };
    }
    await this.ensureWatcher(sc);
    const integrations = await this.runIntegrations(sc);
    // Always `incremental`: the apply engine rebuilds by itself when the structure changed or the
    // kernel drifted, so a scheduler restart does not rebuild every queue.
    const shape = await this.shape(sc, 'incremental', kind === 'scheduled' ? 'scheduled cycle' : 'full setup');
    const integrationFailed = integrations.some((i) => !i.ok);
    const code = !shape.ok ? SCHEDULER_EXIT.shapingFailed : integrationFailed ? SCHEDULER_EXIT.integrationFailed : SCHEDULER_EXIT.ok;
    if (code === SCHEDULER_EXIT.ok) await this.reporter.success();
    else if (shape.ok) this.log.warn('cycle finished: shaped with the last good inputs, but an integration failed');
    this.idle();
    return { code, integrations, shape };
  }

  /** Watcher event: shape again if the inputs' content changed since the last run. */
  private onFilesChanged(files: string[]): void {
    if (this.stopped) return;
    if (this.busy) {
      this.recheck = true;
      return;
    }
    void this.exclusive(() => this.refreshIfChanged(`changed: ${files.join(', ')}`).catch((e: unknown) => this.unexpected(e, 'refresh after a file change'))).then(() => this.afterJob());
  }

  private async refreshIfChanged(why: string): Promise<void> {
    const sc = this.loadConfig(false);
    if (sc instanceof ConfigError) {
      this.log.error(`input files changed, but the configuration is unusable: ${sc.message}`);
      return;
    }
    if (sameHashes(this.lastShaped, hashInputs(sc.config.lqos_directory))) {
      this.log.debug(`input files touched, content unchanged (${why}); nothing to do`);
      return;
    }
    for (const w of sc.warnings) this.log.warn(w);
    const r = await this.shape(sc, 'incremental', why);
    if (r.ok && this.failedIntegrations.size === 0) await this.reporter.success();
    this.idle();
  }

  private async ensureWatcher(sc: ResolvedConfig): Promise<void> {
    if (!this.watching || this.stopped) return;
    const dir = sc.config.lqos_directory;
    if (this.watcher?.dir === dir) return;
    await this.watcher?.close();
    this.watcher = new InputWatcher({
      dir,
      debounceMs: this.opts.debounceMs,
      onChange: (files) => this.onFilesChanged(files),
      onError: (e) => this.log.warn(`file watcher: ${e.message}`),
    });
    await this.watcher.start();
    this.log.info(`watching network.json, ShapedDevices.csv and lqos_overrides.json in ${dir}`);
  }

  private watching = false;

  private idle(): void {
    if (this.stopped) return;
    this.setPhase('idle', this.nextRun);
    if (this.nextRun) this.log.debug(`idle until ${this.nextRun}`);
  }

  /** After a job: a change seen while busy is checked now. */
  private afterJob(): void {
    if (!this.recheck || this.stopped) return;
    this.recheck = false;
    void this.exclusive(() => this.refreshIfChanged('changed during the last job').catch((e: unknown) => this.unexpected(e, 'refresh after a file change'))).then(() => this.afterJob());
  }

  private schedule(): void {
    if (this.stopped) return;
    const ms = this.opts.intervalMs ?? (this.lastConfig ? intervalOf(this.lastConfig.config) : 30 * 60_000);
    const next = new Date(Date.now() + ms);
    this.nextRun = next.toISOString();
    this.setPhase('idle', this.nextRun);
    this.log.info(`idle until ${this.nextRun}`);
    this.cycleTimer = setTimeout(() => {
      void this.runCycle('scheduled').then(() => {
        this.afterJob();
        this.schedule();
      });
    }, ms);
  }

  /**
   * Long-running mode: wait for lqosd, full setup, then cycles + file watching until stop().
   * Rejects only with BusWaitTimeoutError (lqosd never came up).
   */
  async start(): Promise<CycleResult> {
    await this.waitForLqosd();
    this.heartbeatTimer = setInterval(() => void this.reporter.heartbeat(this.phase, this.nextRun), this.opts.heartbeatMs ?? HEARTBEAT_MS);
    this.heartbeatTimer.unref?.();
    this.watching = true;
    const first = await this.runCycle('startup');
    this.afterJob();
    this.schedule();
    return first;
  }

  /** `--once`: wait for lqosd, one cycle, exit code. */
  async once(): Promise<SchedulerExitCode> {
    const sc = this.loadConfig();
    if (sc instanceof ConfigError) {
      this.log.error(`cannot use the configuration: ${sc.message}`);
      return SCHEDULER_EXIT.shapingFailed;
    }
    try {
      await this.waitForLqosd();
    } catch (e) {
      if (e instanceof BusWaitTimeoutError) {
        this.log.error(e.message);
        return SCHEDULER_EXIT.lqosdUnreachable;
      }
      throw e;
    }
    const r = await this.runCycle('once');
    await this.reporter.heartbeat(r.code === SCHEDULER_EXIT.shapingFailed ? 'error' : 'idle');
    return r.code;
  }

  /** Stops timers and the watcher, kills a running integration, waits for the current job. */
  async stop(): Promise<void> {
    this.stopped = true;
    clearInterval(this.heartbeatTimer);
    clearTimeout(this.cycleTimer);
    await this.watcher?.close();
    for (const pid of this.runningPids) {
      try {
        process.kill(-pid, 'SIGTERM');
      } catch {
        /* gone */
      }
    }
    await this.chain;
    this.reporter.close();
  }
}
