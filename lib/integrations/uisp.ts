/**
 * UISP (spec §3.1): `GET {url}/nms/api/v2.1/{sites, devices?withInterfaces=true, data-links}` with
 * `X-Auth-Token`, fetched concurrently, no pagination.
 *
 * Model (a simplification of upstream's full2 graph, see README "UISP"):
 * - infrastructure sites (`type: "site"`) form the tree. The root site is `uisp_integration.site`, else
 *   (non-full strategies) the site(s) on the Internet side of `canDelete: false` data links. The root
 *   itself is not a node; the other sites hang below it along the cheapest path over UISP parent links
 *   and device↔device data links (edge cost 10000 − capacity, like upstream's A*). Sites with no path
 *   go under a generated `Orphans` site;
 * - an AP node (`uisp:device:<id>`) is created for each device in an infrastructure site that serves
 *   at least one client, with its radio capacity (airMax flexible frame, 5AC × airmax_capacity,
 *   LTU × ltu_capacity, else the overview capacities; 0 → generated_pn);
 * - each client site (`type: "endpoint"`) is a circuit; its AP is found by the CPE's `apDevice`, else a
 *   data link to one of its devices, else a site-level data link, else its UISP parent site; failing
 *   all, it is shaped under `Orphans` (upstream drops such clients);
 * - rates: `suspended_strategy = "slow"` → 0.1 Mbps; `"ignore"` → suspended clients are skipped;
 *   QoS rates → min = base × commit, max = (base + burst) × overhead; else generated_pn × overhead;
 *   floor 0.1 Mbps; the slowest negotiated Ethernet port of the CPE × ethernet_port_limit_multiplier
 *   caps both maxima (when ethernet_port_limits_enabled);
 * - IPs: allow_subnets AND NOT ignore_subnets (§2.8);
 * - options: `infrastructure_transport_caps_enabled` (transportCapped), `use_ptmp_as_parent`
 *   (UispImport.ptmpFeeder), `enable_squashing` / `do_not_squash_sites` / `squash_sites` (squashSites);
 *   a set but unknown `strategy` or `suspended_strategy` is an IntegrationError (checkStrategy,
 *   checkSuspendedStrategy).
 */
import type { LqosConfig } from '../config/schema.ts';
import {
  buildOptionsFromConfig,
  canonicalIp,
  endpointOf,
  finishRun,
  getJson,
  IntegrationError,
  joinUrl,
  num,
  reqArray,
  requireSettings,
  parseStrategy,
  resolveStrategy,
  runRequest,
  text,
  TopologyBuilder,
  type ClientInput,
  type DeviceInput,
  type InfraNodeInput,
  type Obj,
  type RunOptions,
  type RunResult,
  type Strategy,
} from './common/index.ts';

export const CRM = 'UISP';

const obj = (v: unknown): Obj => (v !== null && typeof v === 'object' && !Array.isArray(v) ? (v as Obj) : {});
const str = (v: unknown): string | undefined => (typeof v === 'string' && v !== '' ? v : typeof v === 'number' ? String(v) : undefined);
const ORPHANS = 'libreqos:generated:uisp:site:orphans';

type UispSettings = LqosConfig['uisp_integration'];
/** One fetched list and the endpoint it came from. */
type List = { rows: unknown[]; endpoint: string };
/** Download / upload Mbps. */
type Capacity = { dl: number; ul: number };
type ClientRates = { downloadMaxMbps: number; uploadMaxMbps: number; downloadMinMbps: number; uploadMinMbps: number };

interface Site {
  id: string;
  name: string;
  client: boolean;
  parentId?: string;
  suspended: boolean;
  address: string;
  latitude?: number;
  longitude?: number;
  qos: Obj;
}

interface UDevice {
  id: string;
  name: string;
  mac: string;
  siteId?: string;
  role: string;
  type: string;
  model: string;
  apDeviceId?: string;
  raw: Obj;
}

interface Link {
  fromDevice?: string;
  toDevice?: string;
  fromSite?: string;
  toSite?: string;
  /** `canDelete: false`: the Internet uplink. */
  wan: boolean;
}

/** The parsed UISP inventory. */
interface Inventory {
  sites: Map<string, Site>;
  devices: Map<string, UDevice>;
  devicesBySite: Map<string, UDevice[]>;
  links: Link[];
}

/** An infrastructure (not client) site. */
const isInfraSite = (inv: Inventory, id: string | undefined) => (id ? inv.sites.get(id) : undefined)?.client === false;
const siteNode = (id: string) => `uisp:site:${id}`;

/** `"Doe, John"` → `"John Doe"` unless a part has digits or looks like a company. */
export function normaliseClientName(name: string): string {
  const m = /^([^,]+),\s*([^,]+)$/.exec(name.trim());
  if (!m) return name.trim();
  const [last, first] = [m[1].trim(), m[2].trim()];
  if (/\d/.test(last) || /\d/.test(first)) return name.trim();
  if (/\b(llc|l\.l\.c\.|inc|corp|corporation|co|company|ltd|limited|gmbh|plc|lp|llp)\.?$/i.test(first)) return name.trim();
  return `${first} ${last}`;
}

