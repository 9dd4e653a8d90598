/**
 * The forwarding mode's preflight on real interfaces, and the mode in lqosd's status (issue 12).
 *
 * - `[bridge] use_xdp_bridge = true` with both NICs ports of one Linux bridge: the real `lqosd`, run
 *   inside a namespace (`ip netns exec`, so its preflight reads that namespace's `ip -j -d link`),
 *   stays up degraded with an urgent PREFLIGHT_FAILED issue whose message holds both fixes; each fix
 *   (use_xdp_bridge = false, or `ip link set IF nomaster`) followed by SIGHUP clears it; one NIC left
 *   in the bridge is a warning. `LibreQoS --direct` refuses the same wiring before touching anything.
 * - The status (bus `status` and the web UI's /api/status payload) carries the mode in force once the
 *   dataplane is attached (stick on lo with its VLAN ids; the attach is replaced: no bpffs needed).
 * Root; run under `flock /tmp/lqos-kernel.lock`. Namespace lqfw-<random>, removed in after(). The
 * lqosd here runs with queues.dry_run = true: a preflight that passes attaches nothing.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { execa } from 'execa';
import { busRequest } from '../../lib/bus/client.ts';
import type { DaemonContext } from '../../lib/daemon/context.ts';
import { statusPayload } from '../../lib/web/payloads.ts';
import { loConfig } from '../support/configs.ts';
import { startTestDaemon } from '../support/daemon.ts';
import { repoRoot } from '../support/paths.ts';
import { waitFor } from '../support/wait.ts';
import { workspaceFactory, type Workspace } from '../support/workspace.ts';

const NS = `lqfw-${randomBytes(3).toString('hex')}`;
const ip = (...args: string[]) => execa('ip', ['-n', NS, ...args]);
const ws = workspaceFactory();

const conf = (dir: string, xdp: boolean) =>
  `lqos_directory = "${dir}"\nstate_directory = "${join(dir, 'state')}"\ndisable_webserver = true\n` +
  `[bridge]\nuse_xdp_bridge = ${xdp}\nto_internet = "eth0"\nto_network = "eth1"\n[queues]\noverride_available_queues = 2\ndry_run = true\n`;

before(async () => {
  await execa('ip', ['netns', 'add', NS]);
  await ip('link', 'add', 'br0', 'type', 'bridge');
  const q = ['numtxqueues', '2', 'numrxqueues', '2'];
  for (const [a, b] of [['eth0', 'p0'], ['eth1', 'p1']]) await ip('link', 'add', a!, ...q, 'type', 'veth', 'peer', 'name', b!, ...q);
  for (const dev of ['eth0', 'eth1']) await ip('link', 'set', dev, 'master', 'br0');
  for (const dev of ['br0', 'eth0', 'eth1', 'p0', 'p1']) await ip('link', 'set', dev, 'up');
});

after(async () => {
  await execa('ip', ['netns', 'del', NS], { reject: false });
});

/** The real lqosd launcher inside the namespace (bus socket and lock in the workspace). */
function lqosdInNs(w: Workspace) {
  return execa('ip', ['netns', 'exec', NS, join(repoRoot, 'lqosd'), '--config', w.config, '--no-web'], {
    reject: false,
    all: true,
    env: { LQOS_LOG_FORMAT: 'json', LQOS_RUN_DIR: w.runDir, LQOS_BUS_PATH: w.busPath },
  });
}

const status = (w: Workspace) => busRequest<'status', any>('status', {}, { path: w.busPath });
const issues = async (w: Workspace) => (await busRequest<'urgent_list', any>('urgent_list', {}, { path: w.busPath })).issues as any[];
/** The issue with this code, if lqosd has not resolved (removed) it. */
const active = async (w: Workspace, code: string) => (await issues(w)).find((i) => i.code === code);

