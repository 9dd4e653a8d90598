/**
 * Form definitions of the configuration editors (keys are lqos.conf paths, `section.key`).
 * Ranges mirror lib/config/schema.ts; the server validates again and its messages are shown.
 */
/** `list`: strings, one per line; `json`: lists of objects edited as JSON. */
export type FieldType = 'text' | 'int' | 'number' | 'bool' | 'select' | 'secret' | 'list' | 'json';

export interface Field {
  key: string;
  label: string;
  type: FieldType;
  help?: string;
  options?: { value: string; label: string }[];
  /** Blank removes the key (server default applies). */
  optional?: boolean;
  min?: number;
  max?: number;
  required?: boolean;
  /** The value names sites: masked (and not editable) in privacy mode. */
  sensitive?: 'site';
}

export interface Group {
  title: string;
  fields: Field[];
}

export const GENERAL: Group[] = [
  {
    title: 'Node',
    fields: [
      { key: 'node_name', label: 'Node name', type: 'text', required: true, help: 'Shown in the UI title and reports.' },
      { key: 'node_id', label: 'Node ID', type: 'text', help: 'Blank: derived from the machine id.' },
      { key: 'packet_capture_time', label: 'Packet capture time (s)', type: 'int', min: 1 },
      { key: 'queue_check_period_ms', label: 'Queue check period (ms)', type: 'int', min: 100 },
      { key: 'disable_icmp_ping', label: 'Disable ICMP ping monitoring', type: 'bool' },
      { key: 'exclude_efficiency_cores', label: 'Exclude efficiency cores from shaping', type: 'bool' },
    ],
  },
  {
    title: 'Heatmaps',
    fields: [
      { key: 'enable_circuit_heatmaps', label: 'Circuit heatmaps', type: 'bool' },
      { key: 'enable_site_heatmaps', label: 'Site heatmaps', type: 'bool' },
      { key: 'enable_asn_heatmaps', label: 'ASN heatmaps', type: 'bool' },
    ],
  },
  {
    title: 'Web server',
    fields: [
      { key: 'web.bind_address', label: 'Listen address', type: 'text', required: true, help: 'Takes effect when lqosd restarts.' },
      { key: 'web.port', label: 'Port', type: 'int', min: 1, max: 65535, help: 'Takes effect when lqosd restarts.' },
    ],
  },
  {
    title: 'Long-term stats',
    fields: [
      { key: 'long_term_stats.gather_stats', label: 'Gather long-term stats', type: 'bool' },
      { key: 'long_term_stats.license_key', label: 'License key', type: 'secret' },
    ],
  },
];

export const BRIDGE: Field[] = [
  { key: 'bridge.to_internet', label: 'Interface to the Internet', type: 'text', required: true, help: 'Upload is shaped on its egress.' },
  { key: 'bridge.to_network', label: 'Interface to the subscribers', type: 'text', required: true, help: 'Download is shaped on its egress.' },
  { key: 'bridge.use_xdp_bridge', label: 'Use the XDP bridge', type: 'bool' },
  { key: 'bridge.mtu', label: 'MTU', type: 'int', optional: true, min: 68, max: 65535 },
];

export const SINGLE: Field[] = [
  { key: 'single_interface.interface', label: 'Interface', type: 'text', required: true },
  { key: 'single_interface.internet_vlan', label: 'Internet VLAN', type: 'int', min: 0, max: 4094 },
  { key: 'single_interface.network_vlan', label: 'Network VLAN', type: 'int', min: 0, max: 4094 },
  { key: 'single_interface.mtu', label: 'MTU', type: 'int', optional: true, min: 68, max: 65535 },
];

export const QUEUES: Group[] = [
  {
    title: 'Queueing',
    fields: [
      {
        key: 'queues.queue_mode',
        label: 'Queue mode',
        type: 'select',
        options: [
          { value: 'shape', label: 'Shape (enforce plans)' },
          { value: 'observe', label: 'Observe (count traffic only)' },
        ],
      },
      {
        key: 'queues.default_sqm',
        label: 'Default SQM',
        type: 'select',
        options: [
          { value: 'cake diffserv4', label: 'cake diffserv4' },
          { value: 'cake diffserv4 ack-filter', label: 'cake diffserv4 ack-filter' },
          { value: 'fq_codel', label: 'fq_codel' },
        ],
      },
      { key: 'queues.fast_queues_fq_codel', label: 'Use fq_codel above (Mbps)', type: 'number', min: 1 },
      { key: 'queues.dry_run', label: 'Dry run (never touch the kernel)', type: 'bool' },
    ],
  },
  {
    title: 'Link capacity',
    fields: [
      { key: 'queues.downlink_bandwidth_mbps', label: 'Total download (Mbps)', type: 'int', min: 1 },
      { key: 'queues.uplink_bandwidth_mbps', label: 'Total upload (Mbps)', type: 'int', min: 1 },
      { key: 'queues.generated_pn_download_mbps', label: 'Generated parent node download (Mbps)', type: 'int', min: 1 },
      { key: 'queues.generated_pn_upload_mbps', label: 'Generated parent node upload (Mbps)', type: 'int', min: 1 },
    ],
  },
  {
    title: 'CPU queues',
    fields: [
      { key: 'queues.override_available_queues', label: 'Queues to use (0 = one per CPU)', type: 'int', min: 0 },
      { key: 'queues.use_binpacking', label: 'Bin-pack circuits onto CPUs', type: 'bool' },
      {
        key: 'queues.lazy_queues',
        label: 'Lazy queues',
        type: 'select',
        options: [
          { value: 'No', label: 'No' },
          { value: 'Htb', label: 'HTB classes only' },
          { value: 'Full', label: 'Full (classes and qdiscs)' },
        ],
      },
      { key: 'queues.lazy_expire_seconds', label: 'Lazy queue expiry (s)', type: 'int', min: 0 },
      { key: 'queues.integration_timeout_secs', label: 'Integration timeout (s)', type: 'int', min: 1 },
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
