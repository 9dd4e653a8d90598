// test-gate: shared (CPU only; see test/support/gate.ts)
/**
 * Issue 19 item 4: the apply engine's failure paths, on a simulated tc kernel (test/support/simKernel.ts,
 * reached through the engine's `wrap` seam or a `tc` first in PATH) and an in-memory IP map:
 *  - an incremental apply whose tc batch fails at line N falls back to a full rebuild, and the
 *    kernel and map end up holding exactly the new plan;
 *  - a failing full rebuild throws naming the failing line;
 *  - the shaping run (lib/shaping/run.ts) with a failed apply exits 4 and puts the last applied
 *    tree and mappings back (kernel state compared with the previous plan applied from scratch),
 *    both when a structural change's rebuild fails and when the incremental apply and then its
 *    fallback fail; when the restore fails too, exit 4 names that and no plan is recorded as in force.
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { diffPlans } from '../../lib/apply/diff.ts';
import { applyPlan } from '../../lib/apply/engine.ts';
import { loadAppliedPlan } from '../../lib/apply/appliedPlan.ts';
import { MemoryMappingSink } from '../../lib/apply/mappingSink.ts';
import { TcBatchError } from '../../lib/apply/tcBatch.ts';
import { compileTcBatch } from '../../lib/compile/tc.ts';
import { statePaths } from '../../lib/config/paths.ts';
import type { ShapingPlan } from '../../lib/model.ts';
import { EXIT } from '../../lib/shaping/exitCodes.ts';
import { capturingLogger, quiet } from '../support/log.ts';
import { buildPlan } from '../support/plan.ts';
import { SimKernel, runShapingOnSim } from '../support/simKernel.ts';
import { tempDir } from '../support/workspace.ts';

const DEVS = ['eth0', 'eth1'];
const MEM = { available: 64 * 1024 ** 3, total: 64 * 1024 ** 3 };
const HEADER = 'Circuit ID,Circuit Name,Device ID,Device Name,Parent Node,MAC,IPv4,IPv6,Download Min Mbps,Upload Min Mbps,Download Max Mbps,Upload Max Mbps,Comment';
const ROWS = ['c1,C1,d1,D1,AP_1,,100.64.0.1,,1,1,20,5,', 'c2,C2,d2,D2,Site_B,,100.64.0.2,2001:db8::/56,1,1,30,6,', 'c3,C3,d3,D3,AP_1,,100.64.0.3,,1,1,40,8,'];
/** P2 (incremental from P1): c1 faster, c2 gone, c4 new under Site_B. */
const ROWS2 = ['c1,C1,d1,D1,AP_1,,100.64.0.1,,1,1,25,5,', 'c3,C3,d3,D3,AP_1,,100.64.0.3,,1,1,40,8,', 'c4,C4,d4,D4,Site_B,,100.64.0.4,,1,1,50,10,'];
const NET = {
  Site_A: { downloadBandwidthMbps: 500, uploadBandwidthMbps: 200, children: { AP_1: { downloadBandwidthMbps: 200, uploadBandwidthMbps: 100 } } },
  Site_B: { downloadBandwidthMbps: 300, uploadBandwidthMbps: 100 },
};
/** A structural change (a node added): a full rebuild. */
const NET3 = { ...NET, Site_C: { downloadBandwidthMbps: 100, uploadBandwidthMbps: 50 } };
const inputs = (rows: string[], net: object) => ({ devices: [HEADER, ...rows].join('\n') + '\n', network: JSON.stringify(net) });

const p1 = buildPlan(inputs(ROWS, NET));
const P1 = p1.plan;
const P2 = buildPlan(inputs(ROWS2, NET), { previousState: p1.state }).plan;

const dir = tempDir('lq-engine-');
after(() => rmSync(dir, { recursive: true, force: true }));

/** The simulated kernel state of `plan` applied from scratch (the reference). */
function reference(plan: ShapingPlan) {
  const k = new SimKernel(DEVS);
  k.load(compileTcBatch(plan));
  return k.snapshot();
}
const mapped = async (sink: MemoryMappingSink) => (await sink.list()).map((m) => `${m.prefix} ${m.cpu} ${m.major}:${m.minor}`);
const planned = (plan: ShapingPlan) => plan.mappings.map((m) => `${m.prefix} ${m.cpu} ${m.major}:${m.minor}`).sort();

