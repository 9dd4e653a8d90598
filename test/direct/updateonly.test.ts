/**
 * `LibreQoS --direct` and `--updateonly` against a real kernel (namespace lab, no lqosd): --direct
 * applies in its own process (classes, leaf qdiscs and the pinned IP map read back equal the plan);
 * --updateonly with nothing changed reads the kernel back and runs no tc command that changes it;
 * after a class or an IP mapping is deleted by hand, --updateonly finds the drift, repairs it and
 * says so; with a changed rate it applies just that change. Namespace lab: run under the kernel flock.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { execa } from 'execa';
import { defaultLabCircuits, runLabLibreQoS, startLab, stopLab, writeLabDevices, type Lab } from '../../lab/labEnv.ts';
import { dataplaneMappingSink } from '../../lib/apply/mappingSink.ts';
import type { ShapingPlan } from '../../lib/model.ts';
import { formatClassId } from '../../lib/util/classId.ts';
import { appliedPlan, kernelVsPlan } from '../faults/helpers.ts';

const ID = 'lqupd';
const circuits = defaultLabCircuits.filter((c) => c.path === 'plain');
let lab: Lab;

before(async () => {
  lab = await startLab({ id: ID, circuits, daemon: false });
});
after(() => stopLab(ID));

interface Rec {
  level: number;
  msg: string;
  code?: string;
  cmd?: string;
  mode?: string;
}

/** The JSON log records of a run's output (stderr and stdout together). */
function records(output: string): Rec[] {
  return output
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as Rec);
}

async function run(args: string[]) {
  const r = await runLabLibreQoS(lab, ['--direct', ...args]);
  return { ...r, logs: records(r.output) };
}

/** Structure of the shaping on both lab interfaces: every HTB class (id, parent, rate, ceil) and qdisc handle. */
async function kernelStructure(): Promise<string> {
  const out: string[] = [];
  for (const dev of [lab.tb.shaperIfs.customer, lab.tb.shaperIfs.internet]) {
    const classes = String((await execa('tc', ['-n', lab.tb.ns.shaper, 'class', 'show', 'dev', dev])).stdout);
    for (const l of classes.split('\n').filter((x) => x.startsWith('class htb'))) out.push(`${dev} ${l.replace(/ (burst|cburst) \S+/g, '')}`);
    const qdiscs = JSON.parse(String((await execa('tc', ['-n', lab.tb.ns.shaper, '-j', 'qdisc', 'show', 'dev', dev])).stdout) || '[]') as Array<{ kind: string; handle: string; parent?: string }>;
    for (const q of qdiscs) out.push(`${dev} qdisc ${q.kind} ${q.handle} ${q.parent ?? 'root'}`);
  }
  return out.sort().join('\n');
}

/** The pinned IP map (read directly from bpffs: no lqosd here) against the plan's mappings. */
async function mapVsPlan(plan: ShapingPlan): Promise<string[]> {
  const listed = await dataplaneMappingSink(lab.pinRoot).list();
  const inMap = new Map(listed.map((m) => [m.prefix, `${m.major}:${m.minor}`]));
  const planned = new Map(plan.mappings.map((m) => [m.prefix, `${m.major}:${m.minor}`]));
  const problems: string[] = [];
  for (const [p, c] of planned) if (inMap.get(p) !== c) problems.push(`IP map: ${p} is ${inMap.get(p) ?? 'missing'}, plan ${c}`);
  for (const p of inMap.keys()) if (!planned.has(p)) problems.push(`IP map: ${p} not in the plan`);
  return problems;
}

function circuitClass(plan: ShapingPlan, id: string): string {
  const c = plan.circuits.find((x) => x.id === id);
  assert.ok(c, `circuit ${id} is not in the applied plan`);
  return formatClassId(c.queue, c.minor);
}

test('--direct applies in this process: classes, leaf qdiscs and the pinned IP map read back equal the plan, at the CSV rates', async () => {
  const r = await run([]);
  assert.equal(r.code, 0, r.output);
  assert.ok(!existsSync(lab.busPath), 'an lqosd bus exists: this test must run without lqosd');
  assert.ok(r.logs.some((l) => /^applied \(full\)/.test(l.msg)), `no "applied (full)" record:\n${r.output}`);
  const plan = appliedPlan(lab);
  assert.equal(plan.circuits.length, circuits.length, 'every lab circuit is in the applied plan');
  for (const c of circuits) {
    const p = plan.circuits.find((x) => x.id === c.id)!;
    assert.ok(p, `circuit ${c.id} missing from the plan`);
    assert.equal(p.download.ceilMbps, c.down, `${c.id} download ceil`);
    assert.equal(p.upload.ceilMbps, c.up, `${c.id} upload ceil`);
  }
  assert.deepEqual(await kernelVsPlan(lab, plan, { maps: false }), [], 'kernel (tc read back) differs from the applied plan');
  assert.ok(plan.mappings.length >= circuits.length, `only ${plan.mappings.length} mappings planned`);
  assert.deepEqual(await mapVsPlan(plan), [], 'pinned IP map differs from the applied plan');
  // The records of what is applied: the run's tc batch and IP mappings, byte for byte.
  const state = join(lab.dir, 'state');
  for (const [applied, planned] of [['shaping/applied_tc.txt', 'debug/linux_tc.txt'], ['shaping/applied_mappings.txt', 'debug/ip_mappings.txt']]) {
    const text = readFileSync(join(state, planned!), 'utf8');
    assert.ok(text.length > 100, `${planned} holds the run's text`);
    assert.equal(readFileSync(join(state, applied!), 'utf8'), text, `${applied} must equal ${planned} of the same run`);
  }
});

