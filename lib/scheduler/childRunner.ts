/**
 * Runs one command for the scheduler (an integration, post_integration_hook.sh) as a child process
 * with a timeout, so a hung CRM, a stuck hook or a crash cannot stall or kill the scheduler. Its
 * stdout+stderr (interleaved as they arrive) are
 * - streamed in full to `<logDir>/lqos_scheduler__<name>_<YYYYmmdd_HHMMSS>.log` (logDir:
 *   $LQOS_SCHEDULER_LOG_DIR, else /tmp) — kept when the run fails, deleted when it succeeds. A kept
 *   log always says what happened: after a timeout, a signal or a failed start (and after a silent
 *   non-zero exit) the scheduler adds a last line `[lqos_scheduler] …`, so it is never empty;
 * - kept in memory up to MAX_CAPTURE_BYTES (the rest is only counted) for the preview (ANSI colour
 *   codes and control characters removed; the log file keeps the bytes as written).
 * The child runs in its own process group; on timeout the whole group gets SIGTERM, then SIGKILL.
 * It also gets a parent pipe (fd 3, named in LQOS_PARENT_FD): when the scheduler dies, even by
 * kill -9, the pipe reaches end-of-file and the integration entry point (bin/integration.ts) ends
 * its group (lib/util/parentWatch.ts), so no integration outlives the scheduler.
 */
import { execa } from 'execa';
import { appendFileSync, createWriteStream, existsSync, rmSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { PARENT_FD_ENV } from '../util/parentWatch.ts';
import { signalGroup } from '../util/processes.ts';
import { makePreview } from './status.ts';

export const MAX_CAPTURE_BYTES = 4 * 1024 * 1024;
export const KILL_GRACE_MS = 2000;

export interface ChildCommand {
  /** Short name (log file name, messages). */
  name: string;
  file: string;
  args: string[];
  env?: Record<string, string>;
  cwd?: string;
}

export interface ChildRunResult {
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
  /** First 30 lines / 4,000 characters of the output, ANSI/control sequences removed. */
  preview: string;
  /** One line for logs and the scheduler status. */
  summary: string;
}

export interface RunChildOptions {
  timeoutMs: number;
  logDir?: string;
  /** Called with the child's pid once it is running (the scheduler kills the group on shutdown). */
  onSpawn?: (pid: number) => void;
  /** How the messages name the command (default `integration <name>`). */
  label?: string;
  /** Appended to failure messages (default: the last good inputs stay in force). */
  consequence?: string;
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

interface Outcome {
  exitCode?: number;
  signal?: string;
  timedOut: boolean;
  spawnError?: string;
}

/** Spawns the child in its own group, feeds its output to `onData`, enforces the timeout. */
async function spawnAndWait(cmd: ChildCommand, opts: RunChildOptions, onData: (b: Buffer) => void): Promise<Outcome> {
  const o: Outcome = { timedOut: false };
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
      o.timedOut = true;
      signalGroup(pid, 'SIGTERM');
      killTimer = setTimeout(() => signalGroup(pid, 'SIGKILL'), KILL_GRACE_MS);
    }, opts.timeoutMs);
  }
  child.stdout?.on('data', onData);
  child.stderr?.on('data', onData);
  try {
    const r = await child;
    o.exitCode = r.exitCode;
    o.signal = r.signal;
    if (r.failed && r.exitCode === undefined && !r.signal && !o.timedOut) o.spawnError = r.shortMessage ?? r.message;
  } catch (e) {
    o.spawnError = (e as Error).message;
  } finally {
    clearTimeout(timer);
    clearTimeout(killTimer);
    // Grandchildren that kept the pipes open must not outlive a timed-out run.
    if (pid !== undefined && o.timedOut) signalGroup(pid, 'SIGKILL');
  }
  return o;
}

function describe(cmd: ChildCommand, opts: RunChildOptions, o: Outcome, durationMs: number, total: number): { ok: boolean; summary: string; trailer?: string } {
  const label = opts.label ?? `integration ${cmd.name}`;
  const then = opts.consequence ?? 'the last good inputs stay in force';
  const secs = Math.round(opts.timeoutMs / 1000);
  const bytes = total === 0 ? 'no output' : `${total} bytes of output`;
  if (!o.timedOut && !o.spawnError && o.exitCode === 0) return { ok: true, summary: `${label} completed in ${(durationMs / 1000).toFixed(1)} s (${total} bytes of output)` };
  if (o.timedOut) {
    return {
      ok: false,
      summary: `${label} did not finish within ${secs} s and was stopped; ${then}`,
      trailer: `killed after the ${secs} s timeout (SIGTERM to its process group, SIGKILL ${KILL_GRACE_MS / 1000} s later), ${bytes}`,
    };
  }
  if (o.spawnError) return { ok: false, summary: `${label} could not be started: ${o.spawnError}` };
  if (o.signal) return { ok: false, summary: `${label} was killed by ${o.signal}; ${then}`, trailer: `killed by ${o.signal} after ${(durationMs / 1000).toFixed(1)} s, ${bytes}` };
  return { ok: false, summary: `${label} exited with code ${o.exitCode}; ${then}`, ...(total === 0 ? { trailer: `exited with code ${o.exitCode} after ${(durationMs / 1000).toFixed(1)} s, no output` } : {}) };
}

export async function runChild(cmd: ChildCommand, opts: RunChildOptions): Promise<ChildRunResult> {
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

  const o = await spawnAndWait(cmd, opts, onData);
  if (o.spawnError) onData(Buffer.from(`[lqos_scheduler] could not start ${cmd.file}: ${o.spawnError}\n`));
  file.end();
  await fileDone;
  const durationMs = Date.now() - t0;
  const { ok, summary, trailer } = describe(cmd, opts, o, durationMs, total);
  if (ok) rmSync(logFile, { force: true });
  // The log must say how the run ended when the output does not (timeout, signal, silent failure).
  else if (trailer) appendFileSync(logFile, `${total > 0 ? '\n' : ''}[lqos_scheduler] ${trailer}\n`);

  const output = Buffer.concat(chunks).toString('utf8');
  return {
    name: cmd.name,
    ok,
    ...(o.exitCode !== undefined ? { exitCode: o.exitCode } : {}),
    ...(o.signal ? { signal: o.signal } : {}),
    timedOut: o.timedOut,
    ...(o.spawnError ? { spawnError: o.spawnError } : {}),
    durationMs,
    output,
    totalBytes: total,
    droppedBytes: total - kept,
    ...(ok ? {} : { logFile }),
    preview: makePreview(output),
    summary: ok ? summary : `${summary}; full output (${total} bytes) in ${logFile}`,
  };
}
