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
  num,
  req,
  requestJson,
  splitList,
  text,
  TopologyBuilder,
  type RunOptions,
  type RunResult,
} from './common/index.ts';

export const CRM = 'WISPGate';
const PATH = 'api/libreqos/shaped-devices';
/** Rate (Mbps) when a row gives none for a direction (upstream). */
const DEFAULT_MBPS = 2;
const FIRST_DEVICE_ID = 10_000;

type Row = Record<string, unknown>;
const isObj = (v: unknown): v is Row => v !== null && typeof v === 'object' && !Array.isArray(v);

/** A rate cell: null/''/missing → undefined; a number or numeric string → number; anything else → NaN. */
function rateCell(v: unknown): number | undefined {
  if (v === undefined || v === null || (typeof v === 'string' && v.trim() === '')) return undefined;
  const n = num(v);
  return n === undefined ? Number.NaN : n;
}

export async function run(config: LqosConfig, opts: RunOptions): Promise<RunResult> {
  const c = config.wispgate_integration;
  if (c.wispgate_api_url.trim() === '') {
    throw new IntegrationError(`${CRM}: wispgate_integration.wispgate_api_url is empty; set it in lqos.conf`, { crm: CRM });
  }
  if (c.wispgate_api_token.trim() === '') {
    throw new IntegrationError(`${CRM}: wispgate_integration.wispgate_api_token is empty; set it in lqos.conf`, { crm: CRM });
  }
  const token = c.wispgate_api_token.trim();
  const url = joinUrl(c.wispgate_api_url, PATH);
  const endpoint = endpointOf('POST', url);
  const body = await requestJson(url, {
    crm: CRM,
    method: 'POST',
    headers: { 'Content-Type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ api_token: token }).toString(),
    timeoutMs: 120_000,
    ...opts.http,
    authHint: 'check wispgate_integration.wispgate_api_token',
    urlHint: 'check wispgate_integration.wispgate_api_url',
    log: opts.log,
  });
  if (!Array.isArray(body)) {
    const msg = isObj(body) ? text(body.error ?? body.message) : '';
    if (msg !== '') {
      const safe = msg.split(token).join('***').slice(0, 200);
      throw new IntegrationError(`${CRM}: ${endpoint} → the API answered with an error ("${safe}"): check wispgate_integration.wispgate_api_token`, { crm: CRM, endpoint });
    }
    throw new IntegrationError(`${CRM}: ${endpoint}: the response body is not a list; the response is not what this integration expects`, { crm: CRM, endpoint });
  }
  if (body.length === 0) {
    throw new IntegrationError(`${CRM}: ${endpoint} → returned no shaped devices; refusing to replace the current files with an empty set`, { crm: CRM, endpoint });
  }

  const b = new TopologyBuilder(buildOptionsFromConfig(config, CRM, 'full'), opts.log);
  const bad = new Set<string>();
  let nextDevice = FIRST_DEVICE_ID;
  let rowsWithAddress = 0;
  body.forEach((raw, i) => {
    const where = { crm: CRM, endpoint, item: `row #${i + 1}` };
    const id = text(req(raw, 'Circuit ID', where, (v) => text(v) !== ''));
    const row = raw as Row;
    if (bad.has(id)) return;
    if (!b.hasClient(id)) {
      const dMax = rateCell(row['Download Max Mbps']);
      const dMin = rateCell(row['Download Min Mbps']);
      const uMax = rateCell(row['Upload Max Mbps']);
      const uMin = rateCell(row['Upload Min Mbps']);
      if ([dMax, dMin, uMax, uMin].some((x) => x !== undefined && (Number.isNaN(x) || x < 0))) {
        bad.add(id);
        b.skip(id, id, 'invalid bandwidth (a rate is not a non-negative number)');
        return;
      }
      const pick = (max?: number, min?: number) => (max && max > 0 ? max : min && min > 0 ? min : DEFAULT_MBPS);
      const down = pick(dMax, dMin);
      const up = pick(uMax, uMin);
      b.addClient({
        id,
        name: id,
        address: id,
        downloadMaxMbps: down,
        uploadMaxMbps: up,
        downloadMinMbps: dMax && dMax > 0 && dMin && dMin > 0 ? dMin : undefined,
        uploadMinMbps: uMax && uMax > 0 && uMin && uMin > 0 ? uMin : undefined,
      });
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

  const result = finishRun(b, opts);
  opts.log.info(`${CRM}: ${result.circuits} circuits, ${result.devices} of ${body.length} rows shaped (${rowsWithAddress} rows had an address)`);
  return result;
}
