// test-gate: shared (CPU only; see test/support/gate.ts)
/**
 * Planner parity with upstream LibreQoS on inputs that showed a difference (issues 13 and 21):
 * assured rates (a node's rate covers the minimums under it), parent fallbacks (unknown Parent
 * Node ID, Generated_PN_* names) and node aliases (key, name, id, active_attachment_name).
 * Pure pipeline runs plus `./LibreQoS --dry-run` exit codes and the tc it would run.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { InputIssue } from '../../lib/model.ts';
import { buildPlan, pipeline, planConfig } from '../support/plan.ts';
import { runCli, workspaceFactory } from '../support/workspace.ts';

const HEADER_13 = 'Circuit ID,Circuit Name,Device ID,Device Name,Parent Node,MAC,IPv4,IPv6,Download Min Mbps,Upload Min Mbps,Download Max Mbps,Upload Max Mbps,Comment';
/** The upstream 15-column header (with Parent Node ID and Anchor Node ID). */
const HEADER_15 =
  'Circuit ID,Circuit Name,Device ID,Device Name,Parent Node,Parent Node ID,Anchor Node ID,MAC,IPv4,IPv6,Download Min Mbps,Upload Min Mbps,Download Max Mbps,Upload Max Mbps,Comment';

/** A 13-column row: id, parent, IPv4, mins and maxes (download/upload). */
function row13(id: string, parent: string, ip: string, min: [number, number], max: [number, number]): string {
  return `${id},Name ${id},d-${id},Dev ${id},${parent},,${ip},,${min[0]},${min[1]},${max[0]},${max[1]},`;
}
/** A 15-column row with a Parent Node ID. */
function row15(id: string, parent: string, parentId: string, ip: string): string {
  return `${id},Name ${id},d-${id},Dev ${id},${parent},${parentId},,,${ip},,1,1,10,10,`;
}
const csv = (header: string, rows: string[]) => [header, ...rows].join('\n') + '\n';
const site = (down: number, up: number, extra: Record<string, unknown> = {}) => ({ downloadBandwidthMbps: down, uploadBandwidthMbps: up, ...extra });
const codes = (ws: InputIssue[]) => ws.map((w) => w.code);

/** Three 1000/1000 sites on one queue; two circuits with min 300/300 under Site_A. */
const THREE_SITES = {
  network: JSON.stringify({ Site_A: site(1000, 1000), Site_B: site(1000, 1000), Site_C: site(1000, 1000) }),
  devices: csv(HEADER_13, [row13('c1', 'Site_A', '100.64.0.1', [300, 300], [500, 500]), row13('c2', 'Site_A', '100.64.0.2', [300, 300], [500, 500])]),
};

test('13.3 assured rates: circuits keep their minimums, the site is raised to their sum, no warning', () => {
  const r = buildPlan(THREE_SITES, { config: planConfig({ queues: 1 }) });
  for (const c of r.plan.circuits) {
    assert.equal(c.download.rateMbps, 300, `${c.id} download`);
    assert.equal(c.upload.rateMbps, 300, `${c.id} upload`);
  }
  assert.equal(r.tcLines.filter((l) => / htb rate 300mbit ceil 500mbit /.test(l)).length, 4, 'two circuits × two directions at rate 300mbit');
  const nodes = new Map(r.plan.nodes.map((n) => [n.name, n]));
  assert.ok(nodes.get('Site_A')!.download.rateMbps >= 600, `Site_A rate ${nodes.get('Site_A')!.download.rateMbps}`);
  assert.ok(nodes.get('Site_A')!.upload.rateMbps >= 600);
  // The three sites still fit the link (1000 less the 10 Mbit default class) together.
  const sum = r.plan.nodes.reduce((s, n) => s + n.download.rateMbps, 0);
  assert.ok(sum <= 990 + 1e-9, `sites add up to ${sum}`);
  // The spare is still shared: the other sites are not starved to 10 kbit.
  assert.ok(nodes.get('Site_B')!.download.rateMbps >= 100, `Site_B ${nodes.get('Site_B')!.download.rateMbps}`);
  assert.deepEqual(codes(r.warnings), []);
});

