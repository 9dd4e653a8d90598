// test-gate: shared (CPU only; see test/support/gate.ts)
/**
 * The upstream-compatible stats files (lib/shaping/statsFiles.ts): lastRun.txt's exact format,
 * statsByCircuit.json / statsByParentNode.json built from a small plan and checked against the
 * plan's own tc lines, and the atomic write of all three.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { statePaths } from '../../lib/config/paths.ts';
import { pyClassId } from '../../lib/util/classId.ts';
import { formatLastRun, sqmToken, statsByCircuit, statsByParentNode, writeStatsFiles } from '../../lib/shaping/statsFiles.ts';
import { buildPlan } from '../support/plan.ts';
import { testDir } from '../support/workspace.ts';

const DEVICES =
  'Circuit ID,Circuit Name,Device ID,Device Name,Parent Node,Parent Node ID,Anchor Node ID,MAC,IPv4,IPv6,Download Min Mbps,Upload Min Mbps,Download Max Mbps,Upload Max Mbps,Comment,sqm\n' +
  'c1,Ann,d1,Ann router,AP,,,02:00:00:00:00:01,"100.64.1.1, 100.64.2.0/29",2001:db8:1::/56,5,1,200,20,fiber,fq_codel/cake\n' +
  'c2,Bob,d2,Bob router,Nowhere,,,,100.64.1.3,,1,1,10,10,,\n' +
  'c3,Cat,d3,Cat router,,,,,100.64.1.4,,1,1,15,3,,\n';
const NETWORK = JSON.stringify({
  Site: { downloadBandwidthMbps: 1000, uploadBandwidthMbps: 1000, id: 's-1', children: { AP: { downloadBandwidthMbps: 100, uploadBandwidthMbps: 50, id: 'ap-1' } } },
});

function plan() {
  const r = buildPlan({ devices: DEVICES, network: NETWORK });
  return { plan: r.plan, circuits: r.validation.inputs.circuits, tc: r.tcLines };
}

/** The `classid X rate R ceil C` of a class in the download interface's tc lines. */
function tcClass(tc: string[], classid: string): { rate: string; ceil: string } | undefined {
  const line = tc.find((l) => l.startsWith('class add dev eth1 ') && l.includes(` classid ${classid} `));
  const m = line && / rate (\S+) ceil (\S+)/.exec(line);
  return m ? { rate: m[1]!, ceil: m[2]! } : undefined;
}
/** `0x1:0x7` → `1:7` as tc writes it. */
const tcForm = (py: string) => py.replace(/0x/g, '');

test('lastRun.txt: %d-%b-%Y (%H:%M:%S.%f) in local time, no trailing newline', () => {
  assert.equal(formatLastRun(new Date(2026, 7, 18, 8, 59, 33, 123), 456), '18-Aug-2026 (08:59:33.123456)');
  assert.equal(formatLastRun(new Date(2027, 0, 2, 23, 4, 5, 7)), '02-Jan-2027 (23:04:05.007000)');
  assert.equal(formatLastRun(new Date(2026, 11, 31, 0, 0, 0, 999), 999), '31-Dec-2026 (00:00:00.999999)');
});

test('class ids as upstream renders them; sqm tokens', () => {
  assert.equal(pyClassId(1, 7), '0x1:0x7');
  assert.equal(pyClassId(0x1f, 0xabc), '0x1f:0xabc');
  assert.equal(sqmToken(undefined), undefined);
  assert.equal(sqmToken({ download: 'cake', upload: 'cake' }), 'cake');
  assert.equal(sqmToken({ download: 'fq_codel', upload: 'cake' }), 'fq_codel/cake');
  assert.equal(sqmToken({ upload: 'none' }), '/none');
});

