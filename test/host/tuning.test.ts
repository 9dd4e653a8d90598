/**
 * Host tuning keys of lqos.conf (issue 13 item 1): the pure planner on host snapshots, the side-effect
 * module against a temp directory laid out like /sys and /proc/sys (file contents read back), the
 * MTU on real veths in a network namespace of our own (read back with `ip -j link`), efficiency
 * cores left out of the queue count and CPU placement, and lqosd applying the tuning once at
 * attach (again only when its keys change). The real host's governor and sysctls are never touched.
 * Kernel part: run under `flock /tmp/lqos-kernel.lock`.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { execa } from 'execa';
import { parseConfigText } from '../../lib/config/load.ts';
import type { LqosConfig } from '../../lib/config/schema.ts';
import { planHostTuning, shapingCpus, type HostSnapshot } from '../../lib/kernel/hostTuning.ts';
import { applyHostTuning, type CommandRunner } from '../../lib/kernel/hostTuningApply.ts';
import { hostQueueCount } from '../../lib/shaping/queueCount.ts';
import { interfaceTuning, type AttachArgs } from '../../lib/shaping/kernel.ts';
import { prepareInterface } from '../../dataplane/netdev.ts';
import { startTestDaemon } from '../support/daemon.ts';
import { loConfig } from '../support/configs.ts';
import { testDir, workspaceFactory } from '../support/workspace.ts';
import type { Log } from '../../lib/util/log.ts';

const conf = (extra = '', iface = '[bridge]\nto_internet = "eth0"\nto_network = "eth1"\n'): LqosConfig =>
  parseConfigText(`${iface}${extra}`, '/etc/lqos.conf').config;

const GOV = (n: number) => `sys/devices/system/cpu/cpu${n}/cpufreq/scaling_governor`;

function snapshot(over: Partial<HostSnapshot> = {}): HostSnapshot {
  return {
    governors: { [GOV(0)]: 'powersave', [GOV(1)]: 'performance' },
    availableGovernors: { [GOV(0)]: ['performance', 'powersave'], [GOV(1)]: ['performance', 'powersave'] },
    sysctls: { 'net.core.netdev_budget_usecs': '2000', 'net.core.netdev_budget': '300' },
    irqbalance: 'active',
    mtu: { eth0: 1500, eth1: 1500 },
    ...over,
  };
}

/** A Log that keeps what it is told. */
function recordingLog(): Log & { lines: { level: string; msg: string }[] } {
  const lines: { level: string; msg: string }[] = [];
  const at = (level: string) => (a: unknown, b?: unknown) => void lines.push({ level, msg: String(typeof a === 'string' ? a : b) });
  return { lines, debug: at('debug'), info: at('info'), warn: at('warn'), error: at('error') } as Log & { lines: { level: string; msg: string }[] };
}

test('planner: set_cpu_governor_performance, netdev_budget_usecs, netdev_budget_packets, stop_irq_balance, bridge mtu → exactly the needed actions', () => {
  const plan = planHostTuning(conf('mtu = 9000\n[tuning]\nnetdev_budget_usecs = 8000\nnetdev_budget_packets = 300\n'), snapshot());
  assert.deepEqual(plan.actions.map((a) => [a.key, a.kind === 'write' ? `${a.path}=${a.value}` : a.argv.join(' ')]), [
    ['bridge.mtu', 'ip link set dev eth0 mtu 9000'],
    ['bridge.mtu', 'ip link set dev eth1 mtu 9000'],
    ['tuning.set_cpu_governor_performance', `${GOV(0)}=performance`], // cpu1 already performance
    ['tuning.netdev_budget_usecs', 'proc/sys/net/core/netdev_budget_usecs=8000'],
    // netdev_budget already 300: no action
    ['tuning.stop_irq_balance', 'systemctl stop irqbalance'],
  ]);
});

