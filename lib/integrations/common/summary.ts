/**
 * The integration run summary (contract with the scheduler, lib/scheduler/integrationRunner.ts): what
 * a successful run changed, written as JSON to `$LQOS_INTEGRATION_SUMMARY_FILE` when that is set.
 *
 *   {"integration": "splynx", "finishedAt": "<ISO>", "durationMs": 1234,
 *    "circuits": {"total": n, "added": n, "removed": n, "changed": n}, "devices": {"total": n},
 *    "warnings": ["…"], "networkJson": "written" | "kept"}
 *
 * added / removed / changed compare the Circuit IDs of the ShapedDevices.csv in place before the run
 * with the one written; a circuit is "changed" when its rates, parent (name or id) or devices (ids and
 * addresses) differ. Warnings: at most 50, each at most 300 characters, secrets replaced by `***`
 * (./log.ts summaryWarnings).
 */
import { readShapedDevices, type ShapedDeviceRow } from '../../inputs/shapedDevices.ts';
import { writeFileAtomic } from '../../util/atomicFile.ts';

export const SUMMARY_ENV = 'LQOS_INTEGRATION_SUMMARY_FILE';

export interface CircuitChanges {
  total: number;
  added: number;
  removed: number;
  changed: number;
}

export interface RunSummaryFile {
  integration: string;
  finishedAt: string;
  durationMs: number;
  circuits: CircuitChanges;
  devices: { total: number };
  warnings: string[];
  networkJson: 'written' | 'kept';
}

/** Addresses compared without the default host prefix (`100.64.0.1` = `100.64.0.1/32`). */
function normIps(cell: string): string[] {
  return cell
    .split(',')
    .map((s) => s.trim().toLowerCase())
    .filter((s) => s !== '')
    .map((s) => s.replace(s.includes(':') ? /\/128$/ : /\/32$/, ''))
    .sort();
}

/** Rates compared as numbers (`100.0` = `100`). */
function normRate(cell: string): string {
  const n = Number(cell);
  return Number.isFinite(n) && cell.trim() !== '' ? String(n) : cell.trim();
}

/** Circuit ID → what "changed" compares (parent, rates, devices), plus the device count. */
export function circuitSignatures(csvText: string): { circuits: Map<string, string>; devices: number } {
  const parts = new Map<string, { parent: string; rates: string; devices: string[] }>();
  let devices = 0;
  const onRow = (r: ShapedDeviceRow) => {
    if (r.circuitId === '') return;
    devices++;
    let c = parts.get(r.circuitId);
    if (!c) {
      c = {
        parent: `${r.parentNode}\u0000${r.parentNodeId}`,
        rates: [r.downloadMin, r.uploadMin, r.downloadMax, r.uploadMax].map(normRate).join('/'),
        devices: [],
      };
      parts.set(r.circuitId, c);
    }
    c.devices.push(`${r.deviceId}\u0000${normIps(r.ipv4).join(',')}\u0000${normIps(r.ipv6).join(',')}`);
  };
  readShapedDevices(csvText, 'ShapedDevices.csv', onRow);
  const circuits = new Map<string, string>();
  for (const [id, c] of parts) circuits.set(id, `${c.parent}\u0001${c.rates}\u0001${c.devices.sort().join('\u0002')}`);
  return { circuits, devices };
}

/** Compares the previous file (undefined: there was none) with the new one. */
export function diffCircuits(previousCsv: string | undefined, nextCsv: string): CircuitChanges & { devices: number } {
  const next = circuitSignatures(nextCsv);
  const prev = previousCsv === undefined ? new Map<string, string>() : circuitSignatures(previousCsv).circuits;
  let added = 0;
  let changed = 0;
  for (const [id, sig] of next.circuits) {
    const before = prev.get(id);
    if (before === undefined) added++;
    else if (before !== sig) changed++;
  }
  let removed = 0;
  for (const id of prev.keys()) if (!next.circuits.has(id)) removed++;
  return { total: next.circuits.size, added, removed, changed, devices: next.devices };
}

/** The one line a run prints at its end (the scheduler keeps it in its log). */
export function summaryLine(s: RunSummaryFile, crm: string): string {
  const c = s.circuits;
  return (
    `integration summary: ${crm}: ${c.total} circuits (${c.added} added, ${c.removed} removed, ${c.changed} changed), ` +
    `${s.devices.total} devices, ${s.warnings.length} warning${s.warnings.length === 1 ? '' : 's'}, ` +
    `network.json ${s.networkJson}, ${(s.durationMs / 1000).toFixed(1)} s`
  );
}

/** Writes the summary file atomically (the scheduler may read it as soon as the run exits). */
export function writeSummaryFile(path: string, s: RunSummaryFile): void {
  writeFileAtomic(path, JSON.stringify(s, null, 2) + '\n', { mode: 0o600 });
}
