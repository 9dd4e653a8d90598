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
    const r = await nsExec(lab.tb.ns.cust, 'ping', ['-I', ip, '-i', '0.02', '-c', String(count), '-W', '1', '-q', lab.tb.inetIp4], { reject: false, timeout: (seconds + 10) * 1000 });
    const m = /(\d+) packets transmitted, (\d+) received/.exec(String(r.stdout));
    if (!m) throw new Error(`ping output not understood: ${r.all}`);
    return { lost: Number(m[1]) - Number(m[2]), packets: Number(m[1]) };
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

/** Per-second download rates of a TCP flow to `ip`. */
function tcpFlow(ip: string, seconds: number) {
  const port = 8000 + Math.floor(Math.random() * 1000);
  const server = execa('ip', ['netns', 'exec', lab.tb.ns.inet, 'iperf3', '-s', '-1', '-p', String(port), '-B', lab.tb.inetIp4], { reject: false });
  return (async () => {
    await new Promise((r) => setTimeout(r, 300));
    const r = await nsExec(lab.tb.ns.cust, 'iperf3', ['-c', lab.tb.inetIp4, '-p', String(port), '-B', ip, '-t', String(seconds), '-R', '-J', '-i', '0.5'], { reject: false, timeout: (seconds + 20) * 1000 });
    server.kill('SIGKILL');
    await server.catch(() => undefined);
    const j = JSON.parse(r.stdout) as { intervals: Array<{ sum: { bits_per_second: number; end: number } }> };
    return j.intervals.map((i) => ({ t: i.sum.end, mbps: i.sum.bits_per_second / 1e6 }));
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

test('a rate change touches only that circuit, applies within ~1 s, and an unchanged circuit loses no packets', async () => {
  const before = await classes();
  const probe = probeStream('10.99.1.11', 6); // lab-25, unchanged
  const flow = tcpFlow('10.99.1.10', 7); // lab-10, changed 10 → 4
  await new Promise((r) => setTimeout(r, 2500));
  const tApply = Date.now();
  await applyChange(lab.circuits.map((c) => (c.id === 'lab-10' ? { ...c, down: 4 } : c)));
  const applySeconds = (Date.now() - tApply) / 1000;
  const after = await classes();
  const id = await minorOf('lab-10');
  assert.deepEqual(changedKeys(before, after), [`${lab.tb.shaperIfs.customer} ${id}`]);
  const p = await probe;
  assert.equal(p.lost, 0, `probe stream lost ${p.lost} of ${p.packets}`);
  const rates = await flow;
  // The flow runs 7 s; the change was issued at ~2.8 s and took `applySeconds` (command start-up
  // included). Within 1 s after the command returned the flow must be at the new rate.
  const doneAt = 2.8 + applySeconds;
  const settled = rates.filter((r) => r.t > doneAt + 1);
  assert.ok(settled.length >= 2, `not enough samples after the change: ${JSON.stringify(rates)}`);
  for (const r of settled) assert.ok(r.mbps < 4 * 1.25, `still ${r.mbps.toFixed(1)} Mbit/s at t=${r.t}`);
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
