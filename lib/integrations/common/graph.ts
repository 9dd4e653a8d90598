/**
 * The one graph model every integration fills: infrastructure nodes (sites and APs), clients (one
 * client = one circuit) and devices (one ShapedDevices row each). `build()` applies the shared rules
 * (spec §2) and renders network.json + ShapedDevices.csv text:
 *
 *  1. nodes named in `exclude_sites` are not added (their children fall to the top level);
 *  2. exception CPEs give a parentless node/client the configured parent;
 *  3. unknown parents and parent cycles → top level (with a warning); `promote_to_root` names go to
 *     the top level themselves;
 *  4. device IPs are canonicalised, filtered (ignore-only or allow-and-ignore, §2.8) and claimed
 *     first-come-first-served across the whole run (a later duplicate is dropped with a warning);
 *     devices left without an address are dropped; clients left without a device are skipped with the
 *     most useful reason;
 *  5. node rates default to `generated_pn_*` and are clamped top-down, starting from the link rates
 *     (`downlink_bandwidth_mbps` / `uplink_bandwidth_mbps`), truncated to whole Mbps;
 *  6. the hierarchy strategy (flat / ap_only / ap_site / full) projects the tree;
 *  7. exported node names are made unique across the tree (` (<id>)` suffix; sites, then shallower nodes keep the plain name) — network.json requires it;
 *  8. a circuit's Parent Node is its nearest exported ancestor (name) and Parent Node ID that node's
 *     stable id (when it has one);
 *  9. circuit rates: see `finalRates` (floor, 2-decimal rounding, min = max × commit when not given).
 */
import type { Circuit, Device, SqmOverride } from '../../model.ts';
import { writeShapedDevices } from '../../inputs/writeShapedDevices.ts';
import { canonicalIp, IpFilter, type IpFilterMode } from './ip.ts';
import { finalRates } from './rates.ts';
import { silentLogger, type IntegrationLogger } from './log.ts';

export type Strategy = 'flat' | 'ap_only' | 'ap_site' | 'full';
export const STRATEGIES: readonly Strategy[] = ['flat', 'ap_only', 'ap_site', 'full'];

export type InfraKind = 'site' | 'ap';

export interface InfraNodeInput {
  /** Graph id, unique per integration run (e.g. `uisp:site:<id>`, `ns_1`). */
  id: string;
  name: string;
  kind: InfraKind;
  /** Graph id of the parent node; empty/undefined = top level (exception CPEs may apply). */
  parentId?: string | null;
  /** Capacity in Mbps; missing/0 → generated_pn rates. */
  downloadMbps?: number;
  uploadMbps?: number;
  /** Stable id written to network.json `id` and to Parent Node ID. Empty = none. */
  networkJsonId?: string;
  latitude?: number;
  longitude?: number;
}

export interface ClientInput {
  /** Circuit ID. */
  id: string;
  name: string;
  /** Used as the circuit name when `circuit_name_as_address` is on (falls back to name if empty). */
  address?: string;
  /** Graph id of the parent node (site or AP). */
  parentId?: string | null;
  /** Plan maxima in Mbps (multipliers already applied by the integration). */
  downloadMaxMbps: number;
  uploadMaxMbps: number;
  /** Explicit minima; when absent, min = max × commitRatio. */
  downloadMinMbps?: number;
  uploadMinMbps?: number;
  comment?: string;
  sqm?: SqmOverride;
}

export interface DeviceInput {
  id: string;
  name: string;
  /** Circuit ID of the owning client. */
  clientId: string;
  mac?: string;
  /** Addresses as the CRM gives them (either family in either list is fine; they are sorted out). */
  ipv4?: string[];
  ipv6?: string[];
  comment?: string;
}

export interface SkippedEntry {
  id: string;
  name: string;
  reason: string;
}

export interface IntegrationSummary {
  crm: string;
  strategy: Strategy;
  sites: number;
  aps: number;
  circuits: number;
  devices: number;
  skipped: SkippedEntry[];
  /** Non-fatal findings (dropped IPs, renamed nodes, unknown parents, …). */
  warnings: string[];
  /** Where the files were written (undefined on a dry run). */
  written?: { networkJson: string; shapedDevicesCsv: string };
}

export interface BuildOptions {
  crm: string;
  strategy: Strategy;
  /** Top-level clamp: the link capacity (downlink / uplink Mbps). */
  linkMbps: { download: number; upload: number };
  /** Rates of nodes created without rates (`generated_pn_*`). */
  defaultNodeMbps: { download: number; upload: number };
  ipFilterMode: IpFilterMode;
  ignoreSubnets: readonly string[];
  allowSubnets: readonly string[];
  circuitNameAsAddress: boolean;
  /** Node names never added (exact match). */
  excludeSites: readonly string[];
  /** A parentless node or client whose id or name equals `cpe` gets parent `parent` (a node id or name). */
  exceptionCpes: ReadonlyArray<{ cpe: string; parent: string }>;
  /** Node names moved to the top level. */
  promoteToRoot: readonly string[];
  /** Lowest circuit rate written (Mbps). */
  rateFloorMbps: number;
  /** min = max × commitRatio when the integration gives no minimum. */
  commitRatio: number;
}

