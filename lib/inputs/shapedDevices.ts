/**
 * ShapedDevices.csv reader: turns the file into raw string rows (one per device) with their physical
 * line numbers. No semantic checks happen here (see validate.ts) — only structure: header, columns,
 * field counts and CSV syntax.
 *
 * Columns are found by header name only (never by position). Supported layouts: the 13-column legacy
 * file, 14 (+ sqm), 15 (+ Parent Node ID, Anchor Node ID) and 16 (15 + sqm), in any column order; unknown
 * extra columns are ignored.
 *
 * Parsing: a strict RFC 4180 fast path handles ordinary files (100k rows in well under 100 ms). Anything
 * it does not fully understand (a stray quote inside an unquoted field, text after a closing quote, lone
 * CR line endings) is handed to csv-parse, which is lenient (relax_quotes) and is the reference
 * behaviour; both produce identical rows for files the fast path accepts.
 */
import type { InputIssue } from '../model.ts';
import { loadOnDemand } from '../util/onDemand.ts';

export type ShapedDeviceField =
  | 'circuitId'
  | 'circuitName'
  | 'deviceId'
  | 'deviceName'
  | 'parentNode'
  | 'parentNodeId'
  | 'anchorNodeId'
  | 'mac'
  | 'ipv4'
  | 'ipv6'
  | 'downloadMin'
  | 'uploadMin'
  | 'downloadMax'
  | 'uploadMax'
  | 'comment'
  | 'sqm';

/** One data row of ShapedDevices.csv: trimmed raw cell text ('' when the column is absent) + its line. */
export interface ShapedDeviceRow {
  /** 1-based physical line where the row starts (comment/blank lines and multi-line fields counted). */
  line: number;
  circuitId: string;
  circuitName: string;
  deviceId: string;
  deviceName: string;
  parentNode: string;
  parentNodeId: string;
  anchorNodeId: string;
  mac: string;
  ipv4: string;
  ipv6: string;
  downloadMin: string;
  uploadMin: string;
  downloadMax: string;
  uploadMax: string;
  comment: string;
  sqm: string;
}

export interface ShapedDevicesColumn {
  field: ShapedDeviceField;
  /** Canonical header text (what writeShapedDevices emits). */
  header: string;
  /** Accepted normalised header spellings (lower-case, alphanumerics only). */
  aliases: readonly string[];
  required: boolean;
}

/** Every known column, in the canonical 16-column order. */
export const SHAPED_DEVICES_COLUMNS: readonly ShapedDevicesColumn[] = [
  { field: 'circuitId', header: 'Circuit ID', aliases: ['circuitid'], required: true },
  { field: 'circuitName', header: 'Circuit Name', aliases: ['circuitname'], required: true },
  { field: 'deviceId', header: 'Device ID', aliases: ['deviceid'], required: true },
  { field: 'deviceName', header: 'Device Name', aliases: ['devicename'], required: true },
  { field: 'parentNode', header: 'Parent Node', aliases: ['parentnode'], required: true },
  { field: 'parentNodeId', header: 'Parent Node ID', aliases: ['parentnodeid'], required: false },
  { field: 'anchorNodeId', header: 'Anchor Node ID', aliases: ['anchornodeid'], required: false },
  { field: 'mac', header: 'MAC', aliases: ['mac'], required: true },
  { field: 'ipv4', header: 'IPv4', aliases: ['ipv4', 'ipv4addresses'], required: true },
  { field: 'ipv6', header: 'IPv6', aliases: ['ipv6', 'ipv6addresses'], required: true },
  { field: 'downloadMin', header: 'Download Min Mbps', aliases: ['downloadmin', 'downloadminmbps'], required: true },
  { field: 'uploadMin', header: 'Upload Min Mbps', aliases: ['uploadmin', 'uploadminmbps'], required: true },
  { field: 'downloadMax', header: 'Download Max Mbps', aliases: ['downloadmax', 'downloadmaxmbps'], required: true },
  { field: 'uploadMax', header: 'Upload Max Mbps', aliases: ['uploadmax', 'uploadmaxmbps'], required: true },
  { field: 'comment', header: 'Comment', aliases: ['comment'], required: false },
  { field: 'sqm', header: 'sqm', aliases: ['sqm'], required: false },
];

