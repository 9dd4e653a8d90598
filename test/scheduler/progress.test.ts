// test-gate: shared (CPU only; see test/support/gate.ts)
/**
 * Cycle progress: the scheduler (in-process) against a real lqosd (dry run) reports each step of a
 * cycle over the bus (`scheduler_progress`); lqosd keeps the latest and `scheduler_status` shows it
 * (`Applying shaping (4/4, 75 %)`), marked stale when the scheduler went silent or moved on. Also
 * the tracker's rules with a fake clock and the bus validation of the message.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { busRequest } from '../../lib/bus/client.ts';
import type { SchedulerProgressReport } from '../../lib/api/scheduler.ts';
import { ShapingService } from '../../lib/shaping/service.ts';
import { Scheduler, SCHEDULER_EXIT, type SchedulerOptions } from '../../lib/scheduler/scheduler.ts';
import { SchedulerStatusTracker } from '../../lib/scheduler/status.ts';
import { sleep, waitFor } from '../support/wait.ts';
import { inProcessScheduler, makeSchedWorkspace, schedulerStatus, script, startTestDaemon, type SchedWorkspace } from './helpers.ts';

const cleanups: (() => unknown)[] = [];
after(async () => {
  for (const c of cleanups.reverse()) await c();
});
function ws(): SchedWorkspace {
  const w = makeSchedWorkspace();
  cleanups.push(() => w.cleanup());
  return w;
}
const scheduler = (w: SchedWorkspace, opts: Partial<SchedulerOptions> = {}): Scheduler => inProcessScheduler(w, cleanups, opts);
const status = schedulerStatus;
const short = (p: SchedulerProgressReport) => `${p.active ? '' : 'end:'}${p.phase} ${p.step}/${p.steps} ${p.percent}%`;

/** lqosd whose shaping waits while `gate` exists (so a test can look at the status mid-apply), recording every progress report. */
async function gatedDaemon(w: SchedWorkspace) {
  const gate = join(w.dir, 'apply.gate');
  const real = new ShapingService();
  const d = await startTestDaemon(w, {
    shaping: {
      run: async (req, env) => {
        // Bounded, so a failing assertion cannot leave lqosd (and the scheduler's stop) waiting for ever.
        for (const until = Date.now() + 20_000; existsSync(gate) && Date.now() < until; ) await sleep(20);
        return real.run(req, env);
      },
    },
  });
  cleanups.push(() => d.stop());
  const seen: SchedulerProgressReport[] = [];
  const tracker = d.context.scheduler;
  const orig = tracker.progress.bind(tracker);
  tracker.progress = (p) => {
    seen.push({ ...p });
    orig(p);
  };
  return { d, gate, seen };
}

test('start-up: 5 steps (waiting for lqosd → integration → overrides → validate → apply) then ready 100 %; status shows the running step', async () => {
  const w = ws();
  const { gate, seen } = await gatedDaemon(w);
  // The integration waits for a file, so the test sees the status while it runs.
  const release = join(w.dir, 'crm.release');
  const crm = script(w, 'crm.sh', `while [ ! -e "${release}" ]; do sleep 0.05; done; echo synced`);
  const s = scheduler(w, { integrations: () => [{ name: 'crm', file: crm, args: [] }] });
  writeFileSync(gate, '');
  const started = s.start();

  await waitFor(async () => (await status(w)).progress?.phase === 'integration', 10_000, 'integration step in scheduler_status');
  let st = await status(w);
  assert.deepEqual(
    { active: st.progress.active, step: st.progress.step, steps: st.progress.steps, percent: st.progress.percent, stale: st.progress.stale },
    { active: true, step: 2, steps: 5, percent: 20, stale: false },
  );
  assert.equal(st.progress.text, 'Running integration crm (2/5, 20 %)');
  assert.equal(st.health, 'running');

  writeFileSync(release, '');
  await waitFor(async () => (await status(w)).progress?.phase === 'apply', 10_000, 'apply step while lqosd holds the run');
  st = await status(w);
  assert.equal(st.progress.text, 'Applying shaping (5/5, 80 %)');
  assert.equal(st.progress.active, true);

  rmSync(gate);
  const first = await started;
  assert.equal(first.code, SCHEDULER_EXIT.ok, JSON.stringify(first.shape));
  await waitFor(async () => (await status(w)).progress?.phase === 'ready', 5000, 'ready');
  st = await status(w);
  assert.equal(st.progress.text, 'Up to date (5/5, 100 %)');
  assert.equal(st.progress.active, false);
  assert.equal(st.progress.stale, false);
  assert.deepEqual(seen.map(short), ['waiting_for_lqosd 1/5 0%', 'integration 2/5 20%', 'overrides 3/5 40%', 'validate 4/5 60%', 'apply 5/5 80%', 'end:ready 5/5 100%']);
});

