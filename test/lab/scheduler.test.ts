/**
 * The scheduler with a real lqosd on the namespace lab: start order, a saved ShapedDevices.csv
 * edit reaching the kernel within about a second, bad inputs leaving the kernel untouched, and a
 * CRM integration (Netzur, against its fake server) run end to end into kernel classes.
 * lqosd runs in the lab's shaper namespace; the scheduler talks to it over the bus socket (a
 * filesystem path, so the scheduler itself can stay in the root namespace, where the fake CRM is).
 * Kernel classes are compared with the plan in force in exact bits/s (test/support/kernelPlan.ts).
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { appendFileSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { execa, type ResultPromise } from 'execa';
import { defaultLabCircuits, labShapedDevices, repoRoot, startLab, stopLab, type Lab } from '../../lab/labEnv.ts';
import { busRequest } from '../../lib/bus/client.ts';
import { NETZUR_KEY, NETZUR_PATH, startFakeNetzur } from '../fixtures/crm/netzur.ts';
import type { FakeServer } from '../fixtures/crm/server.ts';
import { parse } from 'csv-parse/sync';
import { assertCircuitClasses, readAppliedPlan } from '../support/kernelPlan.ts';

const ID = 'lqsch';
let lab: Lab;
let scheduler: ResultPromise | undefined;

before(async () => {
  lab = await startLab({ id: ID, circuits: defaultLabCircuits.filter((c) => c.path === 'plain') });
});
after(async () => {
  scheduler?.kill('SIGTERM');
  await scheduler?.catch(() => undefined);
  await stopLab(ID);
});

const env = () => ({ LQOS_BUS_PATH: lab.busPath, LQOS_LOG_FORMAT: 'json', LQOS_SCHEDULER_LOG_DIR: join(lab.dir, 'logs') });

async function classLines(): Promise<string> {
  const out: string[] = [];
  for (const dev of [lab.tb.shaperIfs.customer, lab.tb.shaperIfs.internet]) {
    out.push(String((await execa('tc', ['-n', lab.tb.ns.shaper, 'class', 'show', 'dev', dev])).stdout));
  }
  return out.join('\n');
}

function classOf(id: string): string {
  const st = JSON.parse(readFileSync(join(lab.dir, 'state', 'shaping', 'planner_state.json'), 'utf8'));
  const s = st.circuits[id];
  return `${s.queue.toString(16)}:${s.minor.toString(16)}`;
}

async function ceilOf(dev: string, classid: string): Promise<string | undefined> {
  const r = await execa('tc', ['-n', lab.tb.ns.shaper, 'class', 'show', 'dev', dev, 'classid', classid], { reject: false });
  return /ceil (\S+)/.exec(String(r.stdout))?.[1];
}

test('the scheduler does the full setup once lqosd answers, then applies a saved edit within about a second', async () => {
  scheduler = execa(join(repoRoot, 'scheduler'), ['--config', lab.config], { env: env(), reject: false, all: true });
  // Full setup: the circuits' classes appear in the kernel.
  const t0 = Date.now();
  while (Date.now() - t0 < 30_000) {
    try {
      if ((await ceilOf(lab.tb.shaperIfs.customer, classOf('lab-25'))) === '25Mbit') break;
    } catch {
      /* planner state not written yet */
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  const cls = classOf('lab-25');
  assert.equal(await ceilOf(lab.tb.shaperIfs.customer, cls), '25Mbit', 'full setup did not shape lab-25');
  // Wait until the scheduler is idle (its status says so), then save an edit.
  const t1 = Date.now();
  while (Date.now() - t1 < 15_000) {
    const st = (await busRequest('scheduler_status', {}, { path: lab.busPath })) as { phase?: string };
    if (st.phase === 'idle') break;
    await new Promise((r) => setTimeout(r, 200));
  }
  const circuits = lab.circuits.map((c) => (c.id === 'lab-25' ? { ...c, down: 7 } : c));
  const saved = Date.now();
  writeFileSync(join(lab.dir, 'ShapedDevices.csv'), labShapedDevices(circuits));
  let seenAt = 0;
  while (Date.now() - saved < 10_000) {
    if ((await ceilOf(lab.tb.shaperIfs.customer, cls)) === '7Mbit') {
      seenAt = Date.now();
      break;
    }
    await new Promise((r) => setTimeout(r, 25));
  }
  assert.ok(seenAt, 'the edit never reached the kernel');
  const ms = seenAt - saved;
  console.log(`# save → class in kernel: ${ms} ms`);
  assert.ok(ms <= 1500, `save → class in kernel took ${ms} ms (target ≤ 1 s; 1.5 s allowed for a loaded CI machine)`);
  lab.circuits = circuits;
});

