// test-gate: shared (CPU only; see test/support/gate.ts)
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import ipaddr from 'ipaddr.js';
import { type JsonValue, parseJsonWithLines, parseNetworkJson } from '../../lib/inputs/network.ts';
import { parseShapedDevices, readCsvRecords } from '../../lib/inputs/shapedDevices.ts';
import { formatIPv6, parseIPv4Prefix, parseIPv6Groups, parseIPv6Prefix } from '../../lib/inputs/ipPrefix.ts';
import { formatIssue, parseRate, parseSqm, validateInputs } from '../../lib/inputs/validate.ts';
import { writeShapedDevices } from '../../lib/inputs/writeShapedDevices.ts';
import type { Circuit, InputIssue } from '../../lib/model.ts';
import { attachCircuits, buildPhysicalTree } from '../../lib/plan/tree.ts';
import {
  BAD_INPUTS,
  BASE_CSV,
  BASE_NETWORK,
  BASE_ROWS,
  csvLine,
  DEVICES_FILE,
  HEADER_16,
  NETWORK_FILE,
  type RowSpec,
} from '../fixtures/bad-inputs.ts';
import { needsUpstream, readUpstreamFixture } from '../support/paths.ts';

const readUpstream = readUpstreamFixture;

function validate(csv: string, network = '{}') {
  return validateInputs({ devicesText: csv, devicesFile: DEVICES_FILE, networkText: network, networkFile: NETWORK_FILE });
}
const errors = (issues: InputIssue[]) => issues.filter((i) => i.severity === 'error');
const show = (issues: InputIssue[]) => issues.map(formatIssue).join('\n');

/** The C library's LCG: a deterministic sequence of 31-bit numbers from `seed`. */
function lcg(seed: number): () => number {
  return () => (seed = (seed * 1103515245 + 12345) & 0x7fffffff);
}

/** `count` texts of 1 to `maxParts` pieces drawn from `parts`, the same for the same `seed`. */
function* randomTexts(parts: string[], seed: number, count: number, maxParts: number): Generator<string> {
  const next = lcg(seed);
  const rnd = (n: number) => (next() >>> 8) % n;
  for (let k = 0; k < count; k++) {
    let t = '';
    const len = 1 + rnd(maxParts);
    for (let i = 0; i < len; i++) t += parts[rnd(parts.length)];
    yield t;
  }
}

/** Drop `line` fields (they depend on the physical layout of the file). */
function withoutLines(circuits: Circuit[]): unknown {
  return circuits.map(({ line: _l, devices, ...c }) => ({ ...c, devices: devices.map(({ line: _d, ...d }) => d) }));
}

