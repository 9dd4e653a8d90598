/**
 * Attach refusals and the XDP mode on real interfaces (issue 20 items 3, 4, 7): VLAN stripping read
 * back with `ethtool -k`, native XDP refused by a driver (a Linux bridge device: this kernel has no
 * `dummy` module; neither has native XDP) with the rollback of the other interface, `[tuning]
 * xdp_mode = "generic"`, jumbo frames (MTU 9000) in native mode with iperf3 shaped through the lab,
 * and lqosd degraded with an urgent issue when the real attach refuses.
 * Root, bpffs, iperf3; run under `flock /tmp/lqos-kernel.lock`. Everything lives in namespaces
 * lqac-<random> / lqt-<random>-* and pin roots /sys/fs/bpf/lqac-<random>*, removed in after().
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { execa } from 'execa';
import { parseConfigText, interfacesOf } from '../../lib/config/load.ts';
import { attachOptionsFor, attachSummary } from '../../lib/shaping/kernel.ts';
import { attachDataplane, teardownAll, type AttachOptions } from '../../dataplane/attach.ts';
import { XDP_PROG, xdpProgramName } from '../../dataplane/object.ts';
import { DataplaneError } from '../../dataplane/libbpf.ts';
import { readStats, updateMappings } from '../../dataplane/maps.ts';
import type { DataplaneLogger } from '../../dataplane/log.ts';
import { buildTestbed, destroyTestbed, buildShapingTree, iperf, nsExec, type Testbed } from '../../lab/testbed.ts';
import type { Log } from '../../lib/util/log.ts';
import { loConfig } from '../support/configs.ts';
import { startTestDaemon } from '../support/daemon.ts';
import { workspaceFactory } from '../support/workspace.ts';

const ws = workspaceFactory();
const tempDirs: string[] = [];
const id = `lqac-${randomBytes(3).toString('hex')}`;
const NS = id;
let pinSeq = 0;
const pinRoots: string[] = [];
const pinRoot = () => {
  const p = `/sys/fs/bpf/${id}-${pinSeq++}`;
  pinRoots.push(p);
  return p;
};
const quietLog = { info: () => undefined, warn: () => undefined, error: () => undefined, debug: () => undefined } as unknown as Log;

const ip = (...args: string[]) => execa('ip', ['-n', NS, ...args]);
const inNs = (cmd: string, ...args: string[]) => execa('ip', ['netns', 'exec', NS, cmd, ...args], { reject: false, all: true });

/** `ethtool -k` feature states of a device in the namespace. */
async function features(dev: string): Promise<Record<string, string>> {
  const out = (await inNs('ethtool', '-k', dev)).stdout;
  return Object.fromEntries(out.split('\n').map((l) => /^\s*([a-z0-9-]+): (on|off)/.exec(l)).filter((m) => m).map((m) => [m![1], m![2]]));
}

/** XDP attach mode the kernel reports (ip -j: 1 = native/driver, 2 = generic), 0 = none. */
async function xdpMode(dev: string, ns = NS): Promise<number> {
  const r = await execa('ip', ['-n', ns, '-j', '-d', 'link', 'show', 'dev', dev]);
  const l = (JSON.parse(r.stdout) as Array<{ xdp?: { mode?: number } }>)[0]!;
  return l.xdp?.mode ?? 0;
}

/** The name of the XDP program on a device in the namespace, as the kernel reports it (`ip -d link`). */
async function readXdpProgName(dev: string): Promise<string | undefined> {
  const r = await execa('ip', ['-n', NS, '-j', '-d', 'link', 'show', 'dev', dev]);
  return (JSON.parse(r.stdout) as Array<{ xdp?: { prog?: { name?: string } } }>)[0]?.xdp?.prog?.name;
}

/** The tc filters of a device's egress or ingress hook (`tc -j filter show`). */
async function filtersOn(dev: string, hook: 'egress' | 'ingress'): Promise<unknown[]> {
  return JSON.parse((await inNs('tc', '-j', 'filter', 'show', 'dev', dev, hook)).stdout || '[]') as unknown[];
}
const egressFilters = (dev: string) => filtersOn(dev, 'egress');