test('scheduled refresh: 4 steps, "Applying shaping (4/4, 75 %)"; a file change: 3 steps; a failed integration ends degraded', async () => {
  const w = ws();
  const { gate, seen } = await gatedDaemon(w);
  let crm = script(w, 'crm-ok.sh', 'echo synced');
  const s = scheduler(w, { integrations: () => [{ name: 'crm', file: crm, args: [] }] });
  assert.equal((await s.start()).code, SCHEDULER_EXIT.ok);

  seen.length = 0;
  writeFileSync(gate, '');
  const cyc = s.runCycle('scheduled');
  await waitFor(async () => (await status(w)).progress?.phase === 'apply', 10_000, 'apply step of the scheduled refresh');
  assert.equal((await status(w)).progress.text, 'Applying shaping (4/4, 75 %)');
  rmSync(gate);
  assert.equal((await cyc).code, SCHEDULER_EXIT.ok);
  await waitFor(() => seen.some((p) => !p.active), 5000, 'the end-of-cycle report');
  assert.deepEqual(seen.map(short), ['integration 1/4 0%', 'overrides 2/4 25%', 'validate 3/4 50%', 'apply 4/4 75%', 'end:ready 4/4 100%']);

  // A saved file: overrides → validate → apply.
  await waitFor(async () => (await status(w)).phase === 'idle', 5000, 'idle');
  seen.length = 0;
  writeFileSync(w.devices, readFileSync(w.devices, 'utf8') + '2001,Added,2001-a,Dev,AP_West_1,,,02:00:00:00:20:01,100.64.20.1,,5,1,10,2,,\n');
  await waitFor(() => seen.some((p) => p.phase === 'ready'), 10_000, 'the file-change refresh to end');
  assert.deepEqual(seen.map(short), ['overrides 1/3 0%', 'validate 2/3 33%', 'apply 3/3 67%', 'end:ready 3/3 100%']);

  // The integration fails: shaped with the last good inputs → degraded.
  crm = script(w, 'crm-bad.sh', 'echo "\u001b[31mHTTP 500\u001b[0m" >&2; exit 2');
  seen.length = 0;
  assert.equal((await s.runCycle('scheduled')).code, SCHEDULER_EXIT.integrationFailed);
  await waitFor(() => seen.some((p) => !p.active), 5000, 'the end-of-cycle report');
  assert.deepEqual(seen.map((p) => p.phase), ['integration', 'overrides', 'validate', 'apply', 'degraded']);
  const st = await status(w);
  assert.equal(st.progress.phase, 'degraded');
  assert.match(st.progress.text, /^Shaped with the last good inputs .* \(4\/4, 100 %\)$/);
  // Satisfies #3 too: the preview in the status has no colour codes.
  assert.equal(st.lastError.preview, 'HTTP 500');
});

test('tracker: default percent, stale after 300 s of silence, stale when an idle heartbeat follows an active step', () => {
  let now = new Date('2026-01-01T00:00:00Z');
  const t = new SchedulerStatusTracker({ now: () => now });
  t.progress({ active: true, phase: 'apply', label: 'Applying shaping', step: 4, steps: 4 });
  let p = t.status().progress!;
  assert.equal(p.percent, 75);
  assert.equal(p.text, 'Applying shaping (4/4, 75 %)');
  assert.equal(p.stale, false);
  now = new Date(now.getTime() + 299_000);
  assert.equal(t.status().progress!.stale, false, '299 s: still current');
  now = new Date(now.getTime() + 2_000);
  p = t.status().progress!;
  assert.equal(p.stale, true, '301 s without news: stale');
  assert.equal(t.status().health, 'stale');
  // A fresh report is current again; an idle heartbeat after it (the cycle ended without saying so) makes it stale.
  t.progress({ active: true, phase: 'overrides', label: 'Applying overrides', step: 2, steps: 4 });
  assert.equal(t.status().progress!.stale, false);
  t.heartbeat('idle');
  assert.equal(t.status().progress!.stale, true);
  // An ended cycle is not made stale by the idle heartbeat that follows it.
  t.progress({ active: false, phase: 'ready', label: 'Up to date', step: 4, steps: 4 });
  t.heartbeat('idle');
  assert.deepEqual([t.status().progress!.stale, t.status().progress!.percent], [false, 100]);
});

test('lqosd validates scheduler_progress: step above steps, percent 101, a bad phase key and unknown fields are refused', async () => {
  const w = ws();
  const d = await startTestDaemon(w);
  cleanups.push(() => d.stop());
  const send = (p: Record<string, unknown>) => busRequest('scheduler_progress', p as any, { path: w.busPath }).then(() => 'ok', (e: Error) => e.message);
  const good = { active: true, phase: 'apply', label: 'Applying shaping', step: 4, steps: 4 };
  assert.equal(await send(good), 'ok');
  assert.match(await send({ ...good, step: 5 }), /step must not be greater than steps/);
  assert.match(await send({ ...good, percent: 101 }), /percent/);
  assert.match(await send({ ...good, phase: 'Apply Now' }), /phase/);
  assert.match(await send({ ...good, extra: 1 }), /extra|unrecognized/i);
  const st = await status(w);
  assert.equal(st.progress.text, 'Applying shaping (4/4, 75 %)', 'only the valid report was kept');
});
