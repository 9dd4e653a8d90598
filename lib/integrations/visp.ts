/**
 * VISP (spec §3.4): a token from `GET <token_url>` (headers `x-visp-client-id`, `x-visp-client-secret`,
 * `x-visp-username`, `x-visp-password`; body `{token, payload: {exp, ispId: [...]}}`), then GraphQL
 * `POST <graphql_url>` with `{operationName, query, variables}` and the headers `authorization: <raw
 * token>` (no "Bearer"), `x-visp-client-id`, `x-visp-client-secret`. A 401/403 — or a 200 whose
 * `errors` look like an authentication failure — drops the token, fetches a new one and retries once;
 * any other `errors` array, or a body without `data`, is an IntegrationError.
 *
 * Credentials: `[visp_integration] client_id / client_secret / username / password`, each overridable by
 * `VISP_CLIENT_ID / VISP_CLIENT_SECRET / VISP_USERNAME / VISP_PASSWORD` (RunOptions.env, default
 * process.env). `isp_id` 0/unset → the first `ispId` of the token payload.
 *
 * Operations: `Subs` (subscribers, offset paging), `Bulk` (customerCPEwithWirelessServiceSpeeds),
 * `EquipmentAssemblies` (CPE assemblies with their upstream equipment), `EquipmentPg` (equipment,
 * offset paging), `CustomerServices` + `CustomerIpList` (backfill for subscribers missing from Bulk),
 * `Online` (onlineUsers, only with `online_users_domain`).
 *
 * Mapping (upstream's rules): one circuit per active wireless service (`service_number`), name = the
 * username; skipped when the service or package status is CANCELLED/CANCELED/TERMINATED/DELETED (any
 * other status, INACTIVE included, counts as active), when a speed is missing/≤0 or no address is left.
 * Speeds: mbps/mb/m as is, kbps/kb/k ÷ 1000, gbps/gb/g × 1000, unknown unit → Mbps; then the shared
 * client factors. Addresses: the service's `ip_address`, the subscriber's `package_ip` and
 * `equipment_ip`, each CPE's `ip_address` (comma lists), then (backfill) `customerIPList`, then the
 * online session by username. Parent: the best-scored CPE assembly row of the customer (equipment id,
 * location name = customer name or username, MAC, …); its `parent_id` is an AP node `visp:eq:<id>`,
 * chained up through the equipment parents to a site node `visp:site:<location id or name>`.
 * Infrastructure uses the generated_pn rates. Strategy: full only.
 *
 * Deliberate differences from upstream (see README): `token_url` / `graphql_url` from lqos.conf are used
 * (upstream hard-codes the defaults); no token cache file (a token per run); addresses keep their
 * prefix and IPv6 addresses are kept (upstream strips prefixes and drops IPv6); MACs are written
 * `AA:BB:CC:DD:EE:FF` (upstream: upper-case without separators); `verify_tls = false` is not supported
 * (warned); `service_type_allowlist`, `tenant_id` and `strategy` are ignored (as upstream).
 */
import type { LqosConfig } from '../config/schema.ts';
import {
  buildOptionsFromConfig,
  clientRate,
  clientRateFactors,
  endpointOf,
  finishRun,
  IntegrationError,
  num,
  req,
  requestJson,
  splitList,
  text,
  TopologyBuilder,
  type RunOptions,
  type RunResult,
} from './common/index.ts';

export const CRM = 'VISP';
const PAGE_SIZE = 500;
const DEAD_STATUSES = new Set(['CANCELLED', 'CANCELED', 'TERMINATED', 'DELETED']);

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => v !== null && typeof v === 'object' && !Array.isArray(v);

