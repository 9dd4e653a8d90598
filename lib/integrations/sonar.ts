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
 * SNMP AP discovery (full only): each such AP item is asked over SNMP at its first IP (UDP 161,
 * `snmp_community`; v2c first, then v1 — common/snmp.ts) for sysName (.1.3.6.1.2.1.1.5.0) and its
 * station MACs (AirMax models: .1.3.6.1.4.1.41112.1.4.7.1.1.1, LTU models: .1.3.6.1.4.1.41112.1.10.1.4.1.11),
 * at most `SNMP_CONCURRENCY` APs at a time. An AP that answers is exported as `ap_<item id>` (name =
 * sysName, `sonar:ap:<item id>`) under its site — even with no stations (upstream drops an AP without
 * MACs); an account goes under the AP whose station list holds its first matching device MAC (MACs
 * compared normalised; upstream compares the raw strings). An AP that does not answer (unreachable,
 * wrong community) is a warning naming the AP, never the community; it is not exported and its
 * subscribers are top level (what upstream does). `snmp_community = ""` turns the discovery off.
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
  finishRun,
  graphqlData,
  graphqlError,
  graphqlErrors,
  IntegrationError,
  isObj,
  num,
  operationEndpoint,
  req,
  requestOperation,
  requireSettings,
  resolveStrategy,
  runRequest,
  text,
  TopologyBuilder,
  type ClientRateFactors,
  type Obj,
  type RunOptions,
  type RunResult,
} from './common/index.ts';
import { DEFAULT_SNMP, describe, macFromValue, mapLimit, normaliseMac, snmpConnect, SnmpSilentError, textFromValue, type SnmpSettings } from './common/snmp.ts';

export const CRM = 'Sonar';
/** Lowest circuit rate (Mbps) per direction (upstream). */
const SONAR_FLOOR_MBPS = 2;
const PAGE_SIZE = 100;
const AUTH_HINT = 'check sonar_integration.sonar_api_key';

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

/** Internal knobs for tests (the SNMP port lets a test run its agents on loopback ports). */
export interface SonarTuning {
  pageSize?: number;
  snmp?: Partial<Omit<SnmpSettings, 'community'>> & { concurrency?: number };
}

export async function run(config: LqosConfig, opts: RunOptions, tuning: SonarTuning = {}): Promise<RunResult> {
  const c = requireSettings(CRM, config, 'sonar_integration', ['sonar_api_url', 'sonar_api_key']);
  const api = new SonarApi(sonarGraphqlUrl(c.sonar_api_url), c.sonar_api_key.trim(), tuning.pageSize ?? PAGE_SIZE, opts);
  const strategy = resolveStrategy(config, ['flat', 'full'], undefined, 'full');
  const statusIds = await activeStatusIds(api, c.active_status_ids, opts);

  const b = new TopologyBuilder(buildOptionsFromConfig(config, CRM, strategy), opts.log);
  const families = { airmax: modelIds(c.airmax_model_ids), ltu: modelIds(c.ltu_model_ids) };
  let apByMac = new Map<string, string>();
  if (families.airmax.length + families.ltu.length > 0 && strategy !== 'flat') {
    const aps = await addApSites(api, b, families);
    const snmp = { ...DEFAULT_SNMP, ...tuning.snmp, community: c.snmp_community };
    apByMac = await discoverAps(aps, snmp, tuning.snmp?.concurrency ?? SNMP_CONCURRENCY, b, opts);
  }

  const accounts = new AccountImport(b, c, clientRateFactors(config), apByMac);
  for (const status of statusIds) {
    const op = `accounts status ${status}`;
    const endpoint = api.endpoint(op);
    const list = await api.paged(op, 'accounts', SONAR_QUERIES.accounts, { account_status_id: Number.isFinite(Number(status)) ? Number(status) : status });
    list.forEach((acct, i) => {
      const item = `account #${i + 1}`;
      accounts.add(acct, endpoint, item, '');
      const parentAddress = entities(acct.addresses).map(formatAddress).find((a) => a !== '') ?? '';
      entities(acct.child_accounts).forEach((child, j) => accounts.add(child, endpoint, `child account #${j + 1} of ${item}`, parentAddress));
    });
  }

  const result = await finishRun(b, opts);
  opts.log.info(`${CRM}: import summary: sites=${result.sites} aps=${result.aps} circuits=${result.circuits} devices=${result.devices} skipped=${result.skipped.length}`);
  return result;
}

/** Sonar's GraphQL endpoint for one run: authenticated queries and paged lists. */
class SonarApi {
  constructor(
    private readonly url: string,
    private readonly key: string,
    private readonly pageSize: number,
    private readonly opts: RunOptions,
  ) {}