const ALIAS_TO_COLUMN = new Map<string, ShapedDevicesColumn>();
for (const c of SHAPED_DEVICES_COLUMNS) for (const a of c.aliases) ALIAS_TO_COLUMN.set(a, c);

const CANONICAL_HEADER = new Map<ShapedDeviceField, string>(SHAPED_DEVICES_COLUMNS.map((c) => [c.field, c.header]));

/** Canonical header text of a field (used when a column is absent from the file). */
export function canonicalHeader(field: ShapedDeviceField): string {
  return CANONICAL_HEADER.get(field) ?? field;
}

export interface ParsedShapedDevices {
  rows: ShapedDeviceRow[];
  issues: InputIssue[];
  /** Header text as written in the file, per field found (issues name columns by their canonical header). */
  columns: Partial<Record<ShapedDeviceField, string>>;
  /** Line of the header row, if one was found. */
  headerLine?: number;
}

export interface ParseShapedDevicesOptions {
  /** `auto` (default): fast path, csv-parse when needed. `csv-parse`: always csv-parse (tests). */
  engine?: 'auto' | 'csv-parse';
}

/**
 * The raw CSV layer alone (no header handling): every non-blank, non-comment record (fields trimmed)
 * with its physical line, as the selected engine reads it. For tests and tools.
 */
export function readCsvRecords(
  text: string,
  options: ParseShapedDevicesOptions = {},
): { records: Array<{ fields: string[]; line: number }>; error?: { line: number; message: string } } {
  const records: Array<{ fields: string[]; line: number }> = [];
  const error = forEachCsvRecord(text, (fields, line) => records.push({ fields: [...fields], line }), options);
  return error ? { records, error } : { records };
}

/**
 * readCsvRecords without keeping the records: `onRecord` gets each record's trimmed fields (an array
 * that is reused: copy what you keep) and its line. Returns the syntax error, if any.
 */
export function forEachCsvRecord(
  text: string,
  onRecord: (fields: readonly string[], line: number) => void,
  options: ParseShapedDevicesOptions = {},
): { line: number; message: string } | undefined {
  const trimmed: string[] = [];
  return scanRecords(
    text,
    (fields, line) => {
      trimmed.length = fields.length;
      for (let i = 0; i < fields.length; i++) trimmed[i] = fields[i]!.trim();
      onRecord(trimmed, line);
    },
    options,
  );
}

/** Runs the selected engine over the whole text (BOM skipped); returns the syntax error, if any. */
function scanRecords(text: string, onRecord: OnRecord, options: ParseShapedDevicesOptions): { line: number; message: string } | undefined {
  const start = text.charCodeAt(0) === 0xfeff ? 1 : 0;
  if (options.engine === 'csv-parse') return scanCsvParse(text, start, 1, onRecord).error;
  const fast = scanFast(text, start, onRecord);
  if (fast.kind === 'error') return { line: fast.line, message: fast.message };
  // Everything before `offset` was plain RFC 4180 (csv-parse reads it identically); continue there.
  if (fast.kind === 'fallback') return scanCsvParse(text, fast.offset, fast.line, onRecord).error;
  return undefined;
}

/** Lower-case, alphanumerics only: `Download Min Mbps` → `downloadminmbps`. */
export function normaliseHeader(h: string): string {
  let out = '';
  const s = h.toLowerCase();
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if ((c >= 97 && c <= 122) || (c >= 48 && c <= 57)) out += s[i];
  }
  return out;
}

type OnRecord = (fields: string[], line: number) => void;

type ScanResult =
  | { kind: 'ok' }
  /** Hand over to csv-parse from `offset` (a record boundary) whose line is `line`. */
  | { kind: 'fallback'; offset: number; line: number }
  | { kind: 'error'; line: number; message: string };

function isBlank(c: number): boolean {
  return c === 32 || c === 9;
}

const LONE_CR_RE = /\r(?!\n)/;

/**
 * Strict RFC 4180 scanner with the same conventions as the csv-parse configuration below: blank and
 * whitespace-only lines skipped, lines whose first non-blank character is `#` are comments, spaces
 * around fields ignored, `""` inside quotes is a quote, LF or CRLF record ends. Anything else
 * (a quote inside an unquoted field, text after a closing quote, a lone CR) → `fallback`.
 */