/** `"100 Mbps"`, `"1 Gbps"`, `"1000"`, `1000`, `"100-full"` → Mbps, or undefined. */
export function parseLinkSpeed(v: unknown): number | undefined {
  if (typeof v === 'number') return v > 0 ? v : undefined;
  if (typeof v !== 'string') return undefined;
  const m = /^\s*(\d+(?:\.\d+)?)\s*([kmg]?)(?:bps|bit\/s|b\/s)?/i.exec(v);
  if (!m) return undefined;
  const x = Number(m[1]);
  const unit = m[2].toLowerCase();
  const mbps = unit === 'g' ? x * 1000 : unit === 'k' ? x / 1000 : x;
  return mbps > 0 ? mbps : undefined;
}

export async function run(config: LqosConfig, opts: RunOptions): Promise<RunResult> {
  const c = requireSettings(CRM, config, 'uisp_integration', ['url', 'token']);
  if (c.insecure_ssl) opts.log.warn(`${CRM}: insecure_ssl is not supported; TLS certificates are verified`);
  checkStrategy(c.strategy);
  checkSuspendedStrategy(c.suspended_strategy);
  const strategy: Strategy = resolveStrategy(config, ['flat', 'ap_only', 'ap_site', 'full'], c.strategy, 'full');
  const [devicesRes, sitesRes, linksRes] = await fetchLists(c, opts);
  const sites = parseSites(sitesRes);
  const devices = parseDevices(devicesRes);
  const inv: Inventory = { sites, devices, devicesBySite: bySite(devices), links: parseLinks(linksRes, devices) };

  const pn: Capacity = { dl: config.queues.generated_pn_download_mbps, ul: config.queues.generated_pn_upload_mbps };
  const transportMultiplier = c.infrastructure_transport_caps_enabled ? config.integration_common.ethernet_port_limit_multiplier : undefined;
  const capacity = memoCapacity((d) => transportCapped(deviceCapacity(d, c, pn), d, inv, transportMultiplier, opts));
  const roots = findRoots(c.site.trim(), strategy, inv);
  const via = cheapestPaths(roots, siteEdges(inv, capacity, pn));

  const b = new TopologyBuilder(
    buildOptionsFromConfig(config, CRM, strategy, {
      ipFilterMode: 'allow-and-ignore',
      exceptionCpes: [], // UISP applies them to clients, by CPE (UispImport.exceptionParent)
      rateFloorMbps: 0.1,
      commitRatio: c.commit_bandwidth_multiplier,
      clientMultiplierApplied: false, // UISP's own rate rule: bandwidth_overhead_factor and commit_bandwidth_multiplier
    }),
    opts.log,
  );
  const ui = new UispImport(b, inv, new Set(roots), capacity);
  ui.addSites(via, pn, c.use_ptmp_as_parent);
  const rules: ClientRules = {
    excluded: new Set(c.exclude_sites),
    exceptionCpes: c.exception_cpes,
    suspendedStrategy: c.suspended_strategy.trim().toLowerCase(),
    overhead: c.bandwidth_overhead_factor,
    commit: c.commit_bandwidth_multiplier,
    ethernetLimit: config.integration_common.ethernet_port_limits_enabled,
    ethernetMultiplier: config.integration_common.ethernet_port_limit_multiplier,
    pn,
  };
  for (const s of sites.values()) if (s.client) ui.addClient(s, rules);
  ui.flush({ auto: c.enable_squashing, keep: new Set(c.do_not_squash_sites), force: new Set(c.squash_sites) }, pn, opts);
  return finishRun(b, opts);
}

const VALID_STRATEGIES = '"flat", "ap_only", "ap_site", "full" (or "full2", the same as "full")';

/** A set but unknown `uisp_integration.strategy` is an error naming the valid ones (upstream: silently full). */
export function checkStrategy(value: string): void {
  if (value.trim() !== '' && parseStrategy(value) === undefined) {
    throw new IntegrationError(`${CRM}: uisp_integration.strategy = ${JSON.stringify(value)} is not a strategy; use one of ${VALID_STRATEGIES}, or leave it empty`, { crm: CRM });
  }
}

const SUSPENDED_STRATEGIES = ['', 'none', 'ignore', 'slow'];

/**
 * A `uisp_integration.suspended_strategy` other than "", "none", "ignore" or "slow" (any case) is an
 * error naming them (upstream: a misspelt value shapes suspended clients at their full plan, silently).
 */
export function checkSuspendedStrategy(value: string): void {
  if (!SUSPENDED_STRATEGIES.includes(value.trim().toLowerCase())) {
    throw new IntegrationError(
      `${CRM}: uisp_integration.suspended_strategy = ${JSON.stringify(value)} is not a strategy; use "none" (shape suspended clients at their plan), "ignore" (leave them out) or "slow" (0.1 Mbps), or leave it empty`,
      { crm: CRM },
    );
  }
}

