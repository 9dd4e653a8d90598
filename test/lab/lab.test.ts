/**
 * End to end in the namespace lab: the real LibreQoS command shapes real traffic (iperf3), and
 * changes applied by re-running it take effect on live flows. Teardown leaves nothing behind.
 * Runs as root; builds and removes its own namespaces (lqlabt-*).
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, existsSync, readdirSync } from 'node:fs';
import { execa } from 'execa';
import {
  defaultLabCircuits,
  measure,
  runLabLibreQoS,
  startLab,
  stopLab,
  writeLabDevices,
  UNSHAPED_IP,
  wireRate,
  type Lab,
  type LabCircuit,
} from '../../lab/labEnv.ts';
import { nsExec } from '../../lab/testbed.ts';

const ID = 'lqlabt';
let lab: Lab;
const within = (measured: number, plan: number, tol = 0.1) => Math.abs(measured - plan) / plan <= tol;

before(async () => {
  lab = await startLab({ id: ID });
  const r = await runLabLibreQoS(lab);
  assert.equal(r.code, 0, r.output);
});
after(async () => {
  await stopLab(ID);
});

/** Per-second receiver rates (Mbit/s) of one iperf3 download flow to `ip`, started now. */
function liveFlow(ip: string, seconds: number) {
  const port = 6000 + Math.floor(Math.random() * 1000);
  const server = execa('ip', ['netns', 'exec', lab.tb.ns.inet, 'iperf3', '-s', '-1', '-p', String(port), '-B', lab.tb.inetIp4], { reject: false });
  const client = (async () => {
    await new Promise((r) => setTimeout(r, 300));
    const r = await nsExec(lab.tb.ns.cust, 'iperf3', ['-c', lab.tb.inetIp4, '-p', String(port), '-B', ip, '-t', String(seconds), '-R', '-J', '-i', '1'], { reject: false, timeout: (seconds + 20) * 1000 });
    server.kill('SIGKILL');
    await server.catch(() => undefined);
    const j = JSON.parse(r.stdout) as { intervals: Array<{ sum: { bits_per_second: number } }> };
    return j.intervals.map((i) => i.sum.bits_per_second / 1e6);
  })();
  return client;
}

test('three IPv4 circuits are shaped to plan in both directions (±10%)', async () => {
  for (const c of defaultLabCircuits.filter((x) => ['lab-10', 'lab-25', 'lab-50'].includes(x.id))) {
    const down = wireRate(await measure(lab, c.ipv4, 'download'), false);
    const up = wireRate(await measure(lab, c.ipv4, 'upload'), false);
    assert.ok(within(down, c.down), `${c.id} download ${down.toFixed(2)} (wire) vs plan ${c.down}`);
    assert.ok(within(up, c.up), `${c.id} upload ${up.toFixed(2)} (wire) vs plan ${c.up}`);
  }
});

test('an IPv6-only circuit is shaped', async () => {
  const c = defaultLabCircuits.find((x) => x.id === 'lab-v6')!;
  const down = wireRate(await measure(lab, c.ipv6, 'download'), true);
  assert.ok(within(down, c.down), `v6 download ${down} (wire)`);
});

test('a VLAN-tagged path is shaped (and really carries tags)', async () => {
  const c = defaultLabCircuits.find((x) => x.id === 'lab-vlan')!;
  const down = wireRate(await measure(lab, c.ipv4, 'download'), false);
  const up = wireRate(await measure(lab, c.ipv4, 'upload'), false);
  assert.ok(within(down, c.down), `vlan download ${down} (wire)`);
  assert.ok(within(up, c.up), `vlan upload ${up} (wire)`);
  // Without the far end stripping the tag the path breaks: the frames on the shaper are tagged.
  await nsExec(lab.tb.ns.inet, 'tc', ['filter', 'del', 'dev', 'eth0', 'ingress']);
  const broken = await nsExec(lab.tb.ns.cust, 'iperf3', ['-c', '10.98.0.1', '-B', c.ipv4, '-t', '1', '--connect-timeout', '1500', '-J'], { reject: false, timeout: 10000 });
  let moved = 0;
  try {
    moved = (JSON.parse(broken.stdout) as { end?: { sum_received?: { bytes: number } } }).end?.sum_received?.bytes ?? 0;
  } catch {
    /* no JSON: it failed */
  }
  assert.equal(moved, 0, `VLAN path still carried data with the tag left on (frames not tagged?): ${broken.stdout.slice(0, 400)}`);
  await nsExec(lab.tb.ns.inet, 'tc', ['filter', 'add', 'dev', 'eth0', 'ingress', 'bpf', 'da', 'obj', `${process.cwd()}/dataplane/build/lab_vlan_tag.o`, 'sec', 'tc', 'program', 'vlan_pop']);
});

