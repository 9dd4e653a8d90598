// test-gate: shared (CPU only; see test/support/gate.ts)
/**
 * lqos_overrides.json on every run path (issue 13.6): `./LibreQoS --dry-run`, `--validate`, lqosd's
 * bus `refresh`, and `./LibreQoS` submitting to lqosd all shape the operator's files with the
 * overrides applied; an invalid overrides file refuses the run naming the file. lqosd here is the
 * real daemon in-process on a dry-run config (no kernel); LibreQoS is the real command.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { busRequest } from '../../lib/bus/client.ts';
import type { ShapingOutcome } from '../../lib/shaping/service.ts';
import { loConfig } from '../support/configs.ts';
import { startTestDaemon } from '../support/daemon.ts';
import { repoRoot } from '../support/paths.ts';
import { runCli, workspaceFactory, type Workspace } from '../support/workspace.ts';

const ws = workspaceFactory();
const example = (f: string) => readFileSync(join(repoRoot, 'conf', 'example', f), 'utf8');
const stops: (() => Promise<void>)[] = [];
after(async () => {
  for (const s of stops) await s();
});

/** Circuit 1001 (100/20 in the example file) gets `down` Mbps download by override. */
const speed = (down: number) => JSON.stringify({ circuit_adjustments: [{ type: 'circuit_adjust_speed', circuit_id: '1001', max_download_bandwidth: down }] });

/** The download ceil of circuit 1001's class in linux_tc.txt (its class found through ip_mappings.txt). */
function ceilOf1001(w: Workspace): string {
  const map = readFileSync(join(w.stateDir, 'debug/ip_mappings.txt'), 'utf8');
  const classid = /^100\.64\.1\.2\/32 cpu \d+ class (\S+) circuit "1001"/m.exec(map)?.[1];
  assert.ok(classid, `1001's address is mapped:\n${map}`);
  const tc = readFileSync(join(w.stateDir, 'debug/linux_tc.txt'), 'utf8');
  const cls = tc.split('\n').find((l) => l.startsWith('class add dev lo ') && l.includes(` classid ${classid} `));
  assert.ok(cls, `a class ${classid} in linux_tc.txt`);
  return / ceil (\S+)/.exec(cls)![1]!;
}

/** LibreQoS's lock and bus in the workspace's run dir (not /run/lqos, shared with other runs). */
const env = (w: Workspace) => ({ LQOS_RUN_DIR: w.runDir, LQOS_BUS_PATH: w.busPath });

function workspace(): Workspace {
  return ws({ conf: (dir) => loConfig(dir), devices: example('ShapedDevices.csv'), network: example('network.json'), runDir: true });
}

test('./LibreQoS --dry-run shapes the overridden rate; the operator file is untouched', async () => {
  const w = workspace();
  let r = await runCli(['--config', w.config, '--dry-run'], env(w));
  assert.equal(r.code, 0, r.stderr);
  assert.equal(ceilOf1001(w), '100mbit', 'without overrides: the file rate');

  w.write('lqos_overrides.json', speed(77));
  r = await runCli(['--config', w.config, '--dry-run'], env(w));
  assert.equal(r.code, 0, r.stderr);
  assert.equal(ceilOf1001(w), '77mbit');
  assert.ok(r.logs.some((l) => /lqos_overrides\.json: 1 change\(s\) applied/.test(l.msg)), r.stderr);
  assert.equal(readFileSync(join(w.dir, 'ShapedDevices.csv'), 'utf8'), example('ShapedDevices.csv'));
  assert.match(readFileSync(join(w.stateDir, 'shaping/effective/ShapedDevices.csv'), 'utf8'), /^1001,.*,77,20,/m);
});

