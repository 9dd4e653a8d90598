/**
 * Real traffic through the dataplane: a bridged three-namespace veth lab (lab/testbed.ts),
 * mq + HTB on both shaper ports, XDP + tc attached, iperf3 TCP per circuit and direction.
 * Needs root, iperf3, bpffs. Everything lives in namespaces lqt-<random>-*, removed in after().
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { execa } from 'execa';
import type { IpMapping } from '../../lib/model.ts';
import { attachDataplane, detachXdp, teardownAll, type AttachReport } from '../../dataplane/attach.ts';
import { listMappings, readHostCounters, readStats, readUnknownIps, updateMappings } from '../../dataplane/maps.ts';
import type { DataplaneLogger } from '../../dataplane/log.ts';
import { PINNED_MAPS } from '../../dataplane/pinned.ts';
import { buildTestbed, destroyTestbed, buildShapingTree, iperf, classBytes, nsExec, type Testbed, type ShapingClass } from '../../lab/testbed.ts';

const quiet: DataplaneLogger = { info: () => undefined, warn: () => undefined };
const QUEUES = 4;
const TOL = 0.10;

// Circuits: A and B are IPv4 hosts, C an IPv6 /112; class 2:20 is the target of the remap test.
const classes: ShapingClass[] = [
  { major: 1, minor: 0x10, downloadMbit: 25, uploadMbit: 10 },  // A
  { major: 2, minor: 0x11, downloadMbit: 10, uploadMbit: 25 },  // B
  { major: 3, minor: 0x12, downloadMbit: 15, uploadMbit: 20 },  // C (queue 3 -> CPU index 2 -> wraps to a real CPU)
  { major: 2, minor: 0x20, downloadMbit: 5, uploadMbit: 5 },    // remap target
];
const A = '10.99.1.10', B = '10.99.1.11', UNMAPPED = '10.99.1.99', C = 'fd00:99::1:10';

function m(prefix: string, cls: ShapingClass, n: number): IpMapping {
  return { prefix, cpu: cls.major - 1, major: cls.major, minor: cls.minor, circuitId: `circuit-${n}`, deviceId: `device-${n}`, circuitHash: BigInt(n), deviceHash: BigInt(100 + n) };
}

let tb: Testbed;
let ctx: { pinRoot: string };
let report: AttachReport;
const measured: string[] = [];

/** Compares iperf3 goodput, converted to the Ethernet rate HTB shapes (full-size frames), with the class ceil. */
function within(goodput: number, ceil: number, what: string): void {
  const mbps = (goodput * 1514) / (what.includes('v6') ? 1428 : 1448);
  measured.push(`${what}: ${goodput.toFixed(2)} Mbit/s goodput, ${mbps.toFixed(2)} on the wire (ceil ${ceil})`);
  assert.ok(Math.abs(mbps - ceil) <= ceil * TOL, `${what}: measured ${mbps.toFixed(2)} Mbit/s on the wire, expected ${ceil} ±${TOL * 100}%`);
}

const h = (n: number) => n.toString(16);

before(async () => {
  tb = await buildTestbed({ queues: QUEUES });
  ctx = { pinRoot: `/sys/fs/bpf/${tb.id}` };
  await buildShapingTree(tb, { queues: QUEUES, linkMbit: 1000, classes });
  report = await attachDataplane({
    downloadIf: tb.shaperIfs.customer, uploadIf: tb.shaperIfs.internet, onAStick: false, queues: QUEUES, stickOffset: 0,
    netns: tb.ns.shaper, pinRoot: ctx.pinRoot, logger: quiet,
  });
  await updateMappings([m(`${A}/32`, classes[0]!, 1), m(`${B}/32`, classes[1]!, 2), m('fd00:99::1:0/112', classes[2]!, 3)], ctx);
});

after(async () => {
  if (measured.length) console.log(`# measured rates:\n#   ${measured.join('\n#   ')}`);
  if (tb) {
    await teardownAll({ netns: tb.ns.shaper, pinRoot: ctx.pinRoot, logger: quiet }).catch(() => undefined);
    await destroyTestbed(tb);
  }
});

