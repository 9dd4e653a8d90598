// test-gate: shared (CPU only; see test/support/gate.ts)
/**
 * lqos_overrides.json: schema errors name file + JSON path, and applying overrides to the inputs
 * (header-aware for every CSV layout, network adjustments, untouched files byte-identical).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { applyOverrides } from '../../lib/overrides/apply.ts';
import { OverridesError, parseOverridesText } from '../../lib/overrides/load.ts';
import { hasEffect, type Overrides } from '../../lib/overrides/schema.ts';
import { readCsvRecords } from '../../lib/inputs/shapedDevices.ts';
import { validateInputs } from '../../lib/inputs/validate.ts';

const F = '/srv/lqos/lqos_overrides.json';
const parse = (o: unknown) => parseOverridesText(JSON.stringify(o), F);

const CSV16 =
  '# comment\nCircuit ID,Circuit Name,Device ID,Device Name,Parent Node,Parent Node ID,Anchor Node ID,MAC,IPv4,IPv6,Download Min Mbps,Upload Min Mbps,Download Max Mbps,Upload Max Mbps,Comment,sqm\n' +
  '93,Ann,d93,Ann router,AP1,ap-1,,02:00:00:00:00:93,100.64.0.93,,10,2,330,330,,\n' +
  '94,Bob,d94,Bob router,AP1,,,02:00:00:00:00:94,100.64.0.94,,10,2,100,20,,\n';
const CSV13 =
  'Circuit ID,Circuit Name,Device ID,Device Name,Parent Node,MAC,IPv4,IPv6,Download Min Mbps,Upload Min Mbps,Download Max Mbps,Upload Max Mbps,Comment\n' +
  '93,Ann,d93,Ann router,AP1,02:00:00:00:00:93,100.64.0.93,,10,2,330,330,\n';
const NET = JSON.stringify({ Site: { downloadBandwidthMbps: 1000, uploadBandwidthMbps: 1000, id: 's-1', children: { AP1: { downloadBandwidthMbps: 500, uploadBandwidthMbps: 500 } } } }, null, 2);

function rows(text: string): Record<string, string>[] {
  const recs = readCsvRecords(text).records.map((r) => r.fields);
  return recs.slice(1).map((r) => Object.fromEntries(recs[0].map((h, i) => [h, r[i] ?? ''])));
}

test('bad overrides: message names the file, the JSON path and what is wrong', () => {
  const bad: [string, RegExp][] = [
    ['', /lqos_overrides\.json: the overrides file is empty/],
    ['{"circuit_adjustments": [', /not valid JSON \(line 1, column \d+/],
    [JSON.stringify({ circuit_adjustments: [{ type: 'circuit_adjust_speed', circuit_id: '9', max_download_bandwidth: 'fast' }] }), /circuit_adjustments\[0\]\.max_download_bandwidth: expected a number, got "fast"/],
    [JSON.stringify({ circuit_adjustments: [{ type: 'circuit_adjust_sped', circuit_id: '9' }] }), /circuit_adjustments\[0\]\.type: .*"circuit_adjust_sped"/],
    [JSON.stringify({ network_adjustments: [{ type: 'adjust_site_speed', site_name: 'A', download_bandwidth_mbps: -1 }] }), /network_adjustments\[0\]\.download_bandwidth_mbps: expected a number > 0, got -1/],
    [JSON.stringify({ persistent_devicez: [] }), /\(top level\): unknown key\(s\) "persistent_devicez"/],
    [JSON.stringify({ circuit_adjustments: [{ type: 'device_adjust_sqm', device_id: 'd', sqm_override: 'cak' }] }), /circuit_adjustments\[0\]\.sqm_override: expected an SQM token/],
  ];
  for (const [text, re] of bad) {
    assert.throws(() => parseOverridesText(text, F), (e: OverridesError) => {
      assert.ok(e instanceof OverridesError);
      assert.ok(e.message.includes(F), e.message);
      assert.match(e.message, re);
      return true;
    });
  }
});

test('upstream-shaped documents load; devices_to_append is an alias; ignored kinds have no effect', () => {
  const o = parse({
    devices_to_append: [],
    circuit_adjustments: [],
    network_adjustments: [{ type: 'topology_parent_override', node_id: 'n', node_name: 'N', mode: 'pinned', parent_node_ids: [], parent_node_names: [] }],
    rtt_excluded_circuits: ['93'],
    uisp: null,
  });
  assert.equal(hasEffect(o), false);
  assert.equal(hasEffect(parse({})), false);
});

test('speed, sqm, reparent, remove and persistent devices on a 16-column file', () => {
  const o = parse({
    persistent_devices: [
      { circuit_id: '200', circuit_name: 'Static', device_id: 'd200', device_name: 'Static dev', parent_node: 'AP1', mac: '', ipv4: [['100.64.9.9', 32]], ipv6: [['2001:db8::', 56]], download_min_mbps: 5, upload_min_mbps: 1, download_max_mbps: 50, upload_max_mbps: 10, comment: 'kept', sqm_override: 'fq_codel' },
    ],
    circuit_adjustments: [
      { type: 'circuit_adjust_speed', circuit_id: '93', max_download_bandwidth: 80, max_upload_bandwidth: 40.5, min_download_bandwidth: null },
      { type: 'device_adjust_sqm', device_id: 'd93', sqm_override: 'cake/fq_codel' },
      { type: 'reparent_circuit', circuit_id: '93', parent_node: 'Site' },
      { type: 'remove_circuit', circuit_id: '94' },
      { type: 'remove_device', device_id: 'nope' },
    ],
  } satisfies Partial<Record<keyof Overrides, unknown>>);
  const e = applyOverrides({ devicesText: CSV16, networkText: NET }, o);
  const r = rows(e.devicesText);
  assert.equal(r.length, 2);
  const a = r.find((x) => x['Circuit ID'] === '93')!;
  assert.equal(a['Download Max Mbps'], '80');
  assert.equal(a['Upload Max Mbps'], '40.5');
  assert.equal(a['Download Min Mbps'], '10', 'null leaves the value alone');
  assert.equal(a.sqm, 'cake/fq_codel');
  assert.equal(a['Parent Node'], 'Site');
  assert.equal(a['Parent Node ID'], '', 'reparenting clears the node id');
  assert.equal(a['IPv4'], '100.64.0.93', 'other columns untouched');
  const p = r.find((x) => x['Device ID'] === 'd200')!;
  assert.equal(p.IPv4, '100.64.9.9/32');
  assert.equal(p.IPv6, '2001:db8::/56');
  assert.equal(p.sqm, 'fq_codel');
  assert.equal(p['Download Max Mbps'], '50');
  assert.equal(e.networkText, NET, 'network.json untouched when no network adjustment');
  assert.equal(e.warnings.length, 1);
  assert.match(e.warnings[0], /circuit_adjustments\[4\] \(remove_device\): no device "nope"/);
});

test('a 13-column file keeps its columns; an sqm override appends the sqm column', () => {
  const o = parse({ circuit_adjustments: [{ type: 'circuit_adjust_speed', circuit_id: '93', max_download_bandwidth: 80 }, { type: 'device_adjust_sqm', device_id: 'd93', sqm_override: 'fq_codel' }] });
  const e = applyOverrides({ devicesText: CSV13, networkText: '{}' }, o);
  const recs = readCsvRecords(e.devicesText).records.map((x) => x.fields);
  assert.deepEqual(recs[0], [...CSV13.split('\n')[0].split(','), 'sqm']);
  assert.equal(recs[1][10], '80', 'Download Max Mbps found by name');
  assert.equal(recs[1][11], '330');
  assert.equal(recs[1][13], 'fq_codel');
});

test('network adjustments: by node id, by name, virtual flag; unknown node is a warning', () => {
  const o = parse({
    network_adjustments: [
      { type: 'adjust_site_speed', node_id: 's-1', site_name: 'ignored when node_id is given', download_bandwidth_mbps: 700 },
      { type: 'adjust_site_speed', site_name: 'AP1', upload_bandwidth_mbps: 100 },
      { type: 'set_node_virtual', node_name: 'Site', virtual: true },
      { type: 'set_node_virtual', node_name: 'Nowhere', virtual: true },
    ],
  });
  const e = applyOverrides({ devicesText: CSV16, networkText: NET }, o);
  const t = JSON.parse(e.networkText);
  assert.equal(t.Site.downloadBandwidthMbps, 700);
  assert.equal(t.Site.uploadBandwidthMbps, 1000);
  assert.equal(t.Site.virtual, true);
  assert.equal(t.Site.children.AP1.uploadBandwidthMbps, 100);
  assert.equal(t.Site.children.AP1.downloadBandwidthMbps, 500);
  assert.equal(e.devicesText, CSV16, 'ShapedDevices.csv byte-identical when no device override');
  assert.deepEqual(e.warnings, ['network_adjustments[3] (set_node_virtual): no node "Nowhere" in network.json']);
});

/** Each issue as `line code` (file names aside), for comparing the operator's file with its effective copy. */
const issueLines = (issues: { line?: number; code: string; severity: string }[]) => issues.map((i) => `${i.line ?? '-'} ${i.severity} ${i.code}`).sort();

