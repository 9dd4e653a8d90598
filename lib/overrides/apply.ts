/**
 * Applying `lqos_overrides.json` to the inputs: source ShapedDevices.csv + network.json text in,
 * effective text out. Pure (no files). The operator's files are never rewritten; the scheduler writes
 * the result to `<state_directory>/shaping/effective/` (see lib/scheduler/README.md).
 *
 * Order: persistent devices (upsert by Device ID; new ones appended), then circuit adjustments in
 * list order (later entries win), then network adjustments in list order.
 *
 * The effective files keep the operator's lines: every row, comment and blank line stays on the
 * line number it has in the operator's file (a changed cell is rewritten in place, a removed row
 * becomes an empty line, a persistent device new to the file is added after the last line), and
 * network.json changes stay on the line of the node they change. So a message about line N of the
 * effective inputs is about line N of the operator's file, and nothing is reformatted that could hide
 * a problem the operator's own file has (a row with a missing cell, a duplicate key). Only a change to
 * a row whose quoted cell spans lines makes ShapedDevices.csv be rewritten row by row
 * (`devicesLayoutKept: false`, with a warning).
 *
 * Unlike upstream's DIY mode (spec §1.6, §6.28) every column is found by its header name, so the 13-,
 * 14-, 15- and 16-column layouts all work; a column an override needs (sqm, Parent Node ID …) is
 * added to the header when the file lacks it. Numbers are written as given (80, not 80.0). An
 * adjustment that matches nothing is reported as a warning, not an error.
 */
import { CellEditError, editCsv, type CsvEdits } from '../inputs/csvCellEdit.ts';
import { parseJsonWithLines, type JsonValue } from '../inputs/network.ts';
import { normaliseHeader, readCsvRecords, SHAPED_DEVICES_COLUMNS, type ShapedDeviceField } from '../inputs/shapedDevices.ts';
import type { Overrides, PersistentDevice } from './schema.ts';
import { csvRowsText } from '../inputs/csvText.ts';

/** A row the overrides added after the operator's last line. */
export interface AppendedRow {
  /** Its line in the effective ShapedDevices.csv. */
  line: number;
  /** The overrides entry it comes from, e.g. `persistent_devices[2]`. */
  entry: string;
  deviceId: string;
}

export interface EffectiveInputs {
  devicesText: string;
  networkText: string;
  /** What was changed, one line each (for the log). */
  changes: string[];
  /** Entries that matched nothing or could not be applied. */
  warnings: string[];
  /**
   * True when every line of the operator's ShapedDevices.csv is on the same line of `devicesText`
   * (see the file comment); false when it had to be rewritten row by row.
   */
  devicesLayoutKept: boolean;
  /** Rows added after the operator's last line (persistent devices new to the file). */
  appended: AppendedRow[];
}

const ALIAS = new Map<string, ShapedDeviceField>();
for (const c of SHAPED_DEVICES_COLUMNS) for (const a of c.aliases) ALIAS.set(a, c.field);
const HEADER = new Map<ShapedDeviceField, string>(SHAPED_DEVICES_COLUMNS.map((c) => [c.field, c.header]));

function num(n: number): string {
  return String(n);
}

function ipText(entries: PersistentDevice['ipv4']): string {
  return entries.map((e) => (typeof e === 'string' ? e : `${e[0]}/${e[1]}`)).join(', ');
}

/** One device row: an operator's row (`line`, its fields as read) or one an override adds. */
interface DeviceRow {
  /** The operator's line; undefined for a row an override adds. */
  line?: number;
  fields: readonly string[];
  /** One value per header column (rows with another count are left for the reader to report). */
  whole: boolean;
  /** The cells the overrides set. */
  set: Partial<Record<ShapedDeviceField, string>>;
  removed: boolean;
  /** For an added row: the overrides entry. */
  entry?: string;
}

/** The operator's rows and what the overrides do to them; written out by `text()`. */
class DeviceTable {
  readonly rows: DeviceRow[] = [];
  private readonly col = new Map<ShapedDeviceField, number>();
  private readonly added: ShapedDeviceField[] = [];
  private readonly header: readonly string[];
  private readonly width: number;