test('an address not in ShapedDevices passes unshaped', async () => {
  const free = await measure(lab, UNSHAPED_IP, 'download');
  assert.ok(free > 200, `unshaped address got only ${free.toFixed(1)} Mbit/s`);
});

test('a rate change re-applied by LibreQoS takes effect on a live flow', async () => {
  const flow = liveFlow('10.99.1.11', 8); // lab-25
  await new Promise((r) => setTimeout(r, 3500));
  const changed: LabCircuit[] = defaultLabCircuits.map((c) => (c.id === 'lab-25' ? { ...c, down: 5 } : c));
  writeLabDevices(lab, changed);
  const r = await runLabLibreQoS(lab);
  assert.equal(r.code, 0, r.output);
  const rates = await flow;
  const early = rates.slice(1, 3);
  const late = rates.slice(-2);
  assert.ok(early.every((v) => within(v, 25, 0.15)), `before change: ${early.map((v) => v.toFixed(1))}`);
  assert.ok(late.every((v) => within(v, 5, 0.15)), `after change: ${late.map((v) => v.toFixed(1))}`);
});

test('moving an IP to another circuit takes effect on a live flow', async () => {
  const flow = liveFlow('10.99.1.10', 8); // lab-10 (10 Mbit/s)
  await new Promise((r) => setTimeout(r, 3500));
  const moved = lab.circuits.map((c) => {
    if (c.id === 'lab-10') return { ...c, ipv4: '' , ipv6: 'fd00:99::1:77' };
    if (c.id === 'lab-50') return { ...c, ipv4: '10.99.1.10' };
    return c;
  });
  writeLabDevices(lab, moved);
  const r = await runLabLibreQoS(lab);
  assert.equal(r.code, 0, r.output);
  const rates = await flow;
  assert.ok(rates.slice(1, 3).every((v) => within(v, 10, 0.15)), `before: ${rates.map((v) => v.toFixed(1))}`);
  assert.ok(rates.slice(-2).every((v) => within(v, 50, 0.15)), `after: ${rates.map((v) => v.toFixed(1))}`);
});

test('removing a circuit takes effect on a live flow (its traffic is no longer limited)', async () => {
  const flow = liveFlow('10.99.1.10', 8); // .10 now belongs to lab-50 (50 Mbit/s)
  await new Promise((r) => setTimeout(r, 3500));
  writeLabDevices(lab, lab.circuits.filter((c) => c.id !== 'lab-50'));
  const r = await runLabLibreQoS(lab);
  assert.equal(r.code, 0, r.output);
  const rates = await flow;
  assert.ok(rates.slice(1, 3).every((v) => within(v, 50, 0.15)), `before: ${rates.map((v) => v.toFixed(1))}`);
  assert.ok(rates.slice(-2).every((v) => v > 150), `after removal: ${rates.map((v) => v.toFixed(1))}`);
});

test('--clearrules leaves no XDP program, clsact filter, mq/htb qdisc or pinned map behind', async () => {
  const r = await runLabLibreQoS(lab, ['--clearrules']);
  assert.equal(r.code, 0, r.output);
  const links = JSON.parse(String((await execa('ip', ['-n', lab.tb.ns.shaper, '-j', 'link', 'show'])).stdout)) as Array<{ ifname: string; xdp?: unknown }>;
  assert.deepEqual(links.filter((l) => l.xdp).map((l) => l.ifname), []);
  const qd = JSON.parse(String((await execa('tc', ['-n', lab.tb.ns.shaper, '-j', 'qdisc', 'show'])).stdout)) as Array<{ kind: string; dev: string }>;
  assert.deepEqual(qd.filter((q) => ['mq', 'htb', 'clsact', 'pfifo'].includes(q.kind) && q.dev.startsWith('lq-')).map((q) => `${q.dev}:${q.kind}`), []);
  for (const dev of [lab.tb.shaperIfs.customer, lab.tb.shaperIfs.internet]) {
    const f = await execa('tc', ['-n', lab.tb.ns.shaper, 'filter', 'show', 'dev', dev, 'egress'], { reject: false });
    assert.equal(String(f.stdout).trim(), '', `filters left on ${dev}`);
  }
  assert.ok(!existsSync(lab.pinRoot) || readdirSync(lab.pinRoot).length === 0, 'pinned maps left behind');
  // And the lab's own state says nothing is applied.
  assert.ok(!existsSync(`${lab.dir}/state/shaping/applied_tc.txt`));
  void readFileSync;
});