export const VISP_QUERIES = {
  Subs: `query Subs($ispId: Int!, $limit: Int!, $offset: Int!) {
  subscribersCount(isp_id: $ispId)
  subscribers(isp_id: $ispId, limit: $limit, offset: $offset) {
    customer_id username first_name last_name status package package_ip equipment_ip equipment_status
    tower isp_site access_point subscriber_type
  }
}`,
  Bulk: `query Bulk($ispId: Int!) {
  customerCPEwithWirelessServiceSpeeds(isp_id: $ispId)
}`,
  EquipmentAssemblies: `query EquipmentAssemblies($ispId: Int!) {
  equipmentAssemblies(isp_id: $ispId, ap_upstream: true, type: "CPE") {
    id parent_id description location_name item_id parent_site_id equipment_data parent_data
  }
}`,
  EquipmentPg: `query EquipmentPg($ispId: Int!, $limit: Int!, $offset: Int!) {
  equipmentPg(isp_id: $ispId, limit: $limit, offset: $offset) {
    id parent_id name description type location_id location_name
  }
}`,
  CustomerServices: `query CustomerServices($customerId: Int!) {
  customerServices(customer_id: $customerId, active: true) {
    service_details {
      __typename
      ... on ServiceTypeWifi {
        service_number username down_speed down_speed_unit up_speed up_speed_unit ip_address mac_address status package_status
      }
    }
  }
}`,
  CustomerIpList: `query CustomerIpList($customerId: Int!) {
  customerIPList(customer_id: $customerId) { package_ip equipment_ip }
}`,
  Online: `query Online($domain: String!) {
  onlineUsers(domain: $domain) { username ip }
}`,
} as const;

/** A speed in the given unit → Mbps; undefined when missing or ≤ 0. */
export function vispSpeedMbps(value: unknown, unit: unknown): number | undefined {
  const v = num(value);
  if (v === undefined || v <= 0) return undefined;
  const u = text(unit).toLowerCase();
  if (['kbps', 'kb', 'k'].includes(u)) return v / 1000;
  if (['gbps', 'gb', 'g'].includes(u)) return v * 1000;
  return v;
}

/** `aa-bb-cc-dd-ee-ff`, `aabb.ccdd.eeff` → `AA:BB:CC:DD:EE:FF`; anything else upper-cased as is. */
export function vispMac(v: unknown): string {
  const s = text(v).toUpperCase();
  const hex = s.replace(/[^0-9A-F]/g, '');
  return hex.length === 12 && /^[0-9A-F:.\- ]+$/.test(s) ? hex.match(/../g)!.join(':') : s;
}

/** Address candidates from a cell: comma lists, `0.0.0.0` / `255.255.255.255` dropped. */
function addressList(v: unknown): string[] {
  return splitList(v, /,/).filter((a) => !['0.0.0.0', '255.255.255.255'].includes(a.split('/')[0]));
}

const norm = (s: string) => s.trim().replace(/\s+/g, ' ').toLowerCase();
const slug = (s: string) => s.toLowerCase().replace(/[^a-z0-9]+/g, '-').replace(/^-+|-+$/g, '');
const statusDead = (...s: unknown[]) => s.map((x) => text(x).toUpperCase()).find((x) => DEAD_STATUSES.has(x));

/** Internal knobs for tests. */
export interface VispTuning {
  pageSize?: number;
}

interface Pending {
  id: string;
  name: string;
  customerId: string;
  username: string;
  down: number;
  up: number;
  ips: string[];
  mac: string;
  deviceId: string;
  equipmentIds: string[];
}

