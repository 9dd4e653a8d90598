/**
 * Applying `lqos_overrides.json` to the inputs: source ShapedDevices.csv + network.json text in,
 * effective text out. Pure (no files). The operator's files are never rewritten; the scheduler writes
 * the result to `<state_directory>/shaping/effective/` (see lib/scheduler/README.md).
 *
 * Order: persistent devices (upsert by Device ID; new ones appended), then circuit adjustments in
 * list order (later entries win), then network adjustments in list order.
 *
 * Unlike upstream's DIY mode (spec §1.6, §6.28) every column is found by its header name, so the 13-,
 * 14-, 15- and 16-column layouts all round-trip; a column an override needs (sqm, Parent Node ID …) is
 * appended to the header when the file lacks it. Numbers are written as given (80, not 80.0). An
 * adjustment that matches nothing is reported as a warning, not an error.
 */
import { normaliseHeader, readCsvRecords, SHAPED_DEVICES_COLUMNS, type ShapedDeviceField } from '../inputs/shapedDevices.ts';
import type { Overrides, PersistentDevice } from './schema.ts';
import { csvRowsText } from '../inputs/csvText.ts';

export interface EffectiveInputs {
  devicesText: string;
  networkText: string;
  /** What was changed, one line each (for the log). */
  changes: string[];
  /** Entries that matched nothing or could not be applied. */
  warnings: string[];
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

class CsvTable {
  header: string[];
  rows: string[][];
  private col = new Map<ShapedDeviceField, number>();

  constructor(records: string[][]) {
    this.header = [...records[0]];
    this.header.forEach((h, i) => {
      const f = ALIAS.get(normaliseHeader(h));
      if (f && !this.col.has(f)) this.col.set(f, i);
    });
    this.rows = records.slice(1).map((r) => {
      const row = [...r];
      while (row.length < this.header.length) row.push('');
      return row;
    });
  }

  has(f: ShapedDeviceField): boolean {
    return this.col.has(f);
  }

  /** Column index of `f`, appending the column (canonical header, empty cells) when absent. */
  ensure(f: ShapedDeviceField): number {
    let i = this.col.get(f);
    if (i === undefined) {
      i = this.header.length;
      this.header.push(HEADER.get(f)!);
      for (const r of this.rows) r.push('');
      this.col.set(f, i);
    }
    return i;
  }

  get(row: string[], f: ShapedDeviceField): string {
    const i = this.col.get(f);
    return i === undefined ? '' : (row[i] ?? '').trim();
  }

  set(row: string[], f: ShapedDeviceField, v: string): void {
    row[this.ensure(f)] = v;
  }

