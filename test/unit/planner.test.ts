// test-gate: shared (CPU only; see test/support/gate.ts)
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { planShaping, FIRST_LEAF_HANDLE, LAST_LEAF_HANDLE } from '../../lib/plan/planner.ts';
import { resolveQueueCount } from '../../lib/plan/planConfig.ts';
import { chooseLeaf, parseSqmString } from '../../lib/plan/sqm.ts';
import { formatRate, quantum, r2q } from '../../lib/compile/tc.ts';
import { hash64 } from '../../lib/util/hash.ts';
import { parsePlannerState } from '../../lib/plan/plannerState.ts';
import type { Circuit, NetworkNode } from '../../lib/model.ts';
import { planConfig } from '../support/plan.ts';

const circuit = (id: string, parent = '', down = 10, up = 5, ips = [`100.64.${id.length}.1/32`]): Circuit => ({
  id,
  name: id,
  parentNode: parent,
  parentNodeId: '',
  anchorNodeId: '',
  downloadMinMbps: 1,
  uploadMinMbps: 1,
  downloadMaxMbps: down,
  uploadMaxMbps: up,
  comment: '',
  devices: [{ id: `${id}-d`, name: '', mac: '', ipv4: ips, ipv6: [], comment: '', line: 2 }],
  line: 2,
});
const node = (name: string, down: number, up: number, children: NetworkNode[] = []): NetworkNode => ({
  name,
  downloadMbps: down,
  uploadMbps: up,
  virtual: false,
  children,
});

test('queue count: override, TX queues, CPUs, stick halving', () => {
  assert.equal(resolveQueueCount({ override: 0, txQueues: [8, 4], cpus: 16, onAStick: false }).queues, 4);
  assert.equal(resolveQueueCount({ override: 0, txQueues: [8, 8], cpus: 2, onAStick: false }).queues, 2);
  assert.equal(resolveQueueCount({ override: 6, txQueues: [1, 1], cpus: 16, onAStick: false }).queues, 6);
  assert.equal(resolveQueueCount({ override: 4, txQueues: [8], cpus: 8, onAStick: true }).queues, 2);
  assert.equal(resolveQueueCount({ override: 0, txQueues: [1], cpus: 1, onAStick: true }).queues, 1);
});

test('rate formatting is exact to 1 kbit; quantum follows r2q of the link', () => {
  assert.equal(formatRate(25), '25mbit');
  assert.equal(formatRate(2.5), '2500kbit');
  assert.equal(formatRate(0.01), '10kbit');
  assert.equal(formatRate(1050), '1050mbit');
  assert.equal(r2q(1000), 2084);
  assert.equal(quantum(1000, 1000), 59980);
  assert.equal(quantum(100, 1000), 5998);
  assert.equal(quantum(20, 1000), 1522);
});

test('leaf SQM choice: fast threshold, overrides, low-rate CAKE rtt', () => {
  const cake = parseSqmString('cake diffserv4');
  assert.deepEqual(chooseLeaf(undefined, 1000, cake, 1000), { kind: 'fq_codel', args: [] });
  assert.deepEqual(chooseLeaf(undefined, 999, cake, 1000), cake);
  assert.deepEqual(chooseLeaf('cake', 2000, cake, 1000), cake);
  assert.equal(chooseLeaf('none', 10, cake, 1000), null);
  assert.deepEqual(chooseLeaf(undefined, 1, cake, 1000)?.args, ['diffserv4', 'rtt', '300ms']);
  assert.deepEqual(chooseLeaf(undefined, 4, cake, 1000)?.args, ['diffserv4', 'rtt', '120ms']);
  assert.deepEqual(chooseLeaf('cake', 3, parseSqmString('fq_codel'), 1000), { kind: 'cake', args: ['diffserv4', 'rtt', '140ms'] });
  assert.deepEqual(chooseLeaf(undefined, 2, parseSqmString('cake diffserv4 rtt 50ms'), 1000)?.args, ['diffserv4', 'rtt', '50ms']);
});

test('hash64 is FNV-1a 64 and never 0', () => {
  assert.equal(hash64('a'), 0xaf63dc4c8601ec8cn);
  assert.notEqual(hash64(''), 0n);
});

test('bin-packing spreads top-level nodes by weight (heaviest first to the least-loaded queue)', () => {
  const network = [node('A', 1000, 1000), node('B', 1000, 1000), node('C', 1000, 1000), node('D', 1000, 1000)];
  const circuits = [circuit('a1', 'A', 900, 100), circuit('b1', 'B', 500, 100), circuit('c1', 'C', 400, 100), circuit('d1', 'D', 100, 10)];
  const { plan } = planShaping({ inputs: { network, circuits }, config: planConfig({ useBinpacking: true }) });
  const q = Object.fromEntries(plan.nodes.map((n) => [n.name, n.queue]));
  assert.equal(q.A, 1);
  assert.equal(q.B, 2);
  assert.equal(q.C, 2);
  assert.equal(q.D, 1);
});