function scanFast(text: string, start: number, onRecord: OnRecord): ScanResult {
  // Old-Mac CR line ends (alone or mixed in): csv-parse handles those.
  if (LONE_CR_RE.test(text)) return { kind: 'fallback', offset: start, line: 1 };
  const n = text.length;
  /** Reused for every record: onRecord must not keep the array. */
  const scratch: string[] = [];
  let i = start;
  let line = 1;
  while (i < n) {
    let j = i;
    while (j < n && isBlank(text.charCodeAt(j))) j++;
    if (j >= n) break;
    let c = text.charCodeAt(j);
    if (c === 10) {
      i = j + 1;
      line++;
      continue;
    }
    if (c === 13) {
      if (text.charCodeAt(j + 1) !== 10) return { kind: 'fallback', offset: i, line };
      i = j + 2;
      line++;
      continue;
    }
    if (c === 35 /* # */) {
      const nl = text.indexOf('\n', j);
      if (nl < 0) break;
      i = nl + 1;
      line++;
      continue;
    }
    const recLine = line;
    const recStart = i;
    const fields = scratch;
    fields.length = 0;
    for (;;) {
      while (j < n && isBlank(text.charCodeAt(j))) j++;
      c = j < n ? text.charCodeAt(j) : -1;
      if (c === 34 /* " */) {
        const openLine = line;
        j++;
        let value = '';
        let seg = j;
        for (;;) {
          const q = text.indexOf('"', j);
          if (q < 0) {
            // Reported at the row's first line (like every row issue); the message names the quote's line.
            return {
              kind: 'error',
              line: recLine,
              message:
                `a quoted field ${openLine === recLine ? 'in this row' : `of this row (opened on line ${openLine})`} is never closed; ` +
                'add the closing double quote (inside a quoted field write "" for a literal quote)',
            };
          }
          for (let p = text.indexOf('\n', j); p >= 0 && p < q; p = text.indexOf('\n', p + 1)) line++;
          if (text.charCodeAt(q + 1) === 34) {
            value += text.slice(seg, q + 1);
            j = q + 2;
            seg = j;
            continue;
          }
          value += text.slice(seg, q);
          j = q + 1;
          break;
        }
        while (j < n && isBlank(text.charCodeAt(j))) j++;
        fields.push(value);
        c = j < n ? text.charCodeAt(j) : -1;
        if (c !== -1 && c !== 44 && c !== 10 && c !== 13) return { kind: 'fallback', offset: recStart, line: recLine };
      } else {
        const s = j;
        while (j < n) {
          c = text.charCodeAt(j);
          if (c === 44 || c === 10 || c === 13) break;
          if (c === 34) return { kind: 'fallback', offset: recStart, line: recLine };
          j++;
        }
        c = j < n ? c : -1;
        fields.push(text.slice(s, j));
      }
      if (c === 44) {
        j++;
        continue;
      }
      if (c === 10) {
        j++;
        line++;
      } else if (c === 13) {
        if (text.charCodeAt(j + 1) !== 10) return { kind: 'fallback', offset: recStart, line: recLine };
        j += 2;
        line++;
      }
      break;
    }
    onRecord(fields, recLine);
    i = j;
  }
  return { kind: 'ok' };
}

function countLineBreaks(f: string): number {
  let n = 0;
  for (let p = f.indexOf('\n'); p >= 0; p = f.indexOf('\n', p + 1)) n++;
  for (let p = f.indexOf('\r'); p >= 0; p = f.indexOf('\r', p + 1)) if (f.charCodeAt(p + 1) !== 10) n++;
  return n;
}

/**
 * csv-parse based reader for text[start..] whose first line is `firstLine`. Line numbers are derived
 * from byte offsets (csv-parse's own line count drifts on CRLF inside quoted fields).
 */
