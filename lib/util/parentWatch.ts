/**
 * Parent-death watchdog for child processes (the scheduler's integration runs). The parent hands
 * the child one end of a pipe as an extra file descriptor and names it in PARENT_FD_ENV; the child
 * never reads data from it, it only waits for end-of-file. The kernel closes the parent's end when
 * the parent exits for any reason — kill -9 included — so the child learns at once that nobody is
 * waiting for it and stops instead of running on as an orphan.
 */
import { Socket } from 'node:net';

/** Environment variable naming the child's file descriptor of the parent pipe. */
export const PARENT_FD_ENV = 'LQOS_PARENT_FD';

/**
 * Starts watching when `env[PARENT_FD_ENV]` names a descriptor; `onGone` runs once, when the parent
 * end closes. Does not keep the process alive. Returns false when there is nothing to watch.
 */
export function watchParent(onGone: () => void, env: NodeJS.ProcessEnv = process.env): boolean {
  const fd = Number(env[PARENT_FD_ENV]);
  if (!Number.isSafeInteger(fd) || fd < 3) return false;
  let sock: Socket;
  try {
    sock = new Socket({ fd, readable: true, writable: false });
  } catch {
    return false; // not an open pipe: nothing to watch
  }
  let fired = false;
  const gone = () => {
    if (fired) return;
    fired = true;
    onGone();
  };
  sock.on('end', gone);
  sock.on('close', gone);
  sock.on('error', gone);
  sock.resume();
  sock.unref();
  return true;
}

/**
 * What a child does when its parent is gone: end its whole process group at once (it is the
 * group's leader when started detached), else itself. Synchronous file writes in progress have
 * already finished (this runs from the event loop), and writes are temp + rename, so nothing half
 * written is left.
 */
export function exitWithParent(): void {
  try {
    process.kill(-process.pid, 'SIGKILL');
  } catch {
    // not a group leader
  }
  process.exit(1);
}
