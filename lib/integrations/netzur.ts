/**
 * Netzur (spec §3.3): one `GET <api_url>` with `Authorization: Bearer <api_key>` returning
 * `{ "zones": [...], "customers": [...] }`. Zones become sites, customers circuits. Strategy: full only.
 *
 * Deliberate differences from upstream (see README): zone capacities are not multiplied by the client
 * overhead factors; a circuit in a zone without an id still gets the zone as its Parent Node.
 */
import type { LqosConfig } from '../config/schema.ts';
import {
  buildOptionsFromConfig,
  timeoutMsWithFloor,
  clientRate,
  clientRateFactors,
  endpointOf,
  finishRun,
  getJson,
  num,
  reqArray,
  requireSettings,
  runRequest,
  splitList,
  text,
  TopologyBuilder,
  type ClientRateFactors,
  type Obj,
  type RunOptions,
  type RunResult,
} from './common/index.ts';

export const CRM = 'Netzur';
/** The shortest HTTP timeout used (upstream's floor). */
const NETZUR_MIN_TIMEOUT_SECS = 5;

export async function run(config: LqosConfig, opts: RunOptions): Promise<RunResult> {
  const c = requireSettings(CRM, config, 'netzur_integration', ['api_url', 'api_key']);
  const url = c.api_url.trim();
  const body = await getJson(
    url,
    runRequest(CRM, opts, {
      headers: { Authorization: `Bearer ${c.api_key}` },
      timeoutMs: timeoutMsWithFloor(CRM, 'netzur_integration.timeout_secs', c.timeout_secs, NETZUR_MIN_TIMEOUT_SECS, opts.log),
      retries: 3,
      backoffMs: 1000,
      authHint: 'check netzur_integration.api_key',
      urlHint: 'check netzur_integration.api_url',
    }),
  );
  const ctx = { crm: CRM, endpoint: endpointOf('GET', url) };
  const zones = reqArray(body, ctx, 'zones');
  const customers = reqArray(body, ctx, 'customers');

  const b = new TopologyBuilder(buildOptionsFromConfig(config, CRM, 'full'), opts.log);
  const excluded = new Set(config.uisp_integration.exclude_sites.map((s) => s.toLowerCase()));
  const zoneIdByName = addZones(b, zones, excluded, opts);
  const factors = clientRateFactors(config);
  customers.forEach((raw, i) => addCustomer(b, (raw ?? {}) as Obj, i, { excluded, zoneIdByName, factors }));
  return finishRun(b, opts);
}

/** Zones → top-level sites; returns zone name → graph id. */
function addZones(b: TopologyBuilder, zones: unknown[], excluded: Set<string>, opts: RunOptions): Map<string, string> {
  const zoneIdByName = new Map<string, string>();
  zones.forEach((z, i) => {
    const zone = z as Obj;
    const name = text(zone?.name);
    if (name === '') {
      b.warn(`zones[${i}] has no name; ignored`);
      return;
    }
    if (excluded.has(name.toLowerCase())) {
      opts.log.info(`${CRM}: zone "${name}" is in exclude_sites; not added`);
      return;
    }
    if (zoneIdByName.has(name)) {
      b.warn(`zone "${name}" is listed twice; the first one is kept`);
      return;
    }
    const zoneId = text(zone.id ?? zone.zone_id);
    const graphId = zoneId !== '' ? `netzur:zone:${zoneId}` : `netzur:zone-name:${name}`;
    zoneIdByName.set(name, graphId);
    b.addNode({
      id: graphId,
      name,
      kind: 'site',
      networkJsonId: zoneId !== '' ? `netzur:zone:${zoneId}` : '',
      downloadMbps: num(zone.capacity_download_mbps) ?? 0,
      uploadMbps: num(zone.capacity_upload_mbps) ?? 0,
    });
  });
  return zoneIdByName;
}

/** A customer → a circuit in its zone, with one device when it has an address or MAC. */
function addCustomer(
  b: TopologyBuilder,
  cu: Obj,
  i: number,
  ctx: { excluded: Set<string>; zoneIdByName: Map<string, string>; factors: ClientRateFactors },
): void {
  const sub = text(cu.subscriber_id);
  const name = text(cu.customerName) || sub;
  if (sub === '') {
    b.skip(`customers[${i}]`, name || '(no name)', 'no subscriber_id');
    return;
  }
  const id = `netzur_${sub}`;
  const zone = text(cu.zone);
  if (zone !== '' && ctx.excluded.has(zone.toLowerCase())) {
    b.skip(id, name, `zone "${zone}" is in exclude_sites`);
    return;
  }
  let parentId: string | undefined;
  if (zone !== '') {
    parentId = ctx.zoneIdByName.get(zone);
    if (!parentId) b.warn(`customer ${sub} "${name}" is in unknown zone "${zone}"; shaped without a parent`);
  }
  const ipv4 = splitList(cu.ip, /,/);
  const ipv6 = splitList(cu.ipv6, /,/);
  const mac = text(cu.mac);
  const downloadMaxMbps = clientRate(cu.download, ctx.factors);
  const uploadMaxMbps = clientRate(cu.upload, ctx.factors);
  if (!b.addClient({ id, name, address: text(cu.address), parentId, downloadMaxMbps, uploadMaxMbps })) return;
  if (ipv4.length > 0 || ipv6.length > 0 || mac !== '') {
    b.addDevice({ id: `${id}_device`, name: `${name}_device`, clientId: id, mac, ipv4, ipv6 });
  }
}