test('statsByCircuit: every input circuit in file order, class ids matching the tc lines, parents as resolved', () => {
  const { plan: p, circuits, tc } = plan();
  const stats = statsByCircuit(p, circuits);
  assert.deepEqual(stats.map((s) => s.circuitID), ['c1', 'c2', 'c3'], 'the unshaped circuit c2 is listed too');

  const ann = stats[0]!;
  const planned = p.circuits.find((c) => c.id === 'c1')!;
  assert.equal(ann.classid, `0x${planned.queue.toString(16)}:0x${planned.minor.toString(16)}`);
  assert.equal(ann.classMajor, `0x${planned.queue.toString(16)}`);
  assert.equal(ann.classMinor, `0x${planned.minor.toString(16)}`);
  assert.equal(ann.up_classid, ann.classid, 'bridge: same major on both sides');
  const k = tcClass(tc, tcForm(ann.classid));
  assert.ok(k, `tc has a class ${tcForm(ann.classid)}`);
  assert.equal(k.ceil, '100mbit', 'the class is clamped to the AP');
  assert.equal(ann.maxDownload, 200, "statsByCircuit keeps the file's max (unclamped, as upstream)");
  assert.equal(ann.minDownload, 5);
  assert.equal(k.rate, '5mbit', 'min = the HTB rate in force');
  assert.equal(ann.ParentNode, 'AP');
  assert.equal(ann.logicalParentNode, 'AP');
  assert.equal(ann.shapingParentNodeID, 'ap-1');
  assert.equal(ann.shapingParentKey, 'id:ap-1');
  assert.equal(ann.sqm, 'fq_codel/cake');
  assert.equal(ann.comment, 'fiber');
  assert.deepEqual(ann.devices, [{ deviceID: 'd1', deviceName: 'Ann router', mac: '02:00:00:00:00:01', ipv4s: ['100.64.1.1', '100.64.2.0/29'], ipv6s: ['2001:db8:1::/56'], comment: 'fiber' }]);

  const bob = stats[1]!;
  assert.equal(p.circuits.some((c) => c.id === 'c2'), false, 'c2 (unknown parent) is not in the plan');
  assert.equal(bob.classid, '');
  assert.equal(bob.ParentNode, 'Nowhere');
  assert.equal(bob.maxDownload, 10);
  assert.equal('sqm' in bob, false);

  const cat = stats[2]!;
  assert.equal(cat.logicalParentNode, 'none');
  assert.match(cat.ParentNode, /^Generated_PN_\d+$/);
  assert.equal(cat.shapingParentKey, `name:${cat.ParentNode}`);
  assert.equal(tcClass(tc, tcForm(cat.classid))?.ceil, '15mbit');
});

test('statsByParentNode: every planned node in plan order with its class id and ceilings', () => {
  const { plan: p, tc } = plan();
  const nodes = statsByParentNode(p);
  assert.deepEqual(nodes.map((n) => n.parentNodeName), p.nodes.map((n) => n.name));
  assert.ok(nodes.some((n) => /^Generated_PN_/.test(n.parentNodeName)));
  const ap = nodes.find((n) => n.parentNodeName === 'AP')!;
  assert.deepEqual(Object.keys(ap), ['parentNodeName', 'classID', 'maxDownload', 'maxUpload']);
  assert.equal(ap.maxDownload, 100);
  assert.equal(ap.maxUpload, 50);
  assert.match(ap.classID, /^0x[0-9a-f]+:0x[0-9a-f]+$/);
  assert.equal(tcClass(tc, tcForm(ap.classID))?.ceil, '100mbit');
});

test('writeStatsFiles writes the three files under <state>/stats and leaves no temporary file', (t) => {
  const dir = testDir(t);
  const paths = statePaths(dir);
  const { plan: p, circuits } = plan();
  writeStatsFiles(paths, p, circuits, new Date(2026, 7, 18, 8, 59, 33, 123));
  assert.equal(readFileSync(paths.lastRun, 'utf8'), '18-Aug-2026 (08:59:33.123000)');
  assert.deepEqual(JSON.parse(readFileSync(paths.statsByCircuit, 'utf8')), JSON.parse(JSON.stringify(statsByCircuit(p, circuits))));
  assert.deepEqual(JSON.parse(readFileSync(paths.statsByParentNode, 'utf8')), statsByParentNode(p));
  assert.deepEqual(readdirSync(join(dir, 'stats')).sort(), ['lastRun.txt', 'statsByCircuit.json', 'statsByParentNode.json']);
  // Without a time: now, to the microsecond.
  writeStatsFiles(paths, p, circuits);
  assert.match(readFileSync(paths.lastRun, 'utf8'), /^\d{2}-[A-Z][a-z]{2}-\d{4} \(\d{2}:\d{2}:\d{2}\.\d{6}\)$/);
});
