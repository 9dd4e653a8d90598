/**
 * Splynx (spec §3.2): REST API 2.0 with HTTP Basic auth (`api_key:api_secret`), full lists (no
 * pagination). Monitoring rows are the infrastructure (APs and sites), internet services are the
 * circuits. Strategies: flat / ap_only / ap_site / full (`[topology] compile_mode`, else
 * `splynx_integration.strategy`, else `ap_site`). In `ap_site`, when monitoring rows carry
 * `network_site_id` and network sites exist, the tree is network site → AP ("Network Sites mode").
 *
 * Not ported: the `integrationSplynxBandwidths.csv` / AdjustSiteSpeed overrides (infrastructure uses
 * 10000/10000, clamped by the link), and upstream's "retry the whole pipeline in ap_only" fallback.
 */
import type { LqosConfig } from '../config/schema.ts';
import {
  basicAuth,
  buildOptionsFromConfig,
  clientRate,
  clientRateFactors,
  endpointOf,
  finishRun,
  getJson,
  idText,
  IntegrationError,
  joinUrl,
  num,
  req,
  reqArray,
  resolveStrategy,
  splitList,
  text,
  TopologyBuilder,
  type RunOptions,
  type RunResult,
  type Strategy,
} from './common/index.ts';

export const CRM = 'Splynx';
/** Infrastructure rate when nothing else says (upstream default for Splynx). */
const INFRA_MBPS = 10_000;

type Row = Record<string, unknown>;

const PATHS = {
  tariffs: 'admin/tariffs/internet',
  customers: 'admin/customers/customer',
  online: 'admin/customers/customers-online',
  routers: 'admin/networking/routers',
  sectors: 'admin/networking/routers-sectors',
  services: 'admin/customers/customer/0/internet-services?main_attributes%5Bstatus%5D=active',
  monitoring: 'admin/networking/monitoring',
  networkSites: 'admin/networking/network-sites',
} as const;

function truthy(v: unknown): boolean {
  return v === true || v === 1 || v === '1' || (typeof v === 'string' && v.toLowerCase() === 'true');
}

function collapse(s: string): string {
  return s.replace(/\s+/g, ' ').trim();
}

function gps(v: unknown): { latitude?: number; longitude?: number } {
  const parts = text(v).split(',');
  if (parts.length !== 2) return {};
  const lat = Number(parts[0]);
  const lon = Number(parts[1]);
  if (parts[0].trim() === '' || parts[1].trim() === '' || !Number.isFinite(lat) || !Number.isFinite(lon)) return {};
  if (Math.abs(lat) > 90 || Math.abs(lon) > 180) return {};
  return { latitude: lat, longitude: lon };
}

