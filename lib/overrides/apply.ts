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
import { CellEditError, editCsv, type CsvEdits, type CsvRecords } from '../inputs/csvCellEdit.ts';
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

type IdField = 'circuitId' | 'deviceId';

const LINE_BREAK = /\r\n|\n|\r/g;
const LINE_BREAK_AT_END = /[\r\n]$/;

/**
 * The operator's rows and what the overrides do to them; written out by `text()`. A row object is
 * made only for a row an override looks at (a 200k-row file has a handful); rows are found through
 * an index of Circuit ID and Device ID to record numbers.
 */
class DeviceTable {
  private readonly col = new Map<ShapedDeviceField, number>();
  private readonly added: ShapedDeviceField[] = [];
  private readonly header: readonly string[];
  private readonly width: number;
  /** Index in `read.records` of the first data record. */
  private readonly first: number;
  /** The operator's rows an override looked at, by record index. */
  private readonly touched = new Map<number, DeviceRow>();
  /** Rows the overrides add, in order. */
  private readonly extra: DeviceRow[] = [];
  /** Operator's rows whose Circuit ID or Device ID an override changed (the index has their old ids). */
  private readonly rekeyed: DeviceRow[] = [];
  /** Record indices of the rows with the Circuit IDs and Device IDs the overrides name (one pass over the rows). */
  private readonly index: Record<IdField, Map<string, number[]>> = { circuitId: new Map(), deviceId: new Map() };

  /** `named`: the Circuit IDs and Device IDs the overrides look for (the rows with those are indexed). */
  constructor(
    private readonly read: CsvRecords,
    private readonly named: Record<IdField, ReadonlySet<string>>,
  ) {
    const records = read.records;
    const at = records.findIndex((r) => r.fields.some((f) => f !== ''));
    const header = records[at]!;
    this.header = header.fields;
    this.width = header.fields.length;
    this.first = at + 1;
    header.fields.forEach((h, i) => {
      const f = ALIAS.get(normaliseHeader(h));
      if (f && !this.col.has(f)) this.col.set(f, i);
    });
    for (const f of ['circuitId', 'deviceId'] as const) {
      const c = this.col.get(f);
      const wanted = named[f];
      if (c === undefined || wanted.size === 0) continue;
      const index = this.index[f];
      for (let i = this.first; i < records.length; i++) {
        const key = records[i]!.fields[c] ?? '';
        if (!wanted.has(key)) continue;
        const had = index.get(key);
        if (had) had.push(i);
        else index.set(key, [i]);
      }
    }
  }

  /** The record indices whose `f` cell is `v` (before any override changed it). */
  private recordsWith(f: IdField, v: string): readonly number[] {
    if (this.named[f].has(v)) return this.index[f].get(v) ?? [];
    // Not named up front: a scan (no override does this today).
    const c = this.col.get(f);
    const out: number[] = [];
    if (c === undefined) return out;
    const records = this.read.records;
    for (let i = this.first; i < records.length; i++) if ((records[i]!.fields[c] ?? '') === v) out.push(i);
    return out;
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
    if ((f === 'circuitId' || f === 'deviceId') && row.line !== undefined && this.get(row, f) !== v && !this.rekeyed.includes(row)) this.rekeyed.push(row);
    row.set[f] = v;
  }

  /** The operator's row of record `i`, or undefined for a row of empty cells (the reader skips those). */
  private rowAt(i: number): DeviceRow | undefined {
    let row = this.touched.get(i);
    if (row) return row;
    const r = this.read.records[i]!;
    if (r.fields.every((x) => x === '')) return undefined;
    row = { line: r.line, fields: r.fields, whole: r.fields.length === this.width, set: {}, removed: false };
    this.touched.set(i, row);
    return row;
  }

  /** The rows not removed whose Circuit ID or Device ID is `v`: the operator's in file order, then added ones. */
  where(f: IdField, v: string): DeviceRow[] {
    const out: DeviceRow[] = [];
    for (const i of this.recordsWith(f, v)) {
      const r = this.rowAt(i);
      if (r && !r.removed && this.get(r, f) === v) out.push(r);
    }
    for (const r of this.rekeyed) if (!r.removed && this.get(r, f) === v && !out.includes(r)) out.push(r);
    out.sort((a, b) => a.line! - b.line!);
    for (const r of this.extra) if (!r.removed && this.get(r, f) === v) out.push(r);
    return out;
  }

  add(entry: string): DeviceRow {
    const row: DeviceRow = { fields: [], whole: true, set: {}, removed: false, entry };
    this.extra.push(row);
    return row;
  }

  /** The effective file in the operator's layout (see the file comment); the row-by-row rewrite when that cannot be. */
  text(source: string, file: string, warnings: string[]): { text: string; layoutKept: boolean; appended: AppendedRow[] } {
    const cells = new Map<number, DeviceRow['set']>();
    const blankLines = new Set<number>();
    for (const r of this.touched.values()) {
      if (r.removed) blankLines.add(r.line!);
      else if (Object.keys(r.set).length > 0) cells.set(r.line!, r.set);
    }
    const addedRows = this.extra.filter((r) => !r.removed);
    const edits: CsvEdits = { cells, blankLines, addColumns: this.added, append: addedRows.map((r) => r.set) };
    let text: string;
    let layoutKept = true;
    try {
      text = editCsv(source, edits, this.read);
    } catch (e) {
      if (!(e instanceof CellEditError)) throw e;
      warnings.push(`${file}: ${e.message}; the effective copy was rewritten row by row, so line numbers in messages about it are the copy's own`);
      text = this.rewritten();
      layoutKept = false;
    }
    return { text, layoutKept, appended: this.appendedLines(text, addedRows) };
  }