test('invalid inputs saved by mistake: the scheduler status names ShapedDevices.csv and the bad line, the previous plan stays in force', async () => {
  const stateDir = join(lab.dir, 'state');
  // The previous test saw its edit (lab-25 at 7 Mbit) in the kernel; lqosd records the plan in
  // applied_plan.json after its read-back, so wait for that (and an idle scheduler) before taking
  // the plan in force as the reference (a fresh-clone CI run once read the plan before the edit).
  let planBefore = readAppliedPlan(stateDir);
  const settle = Date.now();
  while (Date.now() - settle < 10_000) {
    planBefore = readAppliedPlan(stateDir);
    const st = (await busRequest('scheduler_status', {}, { path: lab.busPath })) as { phase?: string };
    if (planBefore.circuits.find((c) => c.id === 'lab-25')?.download.ceilMbps === 7 && st.phase === 'idle') break;
    await new Promise((r) => setTimeout(r, 100));
  }
  assert.equal(planBefore.circuits.find((c) => c.id === 'lab-25')?.download.ceilMbps, 7, 'applied_plan.json never recorded the previous edit');
  const classesBefore = await classLines();
  const file = join(lab.dir, 'ShapedDevices.csv');
  // A row with 11 of the header's 13 fields: a file-level error (the whole run is refused).
  const badLine = readFileSync(file, 'utf8').split('\n').filter((l) => l !== '').length + 1;
  appendFileSync(file, 'bad,Row,bad-d,Dev,Lab_AP_1,,100.64.0.30,,1,1,10\n');
  type Status = { health: string; lastError?: { message: string; preview?: string } };
  let st: Status | undefined;
  let named: RegExpExecArray | null = null;
  const deadline = Date.now() + 30_000;
  while (Date.now() < deadline) {
    st = (await busRequest('scheduler_status', {}, { path: lab.busPath })) as Status;
    named = /ShapedDevices\.csv:(\d+)/.exec(`${st.lastError?.message ?? ''}\n${st.lastError?.preview ?? ''}`);
    if (named) break;
    await new Promise((r) => setTimeout(r, 200));
  }
  assert.ok(named, `within 30 s the scheduler status never named ShapedDevices.csv:<line>; last status: ${JSON.stringify(st)}`);
  assert.equal(Number(named[1]), badLine, `the status names line ${named[1]}, the bad row is line ${badLine}: ${st!.lastError!.preview}`);
  assert.equal(st!.health, 'error', 'scheduler health after a refused run');
  assert.match(st!.lastError!.message, /inputs are invalid/);
  // The previous plan is still in force: same plan file, and the kernel holds exactly its classes.
  assert.deepEqual(readAppliedPlan(stateDir), planBefore, 'applied_plan.json changed although the run was refused');
  assert.equal(await assertCircuitClasses(lab.tb.ns.shaper, planBefore), planBefore.circuits.length * 2);
  assert.equal(await classLines(), classesBefore, 'the kernel\'s classes changed');
  writeFileSync(file, labShapedDevices(lab.circuits));
  scheduler?.kill('SIGTERM');
  await scheduler?.catch(() => undefined);
  scheduler = undefined;
});

test('an enabled CRM integration runs end to end: fake Netzur → files → lqosd → kernel classes', async () => {
  let srv: FakeServer | undefined;
  try {
    srv = await startFakeNetzur();
    const conf = readFileSync(lab.config, 'utf8');
    // The CRM's circuits replace every hand-written lab circuit: a mass removal the scheduler must be allowed.
    // The CRM's tree replaces the lab's network.json too (the default, false, would keep the lab's tree,
    // under which the CRM's circuits have no parent).
    writeFileSync(
      lab.config,
      `${conf}\n[netzur_integration]\nenable_netzur = true\napi_key = "${NETZUR_KEY}"\napi_url = "${srv.url}${NETZUR_PATH}"\n[safety]\nscheduler_allow_mass_removal = true\n[integration_common]\nalways_overwrite_network_json = true\n`,
    );
    const r = await execa(join(repoRoot, 'scheduler'), ['--once', '--config', lab.config], { env: env(), reject: false, all: true });
    assert.equal(r.exitCode, 0, String(r.all).slice(-3000));
    const csv = readFileSync(join(lab.dir, 'ShapedDevices.csv'), 'utf8');
    assert.match(csv, /netzur_S-1/, 'the integration did not write ShapedDevices.csv');
    const plan = readAppliedPlan(join(lab.dir, 'state'));
    const ids = plan.circuits.map((c) => c.id).filter((id) => id.startsWith('netzur_'));
    assert.ok(ids.length > 0, `no netzur circuit in the plan in force: ${plan.circuits.map((c) => c.id).join(', ')}`);
    // The CRM's rates reached the plan: each circuit's ceil is its Max Mbps in the written file.
    const rows = parse(csv, { columns: true, skip_empty_lines: true }) as Array<Record<string, string>>;
    for (const id of ids) {
      const row = rows.find((r) => r['Circuit ID'] === id);
      assert.ok(row, `${id} is planned but not in the ShapedDevices.csv the integration wrote`);
      const c = plan.circuits.find((x) => x.id === id)!;
      assert.deepEqual([c.download.ceilMbps, c.upload.ceilMbps], [Number(row['Download Max Mbps']), Number(row['Upload Max Mbps'])], `${id}: plan ceil vs the CRM's Max Mbps`);
    }
    const s1 = plan.circuits.find((c) => c.id === 'netzur_S-1');
    assert.ok(s1, 'netzur_S-1 (Bob, 50/10 in the fake CRM) is not planned');
    assert.deepEqual([s1.download.ceilMbps, s1.upload.ceilMbps], [50, 10]);
    // Every CRM circuit's classes are in the kernel with exactly the compiled rate and ceil (bits/s).
    assert.equal(await assertCircuitClasses(lab.tb.ns.shaper, plan, ids), ids.length * 2);
  } finally {
    await srv?.close();
  }
});
