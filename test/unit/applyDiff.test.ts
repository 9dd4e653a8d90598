// test-gate: shared (CPU only; see test/support/gate.ts)
/**
 * Issue 19 item 4: the incremental apply's diff (lib/apply/diff.ts) on plans built by the real
 * pipeline (planner state carried over, so class ids stay), asserting the exact operations — tc
 * lines in order, IP mappings deleted and written — for each kind of change an operator makes.
 *
 * The tree: Site_A (queue 1, 1:3) > AP_1 (1:4) with c1 (1:5) and c3 (1:6); Site_B (queue 2, 2:3)
 * with c2 (2:4, an IPv4 and an IPv6 /56). eth1 is the download side, eth0 the upload side.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { diffPlans, type ApplyOps } from '../../lib/apply/diff.ts';
import type { ShapingPlan } from '../../lib/model.ts';
import { buildPlan } from '../support/plan.ts';

const HEADER = 'Circuit ID,Circuit Name,Device ID,Device Name,Parent Node,MAC,IPv4,IPv6,Download Min Mbps,Upload Min Mbps,Download Max Mbps,Upload Max Mbps,Comment';
const ROWS: Record<string, string> = {
  c1: 'c1,C1,d1,D1,AP_1,,100.64.0.1,,1,1,20,5,',
  c2: 'c2,C2,d2,D2,Site_B,,100.64.0.2,2001:db8::/56,1,1,30,6,',
  c3: 'c3,C3,d3,D3,AP_1,,100.64.0.3,,1,1,40,8,',
};
type Net = Record<string, { downloadBandwidthMbps: number; uploadBandwidthMbps: number; children?: Net }>;
const NETWORK: Net = {
  Site_A: { downloadBandwidthMbps: 500, uploadBandwidthMbps: 200, children: { AP_1: { downloadBandwidthMbps: 200, uploadBandwidthMbps: 100 } } },
  Site_B: { downloadBandwidthMbps: 300, uploadBandwidthMbps: 100 },
};
const devices = (rows: Record<string, string>) => [HEADER, ...Object.values(rows)].join('\n') + '\n';

const p1 = buildPlan({ devices: devices(ROWS), network: JSON.stringify(NETWORK) });

/** The plan of changed inputs, planned with P1's planner state (as the next run would). */
function next(rows: Record<string, string>, network: Net = NETWORK): ShapingPlan {
  return buildPlan({ devices: devices(rows), network: JSON.stringify(network) }, { previousState: p1.state }).plan;
}

/** The operations in a comparable form: mappings as [prefix, cpu, major, minor, circuit, device]. */
function ops(d: ApplyOps) {
  return { mode: d.mode, tc: d.tc, mapDelete: d.mapDelete, mapUpsert: d.mapUpsert.map((m) => [m.prefix, m.cpu, m.major, m.minor, m.circuitId, m.deviceId]) };
}

const ZERO = { circuitsAdded: 0, circuitsRemoved: 0, circuitsChanged: 0, nodesChanged: 0, mappingsDeleted: 0, mappingsWritten: 0 };

test('the fixture plan has the class ids the expectations below name', () => {
  assert.deepEqual(
    p1.plan.nodes.map((n) => [n.path, `${n.queue}:${n.minor}`, `${n.queue}:${n.parentMinor}`]),
    [['Site_A', '1:3', '1:1'], ['Site_A/AP_1', '1:4', '1:3'], ['Site_B', '2:3', '2:1']],
  );
  assert.deepEqual(
    p1.plan.circuits.map((c) => [c.id, `${c.queue}:${c.minor}`, `${c.queue}:${c.parentMinor}`, c.download.leafHandle.toString(16)]),
    [['c1', '1:5', '1:4', '2000'], ['c3', '1:6', '1:4', '2001'], ['c2', '2:4', '2:3', '2002']],
  );
});

test('no change: mode none, no operation at all', () => {
  const d = diffPlans(p1.plan, next(ROWS));
  assert.deepEqual(ops(d), { mode: 'none', tc: [], mapDelete: [], mapUpsert: [] });
  assert.deepEqual(d.summary, ZERO);
});

test('rate change of one circuit (c1 download max 20 → 25): one class change on the download side only', () => {
  const d = diffPlans(p1.plan, next({ ...ROWS, c1: 'c1,C1,d1,D1,AP_1,,100.64.0.1,,1,1,25,5,' }));
  assert.deepEqual(ops(d), {
    mode: 'incremental',
    tc: ['class change dev eth1 parent 1:4 classid 1:5 htb rate 1mbit ceil 25mbit burst 3028b cburst 31250b prio 3 quantum 1522'],
    mapDelete: [],
    mapUpsert: [],
  });
  assert.deepEqual(d.summary, { ...ZERO, circuitsChanged: 1 });
});

test('circuit added (c4 under Site_B): its class and leaf on both sides, then its mapping', () => {
  const d = diffPlans(p1.plan, next({ ...ROWS, c4: 'c4,C4,d4,D4,Site_B,,100.64.0.4,,1,1,50,10,' }));
  assert.deepEqual(ops(d), {
    mode: 'incremental',
    tc: [
      'class add dev eth1 parent 2:3 classid 2:5 htb rate 1mbit ceil 50mbit burst 3028b cburst 62500b prio 3 quantum 2999',
      'qdisc add dev eth1 parent 2:5 handle 2003: cake diffserv4',
      'class add dev eth0 parent 2:3 classid 2:5 htb rate 1mbit ceil 10mbit burst 3028b cburst 12500b prio 3 quantum 1522',
      'qdisc add dev eth0 parent 2:5 handle 2003: cake diffserv4',
    ],
    mapDelete: [],
    mapUpsert: [['100.64.0.4/32', 1, 2, 5, 'c4', 'd4']],
  });
  assert.deepEqual(d.summary, { ...ZERO, circuitsAdded: 1, mappingsWritten: 1 });
});