test('13.3 assured rates: only a link oversubscribed on minimums scales them, with one warning that says so', () => {
  const devices = csv(HEADER_13, [
    row13('c1', 'Site_A', '100.64.0.1', [400, 100], [500, 500]),
    row13('c2', 'Site_A', '100.64.0.2', [400, 100], [500, 500]),
    row13('c3', 'Site_B', '100.64.0.3', [400, 100], [500, 500]),
  ]);
  const r = buildPlan({ network: THREE_SITES.network, devices }, { config: planConfig({ queues: 1 }) });
  assert.deepEqual(codes(r.warnings), ['link-oversubscribed']);
  const w = r.warnings[0]!;
  assert.equal(w.file, 'ShapedDevices.csv');
  assert.match(w.message, /queue 1 add up to 1200\/300 Mbps/);
  assert.match(w.message, /scaled down to 82\.5%\/100%/);
  // 1200 Mbps of minimums into 990: each 400 becomes 330; upload (300 in total) fits untouched.
  for (const c of r.plan.circuits) {
    assert.equal(c.download.rateMbps, 330, c.id);
    assert.equal(c.upload.rateMbps, 100, c.id);
  }
  // The sites fit the link, but for the 10 kbit/s HTB needs as the rate of the empty Site_C.
  const sum = r.plan.nodes.reduce((s, n) => s + n.download.rateMbps, 0);
  assert.ok(sum <= 990.01 + 1e-9, `sites add up to ${sum}`);
  assert.equal(r.plan.nodes.find((n) => n.name === 'Site_C')!.download.rateMbps, 0.01);
});

test('13.3 assured rates: minimums above a node\'s own capacity are scaled into it, warned on that node', () => {
  const network = JSON.stringify({ AP: site(100, 100) });
  const devices = csv(HEADER_13, [row13('c1', 'AP', '100.64.0.1', [60, 10], [100, 100]), row13('c2', 'AP', '100.64.0.2', [60, 10], [100, 100])]);
  const r = buildPlan({ network, devices });
  assert.deepEqual(codes(r.warnings), ['rates-scaled']);
  assert.equal(r.warnings[0]!.line, 1, 'the node\'s line in network.json');
  assert.match(r.warnings[0]!.message, /"AP" add up to 120\/20 Mbps .* capacity of 100\/100 Mbps/);
  assert.deepEqual(
    r.plan.circuits.map((c) => [c.download.rateMbps, c.upload.rateMbps]),
    [
      [50, 10],
      [50, 10],
    ],
  );
});

test('13.3 assured rates: a node\'s own …Min is raised to the minimums under it (upstream: max of both)', () => {
  const network = JSON.stringify({ AP: site(100, 20, { downloadBandwidthMbpsMin: 50, uploadBandwidthMbpsMin: 10 }) });
  const devices = csv(HEADER_13, [row13('c1', 'AP', '100.64.0.1', [40, 8], [100, 20]), row13('c2', 'AP', '100.64.0.2', [40, 8], [80, 10])]);
  const r = buildPlan({ network, devices });
  assert.deepEqual(codes(r.warnings), []);
  const ap = r.plan.nodes.find((n) => n.name === 'AP')!;
  assert.deepEqual([ap.download.rateMbps, ap.upload.rateMbps], [80, 16]);
  assert.deepEqual(r.plan.circuits.map((c) => c.download.rateMbps), [40, 40]);
});

test('13.4 empty Parent Node with an unknown Parent Node ID: shaped under a generated parent, warned with file, line and id', () => {
  const network = JSON.stringify({ Site: site(500, 500, { id: 's-1', children: { AP_1: site(100, 100, { id: 'n-1' }) } }) });
  const devices = csv(HEADER_15, [row15('c1', '', 'n-1', '100.64.1.1'), row15('c2', '', 'gone-7', '100.64.1.2')]);
  const r = buildPlan({ network, devices });
  const byId = new Map(r.plan.circuits.map((c) => [c.id, c]));
  assert.equal(byId.get('c1')!.parentPath, 'Site/AP_1', 'a known id attaches');
  assert.match(byId.get('c2')!.parentPath, /^Generated_PN_\d$/, 'an unknown id falls back to a generated parent');
  assert.ok(r.mappings.some((m) => m.circuitId === 'c2' && m.prefix === '100.64.1.2/32'));
  const w = r.warnings.filter((x) => x.code === 'unknown-parent-id');
  assert.equal(w.length, 1, JSON.stringify(r.warnings));
  assert.deepEqual([w[0]!.file, w[0]!.line, w[0]!.column, w[0]!.value], ['ShapedDevices.csv', 3, 'Parent Node ID', 'gone-7']);
  assert.equal(r.validation.ok, true);
});

