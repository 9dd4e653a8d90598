// test-gate: shared (CPU only; see test/support/gate.ts)
/** lib/inputs/csvCellEdit.ts: cells changed in place, every other byte of the operator's file kept. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { CellEditError, editCsv, setCsvCells } from '../../lib/inputs/csvCellEdit.ts';
import { parseShapedDevices } from '../../lib/inputs/shapedDevices.ts';

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

const H13 = 'Circuit ID,Circuit Name,Device ID,Device Name,Parent Node,MAC,IPv4,IPv6,Download Min Mbps,Upload Min Mbps,Download Max Mbps,Upload Max Mbps,Comment';

test('a quoted cell after a blank is one cell (as the reader reads it): later edits land in their own column, blanks kept', () => {
  const row = 'c1, "Doe, Jane", d1, cpe, AP_OLD, , 100.64.0.1, , 1, 1, 10, 10, \t"note, here" ';
  const other = 'c2,Bob,d2,Bob cpe,AP_OLD,,100.64.0.2,,1,1,10,10,';
  const text = `# notes\n${H13}\n${row}\n${other}\n`;
  const out = setCsvCells(text, new Map([[3, { parentNode: 'AP_NEW', ipv4: '100.64.0.9' }]]));
  assert.equal(out, `# notes\n${H13}\n${row.replace('AP_OLD', 'AP_NEW').replace('100.64.0.1', '100.64.0.9')}\n${other}\n`);
  const rows = parseShapedDevices(out, 'x').rows;
  assert.deepEqual(
    [rows[0]!.circuitName, rows[0]!.deviceName, rows[0]!.parentNode, rows[0]!.mac, rows[0]!.ipv4, rows[0]!.comment],
    ['Doe, Jane', 'cpe', 'AP_NEW', '', '100.64.0.9', 'note, here'],
  );

  // The quoted cell itself, the blank cell after it and the last (tab + quoted + trailing blank) cell.
  const again = setCsvCells(text, new Map([[3, { circuitName: 'Roe, Rick', mac: '02:00:00:00:00:01', comment: 'moved' }]]));
  assert.equal(again.split('\n')[2], 'c1, "Roe, Rick", d1, cpe, AP_OLD, 02:00:00:00:00:01, 100.64.0.1, , 1, 1, 10, 10, \tmoved ');
  assert.equal(again.split('\n').filter((_, i) => i !== 2).join('\n'), text.split('\n').filter((_, i) => i !== 2).join('\n'));

  // A form feed before the quote (csv-parse skips it as well).
  const ff = row.replace(' "Doe', '\f"Doe');
  assert.equal(setCsvCells(`${H13}\n${ff}\n`, new Map([[2, { ipv4: '100.64.0.9' }]])), `${H13}\n${ff.replace('100.64.0.1', '100.64.0.9')}\n`);

  // A quoted header cell after a blank.
  const spacedHead = H13.split(',').map((h) => ` "${h}"`).join(',');
  assert.equal(setCsvCells(`${spacedHead}\n${row}\n`, new Map([[2, { ipv4: '100.64.0.9' }]])), `${spacedHead}\n${row.replace('100.64.0.1', '100.64.0.9')}\n`);
});

test('an edit that would not read back as intended is refused: a comment line, the second line of a multi-line row', () => {
  const text = `${H13}\n  # Bob, who moved, twice\nc2,"two\nlines",d2,y,AP,,100.64.0.2,,1,1,10,10,\n`;
  assert.throws(() => setCsvCells(text, new Map([[2, { parentNode: 'P' }]])), /line 2 is not the first line of a data row/);
  assert.throws(() => setCsvCells(text, new Map([[4, { parentNode: 'P' }]])), /line 4 is not the first line of a data row/);
});

test('the header is found as the reader finds it: a row of empty cells above it (a blank spreadsheet row) is skipped', () => {
  const blank = ',,,,,,,,,,,,';
  const text = `# note\n${blank}\n${H13}\nc1,A,d1,x,AP_OLD,,100.64.0.1,,1,1,10,10,\n`;
  assert.equal(parseShapedDevices(text, 'x').rows.length, 1);
  const out = setCsvCells(text, new Map([[4, { parentNode: 'AP_NEW' }]]));
  assert.equal(out, `# note\n${blank}\n${H13}\nc1,A,d1,x,AP_NEW,,100.64.0.1,,1,1,10,10,\n`);
  assert.equal(parseShapedDevices(out, 'x').rows[0]!.parentNode, 'AP_NEW');
  // Appending and deleting work there too; the blank row stays where it was.
  const rows = editCsv(text, { deleteLines: new Set([4]), append: [{ circuitId: 'c2', deviceId: 'd2', parentNode: 'AP' }] });
  assert.equal(rows, `# note\n${blank}\n${H13}\nc2,,d2,,AP,,,,,,,,\n`);
  // The blank row itself is not a data row.
  assert.throws(() => setCsvCells(text, new Map([[2, { parentNode: 'P' }]])), /no data line 2/);
});
