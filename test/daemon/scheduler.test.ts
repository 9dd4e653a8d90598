// test-gate: shared (CPU only; see test/support/gate.ts)
/**
 * SchedulerStatusTracker health rules (with an injected clock) and the output preview.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { makePreview, SchedulerStatusTracker } from '../../lib/scheduler/status.ts';

function clock(start = Date.parse('2025-03-01T12:00:00Z')) {
  let t = start;
  return { now: () => new Date(t), advance: (ms: number) => void (t += ms) };
}

test('health: unknown → running → healthy → error → healthy after a later success', () => {
  const c = clock();
  const s = new SchedulerStatusTracker({ now: c.now });
  assert.equal(s.status().health, 'unknown');
  assert.equal(s.status().lastHeartbeat, undefined);

  s.heartbeat('running_integration', '2025-03-01T12:30:00Z');
  assert.equal(s.status().health, 'running');
  assert.equal(s.status().phase, 'running_integration');
  assert.equal(s.status().nextRun, '2025-03-01T12:30:00Z');

  c.advance(1000);
  s.heartbeat('idle');
  assert.equal(s.status().health, 'healthy');
  assert.equal(s.status().nextRun, '2025-03-01T12:30:00Z', 'nextRun kept when not given');

  c.advance(1000);
  s.error({ message: 'UISP integration failed', integration: 'uisp', preview: 'line1\nline2', logFile: '/tmp/lqos_scheduler__uisp_20250301_120002.log' });
  const st = s.status();
  assert.equal(st.health, 'error');
  assert.equal(st.lastError!.message, 'UISP integration failed');
  assert.equal(st.lastError!.integration, 'uisp');
  assert.equal(st.lastError!.preview, 'line1\nline2');
  assert.equal(st.lastError!.logFile, '/tmp/lqos_scheduler__uisp_20250301_120002.log');

  c.advance(1000);
  s.heartbeat('running_integration');
  assert.equal(s.status().health, 'error', 'an error newer than the last success wins over running');

  c.advance(1000);
  s.success();
  s.heartbeat('idle');
  assert.equal(s.status().health, 'healthy');
  assert.ok(s.status().lastError, 'the last error stays visible');
});

test('health: stale once the last heartbeat is older than 300 s (whatever else is true)', () => {
  const c = clock();
  const s = new SchedulerStatusTracker({ now: c.now });
  s.heartbeat('idle');
  c.advance(300_000);
  assert.equal(s.status().health, 'healthy', 'exactly 300 s is not stale yet');
  c.advance(1);
  assert.equal(s.status().health, 'stale');
  s.error({ message: 'boom' });
  assert.equal(s.status().health, 'error', 'an error is a sign of life');
  c.advance(301_000);
  assert.equal(s.status().health, 'stale');
  // status(now) can be asked about another instant.
  assert.equal(s.status(new Date(c.now().getTime() - 300_000)).health, 'error');
  s.success();
  assert.equal(s.status().health, 'healthy', 'success is a sign of life and clears the error; the phase is still idle');
});

test('success(at) records the given time', () => {
  const c = clock();
  const s = new SchedulerStatusTracker({ now: c.now });
  s.success('2025-03-01T11:59:00Z');
  assert.equal(s.status().lastSuccess, '2025-03-01T11:59:00.000Z');
  assert.equal(s.status().lastHeartbeat, '2025-03-01T12:00:00.000Z');
});

test('preview: first 30 lines / 4,000 characters', () => {
  const lines = Array.from({ length: 100 }, (_, i) => `line ${i + 1}`);
  const p = makePreview(lines.join('\n'));
  assert.equal(p.split('\n').length, 31);
  assert.ok(p.includes('line 30'));
  assert.ok(!p.includes('line 31'));
  assert.match(p, /truncated/);
  const long = makePreview('x'.repeat(10_000));
  assert.ok(long.startsWith('x'.repeat(4000)));
  assert.ok(long.length < 4100);
  assert.equal(makePreview('short\r\noutput\n'), 'short\noutput');
  const s = new SchedulerStatusTracker();
  s.error({ message: 'm', preview: lines.join('\n') });
  assert.equal(s.status().lastError!.preview, p, 'the tracker keeps only the preview');
});