describe('upstream fixtures', () => {
  test('v1.4 ShapedDevices.csv + network.example.json validate OK', { skip: needsUpstream('v1.4-ShapedDevices.example.csv', 'network.example.json') }, () => {
    const r = validate(readUpstream('v1.4-ShapedDevices.example.csv'), readUpstream('network.example.json'));
    assert.equal(r.ok, true, show(r.issues));
    assert.deepEqual(r.issues, []);
    const c = r.inputs.circuits;
    assert.equal(c.length, 10);
    assert.deepEqual(
      c.map((x) => x.id),
      ['1', '2', '3', '4', '2794', '5', '6', '7', '8', '9'],
    );
    // Header is line 2 (after the `#` comment line), so the first row is line 3.
    assert.equal(c[0].line, 3);
    assert.equal(c[0].name, '968 Circle St., Gurnee, IL 60031');
    assert.deepEqual(c[0].devices[0].ipv4, ['100.64.0.1/32', '100.64.0.14/32']);
    assert.deepEqual(c[0].devices[0].ipv6, ['fdd7:b724:0:100::/56']);
    assert.equal(c[0].parentNode, 'AP_A');
    assert.equal(c[0].downloadMaxMbps, 155);
    const two = c.find((x) => x.id === '2794')!;
    assert.deepEqual(
      two.devices.map((d) => [d.id, d.line]),
      [
        ['5', 7],
        ['6', 8],
      ],
    );
    assert.equal(r.inputs.network.length, 2);
    assert.deepEqual(
      r.inputs.network.map((n) => n.name),
      ['Site_1', 'Site_2'],
    );
  });

  test('network.example.json tree', { skip: needsUpstream('network.example.json') }, () => {
    const { nodes, issues } = parseNetworkJson(readUpstream('network.example.json'), 'network.json');
    assert.deepEqual(issues, []);
    const site1 = nodes[0];
    assert.equal(site1.downloadMbps, 1000);
    assert.equal(site1.type, 'site');
    assert.equal(site1.virtual, false);
    assert.deepEqual(
      site1.children.map((n) => n.name),
      ['AP_A', 'Site_3'],
    );
    const pop6 = site1.children[1].children[0].children[1];
    assert.equal(pop6.name, 'PoP_6');
    assert.equal(pop6.downloadMbps, 60);
    assert.equal(pop6.children[0].name, 'AP_11');
    assert.equal(pop6.children[0].type, 'ap');
  });

  test('network.json node fields', () => {
    const text = JSON.stringify(
      {
        Region: {
          downloadBandwidthMbps: 2000,
          uploadBandwidthMbps: 1000,
          downloadBandwidthMbpsMin: 500,
          uploadBandwidthMbpsMin: 100,
          id: 'r-1',
          name: 'North Region',
          lat: 45.5,
          lng: -122.6,
          unknownKey: { anything: true },
          children: {
            Grouping: {
              type: 'Virtual',
              children: { AP_1: { downloadBandwidthMbps: 100, uploadBandwidthMbps: 100, id: 42, active_attachment_name: 'AP One', latitude: '45.1', longitude: 200 } },
            },
            Flagged: { virtual: true, downloadBandwidthMbps: 10, uploadBandwidthMbps: 10 },
          },
        },
      },
      null,
      2,
    );
    const { nodes, issues } = parseNetworkJson(text, NETWORK_FILE);
    // Only the out-of-range longitude is reported; virtual nodes need no bandwidth.
    assert.deepEqual(
      issues.map((i) => [i.severity, i.code, i.column]),
      [['warning', 'invalid-coordinate', 'Region.children.Grouping.children.AP_1.longitude']],
    );
    const region = nodes[0];
    assert.deepEqual(
      { ...region, children: region.children.map((c) => c.name) },
      {
        name: 'Region',
        id: 'r-1',
        displayName: 'North Region',
        downloadMbps: 2000,
        uploadMbps: 1000,
        downloadMinMbps: 500,
        uploadMinMbps: 100,
        virtual: false,
        latitude: 45.5,
        longitude: -122.6,
        line: 2,
        children: ['Grouping', 'Flagged'],
      },
    );
    const [grouping, flagged] = region.children;
    assert.equal(grouping.virtual, true);
    assert.equal(grouping.type, 'Virtual');
    assert.equal(grouping.downloadMbps, 0);
    assert.equal(flagged.virtual, true);
    const ap = grouping.children[0];
    assert.equal(ap.id, '42');
    assert.equal(ap.displayName, 'AP One');
    assert.equal(ap.attachmentName, 'AP One');
    assert.equal(ap.latitude, 45.1);
    assert.equal(ap.longitude, undefined);
  });

  test('network.json: {} is flat, BOM is accepted, duplicate keys inside a node warn', () => {
    assert.deepEqual(parseNetworkJson('{}', NETWORK_FILE), { nodes: [], issues: [] });
    assert.deepEqual(parseNetworkJson('\uFEFF{ }\n', NETWORK_FILE), { nodes: [], issues: [] });
    const r = parseNetworkJson('{\n  "S": {\n    "downloadBandwidthMbps": 1,\n    "downloadBandwidthMbps": 5,\n    "uploadBandwidthMbps": 5\n  }\n}', NETWORK_FILE);
    assert.deepEqual(
      r.issues.map((i) => [i.severity, i.code, i.line]),
      [['warning', 'duplicate-key', 4]],
    );
    assert.equal(r.nodes[0].downloadMbps, 5);
  });

  test('the line-tracking JSON parser accepts exactly what JSON.parse accepts (random texts)', () => {
    const toJs = (v: JsonValue): unknown => {
      if (v.kind === 'object') return Object.fromEntries(v.entries.map((e) => [e.key, toJs(e.value)]));
      if (v.kind === 'array') return v.items.map(toJs);
      return v.kind === 'null' ? null : v.value;
    };
    const parts = ['{', '}', '[', ']', ',', ':', '"a"', '"b\\n"', '"\\u00e9"', '"\\x"', '1', '-0', '1.5e3', '01', '1.', 'true', 'null', ' ', '\n', '"', '-', '.5', '"a\nb"'];
    for (const t of randomTexts(parts, 3, 20000, 10)) {
      let ref: unknown = undefined;
      let refOk = true;
      try {
        ref = JSON.parse(t);
      } catch {
        refOk = false;
      }
      let mine: unknown = undefined;
      let mineOk = true;
      try {
        mine = toJs(parseJsonWithLines(t));
      } catch {
        mineOk = false;
      }
      assert.equal(mineOk, refOk, JSON.stringify(t));
      if (refOk) assert.deepEqual(mine, ref, JSON.stringify(t));
    }
  });

  test('v1.4 network.json also parses', { skip: needsUpstream('v1.4-network.example.json') }, () => {
    const { nodes, issues } = parseNetworkJson(readUpstream('v1.4-network.example.json'), 'network.json');
    assert.deepEqual(issues, []);
    assert.equal(nodes.length, 2);
  });

  test('2.2 ShapedDevices.example.csv (15-column header, 13-field rows) is rejected naming line 2', { skip: needsUpstream('ShapedDevices.example.csv', 'network.example.json') }, () => {
    const r = validate(readUpstream('ShapedDevices.example.csv'), readUpstream('network.example.json'));
    assert.equal(r.ok, false);
    const first = errors(r.issues)[0];
    assert.equal(first.code, 'field-count');
    assert.equal(first.line, 2);
    assert.match(first.message, /13 fields/);
    assert.match(first.message, /15 columns/);
    assert.equal(r.inputs.circuits.length, 0, 'no row is read with shifted columns');
    assert.equal(
      formatIssue(first),
      'error: ShapedDevices.csv:2: this row has 13 fields but the header (line 1) has 15 columns; every row needs exactly one value per header column (add empty fields or quote values containing commas)',
    );
  });
});

