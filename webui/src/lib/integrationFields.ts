/**
 * The integration configuration editors are generated from the sections GET /api/config returns:
 * field types come from the values (boolean, number, string, list of strings, list of objects), keys
 * whose name marks a secret (same rule as lib/web/redact.ts) are secrets, and a few hints add labels,
 * choices and optional keys that have no value yet (the server omits unset optional keys).
 */
import type { Field, FieldType, Group } from './configFields';

export interface IntegrationDef {
  title: string;
  sections: { key: string; title: string }[];
  /** The `enable_*` switch (`section.key`), if the integration has one. */
  enable?: string;
  blurb: string;
}

export const INTEGRATIONS: Record<string, IntegrationDef> = {
  common: {
    title: 'Integration Common',
    sections: [
      { key: 'integration_common', title: 'Common integration settings' },
      { key: 'topology', title: 'Topology' },
    ],
    blurb: 'Settings every CRM integration uses: refresh interval, naming, bandwidth multipliers and how the topology is compiled.',
  },
  uisp: { title: 'UISP', sections: [{ key: 'uisp_integration', title: 'UISP' }], enable: 'uisp_integration.enable_uisp', blurb: 'Ubiquiti UISP (UNMS): sites, access points and client services.' },
  splynx: { title: 'Splynx', sections: [{ key: 'splynx_integration', title: 'Splynx' }], enable: 'splynx_integration.enable_splynx', blurb: 'Splynx ISP billing: customers, services and tariffs.' },
  visp: { title: 'VISP', sections: [{ key: 'visp_integration', title: 'VISP' }], enable: 'visp_integration.enable_visp', blurb: 'VISP (GraphQL API).' },
  netzur: { title: 'Netzur', sections: [{ key: 'netzur_integration', title: 'Netzur' }], enable: 'netzur_integration.enable_netzur', blurb: 'Netzur REST API.' },
  powercode: { title: 'Powercode', sections: [{ key: 'powercode_integration', title: 'Powercode' }], enable: 'powercode_integration.enable_powercode', blurb: 'Powercode BMS.' },
  sonar: { title: 'Sonar', sections: [{ key: 'sonar_integration', title: 'Sonar' }], enable: 'sonar_integration.enable_sonar', blurb: 'Sonar (GraphQL API) with SNMP for radios.' },
  wispgate: { title: 'WISPGate', sections: [{ key: 'wispgate_integration', title: 'WISPGate' }], enable: 'wispgate_integration.enable_wispgate', blurb: 'WISPGate API.' },
};

export const INTEGRATION_KEYS = Object.keys(INTEGRATIONS);

/** As lib/web/redact.ts isSecretKey: such values arrive as "set" / "not set" only. */
export function isSecretKey(name: string): boolean {
  const k = name.toLowerCase();
  if (k.includes('secret') || k.includes('password') || k.includes('passphrase')) return true;
  if (k === 'snmp_community') return true;
  const last = k.split(/[_\-.]/).pop() ?? k;
  return last === 'token' || last === 'key' || last === 'apikey';
}

