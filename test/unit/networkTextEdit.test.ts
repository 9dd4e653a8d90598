// test-gate: shared (CPU only; see test/support/gate.ts)
/** lib/inputs/networkTextEdit.ts: a network.json save changes only the values that changed. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { editNetworkText } from '../../lib/inputs/networkTextEdit.ts';

const OPERATORS = [
  '{',
  '\t"Site_A": {',
  '\t\t"downloadBandwidthMbps": 1000.0,',
  '\t\t"uploadBandwidthMbps": 5e2,',
  '\t\t"name_note": "Caf\\u00e9",',
  '\t\t"id": 12345678901234567890,',
  '\t\t"children": {',
  '\t\t\t"AP_1": { "downloadBandwidthMbps": 300, "uploadBandwidthMbps": 150 },',
  '\t\t\t"Zulu": { "downloadBandwidthMbps": 100, "uploadBandwidthMbps": 50 },',
  '\t\t\t"42": { "downloadBandwidthMbps": 80, "uploadBandwidthMbps": 40 },',
  '\t\t\t"7": { "downloadBandwidthMbps": 70, "uploadBandwidthMbps": 30 }',
  '\t\t}',
  '\t}',
  '}',
].join('\r\n');

test('a changed rate is written in its place; tabs, CRLF, key order (numeric names too), 1000.0, 5e2, \\u00e9 and a 20-digit id stay as written', () => {
  const doc = JSON.parse(OPERATORS);
  doc.Site_A.children.AP_1.downloadBandwidthMbps = 350;
  const out = editNetworkText(OPERATORS, doc);
  assert.equal(out, OPERATORS.replace('"AP_1": { "downloadBandwidthMbps": 300,', '"AP_1": { "downloadBandwidthMbps": 350,'));
  // Nothing changed: the text as it was.
  assert.equal(editNetworkText(OPERATORS, JSON.parse(OPERATORS)), OPERATORS);
  // Strings and null/boolean values change in place as well.
  const named = JSON.parse(OPERATORS);
  named.Site_A.name_note = 'Café "north"';
  assert.equal(editNetworkText(OPERATORS, named), OPERATORS.replace('"Caf\\u00e9"', '"Café \\"north\\""'));
});

const CRLF = (lines: string[]) => lines.join('\r\n');

test('a node added: after its last sibling, laid out like it (tabs, CRLF, one line inside a one-line object); numeric names and everything else stay', () => {
  const doc = JSON.parse(OPERATORS);
  doc.Site_A.children.AP_2 = { downloadBandwidthMbps: 10, uploadBandwidthMbps: 5, type: 'ap' };
  assert.equal(
    editNetworkText(OPERATORS, doc),
    OPERATORS.replace(
      '"7": { "downloadBandwidthMbps": 70, "uploadBandwidthMbps": 30 }',
      '"7": { "downloadBandwidthMbps": 70, "uploadBandwidthMbps": 30 },\r\n\t\t\t"AP_2": {\r\n\t\t\t\t"downloadBandwidthMbps": 10,\r\n\t\t\t\t"uploadBandwidthMbps": 5,\r\n\t\t\t\t"type": "ap"\r\n\t\t\t}',
    ),
  );
  // Inside a one-line object a new key stays on that line.
  const inline = JSON.parse(OPERATORS);
  inline.Site_A.children.Zulu.type = 'ap';
  assert.equal(editNetworkText(OPERATORS, inline), OPERATORS.replace('"Zulu": { "downloadBandwidthMbps": 100, "uploadBandwidthMbps": 50 }', '"Zulu": { "downloadBandwidthMbps": 100, "uploadBandwidthMbps": 50, "type": "ap" }'));
  // A first child of a node without children: a "children" object in the file's indentation.
  const text = CRLF(['{', '    "Site_B": {', '        "downloadBandwidthMbps": 1000.0,', '        "uploadBandwidthMbps": 500', '    }', '}']);
  const first = JSON.parse(text);
  first.Site_B.children = { AP_9: { downloadBandwidthMbps: 100, uploadBandwidthMbps: 50 } };
  assert.equal(
    editNetworkText(text, first),
    CRLF([
      '{', '    "Site_B": {', '        "downloadBandwidthMbps": 1000.0,', '        "uploadBandwidthMbps": 500,', '        "children": {', '            "AP_9": {',
      '                "downloadBandwidthMbps": 100,', '                "uploadBandwidthMbps": 50', '            }', '        }', '    }', '}',
    ]),
  );
  // An empty object filled: on its own lines, one level in.
  const empty = JSON.parse(OPERATORS);
  empty.Site_A.children.Zulu.children = {};
  const withEmpty = editNetworkText(OPERATORS, empty)!;
  assert.match(withEmpty, /"Zulu": \{ "downloadBandwidthMbps": 100, "uploadBandwidthMbps": 50, "children": \{\} \}/);
  assert.equal(editNetworkText('{}', { Site: { downloadBandwidthMbps: 1 } }), '{\n  "Site": {\n    "downloadBandwidthMbps": 1\n  }\n}');
});

test('a node removed: it goes with its comma, the lines around it as they were (first, middle, last, only child)', () => {
  for (const [name, from, to] of [
    ['AP_1', '\t\t\t"AP_1": { "downloadBandwidthMbps": 300, "uploadBandwidthMbps": 150 },\r\n', ''],
    ['Zulu', '\t\t\t"Zulu": { "downloadBandwidthMbps": 100, "uploadBandwidthMbps": 50 },\r\n', ''],
    ['7', ',\r\n\t\t\t"7": { "downloadBandwidthMbps": 70, "uploadBandwidthMbps": 30 }', ''],
  ] as const) {
    const doc = JSON.parse(OPERATORS);
    delete doc.Site_A.children[name];
    assert.equal(editNetworkText(OPERATORS, doc), OPERATORS.replace(from, to), name);
  }
  const doc = JSON.parse(OPERATORS);
  doc.Site_A.children = {};
  assert.equal(editNetworkText(OPERATORS, doc), OPERATORS.replace(/"children": \{[\s\S]*?\r\n\t\t\}/, '"children": {}'));
  // A key of a one-line object.
  const field = JSON.parse(OPERATORS);
  delete field.Site_A.children.Zulu.uploadBandwidthMbps;
  assert.equal(editNetworkText(OPERATORS, field), OPERATORS.replace('"Zulu": { "downloadBandwidthMbps": 100, "uploadBandwidthMbps": 50 }', '"Zulu": { "downloadBandwidthMbps": 100 }'));
});

test('a node renamed in place (as the tree editor renames): only its key and a name field that repeated it change; its place and text stay', () => {
  const text = CRLF(['{', '\t"Site_A": {', '\t\t"name": "Site_A",', '\t\t"downloadBandwidthMbps": 1000.0,', '\t\t"uploadBandwidthMbps": 5e2', '\t},', '\t"Site_B": { "downloadBandwidthMbps": 10, "uploadBandwidthMbps": 5 }', '}']);
  const doc = JSON.parse(text);
  // The tree editor's rename: same place, the `name` field follows.
  const renamed = Object.fromEntries(Object.entries(doc).map(([k, v]) => (k === 'Site_A' ? ['North "A"', { ...(v as object), name: 'North "A"' }] : [k, v])));
  assert.equal(editNetworkText(text, renamed), text.replace('\t"Site_A": {', '\t"North \\"A\\"": {').replace('"name": "Site_A"', '"name": "North \\"A\\""'));
  // One removed and one added at the end is no rename: the old one goes, the new one comes last.
  const replaced = { Site_B: doc.Site_B, Site_C: { downloadBandwidthMbps: 1 } };
  const out = editNetworkText(text, replaced)!;
  assert.deepEqual(Object.keys(JSON.parse(out)), ['Site_B', 'Site_C']);
  assert.ok(out.includes('\t"Site_B": { "downloadBandwidthMbps": 10, "uploadBandwidthMbps": 5 },\r\n\t"Site_C": {\r\n\t\t"downloadBandwidthMbps": 1\r\n\t}\r\n}'), out);
});

test('a node moved to another parent takes its own text along (1000.0, a 20-digit id, inner layout), re-indented one level deeper', () => {
  const text = CRLF([
    '{',
    '  "Site_A": {',
    '    "downloadBandwidthMbps": 1000,',
    '    "uploadBandwidthMbps": 1000,',
    '    "children": {',
    '      "AP_1": {',
    '        "downloadBandwidthMbps": 300.0,',
    '        "id": 12345678901234567890,',
    '        "children": { "Sub": { "downloadBandwidthMbps": 1, "uploadBandwidthMbps": 1 } }',
    '      }',
    '    }',
    '  },',
    '  "Site_B": {',
    '    "downloadBandwidthMbps": 500,',
    '    "uploadBandwidthMbps": 500,',
    '    "children": {',
    '      "Tower": {',
    '        "downloadBandwidthMbps": 400,',
    '        "uploadBandwidthMbps": 400,',
    '        "children": {}',
    '      }',
    '    }',
    '  }',
    '}',
  ]);
  const doc = JSON.parse(text);
  doc.Site_B.children.Tower.children.AP_1 = doc.Site_A.children.AP_1;
  delete doc.Site_A.children.AP_1;
  assert.equal(
    editNetworkText(text, doc),
    CRLF([
      '{',
      '  "Site_A": {',
      '    "downloadBandwidthMbps": 1000,',
      '    "uploadBandwidthMbps": 1000,',
      '    "children": {}',
      '  },',
      '  "Site_B": {',
      '    "downloadBandwidthMbps": 500,',
      '    "uploadBandwidthMbps": 500,',
      '    "children": {',
      '      "Tower": {',
      '        "downloadBandwidthMbps": 400,',
      '        "uploadBandwidthMbps": 400,',
      '        "children": {',
      '          "AP_1": {',
      '            "downloadBandwidthMbps": 300.0,',
      '            "id": 12345678901234567890,',
      '            "children": { "Sub": { "downloadBandwidthMbps": 1, "uploadBandwidthMbps": 1 } }',
      '          }',
      '        }',
      '      }',
      '    }',
      '  }',
      '}',
    ]),
  );
});

test('a value turned into an object or array, or an array of another length, is written in its place; key order from the JSON view is followed', () => {
  const doc = JSON.parse(OPERATORS);
  doc.Site_A.name_note = { x: 1 };
  assert.equal(editNetworkText(OPERATORS, doc), OPERATORS.replace('"Caf\\u00e9"', '{\r\n\t\t\t"x": 1\r\n\t\t}'));
  const arr = '{\n  "S": {\n    "tags": [1, 2],\n    "downloadBandwidthMbps": 5\n  }\n}\n';
  assert.equal(editNetworkText(arr, { S: { tags: [1, 2, 3], downloadBandwidthMbps: 5 } }), arr.replace('[1, 2]', '[1, 2, 3]'));
  // Keys reordered in the JSON view (no numeric names): the new order, each entry's text kept.
  const two = '{\n  "A": { "downloadBandwidthMbps": 1.0 },\n  "B": { "downloadBandwidthMbps": 2 }\n}\n';
  assert.equal(editNetworkText(two, { B: { downloadBandwidthMbps: 2 }, A: { downloadBandwidthMbps: 1 } }), '{\n  "B": { "downloadBandwidthMbps": 2 },\n  "A": { "downloadBandwidthMbps": 1.0 }\n}\n');
});

test('not done in place: duplicate keys, a file that is not JSON or not an object, a document that is not an object (undefined: the caller writes the whole document)', () => {
  assert.equal(editNetworkText('{ "a": 1, "a": 2 }', { a: 3 }), undefined, 'duplicate keys');
  assert.equal(editNetworkText('{ "s": { "a": 1, "a": 2 } }', { s: { a: 3 }, t: 1 }), undefined, 'duplicate keys below');
  assert.equal(editNetworkText('not json', {}), undefined);
  assert.equal(editNetworkText('[1]', {}), undefined);
  assert.equal(editNetworkText('{}', [1]), undefined);
});