/** Attach options the way lqosd builds them from an lqos.conf text, inside our namespace. */
function optionsFor(conf: string, queues: number, logger?: DataplaneLogger): AttachOptions {
  const config = parseConfigText(conf, '/etc/lqos.conf').config;
  const o = attachOptionsFor({ config, interfaces: interfacesOf(config)!, queues, pinRoot: pinRoot(), log: quietLog });
  return { ...o, netns: NS, cpus: [0], logger: logger ?? { info: () => undefined, warn: () => undefined } };
}

const bridgeConf = (down: string, up: string, tuning = '') => `[bridge]\nto_internet = "${up}"\nto_network = "${down}"\n[tuning]\n${tuning}`;
const stickConf = (dev: string, tuning = '') => `[single_interface]\ninterface = "${dev}"\ninternet_vlan = 2\nnetwork_vlan = 3\n[tuning]\n${tuning}`;

before(async () => {
  await execa('ip', ['netns', 'add', NS]);
  const q = ['numtxqueues', '4', 'numrxqueues', '4'];
  for (const [a, b] of [['s0', 's1'], ['b0', 'p0'], ['b1', 'p1']]) {
    await ip('link', 'add', a!, ...q, 'type', 'veth', 'peer', 'name', b!, ...q);
    await ip('link', 'set', a!, 'up');
    await ip('link', 'set', b!, 'up');
  }
  // Interfaces without native XDP (ndo_bpf): Linux bridge devices.
  for (const g of ['g0', 'g1']) {
    await ip('link', 'add', g, ...q, 'type', 'bridge');
    await ip('link', 'set', g, 'up');
  }
});

after(async () => {
  for (const p of pinRoots) await teardownAll({ netns: NS, pinRoot: p, logger: { info: () => undefined, warn: () => undefined } }).catch(() => undefined);
  await execa('ip', ['netns', 'del', NS], { reject: false });
  for (const p of pinRoots) await execa('rm', ['-rf', p], { reject: false });
  for (const d of tempDirs) rmSync(d, { recursive: true, force: true });
});

