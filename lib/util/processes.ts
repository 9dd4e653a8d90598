/** Whether a process (by PID) still runs, and telling it apart from a later one that reuses the PID. */
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
  try {
    process.kill(pid, 0);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'EPERM') return false;
  }
  if (!started) return true;
  const now = startTimeOf(pid);
  return now === undefined || now === started;
}
