// test-gate: shared (CPU only; see test/support/gate.ts)
/** lib/inputs/csvCellEdit.ts: cells changed in place, every other byte of the operator's file kept. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { CellEditError, setCsvCells } from '../../lib/inputs/csvCellEdit.ts';

const HEAD = '\uFEFF"Circuit ID",circuit name,Device ID,Device Name,Parent  Node,Parent Node ID,MAC,IPv4,IPv6,Download Min Mbps,Upload Min Mbps,Download Max Mbps,Upload Max Mbps';

test('only the named cells change; quoting of the others, comments, CRLF and a missing final newline stay', () => {
  const text = `# my notes\r\n${HEAD}\r\n"c1","Alice, Jr.",d1,x,AP_1,ap-1-id,,100.64.0.1,,1,1,10,10\r\n# keep\r\nc2,Bob,d2,y,AP_2,,,100.64.0.2,,1,1,10,10`;
  const out = setCsvCells(text, new Map([[3, { parentNode: '#top', parentNodeId: '' }], [5, { parentNode: 'Site B' }]]));
  assert.equal(
    out,
    `# my notes\r\n${HEAD}\r\n"c1","Alice, Jr.",d1,x,"#top",,,100.64.0.1,,1,1,10,10\r\n# keep\r\nc2,Bob,d2,y,Site B,,,100.64.0.2,,1,1,10,10`,
  );
});

test('a short row is padded to reach the column; a quoted cell spanning lines or a comment line is refused', () => {
  const text = `${HEAD}\nc1,A,d1,x\nc2,"two\nlines",d2,y,AP,,,,,1,1,1,1\n`;
  assert.equal(setCsvCells(text, new Map([[2, { parentNode: 'P' }]])).split('\n')[1], 'c1,A,d1,x,P');
  assert.throws(() => setCsvCells(text, new Map([[3, { parentNode: 'P' }]])), CellEditError);
  assert.throws(() => setCsvCells(text, new Map([[1, { parentNode: 'P' }]])), /no data line 1/);
  assert.throws(() => setCsvCells('Circuit ID,MAC\nc1,m\n', new Map([[2, { parentNode: 'P' }]])), /no "Parent Node" column/);
});
