/**
 * MikroTik IPv6 enrichment (`[integration_common] use_mikrotik_ipv6` or `[uisp_integration]
 * ipv6_with_mikrotik`; router list `[mikrotik_ipv6] config_path`, default /etc/libreqos/mikrotik_ipv6.toml).
 * After an integration has added its devices and before the pair is built, every listed RouterOS v7
 * router is asked over its REST API (basic auth, HTTPS by default) for
 *
 *   GET /rest/ip/dhcp-server/lease      IPv4 lease → MAC  (`address` / `active-address`, `active-mac-address` / `mac-address`)
 *   GET /rest/ip/arp                    IPv4 → MAC        (`address`, `mac-address`)
 *   GET /rest/ipv6/dhcp-server/binding  delegated prefix  (`address`, `duid`, `client-address`, `disabled`)
 *   GET /rest/ipv6/neighbor             link-local → MAC  (`address`, `mac-address`)
 *
 * Matching rule (per router, then merged over all routers):
 * - a binding's client MAC is the MAC inside its DUID (DUID-LLT / DUID-LL with hardware type 1,
 *   Ethernet), else the MAC the neighbor table gives for its `client-address`; disabled bindings,
 *   link-local and `::` prefixes are ignored;
 * - an IPv4 address's MAC comes from the DHCP leases, else from the ARP table; an address that two
 *   different MACs claim at the same level is ambiguous and not used;
 * - a device gets the prefixes bound to the MAC of each of its IPv4 host addresses, and those bound to
 *   its own MAC as the CRM gives it. They are appended to its IPv6 list, so the shared rules then apply
 *   (ignore_subnets, first-claim duplicate removal; UISP's allow_subnets rule too — a warning says so
 *   when that drops prefixes).
 *
 * Router file (upstream's format): `version = 1` and one `[[router]]` table per router with `name`,
 * `host`, `username`, `password` (upstream's `port`, `use_ssl`, `plaintext_login` belong to the binary
 * API and are not used: one warning per file says so). lqos-ts additions: `rest_url` (default `https://<host>`), `ca_file` (a PEM
 * CA that signed the router's certificate; default: the system trust store) and
 * `allow_insecure_http = true`, required for an `http://` rest_url (the password travels in clear).
 *
 * Failures never fail the run: a missing/unreadable file, a bad entry or a router that does not answer
 * is a warning naming the router (never its password) and the run goes on without those prefixes.
 */
import { readFileSync } from 'node:fs';
import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { parse as parseToml } from 'smol-toml';
import type { TopologyBuilder } from './graph.ts';
import type { DeviceInput } from './graphModel.ts';
import { basicAuth, redactUrl } from './http.ts';
import { canonicalIp, IpFilter } from './ip.ts';
import type { IntegrationLogger } from './log.ts';

export interface MikrotikRouter {
  name: string;
  /** REST base, e.g. `https://10.0.0.1` (no trailing slash, no user-info). */
  baseUrl: string;
  username: string;
  password: string;
  caFile?: string;
}

export const ROUTEROS_PATHS = {
  leases: '/rest/ip/dhcp-server/lease',
  arp: '/rest/ip/arp',
  bindings: '/rest/ipv6/dhcp-server/binding',
  neighbors: '/rest/ipv6/neighbor',
} as const;

type Row = Record<string, unknown>;
/** What one router answered. */
export type RouterData = Record<keyof typeof ROUTEROS_PATHS, Row[]>;

/** Prefixes by IPv4 address (`a.b.c.d`) and by MAC (`AA:BB:CC:DD:EE:FF`). */
export interface Ipv6Map {
  byIpv4: Map<string, Set<string>>;
  byMac: Map<string, Set<string>>;
  /** IPv4 addresses skipped because two MACs claim them. */
  ambiguous: string[];
}

const s = (v: unknown): string => (typeof v === 'string' ? v.trim() : typeof v === 'number' ? String(v) : '');

