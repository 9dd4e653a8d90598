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
 * Token cache (as upstream): `<state_directory>/cache/.visp_token_cache_<sha256(token_url|client_id|username)[:16]>.json`
 * holds `{token, exp, isp_ids}` (mode 0600, directory 0700) and is reused across runs until 5 minutes
 * before `exp`; an expired, unreadable or rejected token means a new login (which rewrites the file).
 * No cache when the state directory does not exist or the token has no `exp`. The token is never logged.
 *
 * Deliberate differences from upstream (see README): `token_url` / `graphql_url` from lqos.conf are used
 * (upstream hard-codes the defaults); the cache key includes token_url; addresses keep their
 * prefix and IPv6 addresses are kept (upstream strips prefixes and drops IPv6); MACs are written
 * `AA:BB:CC:DD:EE:FF` (upstream: upper-case without separators); `verify_tls = false` is not supported
 * (warned); `service_type_allowlist`, `tenant_id` and `strategy` are ignored (as upstream).
 */
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import type { LqosConfig } from '../config/schema.ts';
import { writeFileAtomic } from '../util/atomicFile.ts';
import {
  buildOptionsFromConfig,
  clientRate,
  clientRateFactors,
  endpointOf,
  finishRun,
  graphqlData,
  graphqlError,
  graphqlErrors,
  IntegrationError,
  isObj,
  num,
  operationEndpoint,
  req,
  requestJson,
  requestOperation,
  requireSettings,
  runRequest,
  splitList,
  text,
  timeoutMsWithFloor,
  TopologyBuilder,
  type ClientRateFactors,
  type Obj,
  type RunOptions,
  type RunResult,
} from './common/index.ts';

export const CRM = 'VISP';
const PAGE_SIZE = 500;
const AUTH_HINT = 'check visp_integration.client_id / client_secret / username / password';
const DEAD_STATUSES = new Set(['CANCELLED', 'CANCELED', 'TERMINATED', 'DELETED']);

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
const fullName = (s: Obj | undefined) => [text(s?.first_name), text(s?.last_name)].filter((x) => x !== '').join(' ');

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

type VispSettings = LqosConfig['visp_integration'];
/** The shortest HTTP timeout used (upstream's floor). */
const VISP_MIN_TIMEOUT_SECS = 10;
type Credentials = { client_id: string; client_secret: string; username: string; password: string };

export async function run(config: LqosConfig, opts: RunOptions, tuning: VispTuning = {}): Promise<RunResult> {
  const c = config.visp_integration;
  const cred = credentials(c, opts.env ?? process.env);
  requireSettings(CRM, config, 'visp_integration', ['token_url', 'graphql_url']);
  if (!c.verify_tls) opts.log.warn(`${CRM}: ${VERIFY_TLS_REFUSED}`);
  const cache = new TokenCache(config.state_directory, [c.token_url.trim(), cred.client_id, cred.username], opts);
  const api = new VispApi(c, cred, opts, tuning.pageSize ?? PAGE_SIZE, cache);
  const ispId = await api.start(c.isp_id);

  const subs = await api.paged('Subs', 'subscribers', 'subscribersCount');
  const bulk = api.list(await api.query('Bulk', { ispId }), 'customerCPEwithWirelessServiceSpeeds', 'Bulk');
  const assemblies = api.list(await api.query('EquipmentAssemblies', { ispId }), 'equipmentAssemblies', 'EquipmentAssemblies');
  const equipment = await api.paged('EquipmentPg', 'equipmentPg');

  const b = new TopologyBuilder(buildOptionsFromConfig(config, CRM, 'full'), opts.log);
  const vi = new VispImport(b, api, { subs, assemblies, equipment });
  vi.fromBulk(bulk);
  await vi.backfill();
  const domain = text(c.online_users_domain);
  if (domain !== '') await vi.addOnlineAddresses(domain);
  vi.addCircuits(clientRateFactors(config));

  const result = await finishRun(b, opts);
  opts.log.info(`${CRM}: shaped=${result.circuits} skipped=${result.skipped.length} subscribers=${subs.length} isp_id=${ispId}`);
  return result;
}