test('use_xdp_bridge = true, both NICs in br0: lqosd degraded with an urgent issue that says what to do; each fix + reload recovers', async () => {
  const w = ws({ prefix: 'lqfw-', runDir: true, conf: (dir) => conf(dir, true) });
  const child = lqosdInNs(w);
  try {
    await waitFor(async () => status(w).then(() => true, () => false), 20_000, 'lqosd to answer');
    const st = await status(w);
    assert.match(st.shaping.degraded, /^preflight failed, not shaping: \[bridge\] use_xdp_bridge = true in .*lqos\.conf, but eth0 and eth1 are both ports of the Linux bridge br0/);
    assert.match(st.shaping.degraded, /ip link set eth0 nomaster; ip link set eth1 nomaster/);
    assert.match(st.shaping.degraded, /or set use_xdp_bridge = false to keep forwarding with br0; then reload lqosd/);
    assert.equal(st.preflight.ok, false);
    assert.equal(st.shaping.forwarding, undefined, 'no mode in force while degraded');
    const issue = await active(w, 'PREFLIGHT_FAILED');
    assert.ok(issue, JSON.stringify(await issues(w)));
    assert.equal(issue.severity, 'error');
    assert.equal(issue.message, st.shaping.degraded);

    // Fix 1: keep the Linux bridge (use_xdp_bridge = false) → no error, no warning: br0 holds both.
    w.writeConfig(conf(w.dir, false));
    child.kill('SIGHUP');
    await waitFor(async () => (await status(w)).shaping.degraded === undefined, 15_000, 'reload to clear degraded');
    const ok = await status(w);
    assert.equal(ok.preflight.ok, true);
    assert.deepEqual(ok.preflight.warnings.filter((x: string) => /bridge/.test(x)), []);
    assert.equal(await active(w, 'PREFLIGHT_FAILED'), undefined, 'the urgent issue is resolved');

    // Back to the XDP bridge with eth1 taken out: eth0 still a bridge port → a warning, not a refusal.
    await ip('link', 'set', 'eth1', 'nomaster');
    w.writeConfig(conf(w.dir, true));
    child.kill('SIGHUP');
    await waitFor(async () => /eth0 is a port of the Linux bridge br0/.test((await status(w)).preflight.warnings.join('\n')), 15_000, 'reload with one bridged NIC');
    const one = await status(w);
    assert.equal(one.shaping.degraded, undefined);
    assert.match((await active(w, 'PREFLIGHT_WARNING')).message, /take it out \(ip link set eth0 nomaster\)/);

    // Fix 2: both out of the bridge → clean.
    await ip('link', 'set', 'eth0', 'nomaster');
    child.kill('SIGHUP');
    await waitFor(async () => !/br0/.test((await status(w)).preflight.warnings.join('\n')), 15_000, 'reload with no bridged NIC');
    assert.equal((await status(w)).shaping.degraded, undefined);
    assert.equal(child.exitCode, null, 'still running');
  } finally {
    child.kill('SIGTERM');
    await child;
    for (const dev of ['eth0', 'eth1']) await ip('link', 'set', dev, 'master', 'br0');
  }
});

test('LibreQoS --direct refuses the XDP bridge on bridged NICs before changing anything', async () => {
  const w = ws({ prefix: 'lqfw-', runDir: true, conf: (dir) => conf(dir, true).replace('dry_run = true', 'dry_run = false') });
  const r = await execa('ip', ['netns', 'exec', NS, join(repoRoot, 'LibreQoS'), '--direct'], {
    reject: false,
    // No inputs in the workspace and a pin root outside bpffs: even a regression could not attach.
    env: { LQOS_LOG_FORMAT: 'json', LQOS_CONFIG: w.config, LQOS_RUN_DIR: w.runDir, LQOS_BPF_PIN_ROOT: join(w.dir, 'bpf') },
    cwd: repoRoot,
  });
  assert.notEqual(r.exitCode, 0, String(r.stderr));
  assert.match(String(r.stderr), /eth0 and eth1 are both ports of the Linux bridge br0/);
  assert.match(String(r.stderr), /nothing was applied/);
  const qdiscs = JSON.parse((await execa('tc', ['-n', NS, '-j', 'qdisc', 'show', 'dev', 'eth1'])).stdout) as { kind: string }[];
  assert.ok(!qdiscs.some((q) => q.kind === 'mq' || q.kind === 'clsact'), `no qdisc added: ${JSON.stringify(qdiscs)}`);
  const link = (JSON.parse((await ip('-j', '-d', 'link', 'show', 'dev', 'eth1')).stdout) as { xdp?: unknown }[])[0]!;
  assert.equal(link.xdp, undefined, 'no XDP program attached');
});

test('status carries the forwarding mode in force once attached (stick on lo: interface and VLAN ids), in the bus reply and /api/status', async () => {
  const w = ws({ prefix: 'lqfw-', runDir: true, conf: (dir) => loConfig(dir).replace('dry_run = true', 'dry_run = false').replace('disable_webserver = true\n', '') });
  let ctx: DaemonContext | undefined;
  const d = await startTestDaemon(w, {
    attachDataplane: async () => ({ xdp: [{ interface: 'lo', role: 'stick', mode: 'native' }] }),
    web: async (c) => void (ctx = c),
  });
  try {
    const want = { mode: 'stick', interface: 'lo', internetVlan: 2, networkVlan: 3 };
    assert.deepEqual((await status(w)).shaping.forwarding, want);
    assert.ok(ctx, 'web starter called');
    const payload = statusPayload(ctx);
    assert.deepEqual(payload.shapingStatus.forwarding, want);
    assert.deepEqual(payload.shapingStatus.xdp, [{ interface: 'lo', role: 'stick', mode: 'native' }]);
  } finally {
    await d.stop();
  }
});