type Hint = Partial<Omit<Field, 'key'>>;
const STRATEGIES = [
  { value: '', label: '(default)' },
  { value: 'flat', label: 'flat' },
  { value: 'ap_only', label: 'ap_only' },
  { value: 'ap_site', label: 'ap_site' },
  { value: 'full', label: 'full' },
];
const HINTS: Record<string, Hint> = {
  'integration_common.queue_refresh_interval_mins': { label: 'Refresh interval (minutes)', min: 1 },
  'integration_common.circuit_name_as_address': { label: 'Use the circuit name as address' },
  'integration_common.always_overwrite_network_json': { label: 'Always overwrite network.json' },
  'integration_common.use_mikrotik_ipv6': { label: 'Read IPv6 prefixes from MikroTik routers' },
  'integration_common.promote_to_root': { label: 'Promote to root (one site per line)', sensitive: 'site' },
  'integration_common.client_bandwidth_multiplier': { label: 'Client bandwidth multiplier' },
  'integration_common.ethernet_port_limits_enabled': { label: 'Cap plans at the CPE Ethernet port speed' },
  'integration_common.ethernet_port_limit_multiplier': { label: 'Ethernet port limit multiplier' },
  'topology.compile_mode': { label: 'Topology compile mode', type: 'select', options: STRATEGIES, help: 'Blank: each integration uses its own strategy setting.' },
  'topology.queue_auto_virtualize_threshold_mbps': { label: 'Auto-virtualize nodes above (Mbps)', type: 'int', optional: true, min: 5001 },
  'uisp_integration.url': { label: 'UISP URL' },
  'uisp_integration.site': { label: 'Root site', sensitive: 'site' },
  'uisp_integration.strategy': { type: 'select', options: STRATEGIES },
  'uisp_integration.suspended_strategy': {
    type: 'select',
    options: [
      { value: '', label: '(default)' },
      { value: 'none', label: 'none' },
      { value: 'ignore', label: 'ignore' },
      { value: 'slow', label: 'slow' },
    ],
  },
  'uisp_integration.exclude_sites': { label: 'Exclude sites (one per line)', sensitive: 'site' },
  'uisp_integration.squash_sites': { label: 'Squash sites (one per line)', sensitive: 'site' },
  'uisp_integration.do_not_squash_sites': { label: 'Do not squash sites (one per line)', sensitive: 'site' },
  'uisp_integration.exception_cpes': { label: 'Exception CPEs (JSON: [{"cpe": "...", "parent": "..."}])', sensitive: 'site' },
  'splynx_integration.strategy': { type: 'select', options: STRATEGIES },
  'splynx_integration.url': { label: 'Splynx URL' },
  'visp_integration.strategy': { type: 'select', options: STRATEGIES },
  'visp_integration.isp_id': { label: 'ISP id', type: 'int', optional: true, min: 0, help: 'Blank or 0: the first ISP id in the token.' },
  'visp_integration.tenant_id': { label: 'Tenant id', type: 'int', optional: true },
  'visp_integration.online_users_domain': { label: 'Online users domain', type: 'text', optional: true },
  'netzur_integration.api_url': { label: 'API URL' },
  'powercode_integration.powercode_api_url': { label: 'Powercode API URL' },
  'sonar_integration.sonar_api_url': { label: 'Sonar API URL' },
  'sonar_integration.snmp_community': { label: 'SNMP community' },
  'sonar_integration.recurring_service_rates': { label: 'Recurring service rates (JSON: [{"service_name", "download_mbps", "upload_mbps", "enabled"}])' },
  'wispgate_integration.wispgate_api_url': { label: 'WISPGate API URL' },
  'wispgate_integration.wispgate_api_token': { label: 'WISPGate API token' },
};

const WORDS: Record<string, string> = { url: 'URL', api: 'API', id: 'id', ipv6: 'IPv6', ssl: 'SSL', snmp: 'SNMP', uisp: 'UISP', cpes: 'CPEs', mbps: '(Mbps)', secs: '(s)', mins: '(minutes)', ltu: 'LTU', tls: 'TLS', isp: 'ISP' };
export function humanize(key: string): string {
  const words = key.split('_').map((w) => WORDS[w] ?? w);
  const s = words.join(' ');
  return s.charAt(0).toUpperCase() + s.slice(1);
}

function typeOf(key: string, v: unknown): FieldType {
  if (isSecretKey(key)) return 'secret';
  if (typeof v === 'boolean') return 'bool';
  if (typeof v === 'number') return 'number';
  if (Array.isArray(v)) return v.every((x) => typeof x === 'string') ? 'list' : 'json';
  if (v !== null && typeof v === 'object') return 'json';
  return 'text';
}

/** The form of one integration page, from the current config values. */
export function integrationGroups(config: Record<string, unknown>, name: string): Group[] {
  const def = INTEGRATIONS[name];
  if (!def) return [];
  return def.sections.map(({ key: section, title }) => {
    const values = (config[section] && typeof config[section] === 'object' ? config[section] : {}) as Record<string, unknown>;
    const keys = Object.keys(values);
    for (const h of Object.keys(HINTS)) {
      const [s, k] = h.split('.');
      if (s === section && !keys.includes(k)) keys.push(k);
    }
    // the enable switch first
    keys.sort((a, b) => Number(b.startsWith('enable_')) - Number(a.startsWith('enable_')));
    const fields: Field[] = keys.map((k) => {
      const full = `${section}.${k}`;
      const hint = HINTS[full] ?? {};
      const inferred = typeOf(k, values[k]);
      // recurring_service_rates / exception_cpes are lists of objects even when empty
      const type: FieldType = hint.type ?? (Array.isArray(values[k]) && (k === 'exception_cpes' || k === 'recurring_service_rates') ? 'json' : inferred);
      return { key: full, label: hint.label ?? humanize(k), ...hint, type };
    });
    return { title, fields };
  });
}
