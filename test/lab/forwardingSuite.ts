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
  defaultLabCircuits, liveFlow, measure, pingStream, runLabLibreQoS, startLab, startLabDaemon, stopLab, stopLabDaemon,
  UNSHAPED_IP, wireRate, writeLabDevices, type Lab, type LabCircuit,
} from '../../lab/labEnv.ts';
import type { LabForwarding } from '../../lab/testbed.ts';

const within = (measured: number, plan: number, tol = 0.1) => Math.abs(measured - plan) / plan <= tol;

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

  test(`${forwarding}: every circuit (IPv4, IPv6, VLAN-tagged path) is shaped to plan in both directions (±10%, wire rate)`, async () => {
    const errors: string[] = [];
    for (const c of defaultLabCircuits) {
      const ip = c.ipv4 || c.ipv6;
      const v6 = ip.includes(':');
      const down = wireRate(await measure(lab, ip, 'download'), v6);
      const up = wireRate(await measure(lab, ip, 'upload'), v6);
      if (!within(down, c.down)) errors.push(`${c.id} download ${down.toFixed(2)} vs plan ${c.down}`);
      if (!within(up, c.up)) errors.push(`${c.id} upload ${up.toFixed(2)} vs plan ${c.up}`);
    }
    assert.deepEqual(errors, []);
  });

  test(`${forwarding}: an address not in ShapedDevices passes unshaped`, async () => {
    const down = await measure(lab, UNSHAPED_IP, 'download');
    const up = await measure(lab, UNSHAPED_IP, 'upload');
    assert.ok(down > 200 && up > 200, `unshaped address got ${down.toFixed(1)} down / ${up.toFixed(1)} up Mbit/s`);
  });

  test(`${forwarding}: a rate change re-applied by LibreQoS takes effect on a live flow`, async () => {
    const flow = liveFlow(lab, '10.99.1.11', 8); // lab-25
    await new Promise((r) => setTimeout(r, 3500));
    const changed: LabCircuit[] = defaultLabCircuits.map((c) => (c.id === 'lab-25' ? { ...c, down: 5 } : c));
    writeLabDevices(lab, changed);
    const r = await runLabLibreQoS(lab);
    assert.equal(r.code, 0, r.output);
    const rates = await flow;
    assert.ok(rates.slice(1, 3).every((v) => within(v, 25, 0.15)), `before change: ${rates.map((v) => v.toFixed(1))}`);
    assert.ok(rates.slice(-2).every((v) => within(v, 5, 0.15)), `after change: ${rates.map((v) => v.toFixed(1))}`);
  });

  test(`${forwarding}: restarting lqosd under traffic loses no packet of a shaped ping stream; programs stay attached`, async (t) => {
    const before = await attachedPrograms(lab);
    const count = 1500; // 15 s at 10 ms: longer than a restart
    const t0 = Date.now();
    const stream = pingStream(lab, '10.99.1.11', count, 10);
    await new Promise((r) => setTimeout(r, 1500));
    await stopLabDaemon(lab);
    const between = await attachedPrograms(lab);
    await startLabDaemon(lab);
    const restartedAt = (Date.now() - t0) / 1000;
    const p = await stream;
    t.diagnostic(`lqosd stopped and back by ${restartedAt.toFixed(1)} s; ${p.packets} pings, ${p.lost} lost`);
    assert.ok(restartedAt < (count * 10) / 1000 - 1, `the restart took until ${restartedAt.toFixed(1)} s, after the ping stream ended: inconclusive`);
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
