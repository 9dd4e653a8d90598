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
 *
 * Recovery without waiting for the next cycle:
 * - lqos.conf is watched too (./configWatch.ts): started with a broken file, the start-up cycle runs
 *   as soon as a save fixes it; broken while running, it is reported (status + urgent issue) and the
 *   last good configuration stays in use until the fix.
 * - A shaping run that did not reach the kernel for a reason other than the inputs (lqosd down, busy,
 *   timed out, a failed apply) is retried with backoff (./retry.ts) until the plan lqosd applied
 *   matches the files again; the phase is `pending: …` meanwhile, never `idle`.
 * - Issues an earlier process or a no-longer-enabled integration left are resolved (./staleIssues.ts).
 * - A stop (SIGTERM/SIGINT) ends a running integration's group without reporting a failure and
 *   starts nothing new.
 */
import { DEFAULT_BUS_WAIT_MS } from './busWait.ts';
import { existsSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import type { ResolvedConfig } from '../config/resolve.ts';
import type { LqosConfig } from '../config/schema.ts';
import { secretValues } from '../config/secrets.ts';
import { waitForBus, defaultBusPath } from '../bus/client.ts';
import { enabledIntegrations } from '../integrations/registry.ts';
import type { Logger } from '../util/log.ts';
import { REPO_ROOT } from '../util/paths.ts';
import { runIntegration, type IntegrationCommand, type IntegrationRunResult } from './integrationRunner.ts';
import { StatusReporter } from './reporter.ts';
import { EXIT } from '../shaping/exitCodes.ts';
import { ConfigTracker, CONFIG_KEY, type ConfigRead } from './configWatch.ts';
import { retryReason, RetryTimer } from './retry.ts';
import { shapeOnce, type ShapeResult } from './shape.ts';
import { cycleOutcome, shapeStepHook } from './progress.ts';
import { POST_HOOK_NAME, reportRunSummary, runPostHook } from './postHook.ts';
import { resolveStaleIntegrationIssues, urgentKeyFor } from './staleIssues.ts';
import { hashInputs, InputWatcher, sameHashes } from './watcher.ts';
import { signalGroup } from '../util/processes.ts';

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

export { DEFAULT_BUS_WAIT_MS };
export const HEARTBEAT_MS = 60_000;
/** How often the scheduler checks that lqos_directory is still the directory it watches. */
export const DIR_CHECK_MS = 2_000;

/** A directory's identity (device and inode), undefined when it does not exist. */
function dirIdentity(dir: string): string | undefined {
  const st = statSync(dir, { throwIfNoEntry: false });
  return st?.isDirectory() ? `${st.dev}:${st.ino}` : undefined;
}
/** Env hook (tests, diagnostics): JSON list of `{name, file, args?}` run instead of the enabled integrations. */
export const TEST_INTEGRATIONS_ENV = 'LQOS_SCHEDULER_TEST_INTEGRATIONS';

export { CONFIG_KEY, urgentKeyFor };
export const OVERRIDES_KEY = 'scheduler:overrides';
export const SHAPING_KEY = 'scheduler:shaping';
/** Until the scheduler knows queue_refresh_interval_mins (lqos.conf unusable since the start). */
export const DEFAULT_INTERVAL_MS = 30 * 60_000;
/** How long a signal-ended integration waits for the scheduler's own stop before it counts as a failure. */
export const STOP_GRACE_MS = 2000;

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
  /** Backoff of the shaping retry (default 2 s doubling to 60 s; ./retry.ts). */
  retryMinMs?: number;
  retryMaxMs?: number;
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
  private readonly config: ConfigTracker;
  private readonly retry: RetryTimer;
  private phase = 'starting';
  /** The next scheduled cycle (sent with every heartbeat, so a file-triggered run keeps it). */
  private nextRun?: string;
  /** When the last startup or scheduled cycle began (the next one is an interval after it). */
  private lastCycleStart?: number;
  private heartbeatTimer?: NodeJS.Timeout;
  /** Checks that the watched lqos_directory is still the one watched (ensureWatcher). */
  private dirCheckTimer?: NodeJS.Timeout;
  /** dev:inode of the watched lqos_directory when the watch began; undefined: it did not exist. */
  private watchedIdentity?: string;
  private cycleTimer?: NodeJS.Timeout;
  /** The interval the cycle timer was armed with. */
  private armedMs?: number;
  private watcher?: InputWatcher;
  private configWatcher?: InputWatcher;
  private chain: Promise<unknown> = Promise.resolve();
  private busy = false;
  private recheck = false;
  private configRecheck = false;
  private stopped = false;
  /** Long-running mode (start()): watchers, retries, a final heartbeat. */
  private longRunning = false;
  /** The start-up cycle still has to run (lqos.conf was unusable): the next good save runs it. */
  private needsStartup = false;
  /** Content hashes of the inputs last applied by lqosd. */
  private applied?: Record<string, string>;
  /** Content hashes of inputs refused as invalid (not retried until they change). */
  private rejected?: Record<string, string>;
  private runningPids = new Set<number>();
  /** Integrations whose last run failed (their urgent issue is open). */
  private failedIntegrations = new Set<string>();
  private shapeCount = 0;

  constructor(private readonly opts: SchedulerOptions) {
    this.log = opts.log;
    this.reporter = new StatusReporter(opts.log, opts.busPath);
    this.config = new ConfigTracker(this.reporter, opts.log, opts.configPath);
    this.retry = new RetryTimer(opts.retryMinMs, opts.retryMaxMs);
  }

  /** Number of shaping runs started (tests). */
  get shapes(): number {
    return this.shapeCount;
  }

  private setPhase(phase: string): void {
    this.phase = phase;
    void this.reporter.heartbeat(phase, this.nextRun);
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
    this.reporter.cycle.begin('startup');
    this.reporter.cycle.step('waiting_for_lqosd', 'lqosd is up');
  }

  /** Serialises jobs (cycles, watcher refreshes, retries, lqos.conf changes). */
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

  private commandsFor(sc: ResolvedConfig, log?: Logger): IntegrationCommand[] {
    return this.opts.integrations ? this.opts.integrations(sc) : integrationCommands(sc, log);
  }

  /**
   * An integration that ended by a signal while the scheduler is stopping was stopped by us (or by
   * systemd's stop of the whole cgroup, which can reach the child first): not a failure.
   */
  private async stoppedDuring(r: IntegrationRunResult): Promise<boolean> {
    const bySignal = !r.timedOut && (r.signal !== undefined || r.exitCode === 143 || r.exitCode === 130);
    for (let waited = 0; bySignal && !this.stopped && waited < STOP_GRACE_MS; waited += 50) await new Promise((res) => setTimeout(res, 50));
    return this.stopped;
  }

  private async runIntegrations(sc: ResolvedConfig): Promise<IntegrationRunResult[]> {
    const cmds = this.commandsFor(sc, this.log);
    if (cmds.length === 0) {
      this.log.info('no integration enabled; shaping the files in lqos_directory as they are');
      return [];
    }
    const timeoutMs = this.opts.integrationTimeoutMs ?? sc.config.queues.integration_timeout_secs * 1000;
    const results: IntegrationRunResult[] = [];
    for (const cmd of cmds) {
      if (this.stopped) break;
      this.setPhase(`running integration ${cmd.name}`);
      this.reporter.cycle.step('integration', `Running integration ${cmd.name}`);
      this.log.info(`running integration ${cmd.name} (timeout ${Math.round(timeoutMs / 1000)} s)`);
      const r = await runIntegration(cmd, {
        timeoutMs,
        logDir: this.opts.logDir,
        onSpawn: (pid) => this.runningPids.add(pid),
        secrets: this.reporter.secrets,
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
      if (!r.ok && (await this.stoppedDuring(r))) {
        // Not a failure: its log goes, as a successful run's does (a kept log means a failed run).
        if (r.logFile) rmSync(r.logFile, { force: true });
        this.log.info(`integration ${cmd.name} stopped: the scheduler is shutting down (not a failure; the last good inputs stay)`);
        break;
      }
      results.push(r);
      if (r.ok) {
        this.log.info(r.summary);
        this.failedIntegrations.delete(cmd.name);
        void this.reporter.resolve(urgentKeyFor(cmd.name));
        // Run summary to lqosd, then <lqos_directory>/bin/post_integration_hook.sh (./postHook.ts).
        const after = { reporter: this.reporter, log: this.log, lqosDirectory: sc.config.lqos_directory, logDir: this.opts.logDir, onSpawn: (pid: number) => this.runningPids.add(pid), stopped: () => this.stopped };
        await reportRunSummary(r, after);
        const hook = this.stopped ? undefined : await runPostHook(cmd.name, after);
        this.runningPids.clear();
        if (hook) results.push(hook);
        if (hook) this.failedIntegrations.add(POST_HOOK_NAME);
        else this.failedIntegrations.delete(POST_HOOK_NAME);
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

  /** One shaping run (overrides → lqosd) with status reporting; arms the retry when it can help. */
  private async shape(sc: ResolvedConfig, mode: 'full' | 'incremental', why: string): Promise<ShapeResult> {
    this.setPhase('refreshing');
    this.shapeCount++;
    this.log.info(`shaping (${why})`);
    const snapshot = hashInputs(sc.config.lqos_directory);
    const r = await shapeOnce(sc, this.reporter, this.log, { mode, busyRetryMs: this.opts.busyRetryMs, onStep: shapeStepHook(this.reporter.cycle) });
    if (r.ok) {
      this.applied = snapshot;
      this.rejected = undefined;
      this.retry.done();
      this.log.info(`${r.message} (via ${r.via})`);
      void this.reporter.resolve(OVERRIDES_KEY);
      void this.reporter.resolve(SHAPING_KEY);
      return r;
    }
    const again = this.longRunning && !this.stopped ? retryReason(r) : undefined;
    if (again && r.transient) {
      // lqosd did not take the run at all: not an error of the inputs, the status says pending.
      this.scheduleRetry(again, r.message);
      return r;
    }
    if (again) this.scheduleRetry(again, r.message);
    else {
      this.rejected = snapshot;
      this.retry.done();
    }
    this.log.error(r.message);
    if (r.output && !r.overridesError) this.log.error(`output:\n${r.output}`);
    this.phase = 'error';
    void this.reporter.heartbeat('error', this.nextRun);
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

  private scheduleRetry(reason: string, message: string): void {
    const ms = this.retry.schedule(reason, () => this.requestRefresh(`retry (${reason})`));
    this.log.warn(`${message}; the kernel keeps the previous plan, trying again in ${Math.round(ms / 1000)} s`);
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
    void this.reporter.heartbeat('error', this.nextRun);
    await this.reporter.error({ message });
    this.idle();
  }

  private async cycle(kind: 'startup' | 'scheduled' | 'once'): Promise<CycleResult> {
    if (this.stopped) return { code: SCHEDULER_EXIT.ok, integrations: [] };
    const read = await this.config.read();
    if (!read.ok) return this.brokenConfigCycle(kind, read);
    const sc = read.sc;
    this.needsStartup = false;
    // Secrets from lqos.conf and from the environment (LQOS_REST_TOKEN and the like in the unit's Environment=).
    this.reporter.secrets = secretValues(sc.config, process.env);
    this.reporter.cycle.begin(kind === 'scheduled' ? 'refresh' : 'startup');
    await this.ensureWatcher(sc);
    await this.reconcileIntegrations(sc);
    const integrations = await this.runIntegrations(sc);
    // Stopping: no shaping run is started during the shutdown.
    if (this.stopped) return { code: SCHEDULER_EXIT.ok, integrations };
    // Always `incremental`: the apply engine rebuilds by itself when the structure changed or the
    // kernel drifted, so a scheduler restart does not rebuild every queue.
    const shape = await this.shape(sc, 'incremental', kind === 'scheduled' ? 'scheduled cycle' : 'full setup');
    const integrationFailed = integrations.some((i) => !i.ok);
    const code = !shape.ok ? SCHEDULER_EXIT.shapingFailed : integrationFailed ? SCHEDULER_EXIT.integrationFailed : SCHEDULER_EXIT.ok;
    this.reporter.cycle.finish(cycleOutcome(shape, integrationFailed));
    if (code === SCHEDULER_EXIT.ok) await this.reporter.success();
    else if (shape.ok) this.log.warn('cycle finished: shaped with the last good inputs, but an integration failed');
    this.idle();
    return { code, integrations, shape };
  }

  /**
   * lqos.conf is unusable (reported by the tracker). Never had a good one: the start-up cycle waits
   * for the fix (the file is watched). Had one: integrations wait (they read lqos.conf themselves),
   * changed inputs are still shaped with the last good configuration.
   */
  private async brokenConfigCycle(kind: 'startup' | 'scheduled' | 'once', read: Extract<ConfigRead, { ok: false }>): Promise<CycleResult> {
    if (!read.last) {
      if (this.longRunning) this.needsStartup = true;
      this.idle();
      return { code: SCHEDULER_EXIT.shapingFailed, integrations: [] };
    }
    this.log.warn(`${kind} cycle: integrations skipped while ${this.config.path} is unusable`);
    await this.refreshWith(read.last, `${kind} cycle, last good configuration`);
    this.idle();
    return { code: SCHEDULER_EXIT.shapingFailed, integrations: [] };
  }

  /** Asks for a refresh-if-changed now, or right after the running job. */
  private requestRefresh(why: string): void {
    if (this.stopped) return;
    if (this.busy) {
      this.recheck = true;
      return;
    }
    void this.exclusive(() => this.refreshIfChanged(why).catch((e: unknown) => this.unexpected(e, 'refresh after a file change'))).then(() => this.afterJob());
  }

  /** Watcher event: shape again if the inputs' content changed since the last run. */
  private onFilesChanged(files: string[]): void {
    this.requestRefresh(`changed: ${files.join(', ')}`);
  }

  private async refreshIfChanged(why: string): Promise<void> {
    if (this.stopped) return;
    const read = await this.config.read(false);
    const sc = read.ok ? read.sc : read.last;
    if (!sc) return;
    const r = await this.refreshWith(sc, why, read.ok);
    if (typeof r === 'object') this.idle();
  }

  /**
   * Shapes the inputs unless lqosd already applied this content (or refused it as invalid).
   * 'applied': nothing to do, the kernel runs these inputs.
   */
  private async refreshWith(sc: ResolvedConfig, why: string, logWarnings = false): Promise<ShapeResult | 'applied' | 'unchanged'> {
    await this.ensureWatcher(sc);
    const now = hashInputs(sc.config.lqos_directory);
    if (sameHashes(this.applied, now)) {
      if (this.retry.pending) {
        this.retry.done();
        this.idle();
      }
      this.log.debug(`inputs as applied (${why}); nothing to do`);
      return 'applied';
    }
    if (sameHashes(this.rejected, now)) {
      this.log.debug(`inputs unchanged since they were refused (${why}); waiting for a change`);
      return 'unchanged';
    }
    if (logWarnings) for (const w of sc.warnings) this.log.warn(w);
    this.reporter.cycle.begin('files');
    const r = await this.shape(sc, 'incremental', why);
    this.reporter.cycle.finish(cycleOutcome(r, false));
    if (r.ok) await this.successIfClean();
    return r;
  }

  /** `scheduler_success` unless something the operator must see is still wrong. */
  private async successIfClean(): Promise<void> {
    if (this.failedIntegrations.size === 0 && !this.config.broken && !this.retry.pending) await this.reporter.success();
  }

  /**
   * Integrations that are not the one that runs now (disabled or replaced): their issues are resolved
   * and their failures no longer count. True when a failure was dropped.
   */
  private async reconcileIntegrations(sc: ResolvedConfig): Promise<boolean> {
    const names = this.commandsFor(sc).map((c) => c.name);
    await resolveStaleIntegrationIssues(this.reporter, this.log, names);
    const before = this.failedIntegrations.size;
    for (const n of [...this.failedIntegrations]) if (!names.includes(n) && n !== POST_HOOK_NAME) this.failedIntegrations.delete(n);
    return this.failedIntegrations.size < before;
  }

  /** SIGHUP (`systemctl reload lqos_scheduler`, `kill -HUP`): re-read lqos.conf now, as on a save. */
  reloadConfig(): void {
    if (!this.longRunning) return;
    this.log.info(`re-reading ${this.config.path} (SIGHUP)`);
    this.onConfigChanged();
  }

  /** lqos.conf was saved: start up if that waited for it, else take the new settings. */
  private onConfigChanged(): void {
    if (this.stopped) return;
    if (this.busy) {
      this.configRecheck = true;
      return;
    }
    void this.exclusive(() => this.configChanged().catch((e: unknown) => this.unexpected(e, 're-reading lqos.conf'))).then(() => this.afterJob());
  }

  private async configChanged(): Promise<void> {
    if (this.stopped) return;
    if (this.needsStartup) {
      this.log.info(`${this.config.path} changed; trying the start-up cycle`);
      await this.cycle('startup');
      if (!this.needsStartup) this.schedule();
      return;
    }
    const read = await this.config.read();
    if (!read.ok) return this.idle();
    const dropped = await this.reconcileIntegrations(read.sc);
    if (this.armedMs !== undefined && this.intervalMs() !== this.armedMs) this.schedule();
    const r = await this.refreshWith(read.sc, 'lqos.conf changed');
    if (r === 'applied' && (read.recovered || dropped)) await this.successIfClean();
    this.idle();
  }

  /**
   * Watches lqos_directory's inputs. The watch follows the directory itself, so it is made again when
   * the directory appears after start or is replaced (`mv src src.old; mkdir src`): checked every
   * DIR_CHECK_MS, and then a refresh-if-changed shapes what the new directory holds.
   */
  private async ensureWatcher(sc: ResolvedConfig): Promise<void> {
    if (!this.longRunning || this.stopped) return;
    const dir = sc.config.lqos_directory;
    const identity = dirIdentity(dir);
    if (this.watcher?.dir === dir && this.watchedIdentity === identity) return;
    await this.watcher?.close();
    this.watchedIdentity = identity;
    this.watcher = new InputWatcher({
      dir,
      debounceMs: this.opts.debounceMs,
      onChange: (files) => this.onFilesChanged(files),
      onError: (e) => this.log.warn(`file watcher: ${e.message}`),
    });
    await this.watcher.start();
    if (this.stopped) return void (await this.watcher.close());
    if (identity === undefined) this.log.warn(`lqos_directory ${dir} does not exist: changes to the inputs are watched once it does`);
    else this.log.info(`watching network.json, ShapedDevices.csv and lqos_overrides.json in ${dir}`);
    if (!this.dirCheckTimer) {
      this.dirCheckTimer = setInterval(() => void this.checkWatchedDir(sc), DIR_CHECK_MS);
      this.dirCheckTimer.unref?.();
    }
  }

  /** The watched lqos_directory appeared, went or was replaced: watch it again (and shape what it holds). */
  private async checkWatchedDir(sc: ResolvedConfig): Promise<void> {
    const w = this.watcher;
    if (!w || this.stopped || dirIdentity(w.dir) === this.watchedIdentity) return;
    const last = this.config.last ?? sc;
    this.watcher = undefined;
    await w.close();
    await this.ensureWatcher(last);
    // Files already there are shaped now (if they differ from the last run); files still to come are
    // seen by the new watch as they are added.
    if (this.watchedIdentity !== undefined && existsSync(join(w.dir, 'ShapedDevices.csv'))) this.requestRefresh(`lqos_directory ${w.dir} appeared or was replaced`);
  }

  private async startConfigWatcher(): Promise<void> {
    if (this.stopped) return;
    this.configWatcher = this.config.watcher(
      () => this.onConfigChanged(),
      (e) => this.log.warn(`lqos.conf watcher: ${e.message}`),
      this.opts.debounceMs,
    );
    await this.configWatcher.start();
    if (this.stopped) return void (await this.configWatcher.close());
    this.config.watched = true;
    this.log.info(`watching ${this.config.path}`);
  }

  /** The status phase between jobs: pending (a retry is owed), error (lqos.conf unusable) or idle. */
  private idle(): void {
    if (this.stopped) return;
    if (this.retry.pending) this.setPhase(this.retry.phase());
    else this.setPhase(this.config.broken ? 'error' : 'idle');
    if (this.nextRun) this.log.debug(`${this.phase} until ${this.nextRun}`);
  }

  /** After a job: an lqos.conf save or an input change seen while busy is handled now. */
  private afterJob(): void {
    if (this.stopped) return;
    if (this.configRecheck) {
      this.configRecheck = false;
      this.onConfigChanged();
      return;
    }
    if (!this.recheck) return;
    this.recheck = false;
    this.requestRefresh('changed during the last job');
  }

  /** queue_refresh_interval_mins of the last good lqos.conf (30 min while none is known). */
  private intervalMs(): number {
    return this.opts.intervalMs ?? (this.config.last ? intervalOf(this.config.last.config) : DEFAULT_INTERVAL_MS);
  }

  /**
   * (Re-)arms the cycle timer: queue_refresh_interval_mins after the start of the last cycle (as
   * upstream: a cycle every interval, however long each took), at once when that has passed.
   */
  private schedule(): void {
    if (this.stopped) return;
    clearTimeout(this.cycleTimer);
    const ms = this.intervalMs();
    this.armedMs = ms;
    const now = Date.now();
    const at = Math.max(now, (this.lastCycleStart ?? now) + ms);
    this.nextRun = new Date(at).toISOString();
    this.idle();
    this.log.info(at === now && this.lastCycleStart !== undefined ? `next cycle now: the last one started ${Math.round((now - this.lastCycleStart) / 1000)} s ago, longer than queue_refresh_interval_mins` : `next cycle at ${this.nextRun}`);
    this.cycleTimer = setTimeout(() => {
      this.lastCycleStart = Date.now();
      void this.runCycle('scheduled').then(() => {
        this.afterJob();
        this.schedule();
      });
    }, at - now);
  }

  /**
   * Long-running mode: wait for lqosd, full setup, then cycles + file watching (inputs and lqos.conf)
   * until stop(). Rejects only with BusWaitTimeoutError (lqosd never came up).
   */
  async start(): Promise<CycleResult> {
    await this.waitForLqosd();
    this.heartbeatTimer = setInterval(() => void this.reporter.heartbeat(this.phase, this.nextRun), this.opts.heartbeatMs ?? HEARTBEAT_MS);
    this.heartbeatTimer.unref?.();
    this.longRunning = true;
    await this.startConfigWatcher();
    this.lastCycleStart = Date.now();
    const first = await this.runCycle('startup');
    this.afterJob();
    this.schedule();
    return first;
  }

  /** `--once`: wait for lqosd, one cycle, exit code. */
  async once(): Promise<SchedulerExitCode> {
    const read = await this.config.read(false);
    if (!read.ok) return SCHEDULER_EXIT.shapingFailed;
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

  /**
   * A clean stop (SIGTERM/SIGINT): timers and watchers off, a running integration's process group
   * ended (not reported as a failure), no new job; waits for the current job, then a last heartbeat
   * (phase `stopped`) when lqosd is there.
   */
  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    clearInterval(this.heartbeatTimer);
    clearInterval(this.dirCheckTimer);
    clearTimeout(this.cycleTimer);
    this.retry.cancel();
    await this.configWatcher?.close();
    await this.watcher?.close();
    for (const pid of this.runningPids) signalGroup(pid, 'SIGTERM');
    await this.chain;
    if (this.longRunning) await this.reporter.heartbeat('stopped', undefined);
    this.reporter.close();
  }
}
