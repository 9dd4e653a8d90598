/**
 * WISPGate (spec §3.7): `POST <wispgate_api_url>/api/libreqos/shaped-devices` with the form body
 * `api_token=<token>`, answering a JSON list of rows keyed like ShapedDevices.csv columns
 * (`Circuit ID`, `Device Name`, `Parent Node`, `MAC`, `IPv4`, `IPv6`, `Download/Upload Min/Max Mbps`).
 * Rows with the same Circuit ID are one circuit (the first row's rates win); each row is a device.
 * No topology: `Parent Node` is ignored (as upstream), so every circuit is top level. Rates are used as
 * given (no overhead factor / client multiplier, as upstream). Strategy: full only.
 *
 * Deliberate differences from upstream (see README):
 * - rates: max = `… Max Mbps`, else `… Min Mbps`, else 2, per direction (upstream assigns a missing
 *   Upload Max's Upload Min to the *download* rate — a bug); a given minimum is kept as the minimum
 *   (capped at the maximum), otherwise min = 98 % of max; fractional rates are not truncated;
 * - an empty list is an IntegrationError (nothing written) instead of a ZeroDivisionError;
 * - a status check: 401/403/5xx are errors (upstream parses whatever comes back);
 * - device ids count from 10000 in row order over rows that carry an address (as upstream) — they are
 *   therefore not stable when rows are added; Circuit IDs are.
 */
import type { LqosConfig } from '../config/schema.ts';
import {
  buildOptionsFromConfig,
  endpointOf,
  finishRun,
  IntegrationError,
  joinUrl,
  listOrApiError,
  num,
  req,
  requestJson,
  requireSettings,
  runRequest,
  splitList,
  text,
  TopologyBuilder,
  type Obj,
  type RunOptions,
  type RunResult,
} from './common/index.ts';

export const CRM = 'WISPGate';
const PATH = 'api/libreqos/shaped-devices';
/** Rate (Mbps) when a row gives none for a direction (upstream). */
const DEFAULT_MBPS = 2;
const FIRST_DEVICE_ID = 10_000;

/** A rate cell: null/''/missing → undefined; a number or numeric string → number; anything else → NaN. */
function rateCell(v: unknown): number | undefined {
  if (v === undefined || v === null || (typeof v === 'string' && v.trim() === '')) return undefined;
  const n = num(v);
  return n === undefined ? Number.NaN : n;
}

export async function run(config: LqosConfig, opts: RunOptions): Promise<RunResult> {
  const c = requireSettings(CRM, config, 'wispgate_integration', ['wispgate_api_url', 'wispgate_api_token']);
  const token = c.wispgate_api_token.trim();
  const url = joinUrl(c.wispgate_api_url, PATH);
  const endpoint = endpointOf('POST', url);
  const body = await requestJson(
    url,
    runRequest(CRM, opts, {
      method: 'POST',
      headers: { 'Content-Type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ api_token: token }).toString(),
      timeoutMs: 120_000,
      authHint: 'check wispgate_integration.wispgate_api_token',
      urlHint: 'check wispgate_integration.wispgate_api_url',
    }),
  );
  const hint = 'check wispgate_integration.wispgate_api_token';
  const rows = listOrApiError(body, { crm: CRM, endpoint, secret: token, hint, errorFields: ['error', 'message'] });
  if (rows.length === 0) {
    throw new IntegrationError(`${CRM}: ${endpoint} → returned no shaped devices; refusing to replace the current files with an empty set`, { crm: CRM, endpoint });
  }

  const b = new TopologyBuilder(buildOptionsFromConfig(config, CRM, 'full', { clientMultiplierApplied: false }), opts.log);
  const bad = new Set<string>();
  let nextDevice = FIRST_DEVICE_ID;
  let rowsWithAddress = 0;
  rows.forEach((raw, i) => {
    const id = text(req(raw, 'Circuit ID', { crm: CRM, endpoint, item: `row #${i + 1}` }, (v) => text(v) !== ''));
    const row = raw as Obj;
    if (bad.has(id)) return;
    if (!b.hasClient(id) && !addCircuit(b, id, row)) {
      bad.add(id);
      return;
    }
    const ipv4 = splitList(row.IPv4, /,/);
    const ipv6 = splitList(row.IPv6, /,/);
    if (ipv4.length === 0 && ipv6.length === 0) {
      opts.log.info(`${CRM}: row #${i + 1} (circuit ${id}, device "${text(row['Device Name'])}") has no IPv4 or IPv6; omitted`);
      return;
    }
    rowsWithAddress++;
    const devId = String(nextDevice++);
    b.addDevice({ id: devId, name: text(row['Device Name']) || `${id} device`, clientId: id, mac: text(row.MAC), ipv4, ipv6 });
  });

  const result = await finishRun(b, opts);
  opts.log.info(`${CRM}: ${result.circuits} circuits, ${result.devices} of ${rows.length} rows shaped (${rowsWithAddress} rows had an address)`);
  return result;
}

/** The circuit of a Circuit ID's first row; false (and skipped) when a rate is invalid. */
function addCircuit(b: TopologyBuilder, id: string, row: Obj): boolean {
  const dMax = rateCell(row['Download Max Mbps']);
  const dMin = rateCell(row['Download Min Mbps']);
  const uMax = rateCell(row['Upload Max Mbps']);
  const uMin = rateCell(row['Upload Min Mbps']);
  if ([dMax, dMin, uMax, uMin].some((x) => x !== undefined && (Number.isNaN(x) || x < 0))) {
    b.skip(id, id, 'invalid bandwidth (a rate is not a non-negative number)');
    return false;
  }
  const pick = (max?: number, min?: number) => (max && max > 0 ? max : min && min > 0 ? min : DEFAULT_MBPS);
  b.addClient({
    id,
    name: id,
    address: id,
    downloadMaxMbps: pick(dMax, dMin),
    uploadMaxMbps: pick(uMax, uMin),
    downloadMinMbps: dMax && dMax > 0 && dMin && dMin > 0 ? dMin : undefined,
    uploadMinMbps: uMax && uMax > 0 && uMin && uMin > 0 ? uMin : undefined,
  });
  return true;
}