/**
 * The routers of the file's text. Bad entries are skipped with a warning (never quoting a password);
 * a file that does not parse throws an Error naming the path.
 */
export function parseRouterList(text: string, path: string, warn: (msg: string) => void): MikrotikRouter[] {
  let doc: Row;
  try {
    doc = parseToml(text) as Row;
  } catch (err) {
    const first = String((err as Error).message).split('\n')[0];
    throw new Error(`${path} is not valid TOML (${first.replace(/"[^"]*"/g, '"…"')})`);
  }
  const list = Array.isArray(doc.router) ? (doc.router as unknown[]) : [];
  if (list.length === 0) warn(`MikroTik IPv6: ${path} lists no [[router]]; no IPv6 prefixes are added`);
  const out: MikrotikRouter[] = [];
  warnBinaryApiKeys(list, path, warn);
  list.forEach((raw, i) => {
    const r = (raw ?? {}) as Row;
    const name = s(r.name) || s(r.host) || `router #${i + 1}`;
    const host = s(r.host);
    const missing = [['host', host], ['username', s(r.username)], ['password', s(r.password)]].filter(([, v]) => v === '').map(([k]) => k);
    const restUrl = (s(r.rest_url) || (host ? `https://${host.includes(':') && !host.startsWith('[') ? `[${host}]` : host}` : '')).replace(/\/+$/, '');
    if (missing.length > 0) return warn(`MikroTik IPv6: router "${name}" in ${path}: ${missing.join(', ')} missing; router skipped`);
    let url: URL;
    try {
      url = new URL(restUrl);
    } catch {
      return warn(`MikroTik IPv6: router "${name}" in ${path}: rest_url is not a URL; router skipped`);
    }
    if (url.protocol === 'http:' && r.allow_insecure_http !== true) {
      return warn(
        `MikroTik IPv6: router "${name}" in ${path}: rest_url is http://, which would send the password in clear text; ` +
          'enable the www-ssl service on the router and use https://, or set allow_insecure_http = true for this router; router skipped',
      );
    }
    if (url.protocol !== 'http:' && url.protocol !== 'https:') return warn(`MikroTik IPv6: router "${name}" in ${path}: rest_url must be https:// (or http://); router skipped`);
    url.username = '';
    url.password = '';
    out.push({ name, baseUrl: url.toString().replace(/\/+$/, ''), username: s(r.username), password: s(r.password), ...(s(r.ca_file) ? { caFile: s(r.ca_file) } : {}) });
  });
  return out;
}

const BINARY_API_KEYS = ['port', 'use_ssl', 'plaintext_login'] as const;