test("the effective ShapedDevices.csv keeps the operator's lines, and the problems of the operator's file", () => {
  const csv =
    '# subscribers\n' +
    'Circuit ID,Circuit Name,Device ID,Device Name,Parent Node,MAC,IPv4,IPv6,Download Min Mbps,Upload Min Mbps,Download Max Mbps,Upload Max Mbps,Comment\n' +
    '1,One,d1,r1,AP1,,100.64.0.1,,10,2,100,20,\n' +
    '\n' +
    '2,Two,d2,r2,AP1,,100.64.0.2,,10,2,100,20\n' + // one cell short: a field-count error
    '# removed below\n' +
    '3,Three,d3,r3,AP1,,100.64.0.3,,10,2,100,20,\n' +
    '4,Four,d4,r4,AP1,,not-an-address,,10,2,100,20,\n' +
    '5,Five,d5,r5,AP1,,100.64.0.5,,10,2,100,20,"kept, as written"\n';
  const o = parse({
    persistent_devices: [
      { circuit_id: '9', circuit_name: 'Static', device_id: 'd9', device_name: 'r9', parent_node: 'AP1', mac: '', ipv4: ['100.64.0.9'], ipv6: [], download_min_mbps: 1, upload_min_mbps: 1, download_max_mbps: 9, upload_max_mbps: 9, comment: '' },
    ],
    circuit_adjustments: [
      { type: 'remove_circuit', circuit_id: '3' },
      { type: 'circuit_adjust_speed', circuit_id: '5', max_download_bandwidth: 55 },
      { type: 'circuit_adjust_speed', circuit_id: '2', max_download_bandwidth: 22 },
      { type: 'device_adjust_sqm', device_id: 'd1', sqm_override: 'fq_codel' },
    ],
  });
  const net = JSON.stringify({ AP1: { downloadBandwidthMbps: 1000, uploadBandwidthMbps: 1000 } });
  const e = applyOverrides({ devicesText: csv, networkText: net }, o);
  assert.equal(e.devicesLayoutKept, true);
  const src = csv.split('\n');
  const eff = e.devicesText.split('\n');
  assert.equal(eff[0], src[0], 'the comment line stays');
  assert.equal(eff[1], src[1] + ',sqm', 'the sqm column is added to the header on its line');
  assert.equal(eff[2], '1,One,d1,r1,AP1,,100.64.0.1,,10,2,100,20,,fq_codel');
  assert.equal(eff[3], '', 'the blank line stays');
  assert.equal(eff[4], src[4] + ',', 'the short row gets the added column too: still one cell short, still reported');
  assert.equal(eff[6], '', 'the removed row is an empty line: later rows keep their numbers');
  assert.equal(eff[7], src[7] + ',', 'an untouched row gets the empty sqm cell');
  assert.equal(eff[8], '5,Five,d5,r5,AP1,,100.64.0.5,,10,2,55,20,"kept, as written",');
  assert.deepEqual(e.appended, [{ line: 10, entry: 'persistent_devices[0]', deviceId: 'd9' }]);
  assert.match(eff[9], /^9,Static,d9,r9,AP1,,100\.64\.0\.9,,1,1,9,9,,$/);
  assert.ok(e.warnings.some((w) => /circuit_adjustments\[2\].*line 5 of ShapedDevices\.csv has 12 cells/.test(w)), e.warnings.join('\n'));

  // The operator's problems are found on the same lines in the effective copy.
  const before = validateInputs({ devicesText: csv, devicesFile: 'ShapedDevices.csv', networkText: net, networkFile: 'network.json' });
  const afterV = validateInputs({ devicesText: e.devicesText, devicesFile: 'ShapedDevices.csv', networkText: net, networkFile: 'network.json' });
  const errs = (v: typeof before) => issueLines(v.issues.filter((i) => i.severity === 'error'));
  assert.deepEqual(errs(before), ['5 error field-count', '8 error invalid-ip'].sort(), JSON.stringify(before.issues));
  assert.deepEqual(errs(afterV), errs(before), JSON.stringify(afterV.issues));
});

