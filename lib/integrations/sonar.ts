/**
 * Sonar (spec §3.6): GraphQL at `<sonar_api_url>` normalised to end in `/api/graphql`, `POST` JSON
 * `{query, variables}` with `Authorization: Bearer <sonar_api_key>`. Lists are paged with
 * `paginator: {page, records_per_page}` and answer `{entities, page_info {page total_pages}}`.
 * A body with an `errors` array (Sonar answers a bad token that way, with status 200) or without `data`
 * is an IntegrationError.
 *
 * Queries: `account_statuses(activates_account: true)` — only when `active_status_ids` has no
 * non-empty entry; `network_sites` with their inventory items (only when AP model ids are configured
 * and the strategy is not flat); `accounts` once per active status id, with addresses → inventory items,
 * services, radius accounts, IP assignments, uninventoried MACs and one level of child accounts.
 *
 * Mapping: every account (and child account not seen yet) with an address, a rate and ≥1 device with an
 * address is a circuit `sonar:account:<id>`; rate = first DATA service (kbps / 1000), else the first
 * enabled recurring service named in `recurring_service_rates` (and not in
 * `recurring_excluded_service_names`), then the shared client factors, then a 2 Mbps floor per
 * direction. Devices: inventory items, radius accounts (addresses not yet used), account-level IP
 * assignments, uninventoried MACs (MAC only → dropped, as upstream). Sites that hold an inventory item of
 * a configured AirMax/LTU model with an IP are exported as top-level sites `sonar:site:<id>`.
 * Strategies: flat / full (`[topology] compile_mode`, else full).
 *
 * Not ported: the SNMP part. Upstream walks each AP with `snmpwalk` to learn its name and the MACs of its
 * stations and parents accounts under the AP whose list contains a device MAC. Here APs are never
 * exported and every circuit is top level — which is what upstream produces whenever SNMP gives no
 * answer (sites are still exported, childless). A warning says so when AP model ids are configured.
 *
 * Other deliberate differences (see README): empty strings in `active_status_ids` are ignored (the
 * example config's `[""]` then means "discover"); a device MAC is taken only from MAC-named fields
 * (upstream falls back to any field value); one `account_services` list is read and typed client-side.
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
  resolveStrategy,
  text,
  TopologyBuilder,
  type RunOptions,
  type RunResult,
} from './common/index.ts';

export const CRM = 'Sonar';
/** Lowest circuit rate (Mbps) per direction (upstream). */
const SONAR_FLOOR_MBPS = 2;
const PAGE_SIZE = 100;

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => v !== null && typeof v === 'object' && !Array.isArray(v);

/** `https://x.sonar.software` / `…/api` / `…/api/graphql/` → `https://x.sonar.software/api/graphql`. */
export function sonarGraphqlUrl(raw: string): string {
  let u: URL;
  try {
    u = new URL(raw.trim());
  } catch {
    throw new IntegrationError(`${CRM}: sonar_integration.sonar_api_url is not a URL; set it to e.g. https://example.sonar.software`, { crm: CRM });
  }
  let p = u.pathname.replace(/\/+$/, '');
  if (!p.endsWith('/api/graphql')) p = p.endsWith('/api') ? `${p}/graphql` : `${p}/api/graphql`;
  u.pathname = p;
  u.search = '';
  u.hash = '';
  return u.toString();
}

// ---------------------------------------------------------------------------------------------
// GraphQL documents (the fields this module reads; Sonar v2 schema style: lists as `entities`)

const SUBNETS = 'ip_assignments { entities { subnet } }';
const INVENTORY_ITEM = `id
  inventory_model { id name }
  inventory_model_field_data { entities { value inventory_model_field { name primary } ${SUBNETS} } }
  ${SUBNETS}`;
const ACCOUNT_FIELDS = `id name account_status_id
  addresses { entities { line1 line2 city subdivision zip inventory_items { entities { ${INVENTORY_ITEM} } } } }
  account_services { entities { id service { id name type enabled data_service_detail { download_speed_kilobits_per_second upload_speed_kilobits_per_second } } } }
  radius_accounts { entities { id username ${SUBNETS} } }
  uninventoried_mac_addresses { entities { id mac_address } }
  ${SUBNETS}`;

