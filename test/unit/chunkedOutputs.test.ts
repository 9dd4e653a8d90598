// test-gate: shared (CPU only; see test/support/gate.ts)
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

/** Asserts the file's layout: top-level keys indented by one space, each node and circuit compact on one line. */
function assertLayout(text: string, plan: { nodes: unknown[]; circuits: unknown[] }): void {
  const lines = text.split('\n');
  assert.equal(lines.pop(), '', 'ends with a newline');
  const elementLines = lines.filter((l) => l.startsWith('  {'));
  assert.equal(elementLines.length, plan.nodes.length + plan.circuits.length, 'one line per node and circuit');
  for (const l of elementLines) JSON.parse(l.slice(2).replace(/,$/, '')); // each line is a whole element
  assert.ok(lines.every((l) => l.length < 2000 || l.startsWith('  {')), 'only elements are long lines');
}

test('queuingStructure.json from chunks is queuingStructure(plan), one node or circuit per line', () => {
  const { plan } = planned;
  assert.ok(plan.circuits.length === 1200 && plan.nodes.length > 30, `plan of ${plan.circuits.length} circuits, ${plan.nodes.length} nodes`);
  const chunks = [...queuingStructureChunks(plan)];
  assert.ok(chunks.length > 20, `${chunks.length} chunks`);
  const text = chunks.join('');
  const whole = queuingStructure(plan) as { circuits: unknown[] };
  // The same keys in the same order as queuingStructure() (a deepEqual would not see the order).
  assert.equal(JSON.stringify(JSON.parse(text)), JSON.stringify(whole));
  assertLayout(text, plan);
  assert.match(text, /^\{\n "interfaces": \{\n/);
  assert.ok(text.includes(`\n  ${JSON.stringify(whole.circuits[7])},\n`), 'the 8th circuit is one compact line');
  // A circuit with a key the fast path does not know, or its keys in another order: still exact.
  const [c0, c1, ...rest] = plan.circuits;
  const { id, ...others } = c1!;
  const odd = { ...plan, circuits: [{ ...c0!, extra: 'x' }, { ...others, id }, ...rest.slice(0, 60)] };
  const oddText = [...queuingStructureChunks(odd)].join('');
  assert.equal(JSON.stringify(JSON.parse(oddText)), JSON.stringify(queuingStructure(odd)));
  assertLayout(oddText, odd);
  // Empty arrays (an observe plan of nothing) and one element.
  for (const p of [{ ...plan, nodes: [], circuits: [] }, { ...plan, nodes: plan.nodes.slice(0, 1), circuits: plan.circuits.slice(0, 1) }]) {
    const t = [...queuingStructureChunks(p)].join('');
    assert.equal(JSON.stringify(JSON.parse(t)), JSON.stringify(queuingStructure(p)), 'same keys in the same order');
    assertLayout(t, p);
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