/** network.json as an upstream integration publishes a flat tree, plus one real site. */
const PUBLISHED = JSON.stringify({
  Generated_PN_1: site(1000, 1000, { id: 'libreqos:generated:flat:bucket:0', children: {} }),
  Generated_PN_2: site(1000, 1000, { id: 'libreqos:generated:flat:bucket:1', children: {} }),
});

test('13.5 Parent Node naming a generated parent: under it in a non-flat network; one beyond the queue count falls back (warned)', () => {
  const network = JSON.stringify({ Tower: site(500, 500) });
  const devices = csv(HEADER_13, [
    row13('c1', 'Generated_PN_1', '100.64.2.1', [1, 1], [10, 10]),
    row13('c2', 'Generated_PN_2', '100.64.2.2', [1, 1], [10, 10]),
    row13('c3', 'Generated_PN_9', '100.64.2.3', [1, 1], [10, 10]),
    row13('c4', 'Tower', '100.64.2.4', [1, 1], [10, 10]),
  ]);
  const r = buildPlan({ network, devices });
  const byId = new Map(r.plan.circuits.map((c) => [c.id, c]));
  assert.deepEqual([byId.get('c1')!.parentPath, byId.get('c1')!.queue], ['Generated_PN_1', 1]);
  assert.deepEqual([byId.get('c2')!.parentPath, byId.get('c2')!.queue], ['Generated_PN_2', 2]);
  assert.match(byId.get('c3')!.parentPath, /^Generated_PN_[12]$/);
  assert.equal(byId.get('c4')!.parentPath, 'Tower');
  assert.equal(r.mappings.length, 4);
  assert.deepEqual(codes(r.warnings), ['unknown-generated-parent']);
  assert.deepEqual([r.warnings[0]!.line, r.warnings[0]!.value], [4, 'Generated_PN_9']);
});

test('13.5 a network.json that already has Generated_PN nodes, plus an unparented circuit: everything shaped', () => {
  const devices = csv(HEADER_13, [
    row13('c1', 'Generated_PN_1', '100.64.3.1', [1, 1], [10, 10]),
    row13('c2', 'Generated_PN_2', '100.64.3.2', [1, 1], [10, 10]),
    row13('c3', '', '100.64.3.3', [1, 1], [10, 10]),
  ]);
  const r = buildPlan({ network: PUBLISHED, devices });
  const byId = new Map(r.plan.circuits.map((c) => [c.id, c]));
  assert.equal(byId.get('c1')!.parentPath, 'Generated_PN_1');
  assert.equal(byId.get('c2')!.parentPath, 'Generated_PN_2');
  // Ours take the next free names; the published nodes are ordinary nodes.
  assert.match(byId.get('c3')!.parentPath, /^Generated_PN_[34]$/);
  assert.deepEqual(
    r.plan.nodes.map((n) => [n.name, n.generated]).sort(),
    [
      ['Generated_PN_1', false],
      ['Generated_PN_2', false],
      ['Generated_PN_3', true],
      ['Generated_PN_4', true],
    ],
  );
  assert.equal(r.mappings.length, 3);
  assert.deepEqual(codes(r.warnings), []);
});

const workspace = workspaceFactory();

test('13.5 ./LibreQoS --dry-run shapes both Generated_PN shapes (exit 0, every circuit in the tc plan)', async () => {
  const cases = [
    {
      network: JSON.stringify({ Tower: site(500, 500) }),
      devices: csv(HEADER_13, [row13('c1', 'Generated_PN_1', '100.64.2.1', [1, 1], [10, 10]), row13('c2', 'Tower', '100.64.2.2', [1, 1], [20, 20])]),
      ceils: ['ceil 10mbit', 'ceil 20mbit'],
    },
    {
      network: PUBLISHED,
      devices: csv(HEADER_13, [row13('c1', 'Generated_PN_1', '100.64.3.1', [1, 1], [10, 10]), row13('c2', '', '100.64.3.2', [1, 1], [20, 20])]),
      ceils: ['ceil 10mbit', 'ceil 20mbit'],
    },
  ];
  for (const k of cases) {
    const w = workspace({ devices: k.devices, network: k.network });
    const r = await runCli(['--config', w.config, '--dry-run']);
    assert.equal(r.code, 0, r.stderr);
    const tc = readFileSync(join(w.stateDir, 'debug', 'linux_tc.txt'), 'utf8');
    for (const ceil of k.ceils) assert.equal(tc.split('\n').filter((l) => l.includes(`htb rate 1mbit ${ceil} `)).length, 2, `${ceil} in\n${tc}`);
  }
});

