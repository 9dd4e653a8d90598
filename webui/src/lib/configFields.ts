/**
 * Form definitions of the configuration editors (keys are lqos.conf paths, `section.key`). The UI
 * owns labels, grouping, extra help and the choices it suggests for free-text keys; value types,
 * ranges, accepted values, defaults, secret-ness, what each key does (`description`), the formats
 * checked (CIDR, IP) and whether a change waits for an lqosd restart come from the server
 * (GET /api/config/schema, lib/api/config.ts) and are merged in by resolveGroups. The server validates again and its messages
 * are shown.
 */
import type { ConfigKeyDescription, ConfigKeyFidelity } from '../../../lib/api/index.ts';

/** `list`: strings, one per line; `json`: lists of objects edited as JSON. */
export type FieldType = 'text' | 'int' | 'number' | 'bool' | 'select' | 'secret' | 'list' | 'json';

export interface Choice {
  value: string;
  label: string;
}

/** A choice labelled with its value ('' reads "(default)"). */
export const choice = (value: string): Choice => ({ value, label: value === '' ? '(default)' : value });

/** What the UI says about a key. */
export interface FieldSpec {
  key: string;
  label: string;
  help?: string;
  /** Labels of the values the schema accepts (value → label). */
  labels?: Record<string, string>;
  /** Choices offered for a key the schema takes any text for. */
  suggestions?: Choice[];
  /** The form insists on a value even where the schema takes an empty one. */
  required?: true;
  /** The value names sites: masked (and not editable) in privacy mode. */
  sensitive?: 'site';
}

/** A form field: the UI's spec merged with the server's description of the key. */
export interface Field extends Omit<FieldSpec, 'labels' | 'suggestions' | 'required'> {
  type: FieldType;
  options?: Choice[];
  /** Blank removes the key (server default applies). */
  optional: boolean;
  /** A select of numbers (the form holds them as text). */
  numeric?: true;
  required: boolean;
  /** Inclusive bounds; `above` / `below`: exclusive ones. */
  min?: number;
  max?: number;
  above?: number;
  below?: number;
  /** The value lqosd uses while the key is unset. */
  default?: unknown;
  /** What the key does (the server's text). */
  description?: string;
  /** Each value (list: each line) must be a subnet in CIDR form / an IP address. */
  format?: 'cidr' | 'ip';
  /** A change takes effect only after `systemctl restart lqosd`. */
  restartOnly?: true;
  /**
   * Set when lqos-ts does not honour the key (GET /api/config/schema `fidelity`): the note saying
   * what it does instead. The field is shown without an editing control, with this note.
   */
  unsupported?: string;
}

function unsupportedText(f: ConfigKeyFidelity): string {
  const note = f.note ?? 'this key has no effect';
  return f.kind === 'ignored' ? `ignored by lqos-ts: ${note}` : `no effect in lqos-ts: ${note}`;
}

export interface GroupSpec {
  title: string;
  fields: FieldSpec[];
}

export interface Group {
  title: string;
  fields: Field[];
}

/** The server's key descriptions by key. */
export type ConfigSchema = Map<string, ConfigKeyDescription>;

const TYPES: Record<ConfigKeyDescription['type'], FieldType> = {
  boolean: 'bool',
  integer: 'int',
  number: 'number',
  string: 'text',
  string_list: 'list',
  object_list: 'json',
};

const isNumberType = (t: ConfigKeyDescription['type']) => t === 'integer' || t === 'number';

/** The accepted values as choices; an optional number (e.g. NetFlow's version) also offers "unset". */
function choicesOf(spec: FieldSpec, d: ConfigKeyDescription): Choice[] | undefined {
  if (d.values && (d.type === 'string' || isNumberType(d.type))) {
    const values = d.values.map(String);
    const all = isNumberType(d.type) && d.optional ? ['', ...values] : values;
    return all.map((value) => ({ ...choice(value), ...(spec.labels?.[value] ? { label: spec.labels[value] } : {}) }));
  }
  return spec.suggestions;
}