function scanCsvParse(text: string, start: number, firstLine: number, onRecord: OnRecord): { error?: { line: number; message: string } } {
  // Loaded on first use: ordinary files never need it (its import costs ~10 ms of every start).
  const { parse: csvParse } = loadOnDemand<typeof import('csv-parse/sync')>('csv-parse/sync');
  const buf = Buffer.from(start > 0 ? text.slice(start) : text, 'utf8');
  // Byte offsets of the line breaks: LF (also ending CRLF) and a lone CR.
  const nls: number[] = [];
  for (let p = 0; p < buf.length; p++) {
    const b = buf[p];
    if (b === 10 || (b === 13 && buf[p + 1] !== 10)) nls.push(p);
  }
  let cursor = 0;
  /** 1-based line of byte offset `off`; offsets must be non-decreasing between calls. */
  const lineAt = (off: number): number => {
    while (cursor < nls.length && nls[cursor] < off) cursor++;
    return cursor + firstLine;
  };
  let lastEnd = 0;
  try {
    csvParse(buf, {
      record_delimiter: ['\r\n', '\n', '\r'],
      comment: '#',
      comment_no_infix: true,
      relax_column_count: true,
      relax_quotes: true,
      skip_empty_lines: true,
      trim: true,
      info: true,
      on_record: (r: unknown) => {
        const { record, info } = r as { record: string[]; info: { bytes: number } };
        const endLine = lineAt(Math.max(0, info.bytes - 1));
        let inner = 0;
        for (const f of record) inner += countLineBreaks(f);
        onRecord(record, endLine - inner);
        lastEnd = info.bytes;
        return null;
      },
    });
  } catch (e) {
    // Line of the record that failed: first non-blank, non-comment line after the last good record.
    let off = lastEnd;
    while (off < buf.length) {
      const nl = buf.indexOf(10, off);
      const lineText = buf.subarray(off, nl < 0 ? buf.length : nl).toString('utf8').trim();
      if (lineText !== '' && !lineText.startsWith('#')) break;
      if (nl < 0) break;
      off = nl + 1;
    }
    cursor = 0;
    const line = lineAt(off);
    // csv-parse's own "at line N" counts from where it started and drifts on CRLF; drop it.
    const raw = (e instanceof Error ? e.message : String(e)).replace(/,?\s*at line \d+/g, '');
    return {
      error: {
        line,
        message: `the CSV cannot be read from here on (${raw.replace(/\s+/g, ' ').trim()}); check the quoting of this row (a field containing commas, quotes or line breaks must be enclosed in double quotes, with "" for a literal quote)`,
      },
    };
  }
  return {};
}

/**
 * Parse ShapedDevices.csv text. Returns data rows (raw, trimmed strings) and structural issues:
 * `csv-syntax`, `missing-header`, `duplicate-header`, `field-count`.
 */
export function parseShapedDevices(text: string, file: string, options: ParseShapedDevicesOptions = {}): ParsedShapedDevices {
  const rows: ShapedDeviceRow[] = [];
  const r = readShapedDevices(text, file, (row) => rows.push(row), options);
  return { rows, ...r };
}

/** Column index per field; -1 when the column is absent. */
type ColumnIndex = Record<ShapedDeviceField, number>;

function noColumns(): ColumnIndex {
  return {
    circuitId: -1,
    circuitName: -1,
    deviceId: -1,
    deviceName: -1,
    parentNode: -1,
    parentNodeId: -1,
    anchorNodeId: -1,
    mac: -1,
    ipv4: -1,
    ipv6: -1,
    downloadMin: -1,
    uploadMin: -1,
    downloadMax: -1,
    uploadMax: -1,
    comment: -1,
    sqm: -1,
  };
}

/** The canonical header row, quoted in the header errors. */
const EXAMPLE_HEADER = SHAPED_DEVICES_COLUMNS.map((c) => c.header).join(',');

/** What readShapedDevices knows about the header row; `ok` when every row can be interpreted with it. */
interface HeaderInfo {
  seen: boolean;
  ok: boolean;
  count: number;
  line: number;
  columns: Partial<Record<ShapedDeviceField, string>>;
  ix: ColumnIndex;
}