test('round-robin (no bin-packing) spreads top-level nodes by count', () => {
  const network = ['A', 'B', 'C', 'D', 'E'].map((n) => node(n, 100, 100));
  const { plan } = planShaping({ inputs: { network, circuits: [] }, config: planConfig({ queues: 3 }) });
  assert.deepEqual(plan.nodes.map((n) => n.queue), [1, 2, 3, 1, 2]);
});

test('a stored queue assignment survives a queue-count change only when still valid', () => {
  const network = [node('A', 100, 100), node('B', 100, 100)];
  const first = planShaping({ inputs: { network, circuits: [] }, config: planConfig({ queues: 4 }) });
  first.state.topLevel.B = 4;
  const second = planShaping({ inputs: { network, circuits: [] }, config: planConfig({ queues: 2 }), previous: first.state });
  assert.deepEqual(second.plan.nodes.map((n) => n.name).sort(), ['A', 'B']);
  assert.ok(second.plan.nodes.every((n) => n.queue <= 2), JSON.stringify(second.plan.nodes.map((n) => [n.name, n.queue])));
});

test('circuit ceilings are clamped to the parent, with a warning', () => {
  const { plan } = planShaping({ inputs: { network: [node('AP', 50, 20)], circuits: [circuit('c1', 'AP', 100, 10)] }, config: planConfig() });
  assert.equal(plan.circuits[0]!.download.ceilMbps, 50);
  assert.ok(plan.warnings.some((w) => w.code === 'circuit-ceil-clamped'));
});

test('unknown parent: warning, circuit not shaped, others are', () => {
  const { plan } = planShaping({ inputs: { network: [node('AP', 50, 20)], circuits: [circuit('c1', 'Ghost'), circuit('c2', 'AP')] }, config: planConfig() });
  assert.deepEqual(plan.circuits.map((c) => c.id), ['c2']);
  assert.ok(plan.warnings.some((w) => w.code === 'unknown-parent' && w.value === 'Ghost'));
  assert.ok(plan.mappings.length > 0, 'c2 has no IP mapping');
  assert.ok(plan.mappings.every((m) => m.circuitId === 'c2'));
});

test('a network.json node named like a generated parent is an ordinary node; the generated parents take free names', () => {
  const r = planShaping({ inputs: { network: [node('Generated_PN_1', 50, 20)], circuits: [circuit('c1', '')] }, config: planConfig() });
  assert.deepEqual(r.errors, []);
  const gen = r.plan.nodes.filter((n) => n.generated).map((n) => [n.name, n.queue]);
  assert.deepEqual(gen, [['Generated_PN_2', 1], ['Generated_PN_3', 2]]);
  assert.ok(r.plan.nodes.some((n) => n.name === 'Generated_PN_1' && !n.generated && n.download.ceilMbps === 50));
  assert.match(r.plan.circuits[0]!.parentPath, /^Generated_PN_[23]$/);
});

test('leaf qdisc handle space exhaustion is a planning error, not a crash', () => {
  const n = LAST_LEAF_HANDLE - FIRST_LEAF_HANDLE + 3;
  const circuits = Array.from({ length: n }, (_, i) => circuit(`c${i}`, '', 10, 5, [`10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}/32`]));
  const r = planShaping({ inputs: { network: [], circuits }, config: planConfig({ queues: 4 }) });
  assert.ok(r.errors.some((e) => e.code === 'qdisc-handle-exhausted' && /^3 circuit/.test(e.message)));
});

test('on a stick every circuit gets two distinct leaf handles and upload majors are offset', () => {
  const r = planShaping({ inputs: { network: [node('T', 100, 50)], circuits: [circuit('c1', 'T'), circuit('c2', 'T')] }, config: planConfig({ interfaces: { download: 'eth0', upload: 'eth0', onAStick: true } }) });
  assert.equal(r.plan.stickOffset, 2);
  const handles = r.plan.circuits.flatMap((c) => [c.download.leafHandle, c.upload.leafHandle]);
  assert.equal(new Set(handles).size, 4);
});

test('stored planner state of another layout is ignored with a note', () => {
  const p = parsePlannerState('{"version":1,"sites":{}}');
  assert.equal(p.notes.length, 1);
  assert.deepEqual(p.state.circuits, {});
  assert.equal(parsePlannerState('not json').notes.length, 1);
});
