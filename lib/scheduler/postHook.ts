/**
 * What follows a successful integration run, before the shaping:
 * 1. its run summary (./summary.ts) goes to lqosd (`scheduler_summary`), or a log warning says why
 *    there is none;
 * 2. `<lqos_directory>/bin/post_integration_hook.sh` runs when it exists: as upstream, with the
 *    working directory `<lqos_directory>/bin` and no arguments; unlike upstream it is awaited, in its
 *    own process group, with a timeout (120 s, $LQOS_SCHEDULER_POST_HOOK_TIMEOUT_SECS), its output
 *    streamed to `/tmp/lqos_scheduler__post_integration_hook_<YYYYmmdd_HHMMSS>.log` (kept on failure,
 *    ./childRunner.ts). Environment: LQOS_DIRECTORY, LQOS_INTEGRATION (the integration that ran).
 *    - failure (exit ≠ 0, signal, timeout): scheduler_error with a preview and the log path, urgent
 *      issue POST_INTEGRATION_HOOK_FAILED (key `scheduler:post_integration_hook`); the shaping still
 *      runs with the integration's output; the next good hook run (or the hook's removal) resolves it;
 *    - present but not executable: not run, a warning naming `chmod +x` (urgent warning, same key).
 */
import { accessSync, constants, statSync } from 'node:fs';
import { MAX_TIMER_SECS } from '../config/schema.ts';
import { join } from 'node:path';
import type { Logger } from '../util/log.ts';
import { runChild, type ChildRunResult } from './childRunner.ts';
import type { IntegrationRunResult } from './integrationRunner.ts';
import type { StatusReporter } from './reporter.ts';
import { summaryText } from './summary.ts';

export const POST_HOOK_NAME = 'post_integration_hook';
export const POST_HOOK_KEY = 'scheduler:post_integration_hook';
export const POST_HOOK_TIMEOUT_ENV = 'LQOS_SCHEDULER_POST_HOOK_TIMEOUT_SECS';
export const DEFAULT_POST_HOOK_TIMEOUT_MS = 120_000;

export const postHookPath = (lqosDirectory: string) => join(lqosDirectory, 'bin', 'post_integration_hook.sh');

export function postHookTimeoutMs(): number {
  const s = Number(process.env[POST_HOOK_TIMEOUT_ENV]);
  // Capped at the longest a timer can wait (a longer one would fire at once).
  return Number.isFinite(s) && s > 0 ? Math.min(s, MAX_TIMER_SECS) * 1000 : DEFAULT_POST_HOOK_TIMEOUT_MS;
}

export interface AfterIntegrationContext {
  reporter: StatusReporter;
  log: Logger;
  lqosDirectory: string;
  logDir?: string;
  onSpawn?: (pid: number) => void;
  /** True once the scheduler is stopping: a hook killed by the stop is not a failure. */
  stopped?: () => boolean;
}

type HookState = { state: 'absent' } | { state: 'not-executable'; why: string } | { state: 'runnable' };

function hookState(file: string): HookState {
  let st;
  try {
    st = statSync(file);
  } catch {
    return { state: 'absent' };
  }
  if (!st.isFile()) return { state: 'not-executable', why: 'it is not a regular file' };
  try {
    accessSync(file, constants.X_OK);
    return { state: 'runnable' };
  } catch {
    return { state: 'not-executable', why: `it is not executable (mode ${(st.mode & 0o777).toString(8)})` };
  }
}

/** Sends the run summary of a successful integration, or logs why there is none. */
export async function reportRunSummary(r: IntegrationRunResult, ctx: AfterIntegrationContext): Promise<void> {
  if (r.runSummary) {
    ctx.log.info(`integration run summary: ${summaryText(r.runSummary)}`);
    await ctx.reporter.summary(r.runSummary);
  } else if (r.runSummaryWarning) ctx.log.warn(r.runSummaryWarning);
}

/** Runs post_integration_hook.sh if present (see the file comment). Returns the failed run (already reported), else undefined. */
export async function runPostHook(integration: string, ctx: AfterIntegrationContext): Promise<ChildRunResult | undefined> {
  const { reporter, log } = ctx;
  const file = postHookPath(ctx.lqosDirectory);
  const hs = hookState(file);
  if (hs.state === 'absent') {
    void reporter.resolve(POST_HOOK_KEY);
    return undefined;
  }
  if (hs.state === 'not-executable') {
    const message = `${file} was not run: ${hs.why}. Make it executable to have it run after each successful integration: chmod +x ${file}`;
    log.warn(message);
    await reporter.urgent('POST_INTEGRATION_HOOK_NOT_EXECUTABLE', message, POST_HOOK_KEY, { file }, 'warning');
    return undefined;
  }
  const timeoutMs = postHookTimeoutMs();
  reporter.cycle.step('integration', 'Running post_integration_hook.sh');
  log.info(`running ${file} (timeout ${Math.round(timeoutMs / 1000)} s)`);
  const r = await runChild(
    { name: POST_HOOK_NAME, file, args: [], cwd: join(ctx.lqosDirectory, 'bin'), env: { LQOS_DIRECTORY: ctx.lqosDirectory, LQOS_INTEGRATION: integration } },
    { timeoutMs, logDir: ctx.logDir, onSpawn: ctx.onSpawn, label: 'post_integration_hook.sh', consequence: `shaping goes on with the output of integration ${integration}` },
  );
  if (!r.ok && ctx.stopped?.()) {
    log.info('post_integration_hook.sh stopped: the scheduler is shutting down (not a failure)');
    return undefined;
  }
  if (r.ok) {
    log.info(r.summary);
    void reporter.resolve(POST_HOOK_KEY);
    return undefined;
  }
  log.error({ hook: file, logFile: r.logFile, exitCode: r.exitCode, timedOut: r.timedOut }, r.summary);
  if (r.preview) log.error(`output preview of post_integration_hook.sh:\n${r.preview}`);
  await reporter.error({ message: r.summary, integration: POST_HOOK_NAME, output: r.preview || undefined, logFile: r.logFile });
  await reporter.urgent('POST_INTEGRATION_HOOK_FAILED', r.preview ? `${r.summary}\nOutput preview:\n${r.preview}` : r.summary, POST_HOOK_KEY, {
    file,
    exitCode: r.exitCode,
    signal: r.signal,
    timedOut: r.timedOut,
    logFile: r.logFile,
    outputBytes: r.totalBytes,
  });
  return r;
}
