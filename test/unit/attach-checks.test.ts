// test-gate: shared (CPU only; see test/support/gate.ts)
/**
 * The pure attach checks (dataplane/attachChecks.ts, issue 20 items 3, 4, 7, 10): `ethtool -k` text
 * with "[fixed]", the VLAN stripping verdict per mode, traffic classes from sysfs values and
 * `tc qdisc show`, the inspection script's output (and the script itself against a fake sysfs
 * directory), kernel/libbpf version checks. No kernel objects are touched.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  compareVersion, parseEthtoolFeatures, parseKernelRelease, platformVerdict, rootQdiscKind, trafficClassProblem, vlanVerdict, wantsFrags,
} from '../../dataplane/attachChecks.ts';
import { inspectQueues, parseInspection } from '../../dataplane/netdev.ts';
import { testDir } from '../support/workspace.ts';

// `ethtool -k` of a NIC (abridged real output): sub-features indented, annotations in brackets.
const ETHTOOL_K = `Features for eth1:
rx-checksumming: on
tx-checksumming: on
\ttx-checksum-ipv4: off [fixed]
\ttx-checksum-ip-generic: on
scatter-gather: off
\ttx-scatter-gather: off
tcp-segmentation-offload: off
generic-receive-offload: off
large-receive-offload: off [fixed]
rx-vlan-offload: on [fixed]
tx-vlan-offload: off
rx-vlan-filter: off [fixed]
rx-vlan-stag-hw-parse: off [requested on]
rx-vlan-stag-filter: off [fixed]
`;

test('ethtool -k text: on/off, [fixed], [requested ...], sub-features; headers ignored', () => {
  const f = parseEthtoolFeatures(ETHTOOL_K);
  assert.deepEqual(f.get('rx-vlan-offload'), { on: true, fixed: true });
  assert.deepEqual(f.get('tx-vlan-offload'), { on: false, fixed: false });
  assert.deepEqual(f.get('rx-vlan-stag-hw-parse'), { on: false, fixed: false, requested: true });
  assert.deepEqual(f.get('tx-checksum-ipv4'), { on: false, fixed: true });
  assert.equal(f.has('Features for eth1'), false);
  assert.equal(f.size, 14);
  assert.equal(parseEthtoolFeatures('Cannot get device feature names: No such device\n').size, 0);
});

const feats = (vlan: string, stag: string) => parseEthtoolFeatures(`rx-vlan-offload: ${vlan}\nrx-vlan-stag-hw-parse: ${stag}\n`);

test('VLAN stripping on a stick: refused whatever the config says, with the fix; [fixed] → another NIC', () => {
  const v = vlanVerdict('ens1', feats('on', 'off'), { onAStick: true, wantedOff: () => false });
  assert.equal(v.refusal?.code, 'VLAN_STRIPPING');
  assert.match(v.refusal!.message, /ens1 still strips VLAN tags in hardware \(rx-vlan-offload \(802\.1Q tag stripping\)\)/);
  assert.match(v.refusal!.message, /tells download from upload/);
  assert.equal(v.refusal!.hint.startsWith('ethtool -K ens1 rxvlan off'), true, v.refusal!.hint);
  const fixed = vlanVerdict('ens1', feats('on [fixed]', 'on'), { onAStick: true, wantedOff: () => true });
  assert.match(fixed.refusal!.message, /rx-vlan-offload \[fixed\].*and rx-vlan-stag-hw-parse.*fixed by the driver/);
  assert.match(fixed.refusal!.hint, /cannot turn rx-vlan-offload off \(\[fixed\]\): use another NIC, or wire the shaper where frames arrive untagged/);
  assert.deepEqual(vlanVerdict('ens1', feats('off', 'off'), { onAStick: true, wantedOff: () => false }), { warnings: [] });
  // A feature the driver does not list counts as off; nothing read at all (ethtool failed) does not, on a stick.
  assert.deepEqual(vlanVerdict('ens1', new Map([['tx-checksumming', { on: true, fixed: false }]]), { onAStick: true, wantedOff: () => true }), { warnings: [] });
  const unread = vlanVerdict('ens1', new Map(), { onAStick: true, wantedOff: () => true });
  assert.equal(unread.refusal?.code, 'VLAN_STRIPPING');
  assert.match(unread.refusal!.message, /could not read the offload features of ens1/);
  assert.deepEqual(vlanVerdict('eth1', new Map(), { onAStick: false, wantedOff: () => true }), { warnings: [] }, 'bridge mode: nothing read, nothing refused');
});

test('VLAN stripping in bridge mode: refused when disable_rxvlan asked it off, one warning when the operator left it on', () => {
  const asked = vlanVerdict('eth1', feats('on', 'on'), { onAStick: false, wantedOff: (f) => f === 'rxvlan' || f === 'rx-vlan-stag-hw-parse' });
  assert.equal(asked.refusal?.code, 'VLAN_STRIPPING');
  assert.match(asked.refusal!.message, /although \[tuning\] disable_rxvlan = true asks it off; shaped VLAN-tagged frames would leave untagged/);
  assert.equal(asked.refusal!.hint.startsWith('ethtool -K eth1 rxvlan off rx-vlan-stag-hw-parse off'), true);
  const left = vlanVerdict('eth1', feats('on', 'off'), { onAStick: false, wantedOff: () => false });
  assert.equal(left.refusal, undefined);
  assert.equal(left.warnings.length, 1);
  assert.match(left.warnings[0]!, /eth1: rx-vlan-offload .* disable_rxvlan = false: .*leave eth1 without their VLAN tag/);
});

test('traffic classes: any traffic_class other than 0, or a root mqprio/taprio → refused with the DCB fix', () => {
  assert.equal(trafficClassProblem('eth0', { classes: { 'tx-0': '0', 'tx-1': '0', 'tx-2': null } }), undefined);
  assert.equal(trafficClassProblem('eth0', { classes: {}, rootQdisc: 'mq' }), undefined);
  const dcb = trafficClassProblem('eth0', { classes: { 'tx-0': '0', 'tx-1': '1', 'tx-2': '2', 'tx-3': '0-1' } });
  assert.equal(dcb?.code, 'TRAFFIC_CLASSES');
  assert.match(dcb!.message, /eth0 has traffic classes in force \(num_tc != 0: TX queues in traffic classes \(tx-1: 1, tx-2: 2, tx-3: 0-1\)\)/);
  assert.match(dcb!.hint, /ethtool --set-priv-flags eth0 disable-fw-lldp on/);
  const mqprio = trafficClassProblem('eth0', { classes: { 'tx-0': '0' }, rootQdisc: 'mqprio' });
  assert.match(mqprio!.message, /root qdisc mqprio/);
  assert.match(mqprio!.hint, /tc qdisc del dev eth0 root/);
  assert.equal(rootQdiscKind('qdisc mq 7fff: root \nqdisc htb 1: parent 7fff:1 r2q 10\nqdisc clsact ffff: parent ffff:fff1'), 'mq');
  assert.equal(rootQdiscKind('qdisc mqprio 8001: root tc 2 map 0 1 1 1\n'), 'mqprio');
  assert.equal(rootQdiscKind('qdisc clsact ffff: parent ffff:fff1\n'), undefined);
});

test('inspection output: queues, XPS failures, traffic classes, MTU, clsact and root qdisc', () => {
  const out = 'TCLASS tx-0 0\nXPSFAIL /sys/class/net/x/queues/tx-1\nTCLASS tx-1 ?\nTXQ 2\nMTU 9000\nQDISC qdisc taprio 100: root refcnt 9\nQDISC qdisc clsact ffff: parent ffff:fff1\n';
  const p = parseInspection('x', out);
  assert.deepEqual(p, {
    txQueues: 2, hasClsact: true, rootQdisc: 'taprio', mtu: 9000, trafficClasses: { 'tx-0': '0', 'tx-1': null },
    warnings: ['could not disable XPS on /sys/class/net/x/queues/tx-1; classes may land in the wrong queue'],
  });
  assert.throws(() => parseInspection('x', 'NOQUEUES\n'), /queues missing/);
});

test('the inspection script on a fake sysfs directory: traffic classes read, XPS zeroed', async (t) => {
  const root = testDir(t);
  const q = join(root, 'fk0', 'queues');
  ['0', '3', '0'].forEach((tc, i) => {
    mkdirSync(join(q, `tx-${i}`), { recursive: true });
    writeFileSync(join(q, `tx-${i}`, 'traffic_class'), `${tc}\n`);
    writeFileSync(join(q, `tx-${i}`, 'xps_cpus'), 'ff\n');
  });
  writeFileSync(join(root, 'fk0', 'mtu'), '1500\n');
  const p = await inspectQueues(undefined, 'fk0', root);
  assert.equal(p.txQueues, 3);
  assert.equal(p.mtu, 1500);
  assert.deepEqual(p.trafficClasses, { 'tx-0': '0', 'tx-1': '3', 'tx-2': '0' });
  assert.equal(readFileSync(join(q, 'tx-1', 'xps_cpus'), 'utf8').trim(), '0', 'XPS zeroed');
  assert.match(trafficClassProblem('fk0', { classes: p.trafficClasses, rootQdisc: p.rootQdisc })!.message, /tx-1: 3/);
});

test('kernel release parsing and version comparison', () => {
  assert.deepEqual(parseKernelRelease('6.18.44-fc-v1272'), { major: 6, minor: 18, patch: 44 });
  assert.deepEqual(parseKernelRelease('5.15.0-91-generic'), { major: 5, minor: 15, patch: 0 });
  assert.deepEqual(parseKernelRelease('5.8'), { major: 5, minor: 8, patch: 0 });
  assert.equal(parseKernelRelease('garbage'), undefined);
  assert.ok(compareVersion({ major: 5, minor: 10 }, { major: 5, minor: 8 }) > 0);
  assert.ok(compareVersion({ major: 4, minor: 19 }, { major: 5, minor: 8 }) < 0);
  assert.ok(compareVersion({ major: 5, minor: 14, patch: 21 }, { major: 5, minor: 15 }) < 0);
  assert.equal(compareVersion({ major: 5, minor: 15 }, { major: 5, minor: 15 }), 0);
});

test('platform verdict: kernel < 5.8 refused, 5.8-5.14 warned (generic refused there), libbpf < 1 refused', () => {
  const lib = { major: 1, minor: 1 };
  const v = (kernel: string, xdpMode: 'native' | 'generic' = 'native', libbpf: { major: number; minor: number } | { error: string } = lib) => platformVerdict({ kernel, libbpf, xdpMode });
  assert.deepEqual(v('6.18.44-fc-v1272'), { errors: [], warnings: [] });
  assert.deepEqual(v('5.15.0-91-generic', 'generic'), { errors: [], warnings: [] });
  const old = v('4.19.0-26-amd64');
  assert.equal(old.errors.length, 1);
  assert.match(old.errors[0]!, /kernel 4\.19\.0-26-amd64 is too old .* needs Linux 5\.8 or newer \(BPF ring buffer\), 5\.15\+ recommended/);
  const k510 = v('5.10.0-28-amd64');
  assert.deepEqual(k510.errors, []);
  assert.match(k510.warnings[0]!, /older than the recommended 5\.15: generic-mode XDP cannot redirect to a cpumap/);
  assert.doesNotMatch(k510.warnings[0]!, /per-CPU/);
  assert.match(v('5.8.0')!.warnings[0]!, /per-CPU counters are unreliable before 5\.10/);
  assert.match(v('5.10.0', 'generic').errors[0]!, /xdp_mode = "generic" needs Linux 5\.15 or newer/);
  assert.match(v('6.1.0', 'native', { major: 0, minor: 8 }).errors[0]!, /libbpf 0\.8 is too old: the dataplane needs libbpf 1\.0 or newer/);
  assert.match(v('6.1.0', 'native', { error: 'load libbpf.so.1 failed' }).errors[0]!, /libbpf cannot be used: load libbpf\.so\.1 failed; install libbpf 1\.0/);
  assert.match(v('weird').warnings[0]!, /cannot read the kernel version from "weird"/);
});

test('the XDP program is loaded frags-aware only in native mode on kernels that know the flag (5.18+)', () => {
  assert.equal(wantsFrags('native', '6.18.44-fc-v1272'), true);
  assert.equal(wantsFrags('native', '5.18.0'), true);
  assert.equal(wantsFrags('native', '5.15.0-91-generic'), false, 'Ubuntu 22.04 GA kernel: the flag would be refused at load');
  assert.equal(wantsFrags('generic', '6.18.44'), false);
  assert.equal(wantsFrags('native', 'garbage'), false);
});
