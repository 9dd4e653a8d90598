/**
 * Single-instance lock: an exclusively created file holding the owner's PID. A lock whose PID
 * is no longer alive is stale and is taken over (with a note in the log).
 */
import { mkdirSync, openSync, readFileSync, rmSync, writeSync, closeSync } from 'node:fs';
import { dirname } from 'node:path';

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

export function acquireLock(path: string): Lock {
  mkdirSync(dirname(path), { recursive: true, mode: 0o755 });
  let staleReplaced: number | undefined;
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      const fd = openSync(path, 'wx', 0o644);
      writeSync(fd, `${process.pid}\n`);
      closeSync(fd);
      return {
        path,
        staleReplaced,
        release: () => {
          try {
            if (readFileSync(path, 'utf8').trim() === String(process.pid)) rmSync(path);
          } catch {
            /* already gone */
          }
        },
      };
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
      const pid = Number.parseInt(readFileSync(path, 'utf8').trim(), 10);
      if (Number.isInteger(pid) && pid > 0 && pid !== process.pid && pidAlive(pid)) throw new LockHeldError(path, pid);
      staleReplaced = Number.isInteger(pid) ? pid : -1;
      rmSync(path, { force: true });
    }
  }
  throw new Error(`could not create lock file ${path}`);
}