/** Computes each device's capacity once (it is asked for per edge, AP and site). */
function memoCapacity(f: (d: UDevice) => Capacity): (d: UDevice) => Capacity {
  const memo = new Map<string, Capacity>();
  return (d) => {
    let v = memo.get(d.id);
    if (!v) memo.set(d.id, (v = f(d)));
    return { ...v };
  };
}

/**
 * `infrastructure_transport_caps_enabled`: an infrastructure device (in a non-client site) is capped in
 * both directions at its transport ceiling × ethernet_port_limit_multiplier (rounded) — the fastest
 * active Ethernet/SFP port (`currentSpeed`, else `speed` when the port is up), else a model ceiling
 * (AF60-LR: 1 Gbps). A radio cannot move more than its wired port carries.
 */
function transportCapped(cap: Capacity, d: UDevice, inv: Inventory, multiplier: number | undefined, opts: RunOptions): Capacity {
  if (multiplier === undefined || !isInfraSite(inv, d.siteId)) return cap;
  const ceiling = transportCeiling(d);
  if (!ceiling) return cap;
  const limit = Math.max(1, Math.round(ceiling.mbps * multiplier));
  if (cap.dl <= limit && cap.ul <= limit) return cap;
  opts.log.debug(`${CRM}: ${d.name} (${d.id}): capacity ${cap.dl}/${cap.ul} Mbps capped at ${limit} Mbps (${ceiling.why} × ${multiplier})`);
  return { dl: Math.min(cap.dl, limit), ul: Math.min(cap.ul, limit) };
}

const TRANSPORT_TYPES = new Set(['eth', 'ethernet', 'sfp', 'sfp+', 'sfpplus', 'fiber', 'optical']);
/** Known port ceilings by model (letters and digits only, upper case) in Mbps. */
const MODEL_PORT_CEILING: Record<string, number> = { AF60LR: 1000 };

/** The fastest active wired (Ethernet/SFP) port of a device, else its model's port ceiling; Mbps. */
export function transportCeiling(d: UDevice): { mbps: number; why: string } | undefined {
  let best: { mbps: number; why: string } | undefined;
  for (const rawIf of Array.isArray(d.raw.interfaces) ? (d.raw.interfaces as unknown[]) : []) {
    const itf = obj(rawIf);
    const iid = obj(itf.identification);
    const type = text(iid.type).toLowerCase();
    const name = text(iid.name);
    if (['wlan', 'wifi', 'wireless'].includes(type)) continue;
    if (!TRANSPORT_TYPES.has(type) && !/^(eth|sfp|fiber)/i.test(name)) continue;
    const st = obj(itf.status);
    const up = /^(connected|up|active)$/i.test(text(st.status));
    const speed = parseLinkSpeed(st.currentSpeed) ?? (up ? parseLinkSpeed(st.speed) : undefined);
    if (speed !== undefined && (!best || speed > best.mbps)) best = { mbps: speed, why: `port ${name || type} at ${speed} Mbps` };
  }
  if (best) return best;
  const model = text(obj(d.raw.identification).model).replace(/[^0-9a-z]/gi, '').toUpperCase();
  const ceiling = MODEL_PORT_CEILING[model];
  return ceiling ? { mbps: ceiling, why: `model ${text(obj(d.raw.identification).model)} has ${ceiling} Mbps ports` } : undefined;
}

/** devices (with interfaces), sites and data links, fetched concurrently. */
function fetchLists(c: UispSettings, opts: RunOptions): Promise<List[]> {
  let base = c.url.trim().replace(/\/+$/, '');
  if (!base.endsWith('/nms/api/v2.1')) base = `${base}/nms/api/v2.1`;
  const http = runRequest(CRM, opts, { headers: { 'X-Auth-Token': c.token }, authHint: 'check uisp_integration.token', urlHint: 'check uisp_integration.url' });
  const fetchList = async (path: string): Promise<List> => {
    const url = joinUrl(base, path);
    const endpoint = endpointOf('GET', url);
    const body = await getJson(url, http);
    return { rows: reqArray(body, { crm: CRM, endpoint }), endpoint };
  };
  return Promise.all([fetchList('devices?withInterfaces=true'), fetchList('sites'), fetchList('data-links')]);
}

/** A required field that is missing or invalid (with the value found, when there is one). */
function bad(endpoint: string, field: string, item: string, got?: unknown): IntegrationError {
  return new IntegrationError(
    `${CRM}: ${endpoint}: required field "${field}" is missing or invalid in ${item}${got === undefined ? '' : ` (got ${JSON.stringify(got)})`}; the response is not what this integration expects`,
    { crm: CRM, endpoint },
  );
}

