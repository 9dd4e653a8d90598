/**
 * The on-a-stick lab (`npm run lab -- --mode stick`): one 4-queue trunk veth from the shaper to a router
 * namespace that puts the Internet host on VLAN 2 and the customers on VLAN 3; only the shaper's VLAN swap
 * + hairpin joins the two. Shaping, unshaped traffic, live changes, restart and --clearrules as for every
 * forwarding mode (forwardingSuite.ts), and a capture on the trunk that shows the tags really cross it.
 * Runs as root; builds and removes its own namespaces (lqstk-*).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { forwardingModeSuite } from './forwardingSuite.ts';
import { pingStream } from '../../lab/labEnv.ts';
import { captureVlanTags } from '../../lab/testbed.ts';

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
});
