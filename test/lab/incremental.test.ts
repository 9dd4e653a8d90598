/**
 * Incremental apply in the namespace lab: a changed, added or removed circuit (or a moved IP)
 * changes only that circuit's classes in the kernel (read back with tc), a flow sees the new
 * rate within about a second, and a UDP probe stream through an unchanged circuit loses nothing.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execa } from 'execa';
import { defaultLabCircuits, runLabLibreQoS, startLab, startLabDaemon, stopLab, stopLabDaemon, writeLabDevices, type Lab, type LabCircuit } from '../../lab/labEnv.ts';
import { busRequest } from '../../lib/bus/client.ts';
import { nsExec } from '../../lab/testbed.ts';
import { assertWireRate } from '../support/rates.ts';
import { changeUnderFlow, windowWire } from '../support/lab.ts';

const ID = 'lqinc';
let lab: Lab;

before(async () => {
  lab = await startLab({ id: ID, circuits: defaultLabCircuits.filter((c) => c.path === 'plain') });
  const r = await runLabLibreQoS(lab);
  assert.equal(r.code, 0, r.output);
});
after(async () => stopLab(ID));

/** Class lines (minus counters) of both shaping interfaces. */
async function classes(): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  for (const dev of [lab.tb.shaperIfs.customer, lab.tb.shaperIfs.internet]) {
    const r = await execa('tc', ['-n', lab.tb.ns.shaper, 'class', 'show', 'dev', dev]);
    for (const line of String(r.stdout).split('\n')) {
      const m = /^class htb (\S+) /.exec(line);
      if (m) out.set(`${dev} ${m[1]}`, line.trim());
    }
  }
  return out;
}

function changedKeys(a: Map<string, string>, b: Map<string, string>): string[] {
  const keys = new Set([...a.keys(), ...b.keys()]);
  return [...keys].filter((k) => a.get(k) !== b.get(k)).sort();
}

/**
 * A ping stream (ICMP echo every 20 ms) from a customer address to the Internet host, through
 * that customer's circuit: returns lost/total packets.
 */
function probeStream(ip: string, seconds: number) {
  const count = Math.round((seconds * 1000) / 20);
  return (async () => {
    const start = Date.now();
    const r = await nsExec(lab.tb.ns.cust, 'ping', ['-I', ip, '-i', '0.02', '-c', String(count), '-W', '1', '-q', lab.tb.inetIp4], { reject: false, timeout: (seconds + 10) * 1000 });
    const end = Date.now();
    const m = /(\d+) packets transmitted, (\d+) received/.exec(String(r.stdout));
    if (!m) throw new Error(`ping output not understood: ${r.all}`);
    return { lost: Number(m[1]) - Number(m[2]), packets: Number(m[1]), start, end };
  })();
}

/** A UDP probe stream (iperf3) to a customer address: returns lost/total packets. */
export function udpProbeStream(ip: string, seconds: number) {
  const port = 7000 + Math.floor(Math.random() * 1000);
  const server = execa('ip', ['netns', 'exec', lab.tb.ns.inet, 'iperf3', '-s', '-1', '-p', String(port), '-B', lab.tb.inetIp4], { reject: false });
  return (async () => {
    await new Promise((r) => setTimeout(r, 300));
    const r = await nsExec(lab.tb.ns.cust, 'iperf3', ['-c', lab.tb.inetIp4, '-p', String(port), '-B', ip, '-u', '-b', '1M', '-l', '200', '-t', String(seconds), '-R', '-J'], { reject: false, timeout: (seconds + 20) * 1000 });
    server.kill('SIGKILL');
    await server.catch(() => undefined);
    const j = JSON.parse(r.stdout) as { end: { sum: { lost_packets: number; packets: number } } };
    return { lost: j.end.sum.lost_packets, packets: j.end.sum.packets };
  })();
}

async function applyChange(circuits: LabCircuit[]) {
  writeLabDevices(lab, circuits);
  const r = await runLabLibreQoS(lab);
  assert.equal(r.code, 0, r.output);
  assert.match(r.output, /applied \(incremental\)/, 'expected an incremental apply');
  return r;
}

const minorOf = async (id: string) => {
  const st = JSON.parse((await import('node:fs')).readFileSync(`${lab.dir}/state/shaping/planner_state.json`, 'utf8'));
  const s = st.circuits[id];
  return `${s.queue.toString(16)}:${s.minor.toString(16)}`;
};

