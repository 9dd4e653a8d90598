// test-gate: shared (CPU only; see test/support/gate.ts)
/**
 * Forwarding modes (issue 12), the pure parts: the stick's VLAN ids in the config (missing, 0, equal
 * → a config error naming the keys and what to do), `[bridge] use_xdp_bridge` honoured (no warning),
 * the preflight decision on real `ip -j -d link show` output (test/fixtures/forwarding: eth0 and eth1
 * ports of br0, eth2 in no bridge), the status the daemon reports, and the web UI's words for it.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ConfigError, interfacesOf, parseConfigText, type ShapingInterfaces } from '../../lib/config/load.ts';
import { forwardingVerdict, type IpLink } from '../../lib/kernel/forwarding.ts';
import { forwardingStatus } from '../../lib/daemon/forwardingStatus.ts';
import { attachOptionsFor } from '../../lib/shaping/kernel.ts';
import { forwardingText } from '../../webui/src/lib/forwarding.ts';
import type { Log } from '../../lib/util/log.ts';
import { repoRoot } from '../support/paths.ts';

const LINKS = JSON.parse(readFileSync(join(repoRoot, 'test/fixtures/forwarding/ip-link-br0.json'), 'utf8')) as IpLink[];
const stick = (vlans: string) => `[single_interface]\ninterface = "eth0"\n${vlans}`;
const xdpBridge = (inet: string, net: string) => `[bridge]\nuse_xdp_bridge = true\nto_internet = "${inet}"\nto_network = "${net}"\n`;
const linuxBridge = (inet: string, net: string) => `[bridge]\nto_internet = "${inet}"\nto_network = "${net}"\n`;
const ifacesOf = (text: string): ShapingInterfaces => interfacesOf(parseConfigText(text, 'x.conf').config)!;

function configError(text: string): ConfigError {
  try {
    parseConfigText(text, '/etc/lqos.conf');
  } catch (e) {
    assert.ok(e instanceof ConfigError, String(e));
    return e;
  }
  assert.fail(`accepted: ${text}`);
}

test('stick: missing VLAN ids are a config error naming both keys and what to set', () => {
  const e = configError(stick(''));
  assert.deepEqual(e.details.map((d) => d.split(':')[0]), ['single_interface.internet_vlan', 'single_interface.network_vlan']);
  for (const d of e.details) {
    assert.match(d, /: missing \(expected a number\); on a stick set internet_vlan and network_vlan in \[single_interface\] to the two VLAN ids \(1-4094, different; 0 means untagged/);
  }
  const one = configError(stick('internet_vlan = 10\n'));
  assert.deepEqual(one.details.map((d) => d.split(':')[0]), ['single_interface.network_vlan']);
});

test('stick: VLAN 0 (untagged) and 4095 are refused with the range and the hint', () => {
  const zero = configError(stick('internet_vlan = 0\nnetwork_vlan = 3\n'));
  assert.equal(zero.details.length, 1);
  assert.match(zero.details[0]!, /^single_interface\.internet_vlan: expected a number >= 1, got 0; .*0 means untagged and is not a VLAN/);
  const big = configError(stick('internet_vlan = 2\nnetwork_vlan = 4095\n'));
  assert.match(big.details[0]!, /^single_interface\.network_vlan: expected a number <= 4094, got 4095; /);
});

test('stick: equal VLAN ids are a config error naming both keys and the fix', () => {
  const e = configError(stick('internet_vlan = 7\nnetwork_vlan = 7\n'));
  assert.equal(e.details.length, 1);
  assert.match(e.details[0]!, /^single_interface\.network_vlan: equals internet_vlan \(both 7\): on a stick the router must trunk two different VLANs to eth0/);
  assert.match(e.message, /^\/etc\/lqos\.conf: invalid configuration/);
});

test('stick: valid VLANs load; the attach gets the stick path (VLAN ids, onAStick: stripping refused by the attach)', () => {
  const { config, warnings } = parseConfigText(stick('internet_vlan = 2\nnetwork_vlan = 3\n[tuning]\ndisable_rxvlan = false\n'), 'x.conf');
  assert.deepEqual(warnings, []);
  const o = attachOptionsFor({ config, interfaces: interfacesOf(config)!, queues: 2, pinRoot: '/nonexistent', log: {} as Log });
  assert.equal(o.onAStick, true, 'vlanVerdict refuses VLAN stripping on a stick whatever disable_rxvlan says');
  assert.deepEqual(o.vlan, { internet: 2, network: 3 });
  assert.equal(o.downloadIf, o.uploadIf);
});

test('[bridge] use_xdp_bridge = true is honoured: no "not implemented" warning, forwarding = xdp-bridge', () => {
  const { config, warnings } = parseConfigText(xdpBridge('eth0', 'eth1'), 'x.conf');
  assert.deepEqual(warnings, []);
  assert.equal(interfacesOf(config)!.forwarding, 'xdp-bridge');
  assert.equal(ifacesOf(linuxBridge('eth0', 'eth1')).forwarding, 'linux-bridge');
});

test('preflight decision, xdp-bridge: both NICs ports of br0 → refused, the message says both fixes', () => {
  const v = forwardingVerdict(ifacesOf(xdpBridge('eth0', 'eth1')), LINKS, '/etc/lqos.conf');
  assert.equal(v.errors.length, 1);
  assert.deepEqual(v.warnings, []);
  const [e] = v.errors;
  assert.match(e!, /^\[bridge\] use_xdp_bridge = true in \/etc\/lqos\.conf, but eth0 and eth1 are both ports of the Linux bridge br0/);
  assert.match(e!, /ip link set eth0 nomaster; ip link set eth1 nomaster/);
  assert.match(e!, /or set use_xdp_bridge = false to keep forwarding with br0; then reload lqosd \(systemctl reload lqosd\)$/);
});

test('preflight decision, xdp-bridge: one NIC a bridge port → a warning naming it; none → nothing', () => {
  const one = forwardingVerdict(ifacesOf(xdpBridge('eth2', 'eth1')), LINKS, 'x.conf');
  assert.deepEqual(one.errors, []);
  assert.equal(one.warnings.length, 1);
  assert.match(one.warnings[0]!, /eth1 is a port of the Linux bridge br0: .*take it out \(ip link set eth1 nomaster\)/);
  assert.deepEqual(forwardingVerdict(ifacesOf(xdpBridge('eth2', 'p0')), LINKS, 'x.conf'), { errors: [], warnings: [] });
});

test('preflight decision, linux-bridge: both in br0 names the bridge; otherwise a warning that nothing forwards', () => {
  assert.deepEqual(forwardingVerdict(ifacesOf(linuxBridge('eth0', 'eth1')), LINKS, 'x.conf'), { errors: [], warnings: [], bridge: 'br0' });
  const apart = forwardingVerdict(ifacesOf(linuxBridge('eth0', 'eth2')), LINKS, 'x.conf');
  assert.deepEqual(apart.errors, []);
  assert.match(apart.warnings[0]!, /eth0 is a port of br0 and eth2 is in no bridge: nothing passes between them; put both in one bridge .* or set use_xdp_bridge = true/);
  assert.equal(apart.bridge, undefined);
});

test('preflight decision, stick: no bridge check', () => {
  assert.deepEqual(forwardingVerdict(ifacesOf(stick('internet_vlan = 2\nnetwork_vlan = 3\n')), LINKS, 'x.conf'), { errors: [], warnings: [] });
});

test('status and the web UI words per mode', () => {
  const cases: [string, string | undefined, object, string][] = [
    [linuxBridge('eth0', 'eth1'), 'br0', { mode: 'linux-bridge', toInternet: 'eth0', toNetwork: 'eth1', bridge: 'br0' }, 'Linux bridge (br0) — lqos-ts classifies only'],
    [xdpBridge('eth0', 'eth1'), undefined, { mode: 'xdp-bridge', toInternet: 'eth0', toNetwork: 'eth1' }, 'XDP bridge: lqos-ts forwards between eth0 and eth1'],
    [stick('internet_vlan = 2\nnetwork_vlan = 3\n'), undefined, { mode: 'stick', interface: 'eth0', internetVlan: 2, networkVlan: 3 }, 'On a stick: eth0, VLAN 2 ↔ 3'],
  ];
  for (const [text, bridge, status, words] of cases) {
    const { config } = parseConfigText(text, 'x.conf');
    const s = forwardingStatus(config, interfacesOf(config)!, bridge);
    assert.deepEqual(s, status);
    assert.equal(forwardingText(s), words);
  }
});
