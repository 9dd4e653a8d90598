/**
 * Powercode (spec §3.5): the "preseem" API — `POST <powercode_api_url>:444/api/preseem/index.php` with a
 * form body `apiKey=<key>&action=list_services` / `action=list_customers`, no pagination.
 *
 * Services carry plan rates in kbps. Every `Active` customer is one circuit; each of its equipment
 * items of a shaped type (`Customer Owned Equipment`, `Router`, `Managed Routers`, `CPE`) that names a
 * known service becomes a device with its `ip_address`. Powercode gives no topology: every circuit is
 * top level (network.json `{}`). Strategy: full only (which, without nodes, is flat).
 *
 * Deliberate differences from upstream (see README):
 * - a port already present in `powercode_api_url` is kept (upstream always appends `:444`);
 * - service ids are compared as text (upstream needs the same JSON type on both sides);
 * - the customer status is compared case-insensitively (`active`, `Active`);
 * - TLS certificates are verified (upstream disables verification): a self-signed Powercode
 *   certificate must be trusted by the host (e.g. `NODE_EXTRA_CA_CERTS`);
 * - when a customer's equipment names several services, the last one still decides the rate
 *   (upstream), but a warning says so.
 */
import type { LqosConfig } from '../config/schema.ts';
import {
  buildOptionsFromConfig,
  clientRate,
  clientRateFactors,
  finishRun,
  IntegrationError,
  listOrApiError,
  num,
  operationEndpoint,
  req,
  requestOperation,
  requireSettings,
  runRequest,
  splitList,
  text,
  TopologyBuilder,
  type ClientRateFactors,
  type ItemContext,
  type Obj,
  type RunOptions,
  type RunResult,
} from './common/index.ts';

export const CRM = 'Powercode';
/** Equipment types that are shaped (exact Powercode spellings). */
export const SHAPED_EQUIPMENT_TYPES: readonly string[] = ['Customer Owned Equipment', 'Router', 'Managed Routers', 'CPE'];
const API_PATH = 'api/preseem/index.php';
const DEFAULT_PORT = '444';

type Rates = { down: number; up: number };

/** `https://pc.example.com` → `https://pc.example.com:444/api/preseem/index.php` (a given port is kept). */
export function powercodeEndpointUrl(base: string): string {
  let u: URL;
  try {
    u = new URL(base.trim());
  } catch {
    throw new IntegrationError(`${CRM}: powercode_api_url "${redactBase(base)}" is not a URL; set it to e.g. https://powercode.example.com`, { crm: CRM });
  }
  if (u.port === '') u.port = DEFAULT_PORT;
  u.pathname = `${u.pathname.replace(/\/+$/, '')}/${API_PATH}`;
  u.search = '';
  u.hash = '';
  return u.toString();
}

function redactBase(s: string): string {
  return s.replace(/\/\/[^/@]*@/, '//***@');
}

export async function run(config: LqosConfig, opts: RunOptions): Promise<RunResult> {
  const c = requireSettings(CRM, config, 'powercode_integration', ['powercode_api_url', 'powercode_api_key']);
  const url = powercodeEndpointUrl(c.powercode_api_url);
  const key = c.powercode_api_key.trim();
  const services = await callAction(url, key, 'list_services', opts);
  const customers = await callAction(url, key, 'list_customers', opts);

  const b = new TopologyBuilder(buildOptionsFromConfig(config, CRM, 'full'), opts.log);
  const serviceRates = readServices(b, services);
  const factors = clientRateFactors(config);
  customers.rows.forEach((cu, i) => addCustomer(b, cu, { crm: CRM, endpoint: customers.endpoint, item: `customer #${i + 1}` }, serviceRates, factors));
  return finishRun(b, opts);
}