/** A simulated kernel and map holding P1 (a full apply through the engine). */
async function withP1(name: string): Promise<{ k: SimKernel; sink: MemoryMappingSink }> {
  const k = new SimKernel(DEVS);
  await k.start(join(dir, name));
  const sink = new MemoryMappingSink();
  const r = await applyPlan({ applied: undefined, next: P1, sink, log: quiet, wrap: k.wrap, memInfo: MEM });
  assert.equal(r.mode, 'full');
  assert.deepEqual(k.snapshot(), reference(P1), 'setup: the engine\'s full apply equals P1 applied from scratch');
  assert.deepEqual(await mapped(sink), planned(P1));
  return { k, sink };
}

test('the fixture: P1 → P2 is incremental with 7 tc lines (P2 ≠ P1 in the kernel)', () => {
  const d = diffPlans(P1, P2);
  assert.equal(d.mode, 'incremental');
  assert.equal(d.tc.length, 7, d.tc.join('\n'));
  assert.notDeepEqual(reference(P1), reference(P2));
});

test('an incremental apply failing at tc line 3 falls back to a full rebuild: the kernel and the map hold exactly P2', async () => {
  const { k, sink } = await withP1('fallback');
  try {
    const ops = diffPlans(P1, P2);
    const firstBatch = k.batches.length;
    k.failAt = new Set([countMutations(k) + 3]);
    const { log, records } = capturingLogger('debug');
    const r = await applyPlan({ applied: P1, next: P2, sink, log, wrap: k.wrap, memInfo: MEM }).catch((e: Error) =>
      assert.fail(`a failed incremental tc batch must fall back to a full rebuild, but applyPlan threw: ${e.message.split('\n')[0]}`),
    );
    assert.equal(r.mode, 'full', `the report says the apply ended as a full rebuild: ${JSON.stringify(r)}`);
    assert.equal(r.escalated, `incremental apply failed (tc failed at batch line 3: ${ops.tc[2]}); rebuilding the whole tree`);
    assert.ok(records.some((x) => x.level === 40 && x.msg === r.escalated), 'the fallback is warned about');
    const batches = k.batches.slice(firstBatch);
    assert.deepEqual(batches[0]!.slice(0, ops.tc.length), ops.tc, 'first the incremental batch');
    assert.ok(batches.length >= 2, `a second (full rebuild) batch ran after the failure; batches: ${JSON.stringify(batches)}`);
    assert.deepEqual(batches[1]!.slice(0, 2), ['qdisc del dev eth1 parent 7fff:1', 'qdisc del dev eth1 parent 7fff:2'], 'the rebuild drops each HTB under the kept mq root');
    assert.deepEqual(k.snapshot(), reference(P2), 'the kernel holds P2 exactly');
    assert.deepEqual(await mapped(sink), planned(P2), 'the map holds P2\'s mappings exactly');
  } finally {
    await k.stop();
  }
});

test('a full rebuild failing at tc line 5 throws, naming the line (the caller restores)', async () => {
  const { k, sink } = await withP1('fullfail');
  try {
    const P3 = buildPlan(inputs(ROWS, NET3), { previousState: p1.state }).plan;
    assert.equal(diffPlans(P1, P3).mode, 'full');
    k.failAt = new Set([countMutations(k) + 5]);
    const err = await applyPlan({ applied: P1, next: P3, sink, log: quiet, wrap: k.wrap, memInfo: MEM }).then(() => undefined, (e: unknown) => e);
    assert.ok(err instanceof TcBatchError, `a TcBatchError, got ${String(err)}`);
    assert.equal(err.lineNumber, 5);
    assert.match(err.message, /^tc failed at batch line 5: \S/);
    assert.equal(err.line, k.batches.at(-1)![4]);
    assert.notDeepEqual(k.snapshot(), reference(P1), 'the kernel was left half changed: only a restore puts P1 back');
  } finally {
    await k.stop();
  }
});

/** Mutating tc lines the simulation has run so far (failAt counts these). */
const countMutations = (k: SimKernel) => k.mutations;

/** runShaping with the simulated kernel's `tc` first in PATH. */
function run(k: SimKernel, sink: MemoryMappingSink, paths: ReturnType<typeof statePaths>, rows: string[], net: object) {
  const t = inputs(rows, net);
  return runShapingOnSim(k, {
    inputs: { devicesFile: 'ShapedDevices.csv', networkFile: 'network.json', devicesText: t.devices, networkText: t.network },
    paths,
    // P2 removes 1 of 3 circuits: over the mass-removal guard's 20 %.
    force: true,
    sink: async () => sink,
  });
}

const errors = (records: { level: number; msg: string }[]) => records.filter((x) => x.level >= 50).map((x) => x.msg);