test('planner: each switch off (set_cpu_governor_performance, stop_irq_balance = false, no mtu) → no such action', () => {
  const plan = planHostTuning(conf('[tuning]\nset_cpu_governor_performance = false\nstop_irq_balance = false\nnetdev_budget_usecs = 2000\n'), snapshot());
  assert.deepEqual(plan.actions, []);
  // Nothing to do on a host without cpufreq / irqbalance / the sysctl: notes, no actions.
  const bare = planHostTuning(conf(), snapshot({ governors: {}, availableGovernors: {}, sysctls: {}, irqbalance: 'inactive' }));
  assert.deepEqual(bare.actions, []);
  assert.ok(bare.notes.some((n) => /no cpufreq governors/.test(n)));
  assert.ok(bare.notes.some((n) => /net.core.netdev_budget_usecs does not exist/.test(n)));
  // A governor set lacking "performance" is left alone, with a note.
  const noPerf = planHostTuning(conf(), snapshot({ availableGovernors: { [GOV(0)]: ['schedutil'] } }));
  assert.ok(!noPerf.actions.some((a) => a.key === 'tuning.set_cpu_governor_performance'));
  assert.ok(noPerf.notes.some((n) => /offers no "performance"/.test(n)));
  // single_interface mtu targets the one interface.
  const stick = planHostTuning(conf('', '[single_interface]\ninterface = "eth5"\ninternet_vlan = 2\nnetwork_vlan = 3\nmtu = 1400\n'), snapshot({ mtu: { eth5: 1500 } }));
  assert.deepEqual(stick.actions.filter((a) => a.key === 'single_interface.mtu').map((a) => a.kind === 'run' && a.argv.join(' ')), ['ip link set dev eth5 mtu 1400']);
});

/** A temp root laid out like /sys and /proc/sys. */
function fakeRoot(t: Parameters<typeof testDir>[0]): string {
  const root = testDir(t, 'lqos-tune-');
  for (let c = 0; c < 4; c++) {
    mkdirSync(join(root, `sys/devices/system/cpu/cpu${c}/cpufreq`), { recursive: true });
    writeFileSync(join(root, GOV(c)), c === 3 ? 'performance\n' : 'powersave\n');
    writeFileSync(join(root, `sys/devices/system/cpu/cpu${c}/cpufreq/scaling_available_governors`), 'performance powersave\n');
  }
  mkdirSync(join(root, 'proc/sys/net/core'), { recursive: true });
  writeFileSync(join(root, 'proc/sys/net/core/netdev_budget_usecs'), '2000\n');
  writeFileSync(join(root, 'proc/sys/net/core/netdev_budget'), '300\n');
  return root;
}

test('effects: set_cpu_governor_performance, netdev_budget_usecs, netdev_budget_packets written under the root; stop_irq_balance runs systemctl stop once', async (t) => {
  const root = fakeRoot(t);
  const ran: string[] = [];
  const run: CommandRunner = async (argv) => {
    ran.push(argv.join(' '));
    if (argv.join(' ') === 'systemctl is-active irqbalance') return { exitCode: 0, stdout: 'active\n', stderr: '' };
    return { exitCode: 0, stdout: '', stderr: '' };
  };
  const log = recordingLog();
  const config = conf('[tuning]\nnetdev_budget_usecs = 8000\nnetdev_budget_packets = 600\n');
  const r = await applyHostTuning(config, log, { root, run });
  for (let c = 0; c < 4; c++) assert.equal(readFileSync(join(root, GOV(c)), 'utf8').trim(), 'performance', `cpu${c} governor`);
  assert.equal(readFileSync(join(root, 'proc/sys/net/core/netdev_budget_usecs'), 'utf8').trim(), '8000');
  assert.equal(readFileSync(join(root, 'proc/sys/net/core/netdev_budget'), 'utf8').trim(), '600');
  assert.deepEqual(ran.filter((c) => c.startsWith('systemctl stop')), ['systemctl stop irqbalance']);
  assert.equal(r.failed.length, 0, r.failed.join('\n'));
  assert.equal(r.changed.length, 3 + 2 + 1, r.changed.join('\n'));
  assert.ok(log.lines.some((l) => l.level === 'info' && /stop_irq_balance: stopped the irqbalance service/.test(l.msg)));
  assert.ok(log.lines.some((l) => l.level === 'info' && /netdev_budget_usecs: set sysctl net.core.netdev_budget_usecs from "2000" to "8000"/.test(l.msg)));
  // Second run: everything already as wanted → nothing changed, nothing failed.
  ran.length = 0;
  const again = await applyHostTuning(config, recordingLog(), { root, run: async (argv) => (ran.push(argv.join(' ')), { exitCode: 3, stdout: 'inactive\n', stderr: '' }) });
  assert.deepEqual(again.changed, []);
  assert.deepEqual(ran, ['systemctl is-active irqbalance']);
});