export interface BuildResult {
  networkJson: string;
  shapedDevicesCsv: string;
  summary: IntegrationSummary;
}

interface Node extends InfraNodeInput {
  parent: Node | null;
  children: Node[];
  dl: number;
  ul: number;
  order: number;
}

const ROOT_ID = '\u0000root';

export class TopologyBuilder {
  readonly opts: BuildOptions;
  private readonly log: IntegrationLogger;
  private readonly nodes = new Map<string, InfraNodeInput>();
  private readonly clients = new Map<string, ClientInput>();
  private readonly devices: DeviceInput[] = [];
  private readonly skipped: SkippedEntry[] = [];
  private readonly warnings: string[] = [];
  private readonly excluded = new Set<string>();

  constructor(opts: BuildOptions, log: IntegrationLogger = silentLogger) {
    this.opts = opts;
    this.log = log;
  }

  warn(msg: string): void {
    this.warnings.push(msg);
    this.log.warn(`${this.opts.crm}: ${msg}`);
  }

  /** Records a client/service that produces no circuit, with a human-readable reason. */
  skip(id: string, name: string, reason: string): void {
    this.skipped.push({ id, name, reason });
    this.log.info(`${this.opts.crm}: skipped ${id} "${name}": ${reason}`);
  }

  hasNode(id: string): boolean {
    return this.nodes.has(id);
  }
  hasClient(id: string): boolean {
    return this.clients.has(id);
  }

  /** Adds a site/AP. A second node with the same id is ignored (first wins) with a warning. */
  addNode(n: InfraNodeInput): boolean {
    if (this.opts.excludeSites.includes(n.name)) {
      this.excluded.add(n.id);
      this.log.info(`${this.opts.crm}: node "${n.name}" is in exclude_sites; not added`);
      return false;
    }
    if (this.nodes.has(n.id)) {
      this.warn(`node id ${n.id} ("${n.name}") appears twice; the first one is kept`);
      return false;
    }
    this.nodes.set(n.id, { ...n });
    return true;
  }

  /** Adds a client (circuit). A second client with the same id is ignored with a warning. */
  addClient(c: ClientInput): boolean {
    if (this.clients.has(c.id)) {
      this.warn(`circuit id ${c.id} ("${c.name}") appears twice; the first one is kept`);
      return false;
    }
    this.clients.set(c.id, { ...c });
    return true;
  }

  /** Adds a device to an existing client. */
  addDevice(d: DeviceInput): void {
    if (!this.clients.has(d.clientId)) throw new Error(`addDevice: unknown client ${d.clientId}`);
    this.devices.push({ ...d, ipv4: [...(d.ipv4 ?? [])], ipv6: [...(d.ipv6 ?? [])] });
  }

  /** Adds IPs to an already added device (e.g. from an "online sessions" endpoint). */
  deviceOf(deviceId: string): DeviceInput | undefined {
    return this.devices.find((d) => d.id === deviceId);
  }