export async function run(config: LqosConfig, opts: RunOptions): Promise<RunResult> {
  const c = config.splynx_integration;
  for (const key of ['url', 'api_key', 'api_secret'] as const) {
    if (c[key].trim() === '') throw new IntegrationError(`${CRM}: splynx_integration.${key} is empty; set it in lqos.conf`, { crm: CRM });
  }
  const strategy: Strategy = resolveStrategy(config, ['flat', 'ap_only', 'ap_site', 'full'], c.strategy, 'ap_site');
  const base = joinUrl(c.url, 'api/2.0');
  const headers = { Authorization: basicAuth(c.api_key, c.api_secret) };

  const fetchList = async (path: string): Promise<{ rows: Row[]; endpoint: string }> => {
    const url = joinUrl(base, path);
    const endpoint = endpointOf('GET', url);
    const body = await getJson(url, {
      crm: CRM,
      headers,
      timeoutMs: 120_000,
      ...opts.http,
      authHint: 'check splynx_integration.api_key / api_secret',
      urlHint: 'check splynx_integration.url',
      log: opts.log,
    });
    return { rows: reqArray(body, { crm: CRM, endpoint }) as Row[], endpoint };
  };
  const withInfra = strategy !== 'flat';
  const empty = Promise.resolve({ rows: [] as Row[], endpoint: '' });
  // Sequential: one clear error for the first failing endpoint, and gentle on the CRM.
  const tariffs = await fetchList(PATHS.tariffs);
  const customers = await fetchList(PATHS.customers);
  const services = await fetchList(PATHS.services);
  const online = await fetchList(PATHS.online);
  const routers = withInfra ? await fetchList(PATHS.routers) : await empty;
  const sectors = withInfra ? await fetchList(PATHS.sectors) : await empty;
  const monitoring = withInfra ? await fetchList(PATHS.monitoring) : await empty;
  const networkSites = withInfra ? await fetchList(PATHS.networkSites) : await empty;

  const b = new TopologyBuilder(buildOptionsFromConfig(config, CRM, strategy), opts.log);
  const factors = clientRateFactors(config);
  const ctx = (list: { endpoint: string }, item: string) => ({ crm: CRM, endpoint: list.endpoint, item });

  // --- tariffs (kbps) ---------------------------------------------------------------------------
  const tariffRates = new Map<string, { down: number; up: number }>();
  tariffs.rows.forEach((t, i) => {
    const where = ctx(tariffs, `tariff #${i + 1}`);
    const id = String(req(t, 'id', where));
    const isNum = (v: unknown) => num(v) !== undefined;
    let down = num(req(t, 'speed_download', where, isNum))! / 1000;
    let up = num(req(t, 'speed_upload', where, isNum))! / 1000;
    if ('burst_limit_fixed_down' in t && 'burst_limit_fixed_up' in t) {
      const bd = (num(t.burst_limit_fixed_down) ?? 0) / 1000;
      const bu = (num(t.burst_limit_fixed_up) ?? 0) / 1000;
      if (bd > down) down = bd;
      if (bu > up) up = bu;
    }
    tariffRates.set(id, { down, up });
  });

  // --- customers ----------------------------------------------------------------------------------
  const customerById = new Map<string, Row>();
  customers.rows.forEach((cu, i) => customerById.set(String(req(cu, 'id', ctx(customers, `customer #${i + 1}`))), cu));

  // --- infrastructure --------------------------------------------------------------------------------
  const monById = new Map<string, Row>();
  monitoring.rows.forEach((m, i) => monById.set(String(req(m, 'id', ctx(monitoring, `monitoring row #${i + 1}`))), m));
  const referencedAps = new Set<string>();
  for (const s of services.rows) {
    const a = idText(s.access_device);
    if (a) referencedAps.add(a);
  }
  const isAp = (id: string, m: Row) => truthy(m.access_device) || Number(m.type) === 5 || referencedAps.has(id);
  const rawName = (id: string, m: Row) => collapse(text(m.title) || text(m.name) || text(m.address) || text(m.ip)) || `Device ${id}`;
  const extName = new Map<string, string>();
  const usedExt = new Set<string>();
  for (const [id, m] of monById) {
    const parent = idText(m.parent_id);
    const pm = parent ? monById.get(parent) : undefined;
    let name = pm ? `${rawName(parent!, pm)}_${rawName(id, m)}` : rawName(id, m);
    if (usedExt.has(name)) name = `${name} (${id})`;
    usedExt.add(name);
    extName.set(id, name);
  }

  const nsById = new Map<string, Row>();
  networkSites.rows.forEach((s, i) => nsById.set(String(req(s, 'id', ctx(networkSites, `network site #${i + 1}`))), s));
  const networkSitesMode = strategy === 'ap_site' && nsById.size > 0 && [...monById.values()].some((m) => idText(m.network_site_id));

  if (networkSitesMode) {
    for (const [id, s] of nsById) {
      b.addNode({
        id: `ns_${id}`,
        name: collapse(text(s.title) || text(s.description)) || `Network site ${id}`,
        kind: 'site',
        networkJsonId: `splynx:network_site:${id}`,
        downloadMbps: INFRA_MBPS,
        uploadMbps: INFRA_MBPS,
        ...gps(s.gps),
      });
    }
    for (const [id, m] of monById) {
      if (!isAp(id, m)) continue;
      const ns = idText(m.network_site_id);
      b.addNode({
        id: `ap_${id}`,
        name: extName.get(id)!,
        kind: 'ap',
        parentId: ns && nsById.has(ns) ? `ns_${ns}` : '',
        networkJsonId: `splynx:ap:${id}`,
        downloadMbps: INFRA_MBPS,
        uploadMbps: INFRA_MBPS,
      });
    }
  } else if (withInfra) {
    for (const [id, m] of monById) {
      const ap = isAp(id, m);
      const parent = idText(m.parent_id);
      b.addNode({
        id: `m_${id}`,
        name: extName.get(id)!,
        kind: ap ? 'ap' : 'site',
        parentId: parent && monById.has(parent) ? `m_${parent}` : '',
        networkJsonId: `splynx:${ap ? 'ap' : 'site'}:${id}`,
        downloadMbps: INFRA_MBPS,
        uploadMbps: INFRA_MBPS,
        ...(ap ? {} : gps(m.gps)),
      });
    }
  }

  // Parent of a service: access device, else router, else the router's first sector (if monitored).
  const firstSector = new Map<string, string>();
  sectors.rows.forEach((s, i) => {
    const where = ctx(sectors, `sector #${i + 1}`);
    const id = String(req(s, 'id', where));
    const router = String(req(s, 'router_id', where));
    if (!firstSector.has(router)) firstSector.set(router, id);
  });
  const knownRouters = new Set(routers.rows.map((r, i) => String(req(r, 'id', ctx(routers, `router #${i + 1}`)))));
  const parentOf = (s: Row): string | undefined => {
    if (!withInfra) return undefined;
    const router = idText(s.router_id);
    const candidates = [idText(s.access_device), router, router && knownRouters.has(router) ? firstSector.get(router) : undefined];
    const hit = candidates.find((x) => x !== undefined && monById.has(x));
    if (!hit) return undefined;
    if (networkSitesMode) return isAp(hit, monById.get(hit)!) ? `ap_${hit}` : undefined;
    return `m_${hit}`;
  };

  // --- online sessions ----------------------------------------------------------------------------
  const onlineBy = new Map<string, { v4: string[]; v6: string[] }>();
  online.rows.forEach((o, i) => {
    const sid = String(req(o, 'service_id', ctx(online, `session #${i + 1}`)));
    const e = onlineBy.get(sid) ?? { v4: [], v6: [] };
    e.v4.push(...splitList(o.ipv4, /,/));
    e.v6.push(...splitList(o.ipv6, /,/));
    onlineBy.set(sid, e);
  });

  // --- services → circuits -------------------------------------------------------------------------
  services.rows.forEach((s, i) => {
    const where = ctx(services, `service #${i + 1}`);
    const id = String(req(s, 'id', where));
    const customerId = String(req(s, 'customer_id', where));
    const tariffId = String(req(s, 'tariff_id', where));
    const status = text(req(s, 'status', where));
    // Required by upstream (read with []): a missing key means the API is not what we expect.
    for (const f of ['ipv4', 'ipv6', 'mac']) if (!(f in s)) req(s, f, where);
    const customer = customerById.get(customerId);
    const name = text(customer?.name) || customerId;
    if (status.toLowerCase() !== 'active') {
      b.skip(id, name, `service status is "${status}" (only active services are shaped)`);
      return;
    }
    const rates = tariffRates.get(tariffId);
    if (!rates) {
      b.skip(id, name, `unknown tariff ${tariffId}`);
      return;
    }
    let v4 = [...splitList(s.ipv4, /,/), ...splitList(s.ipv4_route, /,/)];
    let v6 = [...splitList(s.ipv6, /,/), ...splitList(s.ipv6_delegated, /,/)];
    const on = onlineBy.get(id);
    if (on && v4.length === 0) v4 = on.v4;
    if (on && v6.length === 0) v6 = on.v6;
    const address = [text(customer?.street_1), text(customer?.city)].filter((x) => x !== '').join(', ');
    if (!b.addClient({
      id,
      name,
      address,
      parentId: parentOf(s),
      downloadMaxMbps: clientRate(rates.down, factors),
      uploadMaxMbps: clientRate(rates.up, factors),
    })) return;
    b.addDevice({ id: `splynx_service_${id}`, name, clientId: id, mac: text(s.mac), ipv4: v4, ipv6: v6 });
  });

  return finishRun(b, opts);
}
