/**
 * Single-instance lock: an exclusively created file holding the owner's PID. A lock whose PID
 * is no longer alive is stale and is taken over (with a note in the log).
 *
 * The kernel lock (`<run dir>/kernel.lock`, kernelLockPath) uses the same file: every path that
 * changes the kernel's shaping holds it while it does — lqosd's applies (refresh, submit_plan, the
 * start-up run and repair) and `LibreQoS --direct` / `--clearrules` — so two `tc -batch` runs never
 * interleave. A second applier waits for it (acquireLockWaiting), up to a bound.
 */
import { existsSync, linkSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import type { Log } from '../util/log.ts';

export class LockHeldError extends Error {
  constructor(
    readonly path: string,
    readonly pid: number,
  ) {
    super(`another run (PID ${pid}) holds ${path}; wait for it to finish, or if PID ${pid} is not a LibreQoS process, delete ${path}`);
  }
}

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
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

function holderOf(path: string): { pid: number; what: string } {
  try {
    const [first = '', what = ''] = readFileSync(path, 'utf8').split('\n');
    return { pid: Number.parseInt(first.trim(), 10), what: what.trim() };
  } catch {
    return { pid: Number.NaN, what: '' };
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
  writeFileSync(tmp, `${process.pid}\n${what ? `${what}\n` : ''}`, { mode: 0o644 });
  try {
    for (let attempt = 0; attempt < 3; attempt++) {
      try {
        linkSync(tmp, path);
        return { path, staleReplaced, release: () => releaseLock(path) };
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
        const pid = holderOf(path).pid;
        if (Number.isNaN(pid) && !existsSync(path)) continue; // released meanwhile
        if (Number.isInteger(pid) && pid > 0 && pid !== process.pid && pidAlive(pid)) throw new LockHeldError(path, pid);
        staleReplaced = Number.isInteger(pid) ? pid : -1;
        rmSync(path, { force: true });
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