test('a rate change touches only that circuit, applies within ~1 s (±3 %, traffic flowing), and an unchanged circuit loses no packets', async (t) => {
  const before = await classes();
  const probe = probeStream('10.99.1.11', 11); // lab-25, unchanged; outlasts warm-up (3.5 s) + apply + window (5 s)
  // lab-10, changed 10 → 4 under a live download. t0 is taken right before LibreQoS is spawned, t1
  // when it returns; the flow's intervals are placed on the same wall clock (test/support/lab.ts).
  const run = await changeUnderFlow(lab, '10.99.1.10', async () => {
    await applyChange(lab.circuits.map((c) => (c.id === 'lab-10' ? { ...c, down: 4 } : c)));
  });
  const after = await classes();
  const id = await minorOf('lab-10');
  assert.deepEqual(changedKeys(before, after), [`${lab.tb.shaperIfs.customer} ${id}`]);
  const p = await probe;
  assert.ok(p.start < run.t0 && p.end > run.t1, `the probe stream (${p.start}–${p.end}) did not span the apply (${run.t0}–${run.t1}): inconclusive`);
  assert.equal(p.lost, 0, `probe stream lost ${p.lost} of ${p.packets}`);
  const pre = windowWire(run.intervals, run.flowStart + 1000, run.t0, 4, 'lab-10 before the change');
  // From 1 s after the command returned (the command's own run time counted from t0, when it was spawned).
  const post = windowWire(run.intervals, run.t1 + 1000, Infinity, 6, 'lab-10 from 1 s after the change');
  const fmt = (v: number[]) => v.map((x) => x.toFixed(2)).join(' ');
  t.diagnostic(`LibreQoS ran ${((run.t1 - run.t0) / 1000).toFixed(2)} s from spawn; before ${fmt(pre.samples)}; after ${fmt(post.samples)} Mbit/s (wire)`);
  assertWireRate(pre.wire, 10, `lab-10 download before the change (median of ${pre.samples.length} intervals)`);
  assertWireRate(post.wire, 4, `lab-10 download from 1 s after the change returned (median of ${post.samples.length} intervals)`);
  const stalled = post.samples.filter((v) => v < 4 * 0.5);
  assert.deepEqual(stalled, [], `intervals after the change below half the new rate (traffic stalled): ${fmt(post.samples)}`);
});

test('adding a circuit adds only its classes; an unchanged circuit loses no packets', async () => {
  const before = await classes();
  const probe = probeStream('10.99.1.11', 4);
  await new Promise((r) => setTimeout(r, 1000));
  const added: LabCircuit = { id: 'lab-new', name: 'New Customer', parent: 'Lab_AP_2', ipv4: '10.99.1.99', ipv6: '', down: 12, up: 3, path: 'plain' };
  await applyChange([...lab.circuits, added]);
  const after = await classes();
  const id = await minorOf('lab-new');
  assert.deepEqual(changedKeys(before, after), [`${lab.tb.shaperIfs.customer} ${id}`, `${lab.tb.shaperIfs.internet} ${id}`].sort());
  assert.equal((await probe).lost, 0);
});

test('moving an IP between circuits changes no class; removing a circuit removes only its classes', async () => {
  const before = await classes();
  const probe = probeStream('10.99.1.11', 5);
  await new Promise((r) => setTimeout(r, 1000));
  await applyChange(lab.circuits.map((c) => (c.id === 'lab-new' ? { ...c, ipv4: '' , ipv6: 'fd00:99::1:99' } : c.id === 'lab-50' ? { ...c, ipv4: '10.99.1.12,10.99.1.99' } : c)));
  assert.deepEqual(changedKeys(before, await classes()), []);
  const id = await minorOf('lab-new');
  await applyChange(lab.circuits.filter((c) => c.id !== 'lab-new'));
  const after = await classes();
  assert.deepEqual(changedKeys(before, after), [`${lab.tb.shaperIfs.customer} ${id}`, `${lab.tb.shaperIfs.internet} ${id}`].sort());
  assert.equal((await probe).lost, 0);
});

test('a re-run with nothing changed does nothing; drift in the kernel is detected and repaired', async () => {
  const r = await runLabLibreQoS(lab);
  assert.equal(r.code, 0, r.output);
  assert.match(r.output, /already match the plan/);
  const id = await minorOf('lab-50');
  await execa('tc', ['-n', lab.tb.ns.shaper, 'class', 'change', 'dev', lab.tb.shaperIfs.customer, 'classid', id, 'htb', 'rate', '1mbit', 'ceil', '2mbit']);
  const r2 = await runLabLibreQoS(lab);
  assert.equal(r2.code, 0, r2.output);
  assert.match(r2.output, /drifted/);
  const line = (await classes()).get(`${lab.tb.shaperIfs.customer} ${id}`)!;
  assert.match(line, /ceil 50Mbit/);
});

test('restarting lqosd under traffic loses no packets on a shaped stream; the applied state is re-adopted', async () => {
  const probe = probeStream('10.99.1.11', 6); // lab-25, shaped
  await new Promise((r) => setTimeout(r, 1500));
  await stopLabDaemon(lab);
  await startLabDaemon(lab);
  const p = await probe;
  assert.equal(p.lost, 0, `lost ${p.lost} of ${p.packets} while lqosd restarted`);
  const status = (await busRequest('status', {}, { path: lab.busPath })) as { shaping?: unknown };
  assert.ok(status.shaping !== undefined);
  const r = await runLabLibreQoS(lab);
  assert.equal(r.code, 0, r.output);
  assert.match(r.output, /already match the plan/, 'after a restart the next run should find everything in place');
});
