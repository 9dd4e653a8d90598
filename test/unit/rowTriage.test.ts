// test-gate: shared (CPU only; see test/support/gate.ts)
/** Row triage (lib/shaping/rowTriage.ts): which rows are skipped, what replaces them, what still refuses the run. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { validateInputs } from '../../lib/inputs/validate.ts';
import { triageRows, type TriageArgs } from '../../lib/shaping/rowTriage.ts';

const HEADER = 'Circuit ID,Circuit Name,Device ID,Device Name,Parent Node,MAC,IPv4,IPv6,Download Min Mbps,Upload Min Mbps,Download Max Mbps,Upload Max Mbps,Comment';
const NET = JSON.stringify({ AP_1: { downloadBandwidthMbps: 1000, uploadBandwidthMbps: 1000, children: {} } });
const row = (id: string, ip: string, down = 10, parent = 'AP_1') => `${id},Name ${id},${id}-d,Dev ${id},${parent},,${ip},,1,1,${down},5,`;
const csv = (...rows: string[]) => [HEADER, ...rows].join('\n') + '\n';

function triage(devicesText: string, lastGood?: string) {
  const v = validateInputs({ devicesText, devicesFile: 'ShapedDevices.csv', networkText: NET, networkFile: 'network.json' });
  const args: TriageArgs = { devicesText, devicesFile: 'ShapedDevices.csv', networkText: NET, networkFile: 'network.json', issues: v.issues };
  if (lastGood !== undefined) args.lastGood = { devicesText: lastGood, devicesFile: 'lastGoodConfig.csv' };
  return triageRows(args);
}

/** Circuit id → [download max, IPv4s] of a triaged text (it must validate cleanly). */
function circuits(text: string): Record<string, [number, string]> {
  const v = validateInputs({ devicesText: text, devicesFile: 'ShapedDevices.csv', networkText: NET, networkFile: 'network.json' });
  assert.equal(v.ok, true, JSON.stringify(v.issues));
  return Object.fromEntries(v.inputs.circuits.map((c) => [c.id, [c.downloadMaxMbps, c.devices.flatMap((d) => d.ipv4).join(' ')]]));
}

const LAST_GOOD = csv(row('a', '100.64.0.1', 10), row('b', '100.64.0.2', 20), row('c', '100.64.0.3', 30));

test('a bad rate on an existing circuit keeps it at its last good rows; the other changes apply', () => {
  const now = csv(row('a', '100.64.0.1', 11), row('b', '100.64.0.2').replace(',20,', ',fast,').replace(',10,5,', ',fast,5,'), row('c', '100.64.0.3', 33), row('d', '100.64.0.4', 40));
  const r = triage(now, LAST_GOOD);
  assert.ok(r.ok);
  assert.deepEqual(circuits(r.devicesText), { a: [11, '100.64.0.1/32'], b: [20, '100.64.0.2/32'], c: [33, '100.64.0.3/32'], d: [40, '100.64.0.4/32'] });
  assert.equal(r.skipped.length, 1);
  assert.deepEqual({ ...r.skipped[0], reason: undefined }, { file: 'ShapedDevices.csv', line: 3, circuitId: 'b', code: 'invalid-rate', column: 'Download Max Mbps', value: 'fast', reason: undefined, kept: 'last-good' });
  // Operator's line numbers survive: c is still on line 4 of the triaged text.
  assert.match(r.devicesText.split('\n')[3], /^c,/);
  assert.equal(r.devicesText.split('\n')[2], '', 'the skipped row became an empty line');
});

test('a new circuit with a bad address is left out; without last good inputs a bad row is left out too', () => {
  const now = csv(row('a', '100.64.0.1'), row('n', '100.64.0.999'));
  const r = triage(now, LAST_GOOD);
  assert.ok(r.ok);
  assert.deepEqual(Object.keys(circuits(r.devicesText)), ['a']);
  assert.equal(r.skipped[0].kept, 'left-out');
  assert.equal(r.skipped[0].code, 'invalid-ip');
  const r2 = triage(csv(row('a', '100.64.0.1', 0.001)));
  assert.ok(r2.ok);
  assert.deepEqual(r2.skipped.map((s) => [s.line, s.code, s.kept]), [[2, 'rate-too-low', 'left-out']]);
});