  /** `POST /api/graphql (<op>)`. */
  endpoint(op: string): string {
    return operationEndpoint('POST', this.url, op);
  }

  /** One GraphQL call; returns `data[field]`. */
  async query(op: string, field: string, query: string, variables: Obj): Promise<Obj> {
    const endpoint = this.endpoint(op);
    const body = await requestOperation(
      this.url,
      op,
      runRequest(CRM, this.opts, {
        method: 'POST',
        headers: { 'Content-Type': 'application/json', Authorization: `Bearer ${this.key}` },
        body: JSON.stringify({ query, variables }),
        timeoutMs: 60_000,
        authHint: AUTH_HINT,
        urlHint: 'check sonar_integration.sonar_api_url',
      }),
    );
    const errors = graphqlErrors(body);
    if (errors.length > 0) {
      const scrub = (s: string) => s.split(this.key).join('***');
      throw graphqlError({ crm: CRM, endpoint }, errors, scrub, errors.some(isAuthError) ? AUTH_HINT : undefined);
    }
    const v = graphqlData(body, { crm: CRM, endpoint })[field];
    if (!isObj(v)) {
      throw new IntegrationError(`${CRM}: ${endpoint}: required field "data.${field}" is missing or invalid; the response is not what this integration expects`, {
        crm: CRM,
        endpoint,
      });
    }
    return v;
  }

  /** All pages of a paged list query → entities. */
  async paged(op: string, field: string, query: string, variables: Obj = {}): Promise<Obj[]> {
    const out: Obj[] = [];
    for (let page = 1; ; page++) {
      const v = await this.query(op, field, query, { ...variables, paginator: { page, records_per_page: this.pageSize } });
      const list = v.entities;
      if (!Array.isArray(list)) {
        throw new IntegrationError(`${CRM}: ${this.endpoint(op)}: field "${field}.entities" is missing or not a list; the response is not what this integration expects`, {
          crm: CRM,
          endpoint: this.endpoint(op),
        });
      }
      out.push(...(list as Obj[]));
      const total = isObj(v.page_info) ? num(v.page_info.total_pages) : undefined;
      if (total === undefined || page >= total || page >= 10_000) return out;
    }
  }
}

/** A GraphQL error that looks like a rejected key. */
const isAuthError = (e: unknown) =>
  isObj(e) && (/unauthenti|unauthori|forbidden|token/i.test(text(e.message)) || (isObj(e.extensions) && /auth/i.test(text(e.extensions.category ?? e.extensions.code))));

/** The configured active status ids, else the statuses Sonar marks as activating an account. */
async function activeStatusIds(api: SonarApi, configured: readonly string[], opts: RunOptions): Promise<string[]> {
  const ids = configured.map((s) => s.trim()).filter((s) => s !== '');
  if (ids.length > 0) return ids;
  const statuses = await api.paged('account_statuses', 'account_statuses', SONAR_QUERIES.accountStatuses);
  const endpoint = api.endpoint('account_statuses');
  const found = statuses.map((s, i) => text(req(s, 'id', { crm: CRM, endpoint, item: `account status #${i + 1}` })));
  opts.log.info(`${CRM}: active account statuses: ${found.join(', ') || '(none)'}`);
  return found;
}

const modelIds = (l: readonly string[]) => l.map((s) => s.trim()).filter((s) => s !== '');

/** An AP inventory item with an IP, and the station-table OIDs of its model family. */
interface ApItem {
  itemId: string;
  siteId: string;
  siteName: string;
  model: string;
  ip: string;
  oids: string[];
}

