// test-gate: shared (CPU only; see test/support/gate.ts)
/**
 * lib/util/processes.ts: PID files read while being written, and signalling a child's process group
 * without ever reaching our own group (kill 0) or every process (kill -1). CI of 4ebe148 was ended by
 * exit 143 when a test read an integration's PID file between the shell's create and its write
 * (Number('') = 0) and sent SIGTERM to process group -0: its own, the CI job's.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { isProcessPid, parsePid, pidAlive, signalGroup, startTimeOf } from '../../lib/util/processes.ts';
import { waitFor } from '../support/wait.ts';

test('parsePid: the first line of a PID file, never 0, 1, a negative number or a half-written file', () => {
  assert.equal(parsePid('4242\n'), 4242);
  assert.equal(parsePid(' 4242 \nlqosd: refresh\n'), 4242, 'a lock file: PID then what holds it');
  for (const text of ['', '\n', '0', '0\n', '1', '-1', '-4242', '12abc', 'abc', '4.5', '1e3', '99999999999999999999']) {
    assert.equal(parsePid(text), undefined, JSON.stringify(text));
  }
  assert.equal(isProcessPid(2), true);
  for (const v of [0, -0, 1, -1, -5, 2.5, Number.NaN, Infinity, '42', undefined]) assert.equal(isProcessPid(v), false, String(v));
});

test('signalGroup never signals 0, -0, 1, -1 or NaN; pidAlive says no for what is not a process (0, negatives, NaN)', () => {
  // Were any of these passed to kill(2), this test's own process group (0) or every process (-1)
  // would get SIGCONT at worst; the guard means none is sent at all (false, nothing thrown).
  for (const v of [0, -0, 1, -1, Number.NaN]) assert.equal(signalGroup(v, 'SIGCONT'), false, String(v));
  for (const v of [0, -0, -1, Number.NaN]) assert.equal(pidAlive(v), false, String(v));
  assert.equal(pidAlive(1), true, 'PID 1 is a process (init, or lqosd in a container): a lock it holds is not stale');
  assert.equal(pidAlive(process.pid), true);
});

test('signalGroup ends a detached child and its grandchild (the whole group), not a process with another start time; false once they are gone', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'lqos-processes-'));
  try {
    const grandchildPid = join(dir, 'grandchild.pid');
    const child = spawn('sh', ['-c', `sleep 60 & echo $! > "${grandchildPid}"; wait`], { detached: true, stdio: 'ignore' });
    const exited = new Promise<NodeJS.Signals | null>((r) => child.once('exit', (_code, signal) => r(signal)));
    const pid = child.pid!;
    const readGrandchild = (): number | undefined => {
      try {
        return parsePid(readFileSync(grandchildPid, 'utf8'));
      } catch {
        return undefined;
      }
    };
    await waitFor(() => readGrandchild() !== undefined, 5000, 'the grandchild PID');
    const grandchild = readGrandchild()!;
    assert.ok(pidAlive(grandchild));
    const started = startTimeOf(pid);
    assert.ok(started);
    assert.equal(signalGroup(pid, 'SIGTERM', `${started}1`), false, 'another start time: a later process with the PID, left alone');
    assert.ok(pidAlive(pid) && pidAlive(grandchild));
    assert.equal(signalGroup(pid, 'SIGTERM', started), true);
    assert.equal(await exited, 'SIGTERM');
    await waitFor(() => !pidAlive(grandchild), 5000, 'the grandchild to end with its group');
    assert.equal(signalGroup(pid, 'SIGTERM'), false, 'nothing left to signal');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