test('./LibreQoS with an invalid lqos_overrides.json: exit 1 naming the file and the JSON path, nothing planned', async () => {
  const w = workspace();
  w.write('lqos_overrides.json', JSON.stringify({ circuit_adjustments: [{ type: 'circuit_adjust_speed', circuit_id: '1001', max_download_bandwidth: 'fast' }] }));
  const r = await runCli(['--config', w.config, '--dry-run'], env(w));
  assert.equal(r.code, 1);
  const err = r.logs.find((l) => l.level === 50);
  assert.ok(err, r.stderr);
  assert.ok(err.msg.includes(join(w.dir, 'lqos_overrides.json')), err.msg);
  assert.match(err.msg, /circuit_adjustments\[0\]\.max_download_bandwidth: expected a number, got "fast"/);
  assert.equal(existsSync(join(w.stateDir, 'debug/linux_tc.txt')), false, 'nothing was planned');

  const v = await runCli(['--config', w.config, '--validate'], env(w));
  assert.equal(v.code, 1, '--validate refuses it too');
  assert.match(v.stderr, /max_download_bandwidth: expected a number/);
});

test('--validate checks the inputs with the overrides applied', async () => {
  const w = workspace();
  w.write('lqos_overrides.json', speed(77));
  let r = await runCli(['--config', w.config, '--validate'], env(w));
  assert.equal(r.code, 0, r.stderr);
  assert.ok(r.logs.some((l) => /with .*lqos_overrides\.json applied \(1 change\(s\)\) passed validation/.test(l.msg)), r.stderr);
  assert.equal(existsSync(w.stateDir), false, '--validate writes nothing');

  // An override that adds a device whose address another circuit already has: the files alone are fine.
  const dup = {
    persistent_devices: [
      { circuit_id: '3000', circuit_name: 'Static', device_id: 'd3000', device_name: 'Static', parent_node: 'AP_West_1', mac: '', ipv4: ['100.64.1.2'], ipv6: [], download_min_mbps: 1, upload_min_mbps: 1, download_max_mbps: 10, upload_max_mbps: 10, comment: '' },
    ],
  };
  w.write('lqos_overrides.json', JSON.stringify(dup));
  r = await runCli(['--config', w.config, '--validate'], env(w));
  assert.equal(r.code, 1, r.stderr);
  assert.ok(r.logs.some((l) => /passed validation: 7 circuits/.test(l.msg)), 'the files alone pass');
  assert.ok(r.logs.some((l) => l.level === 50 && /\(with lqos_overrides\.json applied\):\d+:.*100\.64\.1\.2/.test(l.msg)), r.stderr);
});

test("lqosd's refresh and LibreQoS's submit to lqosd shape the overridden rate", async () => {
  const w = workspace();
  const d = await startTestDaemon(w);
  stops.push(() => d.stop());
  w.write('lqos_overrides.json', speed(66));
  const o = await busRequest<'refresh', ShapingOutcome>('refresh', {}, { path: w.busPath, timeoutMs: 60_000 });
  assert.equal(o.exitCode, 0, JSON.stringify(o.records));
  assert.equal(ceilOf1001(w), '66mbit', 'refresh applied the override');
  assert.ok(o.records.some((r) => r.code === 'overrides-applied'), 'the refresh outcome says what the overrides changed');
  // The status (dashboard) says what the overrides changed in the shaping in force.
  const shown = d.context.shapingStatus().overrides;
  assert.deepEqual({ changes: shown?.changes, changeCount: shown?.changeCount, warningCount: shown?.warningCount, file: shown?.file }, { changes: ['circuit 1001: Download Max Mbps = 66 (1 row(s))'], changeCount: 1, warningCount: 0, file: join(w.dir, 'lqos_overrides.json') });

  // An invalid file: the refresh is refused with the file named, an urgent issue is raised.
  w.write('lqos_overrides.json', '{"circuit_adjustments": [}');
  const bad = await busRequest<'refresh', ShapingOutcome>('refresh', {}, { path: w.busPath, timeoutMs: 60_000 });
  assert.equal(bad.exitCode, 1);
  assert.ok(bad.records.some((r) => r.level === 'error' && r.msg.includes(join(w.dir, 'lqos_overrides.json'))), JSON.stringify(bad.records));
  const issues = (await busRequest<'urgent_list', { issues: { code: string; message: string }[] }>('urgent_list', {}, { path: w.busPath })).issues;
  assert.ok(issues.some((i) => i.code === 'REFRESH_FAILED' && i.message.includes('lqos_overrides.json')), JSON.stringify(issues));
  assert.equal(ceilOf1001(w), '66mbit', 'nothing new was planned');

  // LibreQoS (not a dry run: it submits to lqosd, which runs dry) with another override value.
  w.write('lqos_overrides.json', speed(55));
  const submitConf = join(w.dir, 'submit.conf');
  writeFileSync(submitConf, loConfig(w.dir).replace('dry_run = true', 'dry_run = false'));
  const r = await runCli(['--config', submitConf], env(w));
  assert.equal(r.code, 0, r.stderr);
  assert.ok(r.logs.some((l) => (l as { via?: string }).via === 'lqosd'), 'the run went through lqosd');
  assert.equal(ceilOf1001(w), '55mbit', 'lqosd shaped the effective inputs LibreQoS submitted');
  assert.deepEqual(d.context.shapingStatus().overrides?.changes, ['circuit 1001: Download Max Mbps = 55 (1 row(s))'], 'and its status follows');

  // No overrides any more: the next apply clears them from the status.
  rmSync(join(w.dir, 'lqos_overrides.json'));
  const plain = await busRequest<'refresh', ShapingOutcome>('refresh', {}, { path: w.busPath, timeoutMs: 60_000 });
  assert.equal(plain.exitCode, 0, JSON.stringify(plain.records));
  assert.equal(ceilOf1001(w), '100mbit');
  assert.equal(d.context.shapingStatus().overrides, undefined);
});