test('attach report', () => {
  assert.equal(report.mode, 'bridge');
  assert.equal(report.interfaces.length, 2);
  for (const i of report.interfaces) {
    assert.ok(i.xdpProgId > 0 && i.tcProgId > 0, JSON.stringify(i));
    assert.equal(i.txQueues, QUEUES);
  }
  console.log(`# XDP mode: ${report.interfaces.map((i) => `${i.name}=${i.xdpMode}`).join(', ')}; attach took ${report.elapsedMs} ms`);
});

test('circuits are shaped to their class ceil in both directions (IPv4 and IPv6)', async () => {
  const cases: Array<[string, ShapingClass, string]> = [[A, classes[0]!, 'A'], [B, classes[1]!, 'B'], [C, classes[2]!, 'C(v6)']];
  for (const [ip, cls, name] of cases) {
    const down = await iperf(tb, { custIp: ip, direction: 'download', seconds: 2 });
    within(down.mbps, cls.downloadMbit, `${name} download`);
    const up = await iperf(tb, { custIp: ip, direction: 'upload', seconds: 2 });
    within(up.mbps, cls.uploadMbit, `${name} upload`);
  }
  // Bytes went through the circuit classes on the right ports.
  const down = await classBytes(tb, tb.shaperIfs.customer);
  const up = await classBytes(tb, tb.shaperIfs.internet);
  for (const cls of classes.slice(0, 3)) {
    const id = `${h(cls.major)}:${h(cls.minor)}`;
    assert.ok((down.get(id) ?? 0) > 1_000_000, `download class ${id} carried traffic`);
    assert.ok((up.get(id) ?? 0) > 1_000_000, `upload class ${id} carried traffic`);
  }
  // Per-host counters see the mapped hosts with their classes.
  const counters = await readHostCounters(ctx);
  const a = counters.get(A);
  assert.ok(a && a.downloadBytes > 1_000_000n && a.uploadBytes > 1_000_000n, 'host counters for A');
  assert.equal(a!.circuitHash, 1n);
  assert.ok(counters.get('fd00:99::1:0/112')!.downloadPackets > 100n, 'host counters for C (keyed by its mapping, a /112)');
  const st = await readStats(ctx);
  assert.ok(st.xdpRedirect > 0n, 'XDP redirected shaped packets to their CPU');
  if (report.interfaces.every((i) => i.xdpMode === 'native')) assert.ok(st.tcMeta > 0n, 'tc used the XDP metadata');
});

test('an unmapped IP is not limited', async () => {
  const maxPlan = Math.max(...classes.map((c) => Math.max(c.downloadMbit, c.uploadMbit)));
  const down = await iperf(tb, { custIp: UNMAPPED, direction: 'download', seconds: 1, omit: 0 });
  const up = await iperf(tb, { custIp: UNMAPPED, direction: 'upload', seconds: 1, omit: 0 });
  measured.push(`unmapped download: ${down.mbps.toFixed(1)} Mbit/s`, `unmapped upload: ${up.mbps.toFixed(1)} Mbit/s`);
  assert.ok(down.mbps >= 3 * maxPlan, `unmapped download ${down.mbps.toFixed(1)} Mbit/s`);
  assert.ok(up.mbps >= 3 * maxPlan, `unmapped upload ${up.mbps.toFixed(1)} Mbit/s`);
  assert.equal((await readHostCounters(ctx)).get(UNMAPPED), undefined, 'no host counter without a mapping');
  const u = (await readUnknownIps(ctx)).find((x) => x.ip === UNMAPPED);
  assert.ok(u && u.downloadBytes > 0n && u.uploadBytes > 0n, 'unmapped host sampled in unknown_ips');
  assert.ok((await readStats(ctx)).unmappedBytesDown > 0n, 'unmapped traffic in the aggregate counter');
});

test('remapping a circuit to another class applies the new rate', async () => {
  const target = classes[3]!;
  const before = (await classBytes(tb, tb.shaperIfs.customer)).get(`${h(target.major)}:${h(target.minor)}`) ?? 0;
  await updateMappings([m(`${A}/32`, target, 1)], ctx);
  const down = await iperf(tb, { custIp: A, direction: 'download', seconds: 2 });
  within(down.mbps, target.downloadMbit, 'A download after remap');
  const afterBytes = (await classBytes(tb, tb.shaperIfs.customer)).get(`${h(target.major)}:${h(target.minor)}`) ?? 0;
  assert.ok(afterBytes - before > 500_000, 'remap target class carried the traffic');
  await updateMappings([m(`${A}/32`, classes[0]!, 1)], ctx); // back
});