/** Sites by id (the first of a repeated id wins). */
function parseSites(res: List): Map<string, Site> {
  const sites = new Map<string, Site>();
  res.rows.forEach((raw, i) => {
    const s = obj(raw);
    const id = str(s.id);
    const item = `site #${i + 1}${id ? ` (${id})` : ''}`;
    if (!id) throw bad(res.endpoint, 'id', item);
    const ident = obj(s.identification);
    const type = ident.type;
    if (type !== 'site' && type !== 'endpoint') throw bad(res.endpoint, 'identification.type', item, type ?? null);
    if (typeof ident.suspended !== 'boolean') throw bad(res.endpoint, 'identification.suspended', item, ident.suspended ?? null);
    if (sites.has(id)) return;
    const desc = obj(s.description);
    const loc = obj(desc.location);
    sites.set(id, {
      id,
      name: text(ident.name) || id,
      client: type === 'endpoint',
      parentId: str(obj(ident.parent).id),
      suspended: ident.suspended,
      address: text(desc.address),
      latitude: num(loc.latitude),
      longitude: num(loc.longitude),
      qos: obj(s.qos),
    });
  });
  return sites;
}

/** Devices by id. */
function parseDevices(res: List): Map<string, UDevice> {
  const devices = new Map<string, UDevice>();
  res.rows.forEach((raw, i) => {
    const d = obj(raw);
    const ident = obj(d.identification);
    const id = str(ident.id);
    if (!id) throw bad(res.endpoint, 'identification.id', `device #${i + 1}`);
    if (devices.has(id)) return;
    const name = text(ident.hostname) || text(ident.name) || id;
    devices.set(id, {
      id,
      name,
      mac: text(ident.mac),
      siteId: str(obj(ident.site).id),
      role: text(ident.role).toLowerCase(),
      type: text(ident.type),
      model: `${text(ident.model)} ${text(ident.modelName)}`,
      apDeviceId: str(obj(obj(d.attributes).apDevice).id),
      raw: d,
    });
  });
  return devices;
}

function bySite(devices: Map<string, UDevice>): Map<string, UDevice[]> {
  const out = new Map<string, UDevice[]>();
  for (const d of devices.values()) {
    if (!d.siteId) continue;
    const list = out.get(d.siteId) ?? [];
    list.push(d);
    out.set(d.siteId, list);
  }
  return out;
}

/** Data links with their device and site ends (a device end gives its site). */
function parseLinks(res: List, devices: Map<string, UDevice>): Link[] {
  return res.rows.map((raw, i) => {
    const l = obj(raw);
    const id = str(l.id);
    const item = `data link #${i + 1}${id ? ` (${id})` : ''}`;
    if (!id) throw bad(res.endpoint, 'id', item);
    if (typeof l.canDelete !== 'boolean') throw bad(res.endpoint, 'canDelete', item, l.canDelete ?? null);
    const end = (e: unknown) => {
      const o = obj(e);
      const dev = str(obj(obj(o.device).identification).id);
      const site = str(obj(obj(o.site).identification).id) ?? (dev ? devices.get(dev)?.siteId : undefined);
      return { dev, site };
    };
    const f = end(l.from);
    const t = end(l.to);
    return { fromDevice: f.dev, toDevice: t.dev, fromSite: f.site, toSite: t.site, wan: !l.canDelete };
  });
}

/** A device's radio capacity (airMax flexible frame, 5AC / LTU factors, else the overview); 0 → generated_pn. */
function deviceCapacity(d: UDevice, c: UispSettings, pn: Capacity): Capacity {
  if (c.ignore_calculated_capacity) return { ...pn };
  const ov = obj(d.raw.overview);
  let dl = Math.floor((num(ov.downlinkCapacity) ?? 0) / 1e6);
  let ul = Math.floor((num(ov.uplinkCapacity) ?? 0) / 1e6);
  const wirelessMode = text(ov.wirelessMode).toLowerCase();
  const ifaces = Array.isArray(d.raw.interfaces) ? (d.raw.interfaces as unknown[]).map(obj) : [];
  const liveRatio = ifaces.map((x) => num(obj(x.wireless).dlRatio)).find((x) => x !== undefined && x > 0);
  const theoretical = num(ov.theoreticalTotalCapacity);
  if (d.type.toLowerCase() === 'airmax' && d.role === 'ap' && wirelessMode.startsWith('ap-ptmp') && (liveRatio !== undefined || theoretical !== undefined)) {
    const total = (num(ov.totalCapacity) !== undefined ? num(ov.totalCapacity)! / 1e6 : Math.max(dl, ul)) * c.airmax_capacity;
    let ratio = liveRatio ?? c.airmax_flexible_frame_download_ratio;
    if (ratio > 1) ratio /= 100;
    dl = Math.floor(total * ratio);
    ul = Math.floor(total * (1 - ratio));
  } else if (/5AC/i.test(d.model)) {
    dl = Math.floor(dl * c.airmax_capacity);
    ul = Math.floor(ul * c.airmax_capacity);
  } else if (/LTU/i.test(d.model)) {
    dl = Math.floor(dl * c.ltu_capacity);
    ul = Math.floor(ul * c.ltu_capacity);
  }
  return { dl: dl > 0 ? dl : pn.dl, ul: ul > 0 ? ul : pn.ul };
}

