// test-gate: shared (CPU only; see test/support/gate.ts)
/**
 * lqosd in-process (startDaemon, dry run, temp run/state dirs): every bus request type, refresh and
 * submit_plan through the real shaping service (slowed down for `busy`), degraded preflight, config
 * reload, urgent issues across a daemon restart, single instance.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { copyFileSync, existsSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { BusClient, busRequest } from '../../lib/bus/client.ts';
import { BusError } from '../../lib/bus/protocol.ts';
import { DaemonAlreadyRunningError } from '../../lib/daemon/daemon.ts';
import { ShapingService, type ShapingRequest } from '../../lib/shaping/service.ts';
import { recordLines } from '../../lib/util/logRecords.ts';
import { loConfig, missingInterfacesConfig } from '../support/configs.ts';
import { startTestDaemon } from '../support/daemon.ts';
import { repoRoot } from '../support/paths.ts';
import { sleep } from '../support/wait.ts';
import { workspaceFactory, type Workspace } from '../support/workspace.ts';
import { RawConn } from './helpers.ts';

const newWorkspace = workspaceFactory();
function ws(conf: (dir: string) => string = loConfig): Workspace {
  return newWorkspace({ prefix: 'lqosd-', conf, runDir: true });
}

function copyExampleInputs(w: Workspace): void {
  copyFileSync(join(repoRoot, 'conf/example/ShapedDevices.csv'), join(w.dir, 'ShapedDevices.csv'));
  copyFileSync(join(repoRoot, 'conf/example/network.json'), join(w.dir, 'network.json'));
}

/** The real shaping service, slowed down by `delayMs` and calling `after` when a run is done. */
function slowService(delayMs: number, after?: () => void) {
  const real = new ShapingService();
  return {
    run: async (req: ShapingRequest, env: Parameters<ShapingService['run']>[1]) => {
      await sleep(delayMs);
      const r = await real.run(req, env);
      after?.();
      return r;
    },
  };
}