describe('CSV reading', () => {
  test('BOM, CRLF, quoted multi-line comment: physical line numbers stay right', () => {
    const rows = [
      `C1,Alice,D1,CPE,AP_A,,,aa,100.64.0.1,,10,2,100,20,"first line\r\nsecond, line\r\nthird ""quoted""",`,
      `C2,Bob,D2,CPE,AP_A,,,bb,100.64.0.999,,10,2,100,20,,`,
    ];
    const text = '\uFEFF# comment\r\n' + HEADER_16.join(',') + '\r\n\r\n' + rows.join('\r\n') + '\r\n';
    for (const engine of ['auto', 'csv-parse'] as const) {
      const p = parseShapedDevices(text, DEVICES_FILE, { engine });
      assert.deepEqual(p.issues, [], engine);
      assert.equal(p.headerLine, 2);
      assert.deepEqual(
        p.rows.map((r) => r.line),
        [4, 7],
        engine,
      );
      assert.equal(p.rows[0].comment, 'first line\r\nsecond, line\r\nthird "quoted"');
      assert.equal(p.columns.circuitId, 'Circuit ID', 'BOM stripped from the first header cell');
    }
    const r = validate(text);
    assert.equal(r.ok, false);
    assert.deepEqual(
      errors(r.issues).map((i) => [i.code, i.line, i.column, i.value]),
      [['invalid-ip', 7, 'IPv4', '100.64.0.999']],
    );
  });

  test('blank, whitespace-only, all-empty and indented comment lines are skipped; fields are trimmed', () => {
    const text = [
      '',
      HEADER_16.join(' , '),
      '   ',
      '  # indented comment, with "quote',
      ',,,,,,,,,,,,,,,',
      '  C1 , " Alice " ,D1,CPE,AP_A,,,aa, 100.64.0.1 ,,10,2,100,20,,',
    ].join('\n');
    for (const engine of ['auto', 'csv-parse'] as const) {
      const p = parseShapedDevices(text, DEVICES_FILE, { engine });
      assert.deepEqual(p.issues, [], engine);
      assert.equal(p.rows.length, 1);
      assert.equal(p.rows[0].line, 6);
      assert.equal(p.rows[0].circuitId, 'C1');
      assert.equal(p.rows[0].circuitName, 'Alice');
      assert.equal(p.rows[0].ipv4, '100.64.0.1');
    }
  });

  test('non-RFC quoting falls back to csv-parse (relaxed) without losing line numbers', () => {
    const text = [
      HEADER_16.join(','),
      'C1,Alice,D1,CPE,AP_A,,,aa,100.64.0.1,,10,2,100,20,"multi\nline",',
      'C2,Bob\'s 5" dish,D2,CPE,AP_A,,,bb,100.64.0.2,,10,2,100,20,,',
      'C3,Carol,D3,CPE,AP_A,,,cc,100.64.0.3,,10,2,100,20,,',
    ].join('\n');
    const p = parseShapedDevices(text, DEVICES_FILE);
    assert.deepEqual(p.issues, []);
    assert.deepEqual(
      p.rows.map((r) => [r.line, r.circuitName]),
      [
        [2, 'Alice'],
        [4, 'Bob\'s 5" dish'],
        [5, 'Carol'],
      ],
    );
  });

  test('fast path and csv-parse agree on the fixtures and the base CSV', { skip: needsUpstream('v1.4-ShapedDevices.example.csv', 'ShapedDevices.example.csv') }, () => {
    for (const text of [readUpstream('v1.4-ShapedDevices.example.csv'), readUpstream('ShapedDevices.example.csv'), BASE_CSV]) {
      assert.deepEqual(parseShapedDevices(text, 'x'), parseShapedDevices(text, 'x', { engine: 'csv-parse' }));
    }
  });

  test('fast path and csv-parse read the same records, lines and errors (random texts)', () => {
    const parts = ['x', 'y z', ',', ',', '"', '""', '\n', '\r\n', ' ', '#', '\t', 'q"r', '"s,t"', '\r', '"m\nl"', '\n#c "\n', '\uFEFF'];
    for (const t of randomTexts(parts, 7, 5000, 25)) {
      const a = readCsvRecords(t);
      const b = readCsvRecords(t, { engine: 'csv-parse' });
      assert.deepEqual(a.records, b.records, JSON.stringify(t));
      assert.equal(a.error?.line, b.error?.line, JSON.stringify(t));
    }
  });

  const ROW = BASE_ROWS[0];
  const variants: Array<{ name: string; header: string[]; row: (r: RowSpec) => string[]; sqm: boolean; ids: boolean }> = [
    {
      name: '13-column legacy',
      header: HEADER_16.filter((h) => !['Parent Node ID', 'Anchor Node ID', 'sqm'].includes(h)),
      row: (r) => [r.circuitId, r.circuitName, r.deviceId, r.deviceName, r.parentNode, r.mac, r.ipv4, r.ipv6, r.downloadMin, r.uploadMin, r.downloadMax, r.uploadMax, r.comment],
      sqm: false,
      ids: false,
    },
    {
      name: '14-column (+ sqm)',
      header: HEADER_16.filter((h) => !['Parent Node ID', 'Anchor Node ID'].includes(h)),
      row: (r) => [r.circuitId, r.circuitName, r.deviceId, r.deviceName, r.parentNode, r.mac, r.ipv4, r.ipv6, r.downloadMin, r.uploadMin, r.downloadMax, r.uploadMax, r.comment, 'cake/fq_codel'],
      sqm: true,
      ids: false,
    },
    {
      name: '15-column (Parent Node ID, Anchor Node ID)',
      header: HEADER_16.filter((h) => h !== 'sqm'),
      row: (r) => [r.circuitId, r.circuitName, r.deviceId, r.deviceName, r.parentNode, 'pn-1', 'an-1', r.mac, r.ipv4, r.ipv6, r.downloadMin, r.uploadMin, r.downloadMax, r.uploadMax, r.comment],
      sqm: false,
      ids: true,
    },
    {
      name: '16-column (15 + sqm)',
      header: HEADER_16,
      row: (r) => [r.circuitId, r.circuitName, r.deviceId, r.deviceName, r.parentNode, 'pn-1', 'an-1', r.mac, r.ipv4, r.ipv6, r.downloadMin, r.uploadMin, r.downloadMax, r.uploadMax, r.comment, 'cake/fq_codel'],
      sqm: true,
      ids: true,
    },
  ];
  for (const v of variants) {
    test(`${v.name} layout`, () => {
      const text = `${v.header.join(',')}\n${v.row(ROW).join(',')}\n`;
      const r = validate(text);
      assert.equal(r.ok, true, show(r.issues));
      const c = r.inputs.circuits[0];
      assert.equal(c.id, 'C1');
      assert.equal(c.parentNode, 'AP_A');
      assert.equal(c.parentNodeId, v.ids ? 'pn-1' : '');
      assert.equal(c.anchorNodeId, v.ids ? 'an-1' : '');
      assert.deepEqual(c.sqm, v.sqm ? { download: 'cake', upload: 'fq_codel' } : undefined);
      assert.equal(c.uploadMaxMbps, 20, 'Upload Max is never read as sqm');
      assert.deepEqual(c.devices[0].ipv4, ['100.64.0.1/32']);
    });
  }

  test('columns are found by name in any order, with header aliases', () => {
    const header = ['IPv6 Addresses', 'ipv4 addresses', 'Device ID', 'circuit_id', 'Circuit Name', 'Device Name', 'Parent Node', 'MAC', 'download min', 'Upload Min', 'Download Max', 'UPLOAD MAX MBPS', 'Extra Column'];
    const text = `${header.join(',')}\n2001:db8::/64,100.64.0.1,D1,C1,Alice,CPE,,aa,1.5,1,10,2,whatever\n`;
    const r = validate(text);
    assert.equal(r.ok, true, show(r.issues));
    const c = r.inputs.circuits[0];
    assert.equal(c.id, 'C1');
    assert.equal(c.downloadMinMbps, 1.5);
    assert.equal(c.uploadMaxMbps, 2);
    assert.deepEqual(c.devices[0].ipv6, ['2001:db8::/64']);
    assert.equal(c.parentNode, '');
  });
});