/** Sites holding an AP of a configured model with an IP → top-level sites; returns those APs. */
async function addApSites(api: SonarApi, b: TopologyBuilder, families: { airmax: string[]; ltu: string[] }): Promise<ApItem[]> {
  const apModels = [...families.airmax, ...families.ltu];
  const search = apModels.map((id) => ({ integer_fields: [{ attribute: 'inventory_model_id', search_value: Number(id), operator: 'EQ' }] }));
  const sites = await api.paged('network_sites', 'network_sites', SONAR_QUERIES.networkSites, { search });
  const endpoint = api.endpoint('network_sites');
  const out: ApItem[] = [];
  sites.forEach((s, i) => {
    const id = text(req(s, 'id', { crm: CRM, endpoint, item: `network site #${i + 1}` }));
    const siteName = text(s.name) || `Site ${id}`;
    const aps: ApItem[] = [];
    for (const it of entities(s.inventory_items)) {
      const model = isObj(it.inventory_model) ? text(it.inventory_model.id) : text(it.inventory_model_id);
      const ips = [...entities(it.inventory_model_field_data).flatMap(subnets), ...subnets(it)];
      const oids = [...(families.airmax.includes(model) ? [AIRMAX_STATION_MACS] : []), ...(families.ltu.includes(model) ? [LTU_STATION_MACS] : [])];
      if (oids.length === 0 || ips.length === 0) continue;
      const modelName = isObj(it.inventory_model) ? text(it.inventory_model.name) : '';
      aps.push({ itemId: text(it.id), siteId: id, siteName, model: modelName || `model ${model}`, ip: ips[0].split('/')[0].trim(), oids });
    }
    if (aps.length === 0) return;
    out.push(...aps);
    b.addNode({ id: `site_${id}`, name: siteName, kind: 'site', networkJsonId: `sonar:site:${id}` });
  });
  return out;
}

/** sysName, and the station MAC columns of the AirMax and LTU station tables (spec §3.6). */
export const SYS_NAME = '1.3.6.1.2.1.1.5.0';
export const AIRMAX_STATION_MACS = '1.3.6.1.4.1.41112.1.4.7.1.1.1';
export const LTU_STATION_MACS = '1.3.6.1.4.1.41112.1.10.1.4.1.11';
/** APs asked at the same time (upstream: 30 threads). */
const SNMP_CONCURRENCY = 16;
/** Rows read from one station table at most. */
const MAX_STATIONS = 4096;

type ApAnswer = { ok: true; name: string; version: string; macs: string[]; notes: string[] } | { ok: false; why: string };

/** One AP over SNMP: its sysName and station MACs. Never throws; never names the community. */
async function askAp(ap: ApItem, s: SnmpSettings): Promise<ApAnswer> {
  let conn;
  try {
    conn = await snmpConnect(ap.ip, s, SYS_NAME);
  } catch (err) {
    return { ok: false, why: err instanceof SnmpSilentError ? err.message : describe(err, s.community) };
  }
  try {
    const macs = new Set<string>();
    const notes: string[] = [];
    for (const oid of ap.oids) {
      const { rows, truncated } = await conn.walk(oid, MAX_STATIONS);
      let bad = 0;
      for (const r of rows) {
        const mac = macFromValue(r.value);
        if (mac) macs.add(mac);
        else bad++;
      }
      if (bad > 0) notes.push(`${bad} value(s) under .${oid} are not MAC addresses`);
      if (truncated) notes.push(`station table .${oid} has more than ${MAX_STATIONS} rows; the rest is ignored`);
    }
    const name = conn.probe.found ? textFromValue(conn.probe.value) : '';
    return { ok: true, name, version: conn.version, macs: [...macs], notes };
  } catch (err) {
    return { ok: false, why: `answered, but reading its stations failed: ${describe(err, s.community)}` };
  } finally {
    conn.close();
  }
}

/**
 * Asks every AP over SNMP (at most `concurrency` at a time); exports the APs that answer under their
 * sites and returns station MAC → AP node id. Silent APs are warnings (their subscribers stay top level).
 */
async function discoverAps(aps: ApItem[], s: SnmpSettings, concurrency: number, b: TopologyBuilder, opts: RunOptions): Promise<Map<string, string>> {
  const byMac = new Map<string, string>();
  if (aps.length === 0) return byMac;
  if (s.community === '') {
    b.warn(`${aps.length} AP inventory items found, but sonar_integration.snmp_community is empty, so SNMP AP discovery is off: APs are not exported and circuits are top level`);
    return byMac;
  }
  const answers = await mapLimit(aps, concurrency, (ap) => askAp(ap, s));
  const shared = new Map<string, string[]>();
  let answered = 0;
  aps.forEach((ap, i) => {
    const a = answers[i];
    const label = `AP "${ap.model}" (inventory item ${ap.itemId}, ${ap.ip}, site "${ap.siteName}")`;
    if (!a.ok) {
      b.warn(
        `${label} not found via SNMP: ${a.why}. Check sonar_integration.snmp_community and that UDP port ${s.port} of the AP is reachable from this host; the AP is not exported and its subscribers are top level`,
      );
      return;
    }
    answered++;
    const id = `ap_${ap.itemId}`;
    b.addNode({ id, name: a.name || `${ap.model} ${ap.itemId}`, kind: 'ap', parentId: `site_${ap.siteId}`, networkJsonId: `sonar:ap:${ap.itemId}` });
    for (const n of a.notes) b.warn(`${label}: ${n}`);
    for (const mac of a.macs) {
      const owner = byMac.get(mac);
      if (owner === undefined) byMac.set(mac, id);
      else if (owner !== id) shared.set(mac, [...(shared.get(mac) ?? [owner]), id]);
    }
    opts.log.info(`${CRM}: ${label} answered SNMPv${a.version} as "${a.name}" with ${a.macs.length} stations`);
  });
  if (shared.size > 0) {
    const list = [...shared].slice(0, 5).map(([mac, ids]) => `${mac} (${ids.join(', ')})`);
    b.warn(`${shared.size} station MACs are listed by more than one AP; each goes to the first: ${list.join('; ')}${shared.size > 5 ? '; …' : ''}`);
  }
  opts.log.info(`${CRM}: SNMP AP discovery: ${answered} of ${aps.length} APs answered, ${byMac.size} station MACs`);
  return byMac;
}

