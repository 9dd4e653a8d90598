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