/** The root site(s): `uisp_integration.site`, else (not full) the sites on the Internet side of WAN data links. */
function findRoots(configured: string, strategy: Strategy, inv: Inventory): string[] {
  const named = configured === '' ? undefined : [...inv.sites.values()].find((s) => !s.client && s.name === configured);
  if (named) return [named.id];
  if (strategy === 'full') {
    throw new IntegrationError(
      configured === ''
        ? `${CRM}: uisp_integration.site is empty; the full strategy needs the name of the root (Internet-connected) site`
        : `${CRM}: uisp_integration.site "${configured}" is not an infrastructure site in UISP; set it to the name of the root site`,
      { crm: CRM },
    );
  }
  const roots = [...new Set(inv.links.filter((l) => l.wan && isInfraSite(inv, l.fromSite)).map((l) => l.fromSite!))];
  if (roots.length === 0) {
    throw new IntegrationError(
      `${CRM}: no root site: set uisp_integration.site, or mark the Internet uplink in UISP (a data link with canDelete = false)`,
      { crm: CRM },
    );
  }
  return roots;
}

interface Edge {
  to: string;
  /** Download / upload capacity of the link (Mbps). */
  cap: number;
  capUl: number;
}

/** Where the cheapest path reaches a site from: the parent site and the link's capacities. */
type Via = Map<string, { parent: string; cap: number; capUl: number }>;

/** Infrastructure site adjacency: UISP parent links (generated_pn capacity) and data links (the slower end's capacity). */
function siteEdges(inv: Inventory, capacity: (d: UDevice) => Capacity, pn: Capacity): Map<string, Edge[]> {
  const adj = new Map<string, Edge[]>();
  const addEdge = (a: string, b: string, cap: number, capUl: number) => {
    if (a === b || !isInfraSite(inv, a) || !isInfraSite(inv, b)) return;
    for (const [x, y] of [
      [a, b],
      [b, a],
    ]) {
      const list = adj.get(x) ?? [];
      list.push({ to: y, cap, capUl });
      adj.set(x, list);
    }
  };
  for (const s of inv.sites.values()) if (!s.client && s.parentId) addEdge(s.id, s.parentId, pn.dl, pn.ul);
  for (const l of inv.links) {
    if (!l.fromSite || !l.toSite) continue;
    const caps = [l.fromDevice, l.toDevice].map((id) => (id && inv.devices.get(id) ? capacity(inv.devices.get(id)!) : undefined)).filter((x) => x !== undefined);
    addEdge(l.fromSite, l.toSite, caps.length > 0 ? Math.min(...caps.map((x) => x.dl)) : pn.dl, caps.length > 0 ? Math.min(...caps.map((x) => x.ul)) : pn.ul);
  }
  return adj;
}

/** Dijkstra from the roots (edge cost 10000 − capacity): each reached site's parent and link capacity. */
function cheapestPaths(roots: string[], adj: Map<string, Edge[]>): Via {
  const dist = new Map<string, number>();
  const via: Via = new Map();
  for (const r of roots) dist.set(r, 0);
  const done = new Set<string>();
  for (;;) {
    let best: string | undefined;
    for (const [k, v] of dist) if (!done.has(k) && (best === undefined || v < dist.get(best)! || (v === dist.get(best)! && k < best))) best = k;
    if (best === undefined) break;
    done.add(best);
    for (const e of adj.get(best) ?? []) {
      const nd = dist.get(best)! + Math.max(1, 10_000 - e.cap);
      if (!dist.has(e.to) || nd < dist.get(e.to)!) {
        dist.set(e.to, nd);
        via.set(e.to, { parent: best, cap: e.cap, capUl: e.capUl });
      }
    }
  }
  return via;
}

/** The lqos.conf rules for client sites. */
interface ClientRules {
  excluded: Set<string>;
  /** `exception_cpes`: a client with a CPE named here (hostname or device id) hangs under `parent`. */
  exceptionCpes: ReadonlyArray<{ cpe: string; parent: string }>;
  suspendedStrategy: string;
  overhead: number;
  commit: number;
  ethernetLimit: boolean;
  ethernetMultiplier: number;
  pn: Capacity;
}

/** `enable_squashing` / `do_not_squash_sites` / `squash_sites` (site names). */
export interface SquashRules {
  /** Squash every site with exactly one child node and no circuits of its own. */
  auto: boolean;
  /** Never squashed automatically. */
  keep: ReadonlySet<string>;
  /** Always squashed (whatever hangs below them moves up). */
  force: ReadonlySet<string>;
}

