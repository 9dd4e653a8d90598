/**
 * The run's large files are written from chunks (issue 15: a dry run of 50k circuits must not hold
 * queuingStructure.json, the tc batch or the mapping list as one string): the chunks must give
 * exactly the text of the one-string formulation, and writeFileAtomic must write them in order.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { generateDataset } from '../../bench/dataset.ts';
import { formatMapping, mappingTextChunks } from '../../lib/compile/mappings.ts';
import { compileTcBatch, tcBatchTextChunks } from '../../lib/compile/tc.ts';
import { queuingStructure, queuingStructureChunks } from '../../lib/shaping/queuingStructure.ts';
import { writeFileAtomic } from '../../lib/util/atomicFile.ts';
import { buildPlan, planConfig } from '../support/plan.ts';

// 1,200 circuits: more than one chunk of every kind (500 tc lines, 500 mappings, 50 circuits).
const ds = generateDataset({ circuits: 1200, seed: 3 });
const planned = buildPlan({ devices: ds.shapedDevicesCsv, network: ds.networkJson }, { config: planConfig({ queues: 4 }) });

test('queuingStructure.json from chunks is JSON.stringify(queuingStructure(plan), null, 1) byte for byte', () => {
  const { plan } = planned;
  assert.ok(plan.circuits.length === 1200 && plan.nodes.length > 30, `plan of ${plan.circuits.length} circuits, ${plan.nodes.length} nodes`);
  const whole = JSON.stringify(queuingStructure(plan), null, 1) + '\n';
  const chunks = [...queuingStructureChunks(plan)];
  assert.ok(chunks.length > 20, `${chunks.length} chunks`);
  assert.equal(chunks.join(''), whole);
  // A circuit with a key the fast path does not know, or its keys in another order: still exact.
  const [c0, c1, ...rest] = plan.circuits;
  const { id, ...others } = c1!;
  const odd = { ...plan, circuits: [{ ...c0!, extra: 'x' }, { ...others, id }, ...rest.slice(0, 60)] };
  assert.equal([...queuingStructureChunks(odd)].join(''), JSON.stringify(queuingStructure(odd), null, 1) + '\n');
  // Empty arrays (an observe plan of nothing) and one element.
  for (const p of [{ ...plan, nodes: [], circuits: [] }, { ...plan, nodes: plan.nodes.slice(0, 1), circuits: plan.circuits.slice(0, 1) }]) {
    assert.equal([...queuingStructureChunks(p)].join(''), JSON.stringify(queuingStructure(p), null, 1) + '\n');
  }
});

test('the tc batch (compiled as it is written) and the mapping list from chunks equal their joined text', () => {
  const { tcLines, mappings } = planned;
  assert.ok(tcLines.length > 1000 && mappings.length > 1000, `${tcLines.length} tc lines, ${mappings.length} mappings`);
  const count = { lines: 0 };
  const tcChunks = [...tcBatchTextChunks(planned.plan, {}, count)];
  assert.ok(tcChunks.length > 2, `${tcChunks.length} tc chunks`);
  assert.equal(tcChunks.join(''), tcLines.join('\n') + '\n');
  assert.equal(count.lines, tcLines.length);
  const observe = { ...planned.plan, mode: 'observe' as const };
  assert.equal([...tcBatchTextChunks(observe)].join(''), compileTcBatch(observe).join('\n') + '\n');
  assert.equal([...mappingTextChunks(mappings)].join(''), mappings.map(formatMapping).join('\n') + '\n');
  assert.equal([...mappingTextChunks([])].join(''), '');
});

test('writeFileAtomic writes chunks in order, small ones gathered and large ones whole', () => {
  const dir = mkdtempSync(join(tmpdir(), 'lqos-chunks-'));
  try {
    const parts = ['a', 'b'.repeat(70_000), 'c', 'é€', 'd'.repeat(200_000), ...Array.from({ length: 3000 }, (_, i) => `${i},`)];
    writeFileAtomic(join(dir, 'f'), parts.values());
    assert.equal(readFileSync(join(dir, 'f'), 'utf8'), parts.join(''));
    writeFileAtomic(join(dir, 'empty'), [].values());
    assert.equal(readFileSync(join(dir, 'empty'), 'utf8'), '');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