/** Why `verify_tls = false` is refused (the warning text). */
export const VERIFY_TLS_REFUSED =
  'visp_integration.verify_tls = false is not supported: without certificate checks anyone on the path to VISP could pose as it and ' +
  'read the client secret, password and token sent to it; certificates are verified — trust a private CA with NODE_EXTRA_CA_CERTS instead';

/** Reuse a cached token only while it has at least this long to live. */
const TOKEN_MARGIN_S = 300;

interface CachedToken {
  token: string;
  exp: number;
  isp_ids: number[];
}

/** The token cache file of one VISP account (see the module comment). */
export class TokenCache {
  readonly path: string;
  private readonly enabled: boolean;

  constructor(
    stateDir: string,
    keyParts: string[],
    private readonly opts: RunOptions,
  ) {
    const dir = join(stateDir, 'cache');
    this.path = join(dir, `.visp_token_cache_${createHash('sha256').update(keyParts.join('|')).digest('hex').slice(0, 16)}.json`);
    this.enabled = existsSync(stateDir);
    if (!this.enabled) opts.log.debug(`${CRM}: state directory ${stateDir} does not exist; the token is not cached`);
  }

  /** The cached token when it is still valid for TOKEN_MARGIN_S, else undefined. */
  load(nowS = Date.now() / 1000): CachedToken | undefined {
    if (!this.enabled || !existsSync(this.path)) return undefined;
    try {
      const v = JSON.parse(readFileSync(this.path, 'utf8')) as Partial<CachedToken>;
      if (typeof v.token !== 'string' || v.token === '' || typeof v.exp !== 'number') throw new Error('unexpected content');
      if (v.exp - nowS < TOKEN_MARGIN_S) {
        this.opts.log.info(`${CRM}: the cached token expired (or expires within ${TOKEN_MARGIN_S} s); logging in again`);
        return undefined;
      }
      return { token: v.token, exp: v.exp, isp_ids: Array.isArray(v.isp_ids) ? v.isp_ids.filter((n) => Number.isInteger(n) && n > 0) : [] };
    } catch (err) {
      this.opts.log.warn(`${CRM}: ignoring the token cache ${this.path} (${(err as Error).name === 'SyntaxError' ? 'not JSON' : (err as Error).message}); logging in again`);
      return undefined;
    }
  }

  save(v: CachedToken): void {
    if (!this.enabled) return;
    try {
      mkdirSync(dirname(this.path), { recursive: true, mode: 0o700 });
      writeFileAtomic(this.path, `${JSON.stringify(v)}\n`, { mode: 0o600 });
    } catch (err) {
      this.opts.log.warn(`${CRM}: cannot write the token cache ${this.path} (${(err as NodeJS.ErrnoException).code ?? 'error'}); the next run logs in again`);
    }
  }
}

/** The credentials, each from the environment or else lqos.conf; all missing ones are named at once. */
function credentials(c: VispSettings, env: Record<string, string | undefined>): Credentials {
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
  return cred;
}

/** A GraphQL error that looks like a rejected or expired token. */
const isAuthError = (e: unknown) =>
  isObj(e) && (/unauthenti|unauthori|forbidden|expired|invalid token/i.test(text(e.message)) || (isObj(e.extensions) && /auth/i.test(text(e.extensions.code ?? e.extensions.category))));

/** VISP's token endpoint and GraphQL API for one run; a rejected token is replaced once per query. */
class VispApi {
  ispId = 0;
  private token = '';
  private tokenIsps: number[] = [];
  private readonly timeoutMs: number;

  constructor(
    private readonly c: VispSettings,
    private readonly cred: Credentials,
    private readonly opts: RunOptions,
    private readonly pageSize: number,
    private readonly cache: TokenCache,
  ) {
    this.timeoutMs = timeoutMsWithFloor(CRM, 'visp_integration.timeout_secs', c.timeout_secs, VISP_MIN_TIMEOUT_SECS, opts.log);
  }

