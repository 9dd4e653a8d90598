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
  clientRate,
  clientRateFactors,
  endpointOf,
  finishRun,
  getJson,
  IntegrationError,
  num,
  reqArray,
  splitList,
  text,
  TopologyBuilder,
  type RunOptions,
  type RunResult,
} from './common/index.ts';

export const CRM = 'Netzur';

export async function run(config: LqosConfig, opts: RunOptions): Promise<RunResult> {
  const c = config.netzur_integration;
  if (c.api_url.trim() === '') throw new IntegrationError(`${CRM}: netzur_integration.api_url is empty; set it in lqos.conf`, { crm: CRM });
  if (c.api_key.trim() === '') throw new IntegrationError(`${CRM}: netzur_integration.api_key is empty; set it in lqos.conf`, { crm: CRM });
  const url = c.api_url.trim();
  const endpoint = endpointOf('GET', url);
  const body = await getJson(url, {
    crm: CRM,
    headers: { Authorization: `Bearer ${c.api_key}` },
    timeoutMs: Math.max(5, c.timeout_secs) * 1000,
    retries: 3,
    backoffMs: 1000,
    ...opts.http,
    authHint: 'check netzur_integration.api_key',
    urlHint: 'check netzur_integration.api_url',
    log: opts.log,
  });
  const ctx = { crm: CRM, endpoint };
  const zones = reqArray(body, ctx, 'zones');
  const customers = reqArray(body, ctx, 'customers');

  const b = new TopologyBuilder(buildOptionsFromConfig(config, CRM, 'full'), opts.log);
  const factors = clientRateFactors(config);
  const excluded = new Set(config.uisp_integration.exclude_sites.map((s) => s.toLowerCase()));

  const zoneIdByName = new Map<string, string>();
  zones.forEach((z, i) => {
    const name = text((z as Record<string, unknown>)?.name);
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
    const zoneId = text((z as Record<string, unknown>).id ?? (z as Record<string, unknown>).zone_id);
    const graphId = zoneId !== '' ? `netzur:zone:${zoneId}` : `netzur:zone-name:${name}`;
    zoneIdByName.set(name, graphId);
    b.addNode({
      id: graphId,
      name,
      kind: 'site',
      networkJsonId: zoneId !== '' ? `netzur:zone:${zoneId}` : '',
      downloadMbps: num((z as Record<string, unknown>).capacity_download_mbps) ?? 0,
      uploadMbps: num((z as Record<string, unknown>).capacity_upload_mbps) ?? 0,
    });
  });

  customers.forEach((raw, i) => {
    const cu = (raw ?? {}) as Record<string, unknown>;
    const sub = text(cu.subscriber_id);
    const name = text(cu.customerName) || sub;
    if (sub === '') {
      b.skip(`customers[${i}]`, name || '(no name)', 'no subscriber_id');
      return;
    }
    const id = `netzur_${sub}`;
    const zone = text(cu.zone);
    if (zone !== '' && excluded.has(zone.toLowerCase())) {
      b.skip(id, name, `zone "${zone}" is in exclude_sites`);
      return;
    }
    let parentId: string | undefined;
    if (zone !== '') {
      parentId = zoneIdByName.get(zone);
      if (!parentId) b.warn(`customer ${sub} "${name}" is in unknown zone "${zone}"; shaped without a parent`);
    }
    const ipv4 = splitList(cu.ip, /,/);
    const ipv6 = splitList(cu.ipv6, /,/);
    const mac = text(cu.mac);
    if (!b.addClient({
      id,
      name,
      address: text(cu.address),
      parentId,
      downloadMaxMbps: clientRate(cu.download, factors),
      uploadMaxMbps: clientRate(cu.upload, factors),
    })) return;
    if (ipv4.length > 0 || ipv6.length > 0 || mac !== '') {
      b.addDevice({ id: `${id}_device`, name: `${name}_device`, clientId: id, mac, ipv4, ipv6 });
    }
  });

  return finishRun(b, opts);
}
