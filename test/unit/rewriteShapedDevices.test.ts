// test-gate: shared (CPU only; see test/support/gate.ts)
/**
 * lib/inputs/rewriteShapedDevices.ts and lib/inputs/writeShapedDevices.ts: a save writes every row's
 * own Comment (never another row's), and rows nobody touched stay byte for byte.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { rewriteShapedDevices } from '../../lib/inputs/rewriteShapedDevices.ts';
import { parseShapedDevices } from '../../lib/inputs/shapedDevices.ts';
import { validateInputs } from '../../lib/inputs/validate.ts';
import { writeShapedDevices } from '../../lib/inputs/writeShapedDevices.ts';

const H13 = 'Circuit ID,Circuit Name,Device ID,Device Name,Parent Node,MAC,IPv4,IPv6,Download Min Mbps,Upload Min Mbps,Download Max Mbps,Upload Max Mbps,Comment';
const NETWORK = JSON.stringify({ AP_OLD: { downloadBandwidthMbps: 100, uploadBandwidthMbps: 100 }, AP_NEW: { downloadBandwidthMbps: 100, uploadBandwidthMbps: 100 } });

function validate(csv: string) {
  const r = validateInputs({ devicesText: csv, devicesFile: 'ShapedDevices.csv', networkText: NETWORK, networkFile: 'network.json' });
  assert.deepEqual(r.issues.filter((i) => i.severity === 'error'), []);
  return r.inputs;
}

const COMMENTS =
  `# first device of c1 has a comment, the second none\n${H13}\n` +
  'c1,Alice,d1,Alice router,AP_OLD,,100.64.0.1,,1,1,10,10,installed 2023\n' +
  'c1,Alice,d2,Alice phone,AP_OLD,,100.64.0.2,,1,1,10,10,\n' +
  'c2,Bob,d3,Bob router,AP_OLD,,100.64.0.3,,1,1,20,20,\n' +
  'c3,Carol,d4,Carol router,AP_OLD,,100.64.0.4,,1,1,30,30,\n' +
  'c3,Carol,d5,Carol tv,AP_OLD,,100.64.0.5,,1,1,30,30,"tv, upstairs"\n';

test('a circuit\'s first comment is not copied into its other rows: the file rewrites to itself', () => {
  assert.equal(rewriteShapedDevices(COMMENTS, validate(COMMENTS).circuits), COMMENTS);
});

test('editing another circuit leaves the rows of c1 (one comment, one none) byte for byte', () => {
  const circuits = structuredClone(validate(COMMENTS).circuits);
  circuits.find((c) => c.id === 'c2')!.downloadMaxMbps = 50;
  const out = rewriteShapedDevices(COMMENTS, circuits);
  assert.equal(out, COMMENTS.replace('c2,Bob,d3,Bob router,AP_OLD,,100.64.0.3,,1,1,20,20,', 'c2,Bob,d3,Bob router,AP_OLD,,100.64.0.3,,1,1,50,20,'));
  assert.equal(out!.split('\n')[3], 'c1,Alice,d2,Alice phone,AP_OLD,,100.64.0.2,,1,1,10,10,');
});

test('the whole-file writer keeps each row\'s own comment too; a circuit comment goes on its first row when that device has none', () => {
  const text = writeShapedDevices(validate(COMMENTS).circuits);
  assert.deepEqual(
    parseShapedDevices(text, 'x').rows.map((r) => [r.deviceId, r.comment]),
    [
      ['d1', 'installed 2023'],
      ['d2', ''],
      ['d3', ''],
      ['d4', ''],
      ['d5', 'tv, upstairs'],
    ],
  );
  // The circuit comment of a circuit whose first device has none (a circuit built by hand or an integration).
  const built = structuredClone(validate(COMMENTS).circuits);
  built[1]!.comment = 'business';
  assert.equal(parseShapedDevices(writeShapedDevices(built), 'x').rows.find((r) => r.deviceId === 'd3')!.comment, 'business');
});

test('a quoted cell after a blank: the saved edit lands in its column, every other byte kept', () => {
  const text =
    `${H13}\n` +
    'c1, "Doe, Jane", d1, cpe, AP_OLD, , 100.64.0.1, , 1, 1, 10, 10, \n' +
    'c2,Bob,d2,Bob cpe,AP_OLD,,100.64.0.2,,1,1,10,10,\n';
  assert.equal(rewriteShapedDevices(text, validate(text).circuits), text);
  const circuits = structuredClone(validate(text).circuits);
  circuits[0]!.parentNode = 'AP_NEW';
  circuits[0]!.devices[0]!.ipv4 = ['100.64.0.9/32'];
  const out = rewriteShapedDevices(text, circuits);
  assert.equal(out, text.replace('AP_OLD, , 100.64.0.1', 'AP_NEW, , 100.64.0.9/32'));
  const row = validate(out!).circuits[0]!;
  assert.deepEqual([row.name, row.parentNode, row.devices[0]!.name, row.devices[0]!.mac, row.devices[0]!.ipv4], ['Doe, Jane', 'AP_NEW', 'cpe', '', ['100.64.0.9/32']]);
});