  /** Takes the cached token or fetches one; returns the ISP to query (`isp_id`, else the token's first). */
  async start(configuredIsp: number | undefined): Promise<number> {
    const cached = this.cache.load();
    if (cached) {
      this.token = cached.token;
      this.tokenIsps = cached.isp_ids;
      this.opts.log.info(`${CRM}: using the cached token (valid until ${new Date(cached.exp * 1000).toISOString()})`);
    } else await this.authenticate();
    const ispId = configuredIsp && configuredIsp > 0 ? configuredIsp : this.tokenIsps[0];
    if (ispId === undefined) {
      const endpoint = this.tokenEndpoint();
      throw new IntegrationError(`${CRM}: ${endpoint}: the token names no ISP (payload.ispId is empty); set visp_integration.isp_id`, { crm: CRM, endpoint });
    }
    this.ispId = ispId;
    return ispId;
  }

  /** `POST /graphql (<op>)`. */
  endpoint(op: string): string {
    return operationEndpoint('POST', this.c.graphql_url.trim(), op);
  }

  /** One operation; returns `data`. */
  async query(op: keyof typeof VISP_QUERIES, variables: Obj): Promise<Obj> {
    const endpoint = this.endpoint(op);
    for (let attempt = 1; ; attempt++) {
      let body: unknown;
      try {
        body = await this.post(op, variables);
      } catch (err) {
        const rejected = err instanceof IntegrationError && err.endpoint === endpoint && (err.status === 401 || err.status === 403);
        if (!rejected || attempt !== 1) throw err;
        this.opts.log.warn(`${CRM}: ${endpoint} → ${err.status}; fetching a new token and retrying once`);
        await this.authenticate();
        continue;
      }
      const errors = graphqlErrors(body);
      if (errors.length > 0) {
        const auth = errors.some(isAuthError);
        if (auth && attempt === 1) {
          this.opts.log.warn(`${CRM}: ${endpoint} → GraphQL authentication error; fetching a new token and retrying once`);
          await this.authenticate();
          continue;
        }
        throw graphqlError({ crm: CRM, endpoint }, errors, (s) => this.scrub(s), auth ? AUTH_HINT : undefined);
      }
      return graphqlData(body, { crm: CRM, endpoint });
    }
  }

  /** `data[field]` as a list (Bulk answers a JSON scalar holding one). */
  list(data: Obj, field: string, op: string): Obj[] {
    let v = data[field];
    if (typeof v === 'string') {
      try {
        v = JSON.parse(v);
      } catch {
        v = undefined;
      }
    }
    if (!Array.isArray(v)) {
      const endpoint = this.endpoint(op);
      throw new IntegrationError(`${CRM}: ${endpoint}: field "data.${field}" is missing or not a list; the response is not what this integration expects`, { crm: CRM, endpoint });
    }
    return v as Obj[];
  }

  /** All pages of an offset-paged list (ends on a short page or at `countField`). */
  async paged(op: 'Subs' | 'EquipmentPg', field: string, countField?: string): Promise<Obj[]> {
    const out: Obj[] = [];
    for (let offset = 0; offset < 10_000_000; offset += this.pageSize) {
      const data = await this.query(op, { ispId: this.ispId, limit: this.pageSize, offset });
      const rows = this.list(data, field, op);
      out.push(...rows);
      const count = countField ? num(data[countField]) : undefined;
      if (rows.length < this.pageSize || (count !== undefined && offset + this.pageSize >= count)) break;
    }
    return out;
  }

  private tokenEndpoint(): string {
    return endpointOf('GET', this.c.token_url.trim());
  }

  private async authenticate(): Promise<void> {
    const { cred } = this;
    const body = await requestJson(
      this.c.token_url.trim(),
      this.request({
        headers: {
          'x-visp-client-id': cred.client_id,
          'x-visp-client-secret': cred.client_secret,
          'x-visp-username': cred.username,
          'x-visp-password': cred.password,
        },
        urlHint: 'check visp_integration.token_url',
      }),
    );
    const where = { crm: CRM, endpoint: this.tokenEndpoint(), item: 'the token response' };
    this.token = String(req(body, 'token', where, (v) => typeof v === 'string' && v !== ''));
    const payload = (body as Obj).payload;
    this.tokenIsps = isObj(payload) && Array.isArray(payload.ispId) ? payload.ispId.map(Number).filter((n) => Number.isInteger(n) && n > 0) : [];
    const exp = isObj(payload) ? num(payload.exp) : undefined;
    if (exp !== undefined) this.cache.save({ token: this.token, exp, isp_ids: this.tokenIsps });
  }

