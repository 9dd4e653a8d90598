/**
 * Issue 20 item 1 and 5 in the apply engine: a plan whose IP mappings exceed the dataplane's
 * capacity is refused before any tc command or map write (capacity injected small: the engine
 * default is MAX_MAPPINGS, or the attached map's own size); observe mode installs the plan's
 * mappings with class 0 (counted, unshaped) and still compiles no HTB tree.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { pino } from 'pino';
import { MAX_MAPPINGS } from '../../dataplane/abi.ts';
import { installedMappingCount, mappingCapacityVerdict } from '../../lib/apply/capacity.ts';
import { diffPlans } from '../../lib/apply/diff.ts';
import { applyPlan, MappingCapacityError } from '../../lib/apply/engine.ts';
import { MemoryMappingSink } from '../../lib/apply/mappingSink.ts';
import { compileMappings, renderMappings } from '../../lib/compile/mappings.ts';
import { compileTcBatch } from '../../lib/compile/tc.ts';
import type { Circuit, IpMapping } from '../../lib/model.ts';
import { planShaping } from '../../lib/plan/planner.ts';
import { planConfig } from '../support/plan.ts';
import { testDir } from '../support/workspace.ts';
import { saveAppliedPlan } from '../../lib/apply/appliedPlan.ts';
import { interfacesOf, parseConfigText } from '../../lib/config/load.ts';
import { statePaths } from '../../lib/config/paths.ts';
import { EXIT } from '../../lib/shaping/exitCodes.ts';
import { runShaping } from '../../lib/shaping/run.ts';
import { capturingLogger } from '../support/log.ts';

const log = pino({ level: 'silent' });

/** `n` circuits with one /32 each (circuit 0 also gets an IPv6 /56 when `v6`). */
function circuits(n: number, v6 = false): Circuit[] {
  return Array.from({ length: n }, (_, i) => ({
    id: `c${i}`, name: `c${i}`, parentNode: '', parentNodeId: '', anchorNodeId: '',
    downloadMinMbps: 1, uploadMinMbps: 1, downloadMaxMbps: 50, uploadMaxMbps: 10, comment: '',
    devices: [{ id: `d${i}`, name: '', mac: '', ipv4: [`100.64.0.${i + 1}/32`], ipv6: v6 && i === 0 ? ['2001:db8:1::/56'] : [], comment: '', line: i + 2 }],
    line: i + 2,
  }));
}
const plan = (n: number, queueMode: 'shape' | 'observe' = 'shape', v6 = false) =>
  planShaping({ inputs: { network: [], circuits: circuits(n, v6) }, config: planConfig({ queueMode, interfaces: { download: 'lqcap-none0', upload: 'lqcap-none1' } }) }).plan;

/** A memory sink that records every write, optionally reporting a capacity. */
class RecordingSink extends MemoryMappingSink {
  writes: string[] = [];
  capacity?: () => Promise<number>;
  constructor(cap?: number) {
    super();
    if (cap !== undefined) this.capacity = () => Promise.resolve(cap);
  }
  override update(m: IpMapping[]): Promise<number> {
    this.writes.push(`update ${m.length}`);
    return super.update(m);
  }
  override remove(p: string[]): Promise<number> {
    this.writes.push(`remove ${p.length}`);
    return super.remove(p);
  }
}

/** A tc "wrapper" that records each invocation to `file` (and runs nothing). */
const recordingWrap = (file: string, rc = 0) => ['/bin/sh', '-c', `echo "$*" >> ${file}; exit ${rc}`, 'sh'];

test('the capacity verdict counts distinct installed prefixes and says what to do', () => {
  const p = plan(5, 'shape', true);
  assert.equal(installedMappingCount(p), 6, '5 /32s + one /56');
  assert.equal(mappingCapacityVerdict(p, 6).ok, true, 'exactly full fits');
  const v = mappingCapacityVerdict(p, 5);
  assert.equal(v.ok, false);
  assert.match(v.message, /the plan has 6 IP mappings .* holds at most 5 .*1 too many; nothing was changed/);
  assert.match(v.message, /Split the network over more shapers/);
  assert.match(v.message, /aggregate prefixes/);
  assert.equal(MAX_MAPPINGS, 524288, 'the LPM size of lqos_abi.h');
  assert.match(mappingCapacityVerdict(p, MAX_MAPPINGS).message, /6 of 524,288/);
});

test('over capacity (injected): nothing applied — no tc run, no map write, the mappings in force stay', async (t) => {
  const dir = testDir(t, 'lqcap-');
  const calls = join(dir, 'tc-calls');
  const applied = plan(3);
  const sink = new RecordingSink();
  await sink.update(compileMappings(applied));
  sink.writes = [];
  const before = await sink.list();
  const err = await applyPlan({ applied, next: plan(5), sink, log, wrap: recordingWrap(calls), mappingCapacity: 4, memInfo: { available: 64 * 1024 ** 3, total: 64 * 1024 ** 3 } }).then(
    () => undefined,
    (e: unknown) => e,
  );
  assert.ok(err instanceof MappingCapacityError, `refused with MappingCapacityError, got ${String(err)}`);
  assert.equal(err.mappings, 5);
  assert.equal(err.capacity, 4);
  assert.match(err.message, /5 IP mappings .* at most 4/);
  assert.equal(existsSync(calls), false, 'tc was never run');
  assert.deepEqual(sink.writes, [], 'no map write');
  assert.deepEqual(await sink.list(), before);
});

