/**
 * Single-instance lock: an exclusively created file holding the owner's PID. A lock whose PID
 * is no longer alive is stale and is taken over (with a note in the log).
 *
 * The kernel lock (`<run dir>/kernel.lock`, kernelLockPath) uses the same file: every path that
 * changes the kernel's shaping holds it while it does — lqosd's applies (refresh, submit_plan, the
 * start-up run and repair) and `LibreQoS --direct` / `--clearrules` — so two `tc -batch` runs never
 * interleave. A second applier waits for it (acquireLockWaiting), up to a bound.
 */
import { closeSync, existsSync, linkSync, mkdirSync, openSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import type { Log } from '../util/log.ts';
import { pidAlive, startTimeOf } from '../util/processes.ts';

export class LockHeldError extends Error {
  constructor(
    readonly path: string,
    readonly pid: number,
  ) {
    super(`another run (PID ${pid}) holds ${path}; wait for it to finish, or if PID ${pid} is not a LibreQoS process, delete ${path}`);
  }
}

export interface Lock {
  path: string;
  /** Set when a stale lock of a dead process was replaced. */
  staleReplaced?: number;
  release(): void;
}

/** `<runDir>/kernel.lock`: held around every change of the kernel's shaping. */
export function kernelLockPath(runDir: string): string {
  return join(runDir, 'kernel.lock');
}

/** How long an applier waits for the kernel lock by default. */
export const KERNEL_LOCK_WAIT_MS = 60_000;

/** The lock stayed held by another live process for the whole wait. */
export class LockWaitTimeoutError extends LockHeldError {
  constructor(
    path: string,
    pid: number,
    readonly waitedMs: number,
    readonly holder: string,
  ) {
    super(path, pid);
    this.message =
      `the kernel lock ${path} is held by PID ${pid}${holder ? ` (${holder})` : ''}; waited ${Math.round(waitedMs / 1000)} s for it — ` +
      `another apply is still running: wait for it and run again; if PID ${pid} is not lqosd or LibreQoS, delete ${path}`;
  }
}

/** The lock file's holder: PID, what it does, and its start time (`started:<ticks>`, when written). */
function holderOf(path: string): { pid: number; what: string; started?: string } {
  try {
    const lines = readFileSync(path, 'utf8').split('\n');
    const started = lines.find((l) => l.startsWith('started:'))?.slice('started:'.length).trim();
    const what = lines[1]?.startsWith('started:') ? '' : (lines[1] ?? '').trim();
    return { pid: Number.parseInt((lines[0] ?? '').trim(), 10), what, ...(started ? { started } : {}) };
  } catch {
    return { pid: Number.NaN, what: '' };
  }
}

/** How old a takeover guard may get before it counts as left behind by a killed process. */
const TAKEOVER_GUARD_STALE_MS = 10_000;

/**
 * Removes the lock file when it still names the dead holder `pid`, under `<lock>.takeover` (created
 * exclusively), so two waiters that both saw the dead holder cannot both take over: the second one
 * finds the first one's live lock and waits. False when another process is taking over right now.
 */
function removeStaleLock(path: string, pid: number): boolean {
  const guard = `${path}.takeover`;
  let fd: number;
  try {
    fd = openSync(guard, 'wx', 0o644);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
    try {
      if (Date.now() - statSync(guard).mtimeMs > TAKEOVER_GUARD_STALE_MS) rmSync(guard, { force: true });
    } catch {
      /* gone meanwhile */
    }
    return false;
  }
  try {
    const now = holderOf(path);
    if (now.pid === pid || (Number.isNaN(now.pid) && Number.isNaN(pid))) rmSync(path, { force: true });
    return true;
  } finally {
    closeSync(fd);
    rmSync(guard, { force: true });
  }
}

/**
 * acquireLock, waiting while another live process holds it: polls every `pollMs` for up to
 * `waitMs`, logs once whom it waits for, and then throws LockWaitTimeoutError naming the holder.
 * `what` (e.g. "lqosd: refresh") is written under the PID for whoever waits next.
 */
export async function acquireLockWaiting(path: string, opts: { what: string; log?: Log; waitMs?: number; pollMs?: number }): Promise<Lock> {
  const waitMs = opts.waitMs ?? KERNEL_LOCK_WAIT_MS;
  const t0 = Date.now();
  let told = false;
  for (;;) {
    try {
      const lock = acquireLock(path, opts.what);
      if (lock.staleReplaced !== undefined) opts.log?.warn(`replaced a stale lock ${path} left by PID ${lock.staleReplaced} (it ended without releasing it)`);
      if (told) opts.log?.info(`${path} is free; going ahead after waiting ${((Date.now() - t0) / 1000).toFixed(1)} s`);
      return lock;
    } catch (e) {
      if (!(e instanceof LockHeldError)) throw e;
      const h = holderOf(path);
      if (Date.now() - t0 >= waitMs) throw new LockWaitTimeoutError(path, e.pid, Date.now() - t0, h.what);
      if (!told) {
        opts.log?.info({ holder: e.pid }, `waiting for PID ${e.pid}${h.what ? ` (${h.what})` : ''} to release ${path} (up to ${Math.round(waitMs / 1000)} s)`);
        told = true;
      }
      await new Promise((r) => setTimeout(r, opts.pollMs ?? 100));
    }
  }
}

export function acquireLock(path: string, what?: string): Lock {
  mkdirSync(dirname(path), { recursive: true, mode: 0o755 });
  let staleReplaced: number | undefined;
  // The content is written to a temp file first and linked into place, so nobody ever reads a
  // lock file without its PID (and takes it for stale).
  const tmp = `${path}.${process.pid}.${Math.random().toString(36).slice(2)}.tmp`;
  // Locks that say what they do (the kernel lock) also record the start time, so a later process
  // that reuses the PID is not taken for the holder; plain PID files (the run and instance locks) stay as they are.
  const started = what ? startTimeOf(process.pid) : undefined;
  writeFileSync(tmp, `${process.pid}\n${what ? `${what}\n` : ''}${started ? `started:${started}\n` : ''}`, { mode: 0o644 });
  try {
    for (let attempt = 0; attempt < 3; attempt++) {
      try {
        linkSync(tmp, path);
        return { path, staleReplaced, release: () => releaseLock(path) };
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
        const holder = holderOf(path);
        const pid = holder.pid;
        if (Number.isNaN(pid) && !existsSync(path)) continue; // released meanwhile
        if (Number.isInteger(pid) && pid > 0 && pid !== process.pid && pidAlive(pid, holder.started)) throw new LockHeldError(path, pid);
        // Another waiter is taking the stale lock over right now: it is as good as held.
        if (!removeStaleLock(path, pid)) throw new LockHeldError(path, pid);
        staleReplaced = Number.isInteger(pid) ? pid : -1;
      }
    }
  } finally {
    rmSync(tmp, { force: true });
  }
  throw new Error(`could not create lock file ${path}`);
}

/** Removes the lock if this process holds it. */
function releaseLock(path: string): void {
  try {
    if (holderOf(path).pid === process.pid) rmSync(path);
  } catch {
    /* already gone */
  }
}
