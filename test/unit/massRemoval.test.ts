// test-gate: shared (CPU only; see test/support/gate.ts)
/**
 * The mass-removal guard's decision (lib/shaping/massRemoval.ts): the share of circuits in force
 * that a plan leaves out against [safety] max_removed_percent, force and an admin's approval; the
 * run log kept small for the bus (lib/shaping/runLog.ts); the kernel lock's wait (lib/shaping/lock.ts).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { spawn } from 'node:child_process';
import { massRemovalVerdict, refusalMessage, sampleText, SAMPLE_SIZE } from '../../lib/shaping/massRemoval.ts';
import { capRecords, MAX_REPLY_RECORDS, RunLog } from '../../lib/shaping/runLog.ts';
import { acquireLock, acquireLockWaiting, LockHeldError, LockWaitTimeoutError } from '../../lib/shaping/lock.ts';
import { testDir } from '../support/workspace.ts';

const circuits = (n: number) => Array.from({ length: n }, (_, i) => ({ id: `c${i}`, name: `Customer ${i}` }));
const ids = (n: number, from = 0) => Array.from({ length: n - from }, (_, i) => `c${i + from}`);

test('nothing in force: no guard, whatever the new plan holds', () => {
  const v = massRemovalVerdict([], [], { maxRemovedPercent: 20 });
  assert.deepEqual([v.refuse, v.removed, v.total, v.percent], [false, 0, 0, 0]);
});

test('an empty plan against 100 circuits in force is refused; 20 of 100 is at the limit and passes, 21 does not', () => {
  const inForce = circuits(100);
  const empty = massRemovalVerdict(inForce, [], { maxRemovedPercent: 20 });
  assert.equal(empty.refuse, true);
  assert.equal(empty.removed, 100);
  assert.equal(empty.sample.length, SAMPLE_SIZE);
  assert.deepEqual(empty.sample[0], { id: 'c0', name: 'Customer 0' });
  assert.equal(massRemovalVerdict(inForce, ids(100, 20), { maxRemovedPercent: 20 }).refuse, false);
  const over = massRemovalVerdict(inForce, ids(100, 21), { maxRemovedPercent: 20 });
  assert.deepEqual([over.refuse, over.removed, over.total], [true, 21, 100]);
  // New circuits do not offset removed ones.
  assert.equal(massRemovalVerdict(inForce, [...ids(100, 50), ...Array.from({ length: 500 }, (_, i) => `new${i}`)], { maxRemovedPercent: 20 }).refuse, true);
});

test('max_removed_percent = 100 never refuses; 0 refuses any removal', () => {
  assert.equal(massRemovalVerdict(circuits(10), [], { maxRemovedPercent: 100 }).refuse, false);
  assert.equal(massRemovalVerdict(circuits(10), ids(10, 1), { maxRemovedPercent: 0 }).refuse, true);
  assert.equal(massRemovalVerdict(circuits(10), ids(10), { maxRemovedPercent: 0 }).refuse, false);
});

test('force lets it through (and says so); an approval covers exactly the circuits it names', () => {
  const inForce = circuits(10);
  const forced = massRemovalVerdict(inForce, [], { maxRemovedPercent: 20, force: true });
  assert.deepEqual([forced.refuse, forced.allowedBy], [false, 'force']);
  const approved = new Set(ids(10, 5));
  const within = massRemovalVerdict(inForce, ids(5), { maxRemovedPercent: 20, approved });
  assert.deepEqual([within.refuse, within.allowedBy], [false, 'approval']);
  const beyond = massRemovalVerdict(inForce, ids(4), { maxRemovedPercent: 20, approved });
  assert.equal(beyond.refuse, true, 'c4 was not approved');
  const under = massRemovalVerdict(inForce, ids(10, 1), { maxRemovedPercent: 20, force: true });
  assert.equal(under.allowedBy, undefined, 'within the limit nothing needs forcing');
});

test('the refusal names how many, which, the limit and every way to force it', () => {
  const v = massRemovalVerdict(circuits(40), [], { maxRemovedPercent: 20 });
  const msg = refusalMessage(v);
  assert.match(msg, /remove 40 of the 40 shaped circuits \(100\.0 %, more than \[safety\] max_removed_percent = 20\)/);
  assert.match(msg, /c0 \(Customer 0\), c1 \(Customer 1\)/);
  assert.match(msg, /and 30 more/);
  assert.match(msg, /LibreQoS --force/);
  assert.match(msg, /web UI/);
  assert.match(msg, /scheduler_allow_mass_removal = true/);
  assert.equal(sampleText({ sample: [{ id: 'x' }], removed: 1 }), 'x');
});

test('a run log keeps no debug lines and at most MAX_REPLY_RECORDS records, first and last kept, with a note naming the log file', () => {
  const log = new RunLog();
  for (let i = 0; i < 100_000; i++) log.debug(`tc class add ${i}`);
  log.info('planned 50000 circuits');
  for (let i = 0; i < 5000; i++) log.warn(`warning ${i}`);
  log.error('the last line');
  assert.equal(log.debugLines, 100_000);
  assert.equal(log.records.length, 5002);
  const files = { log: '/state/debug/lqosd_run.log', tc: '/state/debug/linux_tc.txt', mappings: '/state/debug/ip_mappings.txt' };
  const capped = capRecords(log.records, files);
  assert.equal(capped.records.length, MAX_REPLY_RECORDS + 1);
  assert.equal(capped.records[0]!.msg, 'planned 50000 circuits');
  assert.equal(capped.records.at(-1)!.msg, 'the last line');
  const note = capped.records.find((r) => r.code === 'records-omitted')!;
  assert.match(note.msg, /^4602 more line\(s\) of this run \(4602 warning\(s\), 0 error\(s\)\) are not in this reply; the full log is in \/state\/debug\/lqosd_run\.log$/);
  assert.equal(capped.omitted, 4602);
  assert.deepEqual(capRecords(log.records.slice(0, 10), files).records, log.records.slice(0, 10));
});

test('the kernel lock: a waiter gets it once the holder releases; a held lock times out naming the holder PID; a dead holder is replaced', async (t) => {
  const dir = testDir(t);
  const path = join(dir, 'kernel.lock');
  // A live other process holds it.
  const holder = spawn('sleep', ['30']);
  t.after(() => holder.kill('SIGKILL'));
  writeFileSync(path, `${holder.pid}\nlqosd: refresh\n`);
  assert.throws(() => acquireLock(path), (e: LockHeldError) => e.pid === holder.pid);
  await assert.rejects(acquireLockWaiting(path, { what: 'test', waitMs: 300, pollMs: 50 }), (e: Error) => {
    assert.ok(e instanceof LockWaitTimeoutError);
    assert.match(e.message, new RegExp(`held by PID ${holder.pid} \\(lqosd: refresh\\); waited 0 s`));
    return true;
  });
  // Released while we wait: we get it.
  const waiting = acquireLockWaiting(path, { what: 'LibreQoS --direct', waitMs: 10_000, pollMs: 20 });
  setTimeout(() => rmSync(path), 150); // the holder releases it
  const lock = await waiting;
  assert.deepEqual(readFileSync(path, 'utf8').split('\n').slice(0, 2), [String(process.pid), 'LibreQoS --direct']);
  lock.release();
  assert.equal(existsSync(path), false);
  // A lock left by a process that died is taken over and reported.
  // (4194305 is above the kernel's largest pid_max, so no process can have it.)
  writeFileSync(path, '4194305\nlqosd: plan apply\n');
  const taken = acquireLock(path);
  assert.equal(taken.staleReplaced, 4194305);
  taken.release();

  // PID reuse: the recorded start time is not that of the live process with the PID → stale.
  writeFileSync(path, `${holder.pid}\nlqosd: refresh\nstarted:1\n`);
  const reused = acquireLock(path, 'LibreQoS --direct');
  assert.equal(reused.staleReplaced, holder.pid, 'a live process that only reuses the PID is not the holder');
  assert.match(readFileSync(path, 'utf8'), /^\d+\nLibreQoS --direct\nstarted:\d+\n$/);
  reused.release();
  // ... and the holder's own start time is recognised as the live holder.
  const own = readFileSync(`/proc/${holder.pid}/stat`, 'utf8');
  const started = own.slice(own.lastIndexOf(')') + 2).split(' ')[19];
  writeFileSync(path, `${holder.pid}\nlqosd: refresh\nstarted:${started}\n`);
  assert.throws(() => acquireLock(path), (e: LockHeldError) => e.pid === holder.pid);
  rmSync(path);
});

test('the kernel lock: two waiters that both saw a dead holder cannot both take it over', (t) => {
  const dir = testDir(t);
  const path = join(dir, 'kernel.lock');
  writeFileSync(path, '4194305\nlqosd: plan apply\n');
  // Another waiter is in the middle of its takeover (holds the guard): we wait instead of taking it too.
  writeFileSync(`${path}.takeover`, '');
  assert.throws(() => acquireLock(path, 'LibreQoS --direct'), (e: LockHeldError) => e instanceof LockHeldError && e.pid === 4194305);
  assert.equal(readFileSync(path, 'utf8'), '4194305\nlqosd: plan apply\n', 'the lock was left to the other waiter');
  // That waiter finished: it removed the guard and holds the lock with its own (live) PID.
  rmSync(`${path}.takeover`);
  writeFileSync(path, `${process.ppid}\nlqosd: refresh\n`);
  assert.throws(() => acquireLock(path, 'LibreQoS --direct'), (e: LockHeldError) => e.pid === process.ppid);
  // A guard left by a killed process (older than 10 s) is cleared, and the dead lock taken over.
  writeFileSync(path, '4194305\nlqosd: plan apply\n');
  writeFileSync(`${path}.takeover`, '');
  utimesSync(`${path}.takeover`, new Date(Date.now() - 60_000), new Date(Date.now() - 60_000));
  assert.throws(() => acquireLock(path), LockHeldError, 'the first attempt only clears the old guard');
  const lock = acquireLock(path);
  assert.equal(lock.staleReplaced, 4194305);
  assert.equal(existsSync(`${path}.takeover`), false);
  lock.release();
});
