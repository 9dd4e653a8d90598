// test-gate: shared (CPU only; see test/support/gate.ts)
/**
 * buildEffectiveInputs (lib/shaping/effectiveInputs.ts), the one place every run path gets its
 * inputs: operator files as they are without overrides, effective copies with them, a refusal
 * naming lqos_overrides.json when it is invalid, and nothing written in `write: false` mode.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { inputPaths, statePaths } from '../../lib/config/paths.ts';
import { buildEffectiveInputs, submittedFiles } from '../../lib/shaping/effectiveInputs.ts';
import { readOverridesApplied } from '../../lib/shaping/overridesApplied.ts';
import { RecordingLog } from '../../lib/util/logRecords.ts';
import { repoRoot } from '../support/paths.ts';
import { testDir } from '../support/workspace.ts';

function setup(t: { after(fn: () => void): void }) {
  const dir = testDir(t);
  const csv = readFileSync(join(repoRoot, 'conf/example/ShapedDevices.csv'), 'utf8');
  const net = readFileSync(join(repoRoot, 'conf/example/network.json'), 'utf8');
  writeFileSync(join(dir, 'ShapedDevices.csv'), csv);
  writeFileSync(join(dir, 'network.json'), net);
  const paths = { inputs: inputPaths({ lqos_directory: dir }), state: statePaths(join(dir, 'state')) };
  return { dir, csv, net, paths, overrides: (o: unknown) => writeFileSync(paths.inputs.overrides, typeof o === 'string' ? o : JSON.stringify(o)) };
}

const SPEED = { circuit_adjustments: [{ type: 'circuit_adjust_speed', circuit_id: '1001', max_download_bandwidth: 77 }] };

test('no overrides file: the operator files as they are; stale effective copies are removed', (t) => {
  const s = setup(t);
  mkdirSync(s.paths.state.effectiveDir, { recursive: true });
  writeFileSync(join(s.paths.state.effectiveDir, 'ShapedDevices.csv'), 'stale');
  const log = new RecordingLog();
  const r = buildEffectiveInputs(s.paths, log);
  assert.ok(r.ok);
  assert.equal(r.overridden, false);
  assert.equal(r.inputs.devicesFile, s.paths.inputs.devices);
  assert.equal(r.inputs.devicesText, s.csv);
  assert.equal(existsSync(s.paths.state.effectiveDir), false);
});

test('overrides in effect: effective copies written, the operator file untouched, one log line with the count', (t) => {
  const s = setup(t);
  s.overrides({ ...SPEED, network_adjustments: [{ type: 'adjust_site_speed', site_name: 'AP_West_1', download_bandwidth_mbps: 250 }] });
  const log = new RecordingLog();
  const r = buildEffectiveInputs(s.paths, log);
  assert.ok(r.ok);
  assert.equal(r.overridden, true);
  assert.equal(r.changes.length, 2, r.changes.join('\n'));
  const eff = s.paths.state.effectiveDir;
  // Written to the effective directory; named after the operator's files, whose lines they keep.
  assert.deepEqual(r.files, { devices: join(eff, 'ShapedDevices.csv'), network: join(eff, 'network.json') });
  assert.equal(r.inputs.devicesFile, `${s.paths.inputs.devices} (with lqos_overrides.json applied)`);
  assert.equal(r.inputs.networkFile, `${s.paths.inputs.network} (with lqos_overrides.json applied)`);
  assert.deepEqual(submittedFiles(r), { devicesPath: r.files!.devices, networkPath: r.files!.network, devicesLabel: r.inputs.devicesFile, networkLabel: r.inputs.networkFile });
  assert.match(readFileSync(r.files!.devices, 'utf8'), /^1001,.*,5,1,77,20,/m);
  assert.equal(readFileSync(r.files!.devices, 'utf8'), r.inputs.devicesText);
  assert.equal(readFileSync(r.files!.devices, 'utf8').split('\n').length, s.csv.split('\n').length, "the copy has the operator's lines");
  assert.match(readFileSync(r.files!.network, 'utf8'), /"downloadBandwidthMbps": 250/);
  assert.equal(readFileSync(s.paths.inputs.devices, 'utf8'), s.csv, "the operator's file is never rewritten");
  const applied = JSON.parse(readFileSync(join(eff, 'overrides_applied.json'), 'utf8'));
  assert.equal(applied.overrides, s.paths.inputs.overrides);
  assert.equal(applied.changes.length, 2);
  const summary = log.records.find((x) => x.code === 'overrides-applied');
  assert.ok(summary, JSON.stringify(log.records));
  assert.match(summary.msg, /lqos_overrides\.json: 2 change\(s\) applied; effective inputs written to /);
});

test('invalid overrides: refused with the file, the JSON path and what to do; nothing written', (t) => {
  const s = setup(t);
  s.overrides({ circuit_adjustments: [{ type: 'circuit_adjust_speed', circuit_id: '1001', max_download_bandwidth: 'seventy' }] });
  const log = new RecordingLog();
  const r = buildEffectiveInputs(s.paths, log);
  assert.equal(r.ok, false);
  assert.ok(!r.ok && r.reason === 'overrides' && r.overridesError);
  const err = log.records.find((x) => x.level === 'error');
  assert.ok(err);
  assert.ok(err.msg.includes(s.paths.inputs.overrides), err.msg);
  assert.match(err.msg, /circuit_adjustments\[0\]\.max_download_bandwidth: expected a number, got "seventy"/);
  assert.match(err.msg, /nothing was applied/);
  assert.equal(existsSync(s.paths.state.root), false, 'nothing written under the state directory');

  s.overrides('{ "circuit_adjustments": [');
  const r2 = buildEffectiveInputs(s.paths, new RecordingLog());
  assert.ok(!r2.ok && /lqos_overrides\.json: not valid JSON \(line 1/.test(r2.message), JSON.stringify(r2));
});

test('write: false builds the effective inputs in memory, labelled, and writes nothing', (t) => {
  const s = setup(t);
  s.overrides(SPEED);
  const r = buildEffectiveInputs(s.paths, new RecordingLog(), { write: false });
  assert.ok(r.ok && r.overridden);
  assert.match(r.inputs.devicesText, /^1001,.*,77,20,/m);
  assert.equal(r.inputs.devicesFile, `${s.paths.inputs.devices} (with lqos_overrides.json applied)`);
  assert.equal(r.inputs.networkFile, s.paths.inputs.network, 'network.json, which no override changes, keeps its own name');
  assert.equal(r.files, undefined, 'nothing on disk to submit');
  assert.equal(existsSync(s.paths.state.root), false);
});

test('a missing input file is reported (not an overrides problem)', (t) => {
  const s = setup(t);
  s.overrides(SPEED);
  const r = buildEffectiveInputs({ ...s.paths, inputs: { ...s.paths.inputs, network: join(s.dir, 'elsewhere', 'network.json') } }, new RecordingLog());
  assert.ok(!r.ok && r.reason === 'input');
  assert.match(r.message, /network\.json does not exist/);
});

test("the status's record of the overrides: read from overrides_applied.json, bounded, and nothing from a missing or broken file", (t) => {
  const s = setup(t);
  const eff = s.paths.state.effectiveDir;
  const told: string[] = [];
  assert.equal(readOverridesApplied(eff, (w) => told.push(w)), undefined, 'no overrides in effect');
  assert.equal(told.length, 0, 'a missing record is not a problem');
  s.overrides({ circuit_adjustments: [...SPEED.circuit_adjustments, { type: 'remove_circuit', circuit_id: 'nope' }] });
  assert.ok(buildEffectiveInputs(s.paths, new RecordingLog()).ok);
  const o = readOverridesApplied(eff)!;
  assert.deepEqual({ changes: o.changes, changeCount: o.changeCount, warningCount: o.warningCount, file: o.file }, { changes: ['circuit 1001: Download Max Mbps = 77 (1 row(s))'], changeCount: 1, warningCount: 1, file: s.paths.inputs.overrides });
  assert.match(o.warnings[0]!, /no circuit "nope"/);
  // 200 changes: the status carries 50 and the count.
  const many = { at: new Date().toISOString(), overrides: 'x', changes: Array.from({ length: 200 }, (_, i) => `change ${i}`), warnings: [] };
  writeFileSync(join(eff, 'overrides_applied.json'), JSON.stringify(many));
  const b = readOverridesApplied(eff)!;
  assert.equal(b.changes.length, 50);
  assert.equal(b.changeCount, 200);
  writeFileSync(join(eff, 'overrides_applied.json'), '{"at": 1}');
  assert.equal(readOverridesApplied(eff, (w) => told.push(w)), undefined);
  assert.match(told[0] ?? '', /overrides_applied\.json is not a record of applied overrides/);
});