describe('validation details', () => {
  test('circuits are grouped by Circuit ID in first-occurrence order', () => {
    const rows = [
      { ...BASE_ROWS[1] },
      { ...BASE_ROWS[0] },
      { ...BASE_ROWS[1], deviceId: 'D9', ipv4: '100.64.0.9', ipv6: '' },
    ];
    const r = validate([HEADER_16.join(','), ...rows.map(csvLine)].join('\n'));
    assert.equal(r.ok, true, show(r.issues));
    assert.deepEqual(
      r.inputs.circuits.map((c) => [c.id, c.line, c.devices.map((d) => d.id)]),
      [
        ['C2', 2, ['D2', 'D9']],
        ['C1', 3, ['D1']],
      ],
    );
  });

  test('flat network {} ignores parents; base inputs are clean', () => {
    const flat = validate(BASE_CSV.replace(',AP_B,', ',Nowhere,'), '{}');
    assert.deepEqual(flat.issues, []);
    assert.deepEqual(flat.inputs.network, []);
    const base = validate(BASE_CSV, BASE_NETWORK);
    assert.deepEqual(base.issues, []);
    assert.equal(base.ok, true);
  });

  test('parent matching: Parent Node ID against id, then name against key or display name', () => {
    const network = JSON.stringify({
      Tower: { downloadBandwidthMbps: 100, uploadBandwidthMbps: 100, id: 't-1', name: 'Tower One' },
      Other: { downloadBandwidthMbps: 100, uploadBandwidthMbps: 100, id: 7, active_attachment_name: 'Other Display' },
    });
    const csv = [
      HEADER_16.join(','),
      csvLine({ ...BASE_ROWS[0], parentNode: 'wrong name', parentNodeId: 't-1' }),
      csvLine({ ...BASE_ROWS[1], parentNode: 'Tower One' }),
      csvLine({ ...BASE_ROWS[2], parentNode: 'Other Display' }),
      csvLine({ ...BASE_ROWS[2], circuitId: 'C4', deviceId: 'D4', ipv4: '100.64.0.4', ipv6: '', parentNode: '', parentNodeId: '7' }),
      csvLine({ ...BASE_ROWS[2], circuitId: 'C5', deviceId: 'D5', ipv4: '100.64.0.5', ipv6: '', parentNode: 'none' }),
    ].join('\n');
    const r = validate(csv, network);
    assert.deepEqual(r.issues, []);
    assert.equal(r.inputs.circuits[4].parentNode, '', '"none" means no parent');
  });

  test('Parent Node and Parent Node ID naming different nodes: the ID wins, with a warning naming line and both values', () => {
    const network = JSON.stringify({
      AP_OLD: { downloadBandwidthMbps: 100, uploadBandwidthMbps: 100, id: 'id-old' },
      AP_NEW: { downloadBandwidthMbps: 100, uploadBandwidthMbps: 100, id: 'id-new', name: 'New AP' },
    });
    const csv = [
      HEADER_16.join(','),
      csvLine({ ...BASE_ROWS[0], parentNode: 'AP_NEW', parentNodeId: 'id-old' }),
      csvLine({ ...BASE_ROWS[1], parentNode: 'New AP', parentNodeId: 'id-new' }), // both name AP_NEW (name and id aliases)
      csvLine({ ...BASE_ROWS[2], parentNode: 'AP_OLD', parentNodeId: '' }), // name only
      csvLine({ ...BASE_ROWS[2], circuitId: 'C4', deviceId: 'D4', ipv4: '100.64.0.4', ipv6: '', parentNode: '', parentNodeId: 'id-new' }), // id only
      csvLine({ ...BASE_ROWS[2], circuitId: 'C5', deviceId: 'D5', ipv4: '100.64.0.5', ipv6: '', parentNode: 'AP_OLD', parentNodeId: 'AP_OLD' }),
    ].join('\n');
    const r = validate(csv, network);
    assert.equal(r.ok, true, show(r.issues));
    assert.deepEqual(r.issues.map((i) => [i.severity, i.code, i.file, i.line, i.column, i.value]), [
      ['warning', 'conflicting-parent-columns', DEVICES_FILE, 2, 'Parent Node', 'AP_NEW'],
    ]);
    const [msg] = r.issues.map(formatIssue);
    assert.match(msg!, /^warning: ShapedDevices\.csv:2: column "Parent Node" value "AP_NEW": /);
    assert.match(msg!, /Parent Node ID "id-old" is node "AP_OLD"/);
    assert.match(msg!, /shaped under "AP_OLD"/);
    assert.equal(r.inputs.circuits[0].parentNodeId, 'id-old', 'ID-first resolution kept');
  });

  test('Parent Node naming a virtual node and Parent Node ID naming the real node it hangs under agree (the planner attaches both there)', () => {
    const network = JSON.stringify({
      Region: {
        downloadBandwidthMbps: 100,
        uploadBandwidthMbps: 100,
        id: 'r-1',
        children: {
          Cluster: { virtual: true, id: 'v-1', children: { Inner: { type: 'virtual', children: { AP: { downloadBandwidthMbps: 50, uploadBandwidthMbps: 50, id: 'ap-1' } } } } },
        },
      },
      Loose: { virtual: true, id: 'v-top', children: { Other: { downloadBandwidthMbps: 50, uploadBandwidthMbps: 50, id: 'o-1' } } },
    });
    const row = (n: number, parentNode: string, parentNodeId: string) =>
      csvLine({ ...BASE_ROWS[2], circuitId: `C${n}`, deviceId: `D${n}`, ipv4: `100.64.0.${n}`, ipv6: '', parentNode, parentNodeId });
    const csv = [
      HEADER_16.join(','),
      row(1, 'Cluster', 'r-1'), // virtual → Region: agree
      row(2, 'Inner', 'Region'), // virtual in virtual → Region: agree
      row(3, 'Region', 'v-1'), // the other way round: agree
      row(4, 'Cluster', 'ap-1'), // Region vs AP: differ
      row(5, 'Loose', 'o-1'), // top-level virtual (generated parents) vs Other: differ
    ].join('\n');
    const r = validate(csv, network);
    assert.equal(r.ok, true, show(r.issues));
    assert.deepEqual(r.issues.map((i) => [i.code, i.line, i.value]), [
      ['conflicting-parent-columns', 5, 'Cluster'],
      ['conflicting-parent-columns', 6, 'Loose'],
    ]);
    const [four, five] = r.issues.map(formatIssue);
    assert.match(four!, /Parent Node "Cluster" is node "Cluster" \(virtual\) but Parent Node ID "ap-1" is node "AP" .*shaped under "AP" — to move it to "Region"/);
    assert.match(five!, /shaped under "Other" — to move it to a generated parent node/);
    // What the validator says agrees with where the planner attaches them.
    const tree = buildPhysicalTree({ network: parseNetworkJson(network, 'network.json').nodes, linkDown: 1000, linkUp: 1000, file: 'network.json' });
    const where = attachCircuits(tree, r.inputs.circuits, DEVICES_FILE).attached.map((a) => [a.circuit.id, a.node.name]);
    assert.deepEqual(where, [['C1', 'Region'], ['C2', 'Region'], ['C3', 'Region'], ['C4', 'AP'], ['C5', 'Other']]);
  });

  test('Parent Node and Parent Node ID agreeing, or only one given: no warning', () => {
    const network = JSON.stringify({ AP_OLD: { downloadBandwidthMbps: 100, uploadBandwidthMbps: 100, id: 'id-old' } });
    for (const [parentNode, parentNodeId] of [
      ['AP_OLD', 'id-old'],
      ['AP_OLD', ''],
      ['', 'id-old'],
    ]) {
      const r = validate([HEADER_16.join(','), csvLine({ ...BASE_ROWS[0], parentNode, parentNodeId })].join('\n'), network);
      assert.deepEqual(r.issues, [], `${parentNode}/${parentNodeId}: ${show(r.issues)}`);
    }
  });

  test('rates accept decimals', () => {
    const r = validate(BASE_CSV.replace('C1,Alice,D1,Alice CPE,AP_A,,,02:00:00:00:00:01,100.64.0.1,2001:db8:0:100::/56,10,2,100,20', 'C1,Alice,D1,Alice CPE,AP_A,,,02:00:00:00:00:01,100.64.0.1,2001:db8:0:100::/56,0.5,.25,2.5,1e1'));
    assert.equal(r.ok, true, show(r.issues));
    const c = r.inputs.circuits[0];
    assert.deepEqual([c.downloadMinMbps, c.uploadMinMbps, c.downloadMaxMbps, c.uploadMaxMbps], [0.5, 0.25, 2.5, 10]);
  });

  test('parseRate equals Number() for plain decimals', () => {
    for (const s of ['0.1', '2.5', '0.3', '123456789.123456', '1.', '.5', '-5', '+7', '1e3', '1E-1', '0.30000000000000004', '12345678901234567890']) {
      assert.equal(parseRate(s), Number(s), s);
    }
    for (const s of ['', '.', '-', 'abc', '1,5', '0x10', 'Infinity', '1e', '1..2', '5 Mbps']) assert.ok(Number.isNaN(parseRate(s)), s);
  });

  test('IPv4 cell: spaces removed, trailing commas ignored, a cell of only commas is empty', () => {
    const r = validate(
      [
        HEADER_16.join(','),
        csvLine({ ...BASE_ROWS[0], ipv4: ' 100.64.0.1 , 100.64.1.0/24, ', ipv6: ',' }),
        csvLine({ ...BASE_ROWS[1], ipv4: ',,', ipv6: '2001:db8:0:200::/56' }),
      ].join('\n'),
    );
    assert.equal(r.ok, true, show(r.issues));
    assert.deepEqual(r.inputs.circuits[0].devices[0].ipv4, ['100.64.0.1/32', '100.64.1.0/24']);
    assert.deepEqual(r.inputs.circuits[0].devices[0].ipv6, []);
    assert.deepEqual(r.inputs.circuits[1].devices[0].ipv4, []);
  });

  test('formatIssue', () => {
    const r = validate(BASE_CSV.replace('100.64.0.3,', '100.64.0.1/24,'));
    assert.deepEqual(r.issues.map(formatIssue), [
      'error: ShapedDevices.csv:4: column "IPv4" value "100.64.0.1/24": CIDR has host bits set; use 100.64.0.0/24 (or 100.64.0.1/32 for the single host)',
    ]);
    assert.equal(
      formatIssue({ severity: 'warning', code: 'x', file: 'network.json', line: 3, column: 'A.b', message: 'm' }),
      'warning: network.json:3: at "A.b": m',
    );
    assert.equal(formatIssue({ severity: 'error', code: 'x', file: 'f', message: 'm' }), 'error: f: m');
  });
});

