/**
 * kill -9 of lqosd in the middle of an apply (issue 14): lqosd shapes 1,004 circuits, then starts a
 * large change (every rate changed, 3,000 circuits added); a `tc` shim runs the first half of that
 * batch and holds the rest, and lqosd is killed there (the held tc with it): the kernel holds a
 * half-applied tree. lqosd is started again: it takes over the stale kernel lock, verifies the
 * kernel against the plan in force and repairs it at once, then its start-up run applies the
 * configured inputs — and the tree and the IP map (read back with tc and the bus) hold exactly that
 * complete plan: no shaped circuit lost, no half-applied class left. Namespace lab: run under the
 * kernel flock.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { defaultLabCircuits, runLabLibreQoS, startLab, startLabDaemon, stopLab, stopLabDaemon, writeLabDevices, type Lab } from '../../lab/labEnv.ts';
import { busRequest } from '../../lib/bus/client.ts';
import { isProcessPid, parsePid, pidAlive } from '../../lib/util/processes.ts';
import { waitFor } from '../support/wait.ts';
import { testDir } from '../support/workspace.ts';
import { appliedPlan, batchRuns, generatedCircuits, kernelVsPlan, tcShim, traceEnv } from './helpers.ts';

const ID = 'lqkill';
let lab: Lab | undefined;
after(async () => {
  if (lab) await stopLab(ID);
});


/** Starts a refresh of the lab's inputs whose tc batch stops halfway, and kills lqosd (and that tc) there. */
async function killMidApply(l: Lab, trace: ReturnType<typeof tcShim>, go: string) {
  rmSync(go);
  const t0 = Date.now() / 1000;
  const refresh = busRequest('refresh', {}, { path: l.busPath, timeoutMs: 300_000 }).then(
    () => 'answered',
    (e: Error) => e.message,
  );
  await waitFor(() => batchRuns(trace).some((r) => r.start >= t0 && r.half), 120_000, 'the tc batch to be half done', 20);
  const cut = batchRuns(trace).find((r) => r.start >= t0 && r.half)!;
  const pid = parsePid(readFileSync(join(l.dir, 'run', 'lqosd.lock'), 'utf8'));
  assert.ok(pid !== undefined && isProcessPid(Number(cut.pid)), `PIDs to kill: lqosd ${pid}, tc ${cut.pid}`);
  assert.match(readFileSync(join(l.dir, 'run', 'kernel.lock'), 'utf8'), new RegExp(`^${pid}\\nlqosd: refresh\\n`), 'lqosd holds the kernel lock while it applies');
  process.kill(pid, 'SIGKILL');
  process.kill(Number(cut.pid), 'SIGKILL'); // and the tc batch it was running
  await waitFor(() => !pidAlive(pid), 10_000, 'lqosd to die');
  assert.notEqual(await refresh, 'answered', 'the refresh never finished');
  writeFileSync(go, ''); // the restarted lqosd's tc runs unhindered
  return { pid, cut };
}

/** The start-up work of a (re)started lqosd has finished (its job is done). */
async function startupDone(l: Lab): Promise<void> {
  await waitFor(async () => ((await busRequest('status', {}, { path: l.busPath })) as { job: unknown }).job === null, 180_000, 'the start-up run to finish', 200);
}

