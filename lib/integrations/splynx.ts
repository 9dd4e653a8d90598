/**
 * Splynx (spec §3.2): REST API 2.0 with HTTP Basic auth (`api_key:api_secret`), full lists (no
 * pagination). Monitoring rows are the infrastructure (APs and sites), internet services are the
 * circuits. Strategies: flat / ap_only / ap_site / full (`[topology] compile_mode`, else
 * `splynx_integration.strategy`, else `ap_site`). In `ap_site`, when monitoring rows carry
 * `network_site_id` and network sites exist, the tree is network site → AP ("Network Sites mode").
 *
 * Not ported: reading AdjustSiteSpeed overrides inside the importer (infrastructure uses 10000/10000,
 * clamped by the link; `adjust_site_speed` applies at shaping time, and a legacy
 * `integrationSplynxBandwidths.csv` is migrated into it: common/legacyBandwidths.ts), and upstream's
 * "retry the whole pipeline in ap_only" fallback.
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
  joinUrl,
  num,
  req,
  reqArray,
  requireSettings,
  resolveStrategy,
  runRequest,
  splitList,
  text,
  TopologyBuilder,
  type ClientRateFactors,
  type ItemContext,
  type Obj,
  type RunOptions,
  type RunResult,
  type Strategy,
} from './common/index.ts';

export const CRM = 'Splynx';
/** Infrastructure rate when nothing else says (upstream default for Splynx). */
const INFRA_MBPS = 10_000;

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

/** Fetch order (the first failing endpoint is the one reported); the infrastructure lists only when the strategy is not flat. */
const CUSTOMER_LISTS = ['tariffs', 'customers', 'services', 'online'] as const;
const INFRA_LISTS = ['routers', 'sectors', 'monitoring', 'networkSites'] as const;

/** One fetched list and the endpoint it came from. */
interface List {
  rows: Obj[];
  endpoint: string;
}
type Lists = Record<keyof typeof PATHS, List>;

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

const ctx = (list: List, item: string): ItemContext => ({ crm: CRM, endpoint: list.endpoint, item });

/** Rows of a list by their required `id`. */
function byId(list: List, what: string): Map<string, Obj> {
  const out = new Map<string, Obj>();
  list.rows.forEach((row, i) => out.set(String(req(row, 'id', ctx(list, `${what} #${i + 1}`))), row));
  return out;
}

export async function run(config: LqosConfig, opts: RunOptions): Promise<RunResult> {
  const c = requireSettings(CRM, config, 'splynx_integration', ['url', 'api_key', 'api_secret']);
  const strategy: Strategy = resolveStrategy(config, ['flat', 'ap_only', 'ap_site', 'full'], c.strategy, 'ap_site');
  const lists = await fetchLists(c.url, basicAuth(c.api_key, c.api_secret), strategy !== 'flat', opts);

  const b = new TopologyBuilder(buildOptionsFromConfig(config, CRM, strategy), opts.log);
  const tariffRates = readTariffs(lists.tariffs);
  const customerById = byId(lists.customers, 'customer');
  const parentOf = addInfrastructure(b, lists, strategy);
  const onlineBy = onlineSessions(lists.online);
  const factors = clientRateFactors(config);
  lists.services.rows.forEach((s, i) => {
    addService(b, s, ctx(lists.services, `service #${i + 1}`), { tariffRates, customerById, onlineBy, parentOf, factors });
  });
  return finishRun(b, opts);
}

/** Every list the strategy needs, one at a time: one clear error for the first failing endpoint, and gentle on the CRM. */
async function fetchLists(url: string, authorization: string, withInfra: boolean, opts: RunOptions): Promise<Lists> {
  const base = joinUrl(url, 'api/2.0');
  const http = runRequest(CRM, opts, {
    headers: { Authorization: authorization },
    timeoutMs: 120_000,
    authHint: 'check splynx_integration.api_key / api_secret',
    urlHint: 'check splynx_integration.url',
  });
  const fetchList = async (path: string): Promise<List> => {
    const url = joinUrl(base, path);
    const endpoint = endpointOf('GET', url);
    const body = await getJson(url, http);
    return { rows: reqArray(body, { crm: CRM, endpoint }) as Obj[], endpoint };
  };
  const lists = {} as Lists;
  for (const name of CUSTOMER_LISTS) lists[name] = await fetchList(PATHS[name]);
  for (const name of INFRA_LISTS) lists[name] = withInfra ? await fetchList(PATHS[name]) : { rows: [], endpoint: '' };
  return lists;
}

/** Tariff id → plan rates in Mbps (the API gives kbps; a larger fixed burst wins). */
function readTariffs(tariffs: List): Map<string, { down: number; up: number }> {
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
  return tariffRates;
}

type IsAp = (id: string, m: Obj) => boolean;

/**
 * Monitoring rows (and, in "Network Sites mode", network sites) → nodes. Returns where a service
 * hangs: its access device, else its router, else the router's first sector (if monitored).
 */