test('circuit removed (c2): its classes on both sides and both of its prefixes go', () => {
  const { c2: _gone, ...rest } = ROWS;
  const d = diffPlans(p1.plan, next(rest));
  assert.deepEqual(ops(d), {
    mode: 'incremental',
    tc: ['class del dev eth1 classid 2:4', 'class del dev eth0 classid 2:4'],
    mapDelete: ['100.64.0.2/32', '2001:db8::/56'],
    mapUpsert: [],
  });
  assert.deepEqual(d.summary, { ...ZERO, circuitsRemoved: 1, mappingsDeleted: 2 });
});

test('circuit moved between parents (c1: AP_1 on queue 1 → Site_B on queue 2): delete old class, add new, mapping deleted then rewritten to the new CPU and class', () => {
  const d = diffPlans(p1.plan, next({ ...ROWS, c1: 'c1,C1,d1,D1,Site_B,,100.64.0.1,,1,1,20,5,' }));
  assert.deepEqual(ops(d), {
    mode: 'incremental',
    tc: [
      'class del dev eth1 classid 1:5',
      'class del dev eth0 classid 1:5',
      'class add dev eth1 parent 2:3 classid 2:5 htb rate 1mbit ceil 20mbit burst 3028b cburst 25000b prio 3 quantum 1522',
      'qdisc add dev eth1 parent 2:5 handle 2000: cake diffserv4',
      'class add dev eth0 parent 2:3 classid 2:5 htb rate 1mbit ceil 5mbit burst 3028b cburst 6250b prio 3 quantum 1522',
      'qdisc add dev eth0 parent 2:5 handle 2000: cake diffserv4',
    ],
    // The old entry points at 1:5, which is deleted: it goes first, then the new one is written.
    mapDelete: ['100.64.0.1/32'],
    mapUpsert: [['100.64.0.1/32', 1, 2, 5, 'c1', 'd1']],
  });
  assert.deepEqual(d.summary, { ...ZERO, circuitsAdded: 1, circuitsRemoved: 1, mappingsDeleted: 1, mappingsWritten: 1 });
});

test('IP mapping added only (a /24 more for c3): no tc, one mapping written to c3\'s class', () => {
  const d = diffPlans(p1.plan, next({ ...ROWS, c3: 'c3,C3,d3,D3,AP_1,,"100.64.0.3,100.64.1.0/24",,1,1,40,8,' }));
  assert.deepEqual(ops(d), { mode: 'incremental', tc: [], mapDelete: [], mapUpsert: [['100.64.1.0/24', 0, 1, 6, 'c3', 'd3']] });
  assert.deepEqual(d.summary, { ...ZERO, mappingsWritten: 1 });
});

test('IP mapping removed only (c2 loses its IPv6 /56): no tc, one mapping deleted', () => {
  const d = diffPlans(p1.plan, next({ ...ROWS, c2: 'c2,C2,d2,D2,Site_B,,100.64.0.2,,1,1,30,6,' }));
  assert.deepEqual(ops(d), { mode: 'incremental', tc: [], mapDelete: ['2001:db8::/56'], mapUpsert: [] });
  assert.deepEqual(d.summary, { ...ZERO, mappingsDeleted: 1 });
});

test('site rate change (Site_B download 300 → 400): one node class change on the download side, circuits untouched', () => {
  const d = diffPlans(p1.plan, next(ROWS, { ...NETWORK, Site_B: { downloadBandwidthMbps: 400, uploadBandwidthMbps: 100 } }));
  assert.deepEqual(ops(d), {
    mode: 'incremental',
    tc: ['class change dev eth1 parent 2:1 classid 2:3 htb rate 400mbit ceil 400mbit burst 500000b cburst 500000b prio 3 quantum 23992'],
    mapDelete: [],
    mapUpsert: [],
  });
  assert.deepEqual(d.summary, { ...ZERO, nodesChanged: 1 });
});

test('a node added is structural: a full rebuild, every mapping of the new plan written, none deleted', () => {
  const p2 = next(ROWS, { ...NETWORK, Site_C: { downloadBandwidthMbps: 100, uploadBandwidthMbps: 50 } });
  const d = diffPlans(p1.plan, p2);
  assert.equal(d.mode, 'full');
  assert.equal(d.reason, 'node set changed (3 → 4 nodes)');
  assert.deepEqual(d.tc, [], 'a full rebuild compiles the whole tree itself (engine fullRebuildLines)');
  assert.deepEqual(d.mapDelete, []);
  assert.deepEqual(d.mapUpsert.map((m) => m.prefix).sort(), ['100.64.0.1/32', '100.64.0.2/32', '100.64.0.3/32', '2001:db8::/56']);
});

test('nothing applied yet: a full rebuild with every mapping', () => {
  const d = diffPlans(undefined, p1.plan);
  assert.equal(d.mode, 'full');
  assert.equal(d.reason, 'nothing applied yet');
  assert.equal(d.mapUpsert.length, 4);
  assert.deepEqual(d.mapDelete, []);
});
