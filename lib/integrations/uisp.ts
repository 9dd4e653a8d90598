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
 * - IPs: allow_subnets AND NOT ignore_subnets (§2.8).
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
  resolveStrategy,
  text,
  TopologyBuilder,
  type RunOptions,
  type RunResult,
  type Strategy,
} from './common/index.ts';

export const CRM = 'UISP';

type Obj = Record<string, unknown>;
const obj = (v: unknown): Obj => (v !== null && typeof v === 'object' && !Array.isArray(v) ? (v as Obj) : {});
const str = (v: unknown): string | undefined => (typeof v === 'string' && v !== '' ? v : typeof v === 'number' ? String(v) : undefined);

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
  const c = config.uisp_integration;
  if (c.url.trim() === '') throw new IntegrationError(`${CRM}: uisp_integration.url is empty; set it in lqos.conf`, { crm: CRM });
  if (c.token.trim() === '') throw new IntegrationError(`${CRM}: uisp_integration.token is empty; set it in lqos.conf`, { crm: CRM });
  if (c.insecure_ssl) opts.log.warn(`${CRM}: insecure_ssl is not supported; TLS certificates are verified`);
  const strategy: Strategy = resolveStrategy(config, ['flat', 'ap_only', 'ap_site', 'full'], c.strategy, 'full');
  let base = c.url.trim().replace(/\/+$/, '');
  if (!base.endsWith('/nms/api/v2.1')) base = `${base}/nms/api/v2.1`;

  const fetchList = async (path: string) => {
    const url = joinUrl(base, path);
    const endpoint = endpointOf('GET', url);
    const body = await getJson(url, {
      crm: CRM,
      headers: { 'X-Auth-Token': c.token },
      ...opts.http,
      authHint: 'check uisp_integration.token',
      urlHint: 'check uisp_integration.url',
      log: opts.log,
    });
    return { rows: reqArray(body, { crm: CRM, endpoint }), endpoint };
  };
  const [devicesRes, sitesRes, linksRes] = await Promise.all([
    fetchList('devices?withInterfaces=true'),
    fetchList('sites'),
    fetchList('data-links'),
  ]);
  const bad = (endpoint: string, field: string, item: string, got?: unknown) =>
    new IntegrationError(
      `${CRM}: ${endpoint}: required field "${field}" is missing or invalid in ${item}${got === undefined ? '' : ` (got ${JSON.stringify(got)})`}; the response is not what this integration expects`,
      { crm: CRM, endpoint },
    );

  // --- sites -------------------------------------------------------------------------------------
  const sites = new Map<string, Site>();
  sitesRes.rows.forEach((raw, i) => {
    const s = obj(raw);
    const id = str(s.id);
    const item = `site #${i + 1}${id ? ` (${id})` : ''}`;
    if (!id) throw bad(sitesRes.endpoint, 'id', item);
    const ident = obj(s.identification);
    const type = ident.type;
    if (type !== 'site' && type !== 'endpoint') throw bad(sitesRes.endpoint, 'identification.type', item, type ?? null);
    if (typeof ident.suspended !== 'boolean') throw bad(sitesRes.endpoint, 'identification.suspended', item, ident.suspended ?? null);
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

  // --- devices -------------------------------------------------------------------------------------
  const devices = new Map<string, UDevice>();
  const cpeParent = new Map(c.exception_cpes.map((e) => [e.cpe, e.parent]));
  devicesRes.rows.forEach((raw, i) => {
    const d = obj(raw);
    const ident = obj(d.identification);
    const id = str(ident.id);
    if (!id) throw bad(devicesRes.endpoint, 'identification.id', `device #${i + 1}`);
    if (devices.has(id)) return;
    const name = text(ident.hostname) || text(ident.name) || id;
    devices.set(id, {
      id,
      name,
      mac: text(ident.mac),
      siteId: cpeParent.get(name) ?? str(obj(ident.site).id),
      role: text(ident.role).toLowerCase(),
      type: text(ident.type),
      model: `${text(ident.model)} ${text(ident.modelName)}`,
      apDeviceId: str(obj(obj(d.attributes).apDevice).id),
      raw: d,
    });
  });
  const devicesBySite = new Map<string, UDevice[]>();
  for (const d of devices.values()) {
    if (!d.siteId) continue;
    const list = devicesBySite.get(d.siteId) ?? [];
    list.push(d);
    devicesBySite.set(d.siteId, list);
  }
  const infraSite = (id: string | undefined) => (id ? sites.get(id) : undefined)?.client === false;

  // --- data links ----------------------------------------------------------------------------------
  interface Link {
    fromDevice?: string;
    toDevice?: string;
    fromSite?: string;
    toSite?: string;
    wan: boolean;
  }
  const links: Link[] = linksRes.rows.map((raw, i) => {
    const l = obj(raw);
    const id = str(l.id);
    const item = `data link #${i + 1}${id ? ` (${id})` : ''}`;
    if (!id) throw bad(linksRes.endpoint, 'id', item);
    if (typeof l.canDelete !== 'boolean') throw bad(linksRes.endpoint, 'canDelete', item, l.canDelete ?? null);
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

  // --- device capacity -----------------------------------------------------------------------------
  const pn = { dl: config.queues.generated_pn_download_mbps, ul: config.queues.generated_pn_upload_mbps };
  const capacity = (d: UDevice): { dl: number; ul: number } => {
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
  };

  // --- root -------------------------------------------------------------------------------------------
  let roots: string[];
  const configured = c.site.trim();
  const named = configured === '' ? undefined : [...sites.values()].find((s) => !s.client && s.name === configured);
  if (named) roots = [named.id];
  else if (strategy === 'full') {
    throw new IntegrationError(
      configured === ''
        ? `${CRM}: uisp_integration.site is empty; the full strategy needs the name of the root (Internet-connected) site`
        : `${CRM}: uisp_integration.site "${configured}" is not an infrastructure site in UISP; set it to the name of the root site`,
      { crm: CRM },
    );
  } else {
    roots = [...new Set(links.filter((l) => l.wan && infraSite(l.fromSite)).map((l) => l.fromSite!))];
    if (roots.length === 0) {
      throw new IntegrationError(
        `${CRM}: no root site: set uisp_integration.site, or mark the Internet uplink in UISP (a data link with canDelete = false)`,
        { crm: CRM },
      );
    }
  }
  const rootSet = new Set(roots);

  // --- site tree: cheapest paths from the root(s) ---------------------------------------------------
  interface Edge {
    to: string;
    cap: number;
  }
  const adj = new Map<string, Edge[]>();
  const addEdge = (a: string, b: string, cap: number) => {
    if (a === b || !infraSite(a) || !infraSite(b)) return;
    for (const [x, y] of [
      [a, b],
      [b, a],
    ]) {
      const list = adj.get(x) ?? [];
      list.push({ to: y, cap });
      adj.set(x, list);
    }
  };
  for (const s of sites.values()) if (!s.client && s.parentId) addEdge(s.id, s.parentId, pn.dl);
  for (const l of links) {
    if (!l.fromSite || !l.toSite) continue;
    const caps = [l.fromDevice, l.toDevice].map((id) => (id && devices.get(id) ? capacity(devices.get(id)!).dl : undefined)).filter((x) => x !== undefined);
    addEdge(l.fromSite, l.toSite, caps.length > 0 ? Math.min(...caps) : pn.dl);
  }
  const dist = new Map<string, number>();
  const via = new Map<string, { parent: string; cap: number }>();
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
        via.set(e.to, { parent: best, cap: e.cap });
      }
    }
  }

  const b = new TopologyBuilder(
    buildOptionsFromConfig(config, CRM, strategy, {
      ipFilterMode: 'allow-and-ignore',
      exceptionCpes: [], // UISP applies them to devices (hostname → site) above
      rateFloorMbps: 0.1,
      commitRatio: c.commit_bandwidth_multiplier,
    }),
    opts.log,
  );
  const ORPHANS = 'libreqos:generated:uisp:site:orphans';
  let orphansAdded = false;
  const orphans = () => {
    if (!orphansAdded) b.addNode({ id: ORPHANS, name: 'Orphans', kind: 'site', networkJsonId: ORPHANS });
    orphansAdded = true;
    return ORPHANS;
  };
  const siteNode = (id: string) => `uisp:site:${id}`;
  for (const s of sites.values()) {
    if (s.client || rootSet.has(s.id)) continue;
    const v = via.get(s.id);
    let parentId: string;
    if (v) parentId = rootSet.has(v.parent) ? '' : siteNode(v.parent);
    else parentId = orphans();
    b.addNode({
      id: siteNode(s.id),
      name: s.name,
      kind: 'site',
      parentId,
      networkJsonId: siteNode(s.id),
      downloadMbps: v ? Math.min(v.cap, pn.dl) : pn.dl,
      uploadMbps: pn.ul,
      latitude: s.latitude,
      longitude: s.longitude,
    });
  }

  // --- clients ------------------------------------------------------------------------------------------
  const apNodes = new Set<string>();
  const apFor = (dev: UDevice): string => {
    const id = `uisp:device:${dev.id}`;
    if (!apNodes.has(id)) {
      apNodes.add(id);
      const cap = capacity(dev);
      const site = dev.siteId!;
      b.addNode({
        id,
        name: dev.name,
        kind: 'ap',
        parentId: rootSet.has(site) ? '' : siteNode(site),
        networkJsonId: id,
        downloadMbps: cap.dl,
        uploadMbps: cap.ul,
      });
    }
    return id;
  };
  const excluded = new Set(c.exclude_sites);
  const suspendedStrategy = c.suspended_strategy.trim().toLowerCase();
  const overhead = c.bandwidth_overhead_factor;
  const commit = c.commit_bandwidth_multiplier;
  const ethLimit = config.integration_common.ethernet_port_limits_enabled;
  const ethMult = config.integration_common.ethernet_port_limit_multiplier;

  for (const s of sites.values()) {
    if (!s.client) continue;
    const name = normaliseClientName(s.name);
    if (excluded.has(s.name) || excluded.has(name)) {
      b.skip(s.id, name, 'site is in uisp_integration.exclude_sites');
      continue;
    }
    if (s.suspended && suspendedStrategy === 'ignore') {
      b.skip(s.id, name, 'suspended (suspended_strategy = "ignore")');
      continue;
    }
    const cpes = devicesBySite.get(s.id) ?? [];
    if (cpes.length === 0) {
      b.skip(s.id, name, 'no devices in UISP');
      continue;
    }
    // Attach point.
    let parentId: string | undefined;
    const viaAp = cpes.map((d) => (d.apDeviceId ? devices.get(d.apDeviceId) : undefined)).find((ap) => ap && ap.siteId !== s.id && infraSite(ap.siteId));
    if (viaAp) parentId = apFor(viaAp);
    if (!parentId) {
      const mine = new Set(cpes.map((d) => d.id));
      for (const l of links) {
        const other = l.fromDevice && mine.has(l.fromDevice) ? l.toDevice : l.toDevice && mine.has(l.toDevice) ? l.fromDevice : undefined;
        const od = other ? devices.get(other) : undefined;
        if (od && infraSite(od.siteId)) {
          parentId = apFor(od);
          break;
        }
      }
    }
    if (!parentId) {
      for (const l of links) {
        const other = l.fromSite === s.id ? l.toSite : l.toSite === s.id ? l.fromSite : undefined;
        if (other && infraSite(other) && !(l.fromDevice || l.toDevice)) {
          parentId = rootSet.has(other) ? '' : siteNode(other);
          break;
        }
      }
    }
    if (parentId === undefined && s.parentId && infraSite(s.parentId)) parentId = rootSet.has(s.parentId) ? '' : siteNode(s.parentId);
    if (parentId === undefined) {
      b.warn(`client "${name}" (${s.id}): no access point, data link or parent site found; shaped under Orphans`);
      parentId = orphans();
    }

    // Rates.
    let rates: { downloadMaxMbps: number; uploadMaxMbps: number; downloadMinMbps: number; uploadMinMbps: number };
    if (s.suspended && suspendedStrategy === 'slow') {
      rates = { downloadMaxMbps: 0.1, uploadMaxMbps: 0.1, downloadMinMbps: 0.1, uploadMinMbps: 0.1 };
    } else {
      const q = s.qos;
      const dBase = (num(q.downloadSpeed) ?? 0) / 1e6;
      const uBase = (num(q.uploadSpeed) ?? 0) / 1e6;
      if (dBase > 0 && uBase > 0) {
        const burst = (v: unknown) => ((num(v) ?? 0) * 8) / 1000; // kB/s → Mbps (documented UISP unit)
        rates = {
          downloadMinMbps: dBase * commit,
          uploadMinMbps: uBase * commit,
          downloadMaxMbps: (dBase + burst(q.downloadBurstSize)) * overhead,
          uploadMaxMbps: (uBase + burst(q.uploadBurstSize)) * overhead,
        };
      } else {
        const dl = Math.floor(dBase) || pn.dl;
        const ul = Math.floor(uBase) || pn.ul;
        rates = { downloadMaxMbps: dl * overhead, uploadMaxMbps: ul * overhead, downloadMinMbps: dl * overhead * commit, uploadMinMbps: ul * overhead * commit };
      }
      if (ethLimit) {
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
        if (slowest !== undefined) {
          const cap = Math.round(slowest * ethMult);
          if (rates.downloadMaxMbps > cap || rates.uploadMaxMbps > cap) {
            b.warn(`client "${name}" (${s.id}): CPE Ethernet port negotiated ${slowest} Mbps; plan capped at ${cap} Mbps`);
          }
          rates.downloadMaxMbps = Math.min(rates.downloadMaxMbps, cap);
          rates.uploadMaxMbps = Math.min(rates.uploadMaxMbps, cap);
          rates.downloadMinMbps = Math.min(rates.downloadMinMbps, rates.downloadMaxMbps);
          rates.uploadMinMbps = Math.min(rates.uploadMinMbps, rates.uploadMaxMbps);
        }
      }
    }

    b.addClient({ id: s.id, name, address: s.address, parentId, ...rates });
    for (const d of cpes) {
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
      b.addDevice({ id: d.id, name: d.name, clientId: s.id, mac: d.mac, ipv4: ips.filter((x) => !x.includes(':')), ipv6: ips.filter((x) => x.includes(':')).sort() });
    }
  }

  return finishRun(b, opts);
}