export const SONAR_QUERIES = {
  accountStatuses: `query account_statuses($paginator: Paginator) {
  account_statuses(activates_account: true, paginator: $paginator) { entities { id name } page_info { page total_pages } }
}`,
  networkSites: `query network_sites($paginator: Paginator, $search: [Search]) {
  network_sites(paginator: $paginator, search: $search) {
    entities { id name inventory_items { entities { ${INVENTORY_ITEM} } } }
    page_info { page total_pages }
  }
}`,
  accounts: `query accounts($paginator: Paginator, $account_status_id: Int64Bit) {
  accounts(account_status_id: $account_status_id, paginator: $paginator) {
    entities { ${ACCOUNT_FIELDS} child_accounts { entities { ${ACCOUNT_FIELDS} } } }
    page_info { page total_pages }
  }
}`,
} as const;

/** `x.entities` as a list ([] when absent/null). */
function entities(v: unknown): Obj[] {
  if (!isObj(v)) return [];
  const e = v.entities;
  return Array.isArray(e) ? (e.filter(isObj) as Obj[]) : [];
}

const subnets = (v: unknown): string[] => entities(isObj(v) ? v.ip_assignments : undefined).map((a) => text(a.subnet)).filter((s) => s !== '');

const isMacField = (d: Obj) => /mac/i.test(text(isObj(d.inventory_model_field) ? d.inventory_model_field.name : ''));

/** Internal knobs for tests. */
export interface SonarTuning {
  pageSize?: number;
}