/** Reads the header row into `header` (columns found by name); duplicate or missing columns are reported. */
function readHeader(header: HeaderInfo, f: string[], line: number, file: string, issues: InputIssue[]): void {
  const { columns, ix } = header;
  header.seen = true;
  header.count = f.length;
  header.line = line;
  let dup = false;
  for (let k = 0; k < f.length; k++) {
    const h = f[k];
    const col = ALIAS_TO_COLUMN.get(normaliseHeader(h));
    if (!col) continue;
    const prev = columns[col.field];
    if (prev !== undefined) {
      dup = true;
      issues.push({
        severity: 'error',
        code: 'duplicate-header',
        file,
        line,
        column: col.header,
        value: h,
        message: `the header has two columns for ${col.header} ("${prev}" and "${h}"); keep only one of them`,
      });
      continue;
    }
    columns[col.field] = h;
    ix[col.field] = k;
  }
  const missing = SHAPED_DEVICES_COLUMNS.filter((c) => c.required && ix[c.field] < 0).map((c) => `"${c.header}"`);
  if (missing.length > 0) {
    issues.push({
      severity: 'error',
      code: 'missing-header',
      file,
      line,
      message:
        `the header row is missing required column${missing.length > 1 ? 's' : ''} ${missing.join(', ')}; ` +
        `the first non-comment line must be the header, e.g. "${EXAMPLE_HEADER}"`,
    });
  }
  header.ok = missing.length === 0 && !dup;
}

/** A data record's cells by field (optional columns absent from the file read as ''). */
function toRow(f: string[], line: number, x: ColumnIndex): ShapedDeviceRow {
  return {
    line,
    circuitId: f[x.circuitId],
    circuitName: f[x.circuitName],
    deviceId: f[x.deviceId],
    deviceName: f[x.deviceName],
    parentNode: f[x.parentNode],
    parentNodeId: x.parentNodeId < 0 ? '' : f[x.parentNodeId],
    anchorNodeId: x.anchorNodeId < 0 ? '' : f[x.anchorNodeId],
    mac: f[x.mac],
    ipv4: f[x.ipv4],
    ipv6: f[x.ipv6],
    downloadMin: f[x.downloadMin],
    uploadMin: f[x.uploadMin],
    downloadMax: f[x.downloadMax],
    uploadMax: f[x.uploadMax],
    comment: x.comment < 0 ? '' : f[x.comment],
    sqm: x.sqm < 0 ? '' : f[x.sqm],
  };
}

/** Trims every field in place; true when all of them are empty. */
function trimFields(f: string[]): boolean {
  let allEmpty = true;
  for (let k = 0; k < f.length; k++) {
    const t = f[k].trim();
    f[k] = t;
    if (t !== '') allEmpty = false;
  }
  return allEmpty;
}

/**
 * Streaming form of parseShapedDevices: calls `onRow` for each data row in file order (rows are not
 * retained here). Returns the structural issues, the columns found and the header line.
 */
export function readShapedDevices(
  text: string,
  file: string,
  onRow: (row: ShapedDeviceRow) => void,
  options: ParseShapedDevicesOptions = {},
): Omit<ParsedShapedDevices, 'rows'> {
  const issues: InputIssue[] = [];
  const header: HeaderInfo = { seen: false, ok: false, count: 0, line: 0, columns: {}, ix: noColumns() };

  const onRecord: OnRecord = (f, line) => {
    if (trimFields(f)) return;
    if (!header.seen) {
      readHeader(header, f, line, file, issues);
      return;
    }
    // Rows cannot be interpreted without a usable header; its own error says what to fix first.
    if (!header.ok) return;
    if (f.length !== header.count) {
      issues.push({
        severity: 'error',
        code: 'field-count',
        file,
        line,
        message:
          `this row has ${f.length} field${f.length === 1 ? '' : 's'} but the header (line ${header.line}) has ${header.count} columns; ` +
          `every row needs exactly one value per header column (add empty fields or quote values containing commas)`,
      });
      return;
    }
    onRow(toRow(f, line, header.ix));
  };

  const syntaxError = scanRecords(text, onRecord, options);

  if (syntaxError) {
    issues.push({ severity: 'error', code: 'csv-syntax', file, line: syntaxError.line, message: syntaxError.message });
  }
  if (!header.seen && !syntaxError) {
    issues.push({
      severity: 'error',
      code: 'missing-header',
      file,
      line: 1,
      message: `the file has no header row; start it with "${EXAMPLE_HEADER}"`,
    });
  }
  return { issues, columns: header.columns, headerLine: header.seen ? header.line : undefined };
}
