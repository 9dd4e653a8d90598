/**
 * The mass-removal guard's decision (lib/shaping/massRemoval.ts): the share of circuits in force
 * that a plan leaves out against [safety] max_removed_percent, force and an admin's approval; the
 * run log kept small for the bus (lib/shaping/runLog.ts); the kernel lock's wait (lib/shaping/lock.ts).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
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
  writeFileSync(path, '999999\nlqosd: plan apply\n');
  const taken = acquireLock(path);
  assert.equal(taken.staleReplaced, 999999);
  taken.release();
});