export function resolveField(spec: FieldSpec, d: ConfigKeyDescription): Field {
  const { key, label, help, sensitive } = spec;
  const options = choicesOf(spec, d);
  return {
    key,
    label,
    ...(help ? { help } : {}),
    ...(sensitive ? { sensitive } : {}),
    type: d.secret ? 'secret' : options ? 'select' : TYPES[d.type],
    ...(options ? { options } : {}),
    ...(options && isNumberType(d.type) ? { numeric: true as const } : {}),
    optional: d.optional,
    required: Boolean(spec.required || d.required || d.nonEmpty),
    ...(d.min !== undefined ? { min: d.min } : {}),
    ...(d.max !== undefined ? { max: d.max } : {}),
    ...(d.above !== undefined ? { above: d.above } : {}),
    ...(d.below !== undefined ? { below: d.below } : {}),
    ...('default' in d ? { default: d.default } : {}),
    ...(d.description ? { description: d.description } : {}),
    ...(d.format ? { format: d.format } : {}),
    ...(d.restartOnly ? { restartOnly: d.restartOnly } : {}),
    ...(d.fidelity && d.fidelity.kind !== 'honoured' ? { unsupported: unsupportedText(d.fidelity) } : {}),
  };
}

/** The fields the server knows; a key it does not know is left out with a console warning. */
export function resolveFields(specs: FieldSpec[], schema: ConfigSchema): Field[] {
  const out: Field[] = [];
  for (const spec of specs) {
    const d = schema.get(spec.key);
    if (d) out.push(resolveField(spec, d));
    else console.warn(`config field ${spec.key}: lqosd does not describe this key; it is not shown`);
  }
  return out;
}

export function resolveGroups(specs: GroupSpec[], schema: ConfigSchema): Group[] {
  return specs.map((g) => ({ title: g.title, fields: resolveFields(g.fields, schema) }));
}

/** The lqos.conf sections with a page of their own (route /config/:section, ../router.ts), with their tab titles. */
export const CONFIG_SECTIONS = {
  general: 'General',
  interfaces: 'Interfaces',
  queues: 'Queues',
  tuning: 'Tuning',
  'ip-ranges': 'IP ranges',
  flows: 'Flows',
  web: 'Web server',
} as const;
export type ConfigSection = keyof typeof CONFIG_SECTIONS;

export const GENERAL: GroupSpec[] = [
  {
    title: 'Node',
    fields: [
      { key: 'node_name', label: 'Node name', required: true, help: 'Shown in the UI title and reports.' },
      { key: 'node_id', label: 'Node ID', help: 'Blank: derived from the machine id.' },
      { key: 'packet_capture_time', label: 'Packet capture time (s)' },
      { key: 'queue_check_period_ms', label: 'Queue check period (ms)' },
      { key: 'disable_icmp_ping', label: 'Disable ICMP ping monitoring' },
      { key: 'exclude_efficiency_cores', label: 'Exclude efficiency cores from shaping' },
    ],
  },
  {
    title: 'Heatmaps',
    fields: [
      { key: 'enable_circuit_heatmaps', label: 'Circuit heatmaps' },
      { key: 'enable_site_heatmaps', label: 'Site heatmaps' },
      { key: 'enable_asn_heatmaps', label: 'ASN heatmaps' },
    ],
  },
  {
    title: 'Long-term stats',
    fields: [
      { key: 'long_term_stats.gather_stats', label: 'Gather long-term stats' },
      { key: 'long_term_stats.license_key', label: 'License key' },
    ],
  },
];