test('effects: what cannot be done (non-root, container) is a warning, never fatal', async (t) => {
  const root = fakeRoot(t);
  const usecs = join(root, 'proc/sys/net/core/netdev_budget');
  const log = recordingLog();
  const run: CommandRunner = async (argv) =>
    argv[1] === 'is-active' ? { exitCode: 0, stdout: 'active', stderr: '' } : { exitCode: 1, stdout: '', stderr: 'Failed to stop irqbalance.service: Access denied' };
  const r = await applyHostTuning(conf('[tuning]\nnetdev_budget_packets = 600\n'), log, { root, run });
  assert.equal(readFileSync(usecs, 'utf8').trim(), '600');
  assert.equal(r.failed.length, 1);
  assert.match(r.failed[0]!, /tuning.stop_irq_balance: could not change the irqbalance service.*Access denied; shaping continues without it/);
  assert.ok(log.lines.some((l) => l.level === 'warn' && /Access denied/.test(l.msg)));
  // A root with nothing in it (no sysfs at all): notes only.
  const empty = await applyHostTuning(conf(), recordingLog(), { root: testDir(t), run: async () => ({ exitCode: 127, stdout: '', stderr: 'not found' }) });
  assert.deepEqual(empty.changed, []);
  assert.deepEqual(empty.failed, []);
  assert.ok(empty.notes.some((n) => /cannot tell whether irqbalance runs/.test(n)));
});

test('exclude_efficiency_cores: E-cores (cpu_atom, cpu_capacity) are left out of the queue count and the CPU placement', (t) => {
  assert.deepEqual(shapingCpus({ online: [0, 1, 2, 3, 4, 5], atom: [4, 5], capacity: {} }, true), { cpus: [0, 1, 2, 3], excluded: [4, 5], how: 'listed in /sys/devices/cpu_atom/cpus' });
  assert.deepEqual(shapingCpus({ online: [0, 1, 2, 3], capacity: { 0: 1024, 1: 1024, 2: 446, 3: 446 } }, true).cpus, [0, 1]);
  assert.deepEqual(shapingCpus({ online: [0, 1, 2, 3], atom: [2, 3], capacity: {} }, false).cpus, [0, 1, 2, 3]);
  assert.deepEqual(shapingCpus({ online: [0, 1], capacity: { 0: 1024, 1: 1024 } }, true).excluded, [], 'not hybrid: all CPUs');

  // A hybrid host: 8 online CPUs, 4..7 are E-cores, two NICs with 8 TX queues each.
  const root = testDir(t, 'lqos-hybrid-');
  mkdirSync(join(root, 'sys/devices/system/cpu'), { recursive: true });
  writeFileSync(join(root, 'sys/devices/system/cpu/online'), '0-7\n');
  mkdirSync(join(root, 'sys/devices/cpu_atom'), { recursive: true });
  writeFileSync(join(root, 'sys/devices/cpu_atom/cpus'), '4-7\n');
  for (const nic of ['eth0', 'eth1']) for (let q = 0; q < 8; q++) mkdirSync(join(root, `sys/class/net/${nic}/queues/tx-${q}`), { recursive: true });
  const ifaces = { download: 'eth1', upload: 'eth0', onAStick: false, forwarding: 'linux-bridge' as const };
  const q = hostQueueCount(conf(), ifaces, false, root);
  assert.ok(!('error' in q));
  assert.equal(q.queues, 4);
  assert.deepEqual(q.cpus, [0, 1, 2, 3]);
  assert.match(q.reason, /exclude_efficiency_cores: CPUs 4,5,6,7/);
  const all = hostQueueCount(conf('', 'exclude_efficiency_cores = false\n[bridge]\nto_internet = "eth0"\nto_network = "eth1"\n'), ifaces, false, root);
  assert.ok(!('error' in all));
  assert.equal(all.cpus, undefined, 'no exclusion: the dataplane places over every online CPU');
});