describe('sqm', () => {
  const ok: Array<[string, unknown]> = [
    ['', undefined],
    ['cake', { download: 'cake', upload: 'cake' }],
    ['FQ_CODEL', { download: 'fq_codel', upload: 'fq_codel' }],
    ['none', { download: 'none', upload: 'none' }],
    [' Cake / FQ_CODEL ', { download: 'cake', upload: 'fq_codel' }],
    ['cake/', { download: 'cake' }],
    ['/none', { upload: 'none' }],
    ['/', undefined],
  ];
  for (const [input, expected] of ok) {
    test(`parseSqm(${JSON.stringify(input)})`, () => assert.deepEqual(parseSqm(input), { sqm: expected }));
  }
  for (const bad of ['codel', 'cake/pie', 'cake/fq_codel/none', 'fq-codel', 'cake diffserv4']) {
    test(`parseSqm rejects ${JSON.stringify(bad)}`, () => assert.equal(parseSqm(bad), null));
  }
  test('first non-empty sqm of a circuit is kept', () => {
    const csv = [
      HEADER_16.join(','),
      csvLine(BASE_ROWS[0]),
      csvLine({ ...BASE_ROWS[0], deviceId: 'D8', ipv4: '100.64.0.8', ipv6: '', sqm: 'fq_codel/cake' }),
      csvLine({ ...BASE_ROWS[0], deviceId: 'D9', ipv4: '100.64.0.9', ipv6: '', sqm: 'FQ_CODEL / Cake' }),
    ].join('\n');
    const r = validate(csv);
    assert.deepEqual(r.issues, []);
    assert.deepEqual(r.inputs.circuits[0].sqm, { download: 'fq_codel', upload: 'cake' });
  });
});

