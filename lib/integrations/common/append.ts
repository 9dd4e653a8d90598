/**
 * `appendToShapedDevices.csv` (in the directory the integration writes to, normally lqos_directory):
 * rows the operator keeps outside the CRM, added after the integration's own rows on every run
 * (spec §2.5: upstream copies them verbatim, so a header line or a row of another width breaks its
 * import). Here they are read as ShapedDevices.csv rows and written in the integration's 16-column
 * layout, with their cell text unchanged:
 *
 * - a first line that names columns (`Circuit ID`, `Device ID` …, any supported layout and order) is
 *   the file's header and is not copied;
 * - without one, rows are positional in a standard layout chosen by the first row's width: 13
 *   (legacy), 14 (13 + sqm), 15 (+ Parent Node ID, Anchor Node ID, upstream's writer) or 16 (15 + sqm);
 * - `#` comment lines and blank lines are skipped.
 *
 * Problems are reported as `<path>:<line>:<column>: …` with the line of the append file. Checking the
 * rows against the generated ones (clashing Circuit IDs / addresses) happens in ./output.ts.
 */
import { join } from 'node:path';
import type { InputIssue } from '../../model.ts';
import { csvRowsText } from '../../inputs/csvText.ts';
import { normaliseHeader, parseShapedDevices, readCsvRecords, SHAPED_DEVICES_COLUMNS, type ShapedDeviceField, type ShapedDeviceRow } from '../../inputs/shapedDevices.ts';
import { readTextIfExists } from '../../util/atomicFile.ts';
import { IntegrationError } from './errors.ts';

export const APPEND_FILE = 'appendToShapedDevices.csv';

export interface AppendedRows {
  path: string;
  rows: ShapedDeviceRow[];
  /** The rows in the generated file's 16-column layout, one rendered record per row (each ends with \n). */
  rendered: string[];
  /** True when the file had a header line (false: positional). */
  header: boolean;
}

const ALL: ShapedDeviceField[] = SHAPED_DEVICES_COLUMNS.map((c) => c.field);
const LEGACY: ShapedDeviceField[] = ALL.filter((f) => f !== 'parentNodeId' && f !== 'anchorNodeId' && f !== 'sqm');
/** Headerless layouts by row width. */
const LAYOUTS: Record<number, ShapedDeviceField[]> = {
  13: LEGACY,
  14: [...LEGACY, 'sqm'],
  15: ALL.filter((f) => f !== 'sqm'),
  16: ALL,
};
const HEADER_TEXT = new Map(SHAPED_DEVICES_COLUMNS.map((c) => [c.field, c.header]));

/** `<path>:<line>:<column>: <value>: <message>` — where exactly in the append file, then what. */
export function formatAppendIssue(i: InputIssue): string {
  let s = `${i.severity}: ${i.file}`;
  if (i.line !== undefined) s += `:${i.line}`;
  if (i.column !== undefined) s += `:${i.column}`;
  s += ':';
  if (i.value !== undefined && i.value !== '') s += ` value "${i.value.length > 80 ? `${i.value.slice(0, 77)}...` : i.value}":`;
  return `${s} ${i.message}`;
}

function fail(crm: string, path: string, lines: string[]): never {
  const shown = lines.slice(0, 20).join('\n  ');
  const more = lines.length > 20 ? `\n  … and ${lines.length - 20} more` : '';
  throw new IntegrationError(`${crm}: ${path} has ${lines.length} problem${lines.length === 1 ? '' : 's'}; nothing was written — fix the file (or move it away) and run again:\n  ${shown}${more}`, {
    crm,
    details: lines,
  });
}

/** Whether a record is a header line: it names the Circuit ID or Device ID column. */
function isHeader(fields: string[]): boolean {
  return fields.some((f) => {
    const n = normaliseHeader(f);
    return n === 'circuitid' || n === 'deviceid';
  });
}

/** Renders one row in the canonical 16-column order, quoting as the generated file does. */
function render(r: ShapedDeviceRow): string {
  return csvRowsText([ALL.map((f) => r[f])]);
}

/**
 * Reads `<dir>/appendToShapedDevices.csv`; undefined when there is none. Structural problems (CSV
 * syntax, a header without the required columns, a row of the wrong width) throw an IntegrationError
 * naming the file and line.
 */
export function readAppendFile(dir: string, crm: string): AppendedRows | undefined {
  const path = join(dir, APPEND_FILE);
  let text: string | undefined;
  try {
    text = readTextIfExists(path);
  } catch (e) {
    throw new IntegrationError(`${crm}: cannot read ${path}: ${(e as Error).message}; nothing was written — fix its permissions or move it away`, { crm, cause: e });
  }
  if (text === undefined) return undefined;
  if (text.charCodeAt(0) === 0xfeff) text = text.slice(1);
  const { records, error } = readCsvRecords(text);
  if (error) fail(crm, path, [`error: ${path}:${error.line}: ${error.message}`]);
  const first = records.find((r) => r.fields.some((f) => f !== ''));
  if (!first) return { path, rows: [], rendered: [], header: false };

  const header = isHeader(first.fields);
  let parseText = text;
  let shift = 0;
  if (!header) {
    const layout = LAYOUTS[first.fields.length];
    if (!layout) {
      fail(crm, path, [
        `error: ${path}:${first.line}: this row has ${first.fields.length} fields; without a header line every row needs 13, 14, 15 or 16 fields in the standard ShapedDevices.csv column order — or start the file with a header line such as "${ALL.map((f) => HEADER_TEXT.get(f)).join(',')}"`,
      ]);
    }
    // A header for the chosen layout on a line of its own before the file: lines shift by one.
    parseText = `${layout.map((f) => HEADER_TEXT.get(f)).join(',')}\n${text}`;
    shift = 1;
  }
  const parsed = parseShapedDevices(parseText, path);
  const unshift = (line: number | undefined) => (line === undefined ? undefined : line - shift);
  const structural = parsed.issues
    .filter((i) => i.severity === 'error')
    .map((i) =>
      !header && i.code === 'field-count'
        ? { ...i, message: `this row has a different number of fields than the first row (line ${first.line}, ${first.fields.length} fields); without a header line every row needs the same layout` }
        : i,
    )
    .map((i) => formatAppendIssue({ ...i, line: unshift(i.line) }));
  if (structural.length > 0) fail(crm, path, structural);
  const rows = parsed.rows.map((r) => ({ ...r, line: r.line - shift }));
  return { path, rows, rendered: rows.map(render), header };
}
