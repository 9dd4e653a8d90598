// test-gate: shared (CPU only; see test/support/gate.ts)
/**
 * Last good inputs (lib/shaping/lastGood.ts) and what a shaping run does with them
 * (lib/shaping/run.ts through ShapingService, dry run): row triage against the last good rows,
 * file-level refusal, and the fallback lqosd uses at start.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { loadResolvedConfig } from '../../lib/config/resolve.ts';
import { loadLastGood, saveLastGood } from '../../lib/shaping/lastGood.ts';
import { ShapingService, type ShapingRequest } from '../../lib/shaping/service.ts';
import { RecordingLog } from '../../lib/util/logRecords.ts';
import { loConfig } from '../support/configs.ts';
import { quiet } from '../support/log.ts';
import { workspaceFactory, type Workspace } from '../support/workspace.ts';

const newWorkspace = workspaceFactory();
const HEADER = 'Circuit ID,Circuit Name,Device ID,Device Name,Parent Node,MAC,IPv4,IPv6,Download Min Mbps,Upload Min Mbps,Download Max Mbps,Upload Max Mbps,Comment';
const NET = JSON.stringify({ AP_1: { downloadBandwidthMbps: 1000, uploadBandwidthMbps: 1000 } }, null, 1);
const row = (id: string, ip: string, down: number | string = 10) => `${id},Name ${id},${id}-d,Dev ${id},AP_1,,${ip},,1,1,${down},5,`;
const csv = (...rows: string[]) => [HEADER, ...rows].join('\n') + '\n';
const GOOD = csv(row('a', '100.64.0.1', 10), row('b', '100.64.0.2', 20));

function setup(): { w: Workspace; paths: ReturnType<typeof loadResolvedConfig>['state']; run: (devices: string, extra?: Partial<ShapingRequest>) => ReturnType<ShapingService['run']> } {
  const w = newWorkspace({ prefix: 'lastgood-', conf: loConfig });
  const rc = loadResolvedConfig({ path: w.config });
  const svc = new ShapingService();
  const run = (devices: string, extra: Partial<ShapingRequest> = {}) => {
    w.write('ShapedDevices.csv', devices);
    w.write('network.json', NET);
    const inputs = { devicesFile: rc.inputs.devices, networkFile: rc.inputs.network, devicesText: devices, networkText: NET };
    return svc.run({ inputs, ...extra }, { config: rc.config, interfaces: rc.interfaces, log: quiet });
  };
  return { w, paths: rc.state, run };
}

/** Circuit id → download max of the plan the run wrote (queuingStructure.json is written in a dry run too). */
function planned(paths: { queuingStructure: string }): Record<string, number> {
  const q = JSON.parse(readFileSync(paths.queuingStructure, 'utf8')) as { circuits: Array<{ id: string; download: { ceilMbps: number } }> };
  return Object.fromEntries(q.circuits.map((c) => [c.id, c.download.ceilMbps]));
}

test('saveLastGood / loadLastGood: round trip; a copy that does not match its meta (torn save) is not used', () => {
  const { paths } = setup();
  assert.equal(loadLastGood(paths), undefined);
  const at = new Date('2026-01-02T03:04:05Z');
  const meta = saveLastGood(paths, { devicesFile: '/x/ShapedDevices.csv', networkFile: '/x/network.json', devicesText: GOOD, networkText: NET }, { at, skippedRows: 2 });
  const lg = loadLastGood(paths)!;
  assert.deepEqual(lg.meta, meta);
  assert.deepEqual([lg.meta.at, lg.meta.skippedRows, lg.meta.sources.devices], ['2026-01-02T03:04:05.000Z', 2, '/x/ShapedDevices.csv']);
  assert.equal(lg.inputs.devicesText, GOOD);
  assert.equal(lg.inputs.devicesFile, paths.lastGoodCsv);
  // A crash between the renames: the CSV is newer than the meta.
  writeFileSync(paths.lastGoodCsv, GOOD + row('c', '100.64.0.3') + '\n');
  const log = new RecordingLog();
  assert.equal(loadLastGood(paths, log), undefined);
  assert.match(log.records[0].msg, /do not match .*lastGoodConfig\.meta\.json/);
  writeFileSync(paths.lastGoodMeta, '{ nope');
  assert.equal(loadLastGood(paths, log), undefined);
  assert.match(log.records[1].msg, /cannot be read/);
});

test('unknown-parent: a circuit whose Parent Node vanished keeps its last good shaping; a new one is listed as left out', async () => {
  const { paths, run } = setup();
  saveLastGood(paths, { devicesFile: 'x', networkFile: 'y', devicesText: GOOD, networkText: NET });
  const ghost = (id: string, ip: string, down: number) => row(id, ip, down).replace(',AP_1,', ',Ghost,');
  // a: typo'd parent + rate change (kept at its last good 10 under AP_1); b: rate change applies; g: new, parent unknown.
  const { outcome } = await run(csv(ghost('a', '100.64.0.1', 15), row('b', '100.64.0.2', 25), ghost('g', '100.64.0.7', 30)));
  assert.equal(outcome.exitCode, 0, JSON.stringify(outcome.records));
  assert.deepEqual(planned(paths), { a: 10, b: 25 });
  assert.deepEqual(
    outcome.skipped!.map((s) => [s.line, s.circuitId, s.code, s.value, s.kept]),
    [
      [2, 'a', 'unknown-parent', 'Ghost', 'last-good'],
      [4, 'g', 'unknown-parent', 'Ghost', 'left-out'],
    ],
  );
});

