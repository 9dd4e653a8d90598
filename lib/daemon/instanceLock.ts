/**
 * lqosd runs once per run directory: `<runDir>/lqosd.lock` holds the owner's PID. Daemons started
 * in this same process (tests) are tracked here too, since a lock holding our own PID counts as
 * stale.
 */
import { resolve } from 'node:path';
import { acquireLock, LockHeldError } from '../shaping/lock.ts';
import type { Log } from '../util/log.ts';

const heldInThisProcess = new Set<string>();

export class DaemonAlreadyRunningError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'DaemonAlreadyRunningError';
  }
}

export function lockDaemon(runDir: string, log: Log): { release(): void } {
  const file = resolve(runDir, 'lqosd.lock');
  const running = (pid: number) => new DaemonAlreadyRunningError(`lqosd already running (PID ${pid} holds ${file}); stop it first (systemctl stop lqosd)`);
  if (heldInThisProcess.has(file)) throw running(process.pid);
  let lock;
  try {
    lock = acquireLock(file);
  } catch (e) {
    if (e instanceof LockHeldError) throw running(e.pid);
    throw e;
  }
  if (lock.staleReplaced !== undefined) log.warn(`replaced a stale lqosd lock left by PID ${lock.staleReplaced}`);
  heldInThisProcess.add(file);
  return {
    release: () => {
      lock.release();
      heldInThisProcess.delete(file);
    },
  };
}
