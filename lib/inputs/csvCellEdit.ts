/**
 * Changing a few cells of ShapedDevices.csv in place: only the named cells are rewritten (the new
 * value quoted as every writer quotes, ./csvText.ts); every other byte — the other cells of the row
 * with their own quoting, comments, blank lines, the operator's column order and spelling, line
 * endings — stays as it was. Every edit is then read back with the file's own reader and refused
 * (CellEditError) unless exactly the intended fields changed (see checkEdited).
 */
import type { ShapedDeviceField } from './shapedDevices.ts';
import { forEachCsvRecord, normaliseHeader, readCsvRecords, SHAPED_DEVICES_COLUMNS } from './shapedDevices.ts';
import { csvRowsText } from './csvText.ts';

const headerOf = (f: ShapedDeviceField) => SHAPED_DEVICES_COLUMNS.find((c) => c.field === f)!.header;

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

/** Blanks the reader skips around a field: spaces and tabs (both engines), form feeds (csv-parse's trim). */
const isBlank = (c: string | undefined) => c === ' ' || c === '\t' || c === '\f';

/**
 * Where the text of each cell of one CSV line starts and ends (quotes included), without the blanks
 * around it: the reader (./shapedDevices.ts) skips blanks around a field — before an opening quote
 * too, so `c1, "Doe, Jane", d1` is three cells — and a rewritten cell keeps the operator's blanks.
 * Throws on a quote left open at the end of the line.
 */
function cellSpans(line: string, lineNo: number): [number, number][] {
  const spans: [number, number][] = [];
  let i = 0;
  for (;;) {
    while (i < line.length && isBlank(line[i])) i++;
    const start = i;
    let end: number;
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
      end = i;
      while (i < line.length && line[i] !== ',') i++;
    } else {
      const comma = line.indexOf(',', i);
      i = comma < 0 ? line.length : comma;
      end = i;
      while (end > start && isBlank(line[end - 1])) end--;
    }
    spans.push([start, end]);
    if (i >= line.length) return spans;
    i++; // the comma
  }
}

/** The last physical line (1-based) of the record starting on `lineNo`: later than it when a quoted cell spans lines. */
function recordLastLine(lines: readonly { body: string }[], lineNo: number): number {
  let body = lines[lineNo - 1]!.body;
  for (let n = lineNo; ; n++) {
    try {
      cellSpans(body, lineNo);
      return n;
    } catch (e) {
      if (!(e instanceof CellEditError) || n >= lines.length) throw e;
      body += '\n' + lines[n]!.body;
    }
  }
}

/** What to change in a ShapedDevices.csv, by 1-based physical line. */
export interface CsvEdits {
  cells?: ReadonlyMap<number, Partial<Record<ShapedDeviceField, string>>>;
  /** Data lines to drop. */
  deleteLines?: ReadonlySet<number>;
  /** Data lines to empty: the row is gone, every later line keeps its number. */
  blankLines?: ReadonlySet<number>;
  /**
   * Columns to add at the end of the header (canonical header text). Every data row gets an empty
   * cell for each (at the end of its last line, for a row whose quoted cell spans lines), so a row
   * with a wrong count stays wrong by as much (the reader still reports it).
   */
  addColumns?: readonly ShapedDeviceField[];
  /** Rows to add at the end, in the file's own column order. */
  append?: readonly Partial<Record<ShapedDeviceField, string>>[];
}

export type CsvRecords = ReturnType<typeof readCsvRecords>;

/**
 * The header's columns: the index of each field the file has. The header is found exactly as the
 * reader finds it (./shapedDevices.ts readShapedDevices): the first record with a non-empty field,
 * so comment lines, blank lines and rows of empty cells above it (a blank spreadsheet row, as Excel
 * and LibreOffice save it: `,,,,`) are skipped, and its columns are the reader's own fields.
 */
interface HeaderColumns {
  /** The header record, as the reader read it. */
  record: CsvRecords['records'][number];
  /** 0-based line index of the header. */
  headerAt: number;
  /** The column of a field, -1 when the header lacks it. */
  indexOf: (f: ShapedDeviceField) => number;
  width: number;
}