export const BRIDGE: FieldSpec[] = [
  { key: 'bridge.to_internet', label: 'Interface to the Internet', help: 'Upload is shaped on its egress.' },
  { key: 'bridge.to_network', label: 'Interface to the subscribers', help: 'Download is shaped on its egress.' },
  {
    key: 'bridge.use_xdp_bridge',
    label: 'Use the XDP bridge',
    help:
      'Off: a Linux bridge you built (e.g. br0 holding both interfaces) forwards; lqos-ts classifies and shapes. ' +
      'On: lqos-ts forwards between the two interfaces itself; take them out of any Linux bridge first (lqosd refuses while one holds both). ' +
      'Takes effect when lqosd restarts.',
  },
  { key: 'bridge.mtu', label: 'MTU' },
];

export const SINGLE: FieldSpec[] = [
  { key: 'single_interface.interface', label: 'Interface' },
  { key: 'single_interface.internet_vlan', label: 'Internet VLAN', help: 'VLAN id (1-4094) the router tags toward the Internet; lqos-ts sends these frames back out tagged with the network VLAN.' },
  { key: 'single_interface.network_vlan', label: 'Network VLAN', help: 'VLAN id (1-4094) toward the subscribers; must differ from the Internet VLAN.' },
  { key: 'single_interface.mtu', label: 'MTU' },
];

export const QUEUES: GroupSpec[] = [
  {
    title: 'Queueing',
    fields: [
      { key: 'queues.queue_mode', label: 'Queue mode', labels: { shape: 'Shape (enforce plans)', observe: 'Observe (count traffic only)' } },
      {
        key: 'queues.default_sqm',
        label: 'Default SQM',
        suggestions: ['cake diffserv4', 'cake diffserv4 ack-filter', 'fq_codel'].map(choice),
      },
      { key: 'queues.fast_queues_fq_codel', label: 'Use fq_codel above (Mbps)' },
      { key: 'queues.dry_run', label: 'Dry run (never touch the kernel)' },
    ],
  },
  {
    title: 'Link capacity',
    fields: [
      {
        key: 'queues.downlink_bandwidth_mbps',
        label: 'Total download (Mbps)',
        help: 'Download capacity of the Internet link, shaped toward the subscribers (to_network).',
      },
      {
        key: 'queues.uplink_bandwidth_mbps',
        label: 'Total upload (Mbps)',
        help: 'Upload capacity of the Internet link, shaped toward the Internet (to_internet). Upstream LibreQoS.py used this value for both directions.',
      },
      { key: 'queues.generated_pn_download_mbps', label: 'Generated parent node download (Mbps)' },
      { key: 'queues.generated_pn_upload_mbps', label: 'Generated parent node upload (Mbps)' },
    ],
  },
  {
    title: 'CPU queues',
    fields: [
      { key: 'queues.override_available_queues', label: 'Queues to use (0 = one per CPU)' },
      { key: 'queues.use_binpacking', label: 'Bin-pack circuits onto CPUs' },
      { key: 'queues.lazy_queues', label: 'Lazy queues', labels: { No: 'No (build every circuit at once)', Htb: 'Htb (classes at once, SQM leaf on first traffic)', Full: 'Full (class and leaf on first traffic)' } },
      { key: 'queues.lazy_expire_seconds', label: 'Lazy queue expiry (s)' },
      { key: 'queues.integration_timeout_secs', label: 'Integration timeout (s)' },
    ],
  },
];

export function getPath(obj: Record<string, unknown>, path: string): unknown {
  let cur: unknown = obj;
  for (const part of path.split('.')) {
    if (!cur || typeof cur !== 'object') return undefined;
    cur = (cur as Record<string, unknown>)[part];
  }
  return cur;
}

export function setPath(obj: Record<string, unknown>, path: string, value: unknown): void {
  const parts = path.split('.');
  let cur = obj;
  for (const p of parts.slice(0, -1)) {
    if (!cur[p] || typeof cur[p] !== 'object') cur[p] = {};
    cur = cur[p] as Record<string, unknown>;
  }
  cur[parts.at(-1)!] = value;
}