/** One action; the endpoint in messages is `POST /api/preseem/index.php (list_services)`. */
async function callAction(url: string, key: string, action: string, opts: RunOptions): Promise<{ rows: unknown[]; endpoint: string }> {
  const endpoint = operationEndpoint('POST', url, action);
  const body = await requestOperation(
    url,
    action,
    runRequest(CRM, opts, {
      method: 'POST',
      headers: { 'Content-Type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ apiKey: key, action }).toString(),
      timeoutMs: 10_000,
      authHint: 'check powercode_integration.powercode_api_key',
      urlHint: 'check powercode_integration.powercode_api_url',
    }),
  );
  // The API reports a bad key or action as a JSON object with an error text.
  const hint = 'check powercode_integration.powercode_api_key';
  return { rows: listOrApiError(body, { crm: CRM, endpoint, secret: key, hint, errorFields: ['error', 'message', 'msg'] }), endpoint };
}

/** Service id → plan rates in Mbps (the API gives kbps). */
function readServices(b: TopologyBuilder, services: { rows: unknown[]; endpoint: string }): Map<string, Rates> {
  const serviceRates = new Map<string, Rates>();
  services.rows.forEach((s, i) => {
    const where = { crm: CRM, endpoint: services.endpoint, item: `service #${i + 1}` };
    const id = text(req(s, 'id', where));
    const down = num(req(s, 'rate_down', where));
    const up = num(req(s, 'rate_up', where));
    if (!down || !up || down <= 0 || up <= 0) {
      b.warn(`service ${id} has no usable rate_down/rate_up; equipment on it is not shaped`);
      return;
    }
    if (serviceRates.has(id)) b.warn(`service ${id} is listed twice; the last one is used`);
    serviceRates.set(id, { down: Math.trunc(down) / 1000, up: Math.trunc(up) / 1000 });
  });
  return serviceRates;
}

/** An Active customer with shaped equipment on a known service → a circuit with one device per item. */
function addCustomer(b: TopologyBuilder, cu: unknown, where: ItemContext, serviceRates: Map<string, Rates>, factors: ClientRateFactors): void {
  const id = text(req(cu, 'id', where));
  const status = text(req(cu, 'status', where));
  const row = cu as Obj;
  const name = text(row.name) || text(row.company_name) || id;
  if (status.toLowerCase() !== 'active') {
    b.skip(id, name, `customer status is "${status}" (only Active customers are shaped)`);
    return;
  }
  const { shaped, ignored } = shapedEquipment(cu, id, where, serviceRates);
  if (shaped.length === 0) {
    const why = ignored.length > 0 ? ` (${ignored.join('; ')})` : '';
    b.skip(id, name, `no equipment of a shaped type with a known service${why}`);
    return;
  }
  const last = shaped[shaped.length - 1].service;
  const distinct = [...new Set(shaped.map((s) => s.service))];
  if (distinct.length > 1) b.warn(`customer ${id} "${name}" has equipment on services ${distinct.join(', ')}; the rate of service ${last} (the last) is used`);
  const rates = serviceRates.get(last)!;
  if (!b.addClient({ id, name, downloadMaxMbps: clientRate(rates.down, factors), uploadMaxMbps: clientRate(rates.up, factors) })) return;
  for (const { eq } of shaped) {
    const eqId = text(eq.id);
    b.addDevice({
      id: `c_${id}_s__d_${eqId}`,
      name: text(eq.name) || `Equipment ${eqId}`,
      clientId: id,
      mac: text(eq.mac_address),
      ipv4: splitList(eq.ip_address, /,/),
    });
  }
}

/** A customer's equipment of a shaped type on a known service, and why the other items are not shaped. */
function shapedEquipment(cu: unknown, id: string, where: ItemContext, serviceRates: Map<string, Rates>) {
  const row = cu as Obj;
  const equipment = row.equipment === undefined || row.equipment === null ? [] : row.equipment;
  if (!Array.isArray(equipment)) req(cu, 'equipment', where, Array.isArray);
  const shaped: Array<{ eq: Obj; service: string }> = [];
  const ignored: string[] = [];
  (equipment as unknown[]).forEach((eq, j) => {
    const ew = { ...where, item: `equipment #${j + 1} of customer ${id}` };
    const eqId = text(req(eq, 'id', ew));
    const type = text(req(eq, 'type', ew));
    const service = text((eq as Obj).service_id);
    if (!SHAPED_EQUIPMENT_TYPES.includes(type)) {
      ignored.push(`${eqId}: type "${type}" is not shaped`);
      return;
    }
    if (!serviceRates.has(service)) {
      ignored.push(`${eqId}: ${service === '' ? 'no service' : `unknown service ${service}`}`);
      return;
    }
    shaped.push({ eq: eq as Obj, service });
  });
  return { shaped, ignored };
}