/**
 * Site squashing: a squashed site is removed and its child nodes and circuits hang from its parent
 * instead. Its rates are not lost: each child node keeps min(own, site) in both directions. Repeats
 * until nothing changes, so a chain of single-child sites collapses into its last site. Generated
 * sites (Orphans) and APs are never squashed. Returns the names of the squashed sites. Pure on its
 * arguments (mutates the node map and the clients' parents).
 */
export function squashSites(nodes: Map<string, InfraNodeInput>, clients: ClientInput[], rules: SquashRules, pn: Capacity): string[] {
  const squashed: string[] = [];
  for (let changed = true; changed; ) {
    changed = false;
    const kids = new Map<string, InfraNodeInput[]>();
    for (const n of nodes.values()) if (n.parentId) kids.set(n.parentId, [...(kids.get(n.parentId) ?? []), n]);
    const circuits = new Map<string, ClientInput[]>();
    for (const c of clients) if (c.parentId) circuits.set(c.parentId, [...(circuits.get(c.parentId) ?? []), c]);
    for (const n of nodes.values()) {
      if (n.kind !== 'site' || n.id === ORPHANS) continue;
      const below = kids.get(n.id) ?? [];
      const own = circuits.get(n.id) ?? [];
      const auto = rules.auto && !rules.keep.has(n.name) && below.length === 1 && own.length === 0;
      if (!auto && !rules.force.has(n.name)) continue;
      const up = n.parentId ?? '';
      for (const k of below) {
        k.parentId = up;
        k.downloadMbps = Math.min(k.downloadMbps || pn.dl, n.downloadMbps || pn.dl);
        k.uploadMbps = Math.min(k.uploadMbps || pn.ul, n.uploadMbps || pn.ul);
      }
      for (const c of own) c.parentId = up;
      nodes.delete(n.id);
      squashed.push(n.name);
      changed = true;
      break; // the child/circuit maps are stale now
    }
  }
  return squashed;
}

/** Infrastructure sites, the APs that serve clients, and the client sites as circuits; added to the builder by flush(). */
class UispImport {
  private readonly nodes = new Map<string, InfraNodeInput>();
  private readonly clients: Array<{ client: ClientInput; devices: DeviceInput[] }> = [];

  constructor(
    private readonly b: TopologyBuilder,
    private readonly inv: Inventory,
    private readonly rootSet: Set<string>,
    private readonly capacity: (d: UDevice) => Capacity,
  ) {}

  /**
   * Every infrastructure site but the root(s), below its parent on the cheapest path (else under
   * Orphans) — or, with `use_ptmp_as_parent`, below the PtMP AP of that parent site that feeds it.
   */
  addSites(via: Via, pn: Capacity, usePtmpAsParent: boolean): void {
    for (const s of this.inv.sites.values()) {
      if (s.client || this.rootSet.has(s.id)) continue;
      const v = via.get(s.id);
      const feeder = v && usePtmpAsParent ? this.ptmpFeeder(s.id, v.parent) : undefined;
      this.nodes.set(siteNode(s.id), {
        id: siteNode(s.id),
        name: s.name,
        kind: 'site',
        parentId: feeder ? this.apFor(feeder) : v ? this.siteParent(v.parent) : this.orphans(),
        networkJsonId: siteNode(s.id),
        downloadMbps: v ? Math.min(v.cap, pn.dl) : pn.dl,
        uploadMbps: v ? Math.min(v.capUl, pn.ul) : pn.ul,
        latitude: s.latitude,
        longitude: s.longitude,
      });
    }
  }

  /** A PtMP AP (role ap, not a PtP mode) in `parentSite` that feeds `siteId`: a station of the site names it as its AP, or a data link joins them. */
  private ptmpFeeder(siteId: string, parentSite: string): UDevice | undefined {
    const { devices, links } = this.inv;
    const isFeeder = (d: UDevice | undefined): d is UDevice =>
      !!d && d.siteId === parentSite && d.role === 'ap' && !/ptp/i.test(text(obj(d.raw.overview).wirelessMode));
    for (const d of this.inv.devicesBySite.get(siteId) ?? []) {
      const ap = d.apDeviceId ? devices.get(d.apDeviceId) : undefined;
      if (isFeeder(ap)) return ap;
    }
    for (const l of links) {
      for (const [a, z] of [[l.fromDevice, l.toDevice], [l.toDevice, l.fromDevice]]) {
        const ap = a ? devices.get(a) : undefined;
        if (isFeeder(ap) && z && devices.get(z)?.siteId === siteId) return ap;
      }
    }
    return undefined;
  }

  /** Squashes sites (see squashSites), then adds the nodes, circuits and devices to the builder. */
  flush(rules: SquashRules, pn: Capacity, opts: RunOptions): void {
    const squashed = squashSites(this.nodes, this.clients.map((c) => c.client), rules, pn);
    if (squashed.length > 0) opts.log.info(`${CRM}: squashed ${squashed.length} site(s) into their parents: ${squashed.join(', ')}`);
    for (const n of this.nodes.values()) this.b.addNode(n);
    for (const { client, devices } of this.clients) {
      this.b.addClient(client);
      for (const d of devices) this.b.addDevice(d);
    }
  }