export const TUNING: GroupSpec[] = [
  {
    title: 'CPU and kernel',
    fields: [
      { key: 'tuning.set_cpu_governor_performance', label: 'Performance CPU governor' },
      { key: 'tuning.stop_irq_balance', label: 'Stop irqbalance' },
      { key: 'tuning.netdev_budget_usecs', label: 'Netdev budget (µs)' },
      { key: 'tuning.netdev_budget_packets', label: 'Netdev budget (packets)' },
    ],
  },
  {
    title: 'Shaping interfaces',
    fields: [
      { key: 'tuning.rx_usecs', label: 'Receive coalescing (µs)' },
      { key: 'tuning.tx_usecs', label: 'Transmit coalescing (µs)' },
      { key: 'tuning.disable_rxvlan', label: 'Disable receive VLAN offload' },
      { key: 'tuning.disable_txvlan', label: 'Disable transmit VLAN offload' },
      { key: 'tuning.disable_offload', label: 'Offloads to disable' },
      { key: 'tuning.xdp_mode', label: 'XDP mode', labels: { native: 'native (in the NIC driver)', generic: 'generic (any NIC, slower)' } },
    ],
  },
];

export const IP_RANGES: GroupSpec[] = [
  {
    title: 'Subscriber address space',
    fields: [
      { key: 'ip_ranges.allow_subnets', label: 'Allowed subnets' },
      { key: 'ip_ranges.ignore_subnets', label: 'Ignored subnets' },
    ],
  },
  {
    title: 'Unknown IPs report',
    fields: [
      { key: 'ip_ranges.unknown_ip_honors_allow', label: 'Only inside allowed subnets' },
      { key: 'ip_ranges.unknown_ip_honors_ignore', label: 'Skip ignored subnets' },
    ],
  },
];

export const FLOWS: GroupSpec[] = [
  {
    title: 'Flow tracking',
    fields: [
      { key: 'flows.flow_timeout_seconds', label: 'Flow timeout (s)' },
      { key: 'flows.do_not_track_subnets', label: 'Subnets not tracked' },
    ],
  },
  {
    title: 'NetFlow / IPFIX export',
    fields: [
      { key: 'flows.netflow_enabled', label: 'Export flows' },
      { key: 'flows.netflow_ip', label: 'Collector address' },
      { key: 'flows.netflow_port', label: 'Collector port' },
      { key: 'flows.netflow_version', label: 'NetFlow version', labels: { '': '(default: 9)', '5': '5 (IPv4 only)', '9': '9 (IPv4 and IPv6)', '10': '10 (IPFIX)' } },
    ],
  },
  {
    title: 'Geo and ASN data',
    fields: [
      { key: 'flows.geo_mmdb_path', label: 'Country / city MMDB file' },
      { key: 'flows.asn_mmdb_path', label: 'ASN MMDB file' },
    ],
  },
];

export const WEB: GroupSpec[] = [
  {
    title: 'Listener',
    fields: [
      { key: 'web.bind_address', label: 'Listen address', required: true },
      { key: 'web.port', label: 'Port' },
      { key: 'web.allowed_hosts', label: 'Allowed host names' },
      { key: 'web.trust_proxy', label: 'Behind a reverse proxy' },
    ],
  },
  {
    title: 'HTTPS',
    fields: [
      { key: 'web.tls_cert_file', label: 'Certificate file' },
      { key: 'web.tls_key_file', label: 'Private key file' },
    ],
  },
  {
    title: 'Prometheus /metrics',
    fields: [
      { key: 'web.metrics_token', label: 'Metrics token' },
      { key: 'web.metrics_top_circuits', label: 'Busiest circuits exported' },
      { key: 'web.metrics_per_circuit', label: 'Export every circuit' },
    ],
  },
  {
    title: 'Upstream keys',
    fields: [
      { key: 'webserver_listen', label: 'webserver_listen (IP:port)' },
      { key: 'disable_webserver', label: 'Disable the web UI', help: 'After the restart this page is gone too; turn it back on in lqos.conf.' },
    ],
  },
];
