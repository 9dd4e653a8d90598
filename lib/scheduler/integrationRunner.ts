/**
 * Runs one integration as a child process with a timeout, so a hung CRM or a crash cannot stall or
 * kill the scheduler. The child's stdout+stderr (interleaved as they arrive) are
 * - streamed in full to `<logDir>/lqos_scheduler__<name>_<YYYYmmdd_HHMMSS>.log` (logDir: $LQOS_SCHEDULER_LOG_DIR,
 *   else /tmp) — kept when the run fails, deleted when it succeeds;
 * - kept in memory up to MAX_CAPTURE_BYTES (the rest is only counted) for the preview.
 * The child runs in its own process group; on timeout the whole group gets SIGTERM, then SIGKILL.
 * It also gets a parent pipe (fd 3, named in LQOS_PARENT_FD): when the scheduler dies, even by
 * kill -9, the pipe reaches end-of-file and the integration entry point (bin/integration.ts) ends
 * its group (lib/util/parentWatch.ts), so no integration outlives the scheduler.
 */
import { execa } from 'execa';
import { createWriteStream, existsSync, rmSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { PARENT_FD_ENV } from '../util/parentWatch.ts';
import { makePreview } from './status.ts';

export const MAX_CAPTURE_BYTES = 4 * 1024 * 1024;
export const KILL_GRACE_MS = 2000;

export interface IntegrationCommand {
  /** Integration name (file names, messages, dedupe key). */
  name: string;
  file: string;
  args: string[];
  env?: Record<string, string>;
  cwd?: string;
}

export interface IntegrationRunResult {
  name: string;
  ok: boolean;
  exitCode?: number;
  signal?: string;
  timedOut: boolean;
  /** Could not be started at all (message). */
  spawnError?: string;
  durationMs: number;
  /** The first MAX_CAPTURE_BYTES of the output. */
  output: string;
  totalBytes: number;
  /** Bytes not kept in memory (still in the log file). */
  droppedBytes: number;
  /** Full output; only set when the run failed (deleted on success). */
  logFile?: string;
  /** First 30 lines / 4,000 characters of the output. */
  preview: string;
  /** One line for logs and the scheduler status. */
  summary: string;
}

export function schedulerLogDir(): string {
  return process.env.LQOS_SCHEDULER_LOG_DIR || '/tmp';
}

const pad = (n: number) => String(n).padStart(2, '0');
/** Local time `YYYYmmdd_HHMMSS`. */
export function timestamp(d = new Date()): string {
  return `${d.getFullYear()}${pad(d.getMonth() + 1)}${pad(d.getDate())}_${pad(d.getHours())}${pad(d.getMinutes())}${pad(d.getSeconds())}`;
}

function safeName(name: string): string {
  return name.replace(/[^A-Za-z0-9_-]/g, '_') || 'integration';
}

function logFileFor(dir: string, name: string, now: Date): string {
  const base = `lqos_scheduler__${safeName(name)}_${timestamp(now)}`;
  let f = join(dir, `${base}.log`);
  for (let i = 2; existsSync(f); i++) f = join(dir, `${base}_${i}.log`);
  return f;
}

export interface RunIntegrationOptions {
  timeoutMs: number;
  logDir?: string;
  /** Called with the child's pid once it is running (the scheduler kills the group on shutdown). */
  onSpawn?: (pid: number) => void;
}

function killGroup(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pid, signal);
  } catch {
    try {
      process.kill(pid, signal);
    } catch {
      /* already gone */
    }
  }
}

export async function runIntegration(cmd: IntegrationCommand, opts: RunIntegrationOptions): Promise<IntegrationRunResult> {
  const t0 = Date.now();
  const dir = opts.logDir ?? schedulerLogDir();
  await mkdir(dir, { recursive: true });
  const logFile = logFileFor(dir, cmd.name, new Date());
  const file = createWriteStream(logFile, { flags: 'wx', mode: 0o600 });
  const fileDone = new Promise<void>((resolve) => {
    file.on('close', () => resolve());
    file.on('error', () => resolve());
  });

  const chunks: Buffer[] = [];
  let kept = 0;
  let total = 0;
  const onData = (b: Buffer) => {
    total += b.length;
    file.write(b);
    if (kept < MAX_CAPTURE_BYTES) {
      const part = b.length + kept > MAX_CAPTURE_BYTES ? b.subarray(0, MAX_CAPTURE_BYTES - kept) : b;
      chunks.push(part);
      kept += part.length;
    }
  };

  let timedOut = false;
  let spawnError: string | undefined;
  let exitCode: number | undefined;
  let signal: string | undefined;
  const child = execa(cmd.file, cmd.args, {
    reject: false,
    buffer: false,
    // fd 3: the parent pipe. Never written; it closes when this process exits, however it exits.
    stdio: ['ignore', 'pipe', 'pipe', 'pipe'],
    detached: true,
    cwd: cmd.cwd,
    env: { ...cmd.env, [PARENT_FD_ENV]: '3' },
    // We enforce the timeout ourselves (the whole process group).
    cleanup: true,
  });
  const pid = child.pid;
  let timer: NodeJS.Timeout | undefined;
  let killTimer: NodeJS.Timeout | undefined;
  if (pid !== undefined) {
    opts.onSpawn?.(pid);
    timer = setTimeout(() => {
      timedOut = true;
      killGroup(pid, 'SIGTERM');
      killTimer = setTimeout(() => killGroup(pid, 'SIGKILL'), KILL_GRACE_MS);
    }, opts.timeoutMs);
  }
  child.stdout?.on('data', onData);
  child.stderr?.on('data', onData);
  try {
    const r = await child;
    exitCode = r.exitCode;
    signal = r.signal;
    if (r.failed && r.exitCode === undefined && !r.signal && !timedOut) spawnError = r.shortMessage ?? r.message;
  } catch (e) {
    spawnError = (e as Error).message;
  } finally {
    clearTimeout(timer);
    clearTimeout(killTimer);
    // Grandchildren that kept the pipes open must not outlive a timed-out run.
    if (pid !== undefined && timedOut) killGroup(pid, 'SIGKILL');
  }
  if (spawnError) onData(Buffer.from(`scheduler: could not run ${cmd.file}: ${spawnError}\n`));
  file.end();
  await fileDone;

  const output = Buffer.concat(chunks).toString('utf8');
  const ok = !timedOut && !spawnError && exitCode === 0;
  const durationMs = Date.now() - t0;
  let summary: string;
  if (ok) summary = `integration ${cmd.name} completed in ${(durationMs / 1000).toFixed(1)} s (${total} bytes of output)`;
  else if (timedOut) summary = `integration ${cmd.name} did not finish within ${Math.round(opts.timeoutMs / 1000)} s and was stopped; the last good inputs stay in force`;
  else if (spawnError) summary = `integration ${cmd.name} could not be started: ${spawnError}`;
  else if (signal) summary = `integration ${cmd.name} was killed by ${signal}; the last good inputs stay in force`;
  else summary = `integration ${cmd.name} exited with code ${exitCode}; the last good inputs stay in force`;

  if (ok) rmSync(logFile, { force: true });
  const preview = makePreview(output);
  return {
    name: cmd.name,
    ok,
    ...(exitCode !== undefined ? { exitCode } : {}),
    ...(signal ? { signal } : {}),
    timedOut,
    ...(spawnError ? { spawnError } : {}),
    durationMs,
    output,
    totalBytes: total,
    droppedBytes: total - kept,
    ...(ok ? {} : { logFile }),
    preview,
    summary: ok ? summary : `${summary}; full output (${total} bytes) in ${logFile}`,
  };
}