function headerColumns(records: CsvRecords['records'], added: readonly ShapedDeviceField[] = []): HeaderColumns {
  const record = records.find((r) => r.fields.some((f) => f !== ''));
  if (record === undefined) throw new CellEditError('ShapedDevices.csv has no header line');
  const header = [...record.fields, ...added.map(headerOf)].map(normaliseHeader);
  const indexOf = (field: ShapedDeviceField): number => {
    const col = SHAPED_DEVICES_COLUMNS.find((c) => c.field === field)!;
    return header.findIndex((h) => col.aliases.includes(h));
  };
  return { record, headerAt: record.line - 1, indexOf, width: header.length };
}

/** A cell as every writer quotes it (./csvText.ts); a value nothing would quote is used as it is (no CSV writer started per cell). */
const cellText = (value: string) => (PLAIN_CELL.test(value) ? value : csvRowsText([[value]]).replace(/\n$/, ''));
/** What csvRowsText leaves unquoted: no comma, quote or line break, no leading `#`, no blank at either end. */
const PLAIN_CELL = /^(?![#\s])[^,"\r\n]*(?<!\s)$/;

function setCells(line: { body: string }, lineNo: number, fields: Partial<Record<ShapedDeviceField, string>>, indexOf: (f: ShapedDeviceField) => number): void {
  const changes = (Object.entries(fields) as [ShapedDeviceField, string][]).map(([f, v]) => {
    const i = indexOf(f);
    if (i < 0) throw new CellEditError(`ShapedDevices.csv has no "${headerOf(f)}" column to change`);
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

/**
 * `text` with `edits` applied (see CsvEdits); every line not named stays byte for byte. `read`: the
 * reader's records of `text` when the caller has them already (readCsvRecords(text)).
 */
export function editCsv(text: string, edits: CsvEdits, read?: CsvRecords): string {
  const lines = splitLines(text);
  const before = read ?? readCsvRecords(text);
  const added = edits.addColumns ?? [];
  // The header as it is after the edit (added columns included): where every cell is found.
  const columns = headerColumns(before.records, added);
  const { headerAt, indexOf, width } = columns;
  const dataLine = (lineNo: number) => {
    const line = lines[lineNo - 1];
    if (!line || lineNo - 1 <= headerAt) throw new CellEditError(`ShapedDevices.csv has no data line ${lineNo}`);
    cellSpans(line.body, lineNo); // refuses a record that continues on the next line
    return line;
  };
  if (added.length > 0) {
    const header = lines[headerAt]!;
    cellSpans(header.body, headerAt + 1); // a header continuing on the next line is refused
    header.body += added.map((f) => ',' + cellText(headerOf(f))).join('');
    const blanks = edits.blankLines ?? new Set<number>();
    for (const r of before.records) {
      if (r.line <= columns.record.line || blanks.has(r.line)) continue;
      lines[recordLastLine(lines, r.line) - 1]!.body += ','.repeat(added.length);
    }
  }
  for (const [lineNo, fields] of edits.cells ?? []) setCells(dataLine(lineNo), lineNo, fields, indexOf);
  for (const lineNo of edits.blankLines ?? []) dataLine(lineNo).body = '';
  for (const lineNo of edits.deleteLines ?? []) dataLine(lineNo).body = '\0';
  const eol = lines.find((l) => l.eol !== '')?.eol ?? '\n';
  const kept = lines.filter((l) => l.body !== '\0');
  if ((edits.append ?? []).length > 0 && kept.length > 0 && kept[kept.length - 1]!.eol === '') kept[kept.length - 1]!.eol = eol;
  for (const row of edits.append ?? []) {
    const line = { body: Array(width).fill('').join(','), eol };
    setCells(line, 0, row, indexOf);
    kept.push(line);
  }
  const edited = kept.map((l) => l.body + l.eol).join('');
  checkEdited(before, columns, edited, edits);
  return edited;
}

/**
 * The safety net of every in-place edit: `edited`, read back with the reader ShapedDevices.csv is
 * loaded with (./shapedDevices.ts), must hold the records of the original (`before`, that reader's
 * records of the text edited) in order — the deleted lines left out, every edited field reading back
 * as the value written (trimmed, as the reader trims), every other field exactly as before — and then
 * the appended rows. Columns are found by the reader's own reading of the header (with the added
 * columns), independently of the cell spans the edit used, so a cell written into the wrong column is
 * caught. Throws CellEditError naming the first difference (line and column, never values).
 */
function checkEdited(before: CsvRecords, columns: HeaderColumns, edited: string, edits: CsvEdits): void {
  const refuse = (why: string): never => {
    throw new CellEditError(`ShapedDevices.csv cannot be edited in place (${why})`);
  };
  const { record: header } = columns;
  const headerLineNo = header.line;
  const cells = edits.cells ?? new Map<number, Partial<Record<ShapedDeviceField, string>>>();
  const deleted = edits.deleteLines ?? new Set<number>();
  const blanked = edits.blankLines ?? new Set<number>();
  const starts = new Set(before.records.map((r) => r.line));
  for (const lineNo of [...cells.keys(), ...deleted, ...blanked]) {
    if (lineNo <= headerLineNo || !starts.has(lineNo)) refuse(`line ${lineNo} is not the first line of a data row`);
  }
  const expected = expectedRecords(before, columns, edits, refuse);
  let count = 0;
  let matched = 0;
  const error = forEachCsvRecord(edited, (got, line) => {
    count++;
    const e = expected.next();
    if (e.done) return;
    matched++;
    const { fields, line: want } = e.value;
    const where = `line ${line}`;
    if (want !== undefined && line !== want) refuse(`the row expected on line ${want} reads back on line ${line}`);
    if (got.length !== fields.length) refuse(`${where} reads back with ${got.length} fields instead of ${fields.length}`);
    const col = got.findIndex((f, i) => f !== fields[i]);
    if (col >= 0) {
      const name = header.fields[col] ?? `column ${col + 1}`;
      refuse(`${where}, column "${name}", does not read back as intended`);
    }
  });
  if (before.error?.message !== error?.message) refuse('the edited file does not read back with the CSV syntax of the original');
  let total = matched;
  while (!expected.next().done) total++;
  if (count !== total) refuse(`the edited file reads back with ${count} rows instead of ${total}`);
}

/**
 * What the edited file must read back as, record by record (see checkEdited): the original's records
 * in order — deleted and emptied lines left out, added columns as empty cells on every data row, edited
 * fields as written (trimmed, as the reader trims) — then the appended rows. Made one at a time, so
 * checking a large file keeps no second copy of it.
 */
function* expectedRecords(
  before: CsvRecords,
  columns: HeaderColumns,
  edits: CsvEdits,
  refuse: (why: string) => never,
): Generator<{ fields: readonly string[]; line: number | undefined }> {
  const { indexOf: colOf, width } = columns;
  const added = edits.addColumns ?? [];
  const headerLineNo = columns.record.line;
  const cells = edits.cells;
  const deleted = edits.deleteLines ?? new Set<number>();
  const blanked = edits.blankLines ?? new Set<number>();
  const apply = (fields: string[], set: Partial<Record<ShapedDeviceField, string>>) => {
    for (const [f, v] of Object.entries(set) as [ShapedDeviceField, string][]) {
      const i = colOf(f);
      if (i < 0) refuse(`the header has no "${headerOf(f)}" column`);
      while (fields.length <= i) fields.push('');
      fields[i] = v.trim();
    }
    return fields;
  };
  const widen = (r: CsvRecords['records'][number]): readonly string[] => {
    if (added.length === 0) return r.fields;
    if (r.line === headerLineNo) return [...r.fields, ...added.map(headerOf)];
    return r.line > headerLineNo ? [...r.fields, ...added.map(() => '')] : r.fields;
  };
  // Each deleted line is one whole physical line (editCsv refuses records spanning lines).
  const gone = [...deleted].sort((a, b) => a - b);
  let shift = 0;
  for (const r of before.records) {
    while (shift < gone.length && gone[shift]! < r.line) shift++;
    if (deleted.has(r.line) || blanked.has(r.line)) continue;
    const set = cells?.get(r.line);
    const fields = widen(r);
    yield { fields: set ? apply([...fields], set) : fields, line: r.line - shift };
  }
  for (const row of edits.append ?? []) yield { fields: apply(Array(width).fill(''), row), line: undefined };
}

/**
 * `text` with, on each line of `edits` (1-based), the given fields set. The header is the first record
 * the reader finds with a non-empty field (see headerColumns); a field the header lacks cannot be set
 * (error).
 */
export function setCsvCells(text: string, edits: ReadonlyMap<number, Partial<Record<ShapedDeviceField, string>>>): string {
  return editCsv(text, { cells: edits });
}