test("with overrides in effect, a bad row is reported at its line in the operator's file, on every run path", async () => {
  const w = workspace();
  // Line 7 (circuit 1004) gets an address that is not one; a removed circuit above it must not move it.
  const lines = example('ShapedDevices.csv').split('\n');
  assert.match(lines[6], /^1004,/);
  lines[6] = lines[6].replace('100.64.3.10', 'not-an-address');
  assert.match(lines[6], /not-an-address/, 'the example row has the address this test replaces');
  w.write('ShapedDevices.csv', lines.join('\n'));
  w.write('lqos_overrides.json', JSON.stringify({ circuit_adjustments: [{ type: 'remove_circuit', circuit_id: '1002' }, { type: 'circuit_adjust_speed', circuit_id: '1001', max_download_bandwidth: 44 }] }));
  const label = `${join(w.dir, 'ShapedDevices.csv')} (with lqos_overrides.json applied)`;
  const namesLine7 = (msg: string) => msg.includes(`${label}:7`) || msg.includes(`${label} line 7`);

  const dry = await runCli(['--config', w.config, '--dry-run'], env(w));
  assert.ok(dry.logs.some((l) => namesLine7(l.msg) && /not-an-address|IPv4/.test(l.msg)), dry.stderr);
  assert.equal(ceilOf1001(w), '44mbit', 'the rest is shaped');

  const val = await runCli(['--config', w.config, '--validate'], env(w));
  assert.equal(val.code, 1);
  assert.ok(val.logs.some((l) => l.msg.includes(`${join(w.dir, 'ShapedDevices.csv')}:7`)), 'the files alone: line 7 ' + val.stderr);

  // Through lqosd: LibreQoS submits the effective copies with the operator's file as their name.
  const d = await startTestDaemon(w);
  stops.push(() => d.stop());
  const submitConf = join(w.dir, 'submit.conf');
  writeFileSync(submitConf, loConfig(w.dir).replace('dry_run = true', 'dry_run = false'));
  const r = await runCli(['--config', submitConf], env(w));
  const viaLqosd = r.logs.filter((l) => (l as { via?: string }).via === 'lqosd');
  assert.ok(viaLqosd.length > 0, 'the run went through lqosd');
  assert.ok(viaLqosd.some((l) => namesLine7(l.msg)), r.stderr);
  assert.ok(!r.stderr.includes('shaping/effective/ShapedDevices.csv:'), 'no message names the copy with a line number');
});