  constructor(records: ReadonlyArray<{ fields: string[]; line: number }>) {
    const at = records.findIndex((r) => r.fields.some((f) => f !== ''));
    const header = records[at]!;
    this.header = header.fields;
    this.width = header.fields.length;
    header.fields.forEach((h, i) => {
      const f = ALIAS.get(normaliseHeader(h));
      if (f && !this.col.has(f)) this.col.set(f, i);
    });
    for (const r of records.slice(at + 1)) {
      // Rows of empty cells are skipped by the reader, and so here.
      if (r.fields.every((f) => f === '')) continue;
      this.rows.push({ line: r.line, fields: r.fields, whole: r.fields.length === this.width, set: {}, removed: false });
    }
  }

  has(f: ShapedDeviceField): boolean {
    return this.col.has(f) || this.added.includes(f);
  }

  get(row: DeviceRow, f: ShapedDeviceField): string {
    if (Object.hasOwn(row.set, f)) return row.set[f]!;
    const i = this.col.get(f);
    return i === undefined ? '' : (row.fields[i] ?? '');
  }

  /** Sets a cell, adding the column to the header when the file lacks it. */
  set(row: DeviceRow, f: ShapedDeviceField, v: string): void {
    if (!this.has(f)) this.added.push(f);
    row.set[f] = v;
  }

  live(): DeviceRow[] {
    return this.rows.filter((r) => !r.removed);
  }

  add(entry: string): DeviceRow {
    const row: DeviceRow = { fields: [], whole: true, set: {}, removed: false, entry };
    this.rows.push(row);
    return row;
  }

  /** The effective file in the operator's layout (see the file comment); the row-by-row rewrite when that cannot be. */
  text(source: string, file: string, warnings: string[]): { text: string; layoutKept: boolean; appended: AppendedRow[] } {
    const cells = new Map<number, DeviceRow['set']>();
    const blankLines = new Set<number>();
    const addedRows: DeviceRow[] = [];
    for (const r of this.rows) {
      if (r.line === undefined) {
        if (!r.removed) addedRows.push(r);
      } else if (r.removed) blankLines.add(r.line);
      else if (Object.keys(r.set).length > 0) cells.set(r.line, r.set);
    }
    const edits: CsvEdits = { cells, blankLines, addColumns: this.added, append: addedRows.map((r) => r.set) };
    let text: string;
    let layoutKept = true;
    try {
      text = editCsv(source, edits);
    } catch (e) {
      if (!(e instanceof CellEditError)) throw e;
      warnings.push(`${file}: ${e.message}; the effective copy was rewritten row by row, so line numbers in messages about it are the copy's own`);
      text = this.rewritten();
      layoutKept = false;
    }
    const records = addedRows.length > 0 ? readCsvRecords(text).records.slice(-addedRows.length) : [];
    const appended = addedRows.map((r, i) => ({ line: records[i]!.line, entry: r.entry!, deviceId: this.get(r, 'deviceId') }));
    return { text, layoutKept, appended };
  }

  /** Every row rewritten (comments and blank lines dropped): for a file that cannot be edited in place. */
  private rewritten(): string {
    const columns = [...this.header.map((_, i) => i), ...this.added.map((_, k) => this.width + k)];
    const fieldAt = new Map<number, ShapedDeviceField>();
    for (const [f, i] of this.col) fieldAt.set(i, f);
    this.added.forEach((f, k) => fieldAt.set(this.width + k, f));
    const out: string[][] = [[...this.header, ...this.added.map((f) => HEADER.get(f)!)]];
    for (const r of this.live()) {
      if (!r.whole) {
        out.push([...r.fields]);
        continue;
      }
      out.push(columns.map((i) => {
        const f = fieldAt.get(i);
        return f !== undefined && Object.hasOwn(r.set, f) ? r.set[f]! : (r.fields[i] ?? '');
      }));
    }
    return csvRowsText(out);
  }
}

