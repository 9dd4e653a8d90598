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
import { iperfClient, labBpfObject, nsExec } from '../../lab/testbed.ts';
import { assertWireRate, median, wireRateProblem } from '../support/rates.ts';
import { changeUnderFlow, measureCircuits, windowWire, type CircuitRate } from '../support/lab.ts';
import { gapsWhileSpinning, takeCpus } from '../support/cpuThief.ts';

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
  t.diagnostic(`machine: ${mine[0]?.machine}`);
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

test('with every CPU taken away 8 ms at a time, 40 times a second (a busy hypervisor), every circuit keeps its rate in both directions (±3 %, wire rate)', async (t) => {
  // HTB keeps at most `burst` bytes of tokens, so a CPU that is away longer than the burst lasts loses
  // that sending time for good. With 1 ms bursts this cost the circuits 8–24 %; lib/compile/tc.ts
  // HTB_BURST_MS is the burst that rides it out.
  const thief = takeCpus({ awayMs: 8, timesPerSecond: 40 });
  try {
    const gaps = gapsWhileSpinning(500, 6);
    assert.ok(gaps.length >= 10, `the thief took this CPU ${gaps.length} times in 0.5 s (expected about 20)`);
    const rates = await measureCircuits(lab, defaultLabCircuits, SECONDS);
    for (const r of rates) t.diagnostic(r.line);
    t.diagnostic(`machine: ${rates[0]?.machine}`);
    assert.equal(rates.length, defaultLabCircuits.length * 2);
    assert.deepEqual(rates.flatMap((r) => r.problem ?? []), []);
  } finally {
    thief.stop();
  }
});