test('bridge mtu: set on real veths in a namespace at attach, read back with ip -j link', async (t) => {
  const ns = `lqtune-${randomBytes(3).toString('hex')}`;
  await execa('ip', ['netns', 'add', ns]);
  t.after(() => execa('ip', ['netns', 'del', ns], { reject: false }));
  await execa('ip', ['-n', ns, 'link', 'add', 'tn0', 'type', 'veth', 'peer', 'name', 'tn1']);
  const run: CommandRunner = async (argv) => {
    const r = await execa('ip', ['netns', 'exec', ns, ...argv], { reject: false });
    return { exitCode: r.exitCode ?? 127, stdout: String(r.stdout), stderr: String(r.stderr) };
  };
  const mtuOf = async (dev: string) => (JSON.parse((await execa('ip', ['-n', ns, '-j', 'link', 'show', 'dev', dev])).stdout) as { mtu: number }[])[0]!.mtu;
  assert.equal(await mtuOf('tn0'), 1500);
  const config = conf('[tuning]\nset_cpu_governor_performance = false\nstop_irq_balance = false\n', '[bridge]\nto_internet = "tn0"\nto_network = "tn1"\nmtu = 1400\n');
  const log = recordingLog();
  // Empty root: the real host's governor and sysctls are never touched.
  const r = await applyHostTuning(config, log, { root: testDir(t), run });
  assert.equal(await mtuOf('tn0'), 1400);
  assert.equal(await mtuOf('tn1'), 1400);
  assert.deepEqual(r.changed, ['bridge.mtu: set MTU of tn0 from 1500 to 1400', 'bridge.mtu: set MTU of tn1 from 1500 to 1400']);
  // single_interface mtu on one interface.
  const stick = conf('[tuning]\nset_cpu_governor_performance = false\nstop_irq_balance = false\n', '[single_interface]\ninterface = "tn0"\ninternet_vlan = 2\nnetwork_vlan = 3\nmtu = 1300\n');
  await applyHostTuning(stick, recordingLog(), { root: testDir(t), run });
  assert.equal(await mtuOf('tn0'), 1300);
  assert.equal(await mtuOf('tn1'), 1400);
  // An interface that is not there: a note, nothing fails.
  const gone = await applyHostTuning(conf('[tuning]\nstop_irq_balance = false\n', '[single_interface]\ninterface = "tn9"\ninternet_vlan = 2\nnetwork_vlan = 3\nmtu = 1400\n'), recordingLog(), { root: testDir(t), run });
  assert.deepEqual([gone.changed, gone.failed], [[], []]);
  assert.ok(gone.notes.includes('single_interface.mtu: interface tn9 not found; MTU not set'));
});