test('a duplicate IP: the row that introduced it is skipped, the unchanged owner stays; both new → both skipped', () => {
  // e is new and takes b's address (b unchanged since last good): only e is skipped — even though b comes later in the file.
  const now = csv(row('e', '100.64.0.2', 50), row('a', '100.64.0.1', 12), row('b', '100.64.0.2', 20));
  const r = triage(now, LAST_GOOD);
  assert.ok(r.ok);
  assert.deepEqual(circuits(r.devicesText), { a: [12, '100.64.0.1/32'], b: [20, '100.64.0.2/32'] });
  assert.deepEqual(r.skipped.map((s) => [s.circuitId, s.line, s.code, s.kept]), [['e', 2, 'duplicate-ip', 'left-out']]);
  assert.match(r.skipped[0].reason, /also on line 4/);

  const both = triage(csv(row('a', '100.64.0.1'), row('x', '100.64.9.9'), row('y', '100.64.9.9')), LAST_GOOD);
  assert.ok(both.ok);
  assert.deepEqual(Object.keys(circuits(both.devicesText)), ['a']);
  assert.deepEqual(both.skipped.map((s) => s.circuitId).sort(), ['x', 'y']);
});

test('a restored circuit that collides with a new row wins (it is the last good shaping); the new row is skipped in a second round', () => {
  // b has a bad rate and is restored with 100.64.0.2, which the operator moved to new circuit f.
  const now = csv(row('a', '100.64.0.1'), row('b', '100.64.0.7', -1), row('f', '100.64.0.2', 60));
  const r = triage(now, LAST_GOOD);
  assert.ok(r.ok);
  assert.deepEqual(circuits(r.devicesText), { a: [10, '100.64.0.1/32'], b: [20, '100.64.0.2/32'] });
  assert.deepEqual(r.skipped.map((s) => [s.circuitId, s.code, s.kept]), [['b', 'rate-too-low', 'last-good'], ['f', 'duplicate-ip', 'left-out']]);
  // An issue on a restored row is reported against the last good file.
  const restoredLine = r.devicesText.split('\n').findIndex((l) => l.startsWith('b,')) + 1;
  const m = r.remap({ severity: 'warning', code: 'x', file: 'ShapedDevices.csv', line: restoredLine, message: 'm' });
  assert.deepEqual([m.file, m.line], ['lastGoodConfig.csv', 3]);
});

test('file-level errors refuse: a wrong header, a row with the wrong number of fields, broken network.json', () => {
  const badHeader = triage('Circuit,Name\n' + row('a', '100.64.0.1') + '\n', LAST_GOOD);
  assert.equal(badHeader.ok, false);
  assert.ok(!badHeader.ok && badHeader.fileLevel.some((i) => i.code === 'missing-header'));
  const fields = triage(csv(row('a', '100.64.0.1'), 'b,only,three'), LAST_GOOD);
  assert.ok(!fields.ok && fields.fileLevel[0].code === 'field-count' && fields.fileLevel[0].line === 3);
  const text = csv(row('a', '100.64.0.1'));
  const v = validateInputs({ devicesText: text, devicesFile: 'ShapedDevices.csv', networkText: '{ nope', networkFile: 'network.json' });
  const r = triageRows({ devicesText: text, devicesFile: 'ShapedDevices.csv', networkText: '{ nope', networkFile: 'network.json', issues: v.issues });
  assert.ok(!r.ok && r.fileLevel[0].file === 'network.json');
});

test('conflicting parents inside one circuit skip the whole circuit (all its rows)', () => {
  const net2 = JSON.stringify({ AP_1: { downloadBandwidthMbps: 1000, uploadBandwidthMbps: 1000 }, AP_2: { downloadBandwidthMbps: 1000, uploadBandwidthMbps: 1000 } });
  const text = csv(row('a', '100.64.0.1'), row('b', '100.64.0.2'), `b,Name b,b-d2,Dev b2,AP_2,,100.64.0.22,,1,1,20,5,`);
  const v = validateInputs({ devicesText: text, devicesFile: 'ShapedDevices.csv', networkText: net2, networkFile: 'network.json' });
  const r = triageRows({ devicesText: text, devicesFile: 'ShapedDevices.csv', networkText: net2, networkFile: 'network.json', issues: v.issues, lastGood: { devicesText: LAST_GOOD, devicesFile: 'lg.csv' } });
  assert.ok(r.ok);
  const after = validateInputs({ devicesText: r.devicesText, devicesFile: 'ShapedDevices.csv', networkText: net2, networkFile: 'network.json' });
  assert.deepEqual(after.inputs.circuits.map((c) => [c.id, c.devices.map((d) => d.id)]), [['a', ['a-d']], ['b', ['b-d']]]);
  assert.deepEqual(r.skipped.map((s) => [s.line, s.code]), [[4, 'conflicting-parent']]);
});