test('unknown-parent with a row error in the same run: both circuits are triaged; a last good row whose parent is gone too is reported as left out', async () => {
  const { paths, run } = setup();
  const net2 = JSON.stringify({ AP_1: { downloadBandwidthMbps: 1000, uploadBandwidthMbps: 1000 }, AP_OLD: { downloadBandwidthMbps: 1000, uploadBandwidthMbps: 1000 } });
  const lgRows = csv(row('a', '100.64.0.1', 10), row('b', '100.64.0.2', 20).replace(',AP_1,', ',AP_OLD,'));
  saveLastGood(paths, { devicesFile: 'x', networkFile: 'y', devicesText: lgRows, networkText: net2 });
  // Now AP_OLD is gone from network.json (NET has only AP_1): b names it still; a has a bad rate.
  const { outcome } = await run(csv(row('a', '100.64.0.1', 'x'), row('b', '100.64.0.2', 25).replace(',AP_1,', ',AP_OLD,'), row('c', '100.64.0.3', 30)));
  assert.equal(outcome.exitCode, 0, JSON.stringify(outcome.records));
  assert.deepEqual(planned(paths), { a: 10, c: 30 });
  const byId = Object.fromEntries(outcome.skipped!.map((s) => [s.circuitId, s]));
  assert.deepEqual([byId.a?.code, byId.a?.kept], ['invalid-rate', 'last-good']);
  assert.deepEqual([byId.b?.code, byId.b?.kept], ['unknown-parent', 'left-out']);
  assert.match(byId.b!.reason, /its last good row names parent "AP_OLD", which network\.json no longer has either/);
});

test('row-level errors: the bad circuit keeps its last good rows, a new duplicate is left out, the rest applies', async () => {
  const { paths, run } = setup();
  saveLastGood(paths, { devicesFile: 'x', networkFile: 'y', devicesText: GOOD, networkText: NET });
  // a: rate change 10 → 12; b: bad rate (kept at 20); n: new circuit stealing a's address (left out); m: new and fine.
  const now = csv(row('a', '100.64.0.1', 12), row('b', '100.64.0.2', 'x'), row('n', '100.64.0.1', 30), row('m', '100.64.0.9', 40));
  const { outcome } = await run(now);
  assert.equal(outcome.exitCode, 0, JSON.stringify(outcome.records));
  assert.deepEqual(planned(paths), { a: 12, b: 20, m: 40 });
  assert.deepEqual(
    outcome.skipped!.map((s) => [s.line, s.circuitId, s.code, s.kept]),
    [
      [3, 'b', 'invalid-rate', 'last-good'],
      [4, 'n', 'duplicate-ip', 'left-out'],
    ],
  );
  assert.ok(outcome.records.some((r) => r.level === 'warn' && /ShapedDevices\.csv:4: circuit "n" skipped/.test(r.msg)), JSON.stringify(outcome.records));
  assert.equal(outcome.invalid, undefined);
});

test('file-level errors refuse the run and say the last good shaping stays; at start (onInvalid last-good) the last good inputs are applied', async () => {
  const { paths, run } = setup();
  const meta = saveLastGood(paths, { devicesFile: 'x', networkFile: 'y', devicesText: GOOD, networkText: NET });
  writeFileSync(paths.appliedPlan, '{}'); // something is in force
  const broken = 'Circuit,Name,garbage\n' + row('a', '100.64.0.1', 99) + '\n';
  const refused = await run(broken);
  assert.equal(refused.outcome.exitCode, 1);
  assert.equal(refused.outcome.invalid![0].code, 'missing-header');
  assert.equal(refused.outcome.invalid![0].line, 1);
  assert.match(refused.outcome.invalid![0].file, /ShapedDevices\.csv$/);
  assert.deepEqual(refused.outcome.lastGood, { at: meta.at, applied: false });
  assert.ok(refused.outcome.records.some((r) => /shaping in force stays as it is: it was applied from the last good inputs of/.test(r.msg)));

  const fallback = await run(broken, { onInvalid: 'last-good' });
  assert.equal(fallback.outcome.exitCode, 0, JSON.stringify(fallback.outcome.records));
  assert.equal(fallback.outcome.invalid![0].code, 'missing-header');
  assert.deepEqual(fallback.outcome.lastGood, { at: meta.at, applied: false }, 'a dry run applies nothing');
  assert.deepEqual(planned(paths), { a: 10, b: 20 }, 'the plan comes from the last good inputs');
  assert.ok(fallback.outcome.records.some((r) => /applying the last good inputs of/.test(r.msg)));
  // Running from the last good copy does not overwrite it (its time is what the status shows).
  assert.equal(loadLastGood(paths)!.meta.at, meta.at);
});

test('without last good inputs a file-level error refuses and nothing is claimed about last good', async () => {
  const { run } = setup();
  const r = await run('nonsense\n', { onInvalid: 'last-good' });
  assert.equal(r.outcome.exitCode, 1);
  assert.equal(r.outcome.lastGood, undefined);
  assert.ok(r.outcome.invalid!.length > 0);
});
