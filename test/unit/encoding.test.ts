// test-gate: shared (CPU only; see test/support/gate.ts)
/**
 * Input file encodings (issue 21.3): byte-order marks (UTF-8, UTF-16LE/BE) are honoured, bytes that
 * are not UTF-8 are read as Windows-1252 with one warning naming the file and line — a spreadsheet's
 * `Café Tower` still matches network.json's and its circuits are shaped. Fixtures are real bytes
 * built here; the files are read the way every run reads them (readShapingInputs).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { decodeInputFile, decodeWindows1252, firstInvalidUtf8 } from '../../lib/inputs/encoding.ts';
import { validateInputs } from '../../lib/inputs/validate.ts';
import { runPipeline } from '../../lib/pipeline.ts';
import { readShapingInputs } from '../../lib/shaping/inputs.ts';
import { RecordingLog } from '../../lib/util/logRecords.ts';
import { readNetworkPayload, readShapedDevicesPayload } from '../../lib/web/inputsEdit.ts';
import { planConfig } from '../support/plan.ts';
import { runCli, testDir, workspaceFactory } from '../support/workspace.ts';

const HEADER = 'Circuit ID,Circuit Name,Device ID,Device Name,Parent Node,MAC,IPv4,IPv6,Download Min Mbps,Upload Min Mbps,Download Max Mbps,Upload Max Mbps,Comment';
const CSV = [
  HEADER,
  'c1,Ana Muñoz,d1,CPE 1,Café Tower,,100.64.0.1,,1,1,50,10,',
  'c2,Bob,d2,CPE 2,Café Tower,,100.64.0.2,,1,1,25,5,',
  'c3,Chloé,d3,CPE 3,Hill,,100.64.0.3,,1,1,25,5,',
].join('\r\n') + '\r\n';
const NETWORK = JSON.stringify({ 'Café Tower': { downloadBandwidthMbps: 500, uploadBandwidthMbps: 100 }, Hill: { downloadBandwidthMbps: 300, uploadBandwidthMbps: 100 } }, null, 2);

/** Windows-1252 bytes of a text whose characters are all in Latin-1 (é, ñ, …). */
const cp1252 = (s: string) => Buffer.from(s, 'latin1');
const utf16le = (s: string) => Buffer.concat([Buffer.from([0xff, 0xfe]), Buffer.from(s, 'utf16le')]);
const utf16be = (s: string) => {
  const le = Buffer.from(s, 'utf16le');
  const be = Buffer.alloc(le.length);
  for (let i = 0; i < le.length; i += 2) [be[i], be[i + 1]] = [le[i + 1]!, le[i]!];
  return Buffer.concat([Buffer.from([0xfe, 0xff]), be]);
};
const utf8bom = (s: string) => Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from(s, 'utf8')]);

/** Writes the two files' bytes and reads them as a run does. */
function readAs(t: { after(fn: () => void): void }, devices: Buffer, network: Buffer) {
  const dir = testDir(t, 'lqos-enc-');
  const paths = { devices: join(dir, 'ShapedDevices.csv'), network: join(dir, 'network.json') };
  writeFileSync(paths.devices, devices);
  writeFileSync(paths.network, network);
  const log = new RecordingLog();
  const inputs = readShapingInputs(paths, log);
  assert.ok(inputs);
  return { inputs, log, paths };
}

function plan(inputs: { devicesText: string; networkText: string }) {
  const r = runPipeline({ ...inputs, devicesFile: 'ShapedDevices.csv', networkFile: 'network.json', config: planConfig() });
  assert.ok(r.ok, `pipeline failed: ${JSON.stringify(r.ok ? '' : r.stage === 'validate' ? r.validation.issues : r.errors)}`);
  return r;
}

test('a Windows-1252 ShapedDevices.csv: its circuits are shaped under the UTF-8 network.json node, with one warning naming file and line', (t) => {
  const { inputs, log, paths } = readAs(t, cp1252(CSV), Buffer.from(NETWORK, 'utf8'));
  assert.equal(inputs.readWarnings?.length, 1);
  const w = inputs.readWarnings![0]!;
  assert.equal(w.code, 'input-encoding');
  assert.equal(w.file, paths.devices);
  assert.equal(w.line, 2, 'the first line with a non-UTF-8 byte (ñ in "Ana Muñoz")');
  assert.match(w.message, /is not UTF-8 \(byte 0xF1 on line 2: "c1,Ana Muñoz,.*"\); read it as Windows-1252/);
  // Logged once, as a warning.
  const logged = log.records.filter((r) => r.level === 'warn');
  assert.equal(logged.length, 1);
  assert.equal(logged[0]!.code, 'input-encoding');
  assert.ok(logged[0]!.msg.includes(`${paths.devices}:2`));

  const r = plan(inputs);
  const byId = new Map(r.plan.circuits.map((c) => [c.id, c]));
  assert.equal(byId.get('c1')?.parentPath, 'Café Tower');
  assert.equal(byId.get('c2')?.parentPath, 'Café Tower');
  assert.equal(byId.get('c1')?.name, 'Ana Muñoz');
  assert.equal(byId.get('c3')?.name, 'Chloé');
  assert.deepEqual(r.warnings.filter((x) => x.code.includes('parent')), [], 'no unknown-parent warning');
});