test('re-attach in generic XDP mode reuses the pinned maps and still shapes', async () => {
  const r = await attachDataplane({
    downloadIf: tb.shaperIfs.customer, uploadIf: tb.shaperIfs.internet, onAStick: false, queues: QUEUES, stickOffset: 0,
    netns: tb.ns.shaper, pinRoot: ctx.pinRoot, xdpMode: 'generic', logger: quiet,
  });
  assert.deepEqual(r.interfaces.map((i) => i.xdpMode), ['generic', 'generic']);
  assert.deepEqual(r.mapsCreated, []);
  // The cpumap is tied to the frags flag of the native-mode program: recreated for generic mode.
  assert.deepEqual(r.mapsReplaced, ['cpu_map']);
  assert.equal(r.mapsReused.length, PINNED_MAPS.length - 1);
  assert.equal((await listMappings(ctx)).length, 3, 'mappings survived the reload');
  const st0 = await readStats(ctx);
  const down = await iperf(tb, { custIp: B, direction: 'download', seconds: 2 });
  within(down.mbps, classes[1]!.downloadMbit, 'B download, generic XDP');
  const st1 = await readStats(ctx);
  assert.ok(st1.xdpRedirect > st0.xdpRedirect, 'generic XDP redirects through the cpumap');
  assert.ok(st1.tcLookup > st0.tcLookup, 'without metadata tc looks the class up itself');
});

test('tc alone still classifies after XDP is detached (fallback lookup)', async () => {
  const removed = await detachXdp([tb.shaperIfs.customer, tb.shaperIfs.internet], { netns: tb.ns.shaper, logger: quiet });
  assert.equal(removed.length, 2);
  const st0 = await readStats(ctx);
  const down = await iperf(tb, { custIp: B, direction: 'download', seconds: 2 });
  within(down.mbps, classes[1]!.downloadMbit, 'B download, tc only');
  const up = await iperf(tb, { custIp: A, direction: 'upload', seconds: 2 });
  within(up.mbps, classes[0]!.uploadMbit, 'A upload, tc only');
  const st1 = await readStats(ctx);
  assert.equal(st1.xdpSeen, st0.xdpSeen, 'XDP no longer runs');
  assert.ok(st1.tcLookup - st0.tcLookup > 1000n, 'tc classified by its own lookup');
});

test('teardown leaves no XDP program, no clsact filter and no pinned maps', async () => {
  await teardownAll({ netns: tb.ns.shaper, pinRoot: ctx.pinRoot, logger: quiet });
  const links = JSON.parse((await nsExec(tb.ns.shaper, 'ip', ['-j', '-d', 'link', 'show'])).stdout) as Array<{ ifname: string; xdp?: unknown }>;
  for (const l of links) assert.equal(l.xdp, undefined, `${l.ifname} still has XDP`);
  for (const dev of [tb.shaperIfs.customer, tb.shaperIfs.internet]) {
    for (const dir of ['egress', 'ingress']) {
      const r = await nsExec(tb.ns.shaper, 'tc', ['filter', 'show', 'dev', dev, dir], { reject: false });
      assert.equal((r.stdout ?? '').trim(), '', `${dev} ${dir} filters`);
    }
    const q = await nsExec(tb.ns.shaper, 'tc', ['qdisc', 'show', 'dev', dev]);
    assert.doesNotMatch(q.stdout, /clsact/, `${dev} clsact removed`);
    assert.match(q.stdout, /qdisc mq 7fff:/, `${dev} keeps its mq/HTB tree`);
  }
  assert.equal(existsSync(ctx.pinRoot), false, 'pinned maps removed');
  // No program of ours is left loaded anywhere.
  const progs = JSON.parse((await execa('bpftool', ['-j', 'prog', 'show'])).stdout) as Array<{ name?: string; id: number }>;
  const ours = progs.filter((p) => p.id === report.interfaces[0]!.xdpProgId || p.id === report.interfaces[0]!.tcProgId);
  assert.deepEqual(ours, [], 'programs unloaded');
});