test('the capacity the sink reports (the attached map) is used when none is given', async (t) => {
  const dir = testDir(t, 'lqcap-');
  const calls = join(dir, 'tc-calls');
  const sink = new RecordingSink(2);
  await assert.rejects(applyPlan({ applied: undefined, next: plan(3), sink, log, wrap: recordingWrap(calls) }), /3 IP mappings .* at most 2/);
  assert.equal(existsSync(calls), false);
  assert.deepEqual(sink.writes, []);
});

test('within capacity the same plan is applied (tc run, mappings written)', async (t) => {
  const dir = testDir(t, 'lqcap-');
  const calls = join(dir, 'tc-calls');
  const sink = new RecordingSink(5);
  // tc is a recorder here, so the read-back cannot match: skip the verification.
  const r = await applyPlan({ applied: undefined, next: plan(5), sink, log, wrap: recordingWrap(calls), skipVerify: true });
  assert.equal(r.mode, 'full');
  assert.match(readFileSync(calls, 'utf8'), /tc -batch -/);
  assert.equal((await sink.list()).length, 5);
});

test('observe mode: the plan\'s mappings with class 0 (cpu 0, 0:0); no HTB tree; dry-run rendering says so', async (t) => {
  const shape = plan(3, 'shape', true);
  const observe = plan(3, 'observe', true);
  assert.equal(observe.mode, 'observe');
  const m = compileMappings(observe);
  assert.deepEqual(m.map((x) => x.prefix), shape.mappings.map((x) => x.prefix), 'same prefixes as when shaping');
  for (const x of m) assert.deepEqual([x.cpu, x.major, x.minor], [0, 0, 0]);
  assert.equal(m[0]!.circuitHash, shape.mappings[0]!.circuitHash, 'circuit identity kept');
  assert.match(renderMappings(m), /^100\.64\.0\.1\/32 cpu 0 class 0:0 circuit "c0"/m);
  assert.deepEqual(compileMappings(shape), shape.mappings, 'shaping mode unchanged');
  assert.deepEqual(compileTcBatch(observe), ['qdisc replace dev lqcap-none0 root handle 7fff: mq', 'qdisc replace dev lqcap-none1 root handle 7fff: mq'], 'no HTB classes');

  // A full apply installs them; switching to shaping rewrites them with the real classes, and back.
  const dir = testDir(t, 'lqcap-');
  const sink = new RecordingSink();
  const wrap = recordingWrap(join(dir, 'tc-calls'));
  await applyPlan({ applied: undefined, next: observe, sink, log, wrap });
  const installed = await sink.list();
  assert.equal(installed.length, 4);
  for (const e of installed) assert.deepEqual([e.cpu, e.major, e.minor], [0, 0, 0]);
  const toShape = diffPlans(observe, shape);
  assert.equal(toShape.mode, 'full');
  assert.deepEqual(toShape.mapUpsert.map((x) => [x.prefix, x.major]).sort(), shape.mappings.map((x) => [x.prefix, x.major]).sort());
  const back = diffPlans(shape, observe);
  assert.ok(back.mapUpsert.every((x) => x.major === 0 && x.minor === 0 && x.cpu === 0));
  assert.equal(back.mapUpsert.length, 4);
  // The same observe plan again: nothing to do (the repair finds every prefix in place).
  const again = await applyPlan({ applied: observe, next: observe, sink, log, wrap });
  assert.equal(again.mode, 'none');
  assert.equal(again.mappingsWritten, 0);
});

test('a real run (lqosd, --direct) above the attached map\'s capacity: exit 3, the plan in force and its records stay, no map write', async (t) => {
  const paths = statePaths(testDir(t, 'lqcap-run-'));
  // Interfaces that do not exist: were the kernel touched, tc would fail (exit 4), not exit 3.
  const config = parseConfigText('[bridge]\nto_internet = "lqcap-none0"\nto_network = "lqcap-none1"\n', 'lqos.conf').config;
  const inForce = plan(2);
  saveAppliedPlan(paths.appliedPlan, inForce);
  const before = readFileSync(paths.appliedPlan, 'utf8');
  const sink = new RecordingSink(3);
  const header = 'Circuit ID,Circuit Name,Device ID,Device Name,Parent Node,MAC,IPv4,IPv6,Download Min Mbps,Upload Min Mbps,Download Max Mbps,Upload Max Mbps,Comment';
  const rows = Array.from({ length: 4 }, (_, i) => `c${i},C ${i},d${i},R ${i},,,100.64.0.${i + 1},,1,1,50,10,`);
  const { log, records } = capturingLogger();
  const r = await runShaping({
    config,
    ifaces: interfacesOf(config)!,
    queues: 2,
    inputs: { devicesFile: 'ShapedDevices.csv', networkFile: 'network.json', devicesText: [header, ...rows].join('\n') + '\n', networkText: '{}\n' },
    paths,
    log,
    dryRun: false,
    updateonly: false,
    verbose: false,
    sink: async () => sink,
  });
  assert.equal(r.code, EXIT.plan, JSON.stringify(records.filter((x) => x.level >= 50)));
  const err = records.find((x) => x.level >= 50 && x.code === 'mapping-capacity');
  assert.ok(err, JSON.stringify(records.filter((x) => x.level >= 40)));
  assert.match(err.msg, /the plan has 4 IP mappings .* at most 3 .*nothing was changed/);
  assert.deepEqual([err.mappings, err.capacity], [4, 3]);
  assert.ok(!records.some((x) => /tc failed|applying failed|restored/.test(x.msg)), 'no tc ran, nothing to restore');
  assert.deepEqual(sink.writes, [], 'no map write');
  assert.equal(readFileSync(paths.appliedPlan, 'utf8'), before, 'the plan in force is unchanged');
  assert.equal(existsSync(paths.lastAppliedMappings), false, 'no record of the refused plan');
});
