/**
 * The upstream runbook `LibreQoS --clearrules`, then `LibreQoS`: the second run shapes again through
 * the running lqosd (it attaches the dataplane anew), instead of failing because the pinned maps it
 * attached at start are gone. Read back: XDP and the classifier attached, the HTB classes at plan,
 * the IP mappings in the pinned map, and the wire rate of one circuit at plan.
 * Root; run under `flock /tmp/lqos-kernel.lock`.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { execa } from 'execa';
import { runLabLibreQoS, stopLab, type Lab } from '../../lab/labEnv.ts';
import { listMappings } from '../../dataplane/maps.ts';
import { assertWireRate } from '../support/rates.ts';
import { measureWire, startShapedLab } from '../support/lab.ts';

const ID = 'lqlabcr';
let lab: Lab;

before(async () => {
  lab = await startShapedLab({ id: ID });
});
after(async () => {
  await stopLab(ID);
});

async function xdpLinks(): Promise<string[]> {
  const links = JSON.parse(String((await execa('ip', ['-n', lab.tb.ns.shaper, '-j', 'link', 'show'])).stdout)) as Array<{ ifname: string; xdp?: unknown }>;
  return links.filter((l) => l.xdp).map((l) => l.ifname).sort();
}

test('--clearrules, then LibreQoS: lqosd attaches the dataplane again and the circuits are shaped at plan', async (t) => {
  const attachedBefore = await xdpLinks();
  assert.equal(attachedBefore.length, 2, `XDP on both shaping ports before: ${attachedBefore.join(', ')}`);
  const clear = await runLabLibreQoS(lab, ['--clearrules']);
  assert.equal(clear.code, 0, clear.output);
  assert.deepEqual(await xdpLinks(), [], 'nothing attached after --clearrules');
  assert.equal(existsSync(join(lab.pinRoot, 'ip_to_class')), false, 'the pinned mappings are gone');

  const again = await runLabLibreQoS(lab);
  assert.equal(again.code, 0, `LibreQoS after --clearrules must shape again through lqosd:\n${again.output}`);
  assert.deepEqual(await xdpLinks(), attachedBefore, 'XDP attached again on the same ports');
  const mappings = await listMappings({ pinRoot: lab.pinRoot });
  const ips = lab.circuits.map((c) => c.ipv4).filter((ip): ip is string => Boolean(ip));
  assert.ok(ips.length > 0);
  for (const ip of ips) assert.ok(mappings.some((m) => m.prefix.startsWith(ip)), `mapping for ${ip} back in the pinned map (${mappings.length} mappings)`);
  const c = lab.circuits.find((x) => x.ipv4 && x.path !== 'vlan')!;
  const { wire, samples } = await measureWire(lab, c.ipv4!, 'download', 5);
  t.diagnostic(`${c.id} download after --clearrules + LibreQoS: ${wire.toFixed(2)} Mbit/s on the wire (${samples.map((v) => v.toFixed(1)).join(' ')})`);
  assertWireRate(wire, c.down, `${c.id} download after --clearrules and a new LibreQoS run`);
});
