/**
 * The builder of the one graph model every integration fills (graphModel.ts): infrastructure nodes
 * (sites and APs), clients (one client = one circuit) and devices (one ShapedDevices row each). `build()` applies the shared rules
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
import type { Circuit, Device } from '../../model.ts';
import { writeShapedDevices } from '../../inputs/writeShapedDevices.ts';
import type { BuildOptions, BuildResult, ClientInput, DeviceInput, InfraNodeInput, SkippedEntry } from './graphModel.ts';
import { canonicalIp, IpFilter } from './ip.ts';
import { finalRates } from './rates.ts';
import { silentLogger, type IntegrationLogger } from './log.ts';
import { NodeTree, project, renderNetworkJson, uniqueNames, type Node, type OutNode } from './tree.ts';

/** A client that produces a circuit: its usable devices and the node it hangs below. */
interface Live {
  client: ClientInput;
  devices: Device[];
  attach: Node;
}

export class TopologyBuilder {
  readonly opts: BuildOptions;
  private readonly log: IntegrationLogger;
  private readonly nodes = new Map<string, InfraNodeInput>();
  private readonly clients = new Map<string, ClientInput>();
  private readonly devices: DeviceInput[] = [];
  private readonly skipped: SkippedEntry[] = [];
  private readonly warnings: string[] = [];
  /** Nodes left out by exclude_sites: id → name. */
  private readonly excluded = new Map<string, string>();

  constructor(opts: BuildOptions, log: IntegrationLogger = silentLogger) {
    this.opts = opts;
    this.log = log;
    for (const note of opts.notes ?? []) this.warn(note);
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
      this.excluded.set(n.id, n.name);
      this.log.info(`${this.opts.crm}: node "${n.name}" is in exclude_sites; not added`);
      return false;
    }
    return this.addFirst(this.nodes, 'node', n);
  }

  /** Adds a client (circuit). A second client with the same id is ignored with a warning. */
  addClient(c: ClientInput): boolean {
    return this.addFirst(this.clients, 'circuit', c);
  }

  /** Adds a device to an existing client. */
  addDevice(d: DeviceInput): void {
    if (!this.clients.has(d.clientId)) throw new Error(`addDevice: unknown client ${d.clientId}`);
    this.devices.push({ ...d, ipv4: [...(d.ipv4 ?? [])], ipv6: [...(d.ipv6 ?? [])] });
  }

  /** The added devices themselves, in order (the MikroTik IPv6 step appends prefixes to them). */
  addedDevices(): readonly DeviceInput[] {
    return this.devices;
  }

  /** The added device with this id (e.g. to add the addresses of an "online sessions" endpoint to it). */
  deviceOf(deviceId: string): DeviceInput | undefined {
    return this.devices.find((d) => d.id === deviceId);
  }

  /** Stores a copy of `v` unless its id is taken (then warns and returns false). */
  private addFirst<T extends { id: string; name: string }>(map: Map<string, T>, what: string, v: T): boolean {
    if (map.has(v.id)) {
      this.warn(`${what} id ${v.id} ("${v.name}") appears twice; the first one is kept`);
      return false;
    }
    map.set(v.id, { ...v });
    return true;
  }

  /** Applies the shared rules and renders network.json and ShapedDevices.csv. */
  build(): BuildResult {
    const o = this.opts;
    const warn = (msg: string) => this.warn(msg);
    const tree = new NodeTree(this.nodes.values(), o, this.excluded, warn);
    tree.clampRates();
    const claims = new AddressClaims(o, warn, this.log);
    const devicesByClient = claims.devicesByClient(this.devices);
    const live = this.attachClients(tree, devicesByClient, claims.dropReasons);
    tree.reportExcluded();
    const projection = project(tree, o.strategy, live.map((l) => ({ id: l.client.id, attach: l.attach })));
    uniqueNames(projection.top, warn);
    const networkJson = renderNetworkJson(projection.top);
    const circuits = live.map((l) => this.circuit(l, projection.circuitParent.get(l.client.id) ?? null));
    const shapedDevicesCsv = writeShapedDevices(circuits);

    let sites = 0;
    let aps = 0;
    for (const e of projection.exported.values()) e.src.kind === 'site' ? sites++ : aps++;
    return {
      networkJson,
      shapedDevicesCsv,
      summary: {
        crm: o.crm,
        strategy: o.strategy,
        sites,
        aps,
        circuits: circuits.length,
        devices: circuits.reduce((n, c) => n + c.devices.length, 0),
        skipped: [...this.skipped],
        warnings: [...this.warnings],
      },
    };
  }

  /** Clients with a usable device and where they hang; the others are skipped with the most useful reason. */
  private attachClients(tree: NodeTree, devicesByClient: Map<string, Device[]>, dropReasons: Map<string, string[]>): Live[] {
    const live: Live[] = [];
    for (const c of this.clients.values()) {
      const devices = devicesByClient.get(c.id) ?? [];
      if (devices.length === 0) {
        const drops = dropReasons.get(c.id);
        const reason = drops ? `no usable IP address: ${drops.join('; ')}` : 'no IP address';
        this.skip(c.id, c.name, reason);
        continue;
      }
      live.push({ client: c, devices, attach: tree.parentOf('circuit', c.id, c.name, c.parentId) });
    }
    return live;
  }

  /** Rules 8–9: one ShapedDevices circuit. */
  private circuit(l: Live, parent: OutNode | null): Circuit {
    const o = this.opts;
    const c = l.client;
    const rates = finalRates(c, { floorMbps: o.rateFloorMbps, commitRatio: o.commitRatio });
    const name = o.circuitNameAsAddress && c.address && c.address.trim() !== '' ? c.address.trim() : c.name;
    const circuit: Circuit = {
      id: c.id,
      name,
      parentNode: parent ? parent.name : '',
      parentNodeId: parent ? parent.src.networkJsonId ?? '' : '',
      anchorNodeId: '',
      ...rates,
      comment: c.comment ?? '',
      devices: l.devices,
      line: 0,
    };
    if (c.sqm) circuit.sqm = c.sqm;
    return circuit;
  }
}

