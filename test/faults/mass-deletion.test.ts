/**
 * Mass deletion refused (issue 14): a run whose plan leaves out more than `[safety]
 * max_removed_percent` of the circuits in force is refused unless forced — `LibreQoS --force`, an
 * admin's confirmation of a web save (409 `mass_removal`, then `force: true`), or `[safety]
 * scheduler_allow_mass_removal = true` for the scheduler — and a refusal applies nothing and raises
 * MASS_REMOVAL_REFUSED. The first tests use dry runs (no kernel); the last one does it all against
 * the namespace lab's kernel (run under the kernel flock).
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { execa } from 'execa';
import { defaultLabCircuits, labShapedDevices, runLabLibreQoS, startLab, stopLab, type Lab } from '../../lab/labEnv.ts';
import { serializePlan } from '../../lib/apply/appliedPlan.ts';
import { BusClient, busRequest } from '../../lib/bus/client.ts';
import { loadResolvedConfig } from '../../lib/config/resolve.ts';
import { StatusReporter } from '../../lib/scheduler/reporter.ts';
import { shapeOnce } from '../../lib/scheduler/shape.ts';
import { EXIT } from '../../lib/shaping/exitCodes.ts';
import { approvalPath } from '../../lib/shaping/removalApproval.ts';
import { loConfig } from '../support/configs.ts';
import { startTestDaemon } from '../support/daemon.ts';
import { quiet } from '../support/log.ts';
import { buildPlan, planConfig } from '../support/plan.ts';
import { seedUsers } from '../support/users.ts';
import { startWebHarness } from '../support/web.ts';
import { runCli, workspaceFactory, type Workspace } from '../support/workspace.ts';

const HEADER = 'Circuit ID,Circuit Name,Device ID,Device Name,Parent Node,MAC,IPv4,IPv6,Download Min Mbps,Upload Min Mbps,Download Max Mbps,Upload Max Mbps,Comment';
const FLAT = '{}\n';

/** ShapedDevices.csv with circuits c<from>…c<n-1> (flat network). */
function devices(n: number, from = 0): string {
  const rows = [];
  for (let i = from; i < n; i++) rows.push(`c${i},Customer ${i},d${i},CPE ${i},,,100.64.${i >> 8}.${i & 255},,1,1,10,10,`);
  return [HEADER, ...rows].join('\n') + '\n';
}

const newWorkspace = workspaceFactory();

/** A dry-run workspace on `lo` whose plan in force (applied_plan.json) has circuits c0…c9. */
function workspaceInForce(extraConf = ''): Workspace & { applied: string } {
  const w = newWorkspace({ prefix: 'lqos-massdel-', conf: (dir) => loConfig(dir, extraConf), devices: devices(10), network: FLAT, runDir: true });
  const { plan } = buildPlan({ devices: devices(10), network: FLAT }, { config: planConfig({ interfaces: { download: 'lo', upload: 'lo', onAStick: true } }) });
  const applied = join(w.stateDir, 'shaping', 'applied_plan.json');
  mkdirSync(join(w.stateDir, 'shaping'), { recursive: true });
  writeFileSync(applied, serializePlan(plan));
  return Object.assign(w, { applied });
}

test('LibreQoS: emptying ShapedDevices.csv is refused (exit 7, nothing recorded) without --force and accepted with it; max_removed_percent moves the limit', async () => {
  const w = workspaceInForce();
  const before = readFileSync(w.applied, 'utf8');
  w.write('ShapedDevices.csv', devices(0));
  const refused = await runCli(['--config', w.config, '--dry-run']);
  assert.equal(refused.code, EXIT.massRemoval, refused.stderr);
  const err = refused.logs.find((l: any) => l.code === 'mass-removal') as any;
  assert.ok(err, refused.stderr);
  assert.match(err.msg, /would be refused: this run would remove 10 of the 10 shaped circuits \(100\.0 %, more than \[safety\] max_removed_percent = 20\): c0 \(Customer 0\), c1 \(Customer 1\)/);
  assert.match(err.msg, /LibreQoS --force/);
  assert.deepEqual(err.sample, ['c0', 'c1', 'c2', 'c3', 'c4', 'c5', 'c6', 'c7', 'c8', 'c9']);
  assert.ok(refused.logs.some((l) => /run again with --force/.test(l.msg)));
  assert.equal(readFileSync(w.applied, 'utf8'), before, 'the plan in force is untouched');

  const forced = await runCli(['--config', w.config, '--dry-run', '--force']);
  assert.equal(forced.code, 0, forced.stderr);
  assert.ok(forced.logs.some((l: any) => l.code === 'mass-removal-forced' && /removing 10 of the 10 shaped circuits/.test(l.msg)), forced.stderr);

  // 2 of 10 gone (20 %) is within the default limit; 3 of 10 is not, unless max_removed_percent says so.
  w.write('ShapedDevices.csv', devices(10, 2));
  assert.equal((await runCli(['--config', w.config, '--dry-run'])).code, 0);
  w.write('ShapedDevices.csv', devices(10, 3));
  assert.equal((await runCli(['--config', w.config, '--dry-run'])).code, EXIT.massRemoval);
  w.writeConfig(loConfig(w.dir, '[safety]\nmax_removed_percent = 30\n'));
  assert.equal((await runCli(['--config', w.config, '--dry-run'])).code, 0);
});