test('13.3 ./LibreQoS --dry-run on three sites with 300 Mbit minimums: rate 300mbit in the tc plan, no rates warning', async () => {
  const w = workspace({ devices: THREE_SITES.devices, network: THREE_SITES.network });
  const r = await runCli(['--config', w.config, '--dry-run']);
  assert.equal(r.code, 0, r.stderr);
  const tc = readFileSync(join(w.stateDir, 'debug', 'linux_tc.txt'), 'utf8');
  assert.equal(tc.split('\n').filter((l) => / htb rate 300mbit ceil 500mbit /.test(l)).length, 4, tc);
  assert.doesNotMatch(r.stderr, /rates-scaled|link-oversubscribed|scaled down/);
});

test('21.1 every alias of a node resolves a circuit\'s parent: key, name, id, active_attachment_name', () => {
  const network = JSON.stringify({
    'Thunderhill Core': site(500, 500, { name: 'Thunderhill Core', active_attachment_name: 'Thunderhill-Hoodoo', id: 'uisp-site-17' }),
    Other: site(100, 100),
  });
  const devices = csv(HEADER_15, [
    row15('c1', 'Thunderhill-Hoodoo', '', '100.64.4.1'),
    row15('c2', 'Thunderhill Core', '', '100.64.4.2'),
    row15('c3', 'uisp-site-17', '', '100.64.4.3'),
    row15('c4', '', 'Thunderhill-Hoodoo', '100.64.4.4'),
  ]);
  const r = buildPlan({ network, devices });
  assert.deepEqual(
    r.plan.circuits.map((c) => [c.id, c.parentPath]).sort(),
    [
      ['c1', 'Thunderhill Core'],
      ['c2', 'Thunderhill Core'],
      ['c3', 'Thunderhill Core'],
      ['c4', 'Thunderhill Core'],
    ],
  );
  assert.equal(r.mappings.length, 4);
  assert.deepEqual(codes(r.warnings), []);
});

test('21.1 an alias claimed by two nodes is a validation error naming both (file, line, JSON path)', () => {
  const network = `{
  "Thunderhill Core": {"downloadBandwidthMbps": 500, "uploadBandwidthMbps": 500,
    "children": {"AP_1": {"downloadBandwidthMbps": 100, "uploadBandwidthMbps": 100, "active_attachment_name": "Hoodoo"}}},
  "Ridge": {"downloadBandwidthMbps": 500, "uploadBandwidthMbps": 500, "name": "Hoodoo"}
}
`;
  const r = pipeline({ network, devices: csv(HEADER_13, [row13('c1', 'Hoodoo', '100.64.5.1', [1, 1], [10, 10])]) });
  assert.equal(r.ok, false);
  const errs = r.validation.issues.filter((i) => i.severity === 'error');
  assert.deepEqual(codes(errs), ['duplicate-node-alias']);
  const e = errs[0]!;
  assert.deepEqual([e.file, e.line, e.column, e.value], ['network.json', 4, 'Ridge.name', 'Hoodoo']);
  assert.match(e.message, /"AP_1" \(network\.json line 3, Thunderhill Core\.children\.AP_1\.active_attachment_name\)/);
  assert.match(e.message, /"Ridge" \(network\.json line 4, Ridge\.name\)/);
});

test('21.1 a duplicate node id is an alias conflict too; a node repeating its own key as name is not', () => {
  const network = JSON.stringify({ A: site(100, 100, { name: 'A', id: 7 }), B: site(100, 100, { id: '7' }) });
  const r = pipeline({ network, devices: csv(HEADER_13, [row13('c1', 'A', '100.64.6.1', [1, 1], [10, 10])]) });
  assert.equal(r.ok, false);
  const errs = r.validation.issues.filter((i) => i.severity === 'error');
  assert.deepEqual(
    errs.map((i) => [i.code, i.column, i.value]),
    [['duplicate-node-alias', 'B.id', '7']],
  );
});
