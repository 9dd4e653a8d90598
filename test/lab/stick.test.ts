/**
 * The on-a-stick lab (`npm run lab -- --mode stick`): one 4-queue trunk veth from the shaper to a router
 * namespace that puts the Internet host on VLAN 2 and the customers on VLAN 3; only the shaper's VLAN swap
 * + hairpin joins the two. Shaping, unshaped traffic, live changes, restart and --clearrules as for every
 * forwarding mode (forwardingSuite.ts), and a capture on the trunk that shows the tags really cross it.
 * Runs as root; builds and removes its own namespaces (lqstk-*).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { execa } from 'execa';
import { forwardingModeSuite } from './forwardingSuite.ts';
import { defaultLabCircuits, pingStream, runLabLibreQoS, startLabDaemon, stopLabDaemon, writeLabDevices, type Lab } from '../../lab/labEnv.ts';
import { captureVlanTags } from '../../lab/testbed.ts';
import { measureCircuits } from '../support/lab.ts';

/** The trunk's XDP mode as `ip -d link` shows it. */
async function trunkXdpMode(lab: Lab): Promise<'generic' | 'native' | 'none'> {
  const link = String((await execa('ip', ['-n', lab.tb.ns.shaper, '-d', 'link', 'show', lab.tb.shaperIfs.customer])).stdout);
  return / xdpgeneric /.test(link) ? 'generic' : / xdp /.test(link) ? 'native' : 'none';
}

/** Restart the lab's lqosd with lqos.conf `config` (re-attached as it says); returns the trunk's XDP mode. */
async function restartWith(lab: Lab, config: string): Promise<string> {
  await stopLabDaemon(lab);
  writeFileSync(lab.config, config);
  await startLabDaemon(lab);
  return trunkXdpMode(lab);
}

forwardingModeSuite('stick', 'lqstk', (lab) => {
  test('stick: the trunk carries VLAN 3 (customers) and VLAN 2 (Internet) tagged, swapped by the shaper, the subscriber tag inside', async (t) => {
    const { ns, stick } = lab().tb;
    const cap = await captureVlanTags(ns.router!, stick!.routerTrunk, 4);
    const plain = await pingStream(lab(), '10.99.1.10', 20, 50);
    const tagged = await pingStream(lab(), '10.98.1.10', 20, 50); // the VLAN-100 subscriber path
    const seen = await cap.done;
    assert.equal(plain.lost + tagged.lost, 0, 'pings were lost');
    // Router → shaper ("out" of r-trunk) and shaper → router ("in"): customer frames leave on VLAN 3 and
    // come back swapped to VLAN 2; Internet frames the other way round. ≥ 20 = one per echo (+ ARP).
    const at = (k: string) => seen[k] ?? 0;
    const msg = `trunk capture: ${JSON.stringify(seen)}`;
    t.diagnostic(msg);
    for (const k of ['out:3', 'in:2', 'out:2', 'in:3', 'out:3/100', 'in:2/100', 'out:2/100', 'in:3/100']) {
      assert.ok(at(k) >= 20, `expected ≥ 20 frames ${k} on the trunk; ${msg}`);
    }
  });

  // Generic XDP runs on the skb and, on this veth, does not find the trunk's tag in the frame: the
  // VLAN is then swapped by the tc ingress program. Before, nothing crossed the shaper.
  test('stick with [tuning] xdp_mode = "generic": every circuit (IPv4, IPv6, VLAN-tagged path) is shaped to plan in both directions', async (t) => {
    const base = readFileSync(lab().config, 'utf8');
    // The lab's own plan again (an earlier test changed lab-25).
    writeLabDevices(lab(), defaultLabCircuits);
    const r = await runLabLibreQoS(lab());
    assert.equal(r.code, 0, r.output);
    let back = 'none';
    try {
      assert.equal(await restartWith(lab(), base.replace('[tuning]\n', '[tuning]\nxdp_mode = "generic"\n')), 'generic');
      const rates = await measureCircuits(lab(), defaultLabCircuits, 4);
      for (const r of rates) t.diagnostic(r.line);
      t.diagnostic(`machine: ${rates[0]?.machine}`);
      assert.equal(rates.length, 10, 'five circuits, two directions');
      assert.deepEqual(rates.flatMap((r) => r.problem ?? []), []);
    } finally {
      back = await restartWith(lab(), base);
    }
    assert.equal(back, 'native', 'back in native mode for the tests after this one');
  });
});