test('every request type round-trips through the bus (dry run daemon)', async () => {
  const w = ws();
  const applied: ShapingRequest[] = [];
  copyExampleInputs(w);
  const real = new ShapingService();
  const d = await startTestDaemon(w, {
    shaping: {
      run: (req, env) => {
        applied.push(req);
        return real.run(req, env);
      },
    },
  });
  const c = new BusClient({ path: w.busPath });
  try {
    assert.deepEqual(await c.request('ping'), { pong: true, version: d.context.version, pid: process.pid });

    const st = await c.request<'status', any>('status');
    assert.equal(st.dryRun, true);
    assert.equal(st.shaping.degraded, undefined);
    assert.equal(st.dataplane.state, 'dry_run');
    assert.equal(st.configPath, w.config);
    assert.equal(st.bus.path, w.busPath);

    const rf = await c.request<'refresh', any>('refresh');
    assert.equal(rf.exitCode, 0);
    assert.ok(rf.records.some((r: any) => r.level === 'info' && /^planned \d+ circuits/.test(r.msg)), JSON.stringify(rf.records));
    assert.equal(rf.mode, 'none', 'a dry run applies nothing');

    const devicesCsv = readFileSync(join(repoRoot, 'conf/example/ShapedDevices.csv'), 'utf8');
    const sp = await c.request<'submit_plan', any>('submit_plan', { mode: 'incremental', devicesCsv, networkPath: join(w.dir, 'network.json') });
    assert.equal(sp.ok, true, JSON.stringify(sp.records));
    assert.deepEqual([sp.exitCode, sp.mode, sp.commands], [0, 'none', 0]);
    assert.equal(applied.length, 2);
    assert.deepEqual(applied[1], {
      inputs: { devicesText: devicesCsv, networkText: readFileSync(join(w.dir, 'network.json'), 'utf8'), devicesFile: 'ShapedDevices.csv', networkFile: join(w.dir, 'network.json') },
      updateonly: undefined,
      verbose: undefined,
    });
    assert.equal(d.context.shapingStatus().lastApply?.mode, 'none');
    await assert.rejects(c.request('submit_plan', { mode: 'full', devicesPath: '/nonexistent.csv', networkJson: '{}' }), (e: BusError) => e.code === 'failed' && /cannot read/.test(e.message));

    const entries = [
      { prefix: '100.64.0.1', cpu: 0, major: 1, minor: 3, circuitId: 'c1', deviceId: 'd1' },
      { prefix: '2001:DB8::/56', cpu: 1, major: 2, minor: 4, circuitId: 'c2', deviceId: 'd2' },
      { prefix: '100.64.1.0/24', cpu: 1, major: 2, minor: 5, circuitId: 'c3' },
    ];
    assert.deepEqual(await c.request('map_ip_add', { entries }), { count: 3, backend: 'memory' });
    const list = await c.request<'map_ip_list', any>('map_ip_list');
    assert.deepEqual(list.mappings.map((m: any) => m.prefix), ['100.64.0.1/32', '100.64.1.0/24', '2001:db8::/56']);
    assert.equal(typeof list.mappings[0].circuitHash, 'string', 'u64 hashes travel as decimal strings');
    assert.equal(list.mappings[0].circuitId, 'c1');
    assert.deepEqual(await c.request('map_ip_delete', { prefixes: ['100.64.0.1/32', '10.9.9.9'] }), { count: 1, backend: 'memory' });
    assert.deepEqual(await c.request('map_ip_clear'), { removed: 2, backend: 'memory' });
    assert.deepEqual((await c.request<'map_ip_list', any>('map_ip_list')).mappings, []);

    assert.equal((await c.request<'scheduler_status', any>('scheduler_status')).health, 'unknown');
    assert.equal((await c.request<'scheduler_heartbeat', any>('scheduler_heartbeat', { phase: 'running_integration', nextRun: '2030-01-01T00:00:00Z' })).health, 'running');
    const se = await c.request<'scheduler_error', any>('scheduler_error', { message: 'uisp failed', integration: 'uisp', output: 'a\nb\n', logFile: '/tmp/lqos_scheduler__uisp_x.log' });
    assert.equal(se.health, 'error');
    assert.equal(se.lastError.preview, 'a\nb');
    assert.equal((await c.request<'scheduler_success', any>('scheduler_success', {})).health, 'running');
    await c.request('scheduler_heartbeat', { phase: 'idle' });
    assert.equal((await c.request<'scheduler_status', any>('scheduler_status')).health, 'healthy');

    const before = (await c.request<'urgent_list', any>('urgent_list')).issues.length; // lo: single TX queue warning
    const u = await c.request<'urgent_submit', any>('urgent_submit', { source: 'LibreQoS', severity: 'error', code: 'TEST_X', message: 'boom', context: { cpu: 1 }, dedupeKey: 'k1' });
    assert.equal(u.count, 1);
    assert.equal((await c.request<'urgent_submit', any>('urgent_submit', { source: 'LibreQoS', severity: 'error', code: 'TEST_X', message: 'boom again', dedupeKey: 'k1' })).count, 2);
    const ul = await c.request<'urgent_list', any>('urgent_list');
    assert.equal(ul.issues.length, before + 1);
    assert.equal(ul.issues[0].message, 'boom again');
    assert.deepEqual(await c.request('urgent_ack', { issueId: u.id }), { acknowledged: true, active: ul.active - 1 });
    await assert.rejects(c.request('urgent_ack', { issueId: '424242' }), (e: BusError) => e.code === 'not_found');
    assert.equal((await c.request<'urgent_list', any>('urgent_list')).issues.find((i: any) => i.id === u.id).acknowledged, true);
    assert.deepEqual(await c.request('urgent_resolve', { key: 'k1' }), { resolved: true, active: ul.active - 1 });
    const u2 = await c.request<'urgent_submit', any>('urgent_submit', { source: 'API', severity: 'warning', code: 'Y', message: 'y' });
    assert.equal((await c.request<'urgent_clear', any>('urgent_clear', { issueId: u2.id })).removed, 1);
    assert.equal((await c.request<'urgent_clear', any>('urgent_clear', {})).removed, before);
    assert.equal(d.context.urgent.list().length, 0);

    const rc = await c.request<'reload_config', any>('reload_config');
    assert.deepEqual(rc.changed, []);
    const hosts = await c.request<'stats_hosts', any>('stats_hosts', { limit: 5 });
    assert.deepEqual(hosts.hosts, []);
    assert.match(hosts.note, /no dataplane attached/);
  } finally {
    c.close();
    await d.stop();
  }
  assert.equal(existsSync(w.busPath), false, 'socket removed on stop');
  assert.equal(existsSync(w.lockPath), false, 'lock removed on stop');
});

