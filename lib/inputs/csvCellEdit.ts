/**
 * Changing a few cells of ShapedDevices.csv in place: only the named cells are rewritten (the new
 * value quoted as every writer quotes, ./csvText.ts); every other byte — the other cells of the row
 * with their own quoting, comments, blank lines, the operator's column order and spelling, line
 * endings — stays as it was.
 */
import type { ShapedDeviceField } from './shapedDevices.ts';
import { SHAPED_DEVICES_COLUMNS } from './shapedDevices.ts';
import { csvRowsText } from './csvText.ts';

const normalise = (h: string) => h.toLowerCase().replace(/[^a-z0-9]/g, '');

export class CellEditError extends Error {}

/** The physical lines of `text`, each with its own line ending ('' for a last line without one). */
function splitLines(text: string): { body: string; eol: string }[] {
  const out: { body: string; eol: string }[] = [];
  const re = /\r\n|\n|\r/g;
  let at = 0;
  for (let m = re.exec(text); m; m = re.exec(text)) {
    out.push({ body: text.slice(at, m.index), eol: m[0] });
    at = m.index + m[0].length;
  }
  if (at < text.length) out.push({ body: text.slice(at), eol: '' });
  return out;
}

/** Where each cell of one CSV line starts and ends (quotes included); throws on an open quote. */
function cellSpans(line: string, lineNo: number): [number, number][] {
  const spans: [number, number][] = [];
  let i = 0;
  for (;;) {
    const start = i;
    if (line[i] === '"') {
      i++;
      for (;;) {
        const q = line.indexOf('"', i);
        if (q < 0) throw new CellEditError(`ShapedDevices.csv line ${lineNo} cannot be edited in place (a quoted cell continues on the next line); edit that row by hand`);
        if (line[q + 1] === '"') i = q + 2;
        else {
          i = q + 1;
          break;
        }
      }
      while (i < line.length && line[i] !== ',') i++;
    } else {
      const comma = line.indexOf(',', i);
      i = comma < 0 ? line.length : comma;
    }
    spans.push([start, i]);
    if (i >= line.length) return spans;
    i++; // the comma
  }
}

const unquote = (cell: string) => (cell.trim().startsWith('"') ? cell.trim().slice(1, -1).replace(/""/g, '"') : cell.trim());

/** What to change in a ShapedDevices.csv, by 1-based physical line. */
export interface CsvEdits {
  cells?: ReadonlyMap<number, Partial<Record<ShapedDeviceField, string>>>;
  /** Data lines to drop. */
  deleteLines?: ReadonlySet<number>;
  /** Rows to add at the end, in the file's own column order. */
  append?: readonly Partial<Record<ShapedDeviceField, string>>[];
}

/** The header's columns: the index of each field the file has. */
function headerColumns(lines: { body: string }[]): { headerAt: number; indexOf: (f: ShapedDeviceField) => number; width: number } {
  const headerAt = lines.findIndex((l) => l.body.trim() !== '' && !l.body.trimStart().startsWith('#'));
  if (headerAt < 0) throw new CellEditError('ShapedDevices.csv has no header line');
  const headerLine = lines[headerAt]!.body.replace(/^\uFEFF/, '');
  const header = cellSpans(headerLine, headerAt + 1).map(([a, b]) => normalise(unquote(headerLine.slice(a, b))));
  const indexOf = (field: ShapedDeviceField): number => {
    const col = SHAPED_DEVICES_COLUMNS.find((c) => c.field === field)!;
    return header.findIndex((h) => col.aliases.includes(h));
  };
  return { headerAt, indexOf, width: header.length };
}

const cellText = (value: string) => csvRowsText([[value]]).replace(/\n$/, '');

function setCells(line: { body: string }, lineNo: number, fields: Partial<Record<ShapedDeviceField, string>>, indexOf: (f: ShapedDeviceField) => number): void {
  const changes = (Object.entries(fields) as [ShapedDeviceField, string][]).map(([f, v]) => {
    const i = indexOf(f);
    if (i < 0) throw new CellEditError(`ShapedDevices.csv has no "${SHAPED_DEVICES_COLUMNS.find((c) => c.field === f)!.header}" column to change`);
    return [i, v] as const;
  });
  // Right to left, so the spans still to replace keep their offsets.
  for (const [i, value] of changes.sort((a, b) => b[0] - a[0])) {
    const spans = cellSpans(line.body, lineNo);
    while (spans.length <= i) {
      line.body += ',';
      spans.push([line.body.length, line.body.length]);
    }
    const [a, b] = spans[i]!;
    line.body = line.body.slice(0, a) + cellText(value) + line.body.slice(b);
  }
}

/** `text` with `edits` applied (see CsvEdits); every line not named stays byte for byte. */
export function editCsv(text: string, edits: CsvEdits): string {
  const lines = splitLines(text);
  const { headerAt, indexOf, width } = headerColumns(lines);
  const dataLine = (lineNo: number) => {
    const line = lines[lineNo - 1];
    if (!line || lineNo - 1 <= headerAt) throw new CellEditError(`ShapedDevices.csv has no data line ${lineNo}`);
    cellSpans(line.body, lineNo); // refuses a record that continues on the next line
    return line;
  };
  for (const [lineNo, fields] of edits.cells ?? []) setCells(dataLine(lineNo), lineNo, fields, indexOf);
  for (const lineNo of edits.deleteLines ?? []) dataLine(lineNo).body = '\0';
  const eol = lines.find((l) => l.eol !== '')?.eol ?? '\n';
  const kept = lines.filter((l) => l.body !== '\0');
  if ((edits.append ?? []).length > 0 && kept.length > 0 && kept[kept.length - 1]!.eol === '') kept[kept.length - 1]!.eol = eol;
  for (const row of edits.append ?? []) {
    const line = { body: Array(width).fill('').join(','), eol };
    setCells(line, 0, row, indexOf);
    kept.push(line);
  }
  return kept.map((l) => l.body + l.eol).join('');
}

/**
 * `text` with, on each line of `edits` (1-based), the given fields set. The header is the first line
 * that is neither blank nor a `#` comment; a field the header lacks cannot be set (error).
 */
export function setCsvCells(text: string, edits: ReadonlyMap<number, Partial<Record<ShapedDeviceField, string>>>): string {
  return editCsv(text, { cells: edits });
}