test('a change to a row whose quoted cell spans lines rewrites the effective copy row by row, and says so', () => {
  const csv = CSV13 + '94,Bob,d94,Bob router,AP1,,100.64.0.94,,10,2,100,20,"two\nlines"\n';
  const o = parse({ circuit_adjustments: [{ type: 'circuit_adjust_speed', circuit_id: '94', max_download_bandwidth: 80 }] });
  const e = applyOverrides({ devicesText: csv, networkText: '{}' }, o);
  assert.equal(e.devicesLayoutKept, false);
  assert.ok(e.warnings.some((w) => /rewritten row by row/.test(w)), e.warnings.join('\n'));
  assert.equal(rows(e.devicesText).find((r) => r['Circuit ID'] === '94')!['Download Max Mbps'], '80');
  assert.equal(rows(e.devicesText).find((r) => r['Circuit ID'] === '94')!.Comment, 'two\nlines');
});

test("network adjustments edit network.json in place: no line moves, duplicate keys are still reported", () => {
  const net =
    '{\n' +
    '  "Site": {\n' +
    '    "downloadBandwidthMbps": 1000,\n' +
    '    "children": {\n' +
    '      "AP1": { "downloadBandwidthMbps": 500, "uploadBandwidthMbps": 500 },\n' +
    '      "AP1": { "downloadBandwidthMbps": 400, "uploadBandwidthMbps": 400 },\n' +
    '      "AP2": {}\n' +
    '    }\n' +
    '  }\n' +
    '}\n';
  const o = parse({
    network_adjustments: [
      { type: 'adjust_site_speed', site_name: 'Site', upload_bandwidth_mbps: 900 },
      { type: 'adjust_site_speed', site_name: 'AP1', download_bandwidth_mbps: 300 },
      { type: 'adjust_site_speed', site_name: 'AP1', download_bandwidth_mbps: 350 },
      { type: 'set_node_virtual', node_name: 'AP2', virtual: true },
    ],
  });
  const e = applyOverrides({ devicesText: CSV16, networkText: net }, o);
  const lines = e.networkText.split('\n');
  assert.equal(lines.length, net.split('\n').length, 'no line added or removed');
  assert.equal(lines[2], '    "downloadBandwidthMbps": 1000, "uploadBandwidthMbps": 900,', 'a missing key is added on the line of the last entry');
  assert.equal(lines[4], '      "AP1": { "downloadBandwidthMbps": 350, "uploadBandwidthMbps": 500 },', 'the later adjustment wins');
  assert.equal(lines[5], '      "AP1": { "downloadBandwidthMbps": 350, "uploadBandwidthMbps": 400 },', 'both nodes of a duplicated name');
  assert.equal(lines[6], '      "AP2": { "virtual": true }');
  const v = validateInputs({ devicesText: 'Circuit ID,Circuit Name,Device ID,Device Name,Parent Node,MAC,IPv4,IPv6,Download Min Mbps,Upload Min Mbps,Download Max Mbps,Upload Max Mbps\n', devicesFile: 'd.csv', networkText: e.networkText, networkFile: 'network.json' });
  const dup = v.issues.find((i) => /AP1/.test(i.message) && i.line === 6);
  assert.ok(dup, `the duplicate AP1 is still reported on line 6: ${JSON.stringify(v.issues)}`);
});