  build(): BuildResult {
    const o = this.opts;

    // --- 1-3: tree of infrastructure nodes --------------------------------------------------
    const root: Node = { id: ROOT_ID, name: '', kind: 'site', parent: null, children: [], dl: o.linkMbps.download, ul: o.linkMbps.upload, order: -1 };
    const byId = new Map<string, Node>();
    const byName = new Map<string, Node>();
    let order = 0;
    for (const n of this.nodes.values()) {
      const node: Node = { ...n, parent: null, children: [], dl: 0, ul: 0, order: order++ };
      byId.set(n.id, node);
      if (!byName.has(n.name)) byName.set(n.name, node);
    }
    const exception = (id: string, name: string): string | undefined =>
      o.exceptionCpes.find((e) => e.cpe === id)?.parent ?? o.exceptionCpes.find((e) => e.cpe === name)?.parent;
    const resolve = (ref: string): Node | undefined => byId.get(ref) ?? byName.get(ref);
    const parentOf = (what: string, id: string, name: string, parentId: string | null | undefined): Node => {
      let ref = parentId ?? '';
      if (ref === '') ref = exception(id, name) ?? '';
      if (ref === '') return root;
      const p = resolve(ref);
      if (p) return p;
      if (!this.excluded.has(ref)) this.warn(`${what} "${name}" (${id}) names parent "${ref}", which is unknown; placed at the top level`);
      return root;
    };
    for (const node of byId.values()) {
      node.parent = o.promoteToRoot.includes(node.name) ? root : parentOf('node', node.id, node.name, node.parentId);
      if (node.parent === node) node.parent = root;
    }
    // Cycles: a node whose parent chain does not reach the root goes to the top level.
    for (const node of byId.values()) {
      const seen = new Set<Node>();
      let p: Node | null = node;
      while (p && p !== root && !seen.has(p)) {
        seen.add(p);
        p = p.parent;
      }
      if (p !== root) {
        this.warn(`node "${node.name}" (${node.id}) is part of a parent cycle; placed at the top level`);
        node.parent = root;
      }
    }
    for (const node of byId.values()) node.parent!.children.push(node);

    // --- 5: rates, top-down clamp ------------------------------------------------------------
    const clamp = (n: Node) => {
      for (const c of n.children) {
        const dl = c.downloadMbps && c.downloadMbps > 0 ? c.downloadMbps : o.defaultNodeMbps.download;
        const ul = c.uploadMbps && c.uploadMbps > 0 ? c.uploadMbps : o.defaultNodeMbps.upload;
        c.dl = Math.max(1, Math.floor(Math.min(dl, n.dl)));
        c.ul = Math.max(1, Math.floor(Math.min(ul, n.ul)));
        clamp(c);
      }
    };
    clamp(root);

    // --- 4: devices and IPs --------------------------------------------------------------------
    const filter = new IpFilter(o.ipFilterMode, o.ignoreSubnets, o.allowSubnets);
    const claimed = new Map<string, string>(); // prefix → circuit id
    const devicesByClient = new Map<string, Device[]>();
    const dropReasons = new Map<string, string[]>();
    const noteDrop = (clientId: string, reason: string) => {
      const list = dropReasons.get(clientId) ?? [];
      list.push(reason);
      dropReasons.set(clientId, list);
    };
    for (const d of this.devices) {
      const v4: string[] = [];
      const v6: string[] = [];
      for (const raw of [...(d.ipv4 ?? []), ...(d.ipv6 ?? [])]) {
        const c = canonicalIp(String(raw));
        if ('error' in c) {
          this.warn(`device ${d.id}: address "${raw}" dropped: ${c.error}`);
          noteDrop(d.clientId, `invalid address "${raw}"`);
          continue;
        }
        const out = c.family === 'v4' ? v4 : v6;
        if (out.includes(c.prefix)) continue;
        const rejected = filter.rejects(c.prefix);
        if (rejected) {
          this.log.debug(`${o.crm}: device ${d.id}: ${c.prefix} dropped: ${rejected}`);
          noteDrop(d.clientId, `${c.prefix} ${rejected}`);
          continue;
        }
        const owner = claimed.get(c.prefix);
        if (owner !== undefined && owner !== d.clientId) {
          this.warn(`device ${d.id} (circuit ${d.clientId}): duplicate address ${c.prefix} already used by circuit ${owner}; omitted`);
          noteDrop(d.clientId, `duplicate address ${c.prefix} (already used by circuit ${owner})`);
          continue;
        }
        if (owner !== undefined) {
          this.warn(`device ${d.id}: address ${c.prefix} is also on another device of circuit ${d.clientId}; omitted here`);
          continue;
        }
        claimed.set(c.prefix, d.clientId);
        out.push(c.prefix);
      }
      if (v4.length === 0 && v6.length === 0) continue;
      const list = devicesByClient.get(d.clientId) ?? [];
      list.push({ id: d.id, name: d.name, mac: d.mac ?? '', ipv4: v4, ipv6: v6, comment: d.comment ?? '', line: 0 });
      devicesByClient.set(d.clientId, list);
    }

    // --- clients → attach points -----------------------------------------------------------------
    interface Live {
      client: ClientInput;
      devices: Device[];
      attach: Node;
    }
    const live: Live[] = [];
    for (const c of this.clients.values()) {
      const devices = devicesByClient.get(c.id) ?? [];
      if (devices.length === 0) {
        const drops = dropReasons.get(c.id);
        const reason = drops ? `no usable IP address: ${drops.join('; ')}` : 'no IP address';
        this.skip(c.id, c.name, reason);
        continue;
      }
      live.push({ client: c, devices, attach: parentOf('circuit', c.id, c.name, c.parentId) });
    }

    // --- 6: strategy projection ------------------------------------------------------------------
    // Each exported node: its source node and exported parent (null = top level).
    interface Out {
      src: Node;
      parent: Out | null;
      children: Out[];
      name: string;
    }
    const outs = new Map<Node, Out>();
    const top: Out[] = [];
    const exportNode = (src: Node, parent: Out | null): Out => {
      let e = outs.get(src);
      if (e) return e;
      e = { src, parent, children: [], name: src.name };
      outs.set(src, e);
      (parent ? parent.children : top).push(e);
      return e;
    };
    const nearest = (n: Node, kind: InfraKind): Node | null => {
      for (let p: Node | null = n; p && p !== root; p = p.parent) if (p.kind === kind) return p;
      return null;
    };
    const circuitParent = new Map<string, Out | null>();
    switch (o.strategy) {
      case 'full': {
        const walk = (n: Node, parent: Out | null) => {
          for (const c of [...n.children].sort(byName_)) walk(c, exportNode(c, parent));
        };
        walk(root, null);
        for (const l of live) circuitParent.set(l.client.id, l.attach === root ? null : outs.get(l.attach)!);
        break;
      }
      case 'flat':
        for (const l of live) circuitParent.set(l.client.id, null);
        break;
      case 'ap_only':
        for (const l of live) {
          const ap = nearest(l.attach, 'ap');
          circuitParent.set(l.client.id, ap ? exportNode(ap, null) : null);
        }
        break;
      case 'ap_site':
        for (const l of live) {
          const ap = nearest(l.attach, 'ap');
          const site = nearest(ap ?? l.attach, 'site');
          const siteOut = site ? exportNode(site, null) : null;
          circuitParent.set(l.client.id, ap ? exportNode(ap, siteOut) : siteOut);
        }
        break;
    }

    // --- 7: unique names: sites before APs, shallower before deeper, then by name ----------------
    const sortOut = (list: Out[]) => list.sort((a, b) => byName_(a.src, b.src));
    const bfs: Out[] = [];
    for (let level = sortOut(top); level.length > 0; ) {
      bfs.push(...level);
      level = level.flatMap((e) => sortOut(e.children));
    }
    const used = new Set<string>();
    for (const e of [...bfs.filter((x) => x.src.kind === 'site'), ...bfs.filter((x) => x.src.kind !== 'site')]) {
      let name = e.src.name.trim() === '' ? e.src.id : e.src.name;
      if (used.has(name)) {
        const base = `${name} (${e.src.networkJsonId || e.src.id})`;
        name = base;
        for (let k = 2; used.has(name); k++) name = `${base} ${k}`;
        this.warn(`node name "${e.src.name}" is used more than once; ${e.src.id} is exported as "${name}"`);
      }
      used.add(name);
      e.name = name;
    }

    // --- network.json ------------------------------------------------------------------------------
    const render = (list: Out[]): Record<string, unknown> => {
      const obj: Record<string, unknown> = {};
      for (const e of list) {
        const n = e.src;
        const v: Record<string, unknown> = { downloadBandwidthMbps: n.dl, uploadBandwidthMbps: n.ul, type: n.kind };
        if (n.networkJsonId) v.id = n.networkJsonId;
        if (Number.isFinite(n.latitude) && Number.isFinite(n.longitude)) {
          v.latitude = n.latitude;
          v.longitude = n.longitude;
        }
        if (e.children.length > 0) v.children = render(e.children);
        obj[e.name] = v;
      }
      return obj;
    };
    const networkJson = `${JSON.stringify(render(top), null, 2)}\n`;

    // --- 8-9: circuits -------------------------------------------------------------------------------
    const circuits: Circuit[] = [];
    let deviceCount = 0;
    for (const l of live) {
      const c = l.client;
      const p = circuitParent.get(c.id) ?? null;
      const rates = finalRates(c, { floorMbps: o.rateFloorMbps, commitRatio: o.commitRatio });
      const name = o.circuitNameAsAddress && c.address && c.address.trim() !== '' ? c.address.trim() : c.name;
      const circuit: Circuit = {
        id: c.id,
        name,
        parentNode: p ? p.name : '',
        parentNodeId: p ? p.src.networkJsonId ?? '' : '',
        anchorNodeId: '',
        ...rates,
        comment: c.comment ?? '',
        devices: l.devices,
        line: 0,
      };
      if (c.sqm) circuit.sqm = c.sqm;
      circuits.push(circuit);
      deviceCount += l.devices.length;
    }
    const shapedDevicesCsv = writeShapedDevices(circuits);

    let sites = 0;
    let aps = 0;
    for (const e of outs.values()) e.src.kind === 'site' ? sites++ : aps++;
    return {
      networkJson,
      shapedDevicesCsv,
      summary: {
        crm: o.crm,
        strategy: o.strategy,
        sites,
        aps,
        circuits: circuits.length,
        devices: deviceCount,
        skipped: [...this.skipped],
        warnings: [...this.warnings],
      },
    };
  }
}

/** Children order in network.json: by name, then id (independent of the CRM's list order). */
function byName_(a: InfraNodeInput, b: InfraNodeInput): number {
  return a.name < b.name ? -1 : a.name > b.name ? 1 : a.id < b.id ? -1 : a.id > b.id ? 1 : 0;
}