test('disable_offload, disable_rxvlan, disable_txvlan, rx_usecs, tx_usecs: what the attach applies, offloads read back on a veth', async (t) => {
  const dflt = interfaceTuning(conf());
  assert.deepEqual(dflt, { disableOffloads: true, offloads: ['gso', 'tso', 'lro', 'sg', 'gro', 'rxvlan', 'rx-vlan-stag-hw-parse', 'txvlan'], coalesce: { rxUsecs: 8, txUsecs: 8 }, xdpMode: 'native' });
  const custom = interfaceTuning(conf('[tuning]\ndisable_offload = ["gso"]\ndisable_rxvlan = false\ndisable_txvlan = true\nrx_usecs = 30\ntx_usecs = 40\n'));
  assert.deepEqual(custom, { disableOffloads: true, offloads: ['gso', 'txvlan'], coalesce: { rxUsecs: 30, txUsecs: 40 }, xdpMode: 'native' });

  // The same options through the attach's interface preparation on a real veth (veth has no
  // interrupt coalescing, so rx/tx_usecs are proven by the options above only).
  const ns = `lqoff-${randomBytes(3).toString('hex')}`;
  await execa('ip', ['netns', 'add', ns]);
  t.after(() => execa('ip', ['netns', 'del', ns], { reject: false }));
  await execa('ip', ['-n', ns, 'link', 'add', 'of0', 'numtxqueues', '2', 'numrxqueues', '2', 'type', 'veth', 'peer', 'name', 'of1', 'numtxqueues', '2', 'numrxqueues', '2']);
  const features = async (dev: string) => {
    const out = (await execa('ip', ['netns', 'exec', ns, 'ethtool', '-k', dev])).stdout;
    return Object.fromEntries(out.split('\n').map((l) => /^([a-z-]+): (on|off)/.exec(l)).filter((m) => m).map((m) => [m![1], m![2]]));
  };
  const before = await features('of0');
  assert.equal(before['generic-segmentation-offload'], 'on');
  assert.equal(before['tx-vlan-offload'], 'on');
  const prep = await prepareInterface(ns, 'of0', custom);
  const after1 = await features('of0');
  assert.equal(after1['generic-segmentation-offload'], 'off', 'disable_offload = ["gso"]');
  assert.equal(after1['tx-vlan-offload'], 'off', 'disable_txvlan = true');
  assert.equal(after1['rx-vlan-offload'], 'on', 'disable_rxvlan = false leaves it on');
  assert.equal(after1['tcp-segmentation-offload'], 'on', 'tso not listed: left on');
  assert.equal(prep.txQueues, 2);
  await prepareInterface(ns, 'of1', dflt);
  const after2 = await features('of1');
  for (const f of ['generic-segmentation-offload', 'tcp-segmentation-offload', 'scatter-gather', 'generic-receive-offload', 'rx-vlan-offload', 'rx-vlan-stag-hw-parse', 'tx-vlan-offload']) assert.equal(after2[f], 'off', f);
});

const ws = workspaceFactory();

test('lqosd applies the tuning once when it attaches, and again on reload only when a tuning key changed', async () => {
  const w = ws({ runDir: true, conf: (dir) => loConfig(dir).replace('dry_run = true', 'dry_run = false') });
  const tuned: LqosConfig[] = [];
  const attached: AttachArgs[] = [];
  const d = await startTestDaemon(w, { attachDataplane: async (a) => void attached.push(a), tuneHost: async (c) => void tuned.push(c) });
  try {
    assert.equal(attached.length, 1);
    assert.equal(tuned.length, 1, 'tuned once at attach');
    await d.context.refresh().catch(() => undefined);
    await d.context.reloadConfig();
    assert.equal(tuned.length, 1, 'a refresh or an unchanged reload does not re-apply');
    writeFileSync(w.config, `${readFileSync(w.config, 'utf8')}[tuning]\nnetdev_budget_usecs = 4000\n`);
    await d.context.reloadConfig();
    assert.equal(tuned.length, 2, 'a changed tuning key re-applies');
    assert.equal(tuned[1]!.tuning.netdev_budget_usecs, 4000);
  } finally {
    await d.stop();
  }
});
