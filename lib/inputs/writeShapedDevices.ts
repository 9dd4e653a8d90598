/**
 * Writes circuits back as a 16-column ShapedDevices.csv (one row per device) that parseShapedDevices
 * and validateInputs read back to the same circuits.
 */
import type { Circuit, SqmOverride } from '../model.ts';
import { csvRowsText } from './csvText.ts';
import { SHAPED_DEVICES_COLUMNS, type ShapedDeviceField } from './shapedDevices.ts';

/** `cake` when both directions agree, `down/up` otherwise (an empty side = default), '' for none. */
export function formatSqm(sqm: SqmOverride | undefined): string {
  if (!sqm) return '';
  const d = sqm.download ?? '';
  const u = sqm.upload ?? '';
  if (d === u) return d;
  return `${d}/${u}`;
}

function num(n: number): string {
  return Number.isFinite(n) ? String(n) : '';
}

/**
 * A row's Comment. Comments belong to rows: a device row has its device's own comment — another row's
 * comment is never copied into it. The circuit comment (what validation takes from the circuit's first
 * row) fills only the circuit's first row, when that device has none, and a device-less circuit's row.
 * So a circuit read from a file writes every row's comment back as it was.
 */
function rowComment(c: Circuit, d: Circuit['devices'][number] | null): string {
  if (d === null) return c.comment;
  if (d.comment !== '' || d !== c.devices[0]) return d.comment;
  return c.comment;
}

/** The cells of one device row (a circuit without devices: one row with empty device fields). */
export function deviceRowFields(c: Circuit, d: Circuit['devices'][number] | null): Record<ShapedDeviceField, string> {
  return {
    circuitId: c.id,
    circuitName: c.name,
    deviceId: d?.id ?? '',
    deviceName: d?.name ?? '',
    parentNode: c.parentNode,
    parentNodeId: c.parentNodeId,
    anchorNodeId: c.anchorNodeId,
    mac: d?.mac ?? '',
    ipv4: d ? d.ipv4.join(', ') : '',
    ipv6: d ? d.ipv6.join(', ') : '',
    downloadMin: num(c.downloadMinMbps),
    uploadMin: num(c.uploadMinMbps),
    downloadMax: num(c.downloadMaxMbps),
    uploadMax: num(c.uploadMaxMbps),
    comment: rowComment(c, d),
    sqm: formatSqm(c.sqm),
  };
}

/**
 * Serialise circuits. A device row's Comment is the device comment (on the circuit's first row, the
 * circuit comment when that device has none; see rowComment). A circuit without devices is written as
 * one row with empty device fields (which validation will flag, rather than silently dropping the
 * circuit).
 */
export function writeShapedDevices(circuits: Circuit[]): string {
  const records: string[][] = [SHAPED_DEVICES_COLUMNS.map((c) => c.header)];
  for (const c of circuits) {
    for (const d of c.devices.length > 0 ? c.devices : [null]) {
      const f = deviceRowFields(c, d);
      records.push(SHAPED_DEVICES_COLUMNS.map((col) => f[col.field]));
    }
  }
  return csvRowsText(records);
}