describe('IP canonicalisation', () => {
  const v4: Array<[string, string]> = [
    ['100.64.0.1', '100.64.0.1/32'],
    ['100.64.0.1/32', '100.64.0.1/32'],
    ['100.64.0.0/10', '100.64.0.0/10'],
    ['0.0.0.0/0', '0.0.0.0/0'],
    ['255.255.255.255', '255.255.255.255/32'],
    ['10.0.0.128/25', '10.0.0.128/25'],
  ];
  for (const [input, out] of v4) test(`IPv4 ${input}`, () => assert.deepEqual(parseIPv4Prefix(input), { ok: true, prefix: out, key: (parseIPv4Prefix(input) as { key: unknown }).key }));

  const v6: Array<[string, string]> = [
    ['2001:DB8::1', '2001:db8::1/128'],
    ['2001:0db8:0000:0000:0000:0000:0000:0001', '2001:db8::1/128'],
    ['2001:db8:0:0:1:0:0:1', '2001:db8::1:0:0:1/128'],
    ['2001:db8:0:1:1:1:1:1', '2001:db8:0:1:1:1:1:1/128'],
    ['1:2:3:4:5:6:7::', '1:2:3:4:5:6:7:0/128'],
    ['::', '::/128'],
    ['::/0', '::/0'],
    ['::1', '::1/128'],
    ['fdd7:b724:0:100::/56', 'fdd7:b724:0:100::/56'],
    ['2001:db8::/32', '2001:db8::/32'],
    ['64:ff9b::192.0.2.33', '64:ff9b::c000:221/128'],
  ];
  for (const [input, out] of v6) test(`IPv6 ${input}`, () => assert.equal((parseIPv6Prefix(input) as { prefix: string }).prefix, out));

  for (const bad of ['1:2:3:4:5:6:7:8:9', '1::2::3', ':1::', '1:', '12345::', 'g::1', '::1.2.3', '1:2:3:4:5:6:7:1.2.3.4', '2001:db8::/129', '2001:db8::/']) {
    test(`IPv6 rejects ${bad}`, () => assert.equal(parseIPv6Prefix(bad).ok, false));
  }
  for (const bad of ['1.2.3', '1.2.3.4.5', '1.2.3.256', '01.2.3.4', '1.2.3.4/', '1.2.3.4/33', '0x7f.0.0.1', '1.2.3.-4', '']) {
    test(`IPv4 rejects ${JSON.stringify(bad)}`, () => assert.equal(parseIPv4Prefix(bad).ok, false));
  }

  test('RFC 5952 formatting matches ipaddr.js on random addresses', () => {
    const rnd = lcg(12345);
    for (let n = 0; n < 3000; n++) {
      // Random groups with random zero runs.
      const g = Array.from({ length: 8 }, () => (rnd() % 3 === 0 ? 0 : rnd() % 0x10000));
      const full = g.map((x) => x.toString(16).padStart(4, '0')).join(':');
      const ref = ipaddr.IPv6.parse(full).toRFC5952String();
      assert.equal(formatIPv6(g), ref, full);
      assert.deepEqual(parseIPv6Groups(ref), g, ref);
      assert.deepEqual(parseIPv6Groups(full.toUpperCase()), g, full);
    }
  });
});

