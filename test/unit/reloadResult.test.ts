// test-gate: shared (CPU only; see test/support/gate.ts)
/** The Reload button's answer (lib/web/reloadResult.ts): one line per kind of outcome, problems with file and line. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { ShapingOutcome } from '../../lib/shaping/service.ts';
import { reloadResult } from '../../lib/web/reloadResult.ts';

const base: ShapingOutcome = { ok: true, exitCode: 0, mode: 'incremental', commands: 7, seconds: 0.4213, leafFallbacks: { cake: 'tbf' }, records: [] };
const summary = { circuitsAdded: 2, circuitsRemoved: 1, circuitsChanged: 1, nodesChanged: 0, mappingsDeleted: 1, mappingsWritten: 3 };

test('applied: what changed, how, how many commands and how long; no log records in the answer', () => {
  const r = reloadResult({ ...base, summary, records: [{ level: 'info', msg: 'x' }] as never });
  assert.equal(r.message, 'Applied: 2 circuits added, 1 removed, 1 changed (updated in place, 7 commands, 0.42 s).');
  assert.deepEqual(r.changes, { circuitsAdded: 2, circuitsRemoved: 1, circuitsChanged: 1, nodesChanged: 0 });
  assert.deepEqual(r.leafFallbacks, { cake: 'tbf' });
  assert.equal('records' in r, false);
  assert.equal(reloadResult({ ...base, mode: 'none', commands: 0, summary: { ...summary, circuitsAdded: 0 } }).message, 'Applied: nothing changed (checked, 0 commands, 0.42 s).');
  assert.match(reloadResult({ ...base, mode: 'full', summary: { ...summary, circuitsAdded: 1, nodesChanged: 2 } }).message, /^Applied: 1 circuit added, 1 removed, 1 changed, 2 nodes changed \(rebuilt, 7 commands/);
});

test('skipped rows and refused inputs name the file, line and field; the shaping in force is said to stay', () => {
  const skipped = reloadResult({ ...base, summary, skipped: [{ file: 'ShapedDevices.csv', line: 3, circuitId: 'c2', code: 'bad-rate', column: 'Download Max Mbps', reason: 'not a number', kept: 'last-good' }] });
  assert.match(skipped.message, /\. 1 row skipped \(listed below\)\.$/);
  assert.deepEqual(skipped.problems, [{ file: 'ShapedDevices.csv', line: 3, field: 'Download Max Mbps', message: 'not a number (circuit kept at its last good shaping)' }]);
  const invalid = reloadResult({
    ...base, ok: false, exitCode: 1, mode: 'none', commands: 0,
    invalid: [{ severity: 'error', code: 'json', file: 'network.json', line: 4, message: 'unexpected token' }],
    lastGood: { at: '2026-12-05T10:00:00Z', applied: false },
  });
  assert.equal(invalid.message, 'The input files were refused (1 error): nothing was applied and the last good inputs of 2026-12-05T10:00:00Z stay in force. Fix the lines below and reload again.');
  assert.deepEqual(invalid.problems, [{ file: 'network.json', line: 4, message: 'unexpected token' }]);
  assert.equal(invalid.changes, undefined);
  const failed = reloadResult({ ...base, ok: false, exitCode: 5, summary });
  assert.match(failed.message, /^The run failed \(exit code 5\); the shaping in force is unchanged\. .*journalctl -u lqosd -b/);
  assert.equal(failed.changes, undefined, 'a failed run reports no changes');
});

test('mass removal refused: the guard\'s own message (how many, which, how to force)', () => {
  const r = reloadResult({
    ...base, ok: false, exitCode: 1,
    massRemoval: { refuse: true, removed: 40, total: 50, percent: 80, limitPercent: 50, sample: [{ id: 'c1', name: 'Alice' }] },
  });
  assert.match(r.message, /^refused: this run would remove 40 of the 50 shaped circuits \(80\.0 %.*c1 \(Alice\) and 39 more\. Nothing was applied/);
});

test('dry run: nothing applied, what a real run would do, where the commands are; no "changes"', () => {
  const dry = (wouldDo: 'full' | 'incremental' | 'none') => reloadResult({ ...base, mode: 'none', commands: 0, dryRun: { wouldDo, summary, circuits: 12, commandsFile: '/var/lib/lqos/debug/linux_tc.txt' } });
  assert.equal(dry('full').message, 'Dry run ([queues] dry_run = true): nothing was applied. A real run would do a full rebuild of 12 circuits. The planned tc commands are in /var/lib/lqos/debug/linux_tc.txt; the pages show this plan as planned, not applied.');
  assert.match(dry('incremental').message, /A real run would do an update in place \(2 circuits added, 1 removed, 1 changed\)\./);
  assert.match(dry('none').message, /A real run would do nothing: the plan is unchanged\./);
  assert.equal(dry('full').changes, undefined);
  assert.deepEqual(dry('full').dryRun, { wouldDo: 'full', circuits: 12, commandsFile: '/var/lib/lqos/debug/linux_tc.txt' });
});