function addInfrastructure(b: TopologyBuilder, lists: Lists, strategy: Strategy): (s: Obj) => string | undefined {
  const monById = byId(lists.monitoring, 'monitoring row');
  const referencedAps = new Set<string>();
  for (const s of lists.services.rows) {
    const a = idText(s.access_device);
    if (a) referencedAps.add(a);
  }
  const isAp: IsAp = (id, m) => truthy(m.access_device) || Number(m.type) === 5 || referencedAps.has(id);
  const extName = exportNames(monById);
  const nsById = byId(lists.networkSites, 'network site');
  const networkSitesMode = strategy === 'ap_site' && nsById.size > 0 && [...monById.values()].some((m) => idText(m.network_site_id));
  if (networkSitesMode) addNetworkSiteTree(b, nsById, monById, extName, isAp);
  else if (strategy !== 'flat') addMonitoringTree(b, monById, extName, isAp);

  const firstSector = new Map<string, string>();
  lists.sectors.rows.forEach((s, i) => {
    const where = ctx(lists.sectors, `sector #${i + 1}`);
    const id = String(req(s, 'id', where));
    const router = String(req(s, 'router_id', where));
    if (!firstSector.has(router)) firstSector.set(router, id);
  });
  const knownRouters = byId(lists.routers, 'router');
  return (s) => {
    if (strategy === 'flat') return undefined;
    const router = idText(s.router_id);
    const candidates = [idText(s.access_device), router, router && knownRouters.has(router) ? firstSector.get(router) : undefined];
    const hit = candidates.find((x) => x !== undefined && monById.has(x));
    if (!hit) return undefined;
    if (networkSitesMode) return isAp(hit, monById.get(hit)!) ? `ap_${hit}` : undefined;
    return `m_${hit}`;
  };
}

/** Monitoring id → exported name (`<parent>_<name>`, made unique with ` (<id>)`). */
function exportNames(monById: Map<string, Obj>): Map<string, string> {
  const rawName = (id: string, m: Obj) => collapse(text(m.title) || text(m.name) || text(m.address) || text(m.ip)) || `Device ${id}`;
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
  return extName;
}

/** "Network Sites mode": network sites at the top, the APs below their site. */
function addNetworkSiteTree(b: TopologyBuilder, nsById: Map<string, Obj>, monById: Map<string, Obj>, extName: Map<string, string>, isAp: IsAp): void {
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
}

/** Every monitoring row as a site or AP below its monitoring parent. */
function addMonitoringTree(b: TopologyBuilder, monById: Map<string, Obj>, extName: Map<string, string>, isAp: IsAp): void {
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

type Addresses = { v4: string[]; v6: string[] };

/** Service id → the addresses of its online sessions. */
function onlineSessions(online: List): Map<string, Addresses> {
  const onlineBy = new Map<string, Addresses>();
  online.rows.forEach((o, i) => {
    const sid = String(req(o, 'service_id', ctx(online, `session #${i + 1}`)));
    const e = onlineBy.get(sid) ?? { v4: [], v6: [] };
    e.v4.push(...splitList(o.ipv4, /,/));
    e.v6.push(...splitList(o.ipv6, /,/));
    onlineBy.set(sid, e);
  });
  return onlineBy;
}

interface ServiceContext {
  tariffRates: Map<string, { down: number; up: number }>;
  customerById: Map<string, Obj>;
  onlineBy: Map<string, Addresses>;
  parentOf: (s: Obj) => string | undefined;
  factors: ClientRateFactors;
}

/** An active internet service on a known tariff → a circuit with one device (online addresses fill in missing ones). */
function addService(b: TopologyBuilder, s: Obj, where: ItemContext, sc: ServiceContext): void {
  const id = String(req(s, 'id', where));
  const customerId = String(req(s, 'customer_id', where));
  const tariffId = String(req(s, 'tariff_id', where));
  const status = text(req(s, 'status', where));
  // Required by upstream (read with []): a missing key means the API is not what we expect.
  for (const f of ['ipv4', 'ipv6', 'mac']) if (!(f in s)) req(s, f, where);
  const customer = sc.customerById.get(customerId);
  const name = text(customer?.name) || customerId;
  if (status.toLowerCase() !== 'active') {
    b.skip(id, name, `service status is "${status}" (only active services are shaped)`);
    return;
  }
  const rates = sc.tariffRates.get(tariffId);
  if (!rates) {
    b.skip(id, name, `unknown tariff ${tariffId}`);
    return;
  }
  let v4 = [...splitList(s.ipv4, /,/), ...splitList(s.ipv4_route, /,/)];
  let v6 = [...splitList(s.ipv6, /,/), ...splitList(s.ipv6_delegated, /,/)];
  const on = sc.onlineBy.get(id);
  if (on && v4.length === 0) v4 = on.v4;
  if (on && v6.length === 0) v6 = on.v6;
  const address = [text(customer?.street_1), text(customer?.city)].filter((x) => x !== '').join(', ');
  if (!b.addClient({
    id,
    name,
    address,
    parentId: sc.parentOf(s),
    downloadMaxMbps: clientRate(rates.down, sc.factors),
    uploadMaxMbps: clientRate(rates.up, sc.factors),
  })) return;
  b.addDevice({ id: `splynx_service_${id}`, name, clientId: id, mac: text(s.mac), ipv4: v4, ipv6: v6 });
}