describe('writeShapedDevices', () => {
  test('round trip of the v1.4 fixture', { skip: needsUpstream('v1.4-ShapedDevices.example.csv') }, () => {
    const a = validate(readUpstream('v1.4-ShapedDevices.example.csv'));
    assert.equal(a.ok, true);
    const text = writeShapedDevices(a.inputs.circuits);
    assert.equal(text.split('\n')[0], HEADER_16.join(','));
    const b = validate(text);
    assert.equal(b.ok, true, show(b.issues));
    assert.deepEqual(withoutLines(b.inputs.circuits), withoutLines(a.inputs.circuits));
    assert.equal(writeShapedDevices(b.inputs.circuits), text, 'stable');
  });

  test('round trip of awkward values', () => {
    const circuits: Circuit[] = [
      {
        id: '#hash-first',
        name: 'Name, with "quotes"\nand a line break',
        parentNode: 'AP_A',
        parentNodeId: 'pn-1',
        anchorNodeId: 'an-1',
        downloadMinMbps: 2.5,
        uploadMinMbps: 0.5,
        downloadMaxMbps: 1000,
        uploadMaxMbps: 100.25,
        sqm: { download: 'cake', upload: 'fq_codel' },
        comment: 'c, 1',
        line: 2,
        devices: [
          { id: 'D1', name: 'dev\r1', mac: 'aa:bb', ipv4: ['100.64.0.1/32', '100.64.1.0/24'], ipv6: ['2001:db8::/56'], comment: 'c, 1', line: 2 },
          { id: 'D2', name: '#dev 2', mac: '', ipv4: [], ipv6: ['2001:db8:1::1/128'], comment: 'c, 1', line: 3 },
        ],
      },
      {
        id: 'C2',
        name: 'Plain',
        parentNode: '',
        parentNodeId: '',
        anchorNodeId: '',
        downloadMinMbps: 1,
        uploadMinMbps: 1,
        downloadMaxMbps: 10,
        uploadMaxMbps: 10,
        sqm: { upload: 'none' },
        comment: '',
        line: 4,
        devices: [{ id: 'D3', name: 'd3', mac: '', ipv4: ['100.64.0.3/32'], ipv6: [], comment: '', line: 4 }],
      },
    ];
    const text = writeShapedDevices(circuits);
    for (const engine of ['auto', 'csv-parse'] as const) assert.deepEqual(parseShapedDevices(text, 'x', { engine }).issues, []);
    const back = validate(text);
    assert.equal(back.ok, true, show(back.issues));
    assert.deepEqual(withoutLines(back.inputs.circuits), withoutLines(circuits));
  });
});

