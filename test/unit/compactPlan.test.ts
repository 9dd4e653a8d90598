// test-gate: shared (CPU only; see test/support/gate.ts)
/**
 * Issue 15 (lqosd's footprint): the compact form lqosd holds the plan in force in
 * (lib/apply/compactPlan.ts) is the same plan — the same applied_plan.json text, no difference for
 * the diff, the same fields read back (devices, leaves, hashes, mappings, nodes) — and a fraction
 * of the heap of the planner's objects.
 */
import { test } from 'node:test';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadAppliedPlanCompact, parsePlan, rememberAppliedPlan, saveAppliedPlan, serializePlan } from '../../lib/apply/appliedPlan.ts';
import { compactPlan, isCompactPlan } from '../../lib/apply/compactPlan.ts';
import { diffPlans } from '../../lib/apply/diff.ts';
import { compileMappings } from '../../lib/compile/mappings.ts';
import { compileTcBatch } from '../../lib/compile/tc.ts';
import type { ShapingPlan } from '../../lib/model.ts';
import { generateDataset } from '../../bench/dataset.ts';
import { quiet } from '../support/log.ts';
import { buildPlan } from '../support/plan.ts';

const ds = generateDataset({ circuits: 2000, seed: 7 });
const plain = buildPlan({ devices: ds.shapedDevicesCsv, network: ds.networkJson }).plan;

test('the compact plan serializes to the same applied_plan.json text, and an old record loads into it', () => {
  assert.ok(plain.circuits.length >= 2000 && plain.mappings.length > plain.circuits.length, 'fixture: circuits with several mappings each');
  const c = compactPlan(plain);
  assert.ok(isCompactPlan(c) && !isCompactPlan(plain));
  const text = serializePlan(plain);
  assert.equal(serializePlan(c), text, 'serializePlan(compactPlan(p)) must equal serializePlan(p)');
  // A record written before (a plain plan) loads, compacts, and writes back unchanged.
  assert.equal(serializePlan(compactPlan(parsePlan(text))), text);
  assert.equal(compactPlan(c), c, 'compacting a compact plan returns it');
});

test('the compact plan reads back every field: circuits, devices, leaves, hashes, nodes, mappings', () => {
  const c = compactPlan(plain);
  assert.equal(c.circuits.length, plain.circuits.length);
  const withIpv6 = plain.circuits.findIndex((x) => x.devices.some((d) => d.ipv6.length > 0));
  const withLeaf = plain.circuits.findIndex((x) => x.download.leaf !== null);
  const multi = plain.circuits.findIndex((x) => x.devices.length > 1);
  assert.ok(withIpv6 >= 0 && withLeaf >= 0 && multi >= 0, 'fixture: circuits with IPv6, with a leaf and with several devices');
  for (const i of [0, withIpv6, withLeaf, multi, plain.circuits.length - 1]) {
    const a = plain.circuits[i]!;
    const b = c.circuits[i]!;
    assert.deepEqual(
      { id: b.id, name: b.name, parentPath: b.parentPath, queue: b.queue, minor: b.minor, parentMinor: b.parentMinor, download: b.download, upload: b.upload, devices: b.devices, circuitHash: b.circuitHash },
      { id: a.id, name: a.name, parentPath: a.parentPath, queue: a.queue, minor: a.minor, parentMinor: a.parentMinor, download: a.download, upload: a.upload, devices: a.devices, circuitHash: a.circuitHash },
      `circuit ${a.id} read back from the compact plan`,
    );
  }
  assert.deepEqual(c.mappings, plain.mappings, 'the mapping list rebuilt from the compact plan');
  assert.deepEqual(c.nodes, plain.nodes);
  assert.deepEqual(compileTcBatch(c), compileTcBatch(plain), 'the same tc commands compile from both');
  assert.deepEqual(compileMappings(c), compileMappings(plain));
});

test('diffing against the compact plan in force gives the same operations as against the plain one', () => {
  const c = compactPlan(plain);
  assert.equal(diffPlans(c, plain).mode, 'none');
  assert.equal(diffPlans(plain, c).mode, 'none');
  // One circuit slower, one gone: the same incremental operations from the compact plan in force.
  const next: ShapingPlan = {
    ...plain,
    circuits: plain.circuits.slice(1).map((x, i) => (i === 0 ? { ...x, download: { ...x.download, ceilMbps: x.download.ceilMbps - 1 } } : x)),
    mappings: plain.mappings.filter((m) => m.circuitId !== plain.circuits[0]!.id),
  };
  const fromPlain = diffPlans(plain, next);
  assert.equal(fromPlain.mode, 'incremental');
  assert.ok(fromPlain.tc.length > 0 && fromPlain.mapDelete.length > 0, 'fixture: tc lines and mapping deletions');
  assert.deepEqual(diffPlans(c, next), fromPlain);
});