test('the guard does not switch off when applied_plan.json is damaged or missing: its newest backup is the baseline', async () => {
  const w = workspaceInForce();
  // The plan in force as a backup only (the file itself damaged, as after a disk failure).
  renameSync(w.applied, `${w.applied}.bak`);
  writeFileSync(w.applied, '{"nodes": [');
  w.write('ShapedDevices.csv', devices(0));
  const refused = await runCli(['--config', w.config, '--dry-run']);
  assert.equal(refused.code, EXIT.massRemoval, refused.stderr);
  assert.ok(refused.logs.some((l: any) => l.code === 'mass-removal' && /remove 10 of the 10 shaped circuits/.test(l.msg)), refused.stderr);
  // Missing altogether (a failed apply whose restore failed): the same.
  rmSync(w.applied, { force: true });
  assert.equal((await runCli(['--config', w.config, '--dry-run'])).code, EXIT.massRemoval);
  // Nothing in force and no backup (a new box, or after --clearrules, which removes the backups too): nothing to guard.
  rmSync(`${w.applied}.bak`);
  assert.equal((await runCli(['--config', w.config, '--dry-run'])).code, 0);
});

test('lqosd and the scheduler: a refused refresh raises MASS_REMOVAL_REFUSED; scheduler_allow_mass_removal = true lets the scheduler through', async (t) => {
  const w = workspaceInForce();
  const before = readFileSync(w.applied, 'utf8');
  const d = await startTestDaemon(w);
  t.after(() => d.stop());
  w.write('ShapedDevices.csv', devices(0));
  const c = new BusClient({ path: w.busPath });
  try {
    const r = await c.request<'refresh', any>('refresh');
    assert.equal(r.exitCode, EXIT.massRemoval);
    assert.deepEqual([r.massRemoval.refuse, r.massRemoval.removed, r.massRemoval.total], [true, 10, 10]);
    const issue = (await c.request<'urgent_list', any>('urgent_list')).issues.find((i: any) => i.code === 'MASS_REMOVAL_REFUSED');
    assert.ok(issue, 'urgent issue raised');
    assert.equal(issue.severity, 'error');
    assert.match(issue.message, /was refused: this run would remove 10 of the 10 shaped circuits/);
    assert.match(issue.message, /c0 \(Customer 0\), c1 \(Customer 1\), .*c9 \(Customer 9\)/);
    assert.match(issue.message, /LibreQoS --force.*web UI.*scheduler_allow_mass_removal = true/s);
    assert.equal(readFileSync(w.applied, 'utf8'), before);

    // The scheduler with the switch off (default): refused, with the reason.
    const reporter = new StatusReporter(quiet, w.busPath);
    const off = await shapeOnce(loadResolvedConfig({ path: w.config }), reporter, quiet, { mode: 'incremental' });
    assert.equal(off.ok, false);
    assert.equal(off.exitCode, EXIT.massRemoval);
    assert.match(off.message, /lqosd refused it: it would remove 10 of 10 shaped circuits .*scheduler_allow_mass_removal = true/);
    // The switch on: lqosd is told to go ahead, and the issue is resolved.
    w.writeConfig(loConfig(w.dir, '[safety]\nscheduler_allow_mass_removal = true\n'));
    const on = await shapeOnce(loadResolvedConfig({ path: w.config }), reporter, quiet, { mode: 'incremental' });
    assert.equal(on.ok, true, on.output);
    assert.equal((await c.request<'urgent_list', any>('urgent_list')).issues.find((i: any) => i.code === 'MASS_REMOVAL_REFUSED' && !i.resolved)?.resolved ?? true, true);
    reporter.client.close();
  } finally {
    c.close();
  }
});

