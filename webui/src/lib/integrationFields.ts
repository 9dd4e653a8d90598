/**
 * The integration configuration editors: every key of an integration's lqos.conf sections as the
 * server describes it (GET /api/config/schema), with the labels, help, suggested choices and privacy
 * hints below; keys without a hint get a label made from their name.
 */
import { choice, resolveField, type Choice, type ConfigSchema, type FieldSpec, type Group } from './configFields.ts';

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

type Hint = Omit<FieldSpec, 'key' | 'label'> & { label?: string };
const STRATEGIES: Choice[] = ['', 'flat', 'ap_only', 'ap_site', 'full'].map(choice);
export const HINTS: Record<string, Hint> = {
  'integration_common.queue_refresh_interval_mins': { label: 'Refresh interval (minutes)' },
  'integration_common.circuit_name_as_address': { label: 'Use the circuit name as address' },
  'integration_common.always_overwrite_network_json': { label: 'Always overwrite network.json' },
  'integration_common.use_mikrotik_ipv6': { label: 'Read IPv6 prefixes from MikroTik routers' },
  'integration_common.promote_to_root': { label: 'Promote to root (one site per line)', sensitive: 'site' },
  'integration_common.client_bandwidth_multiplier': { label: 'Client bandwidth multiplier' },
  'integration_common.ethernet_port_limits_enabled': { label: 'Cap plans at the CPE Ethernet port speed' },
  'integration_common.ethernet_port_limit_multiplier': { label: 'Ethernet port limit multiplier' },
  'topology.compile_mode': { label: 'Topology compile mode', help: 'Blank: each integration uses its own strategy setting.' },
  'topology.queue_auto_virtualize_threshold_mbps': { label: 'Auto-virtualize nodes above (Mbps)' },
  'uisp_integration.url': { label: 'UISP URL' },
  'uisp_integration.site': { label: 'Root site', sensitive: 'site' },
  'uisp_integration.strategy': { suggestions: STRATEGIES },
  'uisp_integration.suspended_strategy': { suggestions: ['', 'none', 'ignore', 'slow'].map(choice) },
  'uisp_integration.exclude_sites': { label: 'Exclude sites (one per line)', sensitive: 'site' },
  'uisp_integration.squash_sites': { label: 'Squash sites (one per line)', sensitive: 'site' },
  'uisp_integration.do_not_squash_sites': { label: 'Do not squash sites (one per line)', sensitive: 'site' },
  'uisp_integration.exception_cpes': { label: 'Exception CPEs (JSON: [{"cpe": "...", "parent": "..."}])', sensitive: 'site' },
  'splynx_integration.strategy': { suggestions: STRATEGIES },
  'splynx_integration.url': { label: 'Splynx URL' },
  'visp_integration.strategy': { suggestions: STRATEGIES },
  'visp_integration.isp_id': { label: 'ISP id', help: 'Blank or 0: the first ISP id in the token.' },
  'visp_integration.tenant_id': { label: 'Tenant id' },
  'visp_integration.online_users_domain': { label: 'Online users domain' },
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

/** The form of one integration page: every key of its sections, the enable switch first. */
export function integrationGroups(schema: ConfigSchema, name: string): Group[] {
  const def = INTEGRATIONS[name];
  if (!def) return [];
  const keys = [...schema.keys()];
  for (const h of Object.keys(HINTS)) {
    if (def.sections.some((s) => h.startsWith(`${s.key}.`)) && !schema.has(h)) console.warn(`integration hint ${h}: lqosd does not describe this key`);
  }
  return def.sections.map(({ key: section, title }) => {
    const own = keys.filter((k) => k.startsWith(`${section}.`));
    own.sort((a, b) => Number(isEnable(b)) - Number(isEnable(a)));
    const fields = own.map((key) => {
      const hint = HINTS[key] ?? {};
      return resolveField({ key, ...hint, label: hint.label ?? humanize(key.slice(section.length + 1)) }, schema.get(key)!);
    });
    return { title, fields };
  });
}

const isEnable = (key: string) => key.split('.').pop()!.startsWith('enable_');