  private post(op: keyof typeof VISP_QUERIES, variables: Obj): Promise<unknown> {
    const { cred } = this;
    return requestOperation(
      this.c.graphql_url.trim(),
      op,
      this.request({
        method: 'POST',
        headers: { 'Content-Type': 'application/json', authorization: this.token, 'x-visp-client-id': cred.client_id, 'x-visp-client-secret': cred.client_secret },
        body: JSON.stringify({ operationName: op, query: VISP_QUERIES[op], variables }),
        urlHint: 'check visp_integration.graphql_url',
      }),
    );
  }

  private request(own: { method?: 'POST'; headers: Record<string, string>; body?: string; urlHint: string }) {
    return runRequest(CRM, this.opts, { timeoutMs: this.timeoutMs, ...own, authHint: AUTH_HINT });
  }

  /** Masks the credentials and the current token. */
  private scrub(s: string): string {
    return [...Object.values(this.cred), this.token].filter((x) => x !== '').reduce((acc, x) => acc.split(x).join('***'), s);
  }
}

/** Where a wireless service's circuit gets its addresses, MAC and parent candidates from. */
interface ServiceSource {
  customerId: string;
  username: string;
  /** Addresses of the subscriber/CPEs, after the service's own. */
  ips: string[];
  /** Equipment ids of the customer's CPEs (they rank CPE assemblies). */
  equipmentIds: string[];
  /** MAC when the service has none. */
  macFallback: string;
  /** Device id suffix: `_wifi` (bulk) or `_backfill`. */
  suffix: string;
}

/** Subscribers, services and CPE assemblies → circuits below the equipment chain and site. */
class VispImport {
  private readonly subById = new Map<string, Obj>();
  private readonly eqById = new Map<string, Obj>();
  private readonly assemblies: Obj[];
  private readonly pending: Pending[] = [];
  private readonly inBulk = new Set<string>();

  constructor(
    private readonly b: TopologyBuilder,
    private readonly api: VispApi,
    data: { subs: Obj[]; assemblies: Obj[]; equipment: Obj[] },
  ) {
    this.assemblies = data.assemblies;
    const at = (op: string, item: string) => ({ crm: CRM, endpoint: api.endpoint(op), item });
    data.subs.forEach((s, i) => this.subById.set(text(req(s, 'customer_id', at('Subs', `subscriber #${i + 1}`))), s));
    data.equipment.forEach((e, i) => this.eqById.set(text(req(e, 'id', at('EquipmentPg', `equipment #${i + 1}`))), e));
    data.assemblies.forEach((a, i) => req(a, 'id', at('EquipmentAssemblies', `assembly #${i + 1}`)));
  }

  /** Pass 1: the wireless services of every customer in Bulk. */
  fromBulk(bulk: Obj[]): void {
    bulk.forEach((row, i) => {
      const where = { crm: CRM, endpoint: this.api.endpoint('Bulk'), item: `customer #${i + 1}` };
      const customerId = text(req(row, 'customer_id', where));
      const services = req<unknown[]>(row, 'wireless_services', where, Array.isArray);
      this.inBulk.add(customerId);
      const sub = this.subById.get(customerId);
      const gear = Array.isArray(row.equipment) ? (row.equipment.filter(isObj) as Obj[]) : [];
      const source: ServiceSource = {
        customerId,
        username: text(row.username) || text(sub?.username),
        ips: [...addressList(sub?.package_ip), ...addressList(sub?.equipment_ip), ...gear.flatMap((g) => addressList(g.ip_address))],
        equipmentIds: gear.map((g) => text(g.equipment_id)).filter((x) => x !== ''),
        macFallback: gear.map((g) => vispMac(g.mac_address) || vispMac(g.radio_mac)).find((m) => m !== '') ?? '',
        suffix: '_wifi',
      };
      for (const svc of services) if (isObj(svc)) this.consider(svc, source);
    });
  }

