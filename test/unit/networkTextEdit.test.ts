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

test('a node added, removed or renamed, or a value turned into an object, is not a change of values only: undefined (the caller writes the whole document)', () => {
  const added = JSON.parse(OPERATORS);
  added.Site_A.children.AP_2 = { downloadBandwidthMbps: 10, uploadBandwidthMbps: 5 };
  assert.equal(editNetworkText(OPERATORS, added), undefined);
  const removed = JSON.parse(OPERATORS);
  delete removed.Site_A.children.Zulu;
  assert.equal(editNetworkText(OPERATORS, removed), undefined);
  const structure = JSON.parse(OPERATORS);
  structure.Site_A.name_note = { x: 1 };
  assert.equal(editNetworkText(OPERATORS, structure), undefined);
  assert.equal(editNetworkText('{ "a": 1, "a": 2 }', { a: 3 }), undefined, 'duplicate keys');
  assert.equal(editNetworkText('not json', {}), undefined);
});