test('a UTF-16LE file with a BOM validates clean and plans like the UTF-8 one', (t) => {
  const { inputs } = readAs(t, utf16le(CSV), Buffer.from(NETWORK, 'utf8'));
  assert.equal(inputs.readWarnings, undefined);
  const v = validateInputs({ ...inputs, devicesFile: 'ShapedDevices.csv', networkFile: 'network.json' });
  assert.deepEqual(v.issues, []);
  assert.equal(v.inputs.circuits.length, 3);
  const utf8 = plan({ devicesText: CSV, networkText: NETWORK });
  assert.deepEqual(plan(inputs).tcLines, utf8.tcLines);
});

test('UTF-16BE and UTF-8 BOMs are removed; UTF-8 files read unchanged without a warning', (t) => {
  for (const [devices, network] of [
    [utf16be(CSV), utf8bom(NETWORK)],
    [utf8bom(CSV), utf16le(NETWORK)],
    [Buffer.from(CSV, 'utf8'), Buffer.from(NETWORK, 'utf8')],
  ] as const) {
    const { inputs } = readAs(t, devices, network);
    assert.equal(inputs.readWarnings, undefined);
    assert.equal(inputs.devicesText, CSV);
    assert.equal(inputs.networkText, NETWORK);
    assert.equal(plan(inputs).plan.circuits.length, 3);
  }
});

test('UTF-16 without a byte-order mark is recognised, with a warning', (t) => {
  const le = Buffer.from(CSV, 'utf16le');
  const be = utf16be(NETWORK).subarray(2);
  const { inputs } = readAs(t, le, be);
  assert.equal(inputs.devicesText, CSV);
  assert.equal(inputs.networkText, NETWORK);
  assert.deepEqual(inputs.readWarnings?.map((w) => w.message.match(/looks like (\S+) without a byte-order mark/)?.[1]), ['UTF-16LE', 'UTF-16BE']);
  assert.equal(plan(inputs).plan.circuits.length, 3);
});

test('a network.json that is not UTF-8 follows the same rule', (t) => {
  const { inputs, paths } = readAs(t, Buffer.from(CSV, 'utf8'), cp1252(NETWORK));
  assert.equal(inputs.readWarnings?.length, 1);
  assert.equal(inputs.readWarnings![0]!.file, paths.network);
  assert.equal(inputs.readWarnings![0]!.line, 2);
  const r = plan(inputs);
  assert.equal(r.plan.circuits.filter((c) => c.parentPath === 'Café Tower').length, 2);
});

test('Windows-1252 is decoded with its own 0x80–0x9F characters (not as Latin-1)', () => {
  assert.equal(decodeWindows1252(Buffer.from([0x4f, 0x92, 0x42, 0x80, 0x20, 0x96, 0xe9])), 'O\u2019B\u20ac \u2013é');
  const d = decodeInputFile(Buffer.from([0x61, 0x0a, 0x62, 0x0a, 0x93, 0x68, 0x69, 0x94]), 'x.csv');
  assert.equal(d.encoding, 'windows-1252');
  assert.equal(d.text, 'a\nb\n\u201chi\u201d');
  assert.equal(d.issues[0]!.line, 3);
});

test('firstInvalidUtf8 finds overlongs, surrogates, truncated and stray bytes', () => {
  assert.equal(firstInvalidUtf8(Buffer.from('Café ✓ 😀', 'utf8')), -1);
  assert.equal(firstInvalidUtf8(Buffer.from([0x41, 0xc0, 0x80])), 1, 'overlong');
  assert.equal(firstInvalidUtf8(Buffer.from([0x41, 0x42, 0xed, 0xa0, 0x80])), 2, 'surrogate');
  assert.equal(firstInvalidUtf8(Buffer.from([0x41, 0xe2, 0x9c])), 1, 'truncated');
  assert.equal(firstInvalidUtf8(Buffer.from([0x80])), 0, 'stray continuation');
  assert.equal(firstInvalidUtf8(Buffer.from([0xf4, 0x90, 0x80, 0x80])), 0, 'above U+10FFFF');
});

test('the web editors read the same way: a Windows-1252 file loads with the warning among its issues', (t) => {
  const { paths } = readAs(t, cp1252(CSV), utf16le(NETWORK));
  const devices = readShapedDevicesPayload(paths);
  assert.equal(devices.circuits.find((c) => c.id === 'c1')?.parentNode, 'Café Tower');
  assert.deepEqual(devices.issues.map((i) => i.code), ['input-encoding']);
  assert.match(devices.issues[0]!.text, /ShapedDevices\.csv:2: .*Windows-1252/);
  const network = readNetworkPayload(paths);
  assert.deepEqual(Object.keys(network.network as object), ['Café Tower', 'Hill']);
  assert.deepEqual(network.issues, []);
});

const workspace = workspaceFactory();

test('./LibreQoS --validate on a UTF-16LE ShapedDevices.csv exits 0', async () => {
  const w = workspace({ network: NETWORK });
  writeFileSync(join(w.dir, 'ShapedDevices.csv'), utf16le(CSV));
  const r = await runCli(['--config', w.config, '--validate']);
  assert.equal(r.code, 0, r.stderr);
  assert.ok(r.logs.some((l) => /passed validation: 3 circuits/.test(l.msg)), r.stderr);
  assert.deepEqual(r.logs.filter((l) => l.level >= 40), [], 'no warnings or errors');
});