test('socket mode 0600; 50 concurrent clients; the daemon survives junk and oversized messages', async () => {
  const w = ws();
  const d = await startTestDaemon(w);
  try {
    assert.equal(statSync(w.busPath).mode & 0o777, 0o600);
    const replies = await Promise.all(
      Array.from({ length: 50 }, (_, i) =>
        busRequest<'urgent_submit', any>('urgent_submit', { source: 'test', severity: 'info', code: `C${i % 5}`, message: `m${i}` }, { path: w.busPath }),
      ),
    );
    assert.equal(replies.length, 50);
    const mine = d.context.urgent.list().filter((i) => i.source === 'test');
    assert.equal(mine.length, 5);
    assert.equal(mine.reduce((n, i) => n + i.count, 0), 50);

    const raw = await RawConn.open(w.busPath);
    raw.write('not json\n');
    assert.equal((await raw.next()).error.code, 'bad_json');
    raw.write(`{"id":1,"type":"urgent_submit","message":"${'x'.repeat(1024 * 1024)}"}\n`);
    assert.equal((await raw.next()).error.code, 'too_large');
    assert.ok(await raw.waitClosed());
    assert.equal((await busRequest<'ping', any>('ping', {}, { path: w.busPath })).pong, true);
  } finally {
    await d.stop();
  }
});

test('refresh shapes the configured files (dry run) and reports its exit code and log records', async () => {
  const w = ws();
  copyExampleInputs(w);
  const d = await startTestDaemon(w);
  try {
    const r = await busRequest<'refresh', any>('refresh', {}, { path: w.busPath, timeoutMs: 25_000 });
    const lines = recordLines(r.records);
    assert.equal(r.exitCode, 0, lines.join('\n'));
    assert.ok(lines.some((l: string) => /^INFO dry run: nothing applied/.test(l)), lines.join('\n'));
    assert.ok(existsSync(join(w.stateDir, 'debug', 'linux_tc.txt')));
    assert.equal(d.context.shapingStatus().lastApply?.mode, 'none');
    // A failing run: broken inputs → exit 1 and one urgent issue naming the file (not two).
    writeFileSync(join(w.dir, 'network.json'), '{ broken');
    const bad = await busRequest<'refresh', any>('refresh', {}, { path: w.busPath, timeoutMs: 25_000 });
    assert.equal(bad.exitCode, 1);
    const codes = d.context.urgent.list().map((i) => i.code);
    assert.ok(d.context.urgent.list().some((i) => i.code === 'INPUTS_INVALID' && i.message.includes('network.json')), codes.join());
    assert.ok(!codes.includes('REFRESH_FAILED'), codes.join());
    // A run that fails for another reason (here: lqos_overrides.json unreadable) raises REFRESH_FAILED.
    copyExampleInputs(w);
    writeFileSync(join(w.dir, 'lqos_overrides.json'), '{ not json');
    const bad2 = await busRequest<'refresh', any>('refresh', {}, { path: w.busPath, timeoutMs: 25_000 });
    assert.equal(bad2.exitCode, 1);
    assert.ok(d.context.urgent.list().some((i) => i.code === 'REFRESH_FAILED'));
  } finally {
    await d.stop();
  }
});

