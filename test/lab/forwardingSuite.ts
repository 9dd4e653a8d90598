/**
 * Acceptance tests of a forwarding mode in which only our programs forward (xdp-bridge, stick): the
 * namespace lab in that mode with the real lqosd and LibreQoS, shaped by wire rate as in lab.test.ts.
 * Registered by test/lab/xdpbridge.test.ts and test/lab/stick.test.ts (one lab per file).
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readdirSync } from 'node:fs';
import { execa } from 'execa';
import {
  defaultLabCircuits, measure, pingStream, runLabLibreQoS, startLab, startLabDaemon, stopLab, stopLabDaemon,
  UNSHAPED_IP, writeLabDevices, type Lab, type LabCircuit,
} from '../../lab/labEnv.ts';
import type { LabForwarding } from '../../lab/testbed.ts';
import { busRequest } from '../../lib/bus/client.ts';
import { assertWireRate } from '../support/rates.ts';
import { changeUnderFlow, measureCircuits, windowWire } from '../support/lab.ts';

/**
 * Seconds of 0.5 s intervals each iperf3 rate measurement takes the median of (after 1 s of slow start);
 * the circuits are measured at the same time, one direction at a time (test/support/lab.ts measureCircuits).
 */
const SECONDS = 5;

/** What the shaper namespace holds of ours: XDP programs, clsact filters (by interface and hook). */
export async function attachedPrograms(lab: Lab): Promise<{ xdp: string[]; ingress: string[]; egress: string[] }> {
  const links = JSON.parse(String((await execa('ip', ['-n', lab.tb.ns.shaper, '-j', 'link', 'show'])).stdout)) as Array<{ ifname: string; xdp?: unknown }>;
  const devs = [...new Set([lab.tb.shaperIfs.customer, lab.tb.shaperIfs.internet])];
  const filters = async (hook: string) => {
    const out: string[] = [];
    for (const dev of devs) {
      const f = await execa('tc', ['-n', lab.tb.ns.shaper, 'filter', 'show', 'dev', dev, hook], { reject: false });
      if (String(f.stdout).trim()) out.push(dev);
    }
    return out;
  };
  return { xdp: links.filter((l) => l.xdp).map((l) => l.ifname), ingress: await filters('ingress'), egress: await filters('egress') };
}

/**
 * Wall-clock ms when lqosd's start-up run (a normal run of the inputs) finished after a restart at
 * `since`: its status's shaping.lastApply.at once it is later than `since` (polled; fails after 30 s).
 */
async function startupRunDone(lab: Lab, since: number): Promise<number> {
  const end = Date.now() + 30_000;
  let last: string | undefined;
  while (Date.now() < end) {
    const st = (await busRequest('status', {}, { path: lab.busPath })) as { shaping?: { lastApply?: { at: string } } };
    last = st.shaping?.lastApply?.at;
    if (last && Date.parse(last) >= since) return Date.parse(last);
    await new Promise((r) => setTimeout(r, 100));
  }
  assert.fail(`lqosd's start-up run did not finish within 30 s of the restart (status shaping.lastApply.at: ${last}); see ${lab.dir}/lqosd.log`);
}