  /** Pass 2: subscribers missing from Bulk, from their own services (and IP list when they have no address). */
  async backfill(): Promise<void> {
    for (const [customerId, sub] of this.subById) {
      if (this.inBulk.has(customerId)) continue;
      const username = text(sub.username);
      const name = username || fullName(sub) || customerId;
      const dead = statusDead(sub.status);
      if (dead) {
        this.b.skip(`customer:${customerId}`, name, `subscriber status is ${dead}`);
        continue;
      }
      const services = this.api.list(await this.api.query('CustomerServices', { customerId: Number(customerId) }), 'customerServices', 'CustomerServices');
      const wifi = services.map((s) => (isObj(s.service_details) ? s.service_details : {})).filter((d) => text(d.__typename) === 'ServiceTypeWifi');
      if (wifi.length === 0) {
        const types = [...new Set(services.map((s) => (isObj(s.service_details) ? text(s.service_details.__typename) : '')).filter((x) => x !== ''))];
        this.b.skip(`customer:${customerId}`, name, types.length > 0 ? `no wireless service (only ${types.join(', ')})` : 'no active service');
        continue;
      }
      let ips = [...addressList(sub.package_ip), ...addressList(sub.equipment_ip)];
      if (ips.length === 0 && wifi.every((w) => addressList(w.ip_address).length === 0)) ips = await this.ipList(customerId);
      const macFallback = this.assemblyMacs(customerId, username)[0] ?? '';
      for (const w of wifi) this.consider(w, { customerId, username: text(w.username) || username, ips, equipmentIds: [], macFallback, suffix: '_backfill' });
    }
  }

  /** Pass 3: circuits without an address take their online session's (by username). */
  async addOnlineAddresses(domain: string): Promise<void> {
    if (!this.pending.some((p) => p.ips.length === 0)) return;
    const online = this.api.list(await this.api.query('Online', { domain }), 'onlineUsers', 'Online');
    const byUser = new Map<string, string[]>();
    for (const o of online) {
      const u = norm(text(o.username));
      if (u !== '') byUser.set(u, [...(byUser.get(u) ?? []), ...addressList(o.ip)]);
    }
    for (const p of this.pending) if (p.ips.length === 0) p.ips = byUser.get(norm(p.username)) ?? [];
  }

  /** The circuits, each with one device; parents only for circuits that can be shaped, so no empty AP branches appear. */
  addCircuits(factors: ClientRateFactors): void {
    for (const p of this.pending) {
      const parentId = p.ips.length > 0 ? this.parentOf(p) : undefined;
      if (!this.b.addClient({ id: p.id, name: p.name, parentId, downloadMaxMbps: clientRate(p.down, factors), uploadMaxMbps: clientRate(p.up, factors) })) continue;
      this.b.addDevice({ id: p.deviceId, name: `${p.name}_device`, clientId: p.id, mac: p.mac, ipv4: p.ips });
    }
  }

  /** One wireless service → a pending circuit, or a skip. */
  private consider(svc: Obj, src: ServiceSource): void {
    const { customerId } = src;
    const sn = text(svc.service_number);
    const name = src.username || fullName(this.subById.get(customerId)) || customerId;
    if (sn === '') {
      this.b.warn(`customer ${customerId} "${name}": a wireless service without service_number is ignored`);
      return;
    }
    const dead = statusDead(svc.package_status, svc.status);
    if (dead) {
      this.b.skip(sn, name, `service status is ${dead}`);
      return;
    }
    const down = vispSpeedMbps(svc.down_speed, svc.down_speed_unit);
    const up = vispSpeedMbps(svc.up_speed, svc.up_speed_unit);
    if (down === undefined || up === undefined) {
      this.b.skip(sn, name, `no usable ${down === undefined ? 'download' : 'upload'} speed`);
      return;
    }
    if (this.pending.some((p) => p.id === sn)) {
      this.b.warn(`service number ${sn} (customer ${customerId} "${name}") appears more than once; the first one is kept`);
      return;
    }
    const ips = [...new Set([...addressList(svc.ip_address), ...src.ips])];
    const mac = vispMac(svc.mac_address) || src.macFallback;
    this.pending.push({ id: sn, name, customerId, username: src.username, down, up, ips, mac, deviceId: `${sn}${src.suffix}`, equipmentIds: src.equipmentIds });
  }