  /** A client site → a circuit below its AP (or site), with one device per CPE; otherwise skipped. */
  addClient(s: Site, rules: ClientRules): void {
    const b = this.b;
    const name = normaliseClientName(s.name);
    if (rules.excluded.has(s.name) || rules.excluded.has(name)) {
      b.skip(s.id, name, 'site is in uisp_integration.exclude_sites');
      return;
    }
    if (s.suspended && rules.suspendedStrategy === 'ignore') {
      b.skip(s.id, name, 'suspended (suspended_strategy = "ignore")');
      return;
    }
    const cpes = this.inv.devicesBySite.get(s.id) ?? [];
    if (cpes.length === 0) {
      b.skip(s.id, name, 'no devices in UISP');
      return;
    }
    const parentId = this.exceptionParent(s, cpes, name, rules) ?? this.attachPoint(s, cpes, name);
    const rates = this.clientRates(s, cpes, name, rules);
    this.clients.push({
      client: { id: s.id, name, address: s.address, parentId, ...rates },
      devices: cpes.map((d) => ({ id: d.id, name: d.name, clientId: s.id, mac: d.mac, ...deviceIps(d) })),
    });
  }

  /**
   * `exception_cpes`: the parent an entry names for one of the client's CPEs (by hostname or device
   * id): an infrastructure site (by id, then name) or an access point in one (by id, then name). It
   * wins over what the client's links say; the CPE stays the client's device. A parent that names
   * nothing is warned about and the client placed as discovered. (Upstream moved the CPE itself into
   * site id `parent`, which took it away from its client; the example's `parent = "site-name"` then
   * matched nothing.)
   */
  private exceptionParent(s: Site, cpes: UDevice[], name: string, rules: ClientRules): string | undefined {
    for (const d of cpes) {
      const entry = rules.exceptionCpes.find((e) => e.cpe === d.name || e.cpe === d.id);
      if (!entry) continue;
      const want = entry.parent.trim();
      const infraSites = [...this.inv.sites.values()].filter((x) => !x.client);
      const site = infraSites.find((x) => x.id === want) ?? infraSites.find((x) => x.name === want);
      if (site) return this.siteParent(site.id);
      const aps = [...this.inv.devices.values()].filter((x) => isInfraSite(this.inv, x.siteId));
      const ap = aps.find((x) => x.id === want) ?? aps.find((x) => x.name === want);
      if (ap) return this.apFor(ap);
      this.b.warn(
        `client "${name}" (${s.id}): uisp_integration.exception_cpes names parent "${entry.parent}" for CPE "${entry.cpe}", which is no infrastructure site or access point in UISP (by id or name); placed as discovered`,
      );
      return undefined;
    }
    return undefined;
  }

  /** Where a client hangs: the CPE's AP, else a device data link, else a site data link, else its UISP parent site, else Orphans. */
  private attachPoint(s: Site, cpes: UDevice[], name: string): string {
    const { devices, links } = this.inv;
    const viaAp = cpes.map((d) => (d.apDeviceId ? devices.get(d.apDeviceId) : undefined)).find((ap) => ap && ap.siteId !== s.id && isInfraSite(this.inv, ap.siteId));
    if (viaAp) return this.apFor(viaAp);
    const mine = new Set(cpes.map((d) => d.id));
    for (const l of links) {
      const other = l.fromDevice && mine.has(l.fromDevice) ? l.toDevice : l.toDevice && mine.has(l.toDevice) ? l.fromDevice : undefined;
      const od = other ? devices.get(other) : undefined;
      if (od && isInfraSite(this.inv, od.siteId)) return this.apFor(od);
    }
    for (const l of links) {
      const other = l.fromSite === s.id ? l.toSite : l.toSite === s.id ? l.fromSite : undefined;
      if (other && isInfraSite(this.inv, other) && !(l.fromDevice || l.toDevice)) return this.siteParent(other);
    }
    if (s.parentId && isInfraSite(this.inv, s.parentId)) return this.siteParent(s.parentId);
    this.b.warn(`client "${name}" (${s.id}): no access point, data link or parent site found; shaped under Orphans`);
    return this.orphans();
  }