/**
 * Rule 4: device addresses canonicalised, filtered and claimed first-come-first-served across the run.
 * What is dropped is warned (or logged) and noted as a reason for the device's client.
 */
class AddressClaims {
  /** Circuit id → why its addresses were dropped. */
  readonly dropReasons = new Map<string, string[]>();
  private readonly filter: IpFilter;
  /** Prefix → circuit id. */
  private readonly claimed = new Map<string, string>();
  private readonly crm: string;
  private readonly warn: (msg: string) => void;
  private readonly log: IntegrationLogger;

  constructor(o: BuildOptions, warn: (msg: string) => void, log: IntegrationLogger) {
    this.filter = new IpFilter(o.ipFilterMode, o.ignoreSubnets, o.allowSubnets);
    this.crm = o.crm;
    this.warn = warn;
    this.log = log;
  }

  /** Circuit id → its devices that keep at least one address, in input order. */
  devicesByClient(devices: readonly DeviceInput[]): Map<string, Device[]> {
    const byClient = new Map<string, Device[]>();
    for (const d of devices) {
      const v4: string[] = [];
      const v6: string[] = [];
      for (const raw of [...(d.ipv4 ?? []), ...(d.ipv6 ?? [])]) this.claim(d, raw, v4, v6);
      if (v4.length === 0 && v6.length === 0) continue;
      const list = byClient.get(d.clientId) ?? [];
      list.push({ id: d.id, name: d.name, mac: d.mac ?? '', ipv4: v4, ipv6: v6, comment: d.comment ?? '', line: 0 });
      byClient.set(d.clientId, list);
    }
    return byClient;
  }

  /** One raw address of a device: appended to `v4` or `v6`, or dropped. */
  private claim(d: DeviceInput, raw: string, v4: string[], v6: string[]): void {
    const c = canonicalIp(String(raw));
    if ('error' in c) {
      this.warn(`device ${d.id}: address "${raw}" dropped: ${c.error}`);
      this.noteDrop(d.clientId, `invalid address "${raw}"`);
      return;
    }
    const out = c.family === 'v4' ? v4 : v6;
    if (out.includes(c.prefix)) return;
    const rejected = this.filter.rejects(c.prefix);
    if (rejected) {
      this.log.debug(`${this.crm}: device ${d.id}: ${c.prefix} dropped: ${rejected}`);
      this.noteDrop(d.clientId, `${c.prefix} ${rejected}`);
      return;
    }
    const owner = this.claimed.get(c.prefix);
    if (owner !== undefined && owner !== d.clientId) {
      this.warn(`device ${d.id} (circuit ${d.clientId}): duplicate address ${c.prefix} already used by circuit ${owner}; omitted`);
      this.noteDrop(d.clientId, `duplicate address ${c.prefix} (already used by circuit ${owner})`);
      return;
    }
    if (owner !== undefined) {
      this.warn(`device ${d.id}: address ${c.prefix} is also on another device of circuit ${d.clientId}; omitted here`);
      return;
    }
    this.claimed.set(c.prefix, d.clientId);
    out.push(c.prefix);
  }

  private noteDrop(clientId: string, reason: string): void {
    const list = this.dropReasons.get(clientId) ?? [];
    list.push(reason);
    this.dropReasons.set(clientId, list);
  }
}