  text(): string {
    return csvRowsText([this.header, ...this.rows]);
  }
}

function touchesDevices(o: Overrides): boolean {
  return o.persistent_devices.length > 0 || o.circuit_adjustments.length > 0;
}

function applyToDevices(text: string, o: Overrides, file: string, changes: string[], warnings: string[]): string {
  if (!touchesDevices(o)) return text;
  const { records, error } = readCsvRecords(text);
  if (error) {
    warnings.push(`${file}:${error.line}: ${error.message} — device overrides not applied; the shaping run reports this file's problems`);
    return text;
  }
  if (records.length === 0) {
    warnings.push(`${file} has no header row — device overrides not applied`);
    return text;
  }
  const t = new CsvTable(records.map((r) => r.fields));
  if (!t.has('circuitId') || !t.has('deviceId')) {
    warnings.push(`${file}: no "Circuit ID" / "Device ID" column in the header — device overrides not applied`);
    return text;
  }

  // 1. Persistent devices: replace the row with the same Device ID, else append.
  for (const d of o.persistent_devices) {
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
    for (const [f] of cells) t.ensure(f);
    let row = t.rows.find((r) => t.get(r, 'deviceId') === d.device_id);
    const existed = row !== undefined;
    if (!row) {
      row = t.header.map(() => '');
      t.rows.push(row);
    }
    for (const [f, v] of cells) t.set(row, f, v);
    changes.push(`persistent device ${d.device_id} (circuit ${d.circuit_id}) ${existed ? 'replaces the existing row' : 'added'}`);
  }

  // 2. Circuit adjustments, in order.
  for (const [i, a] of o.circuit_adjustments.entries()) {
    const where = `circuit_adjustments[${i}] (${a.type})`;
    switch (a.type) {
      case 'circuit_adjust_speed':
      case 'device_adjust_speed': {
        const key = a.type === 'circuit_adjust_speed' ? (['circuitId', a.circuit_id] as const) : (['deviceId', a.device_id] as const);
        const rows = t.rows.filter((r) => t.get(r, key[0]) === key[1]);
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
        const rows = t.rows.filter((r) => t.get(r, 'deviceId') === a.device_id);
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
        const before = t.rows.length;
        t.rows = t.rows.filter((r) => t.get(r, f) !== v);
        const removed = before - t.rows.length;
        if (removed === 0) warnings.push(`${where}: no ${f === 'circuitId' ? 'circuit' : 'device'} "${v}" in ${file}`);
        else changes.push(`${f === 'circuitId' ? 'circuit' : 'device'} ${v} removed (${removed} row(s))`);
        break;
      }
      case 'reparent_circuit': {
        const rows = t.rows.filter((r) => t.get(r, 'circuitId') === a.circuit_id);
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
  return t.text();
}

type Tree = Record<string, unknown>;
const isObj = (v: unknown): v is Tree => typeof v === 'object' && v !== null && !Array.isArray(v);

/** Every (name, node) in the tree, depth first. */
function* walk(tree: Tree): Generator<[string, Tree]> {
  for (const [name, node] of Object.entries(tree)) {
    if (!isObj(node)) continue;
    yield [name, node];
    if (isObj(node.children)) yield* walk(node.children);
  }
}

function applyToNetwork(text: string, o: Overrides, file: string, changes: string[], warnings: string[]): string {
  const adj = o.network_adjustments.filter((a) => a.type !== 'topology_parent_override');
  if (adj.length === 0) return text;
  let tree: unknown;
  try {
    tree = JSON.parse(text);
  } catch (e) {
    warnings.push(`${file} is not valid JSON (${(e as Error).message}) — network adjustments not applied; the shaping run reports this file's problems`);
    return text;
  }
  if (!isObj(tree)) {
    warnings.push(`${file} is not a JSON object — network adjustments not applied`);
    return text;
  }
  for (const [i, a] of o.network_adjustments.entries()) {
    const where = `network_adjustments[${i}] (${a.type})`;
    if (a.type === 'adjust_site_speed') {
      let n = 0;
      for (const [name, node] of walk(tree)) {
        const match = a.node_id ? node.id === a.node_id : name === a.site_name;
        if (!match) continue;
        n++;
        if (a.download_bandwidth_mbps != null) node.downloadBandwidthMbps = a.download_bandwidth_mbps;
        if (a.upload_bandwidth_mbps != null) node.uploadBandwidthMbps = a.upload_bandwidth_mbps;
      }
      const label = a.node_id ? `node id "${a.node_id}"` : `node "${a.site_name}"`;
      if (n === 0) warnings.push(`${where}: no ${label} in ${file}`);
      else changes.push(`${label}: download ${a.download_bandwidth_mbps ?? '(unchanged)'} / upload ${a.upload_bandwidth_mbps ?? '(unchanged)'} Mbps`);
    } else if (a.type === 'set_node_virtual') {
      let n = 0;
      for (const [name, node] of walk(tree)) {
        if (name !== a.node_name) continue;
        n++;
        node.virtual = a.virtual;
      }
      if (n === 0) warnings.push(`${where}: no node "${a.node_name}" in ${file}`);
      else changes.push(`node "${a.node_name}": virtual = ${a.virtual}`);
    }
  }
  return JSON.stringify(tree, null, 2) + '\n';
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
  const devicesText = applyToDevices(source.devicesText, o, files.devices, changes, warnings);
  const networkText = applyToNetwork(source.networkText, o, files.network, changes, warnings);
  return { devicesText, networkText, changes, warnings };
}