test('refresh never runs twice at once: the second gets busy', async () => {
  const w = ws();
  copyExampleInputs(w);
  const d = await startTestDaemon(w, { shaping: slowService(500) });
  try {
    const first = busRequest<'refresh', any>('refresh', {}, { path: w.busPath });
    await sleep(100);
    await assert.rejects(busRequest('refresh', {}, { path: w.busPath }), (e: BusError) => e.code === 'busy' && /refresh is already running/.test(e.message));
    assert.equal((await busRequest<'status', any>('status', {}, { path: w.busPath })).job.kind, 'refresh');
    assert.equal((await first).exitCode, 0);
    assert.equal((await busRequest<'refresh', any>('refresh', {}, { path: w.busPath })).exitCode, 0, 'free again afterwards');
  } finally {
    await d.stop();
  }
});

test('preflight failure (interface missing): daemon stays up degraded with an urgent issue; a fixed config + reload recovers', async () => {
  const w = ws(missingInterfacesConfig);
  const d = await startTestDaemon(w);
  try {
    const st = await busRequest<'status', any>('status', {}, { path: w.busPath });
    assert.match(st.shaping.degraded, /preflight failed.*interface lqt-nope\d does not exist on this host/);
    assert.equal(st.preflight.ok, false);
    assert.equal(st.dataplane.state, 'not_attached');
    const issue = d.context.urgent.list().find((i) => i.code === 'PREFLIGHT_FAILED');
    assert.ok(issue);
    assert.equal(issue.severity, 'error');
    await assert.rejects(busRequest('map_ip_list', {}, { path: w.busPath }), (e: BusError) => e.code === 'unavailable' && /preflight failed/.test(e.message));
    // A broken config on reload is refused and the old one stays.
    w.writeConfig('this is = = not toml');
    await assert.rejects(busRequest('reload_config', {}, { path: w.busPath }), (e: BusError) => e.code === 'config_error' && /TOML syntax error/.test(e.message));
    assert.equal(d.context.config().bridge?.to_internet, 'lqt-nope0');
    // Fixed config → reload → shaping (dry run) comes up, the issue is resolved.
    w.writeConfig(loConfig(w.dir));
    const r = await busRequest<'reload_config', any>('reload_config', {}, { path: w.busPath });
    assert.ok(r.changed.includes('bridge') && r.changed.includes('single_interface'), r.changed.join());
    assert.equal(r.shaping.degraded, undefined);
    assert.equal(d.context.urgent.list().some((i) => i.code === 'PREFLIGHT_FAILED'), false);
    assert.equal((await busRequest<'status', any>('status', {}, { path: w.busPath })).dataplane.state, 'dry_run');
  } finally {
    await d.stop();
  }
});

test('a non-dry-run config attaches the dataplane through the injected attacher; attach failure → degraded', async () => {
  const w = ws((dir) => loConfig(dir).replace('dry_run = true', 'dry_run = false'));
  const calls: unknown[] = [];
  const d = await startTestDaemon(w, { attachDataplane: async (a) => void calls.push(a.interfaces) });
  try {
    assert.deepEqual(calls, [{ download: 'lo', upload: 'lo', onAStick: true, forwarding: 'stick' }]);
    assert.equal((await busRequest<'status', any>('status', {}, { path: w.busPath })).dataplane.state, 'attached');
  } finally {
    await d.stop();
  }
  const d2 = await startTestDaemon(w, { attachDataplane: () => Promise.reject(new Error('no bpffs')) });
  try {
    assert.match(d2.context.shapingStatus().degraded!, /attaching the dataplane failed.*no bpffs/);
    assert.ok(d2.context.urgent.list().some((i) => i.code === 'DATAPLANE_ATTACH_FAILED'));
    // Without a dataplane nothing can be shaped: both shaping requests say why.
    await assert.rejects(busRequest('submit_plan', { mode: 'full', devicesCsv: '', networkJson: '{}' }, { path: w.busPath }), (e: BusError) => e.code === 'unavailable' && /no bpffs/.test(e.message));
    await assert.rejects(busRequest('refresh', {}, { path: w.busPath }), (e: BusError) => e.code === 'unavailable' && /no bpffs/.test(e.message));
  } finally {
    await d2.stop();
  }
});

