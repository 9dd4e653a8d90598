/**
 * Writes circuits back as a 16-column ShapedDevices.csv (one row per device) that parseShapedDevices
 * and validateInputs read back to the same circuits.
 */
import { stringify } from 'csv-stringify/sync';
import type { Circuit, SqmOverride } from '../model.ts';
import { SHAPED_DEVICES_COLUMNS } from './shapedDevices.ts';

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
 * Serialise circuits. A device row's Comment is the device comment, or the circuit comment when the
 * device has none. A circuit without devices is written as one row with empty device fields (which
 * validation will flag, rather than silently dropping the circuit).
 */
export function writeShapedDevices(circuits: Circuit[]): string {
  const records: string[][] = [SHAPED_DEVICES_COLUMNS.map((c) => c.header)];
  for (const c of circuits) {
    const sqm = formatSqm(c.sqm);
    const rates = [num(c.downloadMinMbps), num(c.uploadMinMbps), num(c.downloadMaxMbps), num(c.uploadMaxMbps)];
    const devices = c.devices.length > 0 ? c.devices : [null];
    for (const d of devices) {
      records.push([
        c.id,
        c.name,
        d?.id ?? '',
        d?.name ?? '',
        c.parentNode,
        c.parentNodeId,
        c.anchorNodeId,
        d?.mac ?? '',
        d ? d.ipv4.join(', ') : '',
        d ? d.ipv6.join(', ') : '',
        ...rates,
        d && d.comment !== '' ? d.comment : c.comment,
        sqm,
      ]);
    }
  }
  // Quote anything a reader could misread: a leading '#' (comment line), leading/trailing blanks, a CR.
  return stringify(records, { record_delimiter: 'unix', quoted_match: [/^#/, /^\s|\s$/, /\r/] });
}