test('MPLS paths (IPv4 under two labels; an Ethernet pseudowire as VPLS carries it) are shaped to plan in both directions (±3 %, wire rate) and really carry labels', async (t) => {
  // lab/mpls_tag.c on the end hosts labels 10.97.0.0/16 (IPv4 under the labels, MTU 1492) and
  // 10.96.0.0/16 (labels, control word, inner Ethernet header, MTU 1474): 1514-byte frames either way.
  // UDP, not TCP: TCP hands tc segment trains (GSO), which this kernel cannot cut up once they carry
  // labels (no MPLS GSO), so the lab labels whole datagrams.
  const obj = await labBpfObject('mpls_tag');
  const paths = [
    { net: '10.97.0.0/16', mtu: 1492, server: '10.97.0.1', circuit: { id: 'lab-mpls', name: 'MPLS Customer', parent: 'Lab_AP_2', ipv4: '10.97.1.10', ipv6: '', down: 12, up: 6, path: 'plain' } satisfies LabCircuit },
    { net: '10.96.0.0/16', mtu: 1474, server: '10.96.0.1', circuit: { id: 'lab-vpls', name: 'VPLS Customer', parent: 'Lab_AP_1', ipv4: '10.96.1.10', ipv6: '', down: 9, up: 3, path: 'plain' } satisfies LabCircuit },
  ];
  let failed = true;
  const ends = (p: (typeof paths)[number]) => [{ ns: lab.tb.ns.cust, ip: p.circuit.ipv4 }, { ns: lab.tb.ns.inet, ip: p.server }];
  /**
   * Sent at 3× the plan; the receiver's 0.5 s intervals (after 1 s omitted) as frames on the wire
   * (received UDP payload of mtu − 28 bytes per 1514-byte frame), median — start and end effects of
   * the queue left out.
   */
  const udpWire = async (p: (typeof paths)[number], direction: 'download' | 'upload', plan: number): Promise<number> => {
    const payload = p.mtu - 28;
    const args = ['-u', '-b', `${plan * 3}M`, '-l', String(payload), '-t', String(SECONDS), '-O', '1', '-i', '0.5', '-J'];
    args.push(...(direction === 'download' ? ['-R'] : ['--get-server-output']));
    const json = await iperfClient(lab.tb, { custIp: p.circuit.ipv4, server: p.server, args, seconds: SECONDS, serverJson: true, what: `UDP ${direction}` });
    type Intervals = Array<{ sum: { bytes: number; seconds: number; omitted: boolean } }>;
    const j = json as { intervals?: Intervals; server_output_json?: { intervals?: Intervals } };
    const received = (direction === 'download' ? j.intervals : j.server_output_json?.intervals) ?? [];
    const rates = received.filter((i) => !i.sum.omitted && i.sum.seconds > 0.4).map((i) => ((i.sum.bytes / payload) * 1514 * 8) / i.sum.seconds / 1e6);
    assert.ok(rates.length >= 4, `${p.circuit.id} ${direction}: only ${rates.length} receiver intervals`);
    t.diagnostic(`${p.circuit.id} ${direction}: ${rates.map((v) => v.toFixed(2)).join(' ')} Mbit/s (wire, 0.5 s intervals)`);
    return median(rates);
  };
  try {
    for (const ns of [lab.tb.ns.cust, lab.tb.ns.inet]) {
      // First in the chain; frames it does not label fall through (TC_ACT_UNSPEC) to the VLAN tagger.
      await nsExec(ns, 'tc', ['filter', 'add', 'dev', 'eth0', 'egress', 'pref', '1', 'bpf', 'da', 'obj', obj, 'sec', 'tc', 'program', 'mpls_push']);
      await nsExec(ns, 'ip', ['link', 'set', 'dev', 'eth0', 'xdp', 'obj', obj, 'sec', 'xdp']);
    }
    for (const p of paths) {
      for (const { ns, ip } of ends(p)) {
        await nsExec(ns, 'ip', ['addr', 'add', `${ip}/32`, 'dev', 'eth0']);
        await nsExec(ns, 'ip', ['route', 'add', p.net, 'dev', 'eth0', 'mtu', String(p.mtu), 'src', ip]);
      }
    }
    writeLabDevices(lab, [...defaultLabCircuits, ...paths.map((p) => p.circuit)]);
    const r = await runLabLibreQoS(lab);
    assert.equal(r.code, 0, r.output);
    const problems: string[] = [];
    // The two paths (two circuits, two classes) at the same time, one direction at a time.
    for (const direction of ['download', 'upload'] as const) {
      const planOf = (p: (typeof paths)[number]) => (direction === 'download' ? p.circuit.down : p.circuit.up);
      const wires = await Promise.all(paths.map((p) => udpWire(p, direction, planOf(p))));
      paths.forEach((p, i) => {
        t.diagnostic(`${p.circuit.id} ${direction}: wire ${wires[i].toFixed(2)} Mbit/s vs plan ${planOf(p)}`);
        problems.push(...(wireRateProblem(wires[i], planOf(p), `${p.circuit.id} ${direction} (wire rate)`) ?? []));
      });
    }
    assert.deepEqual(problems, []);
    // Both ends really label: with either end no longer popping, pings from the other one go unanswered.
    for (const [deaf, from] of [[lab.tb.ns.inet, 'cust'], [lab.tb.ns.cust, 'inet']] as const) {
      await nsExec(deaf, 'ip', ['link', 'set', 'dev', 'eth0', 'xdp', 'off']);
      // Both paths at once: an unanswered ping takes its whole -W.
      await Promise.all(paths.map(async (p) => {
        const [ns, src, dst] = from === 'cust' ? [lab.tb.ns.cust, p.circuit.ipv4, p.server] : [lab.tb.ns.inet, p.server, p.circuit.ipv4];
        const ping = await nsExec(ns, 'ping', ['-c', '2', '-W', '1', '-I', src, dst], { reject: false });
        assert.notEqual(ping.exitCode, 0, `${p.circuit.id}: pings from ${from} still answered with the far end not popping labels (frames not labelled?): ${ping.stdout}`);
      }));
      await nsExec(deaf, 'ip', ['link', 'set', 'dev', 'eth0', 'xdp', 'obj', obj, 'sec', 'xdp']);
    }
    failed = false;
  } finally {
    for (const ns of [lab.tb.ns.cust, lab.tb.ns.inet]) {
      await nsExec(ns, 'ip', ['link', 'set', 'dev', 'eth0', 'xdp', 'off'], { reject: false });
      await nsExec(ns, 'tc', ['filter', 'del', 'dev', 'eth0', 'egress', 'pref', '1'], { reject: false });
    }
    for (const p of paths) {
      for (const { ns, ip } of ends(p)) {
        await nsExec(ns, 'ip', ['route', 'del', p.net, 'dev', 'eth0'], { reject: false });
        await nsExec(ns, 'ip', ['addr', 'del', `${ip}/32`, 'dev', 'eth0'], { reject: false });
      }
    }
    writeLabDevices(lab, defaultLabCircuits);
    // Two of seven circuits go: more than [safety] max_removed_percent, so the removal is forced.
    const r = await runLabLibreQoS(lab, ['--force']);
    // Not over the test's own failure: a failed restore shows in the tests after it anyway.
    if (!failed) assert.equal(r.code, 0, r.output);
    else if (r.code !== 0) t.diagnostic(`restoring the lab's circuits failed too: ${r.output}`);
  }
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