  /** `suspended_strategy = "slow"` → 0.1 Mbps; else the QoS (or generated_pn) rates, capped by the CPE's Ethernet port. */
  private clientRates(s: Site, cpes: UDevice[], name: string, rules: ClientRules): ClientRates {
    if (s.suspended && rules.suspendedStrategy === 'slow') return { downloadMaxMbps: 0.1, uploadMaxMbps: 0.1, downloadMinMbps: 0.1, uploadMinMbps: 0.1 };
    const rates = planRates(s.qos, rules);
    const slowest = rules.ethernetLimit ? slowestEthernet(cpes) : undefined;
    if (slowest !== undefined) {
      const cap = Math.round(slowest * rules.ethernetMultiplier);
      if (rates.downloadMaxMbps > cap || rates.uploadMaxMbps > cap) {
        this.b.warn(`client "${name}" (${s.id}): CPE Ethernet port negotiated ${slowest} Mbps; plan capped at ${cap} Mbps`);
      }
      rates.downloadMaxMbps = Math.min(rates.downloadMaxMbps, cap);
      rates.uploadMaxMbps = Math.min(rates.uploadMaxMbps, cap);
      rates.downloadMinMbps = Math.min(rates.downloadMinMbps, rates.downloadMaxMbps);
      rates.uploadMinMbps = Math.min(rates.uploadMinMbps, rates.uploadMaxMbps);
    }
    return rates;
  }

  /** The AP node of a device, added (with its radio capacity, below its site) on first use. */
  private apFor(dev: UDevice): string {
    const id = `uisp:device:${dev.id}`;
    if (!this.nodes.has(id)) {
      const cap = this.capacity(dev);
      this.nodes.set(id, { id, name: dev.name, kind: 'ap', parentId: this.siteParent(dev.siteId!), networkJsonId: id, downloadMbps: cap.dl, uploadMbps: cap.ul });
    }
    return id;
  }

  /** A site as parent: '' (top level) for a root site, else its node. */
  private siteParent(id: string): string {
    return this.rootSet.has(id) ? '' : siteNode(id);
  }

  /** The generated `Orphans` site, added on first use. */
  private orphans(): string {
    if (!this.nodes.has(ORPHANS)) this.nodes.set(ORPHANS, { id: ORPHANS, name: 'Orphans', kind: 'site', networkJsonId: ORPHANS });
    return ORPHANS;
  }
}

/** QoS rates: min = base × commit, max = (base + burst) × overhead; without QoS, generated_pn × overhead. */
function planRates(q: Obj, rules: ClientRules): ClientRates {
  const { overhead, commit, pn } = rules;
  const dBase = (num(q.downloadSpeed) ?? 0) / 1e6;
  const uBase = (num(q.uploadSpeed) ?? 0) / 1e6;
  if (dBase > 0 && uBase > 0) {
    const burst = (v: unknown) => ((num(v) ?? 0) * 8) / 1000; // kB/s → Mbps (documented UISP unit)
    return {
      downloadMinMbps: dBase * commit,
      uploadMinMbps: uBase * commit,
      downloadMaxMbps: (dBase + burst(q.downloadBurstSize)) * overhead,
      uploadMaxMbps: (uBase + burst(q.uploadBurstSize)) * overhead,
    };
  }
  const dl = Math.floor(dBase) || pn.dl;
  const ul = Math.floor(uBase) || pn.ul;
  return { downloadMaxMbps: dl * overhead, uploadMaxMbps: ul * overhead, downloadMinMbps: dl * overhead * commit, uploadMinMbps: ul * overhead * commit };
}

/** The slowest negotiated Ethernet port of the stations (else of every non-router CPE), or undefined. */
function slowestEthernet(cpes: UDevice[]): number | undefined {
  const stations = cpes.filter((d) => d.role === 'station');
  const pool = stations.length > 0 ? stations : cpes.filter((d) => d.role !== 'router');
  let slowest: number | undefined;
  for (const d of pool) {
    for (const rawIf of Array.isArray(d.raw.interfaces) ? (d.raw.interfaces as unknown[]) : []) {
      const itf = obj(rawIf);
      const iid = obj(itf.identification);
      if (!(text(iid.type).toLowerCase() === 'eth' || /^eth/i.test(text(iid.name)))) continue;
      const st = obj(itf.status);
      const up = /^(connected|up|active)$/i.test(text(st.status));
      const speed = parseLinkSpeed(st.currentSpeed) ?? (up ? parseLinkSpeed(st.speed) : undefined);
      if (speed !== undefined && (slowest === undefined || speed < slowest)) slowest = speed;
    }
  }
  return slowest;
}

/** A CPE's addresses: `ipAddress` (without its prefix) and every interface address, by family. */
function deviceIps(d: UDevice): { ipv4: string[]; ipv6: string[] } {
  const ips: string[] = [];
  const ipAddress = text(d.raw.ipAddress);
  if (ipAddress !== '') ips.push(ipAddress.split('/')[0]);
  for (const rawIf of Array.isArray(d.raw.interfaces) ? (d.raw.interfaces as unknown[]) : []) {
    for (const a of Array.isArray(obj(rawIf).addresses) ? (obj(rawIf).addresses as unknown[]) : []) {
      const cidr = text(obj(a).cidr);
      if (cidr === '') continue;
      const ci = canonicalIp(cidr); // host bits set → the host; a network address → the network
      if (!('error' in ci)) ips.push(ci.prefix);
    }
  }
  return { ipv4: ips.filter((x) => !x.includes(':')), ipv6: ips.filter((x) => x.includes(':')).sort() };
}