function touchesDevices(o: Overrides): boolean {
  return o.persistent_devices.length > 0 || o.circuit_adjustments.length > 0;
}

/** `line N of FILE` for an operator's row; `the row persistent_devices[i] adds` for an added one. */
function rowName(r: DeviceRow, file: string): string {
  return r.line === undefined ? `the row ${r.entry} adds` : `line ${r.line} of ${file}`;
}

interface DevicesResult {
  text: string;
  layoutKept: boolean;
  appended: AppendedRow[];
}

function applyToDevices(text: string, o: Overrides, file: string, changes: string[], warnings: string[]): DevicesResult {
  const unchanged = { text, layoutKept: true, appended: [] };
  if (!touchesDevices(o)) return unchanged;
  const { records, error } = readCsvRecords(text);
  if (error) {
    warnings.push(`${file}:${error.line}: ${error.message} — device overrides not applied; the shaping run reports this file's problems`);
    return unchanged;
  }
  if (!records.some((r) => r.fields.some((f) => f !== ''))) {
    warnings.push(`${file} has no header row — device overrides not applied`);
    return unchanged;
  }
  const t = new DeviceTable(records);
  if (!t.has('circuitId') || !t.has('deviceId')) {
    warnings.push(`${file}: no "Circuit ID" / "Device ID" column in the header — device overrides not applied`);
    return unchanged;
  }
  /** The live rows where `f` is `v`; rows with the wrong number of cells are reported and left alone. */
  const matching = (f: ShapedDeviceField, v: string, where: string): DeviceRow[] => {
    const found = t.live().filter((r) => t.get(r, f) === v);
    for (const r of found.filter((x) => !x.whole)) {
      warnings.push(`${where}: ${rowName(r, file)} has ${r.fields.length} cells, not one per header column, so it is left as it is (the shaping run reports it)`);
    }
    return found.filter((r) => r.whole);
  };

  // 1. Persistent devices: replace the row with the same Device ID, else append.
  for (const [i, d] of o.persistent_devices.entries()) {
    const cells: [ShapedDeviceField, string][] = [
      ['circuitId', d.circuit_id],
      ['circuitName', d.circuit_name],
      ['deviceId', d.device_id],
      ['deviceName', d.device_name],
      ['parentNode', d.parent_node],
      ['mac', d.mac],
      ['ipv4', ipText(d.ipv4)],
      ['ipv6', ipText(d.ipv6)],
      ['downloadMin', num(d.download_min_mbps)],
      ['uploadMin', num(d.upload_min_mbps)],
      ['downloadMax', num(d.download_max_mbps)],
      ['uploadMax', num(d.upload_max_mbps)],
      ['comment', d.comment],
    ];
    if (d.parent_node_id || t.has('parentNodeId')) cells.push(['parentNodeId', d.parent_node_id ?? '']);
    if (d.anchor_node_id || t.has('anchorNodeId')) cells.push(['anchorNodeId', d.anchor_node_id ?? '']);
    if (d.sqm_override || t.has('sqm')) cells.push(['sqm', d.sqm_override ?? '']);
    const existing = t.live().find((r) => t.get(r, 'deviceId') === d.device_id);
    let how: string;
    let row: DeviceRow;
    if (existing?.whole) {
      row = existing;
      how = `replaces ${rowName(existing, file)}`;
    } else {
      // A row with the wrong number of cells cannot take the device's cells: the device replaces it as a new row.
      if (existing) existing.removed = true;
      row = t.add(`persistent_devices[${i}]`);
      how = existing ? `replaces ${rowName(existing, file)} (which has ${existing.fields.length} cells, not one per header column) with a row after the last line` : 'added after the last line';
    }
    for (const [f, v] of cells) t.set(row, f, v);
    changes.push(`persistent device ${d.device_id} (circuit ${d.circuit_id}) ${how}`);
  }

  // 2. Circuit adjustments, in order.
  for (const [i, a] of o.circuit_adjustments.entries()) {
    const where = `circuit_adjustments[${i}] (${a.type})`;
    switch (a.type) {
      case 'circuit_adjust_speed':
      case 'device_adjust_speed': {
        const key = a.type === 'circuit_adjust_speed' ? (['circuitId', a.circuit_id] as const) : (['deviceId', a.device_id] as const);
        const rows = matching(key[0], key[1], where);
        if (rows.length === 0) {
          warnings.push(`${where}: no ${key[0] === 'circuitId' ? 'circuit' : 'device'} "${key[1]}" in ${file}`);
          break;
        }
        const set: [ShapedDeviceField, number | null | undefined][] = [
          ['downloadMin', a.min_download_bandwidth],
          ['uploadMin', a.min_upload_bandwidth],
          ['downloadMax', a.max_download_bandwidth],
          ['uploadMax', a.max_upload_bandwidth],
        ];
        for (const r of rows) for (const [f, v] of set) if (v !== null && v !== undefined) t.set(r, f, num(v));
        const what = set.filter(([, v]) => v !== null && v !== undefined).map(([f, v]) => `${HEADER.get(f)} = ${v}`);
        changes.push(`${key[0] === 'circuitId' ? 'circuit' : 'device'} ${key[1]}: ${what.join(', ') || 'no rate given'} (${rows.length} row(s))`);
        break;
      }
      case 'device_adjust_sqm': {
        const rows = matching('deviceId', a.device_id, where);
        if (rows.length === 0) {
          warnings.push(`${where}: no device "${a.device_id}" in ${file}`);
          break;
        }
        for (const r of rows) t.set(r, 'sqm', a.sqm_override ?? '');
        changes.push(`device ${a.device_id}: sqm = ${a.sqm_override || '(default)'}`);
        break;
      }
      case 'remove_circuit':
      case 'remove_device': {
        const [f, v] = a.type === 'remove_circuit' ? (['circuitId', a.circuit_id] as const) : (['deviceId', a.device_id] as const);
        // A row is removed whatever its cell count: it is gone either way.
        const rows = t.live().filter((r) => t.get(r, f) === v);
        for (const r of rows) r.removed = true;
        if (rows.length === 0) warnings.push(`${where}: no ${f === 'circuitId' ? 'circuit' : 'device'} "${v}" in ${file}`);
        else changes.push(`${f === 'circuitId' ? 'circuit' : 'device'} ${v} removed (${rows.length} row(s))`);
        break;
      }
      case 'reparent_circuit': {
        const rows = matching('circuitId', a.circuit_id, where);
        if (rows.length === 0) {
          warnings.push(`${where}: no circuit "${a.circuit_id}" in ${file}`);
          break;
        }
        for (const r of rows) {
          t.set(r, 'parentNode', a.parent_node);
          if (t.has('parentNodeId')) t.set(r, 'parentNodeId', '');
        }
        changes.push(`circuit ${a.circuit_id}: parent node = ${a.parent_node}`);
        break;
      }
    }
  }
  return t.text(text, file, warnings);
}