export function forwardingModeSuite(forwarding: LabForwarding, id: string, extra?: (lab: () => Lab) => void): void {
  let lab: Lab;
  const devs = () => [...new Set([lab.tb.shaperIfs.customer, lab.tb.shaperIfs.internet])].sort();

  before(async () => {
    lab = await startLab({ id, forwarding });
    const r = await runLabLibreQoS(lab);
    assert.equal(r.code, 0, r.output);
  });
  after(async () => stopLab(id));

  test(`${forwarding}: our programs are attached, ingress redirect included`, async () => {
    const p = await attachedPrograms(lab);
    assert.deepEqual(p.xdp.sort(), devs(), 'XDP on every shaping interface');
    assert.deepEqual(p.ingress.sort(), devs(), 'the forwarding program on tc ingress of every shaping interface');
    assert.deepEqual(p.egress.sort(), devs(), 'the classifier on tc egress of every shaping interface');
    const bridges = JSON.parse(String((await execa('ip', ['-n', lab.tb.ns.shaper, '-j', 'link', 'show', 'type', 'bridge'])).stdout || '[]')) as unknown[];
    assert.equal(bridges.length, 0, 'no Linux bridge may forward in this mode');
  });

  test(`${forwarding}: every circuit (IPv4, IPv6, VLAN-tagged path) is shaped to plan in both directions (±3 %, wire rate)`, async (t) => {
    assert.equal(defaultLabCircuits.length, 5, 'the lab has its five circuits');
    const rates = await measureCircuits(lab, defaultLabCircuits, SECONDS);
    for (const r of rates) t.diagnostic(r.line);
    t.diagnostic(`machine: ${rates[0]?.machine}`);
    assert.equal(rates.length, 10, 'five circuits, two directions');
    assert.deepEqual(rates.flatMap((r) => r.problem ?? []), []);
  });

  test(`${forwarding}: an address not in ShapedDevices passes unshaped`, async () => {
    const [down, up] = await Promise.all([measure(lab, UNSHAPED_IP, 'download'), measure(lab, UNSHAPED_IP, 'upload')]);
    assert.ok(down > 200 && up > 200, `unshaped address got ${down.toFixed(1)} down / ${up.toFixed(1)} up Mbit/s`);
  });

  test(`${forwarding}: a rate change re-applied by LibreQoS takes effect on a live flow (±3 % before and after)`, async (t) => {
    const changed: LabCircuit[] = defaultLabCircuits.map((c) => (c.id === 'lab-25' ? { ...c, down: 5 } : c));
    const run = await changeUnderFlow(lab, '10.99.1.11', async () => { // lab-25
      writeLabDevices(lab, changed);
      const r = await runLabLibreQoS(lab);
      assert.equal(r.code, 0, r.output);
    });
    const pre = windowWire(run.intervals, run.flowStart + 1000, run.t0, 4, 'lab-25 before the change');
    const post = windowWire(run.intervals, run.t1 + 1000, Infinity, 6, 'lab-25 after the change');
    t.diagnostic(`LibreQoS took ${((run.t1 - run.t0) / 1000).toFixed(2)} s; before ${pre.samples.map((v) => v.toFixed(1)).join(' ')}; after ${post.samples.map((v) => v.toFixed(1)).join(' ')}`);
    assertWireRate(pre.wire, 25, `lab-25 download before the change (median of ${pre.samples.length} intervals)`);
    assertWireRate(post.wire, 5, `lab-25 download from 1 s after LibreQoS returned (median of ${post.samples.length} intervals)`);
  });

  test(`${forwarding}: restarting lqosd under traffic loses no packet of a shaped ping stream; programs stay attached`, async (t) => {
    const before = await attachedPrograms(lab);
    // 7 s at 10 ms (about 11 s here): it must outlast the restart and lqosd's start-up run after it,
    // which is asserted below (the stream is inconclusive otherwise).
    const count = 700;
    const t0 = Date.now();
    const stream = pingStream(lab, '10.99.1.11', count, 10).then((p) => ({ ...p, end: Date.now() }));
    await new Promise((r) => setTimeout(r, 1500));
    const stoppedAt = Date.now();
    await stopLabDaemon(lab);
    const between = await attachedPrograms(lab);
    await startLabDaemon(lab);
    const restartedAt = (Date.now() - t0) / 1000;
    const startupRunAt = await startupRunDone(lab, stoppedAt);
    const p = await stream;
    t.diagnostic(`lqosd stopped and back by ${restartedAt.toFixed(1)} s, its start-up run done by ${((startupRunAt - t0) / 1000).toFixed(1)} s; ${p.packets} pings, ${p.lost} lost, the stream ended at ${((p.end - t0) / 1000).toFixed(1)} s`);
    assert.ok(startupRunAt < p.end - 1000, `lqosd's start-up run finished at ${((startupRunAt - t0) / 1000).toFixed(1)} s, less than 1 s before the ping stream ended (${((p.end - t0) / 1000).toFixed(1)} s): inconclusive`);
    assert.equal(p.packets, count);
    assert.equal(p.lost, 0, `lost ${p.lost} of ${p.packets} pings while lqosd restarted`);
    assert.deepEqual(between, before, 'programs must stay attached while lqosd is stopped');
    assert.deepEqual(await attachedPrograms(lab), before, 'programs attached after the restart');
  });

  extra?.(() => lab);

  test(`${forwarding}: --clearrules leaves nothing behind, and then nothing forwards`, async () => {
    const probe = await pingStream(lab, '10.99.1.10', 5, 200);
    assert.equal(probe.lost, 0, 'the path must work before --clearrules');
    const r = await runLabLibreQoS(lab, ['--clearrules']);
    assert.equal(r.code, 0, r.output);
    assert.deepEqual(await attachedPrograms(lab), { xdp: [], ingress: [], egress: [] });
    const qd = JSON.parse(String((await execa('tc', ['-n', lab.tb.ns.shaper, '-j', 'qdisc', 'show'])).stdout)) as Array<{ kind: string; dev: string }>;
    assert.deepEqual(qd.filter((q) => ['mq', 'htb', 'clsact', 'pfifo', 'cake', 'fq_codel'].includes(q.kind)).map((q) => `${q.dev}:${q.kind}`), []);
    assert.ok(!existsSync(lab.pinRoot) || readdirSync(lab.pinRoot).length === 0, `pinned maps left in ${lab.pinRoot}`);
    // Only our programs forwarded: with them gone the two sides are cut off.
    const after = await pingStream(lab, '10.99.1.10', 5, 200);
    assert.equal(after.lost, after.packets, `${after.packets - after.lost} of ${after.packets} pings still crossed the shaper with no programs attached`);
  });
}
