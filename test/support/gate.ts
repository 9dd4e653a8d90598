/**
 * The suite's file gate, preloaded by scripts/run-tests into every test file's process (node:test
 * runs two files at a time). A file that says `// test-gate: shared` (no network namespaces, BPF,
 * tc or measured rates: it only needs CPU, or drives a browser against an in-process web server on
 * port 0, whose waits are for page state with seconds of margin) takes a shared lock and may run
 * beside another such file; every other file takes the lock exclusively and runs alone, so a lab
 * never shares the machine with another test file. Without $LQOS_TEST_GATE (node --test run by hand) it does nothing.
 *
 * The lock is flock(1) on $LQOS_TEST_GATE, held by a child `flock … cat` until this process ends:
 * its stdin is a pipe from this process, so the lock goes when the process does, however it ends.
 */
import { spawn } from 'node:child_process';
import { appendFileSync, readFileSync } from 'node:fs';

/** The marker line of a file that may run beside another marked file. */
export const SHARED_MARKER = /^\/\/ test-gate: shared\b/m;

const gate = process.env.LQOS_TEST_GATE;
const file = process.argv[1];
if (gate && file && /\.test\.[cm]?[jt]s$/.test(file)) {
  const shared = SHARED_MARKER.test(readFileSync(file, 'utf8'));
  const asked = performance.now();
  const holder = spawn('flock', [shared ? '--shared' : '--exclusive', gate, '-c', 'echo held; exec cat >/dev/null'], { stdio: ['pipe', 'pipe', 'inherit'] });
  await new Promise<void>((resolve, reject) => {
    holder.once('error', reject);
    holder.once('exit', (code) => reject(new Error(`test gate: flock ${gate} exited (${code}) before the lock was held`)));
    holder.stdout.once('data', () => resolve());
  });
  holder.removeAllListeners('exit');
  // Held until this process exits; nothing here keeps the event loop alive.
  holder.unref();
  holder.stdout.destroy();
  (holder.stdin as unknown as { unref(): void }).unref();
  // The file's wall time once it holds the gate (set-up and hooks included), for scripts/run-tests'
  // list of the slowest files: one line per file, written as the process ends.
  const held = performance.now();
  const times = process.env.LQOS_TEST_TIMES;
  delete process.env.LQOS_TEST_TIMES; // not for the suites a test file runs itself
  if (times) {
    process.once('exit', () => {
      const line = `${((performance.now() - held) / 1000).toFixed(1)}\t${((held - asked) / 1000).toFixed(1)}\t${shared ? 'shared' : 'alone'}\t${file}\n`;
      try {
        appendFileSync(times, line);
      } catch {
        // The list is a developer's aid; a file that cannot write it still passes or fails on its own.
      }
    });
  }
}