test('a column added by an override: rows of the wrong width stay wrong by as much, rows spanning lines keep the layout, and each adjustment of a bad row warns once', () => {
  const header = 'Circuit ID,Circuit Name,Device ID,Device Name,Parent Node,MAC,IPv4,IPv6,Download Min Mbps,Upload Min Mbps,Download Max Mbps,Upload Max Mbps,Comment\n';
  const csv =
    header +
    '1,A,d1,r1,AP1,,100.64.0.1,,10,2,100,20,\n' +
    '2,B,d2,r2,AP1,,100.64.0.2,,10,2,100,20,,\n' + // 14 cells: one too many
    '3,C,d3,r3,AP1,,100.64.0.3,,10,2,100,20,"two\nlines"\n';
  const o = parse({ circuit_adjustments: [{ type: 'device_adjust_sqm', device_id: 'd1', sqm_override: 'cake' }, { type: 'circuit_adjust_speed', circuit_id: '2', max_download_bandwidth: 50 }] });
  const e = applyOverrides({ devicesText: csv, networkText: '{}' }, o);
  assert.equal(e.devicesLayoutKept, true, 'the row spanning two lines gets its empty cell on its last line');
  assert.equal(e.devicesText.split('\n')[4], 'lines",');
  const v = (text: string) => validateInputs({ devicesText: text, devicesFile: 'ShapedDevices.csv', networkText: '{}', networkFile: 'network.json' });
  assert.deepEqual(issueLines(v(e.devicesText).issues.filter((i) => i.severity === 'error')), ['3 error field-count'], 'the 14-cell row is still reported (it would read as a 14-column row otherwise)');
  assert.deepEqual(issueLines(v(csv).issues.filter((i) => i.severity === 'error')), ['3 error field-count']);
  const about2 = e.warnings.filter((w) => w.startsWith('circuit_adjustments[1]'));
  assert.equal(about2.length, 1, about2.join('\n'));
  assert.match(about2[0]!, /line 3 of ShapedDevices\.csv has 14 cells/);
});

test('rows a persistent device adds are named at their line, whatever the line breaks', () => {
  const device = (id: string, comment: string) => ({ circuit_id: id, circuit_name: id, device_id: `d-${id}`, device_name: 'r', parent_node: 'AP1', mac: '', ipv4: [], ipv6: [], download_min_mbps: 1, upload_min_mbps: 1, download_max_mbps: 9, upload_max_mbps: 9, comment });
  const o = parse({ persistent_devices: [device('p1', 'a\rb'), device('p2', 'c\r\nd'), device('p3', '')] });
  for (const eol of ['\n', '\r\n', '\r']) {
    const csv = CSV13.replace(/\n/g, eol) + '# end' + eol;
    const e = applyOverrides({ devicesText: csv, networkText: '{}' }, o);
    const got = readCsvRecords(e.devicesText).records.filter((r) => r.fields[0]!.startsWith('p')).map((r) => r.line);
    assert.deepEqual(e.appended.map((a) => a.line), got, `line breaks ${JSON.stringify(eol)}`);
    assert.deepEqual(e.appended.map((a) => a.entry), ['persistent_devices[0]', 'persistent_devices[1]', 'persistent_devices[2]']);
  }
});
