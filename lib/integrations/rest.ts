/**
 * Generic REST/HTTP source (spec §3.8: upstream's module is a deprecated stub with no lqos.conf
 * section; this is the "generic HTTP source" it sketches). It is never enabled by lqos.conf — run it by
 * hand (`tsx bin/integration.ts rest`). Settings come from the environment:
 *
 * | variable | meaning |
 * |---|---|
 * | `LQOS_REST_URL` | base URL (required) |
 * | `LQOS_REST_DEVICES_PATH` | devices endpoint below the base (default `devices`) |
 * | `LQOS_REST_NETWORK_PATH` | network endpoint below the base (default `network`; `-` = flat network) |
 * | `LQOS_REST_TOKEN` | optional bearer token |
 *
 * Devices endpoint: a JSON array of rows keyed by ShapedDevices.csv header names (`Circuit ID`,
 * `Circuit Name`, `Device ID`, `Device Name`, `Parent Node`, `Parent Node ID`, `MAC`, `IPv4`, `IPv6`,
 * `Download Min Mbps`, `Upload Min Mbps`, `Download Max Mbps`, `Upload Max Mbps`, `Comment`), or a page
 * `{ "items": [...], "next": "<url or null>" }` (link pagination). Rows with the same Circuit ID form
 * one circuit (the first row's rates/parent win). Network endpoint: a network.json object.
 * Rates are taken as given (no overhead factors); a missing minimum is 98 % of the maximum.
 */
import type { LqosConfig } from '../config/schema.ts';
import { normaliseHeader, SHAPED_DEVICES_COLUMNS, type ShapedDeviceField } from '../inputs/shapedDevices.ts';
import {
  buildOptionsFromConfig,
  endpointOf,
  finishRun,
  followNextLinks,
  getJson,
  IntegrationError,
  isObj,
  joinUrl,
  num,
  reqArray,
  runRequest,
  splitList,
  text,
  TopologyBuilder,
  type Obj,
  type RequestOptions,
  type RunOptions,
  type RunResult,
} from './common/index.ts';

export const CRM = 'REST';

const FIELD_BY_ALIAS = new Map<string, ShapedDeviceField>();
for (const c of SHAPED_DEVICES_COLUMNS) for (const a of c.aliases) FIELD_BY_ALIAS.set(a, c.field);

type Row = Partial<Record<ShapedDeviceField, unknown>>;

export async function run(config: LqosConfig, opts: RunOptions): Promise<RunResult> {
  const env = opts.env ?? process.env;
  const baseUrl = text(env.LQOS_REST_URL);
  if (baseUrl === '') throw new IntegrationError(`${CRM}: LQOS_REST_URL is not set; export the base URL of the devices/network API`, { crm: CRM });
  const devicesPath = text(env.LQOS_REST_DEVICES_PATH) || 'devices';
  const networkPath = text(env.LQOS_REST_NETWORK_PATH) || 'network';
  const token = text(env.LQOS_REST_TOKEN);
  const headers: Record<string, string> = token ? { Authorization: `Bearer ${token}` } : {};
  const http = runRequest(CRM, opts, { headers, authHint: 'check LQOS_REST_TOKEN', urlHint: 'check LQOS_REST_URL' });

  const b = new TopologyBuilder(buildOptionsFromConfig(config, CRM, 'full', { clientMultiplierApplied: false }), opts.log);
  const nameById = networkPath !== '-' ? await addNetwork(b, joinUrl(baseUrl, networkPath), http) : new Map<string, string>();

  const first = joinUrl(baseUrl, devicesPath);
  const rows = await fetchRows(first, http);
  const endpoint = endpointOf('GET', first);
  const seenDevice = new Set<string>();
  rows.forEach((raw, i) => {
    if (!isObj(raw)) throw new IntegrationError(`${CRM}: ${endpoint}: row ${i + 1} is not an object`, { crm: CRM, endpoint });
    const r = byField(raw);
    const circuitId = text(r.circuitId);
    if (circuitId === '') {
      throw new IntegrationError(`${CRM}: ${endpoint}: required field "Circuit ID" is missing in row ${i + 1}`, { crm: CRM, endpoint });
    }
    if (!b.hasClient(circuitId)) addCircuit(b, r, circuitId, nameById, `row ${i + 1}`, endpoint);
    let deviceId = text(r.deviceId) || `${circuitId}-${i + 1}`;
    if (seenDevice.has(deviceId)) deviceId = `${deviceId}-${i + 1}`;
    seenDevice.add(deviceId);
    b.addDevice({
      id: deviceId,
      name: text(r.deviceName) || deviceId,
      clientId: circuitId,
      mac: text(r.mac),
      ipv4: splitList(r.ipv4, /,/),
      ipv6: splitList(r.ipv6, /,/),
      comment: text(r.comment),
    });
  });

  return finishRun(b, opts);
}

