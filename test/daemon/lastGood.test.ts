// test-gate: shared (CPU only; see test/support/gate.ts)
/**
 * lqosd and the last good inputs (in-process daemon, fake dataplane attach, the real shaping
 * service forced into a dry run so no tc runs): the run at start falls back to the last good
 * inputs, raises an urgent issue naming the file and line and says so in the status; a later good
 * run clears both; skipped rows get their own urgent issue, replaced and cleared run by run.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { BusClient } from '../../lib/bus/client.ts';
import { statePaths } from '../../lib/config/paths.ts';
import { saveLastGood } from '../../lib/shaping/lastGood.ts';
import { ShapingService, type ShapingRequest } from '../../lib/shaping/service.ts';
import { startTestDaemon } from '../support/daemon.ts';
import { waitFor } from '../support/wait.ts';
import { workspaceFactory } from '../support/workspace.ts';

const newWorkspace = workspaceFactory();
const HEADER = 'Circuit ID,Circuit Name,Device ID,Device Name,Parent Node,MAC,IPv4,IPv6,Download Min Mbps,Upload Min Mbps,Download Max Mbps,Upload Max Mbps,Comment';
const NET = JSON.stringify({ AP_1: { downloadBandwidthMbps: 1000, uploadBandwidthMbps: 1000 } });
const row = (id: string, ip: string, down: number | string = 10) => `${id},Name ${id},${id}-d,Dev ${id},AP_1,,${ip},,1,1,${down},5,`;
const csv = (...rows: string[]) => [HEADER, ...rows].join('\n') + '\n';
const GOOD = csv(row('a', '100.64.0.1'), row('b', '100.64.0.2'));

/** A real (not dry-run) config on lo, so lqosd shapes at start; the service below never touches tc. */
const conf = (dir: string) =>
  `lqos_directory = "${dir}"\nstate_directory = "${join(dir, 'state')}"\ndisable_webserver = true\n[single_interface]\ninterface = "lo"\ninternet_vlan = 2\nnetwork_vlan = 3\n[queues]\noverride_available_queues = 2\n`;

function dryService(requests: ShapingRequest[]) {
  const real = new ShapingService();
  return {
    run: (req: ShapingRequest, env: Parameters<ShapingService['run']>[1]) => {
      requests.push(req);
      return real.run(req, { ...env, config: { ...env.config, queues: { ...env.config.queues, dry_run: true } } });
    },
  };
}

test('start with a broken ShapedDevices.csv: last good inputs applied, urgent issue names file and line, status says so; a fixed file clears it', async () => {
  const w = newWorkspace({ prefix: 'lqosd-lg-', conf, runDir: true });
  const meta = saveLastGood(statePaths(join(w.dir, 'state')), { devicesFile: 'x', networkFile: 'y', devicesText: GOOD, networkText: NET });
  w.write('network.json', NET);
  w.write('ShapedDevices.csv', 'Circuit ID;Circuit Name;garbage\n' + row('a', '100.64.0.1', 50) + '\n');
  const requests: ShapingRequest[] = [];
  const d = await startTestDaemon(w, { attachDataplane: async () => undefined, shaping: dryService(requests), shapeAtStart: true });
  const c = new BusClient({ path: w.busPath });
  try {
    await waitFor(async () => (await c.request<'status', any>('status')).shaping.lastGood !== undefined, 20_000, 'the status to say "last good"');
    const st = await c.request<'status', any>('status');
    assert.equal(st.shaping.lastGood.at, meta.at);
    assert.match(st.shaping.lastGood.reason, /ShapedDevices\.csv line 1: /);
    assert.equal(st.shaping.lastGood.line, 1);
    // One run of the configured inputs with the fallback allowed; what it planned is the last good copy.
    assert.equal(requests.length, 1);
    assert.equal(requests[0].onInvalid, 'last-good');
    const q = JSON.parse(readFileSync(join(w.dir, 'state', 'shaping', 'queuingStructure.json'), 'utf8'));
    assert.deepEqual(q.circuits.map((x: any) => [x.id, x.download.ceilMbps]), [['a', 10], ['b', 10]]);
    const issues = (await c.request<'urgent_list', any>('urgent_list')).issues;
    const inv = issues.find((i: any) => i.code === 'INPUTS_INVALID');
    assert.ok(inv, JSON.stringify(issues));
    assert.match(inv.message, /ShapedDevices\.csv line 1: the header row is missing/);
    assert.match(inv.message, new RegExp(`shaping from the last good inputs of ${meta.at}`));
    assert.equal(inv.severity, 'error');

    // The operator fixes the file: a normal run clears the issue and the status.
    w.write('ShapedDevices.csv', GOOD);
    const ok = await c.request<'refresh', any>('refresh');
    assert.equal(ok.exitCode, 0, JSON.stringify(ok.records));
    assert.equal((await c.request<'status', any>('status')).shaping.lastGood, undefined);
    assert.equal((await c.request<'urgent_list', any>('urgent_list')).issues.some((i: any) => i.code === 'INPUTS_INVALID'), false);
  } finally {
    c.close();
    await d.stop();
  }
});