test('urgent issues persist across a daemon restart (state directory)', async () => {
  const w = ws();
  const d1 = await startTestDaemon(w);
  const issue = await busRequest<'urgent_submit', any>('urgent_submit', { source: 'LibreQoS', severity: 'error', code: 'TC_U16_OVERFLOW', message: 'cpu 3 full', dedupeKey: 'TC_U16_OVERFLOW_CPU_3' }, { path: w.busPath });
  await busRequest('urgent_ack', { issueId: issue.id }, { path: w.busPath });
  await d1.stop();
  assert.ok(JSON.parse(readFileSync(join(w.stateDir, 'urgent_issues.json'), 'utf8')).issues.some((i: any) => i.code === 'TC_U16_OVERFLOW'));
  const d2 = await startTestDaemon(w);
  try {
    const list = (await busRequest<'urgent_list', any>('urgent_list', {}, { path: w.busPath })).issues;
    const again = list.find((i: any) => i.key === 'TC_U16_OVERFLOW_CPU_3');
    assert.ok(again);
    assert.equal(again.id, issue.id);
    assert.equal(again.acknowledged, true);
  } finally {
    await d2.stop();
  }
});

test('a second daemon on the same run dir fails with "already running"; the first keeps serving', async () => {
  const w = ws();
  const d = await startTestDaemon(w);
  try {
    await assert.rejects(startTestDaemon(w), (e: Error) => e instanceof DaemonAlreadyRunningError && /lqosd already running \(PID \d+ holds .*lqosd\.lock\)/.test(e.message));
    assert.equal((await busRequest<'ping', any>('ping', {}, { path: w.busPath })).pong, true);
  } finally {
    await d.stop();
  }
});

test('web plug-in: started with the context and closed on stop; a failing web server does not stop lqosd', async () => {
  const w = ws((dir) => loConfig(dir).replace('disable_webserver = true', 'disable_webserver = false'));
  const events: string[] = [];
  const d = await startTestDaemon(w, {
    web: async (ctx) => {
      events.push(`start ${ctx.configPath === w.config} ${typeof ctx.urgent.list} ${ctx.busPath === w.busPath}`);
      return { close: async () => void events.push('close') };
    },
  });
  await d.stop();
  assert.deepEqual(events, ['start true function true', 'close']);
  const d2 = await startTestDaemon(w, { web: () => Promise.reject(new Error('port in use')) });
  try {
    assert.equal((await busRequest<'ping', any>('ping', {}, { path: w.busPath })).pong, true);
  } finally {
    await d2.stop();
  }
});

test('stop() lets a running refresh finish (bus closed first), then removes socket and lock', async () => {
  const w = ws();
  const marker = join(w.dir, 'finished');
  copyExampleInputs(w);
  const d = await startTestDaemon(w, { shaping: slowService(600, () => writeFileSync(marker, '')) });
  const pending = busRequest('refresh', {}, { path: w.busPath }).catch((e: Error) => e);
  await sleep(150);
  const t0 = Date.now();
  await d.stop();
  assert.ok(Date.now() - t0 >= 300, 'waited for the refresh');
  assert.ok(existsSync(marker), 'the refresh ran to completion');
  assert.equal(existsSync(w.busPath), false);
  assert.equal(existsSync(w.lockPath), false);
  assert.ok((await pending) instanceof Error, 'the client saw the connection close');
});

test('refresh records what the run applied (mode and tc command count) in the shaping status', async () => {
  const w = ws();
  copyExampleInputs(w);
  const real = new ShapingService();
  // A dry run applies nothing; the service reports an incremental apply of 7 commands instead.
  const shaping = { run: async (req: ShapingRequest, env: Parameters<ShapingService['run']>[1]) => {
    const r = await real.run(req, env);
    return { ...r, outcome: { ...r.outcome, mode: 'incremental' as const, commands: 7 } };
  } };
  const d = await startTestDaemon(w, { shaping });
  try {
    const r = await busRequest<'refresh', any>('refresh', {}, { path: w.busPath });
    assert.deepEqual([r.mode, r.commands], ['incremental', 7]);
    const last = d.context.shapingStatus().lastApply!;
    assert.equal(last.mode, 'incremental');
    assert.equal(last.commands, 7);
  } finally {
    await d.stop();
  }
});
