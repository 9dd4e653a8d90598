/**
 * Form definitions of the configuration editors (keys are lqos.conf paths, `section.key`). The UI
 * owns labels, grouping, help text and the choices it suggests for free-text keys; value types,
 * ranges, accepted values, defaults and secret-ness come from the server (GET /api/config/schema,
 * lib/api/config.ts) and are merged in by resolveGroups. The server validates again and its messages
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
  required: boolean;
  /** Inclusive bounds; `above` / `below`: exclusive ones. */
  min?: number;
  max?: number;
  above?: number;
  below?: number;
  /** The value lqosd uses while the key is unset. */
  default?: unknown;
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

function choicesOf(spec: FieldSpec, d: ConfigKeyDescription): Choice[] | undefined {
  if (d.type === 'string' && d.values) {
    return d.values.map(String).map((value) => ({ ...choice(value), ...(spec.labels?.[value] ? { label: spec.labels[value] } : {}) }));
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
    optional: d.optional,
    required: Boolean(spec.required || d.required || d.nonEmpty),
    ...(d.min !== undefined ? { min: d.min } : {}),
    ...(d.max !== undefined ? { max: d.max } : {}),
    ...(d.above !== undefined ? { above: d.above } : {}),
    ...(d.below !== undefined ? { below: d.below } : {}),
    ...('default' in d ? { default: d.default } : {}),
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
    title: 'Web server',
    fields: [
      { key: 'web.bind_address', label: 'Listen address', help: 'Takes effect when lqosd restarts.' },
      { key: 'web.port', label: 'Port', help: 'Takes effect when lqosd restarts.' },
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