test('web: a save that would unshape every circuit is refused with 409 (file untouched); confirmed with force it is written and the next run applies it', async (t) => {
  const h = await startWebHarness({ prefix: 'lqos-massdel-web-', devices: devices(10), network: FLAT });
  t.after(() => h.close());
  const admin = await seedUsers(h);
  const original = readFileSync(h.devicesPath, 'utf8');

  const refused = await admin.put('/api/shaped-devices', { circuits: [] });
  assert.equal(refused.status, 409, refused.text);
  assert.equal(refused.json.error, 'mass_removal');
  assert.deepEqual([refused.json.removed, refused.json.total, refused.json.limitPercent], [10, 10, 20]);
  assert.deepEqual(refused.json.sample.slice(0, 2), [{ id: 'c0', name: 'Customer 0' }, { id: 'c1', name: 'Customer 1' }]);
  assert.match(refused.json.message, /saving this would unshape 10 of the 10 shaped circuits; nothing was written/);
  assert.equal(readFileSync(h.devicesPath, 'utf8'), original, 'the file is untouched');
  const approval = approvalPath({ appliedPlan: join(h.dir, 'state', 'shaping', 'applied_plan.json') });
  assert.equal(existsSync(approval), false);

  // network.json: the same guard (a flat network keeps every circuit: allowed without force).
  const net = await admin.put('/api/network', { network: {} });
  assert.equal(net.status, 200, net.text);

  const forced = await admin.put('/api/shaped-devices', { circuits: [], force: true });
  assert.equal(forced.status, 200, forced.text);
  assert.equal(forced.json.removed, 10);
  assert.deepEqual(readFileSync(h.devicesPath, 'utf8').trim().split('\n').length, 1, 'only the header is left');
  const a = JSON.parse(readFileSync(approval, 'utf8'));
  assert.equal(a.by, 'admin');
  assert.deepEqual([...a.circuits].sort(), Array.from({ length: 10 }, (_, i) => `c${i}`).sort());

  // The run after the save (here a dry run of LibreQoS on the same files) is not refused again.
  writeFileSync(join(h.dir, 'state', 'shaping', 'applied_plan.json'), serializePlan(h.plan));
  const run = await runCli(['--config', h.configPath, '--dry-run']);
  assert.equal(run.code, 0, run.stderr);
  assert.ok(run.logs.some((l: any) => l.code === 'mass-removal-forced' && /confirmed by an admin in the web UI/.test(l.msg)), run.stderr);
});

// ------------------------------------------------------------------------------------------------
// The kernel: nothing applied when refused, applied when forced (namespace lab).

const ID = 'lqmass';
let lab: Lab | undefined;
after(async () => {
  if (lab) await stopLab(ID);
});

async function classCount(l: Lab): Promise<number> {
  const r = await execa('tc', ['-n', l.tb.ns.shaper, 'class', 'show', 'dev', l.tb.shaperIfs.customer]);
  return String(r.stdout).split('\n').filter((x) => x.startsWith('class htb')).length;
}

test('lab: refused runs leave the kernel and the applied plan as they are; the scheduler switch and --force apply the removal', async () => {
  const circuits = defaultLabCircuits.filter((c) => c.path === 'plain');
  lab = await startLab({ id: ID, circuits });
  const first = await runLabLibreQoS(lab);
  assert.equal(first.code, 0, first.output);
  const shaped = await classCount(lab);
  const applied = join(lab.dir, 'state', 'shaping', 'applied_plan.json');
  const inForce = readFileSync(applied, 'utf8');

  writeFileSync(join(lab.dir, 'ShapedDevices.csv'), labShapedDevices([]));
  const refused = await runLabLibreQoS(lab);
  assert.equal(refused.code, EXIT.massRemoval, refused.output);
  assert.match(refused.output, /would remove 4 of the 4 shaped circuits/);
  assert.equal(await classCount(lab), shaped, 'no class removed');
  assert.equal(readFileSync(applied, 'utf8'), inForce);
  const issues = ((await busRequest('urgent_list', {}, { path: lab.busPath })) as any).issues;
  assert.ok(issues.some((i: any) => i.code === 'MASS_REMOVAL_REFUSED' && /lab-10 \(Ten Meg Customer\)/.test(i.message)));

  // The scheduler's run: refused with the switch off, applied with it on.
  const reporter = new StatusReporter(quiet, lab.busPath);
  try {
    const off = await shapeOnce(loadResolvedConfig({ path: lab.config }), reporter, quiet, { mode: 'incremental' });
    assert.equal(off.exitCode, EXIT.massRemoval, off.message);
    assert.equal(await classCount(lab), shaped);
    writeFileSync(lab.config, readFileSync(lab.config, 'utf8') + '[safety]\nscheduler_allow_mass_removal = true\n');
    const on = await shapeOnce(loadResolvedConfig({ path: lab.config }), reporter, quiet, { mode: 'incremental' });
    assert.equal(on.ok, true, `${on.message}\n${on.output ?? ''}`);
    assert.equal(await classCount(lab), shaped - circuits.length, 'the circuit classes are gone');
  } finally {
    reporter.client.close();
  }

  // --force: shape them again, empty the file again, refused, then forced.
  writeFileSync(lab.config, readFileSync(lab.config, 'utf8').replace('scheduler_allow_mass_removal = true', 'scheduler_allow_mass_removal = false'));
  writeFileSync(join(lab.dir, 'ShapedDevices.csv'), labShapedDevices(circuits));
  assert.equal((await runLabLibreQoS(lab)).code, 0);
  assert.equal(await classCount(lab), shaped);
  writeFileSync(join(lab.dir, 'ShapedDevices.csv'), labShapedDevices([]));
  assert.equal((await runLabLibreQoS(lab)).code, EXIT.massRemoval);
  assert.equal(await classCount(lab), shaped);
  const forced = await runLabLibreQoS(lab, ['--force']);
  assert.equal(forced.code, 0, forced.output);
  assert.equal(await classCount(lab), shaped - circuits.length);
});
