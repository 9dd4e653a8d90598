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
  type Lab,
  type LabCircuit,
} from '../../lab/labEnv.ts';
import { nsExec } from '../../lab/testbed.ts';
import { assertWireRate } from '../support/rates.ts';
import { changeUnderFlow, measureCircuits, windowWire, type CircuitRate } from '../support/lab.ts';

const ID = 'lqlabt';
let lab: Lab;
/** Seconds of 0.5 s intervals each iperf3 rate measurement takes the median of (after 1 s of slow start). */
const SECONDS = 5;

before(async () => {
  lab = await startLab({ id: ID });
  const r = await runLabLibreQoS(lab);
  assert.equal(r.code, 0, r.output);
});
after(async () => {
  await stopLab(ID);
});

/**
 * Every lab circuit's wire rate in both directions, measured once for the three rate tests below (the
 * circuits at the same time, one direction at a time: test/support/lab.ts measureCircuits); whichever
 * test runs first starts it.
 */
let labRates: Promise<CircuitRate[]> | undefined;

/** The measured rates of circuit `id` (both directions), logged as diagnostics; returns the problems. */
async function checkRates(t: { diagnostic(m: string): void }, id: string): Promise<string[]> {
  labRates ??= measureCircuits(lab, defaultLabCircuits, SECONDS);
  const mine = (await labRates).filter((r) => r.circuit.id === id);
  assert.deepEqual(mine.map((r) => r.direction), ['download', 'upload'], `${id} measured in both directions`);
  for (const r of mine) t.diagnostic(r.line);
  return mine.flatMap((r) => r.problem ?? []);
}

/** The LibreQoS run of a live change, asserted to succeed. */
const reapply = (circuits: LabCircuit[]) => async () => {
  writeLabDevices(lab, circuits);
  const r = await runLabLibreQoS(lab);
  assert.equal(r.code, 0, r.output);
};

/** Old plan in force before the command started (after 1 s of slow start), the new one from 1 s after it returned. */
function assertChange(t: { diagnostic(m: string): void }, run: Awaited<ReturnType<typeof changeUnderFlow>>, what: string, before: number, after: number) {
  const pre = windowWire(run.intervals, run.flowStart + 1000, run.t0, 4, `${what} before the change`);
  const post = windowWire(run.intervals, run.t1 + 1000, Infinity, 6, `${what} after the change`);
  t.diagnostic(`${what}: LibreQoS took ${((run.t1 - run.t0) / 1000).toFixed(2)} s; before ${pre.samples.map((v) => v.toFixed(1)).join(' ')}; after ${post.samples.map((v) => v.toFixed(1)).join(' ')}`);
  assertWireRate(pre.wire, before, `${what} before the change (median of ${pre.samples.length} intervals)`);
  assertWireRate(post.wire, after, `${what} from 1 s after LibreQoS returned (median of ${post.samples.length} intervals)`);
}

test('three IPv4 circuits are shaped to plan in both directions (±3 %, wire rate)', async (t) => {
  const circuits = defaultLabCircuits.filter((x) => ['lab-10', 'lab-25', 'lab-50'].includes(x.id));
  assert.equal(circuits.length, 3);
  assert.ok(circuits.every((c) => c.ipv4), 'the three are IPv4 circuits');
  const problems: string[] = [];
  for (const c of circuits) problems.push(...(await checkRates(t, c.id)));
  assert.deepEqual(problems, []);
});

test('an IPv6-only circuit is shaped to plan in both directions (±3 %, wire rate)', async (t) => {
  const c = defaultLabCircuits.find((x) => x.id === 'lab-v6')!;
  assert.ok(c?.ipv6 && !c.ipv4, 'the lab has an IPv6-only circuit');
  assert.deepEqual(await checkRates(t, c.id), []);
});

test('a VLAN-tagged path is shaped to plan (±3 %, wire rate) and really carries tags', async (t) => {
  const c = defaultLabCircuits.find((x) => x.id === 'lab-vlan')!;
  assert.ok(c, 'the lab has a VLAN circuit');
  assert.deepEqual(await checkRates(t, c.id), []);
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

test('a rate change re-applied by LibreQoS takes effect on a live flow (±3 % before and after)', async (t) => {
  const changed: LabCircuit[] = defaultLabCircuits.map((c) => (c.id === 'lab-25' ? { ...c, down: 5 } : c));
  const run = await changeUnderFlow(lab, '10.99.1.11', reapply(changed)); // lab-25
  assertChange(t, run, 'lab-25 download 25 → 5', 25, 5);
});

test('moving an IP to another circuit takes effect on a live flow (±3 % before and after)', async (t) => {
  const moved = lab.circuits.map((c) => {
    if (c.id === 'lab-10') return { ...c, ipv4: '' , ipv6: 'fd00:99::1:77' };
    if (c.id === 'lab-50') return { ...c, ipv4: '10.99.1.10' };
    return c;
  });
  const run = await changeUnderFlow(lab, '10.99.1.10', reapply(moved)); // lab-10 (10 Mbit/s) → lab-50
  assertChange(t, run, '10.99.1.10 moved lab-10 → lab-50', 10, 50);
});

test('removing a circuit takes effect on a live flow (its traffic is no longer limited)', async (t) => {
  // .10 now belongs to lab-50 (50 Mbit/s)
  const run = await changeUnderFlow(lab, '10.99.1.10', reapply(lab.circuits.filter((c) => c.id !== 'lab-50')));
  const pre = windowWire(run.intervals, run.flowStart + 1000, run.t0, 4, 'lab-50 before removal');
  assertWireRate(pre.wire, 50, `lab-50 download before removal (median of ${pre.samples.length} intervals)`);
  const post = windowWire(run.intervals, run.t1 + 1000, Infinity, 6, 'after removal');
  t.diagnostic(`after removal: ${post.samples.map((v) => v.toFixed(0)).join(' ')} Mbit/s`);
  assert.ok(post.samples.every((v) => v > 150), `after removal the flow is still limited: ${post.samples.map((v) => v.toFixed(1))} Mbit/s (wire)`);
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
