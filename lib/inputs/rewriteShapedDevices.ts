/**
 * A ShapedDevices.csv saved from the web editor, written the way the operator wrote it: rows whose
 * circuit/device is unchanged stay byte for byte, changed cells are rewritten in place, removed
 * devices lose their line, new ones are appended in the file's own column order; comments, blank
 * lines, column order and spelling, quoting of untouched cells and line endings are kept.
 * Returns undefined when that is not possible (a value for a column the file does not have, a
 * duplicated circuit/device pair, a record spanning lines, an edit that does not read back exactly as
 * intended — ./csvCellEdit.ts checks every edit); the caller then writes the whole file.
 */
import type { Circuit } from '../model.ts';
import { CellEditError, editCsv } from './csvCellEdit.ts';
import { canonicalHeader, parseShapedDevices, type ShapedDeviceField, type ShapedDeviceRow } from './shapedDevices.ts';
import { deviceRowFields } from './writeShapedDevices.ts';

type Fields = Record<ShapedDeviceField, string>;

const list = (s: string) =>
  s
    .split(/[\s,]+/)
    .filter(Boolean)
    .map((x) => x.toLowerCase().replace(/\/(32|128)$/, ''))
    .sort()
    .join(' ');

/** Whether two cell texts mean the same thing (so the operator's spelling is kept). */
function sameCell(field: ShapedDeviceField, a: string, b: string): boolean {
  if (a === b) return true;
  switch (field) {
    case 'ipv4':
    case 'ipv6':
      return list(a) === list(b);
    case 'downloadMin':
    case 'uploadMin':
    case 'downloadMax':
    case 'uploadMax':
      return a.trim() !== '' && b.trim() !== '' && Number(a) === Number(b);
    case 'mac':
    case 'sqm':
      return a.trim().toLowerCase() === b.trim().toLowerCase();
    default:
      return a.trim() === b.trim();
  }
}

const keyOf = (circuitId: string, deviceId: string) => `${circuitId}\u0000${deviceId}`;

export function rewriteShapedDevices(oldText: string, circuits: readonly Circuit[]): string | undefined {
  const r = rewriteInOperatorsLayout(oldText, circuits);
  return 'text' in r ? r.text : undefined;
}

/**
 * rewriteShapedDevices, saying why when the operator's layout cannot be kept. `unchanged(c)`: the
 * circuit reads exactly as it does from `oldText`, so none of its rows is touched (its rows may
 * disagree among themselves, e.g. two spellings of its name: the reader takes the first, and
 * comparing every row with that one would rewrite the others).
 */
export function rewriteInOperatorsLayout(oldText: string, circuits: readonly Circuit[], unchanged: (c: Circuit) => boolean = () => false): { text: string } | { reason: string } {
  const old = parseShapedDevices(oldText, 'ShapedDevices.csv');
  if (old.headerLine === undefined) return { reason: 'the current file has no header row' };
  if (old.issues.some((i) => i.severity === 'error')) return { reason: 'the current file cannot be read as CSV (syntax, header or field count errors)' };
  const has = (f: ShapedDeviceField) => old.columns[f] !== undefined;
  const byKey = new Map<string, ShapedDeviceRow>();
  for (const r of old.rows) {
    const k = keyOf(r.circuitId, r.deviceId);
    if (byKey.has(k)) return { reason: `the current file has circuit "${r.circuitId}" device "${r.deviceId}" twice (line ${r.line})` };
    byKey.set(k, r);
  }
  const cells = new Map<number, Partial<Fields>>();
  const append: Partial<Fields>[] = [];
  const seen = new Set<string>();
  for (const c of circuits) {
    const untouched = unchanged(c);
    for (const d of c.devices.length > 0 ? c.devices : [null]) {
      const fields = deviceRowFields(c, d);
      const k = keyOf(fields.circuitId, fields.deviceId);
      if (seen.has(k)) return { reason: `circuit "${fields.circuitId}" device "${fields.deviceId}" is listed twice` };
      seen.add(k);
      const row = byKey.get(k);
      if (row && untouched) continue;
      const entries = Object.entries(fields) as [ShapedDeviceField, string][];
      const missing = entries.find(([f, v]) => !has(f) && v !== '');
      if (missing) return { reason: `a value for the "${canonicalHeader(missing[0])}" column, which the current file does not have` };
      if (!row) {
        append.push(Object.fromEntries(entries.filter(([f, v]) => has(f) && v !== '')));
        continue;
      }
      const changed = entries.filter(([f, v]) => has(f) && !sameCell(f, row[f], v));
      if (changed.length > 0) cells.set(row.line, Object.fromEntries(changed));
    }
  }
  const deleteLines = new Set(old.rows.filter((r) => !seen.has(keyOf(r.circuitId, r.deviceId))).map((r) => r.line));
  try {
    return { text: editCsv(oldText, { cells, deleteLines, append }) };
  } catch (err) {
    if (err instanceof CellEditError) return { reason: err.message };
    throw err;
  }
}