type JsonObject = Extract<JsonValue, { kind: 'object' }>;

/** Every (name, node) in the tree, depth first; duplicate names each appear (the validator reports them). */
function* walk(tree: JsonObject): Generator<[string, JsonObject]> {
  for (const { key, value } of tree.entries) {
    if (value.kind !== 'object') continue;
    yield [key, value];
    for (const e of value.entries) if (e.key === 'children' && e.value.kind === 'object') yield* walk(e.value);
  }
}

const stringEntry = (node: JsonObject, key: string): string | undefined => {
  const e = node.entries.findLast((x) => x.key === key);
  return e?.value.kind === 'string' ? e.value.value : undefined;
};

/**
 * `text` with `values` set on each node, edited in place: an existing value is replaced where it is
 * (every occurrence of a duplicated key), a missing key is added on the line of the node's last entry
 * with a plain value (else its last entry). No line of the file moves.
 */
function setInPlace(text: string, values: ReadonlyMap<JsonObject, ReadonlyMap<string, number | boolean>>): string {
  const edits: { at: number; end: number; text: string }[] = [];
  for (const [node, set] of values) {
    const missing: string[] = [];
    for (const [key, v] of set) {
      const found = node.entries.filter((e) => e.key === key);
      for (const e of found) edits.push({ at: e.value.start, end: e.value.end, text: JSON.stringify(v) });
      if (found.length === 0) missing.push(`${JSON.stringify(key)}: ${JSON.stringify(v)}`);
    }
    if (missing.length === 0) continue;
    // After the last entry with a plain value (the rates, usually), so the key lands beside them.
    const last = node.entries.findLast((x) => x.value.kind !== 'object' && x.value.kind !== 'array') ?? node.entries.at(-1);
    const at = last ? last.value.end : node.start + 1;
    edits.push({ at, end: at, text: (last ? ', ' : ' ') + missing.join(', ') + (last ? '' : ' ') });
  }
  let out = text;
  for (const e of edits.sort((a, b) => b.at - a.at)) out = out.slice(0, e.at) + e.text + out.slice(e.end);
  return out;
}