test('stick with VLAN stripping left on (disable_rxvlan = false): refused before anything is attached', async () => {
  assert.equal((await features('s0'))['rx-vlan-offload'], 'on', 'veth strips tags by default');
  const opts = optionsFor(stickConf('s0', 'disable_rxvlan = false\n'), 2);
  await assert.rejects(attachDataplane(opts), (e: DataplaneError) => {
    assert.equal(e.code, 'VLAN_STRIPPING');
    assert.equal(e.refusal, 'VLAN_STRIPPING');
    assert.match(e.message, /s0 still strips VLAN tags in hardware \(rx-vlan-offload \(802\.1Q tag stripping\) and rx-vlan-stag-hw-parse/);
    assert.match(e.message, /Fix: ethtool -K s0 rxvlan off rx-vlan-stag-hw-parse off/);
    assert.doesNotMatch(e.message, /\[fixed\]/);
    return true;
  });
  assert.equal(await xdpMode('s0'), 0, 'no XDP program on s0');
  assert.deepEqual(await egressFilters('s0'), [], 'no egress filter on s0');
  assert.equal(existsSync(opts.pinRoot!), false, 'no map pinned');
  assert.equal((await features('s0'))['rx-vlan-offload'], 'on', 'left as the operator set it');
});

test('bridge attach (default [tuning]) turns rxvlan and rx-vlan-stag-hw-parse off and attaches native XDP', async () => {
  const before = await features('b0');
  assert.deepEqual([before['rx-vlan-offload'], before['rx-vlan-stag-hw-parse']], ['on', 'on']);
  const opts = optionsFor(bridgeConf('b0', 'b1'), 2);
  assert.equal(opts.xdpMode, 'native', 'xdp_mode default');
  const r = await attachDataplane(opts);
  try {
    assert.deepEqual(r.interfaces.map((i) => [i.name, i.xdpMode]), [['b0', 'native'], ['b1', 'native']]);
    for (const dev of ['b0', 'b1']) {
      const f = await features(dev);
      assert.deepEqual([f['rx-vlan-offload'], f['rx-vlan-stag-hw-parse']], ['off', 'off'], dev);
      assert.equal(await xdpMode(dev), 1, `${dev}: native XDP`);
      assert.equal((await egressFilters(dev)).length > 0, true);
    }
  } finally {
    await teardownAll({ netns: NS, pinRoot: opts.pinRoot, logger: opts.logger });
  }
});

test("attach and teardown on clean interfaces print none of libbpf's messages about what they expect to be missing (no clsact yet, no filter at our handle)", async () => {
  const opts = optionsFor(bridgeConf('b0', 'b1'), 2);
  const printed: string[] = [];
  const write = process.stderr.write.bind(process.stderr);
  process.stderr.write = ((chunk: string | Uint8Array, ...rest: unknown[]) => {
    printed.push(String(chunk));
    return (write as (...a: unknown[]) => boolean)(chunk, ...rest);
  }) as typeof process.stderr.write;
  try {
    await attachDataplane(opts);
    await teardownAll({ netns: NS, pinRoot: opts.pinRoot, logger: opts.logger });
  } finally {
    process.stderr.write = write;
  }
  // These reach lqosd's journal as lines of their own ("libbpf: Kernel error message: Parent Qdisc doesn't exists").
  assert.deepEqual(printed.filter((l) => l.includes('libbpf')), [], 'no libbpf lines');
  assert.deepEqual(await programsOn('b0'), { egress: [], ingress: [], clsact: false }, 'and the teardown was complete');
});

test('bridge with disable_rxvlan = false: attaches, with one warning per stripping interface saying what breaks', async () => {
  for (const dev of ['b0', 'b1']) await inNs('ethtool', '-K', dev, 'rxvlan', 'on');
  const warnings: string[] = [];
  const opts = optionsFor(bridgeConf('b0', 'b1', 'disable_rxvlan = false\n'), 2, { info: () => undefined, warn: (m) => void warnings.push(m) });
  const r = await attachDataplane(opts);
  try {
    const vlanWarnings = r.warnings.filter((w) => /rx-vlan-offload/.test(w));
    assert.equal(vlanWarnings.length, 2, r.warnings.join('\n'));
    assert.match(vlanWarnings[0]!, /b0: rx-vlan-offload .*disable_rxvlan = false: .*shaped frames leave b0 without their VLAN tag/);
    assert.deepEqual(warnings.filter((w) => /rx-vlan-offload/.test(w)), vlanWarnings, 'logged once each');
    assert.equal((await features('b0'))['rx-vlan-offload'], 'on');
  } finally {
    await teardownAll({ netns: NS, pinRoot: opts.pinRoot, logger: opts.logger });
  }
});

test('xdp_mode = "native" on a driver without native XDP: refused with the reason and the fix; the other interface is left clean', async () => {
  // b0 (veth) attaches natively first, g1 (bridge device) refuses: b0 must be rolled back.
  const opts = optionsFor(bridgeConf('b0', 'g1'), 2);
  await assert.rejects(attachDataplane(opts), (e: DataplaneError) => {
    assert.equal(e.code, 'XDP_NATIVE_UNAVAILABLE');
    assert.match(e.message, /refusing to shape g1 without native XDP: the driver refused native mode \(.+\)/);
    assert.match(e.message, /Fix: set \[tuning\] xdp_mode = "generic" in lqos\.conf \(slower.*metadata is not passed to tc; refused below Linux 5\.15\)/);
    console.log(`# native refusal: ${e.message}`);
    return true;
  });
  for (const dev of ['b0', 'g1']) {
    assert.equal(await xdpMode(dev), 0, `${dev}: no XDP left`);
    assert.deepEqual(await egressFilters(dev), [], `${dev}: no egress filter left`);
  }
});

test('a reload that fails on the second interface puts back the programs both carried before (the first keeps shaping)', async () => {
  // In force: generic XDP + our egress filter on b0 and g1. The reload asks for native mode: b0 (veth)
  // takes it, g1 (bridge device) refuses. Both must end up with their previous programs, same ids.
  const root = pinRoot();
  const first = { ...optionsFor(bridgeConf('b0', 'g1', 'xdp_mode = "generic"\n'), 2), pinRoot: root };
  const r = await attachDataplane(first);
  try {
    const before = new Map(r.interfaces.map((i) => [i.name, { xdp: i.xdpProgId, tc: i.tcProgId }]));
    assert.equal(before.size, 2);
    for (const dev of ['b0', 'g1']) assert.ok(before.get(dev)!.xdp > 0 && before.get(dev)!.tc > 0, dev);
    const warnings: string[] = [];
    const reload = { ...optionsFor(bridgeConf('b0', 'g1'), 2, { info: () => undefined, warn: (m) => void warnings.push(m) }), pinRoot: root };
    await assert.rejects(attachDataplane(reload), (e: DataplaneError) => e.code === 'XDP_NATIVE_UNAVAILABLE');
    for (const dev of ['b0', 'g1']) {
      const l = (JSON.parse((await ip('-j', '-d', 'link', 'show', 'dev', dev)).stdout) as Array<{ xdp?: { mode?: number; prog?: { id?: number } } }>)[0]!;
      assert.equal(l.xdp?.mode, 2, `${dev}: generic XDP back in force`);
      assert.equal(l.xdp?.prog?.id, before.get(dev)!.xdp, `${dev}: the same XDP program as before the reload`);
      const f = (await egressFilters(dev)) as Array<{ options?: { prog?: { id?: number } } }>;
      const ids = f.map((x) => x.options?.prog?.id).filter((x) => x !== undefined);
      assert.deepEqual(ids, [before.get(dev)!.tc], `${dev}: the same egress classifier as before`);
    }
    assert.equal(warnings.filter((w) => /programs it carried before are back in force/.test(w)).length, 2, warnings.join('\n'));
  } finally {
    await teardownAll({ netns: NS, pinRoot: root, logger: first.logger });
  }
});

/** A tiny BPF object of "another tool": an XDP program and a tc program with names that are not ours. */
async function otherToolObject(): Promise<string> {
  const dir = mkdtempSync(join(tmpdir(), 'lqos-other-tool-'));
  tempDirs.push(dir);
  const src = join(dir, 'other.c');
  writeFileSync(src, [
    '#include <linux/bpf.h>',
    '#define SEC(n) __attribute__((section(n), used))',
    'SEC("xdp") int other_xdp(struct xdp_md *ctx) { return XDP_PASS; }',
    'SEC("tc") int other_tc(struct __sk_buff *skb) { return 0; }',
    'char _license[] SEC("license") = "GPL";',
    '',
  ].join('\n'));
  await execa('clang', ['-target', 'bpf', '-O2', '-g', '-I/usr/include/x86_64-linux-gnu', '-c', src, '-o', join(dir, 'other.o')]);
  return join(dir, 'other.o');
}

/** Program names the kernel reports on a device: XDP and the tc filters of each hook. */
async function programsOn(dev: string): Promise<{ xdp?: string; egress: string[]; ingress: string[]; clsact: boolean }> {
  const link = (JSON.parse((await ip('-j', '-d', 'link', 'show', 'dev', dev)).stdout) as Array<{ xdp?: { prog?: { name?: string } } }>)[0]!;
  const names = async (hook: 'egress' | 'ingress') => ((await filtersOn(dev, hook)) as Array<{ options?: { prog?: { name?: string } } }>).map((f) => f.options?.prog?.name).filter((n): n is string => !!n);
  const qdiscs = JSON.parse((await inNs('tc', '-j', 'qdisc', 'show', 'dev', dev)).stdout || '[]') as Array<{ kind: string }>;
  return { ...(link.xdp?.prog?.name ? { xdp: link.xdp.prog.name } : {}), egress: await names('egress'), ingress: await names('ingress'), clsact: qdiscs.some((q) => q.kind === 'clsact') };
}

test("teardown (--clearrules, lqosd's stop) removes only lqos-ts's programs: another tool's XDP program and tc filters stay, on other interfaces and on ours", async () => {
  const obj = await otherToolObject();
  // Another tool on a non-shaping interface (p0: XDP + a clsact with an egress filter) and on a
  // shaping interface (b1: an egress filter at its own priority).
  assert.equal((await inNs('ip', 'link', 'set', 'dev', 'p0', 'xdp', 'obj', obj, 'sec', 'xdp')).exitCode, 0);
  for (const [dev, pref] of [['p0', '10'], ['b1', '100']] as const) {
    await inNs('tc', 'qdisc', 'add', 'dev', dev, 'clsact');
    const r = await inNs('tc', 'filter', 'add', 'dev', dev, 'egress', 'pref', pref, 'bpf', 'da', 'obj', obj, 'sec', 'tc');
    assert.equal(r.exitCode, 0, r.all);
  }
  try {
    const opts = optionsFor(bridgeConf('b0', 'b1'), 2);
    await attachDataplane(opts);
    const attached = await programsOn('b1');
    assert.equal(attached.xdp, xdpProgramName(), 'the XDP variant this kernel loads (lqos_xdp, or lqos_xdp_nometa)');
    assert.deepEqual(attached.egress.sort(), ['lqos_tc_egress', 'other_tc'], 'ours next to the other tool\'s filter');
    const r = await teardownAll({ netns: NS, pinRoot: opts.pinRoot, logger: opts.logger });
    assert.deepEqual(r.interfaces.sort(), ['b0', 'b1'], 'only the shaping interfaces were ours');
    assert.deepEqual(await programsOn('p0'), { xdp: 'other_xdp', egress: ['other_tc'], ingress: [], clsact: true }, "another interface's programs untouched");
    assert.deepEqual(await programsOn('b1'), { egress: ['other_tc'], ingress: [], clsact: true }, "ours gone from b1; the other tool's filter and its clsact stay");
    assert.deepEqual(await programsOn('b0'), { egress: [], ingress: [], clsact: false }, 'nothing left on b0');
  } finally {
    await inNs('ip', 'link', 'set', 'dev', 'p0', 'xdp', 'off');
    for (const dev of ['p0', 'b1']) await inNs('tc', 'qdisc', 'del', 'dev', dev, 'clsact');
  }
});

test('xdp_mode = "generic" (proof of the key): the same driver attaches as xdpgeneric, reported as generic', async () => {
  const opts = optionsFor(bridgeConf('g0', 'g1', 'xdp_mode = "generic"\n'), 2);
  assert.equal(opts.xdpMode, 'generic');
  const r = await attachDataplane(opts);
  try {
    assert.deepEqual(r.interfaces.map((i) => i.xdpMode), ['generic', 'generic']);
    for (const dev of ['g0', 'g1']) {
      assert.equal(await xdpMode(dev), 2, `${dev}: generic XDP`);
      assert.match((await ip('-d', 'link', 'show', 'dev', dev)).stdout, /xdpgeneric/);
    }
  } finally {
    await teardownAll({ netns: NS, pinRoot: opts.pinRoot, logger: opts.logger });
  }
});

test('lqosd: the real attach refusing (stick, rxvlan left on) → degraded with an urgent issue carrying the fix', async () => {
  const w = ws({ runDir: true, conf: (dir) => loConfig(dir, '[tuning]\ndisable_rxvlan = false\n').replace('dry_run = true', 'dry_run = false') });
  const root = pinRoot();
  // lqosd's config names lo (its preflight runs in the host namespace); the attach itself goes to s0 in ours.
  const d = await startTestDaemon(w, {
    attachDataplane: (a) => attachDataplane({ ...attachOptionsFor({ ...a, log: quietLog }), downloadIf: 's0', uploadIf: 's0', netns: NS, pinRoot: root, cpus: [0] }),
  });
  try {
    const degraded = d.context.shapingStatus().degraded ?? '';
    assert.match(degraded, /^the dataplane refused to attach, not shaping: refusing to attach the dataplane: s0 still strips VLAN tags/);
    assert.match(degraded, /Fix: ethtool -K s0 rxvlan off/);
    assert.equal(d.context.shapingStatus().xdp, undefined, 'no XDP mode while not attached');
    const issue = d.context.urgent.list().find((i) => i.code === 'DATAPLANE_ATTACH_REFUSED');
    assert.ok(issue, 'urgent issue filed');
    assert.equal(issue.severity, 'error');
    assert.equal(issue.message, degraded);
    assert.deepEqual(issue.context, { refusal: 'VLAN_STRIPPING' });
    assert.equal(await xdpMode('s0'), 0);
  } finally {
    await d.stop();
  }
});

test('lqosd: after a real attach the status names the XDP mode and program per interface', async () => {
  const w = ws({ runDir: true, conf: (dir) => loConfig(dir).replace('dry_run = true', 'dry_run = false') });
  const root = pinRoot();
  const d = await startTestDaemon(w, {
    attachDataplane: async (a) => {
      const r = await attachDataplane({ ...attachOptionsFor({ ...a, log: quietLog }), downloadIf: 'b0', uploadIf: 'b1', onAStick: false, forwarding: 'linux-bridge', stickOffset: 0, vlan: undefined, netns: NS, pinRoot: root, cpus: [0] });
      return attachSummary(r);
    },
  });
  try {
    assert.equal(d.context.shapingStatus().degraded, undefined);
    // The XDP program this kernel takes (lqos_xdp_nometa where XDP may not write metadata).
    const program = xdpProgramName();
    assert.deepEqual(d.context.shapingStatus().xdp, [{ interface: 'b0', role: 'download', mode: 'native', program }, { interface: 'b1', role: 'upload', mode: 'native', program }]);
    assert.equal(d.context.shapingStatus().xdp![0]!.program, (await readXdpProgName('b0')) ?? 'none attached', 'the program the kernel reports on the interface');
  } finally {
    await d.stop();
    await teardownAll({ netns: NS, pinRoot: root, logger: { info: () => undefined, warn: () => undefined } });
  }
});

// ----------------------------------------------------------------------------- jumbo frames

let tb: Testbed | undefined;
after(async () => {
  if (tb) await destroyTestbed(tb);
});

test('MTU 9000: native XDP attaches (frags-aware program) and iperf3 through the lab is shaped', async () => {
  tb = await buildTestbed({ queues: 2 });
  const sh = tb.ns.shaper;
  for (const dev of [tb.shaperIfs.internet, tb.shaperIfs.customer, tb.shaperIfs.bridge]) await nsExec(sh, 'ip', ['link', 'set', 'dev', dev, 'mtu', '9000']);
  for (const n of [tb.ns.inet, tb.ns.cust]) await nsExec(n, 'ip', ['link', 'set', 'dev', 'eth0', 'mtu', '9000']);
  const cls = { major: 1, minor: 0x10, downloadMbit: 40, uploadMbit: 20 };
  await buildShapingTree(tb, { queues: 2, linkMbit: 1000, classes: [cls], leafLimit: 50 });
  const root = pinRoot();
  const r = await attachDataplane({
    downloadIf: tb.shaperIfs.customer, uploadIf: tb.shaperIfs.internet, onAStick: false, queues: 2, stickOffset: 0,
    netns: sh, pinRoot: root, xdpMode: 'native', logger: { info: () => undefined, warn: () => undefined },
  });
  try {
    assert.deepEqual(r.interfaces.map((i) => i.xdpMode), ['native', 'native']);
    for (const dev of [tb.shaperIfs.customer, tb.shaperIfs.internet]) {
      assert.equal(await xdpMode(dev, sh), 1, `${dev}: native at MTU 9000`);
      const text = (await execa('ip', ['-n', sh, '-d', 'link', 'show', 'dev', dev])).stdout;
      assert.match(text, /mtu 9000/);
      assert.match(text, /prog\/xdp id/);
      assert.doesNotMatch(text, /xdpgeneric/);
    }
    const A = tb.custIps4[0]!;
    await updateMappings([{ prefix: `${A}/32`, cpu: 0, major: 1, minor: 0x10, circuitId: 'c1', deviceId: 'd1', circuitHash: 1n, deviceHash: 2n }], { pinRoot: root });
    const st0 = await readStats({ pinRoot: root });
    const down = await iperf(tb, { custIp: A, direction: 'download', seconds: 3 });
    const up = await iperf(tb, { custIp: A, direction: 'upload', seconds: 3 });
    const st1 = await readStats({ pinRoot: root });
    // 9000-byte MTU: 8948 bytes of TCP payload per 9014-byte frame.
    const wire = (mbps: number) => (mbps * 9014) / 8948;
    console.log(`# MTU 9000, native XDP: download ${wire(down.mbps).toFixed(1)} Mbit/s on the wire (ceil 40), upload ${wire(up.mbps).toFixed(1)} (ceil 20)`);
    assert.ok(Math.abs(wire(down.mbps) - 40) <= 40 * 0.15, `download ${wire(down.mbps).toFixed(1)} Mbit/s, expected 40 ±15%`);
    assert.ok(Math.abs(wire(up.mbps) - 20) <= 20 * 0.15, `upload ${wire(up.mbps).toFixed(1)} Mbit/s, expected 20 ±15%`);
    assert.ok(st1.xdpRedirect > st0.xdpRedirect, 'jumbo frames redirected through the cpumap');
    if (xdpProgramName() === XDP_PROG) assert.ok(st1.tcMeta > st0.tcMeta, 'tc classified jumbo frames from the XDP metadata');
    else assert.ok(st1.tcLookup > st0.tcLookup && st1.tcMeta === st0.tcMeta, 'no metadata on this kernel: tc classified the jumbo frames by its own lookup');
  } finally {
    await teardownAll({ netns: sh, pinRoot: root, logger: { info: () => undefined, warn: () => undefined } }).catch(() => undefined);
  }
});