  /** Where the added rows are: the last lines of `text`, one each (more for a value with a line break). */
  private appendedLines(text: string, addedRows: DeviceRow[]): AppendedRow[] {
    if (addedRows.length === 0) return [];
    // Line breaks as the reader counts them: CR LF, LF, or a CR alone.
    const breaks = (s: string) => s.match(LINE_BREAK)?.length ?? 0;
    const lines = breaks(text) + (LINE_BREAK_AT_END.test(text) ? 0 : 1);
    const spans = addedRows.map((r) => 1 + Object.values(r.set).reduce((n, v) => n + breaks(v ?? ''), 0));
    let line = lines - spans.reduce((a, b) => a + b, 0) + 1;
    return addedRows.map((r, k) => {
      const at = line;
      line += spans[k]!;
      return { line: at, entry: r.entry!, deviceId: this.get(r, 'deviceId') };
    });
  }

  /** Every row rewritten (comments and blank lines dropped): for a file that cannot be edited in place. */
  private rewritten(): string {
    const colOf = (f: ShapedDeviceField) => this.col.get(f) ?? this.width + this.added.indexOf(f);
    const out: string[][] = [[...this.header, ...this.added.map((f) => HEADER.get(f)!)]];
    const rows: DeviceRow[] = [];
    for (let i = this.first; i < this.read.records.length; i++) {
      const r = this.rowAt(i);
      if (r) rows.push(r);
    }
    for (const r of [...rows, ...this.extra]) {
      if (r.removed) continue;
      // A row of the wrong width stays wrong by as much (the reader still reports it); only whole rows take cells.
      const cells = [...(r.line === undefined ? this.header.map(() => '') : r.fields), ...this.added.map(() => '')];
      if (r.whole) for (const [f, v] of Object.entries(r.set) as [ShapedDeviceField, string][]) cells[colOf(f)] = v;
      out.push(cells);
    }
    return csvRowsText(out);
  }
}

/** The Circuit IDs and Device IDs the device overrides look for. */
function namedIds(o: Overrides): Record<IdField, Set<string>> {
  const named = { circuitId: new Set<string>(), deviceId: new Set<string>() };
  for (const d of o.persistent_devices) named.deviceId.add(d.device_id);
  for (const a of o.circuit_adjustments) {
    if ('circuit_id' in a) named.circuitId.add(a.circuit_id);
    if ('device_id' in a) named.deviceId.add(a.device_id);
  }
  return named;
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
  const read = readCsvRecords(text);
  const { records, error } = read;
  if (error) {
    warnings.push(`${file}:${error.line}: ${error.message} — device overrides not applied; the shaping run reports this file's problems`);
    return unchanged;
  }
  if (!records.some((r) => r.fields.some((f) => f !== ''))) {
    warnings.push(`${file} has no header row — device overrides not applied`);
    return unchanged;
  }
  const t = new DeviceTable(read, namedIds(o));
  if (!t.has('circuitId') || !t.has('deviceId')) {
    warnings.push(`${file}: no "Circuit ID" / "Device ID" column in the header — device overrides not applied`);
    return unchanged;
  }
  /**
   * The live rows where `f` is `v`; rows with the wrong number of cells are reported and left alone.
   * Undefined (after a warning) when there is no such row at all.
   */
  const matching = (f: 'circuitId' | 'deviceId', v: string, where: string): DeviceRow[] | undefined => {
    const found = t.where(f, v);
    if (found.length === 0) {
      warnings.push(`${where}: no ${f === 'circuitId' ? 'circuit' : 'device'} "${v}" in ${file}`);
      return undefined;
    }
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
    const existing = t.where('deviceId', d.device_id)[0];
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
        if (!rows?.length) break;
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
        if (!rows?.length) break;
        for (const r of rows) t.set(r, 'sqm', a.sqm_override ?? '');
        changes.push(`device ${a.device_id}: sqm = ${a.sqm_override || '(default)'}`);
        break;
      }
      case 'remove_circuit':
      case 'remove_device': {
        const [f, v] = a.type === 'remove_circuit' ? (['circuitId', a.circuit_id] as const) : (['deviceId', a.device_id] as const);
        // A row is removed whatever its cell count: it is gone either way.
        const rows = t.where(f, v);
        for (const r of rows) r.removed = true;
        if (rows.length === 0) warnings.push(`${where}: no ${f === 'circuitId' ? 'circuit' : 'device'} "${v}" in ${file}`);
        else changes.push(`${f === 'circuitId' ? 'circuit' : 'device'} ${v} removed (${rows.length} row(s))`);
        break;
      }
      case 'reparent_circuit': {
        const rows = matching('circuitId', a.circuit_id, where);
        if (!rows?.length) break;
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
  const parts: string[] = [];
  let at = 0;
  for (const e of edits.sort((a, b) => a.at - b.at)) {
    parts.push(text.slice(at, e.at), e.text);
    at = e.end;
  }
  parts.push(text.slice(at));
  return parts.join('');
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
  const nodes = [...walk(tree)];
  const setOn = (node: JsonObject, key: string, v: number | boolean) => {
    let m = values.get(node);
    if (!m) values.set(node, (m = new Map()));
    m.set(key, v);
  };
  for (const [i, a] of o.network_adjustments.entries()) {
    const where = `network_adjustments[${i}] (${a.type})`;
    if (a.type === 'adjust_site_speed') {
      let n = 0;
      for (const [name, node] of nodes) {
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
      for (const [name, node] of nodes) {
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