function applyToNetwork(text: string, o: Overrides, file: string, changes: string[], warnings: string[]): string {
  const adj = o.network_adjustments.filter((a) => a.type !== 'topology_parent_override');
  if (adj.length === 0) return text;
  let tree: JsonValue;
  try {
    tree = parseJsonWithLines(text);
  } catch (e) {
    warnings.push(`${file} is not valid JSON (${(e as Error).message}) — network adjustments not applied; the shaping run reports this file's problems`);
    return text;
  }
  if (tree.kind !== 'object') {
    warnings.push(`${file} is not a JSON object — network adjustments not applied`);
    return text;
  }
  // Later adjustments win: the values are gathered per node first, then written once.
  const values = new Map<JsonObject, Map<string, number | boolean>>();
  const setOn = (node: JsonObject, key: string, v: number | boolean) => {
    let m = values.get(node);
    if (!m) values.set(node, (m = new Map()));
    m.set(key, v);
  };
  for (const [i, a] of o.network_adjustments.entries()) {
    const where = `network_adjustments[${i}] (${a.type})`;
    if (a.type === 'adjust_site_speed') {
      let n = 0;
      for (const [name, node] of walk(tree)) {
        const match = a.node_id ? stringEntry(node, 'id') === a.node_id : name === a.site_name;
        if (!match) continue;
        n++;
        if (a.download_bandwidth_mbps != null) setOn(node, 'downloadBandwidthMbps', a.download_bandwidth_mbps);
        if (a.upload_bandwidth_mbps != null) setOn(node, 'uploadBandwidthMbps', a.upload_bandwidth_mbps);
      }
      const label = a.node_id ? `node id "${a.node_id}"` : `node "${a.site_name}"`;
      if (n === 0) warnings.push(`${where}: no ${label} in ${file}`);
      else changes.push(`${label}: download ${a.download_bandwidth_mbps ?? '(unchanged)'} / upload ${a.upload_bandwidth_mbps ?? '(unchanged)'} Mbps`);
    } else if (a.type === 'set_node_virtual') {
      let n = 0;
      for (const [name, node] of walk(tree)) {
        if (name !== a.node_name) continue;
        n++;
        setOn(node, 'virtual', a.virtual);
      }
      if (n === 0) warnings.push(`${where}: no node "${a.node_name}" in ${file}`);
      else changes.push(`node "${a.node_name}": virtual = ${a.virtual}`);
    }
  }
  return setInPlace(text, values);
}

/**
 * Effective inputs = source inputs + overrides. Files that no override touches come back
 * byte-identical. `files` only label messages.
 */
export function applyOverrides(
  source: { devicesText: string; networkText: string },
  o: Overrides,
  files: { devices: string; network: string } = { devices: 'ShapedDevices.csv', network: 'network.json' },
): EffectiveInputs {
  const changes: string[] = [];
  const warnings: string[] = [];
  const devices = applyToDevices(source.devicesText, o, files.devices, changes, warnings);
  const networkText = applyToNetwork(source.networkText, o, files.network, changes, warnings);
  return { devicesText: devices.text, networkText, changes, warnings, devicesLayoutKept: devices.layoutKept, appended: devices.appended };
}