export async function run(config: LqosConfig, opts: RunOptions, tuning: SonarTuning = {}): Promise<RunResult> {
  const c = config.sonar_integration;
  if (c.sonar_api_url.trim() === '') throw new IntegrationError(`${CRM}: sonar_integration.sonar_api_url is empty; set it in lqos.conf`, { crm: CRM });
  if (c.sonar_api_key.trim() === '') throw new IntegrationError(`${CRM}: sonar_integration.sonar_api_key is empty; set it in lqos.conf`, { crm: CRM });
  const key = c.sonar_api_key.trim();
  const url = sonarGraphqlUrl(c.sonar_api_url);
  const strategy = resolveStrategy(config, ['flat', 'full'], undefined, 'full');
  const pageSize = tuning.pageSize ?? PAGE_SIZE;
  const authHint = 'check sonar_integration.sonar_api_key';
  const scrub = (s: string) => s.split(key).join('***');

  /** One GraphQL call; returns `data[field]`. */
  const gql = async (op: string, field: string, query: string, variables: Obj): Promise<unknown> => {
    const endpoint = `${endpointOf('POST', url)} (${op})`;
    const body = await requestJson(url, {
      crm: CRM,
      method: 'POST',
      headers: { 'Content-Type': 'application/json', Authorization: `Bearer ${key}` },
      body: JSON.stringify({ query, variables }),
      timeoutMs: 60_000,
      ...opts.http,
      authHint,
      urlHint: 'check sonar_integration.sonar_api_url',
      log: opts.log,
    }).catch((err: unknown) => {
      if (err instanceof IntegrationError && err.endpoint === endpointOf('POST', url)) {
        throw new IntegrationError(err.message.replace(err.endpoint, endpoint), { crm: CRM, endpoint, status: err.status, cause: err.cause });
      }
      throw err;
    });
    if (isObj(body) && Array.isArray(body.errors) && body.errors.length > 0) {
      const msgs = body.errors.map((e) => scrub(text(isObj(e) ? e.message : e)).slice(0, 200)).filter((m) => m !== '');
      const authy = body.errors.some(
        (e) => isObj(e) && (/unauthenti|unauthori|forbidden|token/i.test(text(e.message)) || (isObj(e.extensions) && /auth/i.test(text(e.extensions.category ?? e.extensions.code)))),
      );
      throw new IntegrationError(`${CRM}: ${endpoint} → GraphQL error: ${msgs.join('; ') || 'unknown error'}${authy ? `: ${authHint}` : ''}`, {
        crm: CRM,
        endpoint,
        details: msgs,
      });
    }
    if (!isObj(body) || !isObj(body.data)) {
      throw new IntegrationError(`${CRM}: ${endpoint}: the response has no "data" object; the response is not what this integration expects`, { crm: CRM, endpoint });
    }
    const v = body.data[field];
    if (!isObj(v)) {
      throw new IntegrationError(`${CRM}: ${endpoint}: required field "data.${field}" is missing or invalid; the response is not what this integration expects`, {
        crm: CRM,
        endpoint,
      });
    }
    return v;
  };

  /** All pages of a paged list query → entities. */
  const paged = async (op: string, field: string, query: string, variables: Obj = {}): Promise<Obj[]> => {
    const out: Obj[] = [];
    for (let page = 1; ; page++) {
      const endpoint = `${endpointOf('POST', url)} (${op})`;
      const v = (await gql(op, field, query, { ...variables, paginator: { page, records_per_page: pageSize } })) as Obj;
      const list = v.entities;
      if (!Array.isArray(list)) {
        throw new IntegrationError(`${CRM}: ${endpoint}: field "${field}.entities" is missing or not a list; the response is not what this integration expects`, {
          crm: CRM,
          endpoint,
        });
      }
      out.push(...(list as Obj[]));
      const total = isObj(v.page_info) ? num(v.page_info.total_pages) : undefined;
      if (total === undefined || page >= total || page >= 10_000) return out;
    }
  };

  // --- statuses --------------------------------------------------------------------------------------
  let statusIds = c.active_status_ids.map((s) => s.trim()).filter((s) => s !== '');
  if (statusIds.length === 0) {
    const statuses = await paged('account_statuses', 'account_statuses', SONAR_QUERIES.accountStatuses);
    const endpoint = `${endpointOf('POST', url)} (account_statuses)`;
    statusIds = statuses.map((s, i) => text(req(s, 'id', { crm: CRM, endpoint, item: `account status #${i + 1}` })));
    opts.log.info(`${CRM}: active account statuses: ${statusIds.join(', ') || '(none)'}`);
  }

  const b = new TopologyBuilder(buildOptionsFromConfig(config, CRM, strategy), opts.log);
  const factors = clientRateFactors(config);

  // --- sites with AP inventory (SNMP part not ported) ------------------------------------------------
  const apModels = [...c.airmax_model_ids, ...c.ltu_model_ids].map((s) => s.trim()).filter((s) => s !== '');
  if (apModels.length > 0 && strategy !== 'flat') {
    const search = apModels.map((id) => ({ integer_fields: [{ attribute: 'inventory_model_id', search_value: Number(id), operator: 'EQ' }] }));
    const sites = await paged('network_sites', 'network_sites', SONAR_QUERIES.networkSites, { search });
    const endpoint = `${endpointOf('POST', url)} (network_sites)`;
    let apCount = 0;
    sites.forEach((s, i) => {
      const id = text(req(s, 'id', { crm: CRM, endpoint, item: `network site #${i + 1}` }));
      const aps = entities(s.inventory_items).filter((it) => {
        const model = isObj(it.inventory_model) ? text(it.inventory_model.id) : text(it.inventory_model_id);
        const ips = [...entities(it.inventory_model_field_data).flatMap(subnets), ...subnets(it)];
        return apModels.includes(model) && ips.length > 0;
      });
      if (aps.length === 0) return;
      apCount += aps.length;
      b.addNode({ id: `site_${id}`, name: text(s.name) || `Site ${id}`, kind: 'site', networkJsonId: `sonar:site:${id}` });
    });
    if (apCount > 0) {
      b.warn(`${apCount} AP inventory items found, but SNMP AP discovery is not ported: APs are not exported and circuits are not placed under APs`);
    }
  }

  // --- accounts --------------------------------------------------------------------------------------
  const ratesTable = new Map<string, { down: number; up: number }>();
  for (const r of c.recurring_service_rates) if (r.enabled) ratesTable.set(r.service_name.trim().toLowerCase(), { down: r.download_mbps, up: r.upload_mbps });
  const excludedServices = new Set(c.recurring_excluded_service_names.map((s) => s.trim().toLowerCase()));

  const formatAddress = (a: Obj): string => {
    const sub = text(a.subdivision);
    const parts = [text(a.line1), text(a.line2), text(a.city), sub.length >= 2 ? sub.slice(-2) : sub].filter((p) => p !== '');
    return text(a.line1) === '' ? '' : parts.join(', ');
  };
  const rateOf = (acct: Obj): { down: number; up: number; from: string } | undefined => {
    const services = entities(acct.account_services).map((as) => (isObj(as.service) ? as.service : as));
    for (const s of services) {
      if (text(s.type).toUpperCase() !== 'DATA' || !isObj(s.data_service_detail)) continue;
      const d = num(s.data_service_detail.download_speed_kilobits_per_second);
      const u = num(s.data_service_detail.upload_speed_kilobits_per_second);
      if (d !== undefined && u !== undefined) return { down: d / 1000, up: u / 1000, from: `data service "${text(s.name)}"` };
    }
    for (const s of services) {
      if (text(s.type).toUpperCase() !== 'RECURRING' || s.enabled === false) continue;
      const n = text(s.name).toLowerCase();
      const r = ratesTable.get(n);
      if (r && !excludedServices.has(n)) return { ...r, from: `recurring service "${text(s.name)}"` };
    }
    return undefined;
  };

  const emitted = new Set<string>();
  const addAccount = (acct: Obj, endpoint: string, item: string, parentAddress: string) => {
    const id = text(req(acct, 'id', { crm: CRM, endpoint, item }));
    if (emitted.has(id)) return;
    emitted.add(id);
    const circuitId = `sonar:account:${id}`;
    const name = text(acct.name) || `Account ${id}`;
    const addresses = entities(acct.addresses);
    const address = addresses.map(formatAddress).find((a) => a !== '') ?? parentAddress;
    if (address === '') {
      b.skip(circuitId, name, 'no service address');
      return;
    }
    const rate = rateOf(acct);
    if (!rate) {
      b.skip(circuitId, name, 'no DATA service and no recurring service listed in recurring_service_rates');
      return;
    }
    const devices: Array<{ id: string; name: string; mac: string; ips: string[] }> = [];
    const used = new Set<string>();
    const take = (list: string[], onlyNew: boolean) => {
      const out: string[] = [];
      for (const s of list) {
        if (out.includes(s) || (onlyNew && used.has(s))) continue;
        out.push(s);
      }
      for (const s of out) used.add(s);
      return out;
    };
    for (const a of addresses) {
      for (const it of entities(a.inventory_items)) {
        const fields = entities(it.inventory_model_field_data);
        const primaryMac = fields.find((f) => isMacField(f) && isObj(f.inventory_model_field) && f.inventory_model_field.primary === true && text(f.value) !== '');
        const anyMac = fields.find((f) => isMacField(f) && text(f.value) !== '');
        devices.push({
          id: `sonar:device:${text(it.id)}`,
          name: (isObj(it.inventory_model) ? text(it.inventory_model.name) : '') || `Item ${text(it.id)}`,
          mac: text((primaryMac ?? anyMac)?.value),
          ips: take([...fields.flatMap(subnets), ...subnets(it)], false),
        });
      }
    }
    for (const ra of entities(acct.radius_accounts)) {
      devices.push({ id: `sonar:radius-account:${text(ra.id)}`, name: `Radius Account ${text(ra.id)}`, mac: '', ips: take(subnets(ra), true) });
    }
    const acctIps = take(subnets(acct), true);
    if (acctIps.length > 0) devices.push({ id: `sonar:account-ip-assignments:${id}`, name: 'Account IP Assignments', mac: '', ips: acctIps });
    for (const m of entities(acct.uninventoried_mac_addresses)) {
      const mac = text(m.mac_address);
      devices.push({ id: `sonar:uninventoried-mac-address:${text(m.id)}`, name: `Uninventoried MAC Address: ${mac}`, mac, ips: [] });
    }
    const floor = (x: number) => Math.max(SONAR_FLOOR_MBPS, x);
    if (!b.addClient({ id: circuitId, name, address, downloadMaxMbps: floor(clientRate(rate.down, factors)), uploadMaxMbps: floor(clientRate(rate.up, factors)) })) return;
    // Either family in one list: the builder sorts v4/v6 out and reports unparseable subnets.
    for (const d of devices) b.addDevice({ id: d.id, name: d.name, clientId: circuitId, mac: d.mac, ipv4: d.ips });
  };

  for (const status of statusIds) {
    const op = `accounts status ${status}`;
    const endpoint = `${endpointOf('POST', url)} (${op})`;
    const accounts = await paged(op, 'accounts', SONAR_QUERIES.accounts, { account_status_id: Number.isFinite(Number(status)) ? Number(status) : status });
    accounts.forEach((acct, i) => {
      const item = `account #${i + 1}`;
      addAccount(acct, endpoint, item, '');
      const parentAddress = entities(acct.addresses).map(formatAddress).find((a) => a !== '') ?? '';
      entities(acct.child_accounts).forEach((child, j) => addAccount(child, endpoint, `child account #${j + 1} of ${item}`, parentAddress));
    });
  }

  const result = finishRun(b, opts);
  opts.log.info(`${CRM}: import summary: sites=${result.sites} aps=${result.aps} circuits=${result.circuits} devices=${result.devices} skipped=${result.skipped.length}`);
  return result;
}