test('lqosd killed with -9 in the middle of a tc batch: the restart repairs the tree within seconds and loses no shaped circuit', async (t) => {
  const dir = testDir(t, 'lqos-kill-');
  const trace = tcShim(dir);
  const go = join(dir, 'go'); // absent: lqosd's next batch stops halfway
  writeFileSync(go, '');
  const env = { ...traceEnv(trace, 'lqosd'), LQOS_TC_SPLIT_HOLD: go };
  const plain = defaultLabCircuits.filter((c) => c.path === 'plain');
  lab = await startLab({ id: ID, circuits: plain, daemonEnv: env });
  const before = [...plain, ...generatedCircuits(1000)];
  writeLabDevices(lab, before);
  const first = await runLabLibreQoS(lab);
  assert.equal(first.code, 0, first.output);
  const oldPlan = appliedPlan(lab);
  assert.equal(oldPlan.circuits.length, 1004);
  assert.deepEqual(await kernelVsPlan(lab, oldPlan), []);

  // The large change, applied by lqosd (as the scheduler asks for it); its batch stops halfway.
  writeLabDevices(lab, [...plain, ...generatedCircuits(4000, (i) => 40 + (i % 9))]);
  const { pid: lqosdPid, cut } = await killMidApply(lab, trace, go);
  // The fault is real: the kernel holds neither the old plan nor the new one.
  const half = await kernelVsPlan(lab, oldPlan, { maps: false });
  assert.ok(half.length > 0, 'the kernel should be half-applied after the kill');
  assert.equal(appliedPlan(lab).circuits.length, 1004, 'applied_plan.json still names the old plan');

  // Restart and wait for the start-up work (repair, then the run of the configured inputs).
  const restartedAt = Date.now();
  await startLabDaemon(lab, { env });
  await startupDone(lab);
  const seconds = (Date.now() - restartedAt) / 1000;
  const log = readFileSync(join(lab.dir, 'lqosd.log'), 'utf8');
  assert.match(log, new RegExp(`replaced a stale lock .*kernel\\.lock left by PID ${lqosdPid}`));
  assert.match(log, /start-up: the kernel did not match the plan in force; repaired it in [\d.]+ s \(full, \d+ tc commands\)/);

  // The tree and the IP map hold the complete plan of the configured inputs: every circuit there.
  const plan = appliedPlan(lab);
  assert.equal(plan.circuits.length, 4004);
  assert.equal(plan.circuits.find((c) => c.id === 'gen-5')!.download.ceilMbps, 45);
  for (const c of oldPlan.circuits) assert.ok(plan.circuits.some((p) => p.id === c.id), `circuit ${c.id} lost`);
  assert.deepEqual(await kernelVsPlan(lab, plan), []);
  const repairLine = log.split('\n').find((l) => l.includes('start-up: the kernel did not match'))!;
  console.log(`# cut after ${cut.half!.lines} batch lines; restart → consistent kernel and map in ${seconds.toFixed(1)} s; ${JSON.parse(repairLine).msg}`);
});

test('killed mid-apply again, and the inputs are now unusable (no last good copy): the restart still puts the plan in force back', async (t) => {
  assert.ok(lab, 'needs the lab of the test above');
  const l = lab;
  const dir = testDir(t, 'lqos-kill2-');
  const trace = tcShim(dir);
  const go = join(dir, 'go');
  writeFileSync(go, '');
  const env = { ...traceEnv(trace, 'lqosd'), LQOS_TC_SPLIT_HOLD: go };
  // lqosd with this test's shim, and the plan of the test above in force.
  await stopLabDaemon(l);
  await startLabDaemon(l, { env });
  await startupDone(l);
  const inForce = appliedPlan(l);
  assert.deepEqual(await kernelVsPlan(l, inForce), []);

  writeLabDevices(l, [...defaultLabCircuits.filter((c) => c.path === 'plain'), ...generatedCircuits(4000, (i) => 60 + (i % 5))]);
  await killMidApply(l, trace, go);
  assert.ok((await kernelVsPlan(l, inForce, { maps: false })).length > 0, 'half-applied');
  // The start-up run cannot shape: network.json is broken and there is no last good copy.
  writeFileSync(join(l.dir, 'network.json'), '{ "Lab_Tower": ');
  for (const f of ['lastGoodConfig.csv', 'lastGoodConfig.json', 'lastGoodConfig.meta.json']) rmSync(join(l.dir, 'state', 'shaping', f), { force: true });
  const logBefore = readFileSync(join(l.dir, 'lqosd.log'), 'utf8').length;

  await startLabDaemon(l, { env });
  await startupDone(l);
  const log = readFileSync(join(l.dir, 'lqosd.log'), 'utf8').slice(logBefore);
  assert.match(log, /start-up: the kernel did not match the plan in force; repaired it/);
  const urgent = ((await busRequest('urgent_list', {}, { path: l.busPath })) as { issues: { code: string; resolved?: boolean }[] }).issues;
  assert.ok(urgent.some((i) => i.code === 'INPUTS_INVALID'), JSON.stringify(urgent.map((i) => i.code)));
  // The plan in force (the test above's) is whole again in the kernel and the map.
  assert.equal(appliedPlan(l).circuits.length, inForce.circuits.length);
  assert.deepEqual(await kernelVsPlan(l, inForce), []);
});
