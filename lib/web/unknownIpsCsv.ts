/**
 * The Unknown IPs page's CSV downloads (pure):
 *  - `totals`: upstream's export (`IP Address,Total Download (bytes),Total Upload (bytes)`), so
 *    operators' scripts that read upstream's file read ours;
 *  - `shaped`: one ShapedDevices.csv row per address, in the file's standard 13 columns, with the
 *    plan and parent the operator chose on the page: paste them into ShapedDevices.csv (or the
 *    Shaped Devices editor), give each circuit its real name, and run LibreQoS.
 */
import type { UnknownIpRow } from '../api/telemetry.ts';
import { csvRowsText } from '../inputs/csvText.ts';
import { SHAPED_DEVICES_COLUMNS, type ShapedDeviceField } from '../inputs/shapedDevices.ts';
import { finalRates } from '../integrations/common/rates.ts';

export const UNKNOWN_TOTALS_HEADER = ['IP Address', 'Total Download (bytes)', 'Total Upload (bytes)'];
/** ShapedDevices.csv's classic 13 columns (the layout upstream's sample and most operators' files use). */
const ROW_FIELDS = SHAPED_DEVICES_COLUMNS.filter((c) => !['parentNodeId', 'anchorNodeId', 'sqm'].includes(c.field));

export interface ShapedRowsPlan {
  /** Plan rates (Mbps) for every row; min = max (upstream's default commit ratio, 1.0). */
  downMbps: number;
  upMbps: number;
  /** A node of network.json, or '' for a flat network. */
  parent: string;
  /** Wall-clock ms, for the comment's date. */
  now: number;
}

export function unknownTotalsCsv(rows: readonly UnknownIpRow[]): string {
  return csvRowsText([UNKNOWN_TOTALS_HEADER, ...rows.map((r) => [r.ip, String(r.downBytes), String(r.upBytes)])]);
}

/** `unknown-<address>`: a circuit/device id that says where the row came from and cannot clash with another address's. */
const idOf = (ip: string) => `unknown-${ip}`;

export function unknownShapedRowsCsv(rows: readonly UnknownIpRow[], plan: ShapedRowsPlan): string {
  const r = finalRates({ downloadMaxMbps: plan.downMbps, uploadMaxMbps: plan.upMbps }, { floorMbps: 1, commitRatio: 1 });
  const day = new Date(plan.now).toISOString().slice(0, 10);
  const lines = rows.map((u) => {
    const v6 = u.ip.includes(':');
    const row: Partial<Record<ShapedDeviceField, string>> = {
      circuitId: idOf(u.ip), circuitName: `Unknown ${u.ip}`, deviceId: idOf(u.ip), deviceName: u.ip, parentNode: plan.parent, mac: '',
      ipv4: v6 ? '' : u.ip, ipv6: v6 ? u.ip : '',
      downloadMin: String(r.downloadMinMbps), uploadMin: String(r.uploadMinMbps), downloadMax: String(r.downloadMaxMbps), uploadMax: String(r.uploadMaxMbps),
      comment: `unknown IP seen ${day}: check the plan and parent, then rename`,
    };
    return ROW_FIELDS.map((c) => row[c.field] ?? '');
  });
  return csvRowsText([ROW_FIELDS.map((c) => c.header), ...lines]);
}