/** `line1, line2, city, ST` (empty when there is no line1). */
function formatAddress(a: Obj): string {
  const sub = text(a.subdivision);
  const parts = [text(a.line1), text(a.line2), text(a.city), sub.length >= 2 ? sub.slice(-2) : sub].filter((p) => p !== '');
  return text(a.line1) === '' ? '' : parts.join(', ');
}

interface SonarDevice {
  id: string;
  name: string;
  mac: string;
  ips: string[];
}

/** Accounts → circuits, each account once (a child account may also be listed on its own). */
class AccountImport {
  /** Enabled `recurring_service_rates` by lower-case service name. */
  private readonly ratesTable = new Map<string, { down: number; up: number }>();
  private readonly excludedServices: Set<string>;
  private readonly emitted = new Set<string>();

  constructor(
    private readonly b: TopologyBuilder,
    c: LqosConfig['sonar_integration'],
    private readonly factors: ClientRateFactors,
    /** Normalised station MAC → AP node id (SNMP discovery). */
    private readonly apByMac: ReadonlyMap<string, string>,
  ) {
    for (const r of c.recurring_service_rates) if (r.enabled) this.ratesTable.set(r.service_name.trim().toLowerCase(), { down: r.download_mbps, up: r.upload_mbps });
    this.excludedServices = new Set(c.recurring_excluded_service_names.map((s) => s.trim().toLowerCase()));
  }

  /** An account with an address and a rate → a circuit with its devices; otherwise skipped. */
  add(acct: Obj, endpoint: string, item: string, parentAddress: string): void {
    const b = this.b;
    const id = text(req(acct, 'id', { crm: CRM, endpoint, item }));
    if (this.emitted.has(id)) return;
    this.emitted.add(id);
    const circuitId = `sonar:account:${id}`;
    const name = text(acct.name) || `Account ${id}`;
    const address = entities(acct.addresses).map(formatAddress).find((a) => a !== '') ?? parentAddress;
    if (address === '') {
      b.skip(circuitId, name, 'no service address');
      return;
    }
    const rate = this.rateOf(acct);
    if (!rate) {
      b.skip(circuitId, name, 'no DATA service and no recurring service listed in recurring_service_rates');
      return;
    }
    const devices = accountDevices(acct, id);
    const floor = (x: number) => Math.max(SONAR_FLOOR_MBPS, x);
    const parentId = devices.map((d) => this.apByMac.get(normaliseMac(d.mac) ?? '')).find((p) => p !== undefined);
    if (!b.addClient({ id: circuitId, name, address, parentId, downloadMaxMbps: floor(clientRate(rate.down, this.factors)), uploadMaxMbps: floor(clientRate(rate.up, this.factors)) })) return;
    // Either family in one list: the builder sorts v4/v6 out and reports unparseable subnets.
    for (const d of devices) b.addDevice({ id: d.id, name: d.name, clientId: circuitId, mac: d.mac, ipv4: d.ips });
  }

  /** The first DATA service's speeds, else the first enabled recurring service with configured rates. */
  private rateOf(acct: Obj): { down: number; up: number; from: string } | undefined {
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
      const r = this.ratesTable.get(n);
      if (r && !this.excludedServices.has(n)) return { ...r, from: `recurring service "${text(s.name)}"` };
    }
    return undefined;
  }
}

/**
 * An account's devices: inventory items at its addresses, radius accounts and account-level IP
 * assignments (with addresses not taken yet), uninventoried MACs (no address).
 */
function accountDevices(acct: Obj, id: string): SonarDevice[] {
  const devices: SonarDevice[] = [];
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
  for (const a of entities(acct.addresses)) {
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
  return devices;
}