/** A shaping run applying P1's inputs for real (exit 0); returns the plan in force. */
async function runP1(k: SimKernel, sink: MemoryMappingSink, paths: ReturnType<typeof statePaths>): Promise<ShapingPlan> {
  const r = await run(k, sink, paths, ROWS, NET);
  assert.equal(r.code, EXIT.ok, errors(r.records).join('\n'));
  const inForce = loadAppliedPlan(paths.appliedPlan)!;
  assert.ok(inForce, 'P1 recorded as applied');
  assert.deepEqual(k.snapshot(), reference(inForce));
  return inForce;
}

async function shapingCase(name: string, body: (k: SimKernel, sink: MemoryMappingSink, paths: ReturnType<typeof statePaths>) => Promise<void>) {
  const k = new SimKernel(DEVS);
  await k.start(join(dir, name));
  try {
    await body(k, new MemoryMappingSink(), statePaths(join(dir, name, 'state')));
  } finally {
    await k.stop();
  }
}

test('shaping run: a structural change whose rebuild fails at tc line 6 → exit 4, the kernel, map and applied plan are P1 again', async () => {
  await shapingCase('run-full', async (k, sink, paths) => {
    const inForce = await runP1(k, sink, paths);
    k.failAt = new Set([countMutations(k) + 6]);
    const r = await run(k, sink, paths, ROWS, NET3);
    assert.equal(r.code, EXIT.apply, `exit 4; errors: ${errors(r.records).join('\n')}`);
    assert.ok(errors(r.records).some((m) => /^applying failed: tc failed at batch line 6: \S/.test(m)), errors(r.records).join('\n'));
    assert.deepEqual(k.snapshot(), reference(inForce), 'after exit 4 the kernel must hold the last applied tree (P1) exactly: the rollback did not restore it');
    assert.deepEqual(await mapped(sink), planned(inForce), 'the map holds P1\'s mappings exactly');
    assert.ok(r.records.some((x) => x.level === 40 && /^restored the last applied shaping/.test(x.msg)), 'the restore is reported');
    assert.deepEqual(loadAppliedPlan(paths.appliedPlan)?.nodes.map((n) => n.path), inForce.nodes.map((n) => n.path), 'P1 is recorded as in force');
  });
});

test('shaping run: the incremental apply fails, then its full-rebuild fallback fails → exit 4, P1 restored', async () => {
  await shapingCase('run-incr', async (k, sink, paths) => {
    const inForce = await runP1(k, sink, paths);
    const base = countMutations(k);
    // Line 2 of the incremental batch, then line 4 of the fallback rebuild that follows it.
    k.failAt = new Set([base + 2, base + 2 + 4]);
    const r = await run(k, sink, paths, ROWS2, NET);
    assert.equal(r.code, EXIT.apply, `exit 4; errors: ${errors(r.records).join('\n')}`);
    assert.ok(r.records.some((x) => x.level === 40 && /^incremental apply failed \(tc failed at batch line 2: /.test(x.msg)), 'the fallback was tried');
    assert.ok(errors(r.records).some((m) => /^applying failed: tc failed at batch line 4: /.test(m)), errors(r.records).join('\n'));
    assert.deepEqual(k.snapshot(), reference(inForce), 'after exit 4 the kernel must hold the last applied tree (P1) exactly: the rollback did not restore it');
    assert.deepEqual(await mapped(sink), planned(inForce), 'the map holds P1\'s mappings exactly');
    assert.deepEqual(loadAppliedPlan(paths.appliedPlan)?.circuits.map((c) => c.id), inForce.circuits.map((c) => c.id), 'P1 is recorded as in force');
  });
});

test('shaping run: the restore fails too → exit 4, the error says so, and no plan is recorded as in force', async () => {
  await shapingCase('run-norestore', async (k, sink, paths) => {
    await runP1(k, sink, paths);
    const base = countMutations(k);
    // The rebuild fails at its line 6, then the restore's rebuild at its line 5.
    k.failAt = new Set([base + 6, base + 6 + 5]);
    const r = await run(k, sink, paths, ROWS, NET3);
    assert.equal(r.code, EXIT.apply);
    assert.ok(errors(r.records).some((m) => /^could not restore the last applied shaping: tc failed at batch line 5: /.test(m)), errors(r.records).join('\n'));
    assert.equal(existsSync(paths.appliedPlan), false, 'the kernel holds neither plan: none is recorded, so the next run rebuilds in full');
  });
});