  /** A backfilled customer's addresses from CustomerIpList. */
  private async ipList(customerId: string): Promise<string[]> {
    const ips: string[] = [];
    const v = (await this.api.query('CustomerIpList', { customerId: Number(customerId) })).customerIPList;
    for (const r of Array.isArray(v) ? v : [v]) if (isObj(r)) ips.push(...addressList(r.package_ip), ...addressList(r.equipment_ip));
    return [...new Set(ips)];
  }

  /** The names a customer's CPE assemblies are filed under: full name and username, normalised. */
  private locationNames(customerId: string, username: string): Set<string> {
    return new Set([norm(fullName(this.subById.get(customerId))), norm(username)].filter((x) => x !== ''));
  }

  /** MACs of the CPE assemblies filed under the customer's name, sorted. */
  private assemblyMacs(customerId: string, username: string): string[] {
    const names = this.locationNames(customerId, username);
    const macs: string[] = [];
    for (const a of this.assemblies) {
      if (!names.has(norm(text(a.location_name)))) continue;
      if (isObj(a.equipment_data)) for (const [k, v] of Object.entries(a.equipment_data)) if (/mac/i.test(k) && vispMac(v) !== '') macs.push(vispMac(v));
    }
    return macs.sort();
  }

  /** The AP node of the best-scored CPE assembly's parent equipment, or undefined. */
  private parentOf(p: Pending): string | undefined {
    const names = this.locationNames(p.customerId, p.username);
    let best: { row: Obj; score: number; id: number } | undefined;
    for (const a of this.assemblies) {
      const aid = text(a.id);
      const byId = p.equipmentIds.includes(aid);
      const byLocation = names.has(norm(text(a.location_name)));
      if (!byId && !byLocation) continue;
      const score = assemblyScore(a, p, byId, byLocation);
      const idNum = Number(aid) || 0;
      if (!best || score > best.score || (score === best.score && idNum > best.id)) best = { row: a, score, id: idNum };
    }
    const parent = best ? text(best.row.parent_id) : '';
    if (!best || parent === '' || parent === '0') return undefined;
    const pd = isObj(best.row.parent_data) ? best.row.parent_data : {};
    return this.ensureEquipment(parent, {
      name: text(pd.description) || text(pd.name),
      siteId: text(best.row.parent_site_id) === '0' ? '' : text(best.row.parent_site_id),
      siteName: text(pd.location_name),
    });
  }

  /** The AP node of an equipment id, added with its parent chain up to a site. */
  private ensureEquipment(eqId: string, fallback: { name?: string; siteId?: string; siteName?: string }, seen = new Set<string>()): string {
    const id = `visp_eq_${eqId}`;
    if (this.b.hasNode(id) || seen.has(eqId)) return id;
    seen.add(eqId);
    const row = this.eqById.get(eqId);
    let parentId: string | undefined;
    const up = text(row?.parent_id);
    if (row && up !== '' && up !== '0' && this.eqById.has(up) && !seen.has(up)) parentId = this.ensureEquipment(up, {}, seen);
    else if (row) parentId = this.ensureSite(text(row.location_id), text(row.location_name));
    else parentId = this.ensureSite(fallback.siteId ?? '', fallback.siteName ?? '');
    const name = text(row?.description) || text(row?.name) || fallback.name || `Equipment ${eqId}`;
    this.b.addNode({ id, name, kind: 'ap', parentId, networkJsonId: `visp:eq:${eqId}` });
    return id;
  }

  /** The site node of a location (by id, else by name), added once; undefined without either. */
  private ensureSite(locationId: string, locationName: string): string | undefined {
    if (locationId === '' && locationName === '') return undefined;
    const id = locationId !== '' ? `visp_site_${locationId}` : `visp_site_name_${slug(locationName)}`;
    if (!this.b.hasNode(id)) this.b.addNode({ id, name: locationName || `Site ${locationId}`, kind: 'site', networkJsonId: `visp:site:${locationId || locationName}` });
    return id;
  }
}

/** How well a CPE assembly row matches a circuit (upstream's ranking). */
function assemblyScore(a: Obj, p: Pending, byId: boolean, byLocation: boolean): number {
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
  return score;
}