test('skipped rows: urgent issue lists each row (file, line, reason), is replaced by the next run and cleared when none are skipped', async () => {
  const w = newWorkspace({ prefix: 'lqosd-skip-', conf, runDir: true });
  saveLastGood(statePaths(join(w.dir, 'state')), { devicesFile: 'x', networkFile: 'y', devicesText: GOOD, networkText: NET });
  w.write('network.json', NET);
  w.write('ShapedDevices.csv', csv(row('a', '100.64.0.1', 12), row('b', '100.64.0.2', 'lots'), row('n', '100.64.0.1')));
  const d = await startTestDaemon(w, { attachDataplane: async () => undefined, shaping: dryService([]), shapeAtStart: false });
  const c = new BusClient({ path: w.busPath });
  const skippedIssue = async () => (await c.request<'urgent_list', any>('urgent_list')).issues.find((i: any) => i.code === 'ROWS_SKIPPED');
  try {
    const r = await c.request<'refresh', any>('refresh');
    assert.equal(r.exitCode, 0, JSON.stringify(r.records));
    assert.deepEqual(r.skipped.map((s: any) => [s.line, s.circuitId, s.code]), [[3, 'b', 'invalid-rate'], [4, 'n', 'duplicate-ip']]);
    let issue = await skippedIssue();
    assert.ok(issue);
    assert.match(issue.message, /ShapedDevices\.csv line 3: circuit "b" — Download Max Mbps "lots" \(invalid-rate\).*kept at its last good shaping/);
    assert.match(issue.message, /ShapedDevices\.csv line 4: circuit "n" .*duplicate-ip.*left out \(new circuit\)/);

    w.write('ShapedDevices.csv', csv(row('a', '100.64.0.1', 12), row('b', '100.64.0.2', 20), row('n', '100.64.0.1')));
    await c.request<'refresh', any>('refresh');
    issue = await skippedIssue();
    assert.doesNotMatch(issue.message, /line 3/, 'replaced, not appended');
    assert.match(issue.message, /line 4: circuit "n"/);

    w.write('ShapedDevices.csv', csv(row('a', '100.64.0.1', 12), row('b', '100.64.0.2', 20), row('n', '100.64.0.3')));
    const clean = await c.request<'refresh', any>('refresh');
    assert.equal(clean.skipped, undefined);
    assert.equal(await skippedIssue(), undefined);
  } finally {
    c.close();
    await d.stop();
  }
});

test('start with an unreadable lqos_overrides.json: the last good copy is shaped as it is and the issue names the overrides file', async () => {
  const w = newWorkspace({ prefix: 'lqosd-lgo-', conf, runDir: true });
  const meta = saveLastGood(statePaths(join(w.dir, 'state')), { devicesFile: 'x', networkFile: 'y', devicesText: GOOD, networkText: NET });
  w.write('network.json', NET);
  w.write('ShapedDevices.csv', GOOD);
  w.write('lqos_overrides.json', '{ nope');
  const requests: ShapingRequest[] = [];
  const d = await startTestDaemon(w, { attachDataplane: async () => undefined, shaping: dryService(requests), shapeAtStart: true });
  const c = new BusClient({ path: w.busPath });
  try {
    await waitFor(async () => (await c.request<'status', any>('status')).shaping.lastGood !== undefined, 20_000, 'the status to say "last good"');
    assert.equal(requests.length, 1);
    assert.equal(requests[0].fromLastGood?.at, meta.at);
    assert.equal(requests[0].inputs.devicesText, GOOD);
    const inv = (await c.request<'urgent_list', any>('urgent_list')).issues.find((i: any) => i.code === 'INPUTS_INVALID');
    assert.match(inv.message, /lqos_overrides\.json/);
  } finally {
    c.close();
    await d.stop();
  }
});