test('--updateonly with nothing changed: the kernel is read back, no tc command changes it', async () => {
  const before = await kernelStructure();
  const r = await run(['--updateonly', '--debug']);
  assert.equal(r.code, 0, r.output);
  assert.equal(r.logs.filter((l) => l.msg === 'running tc batch').length, 0, `a tc batch ran:\n${r.output}`);
  const single = r.logs.filter((l) => l.msg === 'running tc').map((l) => l.cmd ?? '');
  assert.ok(single.some((c) => / class show dev /.test(c)), `the kernel's classes were not read back (no "tc class show"):\n${single.join('\n')}`);
  const writes = single.filter((c) => !/ show /.test(` ${c} `));
  assert.deepEqual(writes, [], 'tc commands other than reads ran');
  assert.ok(r.logs.some((l) => l.code === 'updateonly-unchanged'), `no "updateonly-unchanged" record:\n${r.output}`);
  assert.equal(await kernelStructure(), before, 'the kernel changed during an --updateonly run with nothing to do');
});

test('--updateonly after a class was deleted by hand: the drift is found, repaired (full rebuild) and reported', async () => {
  const plan = appliedPlan(lab);
  const classid = circuitClass(plan, 'lab-25');
  const dev = lab.tb.shaperIfs.customer;
  await execa('tc', ['-n', lab.tb.ns.shaper, 'class', 'del', 'dev', dev, 'classid', classid]);
  const drift = await kernelVsPlan(lab, plan, { maps: false });
  assert.ok(drift.includes(`${dev}: class ${classid} missing`), `deleting ${classid} by hand did not show: ${JSON.stringify(drift)}`);

  const r = await run(['--updateonly']);
  assert.equal(r.code, 0, r.output);
  const repaired = r.logs.find((l) => l.code === 'updateonly-drift-repaired');
  assert.ok(repaired, `no "updateonly-drift-repaired" record:\n${r.output}`);
  assert.match(repaired.msg, /full rebuild/);
  assert.ok(r.logs.some((l) => new RegExp(`kernel drifted from the plan \\(${dev}: class ${classid} missing`).test(l.msg)), `the drift is not named:\n${r.output}`);
  assert.deepEqual(await kernelVsPlan(lab, plan, { maps: false }), [], 'kernel still differs from the plan after --updateonly');
  const shown = String((await execa('tc', ['-n', lab.tb.ns.shaper, 'class', 'show', 'dev', dev, 'classid', classid])).stdout);
  assert.match(shown, new RegExp(`^class htb ${classid} .* ceil 25Mbit`, 'm'), `class ${classid} not back at 25 Mbit/s: ${shown}`);
});

test('--updateonly after an IP mapping was deleted by hand: the mapping is written back and reported', async () => {
  const plan = appliedPlan(lab);
  const victim = plan.mappings.find((m) => m.prefix === '10.99.1.12/32');
  assert.ok(victim, 'the plan has no mapping for lab-50 (10.99.1.12/32)');
  assert.equal(await dataplaneMappingSink(lab.pinRoot).remove([victim.prefix]), 1, 'the mapping was not in the pinned map');
  assert.deepEqual(await mapVsPlan(plan), [`IP map: ${victim.prefix} is missing, plan ${victim.major}:${victim.minor}`]);

  const r = await run(['--updateonly']);
  assert.equal(r.code, 0, r.output);
  const repaired = r.logs.find((l) => l.code === 'updateonly-drift-repaired');
  assert.ok(repaired, `no "updateonly-drift-repaired" record:\n${r.output}`);
  assert.match(repaired.msg, /IP mappings rewritten/);
  assert.deepEqual(await mapVsPlan(plan), [], 'pinned IP map still differs from the plan');
  assert.deepEqual(await kernelVsPlan(lab, plan, { maps: false }), []);
});

test('--updateonly with one rate changed applies just that change (incremental)', async () => {
  writeLabDevices(lab, circuits.map((c) => (c.id === 'lab-50' ? { ...c, down: 40 } : c)));
  const r = await run(['--updateonly']);
  assert.equal(r.code, 0, r.output);
  const applied = r.logs.find((l) => /^applied \(/.test(l.msg));
  assert.ok(applied, `no "applied" record:\n${r.output}`);
  assert.equal(applied.mode, 'incremental', applied.msg);
  assert.ok(!r.logs.some((l) => l.code === 'updateonly-unchanged' || l.code === 'updateonly-drift-repaired'), 'a changed plan was reported as unchanged');
  const plan = appliedPlan(lab);
  assert.equal(plan.circuits.find((c) => c.id === 'lab-50')?.download.ceilMbps, 40);
  assert.deepEqual(await kernelVsPlan(lab, plan, { maps: false }), []);
  assert.match(readFileSync(join(lab.dir, 'state', 'shaping', 'applied_plan.json'), 'utf8'), /lab-50/);
});