/** The network endpoint's network.json object → nodes; returns network.json id → node name. */
async function addNetwork(b: TopologyBuilder, url: string, http: RequestOptions): Promise<Map<string, string>> {
  const nameById = new Map<string, string>();
  const endpoint = endpointOf('GET', url);
  const net = await getJson(url, http);
  if (!isObj(net)) {
    throw new IntegrationError(`${CRM}: ${endpoint}: the response body is not a network.json object`, { crm: CRM, endpoint });
  }
  const walk = (level: Obj, parent: string, path: string) => {
    for (const [name, v] of Object.entries(level)) {
      if (!isObj(v)) throw new IntegrationError(`${CRM}: ${endpoint}: node "${path}${name}" is not an object`, { crm: CRM, endpoint });
      const id = text(v.id);
      b.addNode({
        id: name,
        name,
        kind: text(v.type).toLowerCase() === 'ap' ? 'ap' : 'site',
        parentId: parent,
        networkJsonId: id,
        downloadMbps: num(v.downloadBandwidthMbps),
        uploadMbps: num(v.uploadBandwidthMbps),
        latitude: num(v.latitude),
        longitude: num(v.longitude),
      });
      if (id !== '') nameById.set(id, name);
      if (isObj(v.children)) walk(v.children, name, `${path}${name}.children.`);
    }
  };
  walk(net, '', '');
  return nameById;
}

/** Every device row: a plain array, or pages `{ items, next }` followed to the end. */
function fetchRows(first: string, http: RequestOptions): Promise<unknown[]> {
  return followNextLinks<unknown>(
    first,
    async (url) => {
      const body = await getJson(url, http);
      const endpoint = endpointOf('GET', url);
      if (Array.isArray(body)) return { items: body };
      const items = reqArray(body, { crm: CRM, endpoint }, 'items');
      const next = isObj(body) ? body.next : undefined;
      return { items, next: typeof next === 'string' ? next : null };
    },
    { crm: CRM },
  );
}

/** A row's cells by ShapedDevices field (header names and their aliases). */
function byField(raw: Obj): Row {
  const r: Row = {};
  for (const [k, v] of Object.entries(raw)) {
    const f = FIELD_BY_ALIAS.get(normaliseHeader(k));
    if (f) r[f] = v;
  }
  return r;
}

/** The circuit of a Circuit ID's first row (its rates, parent and comment). */
function addCircuit(b: TopologyBuilder, r: Row, circuitId: string, nameById: Map<string, string>, where: string, endpoint: string): void {
  const dMax = num(r.downloadMax);
  const uMax = num(r.uploadMax);
  if (dMax === undefined || uMax === undefined) {
    const f = dMax === undefined ? 'Download Max Mbps' : 'Upload Max Mbps';
    throw new IntegrationError(`${CRM}: ${endpoint}: required field "${f}" is missing or not a number in ${where} (circuit ${circuitId})`, {
      crm: CRM,
      endpoint,
    });
  }
  const pid = text(r.parentNodeId);
  b.addClient({
    id: circuitId,
    name: text(r.circuitName) || circuitId,
    parentId: (pid && nameById.get(pid)) || text(r.parentNode),
    downloadMaxMbps: dMax,
    uploadMaxMbps: uMax,
    downloadMinMbps: num(r.downloadMin),
    uploadMinMbps: num(r.uploadMin),
    comment: text(r.comment),
  });
}