/** One warning per file for upstream's binary-API keys, which the REST client does not use. */
function warnBinaryApiKeys(list: unknown[], path: string, warn: (msg: string) => void): void {
  const used = new Set<string>();
  const routers: string[] = [];
  list.forEach((raw, i) => {
    const r = (raw ?? {}) as Row;
    const keys = BINARY_API_KEYS.filter((k) => r[k] !== undefined);
    if (keys.length === 0) return;
    keys.forEach((k) => used.add(k));
    routers.push(`"${s(r.name) || s(r.host) || `router #${i + 1}`}"`);
  });
  if (routers.length === 0) return;
  warn(
    `MikroTik IPv6: ${[...used].join(', ')} in ${path} (router ${routers.join(', ')}) belong to RouterOS's binary API and are not used: ` +
      'lqos-ts reads the REST API at rest_url (default https://<host>; put a non-default port there, e.g. rest_url = "https://10.0.0.1:8443"). Remove them to silence this warning',
  );
}

/** `AA:BB:CC:DD:EE:FF` from any common MAC spelling, or '' when it is not one. */
export function normaliseMac(v: unknown): string {
  const hex = s(v).replace(/^0x/i, '').replace(/[^0-9a-f]/gi, '').toUpperCase();
  return hex.length === 12 && /^[0-9A-Fa-f:.\- ]+$/.test(s(v).replace(/^0x/i, '')) ? hex.match(/../g)!.join(':') : '';
}

/** The Ethernet MAC inside a DHCPv6 DUID (DUID-LLT type 1 or DUID-LL type 3, hardware type 1), or ''. */
export function macFromDuid(duid: unknown): string {
  const hex = s(duid).replace(/^0x/i, '').replace(/[:\- ]/g, '').toUpperCase();
  if (!/^[0-9A-F]+$/.test(hex)) return '';
  const type = hex.slice(0, 4);
  const hw = hex.slice(4, 8);
  if (hw !== '0001') return '';
  const mac = type === '0001' && hex.length === 28 ? hex.slice(16) : type === '0003' && hex.length === 20 ? hex.slice(8) : '';
  return mac === '' ? '' : mac.match(/../g)!.join(':');
}

/** `fe80::1` in one spelling (for matching binding client addresses with neighbor addresses). */
function ipv6Key(v: unknown): string {
  const c = canonicalIp(s(v).split('/')[0]);
  return 'error' in c || c.family !== 'v6' ? '' : c.prefix;
}

const isTrue = (v: unknown) => v === true || s(v).toLowerCase() === 'true' || s(v).toLowerCase() === 'yes';

/** A delegated prefix worth adding (canonical), or '' (link-local, `::`, not IPv6, unparsable). */
function usablePrefix(v: unknown): string {
  const c = canonicalIp(s(v));
  if ('error' in c || c.family !== 'v6') return '';
  if (c.prefix.startsWith('::/') || /^fe[89ab]/i.test(c.prefix)) return '';
  return c.prefix;
}

function addTo(map: Map<string, Set<string>>, key: string, value: string): void {
  const set = map.get(key) ?? new Set<string>();
  set.add(value);
  map.set(key, set);
}

/** IPv4 → MAC of one router: leases first, ARP only for addresses no lease names; ambiguous ones dropped. */
function ipv4Macs(data: RouterData, ambiguous: Set<string>): Map<string, string> {
  const out = new Map<string, string>();
  for (const rows of [data.leases, data.arp]) {
    const level = new Map<string, Set<string>>();
    for (const r of rows) {
      if (isTrue(r.disabled)) continue;
      const ip = canonicalIp(s(r['active-address']) || s(r.address));
      const mac = normaliseMac(s(r['active-mac-address']) || s(r['mac-address']));
      if ('error' in ip || ip.family !== 'v4' || mac === '') continue;
      addTo(level, ip.prefix.replace(/\/32$/, ''), mac);
    }
    for (const [ip, macs] of level) {
      if (out.has(ip)) continue;
      if (macs.size > 1) ambiguous.add(ip);
      else out.set(ip, [...macs][0]);
    }
  }
  return out;
}

/** IPv4 / MAC → delegated prefixes over all routers' answers (see the module comment). */
export function buildIpv6Map(routers: RouterData[]): Ipv6Map {
  const map: Ipv6Map = { byIpv4: new Map(), byMac: new Map(), ambiguous: [] };
  const ambiguous = new Set<string>();
  for (const data of routers) {
    const neighborMac = new Map<string, string>();
    for (const n of data.neighbors) {
      const key = ipv6Key(n.address);
      const mac = normaliseMac(n['mac-address']);
      if (key !== '' && mac !== '' && !neighborMac.has(key)) neighborMac.set(key, mac);
    }
    const prefixesByMac = new Map<string, Set<string>>();
    for (const b of data.bindings) {
      if (isTrue(b.disabled)) continue;
      const prefix = usablePrefix(b.address);
      const mac = macFromDuid(b.duid) || neighborMac.get(ipv6Key(b['client-address'])) || '';
      if (prefix !== '' && mac !== '') addTo(prefixesByMac, mac, prefix);
    }
    for (const [mac, set] of prefixesByMac) for (const p of set) addTo(map.byMac, mac, p);
    for (const [ip, mac] of ipv4Macs(data, ambiguous)) for (const p of prefixesByMac.get(mac) ?? []) addTo(map.byIpv4, ip, p);
  }
  map.ambiguous = [...ambiguous].sort();
  return map;
}

/** The prefixes a device gets: by each IPv4 host address, then by its own MAC; without those it already has. */
export function prefixesFor(d: DeviceInput, map: Ipv6Map): string[] {
  const out = new Set<string>();
  for (const raw of [...(d.ipv4 ?? []), ...(d.ipv6 ?? [])]) {
    const c = canonicalIp(String(raw));
    if ('error' in c || c.family !== 'v4' || !c.prefix.endsWith('/32')) continue;
    for (const p of map.byIpv4.get(c.prefix.slice(0, -3)) ?? []) out.add(p);
  }
  for (const p of map.byMac.get(normaliseMac(d.mac)) ?? []) out.add(p);
  const have = new Set([...(d.ipv4 ?? []), ...(d.ipv6 ?? [])].map((x) => {
    const c = canonicalIp(String(x));
    return 'error' in c ? x : c.prefix;
  }));
  return [...out].filter((p) => !have.has(p)).sort();
}

export interface FetchOptions {
  timeoutMs: number;
  maxBytes?: number;
}

/** One REST GET (basic auth, the router's CA) → the JSON list; errors name the path, never the password. */
export function routerGet(r: MikrotikRouter, path: string, o: FetchOptions): Promise<Row[]> {
  const url = new URL(`${r.baseUrl}${path}`);
  const ca = r.caFile ? readFileSync(r.caFile) : undefined;
  const maxBytes = o.maxBytes ?? 64 * 1024 * 1024;
  return new Promise((resolve, reject) => {
    const req = (url.protocol === 'https:' ? httpsRequest : httpRequest)(
      url,
      { method: 'GET', headers: { Authorization: basicAuth(r.username, r.password), Accept: 'application/json' }, timeout: o.timeoutMs, ...(ca ? { ca } : {}) },
      (res) => {
        const chunks: Buffer[] = [];
        let total = 0;
        res.on('data', (c: Buffer) => {
          total += c.length;
          if (total > maxBytes) req.destroy(new Error(`response larger than ${maxBytes} bytes`));
          else chunks.push(c);
        });
        res.on('error', reject);
        res.on('end', () => {
          const code = res.statusCode ?? 0;
          if (code === 401 || code === 403) return reject(new Error(`GET ${path} → ${code} (login refused: check the username and password)`));
          if (code < 200 || code >= 300) return reject(new Error(`GET ${path} → HTTP ${code}`));
          try {
            const body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as unknown;
            if (!Array.isArray(body)) return reject(new Error(`GET ${path}: the answer is not a JSON list`));
            resolve(body.filter((x): x is Row => x !== null && typeof x === 'object' && !Array.isArray(x)));
          } catch {
            reject(new Error(`GET ${path}: the answer is not JSON`));
          }
        });
      },
    );
    req.on('timeout', () => req.destroy(new Error(`GET ${path} timed out after ${o.timeoutMs} ms`)));
    req.on('error', (err: NodeJS.ErrnoException) => reject(new Error(err.message.startsWith('GET ') ? err.message : `GET ${path}: ${err.code ?? ''} ${err.message}`.replace(/\s+/g, ' ').trim())));
    req.end();
  });
}

/** The four tables of one router. */
export async function fetchRouter(r: MikrotikRouter, o: FetchOptions): Promise<RouterData> {
  const keys = Object.keys(ROUTEROS_PATHS) as (keyof typeof ROUTEROS_PATHS)[];
  // allSettled: no request is left running when one fails; the first failure is reported.
  const settled = await Promise.allSettled(keys.map((k) => routerGet(r, ROUTEROS_PATHS[k], o)));
  const failed = settled.find((x) => x.status === 'rejected');
  if (failed) throw failed.reason;
  return Object.fromEntries(keys.map((k, i) => [k, (settled[i] as PromiseFulfilledResult<Row[]>).value])) as RouterData;
}

/** A text with every occurrence of the secrets masked. */
const scrub = (text: string, secrets: string[]) => secrets.filter((x) => x !== '').reduce((acc, x) => acc.split(x).join('***'), text);

/**
 * The enrichment step of a run (called by finishRun when `builder.opts.mikrotikIpv6ConfigPath` is set):
 * reads the router list, asks every router, and appends the matching prefixes to the added devices.
 * Returns how many prefixes were added. Never throws for a router, file or network problem.
 */
export async function addMikrotikIpv6(builder: TopologyBuilder, log: IntegrationLogger, o: FetchOptions): Promise<number> {
  const path = builder.opts.mikrotikIpv6ConfigPath;
  if (!path) return 0;
  const warn = (msg: string) => builder.warn(msg);
  let routers: MikrotikRouter[];
  try {
    routers = parseRouterList(readFileSync(path, 'utf8'), path, warn);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    const why = code === 'ENOENT' ? `${path} does not exist (create it with one [[router]] per MikroTik router, or turn MikroTik IPv6 off)` : code ? `cannot read ${path} (${code})` : (err as Error).message;
    warn(`MikroTik IPv6: ${why}; no IPv6 prefixes are added`);
    return 0;
  }
  const answers: RouterData[] = [];
  await Promise.all(
    routers.map(async (r) => {
      try {
        answers.push(await fetchRouter(r, o));
        log.debug(`MikroTik IPv6: router "${r.name}" (${redactUrl(r.baseUrl)}) answered`);
      } catch (err) {
        warn(`MikroTik IPv6: router "${r.name}" (${redactUrl(r.baseUrl)}): ${scrub((err as Error).message, [r.password])}; its IPv6 prefixes are not added this run`);
      }
    }),
  );
  if (answers.length === 0) return 0;
  const map = buildIpv6Map(answers);
  if (map.ambiguous.length > 0) {
    warn(`MikroTik IPv6: ${map.ambiguous.length} IPv4 address(es) have more than one MAC in the routers' leases/ARP and get no prefix: ${map.ambiguous.slice(0, 10).join(', ')}`);
  }
  return appendPrefixes(builder, map, log, routers.length, answers.length);
}

/** Appends each device's prefixes; warns when UISP's allow_subnets rule will drop some of them. */
function appendPrefixes(builder: TopologyBuilder, map: Ipv6Map, log: IntegrationLogger, asked: number, answered: number): number {
  const o = builder.opts;
  const allowRule = o.ipFilterMode === 'allow-and-ignore' ? new IpFilter('allow-and-ignore', [], o.allowSubnets) : undefined;
  let added = 0;
  let devices = 0;
  let outsideAllow = 0;
  for (const d of builder.addedDevices()) {
    const prefixes = prefixesFor(d, map);
    if (prefixes.length === 0) continue;
    d.ipv6 = [...(d.ipv6 ?? []), ...prefixes];
    added += prefixes.length;
    devices++;
    if (allowRule) outsideAllow += prefixes.filter((p) => allowRule.rejects(p) !== null).length;
  }
  log.info(`${o.crm}: MikroTik IPv6: ${added} prefix(es) added to ${devices} device(s) from ${answered} of ${asked} router(s)`);
  if (outsideAllow > 0) {
    builder.warn(
      `MikroTik IPv6: ${outsideAllow} prefix(es) are outside [ip_ranges] allow_subnets and are dropped (${o.crm} keeps only addresses inside allow_subnets); add your IPv6 ranges to allow_subnets`,
    );
  }
  return added;
}