test('a hand-made plan whose mappings are not its devices\' prefixes keeps its mapping list as given', () => {
  const odd: ShapingPlan = { ...plain, mappings: [{ ...plain.mappings[0]!, prefix: '192.0.2.1/32' }, ...plain.mappings.slice(1)] };
  const c = compactPlan(odd);
  assert.deepEqual(c.mappings, odd.mappings);
  assert.equal(serializePlan(c), serializePlan(odd));
});

test('mappings in another order than the devices\' prefixes, and class numbers beyond 16 bits, read back as given', () => {
  const reordered: ShapingPlan = { ...plain, mappings: [...plain.mappings].reverse() };
  const c = compactPlan(reordered);
  assert.deepEqual(c.mappings, reordered.mappings, 'the mapping list in its own order');
  assert.equal(serializePlan(c), serializePlan(reordered));
  const wide: ShapingPlan = { ...plain, mappings: plain.mappings.map((m, i) => (i === 3 ? { ...m, minor: 0x10000 } : m)) };
  assert.deepEqual(compactPlan(wide).mappings, wide.mappings, 'a minor of 0x10000 is kept, not cut to 16 bits');
});

test('the compact plan takes a fraction of the heap of the planner\'s objects', () => {
  setFlagsFromString('--expose-gc');
  const gc = runInNewContext('gc') as () => void;
  const heap = () => (gc(), gc(), process.memoryUsage().heapUsed);
  const big = generateDataset({ circuits: 10000, seed: 7 });
  const h0 = heap();
  let p: ShapingPlan | undefined = buildPlan({ devices: big.shapedDevicesCsv, network: big.networkJson }).plan;
  const h1 = heap();
  const c = compactPlan(p);
  p = undefined;
  const h2 = heap();
  assert.ok(c.circuits.length > 0);
  assert.ok(h2 - h0 < (h1 - h0) / 5, `compact plan ${((h2 - h0) / 2 ** 20).toFixed(1)} MB, planner's plan ${((h1 - h0) / 2 ** 20).toFixed(1)} MB: expected under a fifth (100k circuits: about 24 MB instead of 183 MB)`);
});

test('the plan in force is read from applied_plan.json once, and again whenever another process rewrote it', () => {
  const dir = mkdtempSync(join(tmpdir(), 'lq-compact-'));
  try {
    const path = join(dir, 'applied_plan.json');
    saveAppliedPlan(path, plain);
    const first = loadAppliedPlanCompact(path, quiet);
    assert.ok(first && isCompactPlan(first), 'loaded compact');
    assert.equal(serializePlan(first), serializePlan(plain));
    assert.equal(loadAppliedPlanCompact(path, quiet), first, 'the same file: not parsed again');
    // Another writer (LibreQoS --direct) records a smaller plan: read afresh.
    const smaller: ShapingPlan = { ...plain, circuits: plain.circuits.slice(1), mappings: plain.mappings.filter((m) => m.circuitId !== plain.circuits[0]!.id) };
    saveAppliedPlan(path, smaller);
    const second = loadAppliedPlanCompact(path, quiet);
    assert.notEqual(second, first, 'a file rewritten by another process must be read again, not the remembered plan');
    assert.equal(second!.circuits.length, plain.circuits.length - 1, 'the rewritten file is what is in force');
    // This process commits a plan: remembered, so the next load returns it without reading.
    saveAppliedPlan(path, plain);
    rememberAppliedPlan(path, plain);
    assert.equal(loadAppliedPlanCompact(path, quiet), compactPlan(plain));
    // A damaged file: nothing in force (set aside as before).
    writeFileSync(path, '{"nodes": [');
    assert.equal(loadAppliedPlanCompact(path, quiet), undefined);
    rmSync(path, { force: true });
    assert.equal(loadAppliedPlanCompact(path, quiet), undefined, 'no file: nothing in force');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
