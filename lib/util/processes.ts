/**
 * Whether a process (by PID) still runs, telling it apart from a later one that reuses the PID, and
 * signalling a child's process group without ever reaching our own group or every process.
 */
import { readFileSync } from 'node:fs';

/** The process's start time (clock ticks since boot, /proc/<pid>/stat field 22), if readable. */
export function startTimeOf(pid: number): string | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The command name (field 2) may hold spaces and parentheses: count fields after the last ')'.
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19];
  } catch {
    return undefined;
  }
}

/**
 * The process exists (EPERM: it does, under another user) and, when `started` is given (what
 * startTimeOf said when it was recorded), it is the same process, not a later one with its PID.
 */
export function pidAlive(pid: number, started?: string): boolean {
  // kill(0, 0) and kill(-N, 0) ask about process groups; PID 1 is a process (lqosd in a container).
  if (!Number.isSafeInteger(pid) || pid < 1) return false;
  try {
    process.kill(pid, 0);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'EPERM') return false;
  }
  if (!started) return true;
  const now = startTimeOf(pid);
  return now === undefined || now === started;
}

/**
 * A PID that names one child process to signal. kill(2) gives 0 and negative values other meanings
 * (0: the caller's own process group; -1: every process it may signal; -N: group N), and 1 is init
 * (its group, -1, is every process); a PID read from a file that was still being written
 * (`Number('')` is 0) must never reach it as one of those.
 */
export function isProcessPid(pid: unknown): pid is number {
  return Number.isSafeInteger(pid) && (pid as number) > 1;
}

/** The PID on the first line of a PID file's text, or undefined while it is empty or not a PID. */
export function parsePid(text: string): number | undefined {
  const first = text.split('\n', 1)[0]!.trim();
  const pid = /^\d+$/.test(first) ? Number(first) : NaN;
  return isProcessPid(pid) ? pid : undefined;
}

/**
 * Sends `signal` to the process group `pid` leads (a child spawned `detached`), or to the process
 * alone when it leads none. False when neither exists any more, and for a value that is not one
 * process's PID (see isProcessPid): that is never signalled, as it would reach the caller's own
 * group or every process. With `started` (startTimeOf when the child was spawned), a later process
 * that reuses the PID is left alone (a group outlives its leader, and no process can take the PID
 * while the group exists).
 */
export function signalGroup(pid: number, signal: NodeJS.Signals, started?: string): boolean {
  if (!isProcessPid(pid)) return false;
  if (started !== undefined) {
    const now = startTimeOf(pid);
    if (now !== undefined && now !== started) return false;
  }
  try {
    process.kill(-pid, signal);
    return true;
  } catch {
    try {
      process.kill(pid, signal);
      return true;
    } catch {
      return false;
    }
  }
}