describe('malformed inputs (test/fixtures/bad-inputs.ts)', () => {
  test('the table has at least 30 cases with unique names', () => {
    assert.ok(BAD_INPUTS.length >= 30, String(BAD_INPUTS.length));
    assert.equal(new Set(BAD_INPUTS.map((c) => c.name)).size, BAD_INPUTS.length);
  });
  for (const c of BAD_INPUTS) {
    test(c.name, () => {
      const r = validate(c.csv, c.network);
      const e = c.expect;
      const found = r.issues.find(
        (i) =>
          i.severity === e.severity &&
          i.code === e.code &&
          i.file === e.file &&
          i.line === e.line &&
          (e.column === undefined || i.column === e.column),
      );
      assert.ok(found, `expected ${e.severity} ${e.code} at ${e.file}:${e.line} ${e.column ?? ''}; got:\n${show(r.issues)}`);
      assert.ok(found.message.includes(e.messageIncludes), `message "${found.message}" lacks "${e.messageIncludes}"`);
      assert.ok(found.message.length > 20);
      if (e.severity === 'error') {
        assert.equal(r.ok, false);
        if (!c.allowOtherErrors) assert.equal(errors(r.issues).length, 1, show(r.issues));
      } else {
        assert.equal(r.ok, true, show(r.issues));
      }
    });
  }
});