export async function run(config: LqosConfig, opts: RunOptions, tuning: VispTuning = {}): Promise<RunResult> {
  const c = config.visp_integration;
  const env = opts.env ?? process.env;
  const cred = {
    client_id: text(env.VISP_CLIENT_ID) || c.client_id.trim(),
    client_secret: text(env.VISP_CLIENT_SECRET) || c.client_secret.trim(),
    username: text(env.VISP_USERNAME) || c.username.trim(),
    password: text(env.VISP_PASSWORD) || c.password.trim(),
  };
  const missing = Object.entries(cred).filter(([, v]) => v === '').map(([k]) => `visp_integration.${k}`);
  if (missing.length > 0) {
    throw new IntegrationError(`${CRM}: ${missing.join(', ')} ${missing.length === 1 ? 'is' : 'are'} empty; set ${missing.length === 1 ? 'it' : 'them'} in lqos.conf (or VISP_CLIENT_ID / VISP_CLIENT_SECRET / VISP_USERNAME / VISP_PASSWORD)`, { crm: CRM });
  }
  for (const k of ['token_url', 'graphql_url'] as const) {
    if (c[k].trim() === '') throw new IntegrationError(`${CRM}: visp_integration.${k} is empty; set it in lqos.conf`, { crm: CRM });
  }
  if (!c.verify_tls) opts.log.warn(`${CRM}: visp_integration.verify_tls = false is not supported; certificates are verified`);
  const secrets = Object.values(cred);
  let token = '';
  const scrub = (s: string) => [...secrets, token].filter((x) => x !== '').reduce((acc, x) => acc.split(x).join('***'), s);
  const authHint = 'check visp_integration.client_id / client_secret / username / password';
  const pageSize = tuning.pageSize ?? PAGE_SIZE;
  const http = { timeoutMs: Math.max(10, c.timeout_secs) * 1000, ...opts.http, log: opts.log };

  // --- token -------------------------------------------------------------------------------------------
  const tokenUrl = c.token_url.trim();
  const tokenEndpoint = endpointOf('GET', tokenUrl);
  let tokenIsps: number[] = [];
  const authenticate = async () => {
    const body = await requestJson(tokenUrl, {
      crm: CRM,
      headers: {
        'x-visp-client-id': cred.client_id,
        'x-visp-client-secret': cred.client_secret,
        'x-visp-username': cred.username,
        'x-visp-password': cred.password,
      },
      ...http,
      authHint,
      urlHint: 'check visp_integration.token_url',
    });
    const where = { crm: CRM, endpoint: tokenEndpoint, item: 'the token response' };
    token = String(req(body, 'token', where, (v) => typeof v === 'string' && v !== ''));
    const payload = (body as Obj).payload;
    tokenIsps = isObj(payload) && Array.isArray(payload.ispId) ? payload.ispId.map(Number).filter((n) => Number.isInteger(n) && n > 0) : [];
  };
  await authenticate();
  const ispId = c.isp_id && c.isp_id > 0 ? c.isp_id : tokenIsps[0];
  if (ispId === undefined) {
    throw new IntegrationError(`${CRM}: ${tokenEndpoint}: the token names no ISP (payload.ispId is empty); set visp_integration.isp_id`, { crm: CRM, endpoint: tokenEndpoint });
  }

  // --- GraphQL ---------------------------------------------------------------------------------------------
  const gqlUrl = c.graphql_url.trim();
  const isAuthError = (e: unknown) =>
    isObj(e) && (/unauthenti|unauthori|forbidden|expired|invalid token/i.test(text(e.message)) || (isObj(e.extensions) && /auth/i.test(text(e.extensions.code ?? e.extensions.category))));
  const gql = async (op: keyof typeof VISP_QUERIES, variables: Obj): Promise<Obj> => {
    const endpoint = `${endpointOf('POST', gqlUrl)} (${op})`;
    for (let attempt = 1; ; attempt++) {
      let body: unknown;
      try {
        body = await requestJson(gqlUrl, {
          crm: CRM,
          method: 'POST',
          headers: { 'Content-Type': 'application/json', authorization: token, 'x-visp-client-id': cred.client_id, 'x-visp-client-secret': cred.client_secret },
          body: JSON.stringify({ operationName: op, query: VISP_QUERIES[op], variables }),
          ...http,
          authHint,
          urlHint: 'check visp_integration.graphql_url',
        });
      } catch (err) {
        if (!(err instanceof IntegrationError) || err.endpoint !== endpointOf('POST', gqlUrl)) throw err;
        if ((err.status === 401 || err.status === 403) && attempt === 1) {
          opts.log.warn(`${CRM}: ${endpoint} → ${err.status}; fetching a new token and retrying once`);
          await authenticate();
          continue;
        }
        throw new IntegrationError(err.message.replace(err.endpoint, endpoint), { crm: CRM, endpoint, status: err.status, cause: err.cause });
      }
      if (isObj(body) && Array.isArray(body.errors) && body.errors.length > 0) {
        const auth = body.errors.some(isAuthError);
        if (auth && attempt === 1) {
          opts.log.warn(`${CRM}: ${endpoint} → GraphQL authentication error; fetching a new token and retrying once`);
          await authenticate();
          continue;
        }
        const msgs = body.errors.map((e) => scrub(text(isObj(e) ? e.message : e)).slice(0, 200)).filter((m) => m !== '');
        throw new IntegrationError(`${CRM}: ${endpoint} → GraphQL error: ${msgs.join('; ') || 'unknown error'}${auth ? `: ${authHint}` : ''}`, { crm: CRM, endpoint, details: msgs });
      }
      if (!isObj(body) || !isObj(body.data)) {
        throw new IntegrationError(`${CRM}: ${endpoint}: the response has no "data" object; the response is not what this integration expects`, { crm: CRM, endpoint });
      }
      return body.data;
    }
  };
  const listField = (data: Obj, field: string, op: string): Obj[] => {
    let v = data[field];
    if (typeof v === 'string') {
      try {
        v = JSON.parse(v); // Bulk answers a JSON scalar
      } catch {
        v = undefined;
      }
    }
    if (!Array.isArray(v)) {
      const endpoint = `${endpointOf('POST', gqlUrl)} (${op})`;
      throw new IntegrationError(`${CRM}: ${endpoint}: field "data.${field}" is missing or not a list; the response is not what this integration expects`, { crm: CRM, endpoint });
    }
    return v as Obj[];
  };
  const pagedList = async (op: 'Subs' | 'EquipmentPg', field: string, countField?: string): Promise<Obj[]> => {
    const out: Obj[] = [];
    for (let offset = 0; offset < 10_000_000; offset += pageSize) {
      const data = await gql(op, { ispId, limit: pageSize, offset });
      const rows = listField(data, field, op);
      out.push(...rows);
      const count = countField ? num(data[countField]) : undefined;
      if (rows.length < pageSize || (count !== undefined && offset + pageSize >= count)) break;
    }
    return out;
  };
  const ep = (op: string) => `${endpointOf('POST', gqlUrl)} (${op})`;

  // --- fetch -----------------------------------------------------------------------------------------------
  const subs = await pagedList('Subs', 'subscribers', 'subscribersCount');
  const bulk = listField(await gql('Bulk', { ispId }), 'customerCPEwithWirelessServiceSpeeds', 'Bulk');
  const assemblies = listField(await gql('EquipmentAssemblies', { ispId }), 'equipmentAssemblies', 'EquipmentAssemblies');
  const equipment = await pagedList('EquipmentPg', 'equipmentPg');

  const b = new TopologyBuilder(buildOptionsFromConfig(config, CRM, 'full'), opts.log);
  const factors = clientRateFactors(config);

  const subById = new Map<string, Obj>();
  subs.forEach((s, i) => subById.set(text(req(s, 'customer_id', { crm: CRM, endpoint: ep('Subs'), item: `subscriber #${i + 1}` })), s));
  const eqById = new Map<string, Obj>();
  equipment.forEach((e, i) => eqById.set(text(req(e, 'id', { crm: CRM, endpoint: ep('EquipmentPg'), item: `equipment #${i + 1}` })), e));
  assemblies.forEach((a, i) => req(a, 'id', { crm: CRM, endpoint: ep('EquipmentAssemblies'), item: `assembly #${i + 1}` }));

  const pending: Pending[] = [];
  const fullName = (s: Obj | undefined) => [text(s?.first_name), text(s?.last_name)].filter((x) => x !== '').join(' ');
  /** One wireless service → a pending circuit, or a skip. */
  const consider = (svc: Obj, customerId: string, username: string, extraIps: string[], equipmentIds: string[], macFallback: string, suffix: string) => {
    const sn = text(svc.service_number);
    const name = username || fullName(subById.get(customerId)) || customerId;
    if (sn === '') {
      b.warn(`customer ${customerId} "${name}": a wireless service without service_number is ignored`);
      return;
    }
    const dead = statusDead(svc.package_status, svc.status);
    if (dead) {
      b.skip(sn, name, `service status is ${dead}`);
      return;
    }
    const down = vispSpeedMbps(svc.down_speed, svc.down_speed_unit);
    const up = vispSpeedMbps(svc.up_speed, svc.up_speed_unit);
    if (down === undefined || up === undefined) {
      b.skip(sn, name, `no usable ${down === undefined ? 'download' : 'upload'} speed`);
      return;
    }
    if (pending.some((p) => p.id === sn)) {
      b.warn(`service number ${sn} (customer ${customerId} "${name}") appears more than once; the first one is kept`);
      return;
    }
    const ips = [...new Set([...addressList(svc.ip_address), ...extraIps])];
    pending.push({ id: sn, name, customerId, username, down, up, ips, mac: vispMac(svc.mac_address) || macFallback, deviceId: `${sn}${suffix}`, equipmentIds });
  };

  // --- pass 1: bulk --------------------------------------------------------------------------------------
  const inBulk = new Set<string>();
  bulk.forEach((row, i) => {
    const where = { crm: CRM, endpoint: ep('Bulk'), item: `customer #${i + 1}` };
    const customerId = text(req(row, 'customer_id', where));
    const services = req<unknown[]>(row, 'wireless_services', where, Array.isArray);
    inBulk.add(customerId);
    const sub = subById.get(customerId);
    const gear = Array.isArray(row.equipment) ? (row.equipment.filter(isObj) as Obj[]) : [];
    const ips = [...addressList(sub?.package_ip), ...addressList(sub?.equipment_ip), ...gear.flatMap((g) => addressList(g.ip_address))];
    const macFallback = gear.map((g) => vispMac(g.mac_address) || vispMac(g.radio_mac)).find((m) => m !== '') ?? '';
    const equipmentIds = gear.map((g) => text(g.equipment_id)).filter((x) => x !== '');
    const username = text(row.username) || text(sub?.username);
    for (const svc of services) if (isObj(svc)) consider(svc, customerId, username, ips, equipmentIds, macFallback, '_wifi');
  });

  // --- pass 2: backfill subscribers missing from bulk -------------------------------------------------------
  const assemblyMacs = (customerId: string, username: string): string[] => {
    const names = new Set([norm(fullName(subById.get(customerId))), norm(username)].filter((x) => x !== ''));
    const macs: string[] = [];
    for (const a of assemblies) {
      if (!names.has(norm(text(a.location_name)))) continue;
      if (isObj(a.equipment_data)) for (const [k, v] of Object.entries(a.equipment_data)) if (/mac/i.test(k) && vispMac(v) !== '') macs.push(vispMac(v));
    }
    return macs.sort();
  };
  for (const [customerId, sub] of subById) {
    if (inBulk.has(customerId)) continue;
    const username = text(sub.username);
    const name = username || fullName(sub) || customerId;
    const dead = statusDead(sub.status);
    if (dead) {
      b.skip(`customer:${customerId}`, name, `subscriber status is ${dead}`);
      continue;
    }
    const data = await gql('CustomerServices', { customerId: Number(customerId) });
    const services = listField(data, 'customerServices', 'CustomerServices');
    const wifi = services.map((s) => (isObj(s.service_details) ? s.service_details : {})).filter((d) => text(d.__typename) === 'ServiceTypeWifi');
    if (wifi.length === 0) {
      const types = [...new Set(services.map((s) => (isObj(s.service_details) ? text(s.service_details.__typename) : '')).filter((x) => x !== ''))];
      b.skip(`customer:${customerId}`, name, types.length > 0 ? `no wireless service (only ${types.join(', ')})` : 'no active service');
      continue;
    }
    let ips = [...addressList(sub.package_ip), ...addressList(sub.equipment_ip)];
    if (ips.length === 0 && wifi.every((w) => addressList(w.ip_address).length === 0)) {
      const lists = await gql('CustomerIpList', { customerId: Number(customerId) });
      const v = lists.customerIPList;
      for (const r of Array.isArray(v) ? v : [v]) if (isObj(r)) ips.push(...addressList(r.package_ip), ...addressList(r.equipment_ip));
      ips = [...new Set(ips)];
    }
    const macFallback = assemblyMacs(customerId, username)[0] ?? '';
    for (const w of wifi) consider(w, customerId, text(w.username) || username, ips, [], macFallback, '_backfill');
  }

  // --- pass 3: online sessions for circuits without an address ----------------------------------------------
  const domain = text(c.online_users_domain);
  if (domain !== '' && pending.some((p) => p.ips.length === 0)) {
    const online = listField(await gql('Online', { domain }), 'onlineUsers', 'Online');
    const byUser = new Map<string, string[]>();
    for (const o of online) {
      const u = norm(text(o.username));
      if (u !== '') byUser.set(u, [...(byUser.get(u) ?? []), ...addressList(o.ip)]);
    }
    for (const p of pending) if (p.ips.length === 0) p.ips = byUser.get(norm(p.username)) ?? [];
  }

  // --- topology: best CPE assembly → equipment chain → site ---------------------------------------------------
  const ensureSite = (locationId: string, locationName: string): string | undefined => {
    if (locationId === '' && locationName === '') return undefined;
    const id = locationId !== '' ? `visp_site_${locationId}` : `visp_site_name_${slug(locationName)}`;
    if (!b.hasNode(id)) b.addNode({ id, name: locationName || `Site ${locationId}`, kind: 'site', networkJsonId: `visp:site:${locationId || locationName}` });
    return id;
  };
  const ensureEquipment = (eqId: string, fallback: { name?: string; siteId?: string; siteName?: string }, seen = new Set<string>()): string => {
    const id = `visp_eq_${eqId}`;
    if (b.hasNode(id) || seen.has(eqId)) return id;
    seen.add(eqId);
    const row = eqById.get(eqId);
    let parentId: string | undefined;
    const up = text(row?.parent_id);
    if (row && up !== '' && up !== '0' && eqById.has(up) && !seen.has(up)) parentId = ensureEquipment(up, {}, seen);
    else if (row) parentId = ensureSite(text(row.location_id), text(row.location_name));
    else parentId = ensureSite(fallback.siteId ?? '', fallback.siteName ?? '');
    const name = text(row?.description) || text(row?.name) || fallback.name || `Equipment ${eqId}`;
    b.addNode({ id, name, kind: 'ap', parentId, networkJsonId: `visp:eq:${eqId}` });
    return id;
  };
  const parentOf = (p: Pending): string | undefined => {
    const names = new Set([norm(fullName(subById.get(p.customerId))), norm(p.username)].filter((x) => x !== ''));
    let best: { row: Obj; score: number; id: number } | undefined;
    for (const a of assemblies) {
      const aid = text(a.id);
      const byId = p.equipmentIds.includes(aid);
      const byLocation = names.has(norm(text(a.location_name)));
      if (!byId && !byLocation) continue;
      const data = isObj(a.equipment_data) ? a.equipment_data : {};
      const entries = Object.entries(data).map(([k, v]) => [k.toLowerCase(), v] as const);
      let score = 0;
      if (text(a.parent_id) !== '' && text(a.parent_id) !== '0') score += 100;
      if (byLocation) score += 40;
      if (byId) score += 20;
      if (p.mac !== '' && entries.some(([k, v]) => k.includes('mac') && vispMac(v) === p.mac)) score += 15;
      if (entries.some(([k, v]) => k.includes('fiber') && k.includes('mac') && text(v) !== '')) score += 10;
      if (entries.some(([k, v]) => k.includes('vlan') && text(v) !== '')) score += 5;
      if (entries.some(([k, v]) => k.includes('router mode') && (v === true || text(v).toLowerCase() === 'true'))) score -= 20;
      if (/router/i.test(text(a.description))) score -= 10;
      const idNum = Number(aid) || 0;
      if (!best || score > best.score || (score === best.score && idNum > best.id)) best = { row: a, score, id: idNum };
    }
    const parent = best ? text(best.row.parent_id) : '';
    if (!best || parent === '' || parent === '0') return undefined;
    const pd = isObj(best.row.parent_data) ? best.row.parent_data : {};
    return ensureEquipment(parent, {
      name: text(pd.description) || text(pd.name),
      siteId: text(best.row.parent_site_id) === '0' ? '' : text(best.row.parent_site_id),
      siteName: text(pd.location_name),
    });
  };

  for (const p of pending) {
    // Parents only for circuits that can be shaped, so no empty AP branches appear.
    if (!b.addClient({ id: p.id, name: p.name, parentId: p.ips.length > 0 ? parentOf(p) : undefined, downloadMaxMbps: clientRate(p.down, factors), uploadMaxMbps: clientRate(p.up, factors) })) continue;
    b.addDevice({ id: p.deviceId, name: `${p.name}_device`, clientId: p.id, mac: p.mac, ipv4: p.ips });
  }

  const result = finishRun(b, opts);
  opts.log.info(`${CRM}: shaped=${result.circuits} skipped=${result.skipped.length} subscribers=${subs.length} isp_id=${ispId}`);
  return result;
}
