// Schema for /etc/lqos.conf (TOML). Key names follow the upstream LibreQoS v1.5
// file exactly (snake_case) so an existing lqos.conf can be used unchanged.
// Every key has a default, so a file holding only a [bridge] table yields a
// complete config. Unknown keys are not rejected here (zod strips them); the
// loader reports them as warnings.
import { posix } from 'node:path';
import ipaddr from 'ipaddr.js';
import { z } from 'zod';

// ---------- small building blocks ----------

/** A section whose keys all have defaults: a missing table parses as `{}`. */
function section<S extends z.ZodRawShape>(shape: S) {
  const obj = z.object(shape);
  return obj.prefault({} as z.input<typeof obj>);
}

const bool = (def: boolean) => z.boolean().default(def);
const str = (def: string) => z.string().default(def);
const strList = (def: string[] = []) => z.array(z.string()).default(() => [...def]);
/** Non-negative integer (counts, seconds, ...). */
const count = (def: number) => z.int().nonnegative().default(def);
/** Strictly positive integer (rates in Mbps, intervals, ...). */
const posInt = (def: number) => z.int().positive().default(def);
/** The longest delay a Node timer takes (2^31 − 1 ms), in whole seconds and minutes. */
export const MAX_TIMER_SECS = Math.floor((2 ** 31 - 1) / 1000);
export const MAX_TIMER_MINS = Math.floor(MAX_TIMER_SECS / 60);
const posNum = (def: number) => z.number().positive().default(def);
const ifName = z.string().trim().min(1).max(15);
const port = z.int().min(1).max(65535);

/**
 * String enum matched case-insensitively; the output is the canonical spelling.
 * Aliases map extra spellings onto a canonical value (e.g. full2 -> full).
 */
function looseEnum<const T extends readonly string[]>(values: T, aliases: Record<string, T[number]> = {}) {
  const lookup = new Map<string, T[number]>(values.map((v) => [v.toLowerCase(), v]));
  for (const [k, v] of Object.entries(aliases)) lookup.set(k.toLowerCase(), v);
  const shown = values.map((v) => JSON.stringify(v)).join(', ');
  return z.string().transform((s, ctx): T[number] => {
    const hit = lookup.get(s.trim().toLowerCase());
    if (hit === undefined) {
      ctx.addIssue({ code: 'custom', message: `expected one of ${shown}, got ${JSON.stringify(s)}` });
      return z.NEVER;
    }
    return hit;
  }).meta({ enum: [...values] }); // the accepted values, for describeConfig (lib/config/describe.ts)
}

function isCidr(s: string): boolean {
  try {
    ipaddr.parseCIDR(s);
    return true;
  } catch {
    return false;
  }
}
const cidr = z
  .string()
  .refine(isCidr, {
    error: (iss) => `expected a subnet in CIDR form such as 10.0.0.0/8, got ${JSON.stringify(iss.input)}`,
  })
  .meta({ format: 'cidr' }); // the forms check it too (lib/config/describe.ts)
const cidrList = (def: string[] = []) => z.array(cidr).default(() => [...def]);

/** Derives the state directory when the file does not set one. */
export function defaultStateDirectory(lqosDirectory: string): string {
  const dir = lqosDirectory.replace(/\/+$/, '') || '/';
  return dir.endsWith('/src') ? posix.join(posix.dirname(dir), 'state') : posix.join(dir, 'state');
}

/**
 * Directories of the system itself (and pseudo-filesystems), never a state directory: lqosd narrows
 * its state directory to 0750 and keeps subscriber data and its web users there. Only these paths
 * themselves are refused; a directory of lqos's own below one (/var/lib/lqos, /tmp/x/state) is fine.
 */
export const SYSTEM_DIRECTORIES: ReadonlySet<string> = new Set([
  '/', '/bin', '/boot', '/dev', '/etc', '/home', '/lib', '/lib32', '/lib64', '/libx32', '/media', '/mnt',
  '/opt', '/proc', '/root', '/run', '/sbin', '/snap', '/srv', '/sys', '/tmp', '/usr', '/usr/bin', '/usr/games',
  '/usr/include', '/usr/lib', '/usr/lib32', '/usr/lib64', '/usr/libexec', '/usr/local', '/usr/local/bin',
  '/usr/local/etc', '/usr/local/lib', '/usr/local/sbin', '/usr/local/share', '/usr/local/src', '/usr/sbin',
  '/usr/share', '/usr/src', '/var', '/var/backups', '/var/cache', '/var/lib', '/var/local', '/var/lock',
  '/var/log', '/var/mail', '/var/opt', '/var/run', '/var/spool', '/var/tmp', '/run/lock', '/run/user',
]);
/** Kernel pseudo-filesystems: nothing below them can hold state. */
const PSEUDO_FS = ['/proc/', '/sys/', '/dev/'];

/**
 * Why the absolute directory `dir` cannot be the state directory (a system directory, see
 * SYSTEM_DIRECTORIES), or undefined when it can. The text names the key and what to do instead.
 */
export function systemStateDirectoryProblem(dir: string): string | undefined {
  if (!posix.isAbsolute(dir)) return undefined;
  const p = posix.normalize(dir).replace(/(.)\/+$/, '$1');
  if (!SYSTEM_DIRECTORIES.has(p) && !PSEUDO_FS.some((root) => p.startsWith(root))) return undefined;
  return (
    `${JSON.stringify(dir)} is a system directory: lqosd narrows its state directory to 0750 and keeps subscriber data ` +
    'and the web users there, so it must be a directory of its own; set state_directory to one such as /var/lib/lqos ' +
    '(or remove the key: the default is the "state" directory next to lqos_directory)'
  );
}

// ---------- sections ----------

// `.describe()` texts are what the key does; the web UI shows them next to each field (lib/config/describe.ts).
const tuning = section({
  set_cpu_governor_performance: bool(true).describe('Switch every CPU to the "performance" frequency governor (steadier latency, more power drawn).'),
  stop_irq_balance: bool(true).describe('Stop the irqbalance service, so the interrupt and queue pinning lqos-ts sets stays in place.'),
  netdev_budget_usecs: posInt(8000).describe('Kernel setting net.core.netdev_budget_usecs: the longest one softirq run may poll the NICs, in microseconds.'),
  netdev_budget_packets: posInt(300).describe('Kernel setting net.core.netdev_budget: the most packets one softirq run may take from the NICs.'),
  rx_usecs: count(8).describe('Receive interrupt coalescing of the shaping interfaces (ethtool -C rx-usecs), in microseconds.'),
  tx_usecs: count(8).describe('Transmit interrupt coalescing of the shaping interfaces (ethtool -C tx-usecs), in microseconds.'),
  disable_rxvlan: bool(true).describe('Turn off VLAN tag stripping on receive (rxvlan, rx-vlan-stag-hw-parse); the classifier must see the tags, so attaching is refused while it stays on.'),
  disable_txvlan: bool(true).describe('Turn off VLAN tag insertion offload on transmit (txvlan).'),
  disable_offload: strList(['gso', 'tso', 'lro', 'sg', 'gro']).describe('Offloads turned off on the shaping interfaces (ethtool -K <nic> <name> off), one name per line.'),
  // How XDP attaches: native (driver) mode, or generic (SKB) mode - slower, no metadata to tc, >= 5.15.
  xdp_mode: looseEnum(['native', 'generic'] as const)
    .default('native')
    .describe('How XDP attaches: "native" runs in the NIC driver (attaching fails if the driver refuses; never a silent fallback); "generic" works on any NIC but is slower, passes no metadata to tc and needs Linux 5.15 or later.'),
});

// Interface sections have no defaults for the NIC names: they must be given.
const bridge = z.object({
  use_xdp_bridge: bool(false),
  to_internet: ifName,
  to_network: ifName,
  mtu: z.int().min(68).max(65535).optional(),
});

// On a stick the two VLAN ids are how frames are told apart and swapped: no defaults (a guessed id
// forwards nothing), 0 is "untagged" and not a VLAN, and the two must differ (checked below).
const vlanId = z.int().min(1).max(4094);
const singleInterface = z.object({
  interface: ifName,
  internet_vlan: vlanId,
  network_vlan: vlanId,
  mtu: z.int().min(68).max(65535).optional(),
});

/** CAKE's priority-tin modes: any other `diffserv…` word would only fail when tc applies it. */
const CAKE_DIFFSERV = ['besteffort', 'diffserv3', 'diffserv4', 'diffserv8', 'precedence'];

/** Why a default_sqm such as "cake diffserv5" cannot work, or undefined. */
function cakeModeProblem(sqm: string): string | undefined {
  const [kind, ...args] = sqm.trim().split(/\s+/);
  if (kind !== 'cake') return undefined;
  const bad = args.find((a) => /^diffserv/i.test(a) && !CAKE_DIFFSERV.includes(a.toLowerCase()));
  return bad ? `"${sqm}": CAKE has no mode "${bad}"; use one of ${CAKE_DIFFSERV.join(', ')}` : undefined;
}

const queues = section({
  default_sqm: z
    .string()
    .trim()
    .min(1)
    .refine((s) => cakeModeProblem(s) === undefined, { error: (iss) => cakeModeProblem(String(iss.input)) ?? 'invalid' })
    .default('cake diffserv4'),
  // Optional here so the legacy monitor_only key can decide when it is absent.
  queue_mode: looseEnum(['shape', 'observe'] as const).optional(),
  monitor_only: z.boolean().optional(),
  uplink_bandwidth_mbps: posInt(1000),
  downlink_bandwidth_mbps: posInt(1000),
  generated_pn_download_mbps: posInt(1000),
  generated_pn_upload_mbps: posInt(1000),
  dry_run: bool(false),
  enable_actual_shell_commands: bool(true),
  sudo: bool(false),
  override_available_queues: count(0),
  use_binpacking: bool(false),
  lazy_queues: looseEnum(['No', 'Htb', 'Full'] as const).default('No'),
  lazy_expire_seconds: count(600),
  lazy_threshold_bytes: z.int().nonnegative().optional(),
  fast_queues_fq_codel: posNum(1000),
  // At most what a Node timer can wait (2^31 − 1 ms ≈ 24.8 days); a longer one fires at once.
  integration_timeout_secs: z.int().positive().max(MAX_TIMER_SECS).default(300),
});

const longTermStats = section({
  gather_stats: bool(false),
  collation_period_seconds: posInt(10),
  license_key: str(''),
  uisp_reporting_interval_seconds: posInt(300),
  lts_url: z.string().optional(),
  use_insight: bool(false),
  enable_insight_topology: bool(false),
});

const ipRanges = section({
  ignore_subnets: cidrList().describe('Addresses inside these subnets are dropped by every integration (never shaped from a CRM) and may be left out of the Unknown IPs report. One subnet in CIDR form per line.'),
  allow_subnets: cidrList(['172.16.0.0/12', '10.0.0.0/8', '100.64.0.0/10', '192.168.0.0/16']).describe(
    'Subscriber address space: UISP keeps only device addresses inside these subnets, and the Unknown IPs report may be limited to them. One subnet in CIDR form per line.',
  ),
  unknown_ip_honors_ignore: bool(true).describe('The Unknown IPs report leaves out addresses inside ignore_subnets.'),
  unknown_ip_honors_allow: bool(true).describe('The Unknown IPs report lists only addresses inside allow_subnets (an empty list limits nothing).'),
});

const flows = section({
  flow_timeout_seconds: posInt(30).describe('A flow with no packets for this many seconds is finished (and sent to the collector when NetFlow is on).'),
  netflow_enabled: bool(false).describe('Send every finished flow to a NetFlow / IPFIX collector.'),
  netflow_port: port.optional().describe('UDP port of the collector (default 2055).'),
  netflow_ip: z
    .string()
    .refine((s) => ipaddr.isValid(s), { error: (iss) => `expected an IP address, got ${JSON.stringify(iss.input)}` })
    .meta({ format: 'ip' })
    .optional()
    .describe('Address of the collector, IPv4 or IPv6 (default 127.0.0.1).'),
  /** 5 (IPv4 only), 9, or 10 (IPFIX; lqos-ts only). Default 9. */
  netflow_version: z
    .literal([5, 9, 10])
    .optional()
    .describe('Export format: 5 (IPv4 only), 9 (IPv4 and IPv6; the default) or 10 (IPFIX, which also carries RTT and the circuit id; lqos-ts only).'),
  do_not_track_subnets: cidrList().describe('Remote subnets left out of flow and RTT tracking, e.g. your own speed-test servers. One subnet in CIDR form per line.'),
  /** lqos-ts only: an MMDB with the country (or city) of addresses, instead of the bundled data. */
  geo_mmdb_path: z
    .string()
    .optional()
    .describe('lqos-ts only: a country or city MMDB file (MaxMind or ip-location-db layout) used instead of the bundled data; blank = bundled. An unusable file is warned about and the bundled data is used.'),
  /** lqos-ts only: an MMDB with the ASN of addresses (e.g. GeoLite2-ASN.mmdb), instead of the bundled data. */
  asn_mmdb_path: z
    .string()
    .optional()
    .describe('lqos-ts only: an ASN MMDB file (e.g. GeoLite2-ASN.mmdb) used instead of the bundled data; blank = bundled. An unusable file is warned about and the bundled data is used.'),
});

const integrationCommon = section({
  circuit_name_as_address: bool(false),
  always_overwrite_network_json: bool(false),
  // At most what a Node timer can wait (≈ 24.8 days); a longer one fires at once.
  queue_refresh_interval_mins: z.int().positive().max(MAX_TIMER_MINS).default(30),
  use_mikrotik_ipv6: bool(false),
  promote_to_root: strList(),
  client_bandwidth_multiplier: posNum(1.0),
  ethernet_port_limits_enabled: bool(true),
  ethernet_port_limit_multiplier: posNum(0.94),
});

const topology = section({
  // '' means "let each integration use its own legacy strategy setting".
  compile_mode: looseEnum(['', 'flat', 'ap_only', 'ap_site', 'full'] as const, { full2: 'full' }).default(''),
  queue_auto_virtualize_threshold_mbps: z.int().min(5001).optional(),
});

const mikrotikIpv6 = section({
  config_path: str('/etc/libreqos/mikrotik_ipv6.toml'),
});

const uisp = section({
  enable_uisp: bool(false),
  token: str(''),
  url: str(''),
  site: str(''),
  strategy: str(''),
  suspended_strategy: str(''),
  airmax_capacity: z.number().nonnegative().default(1.0),
  airmax_flexible_frame_download_ratio: z.number().min(0).max(1).default(0.8),
  ltu_capacity: z.number().nonnegative().default(1.0),
  exclude_sites: strList(),
  squash_sites: strList(),
  ipv6_with_mikrotik: bool(false),
  bandwidth_overhead_factor: posNum(1.0),
  commit_bandwidth_multiplier: posNum(1.0),
  exception_cpes: z.array(z.object({ cpe: z.string().min(1), parent: z.string().min(1) })).default(() => []),
  use_ptmp_as_parent: bool(false),
  ignore_calculated_capacity: bool(false),
  infrastructure_transport_caps_enabled: bool(true),
  insecure_ssl: bool(false),
  enable_squashing: bool(false),
  do_not_squash_sites: strList(),
});

const splynx = section({
  enable_splynx: bool(false),
  api_key: str(''),
  api_secret: str(''),
  url: str(''),
  strategy: str('ap_site'),
});

const netzur = section({
  enable_netzur: bool(false),
  api_key: str(''),
  api_url: str(''),
  timeout_secs: posInt(60),
});

const visp = section({
  enable_visp: bool(false),
  client_id: str(''),
  client_secret: str(''),
  username: str(''),
  password: str(''),
  token_url: str('https://data.visp.net/token'),
  graphql_url: str('https://integrations.visp.net/graphql'),
  isp_id: z.int().nonnegative().optional(), // unset or 0: first ISP id in the token
  tenant_id: z.int().optional(),
  online_users_domain: z.string().optional(),
  strategy: str('flat'),
  timeout_secs: posInt(20),
  verify_tls: bool(true),
  service_type_allowlist: strList([
    'ServiceTypeWifi',
    'ServiceTypeOtherConnection',
    'ServiceTypeFiberCircuit',
    'ServiceTypeCable',
    'ServiceTypeDsl',
    'ServiceTypeAttDsl',
    'ServiceTypeBpl',
    'ServiceTypeLte',
  ]),
});

const powercode = section({
  enable_powercode: bool(false),
  powercode_api_key: str(''),
  powercode_api_url: str(''),
});

const sonar = section({
  enable_sonar: bool(false),
  sonar_api_url: str(''),
  sonar_api_key: str(''),
  snmp_community: str('public'),
  airmax_model_ids: strList(),
  ltu_model_ids: strList(),
  active_status_ids: strList(),
  recurring_excluded_service_names: strList(),
  recurring_service_rates: z
    .array(
      z.object({
        enabled: bool(true),
        service_name: z.string().min(1),
        download_mbps: z.number().positive(),
        upload_mbps: z.number().positive(),
      }),
    )
    .default(() => []),
});

const wispgate = section({
  enable_wispgate: bool(false),
  wispgate_api_token: str(''),
  wispgate_api_url: str(''),
});

const influxdb = section({
  enable_influxdb: bool(false),
  url: str('http://localhost:8086'),
  org: str('libreqos'),
  bucket: str('Your ISP Name Here'),
  token: str(''),
});

const fraction = (def: number) => z.number().gt(0).max(1).default(def);
const stormguard = section({
  enabled: bool(false),
  dry_run: bool(true),
  strategy: looseEnum(['legacy_score', 'delay_probe', 'delay_probe_active'] as const).default('legacy_score'),
  all_sites: bool(false),
  targets: strList(),
  exclude_sites: strList(),
  log_file: z.string().optional(),
  minimum_download_percentage: fraction(0.5),
  minimum_upload_percentage: fraction(0.5),
  increase_fast_multiplier: z.number().gt(1).default(1.3),
  increase_multiplier: z.number().gt(1).default(1.15),
  decrease_multiplier: z.number().gt(0).lt(1).default(0.95),
  decrease_fast_multiplier: z.number().gt(0).lt(1).default(0.88),
  increase_fast_cooldown_seconds: posNum(2.0),
  increase_cooldown_seconds: posNum(1.0),
  decrease_cooldown_seconds: posNum(3.75),
  decrease_fast_cooldown_seconds: posNum(7.5),
  circuit_fallback_enabled: bool(false),
  circuit_fallback_persist: bool(true),
  circuit_fallback_sqm: looseEnum(['fq_codel', 'cake'] as const).default('fq_codel'),
  delay_threshold_ms: posNum(40.0),
  delay_threshold_ratio: z.number().gt(1).default(1.1),
  baseline_alpha_up: fraction(0.01),
  baseline_alpha_down: fraction(0.1),
  probe_interval_seconds: posNum(10.0),
  min_throughput_mbps_for_rtt: z.number().nonnegative().default(0.05),
  active_ping_target: str('1.1.1.1'),
  active_ping_interval_seconds: posNum(10.0),
  active_ping_weight: z.number().min(0).max(1).default(0.7),
  active_ping_timeout_seconds: posNum(1.0),
});

const rttThresholds = section({
  green_ms: count(0),
  yellow_ms: count(100),
  red_ms: posInt(200),
});

// lqos-ts addition: the web UI / API server.
const web = section({
  bind_address: z.string().trim().min(1).default('0.0.0.0').describe('Address the web UI and API listen on: 0.0.0.0 = every IPv4 address, :: = every address, 127.0.0.1 = this host only.'),
  port: port.default(9123).describe('TCP port of the web UI and API.'),
  /** PEM certificate chain and key: both set = HTTPS (and Secure cookies). */
  tls_cert_file: str('').describe('PEM certificate (chain) file. With the key file set too, lqosd serves HTTPS and marks its session cookies Secure; both blank = plain HTTP.'),
  tls_key_file: str('').describe("PEM private key file of that certificate (keep it readable by root only)."),
  /** Behind a reverse proxy on this host: trust X-Forwarded-For/-Proto from it. */
  trust_proxy: bool(false).describe('Set when a reverse proxy on this host terminates TLS: lqosd then trusts its X-Forwarded-For and X-Forwarded-Proto headers.'),
  /** Host names (or IPs) the UI may be reached by, besides this host's own names and addresses. */
  allowed_hosts: strList().describe("Extra host names (or addresses) the UI may be reached by, one per line, besides this host's own names and addresses (a guard against DNS rebinding)."),
  /** Bearer token for /metrics; empty = /metrics only from this host (loopback). */
  metrics_token: str('').describe('Bearer token Prometheus must send to read /metrics; blank = /metrics answers only requests from this host.'),
  /** /metrics: per-circuit series for the N busiest circuits by current throughput (0 = no per-circuit series). */
  metrics_top_circuits: count(20).describe('/metrics: per-circuit series (RTT, retransmits, drops, backlog, throughput) for this many of the busiest circuits; 0 = none.'),
  /** /metrics: per-circuit series for every circuit with traffic (no top-N cut; many series on a big plan). */
  metrics_per_circuit: bool(false).describe('/metrics: per-circuit series for every circuit with traffic instead of the busiest ones (one set of series per circuit: keep off on big networks).'),
});
/** `[web]` as parsed when the file does not set it. */
export const WEB_DEFAULTS: Readonly<z.infer<typeof web>> = web.parse({});

// lqos-ts addition: guards against operator and CRM mistakes.
const safety = section({
  /** A run that would remove more than this share of the shaped circuits is refused unless forced. */
  max_removed_percent: z.number().min(0).max(100).default(20),
  /** Let the scheduler apply such runs anyway (CRM exports that legitimately shrink a lot). */
  scheduler_allow_mass_removal: bool(false),
});

// lqos-ts addition: the per-minute history lqosd keeps in <state_directory>/telemetry.sqlite (History page).
const history = section({
  /** Days of network-wide and per-site minutes kept (older rows are deleted hourly). */
  retention_days: z.number().positive().max(3650).default(30),
  /** Days of per-circuit minutes kept (the largest table: about one row per active circuit per minute). */
  circuit_retention_days: z.number().positive().max(3650).default(7),
});

// ---------- whole file ----------

const fileSchema = z
  .object({
    version: str('1.5'),
    lqos_directory: z.string().trim().min(1).default('/opt/libreqos/src'),
    state_directory: z.string().trim().min(1).optional(),
    node_id: str(''), // empty: callers may derive one (upstream hashes /etc/machine-id)
    node_name: str('LibreQoS'),
    qoo_profile_id: z.string().optional(),
    packet_capture_time: posInt(10),
    queue_check_period_ms: z.int().min(100).default(1000),
    disable_webserver: bool(false).describe('Run lqosd without the web UI and API (this page too).'),
    webserver_listen: z.string().optional().describe('Upstream\'s listen address as "IP:port"; used only while [web] bind address and port are left at their defaults.'),
    disable_icmp_ping: bool(false),
    exclude_efficiency_cores: bool(true),
    enable_circuit_heatmaps: bool(true),
    enable_site_heatmaps: bool(true),
    enable_asn_heatmaps: bool(true),
    rtt_thresholds: rttThresholds,
    tuning,
    bridge: bridge.optional(),
    single_interface: singleInterface.optional(),
    queues,
    long_term_stats: longTermStats,
    ip_ranges: ipRanges,
    flows,
    integration_common: integrationCommon,
    topology,
    mikrotik_ipv6: mikrotikIpv6,
    uisp_integration: uisp,
    splynx_integration: splynx,
    netzur_integration: netzur,
    visp_integration: visp,
    powercode_integration: powercode,
    sonar_integration: sonar,
    wispgate_integration: wispgate,
    influxdb,
    stormguard,
    web,
    safety,
    history,
  })
  .superRefine((c, ctx) => {
    // A relative state_directory is checked once resolved against the config file (lqosd, PUT /api/config).
    const systemDir = c.state_directory === undefined ? undefined : systemStateDirectoryProblem(c.state_directory);
    if (systemDir) ctx.addIssue({ code: 'custom', path: ['state_directory'], message: systemDir });
    if (c.bridge && c.single_interface) {
      ctx.addIssue({
        code: 'custom',
        path: ['single_interface'],
        message: 'both [bridge] and [single_interface] are present; keep exactly one of them',
      });
    }
    const stick = c.single_interface;
    if (stick && stick.internet_vlan === stick.network_vlan) {
      ctx.addIssue({
        code: 'custom',
        path: ['single_interface', 'network_vlan'],
        message:
          `equals internet_vlan (both ${stick.internet_vlan}): on a stick the router must trunk two different VLANs to ${stick.interface}, ` +
          'one toward the Internet (internet_vlan) and one toward the subscribers (network_vlan); set them to those two ids',
      });
    }
    const r = c.rtt_thresholds;
    if (r.green_ms > r.yellow_ms || r.yellow_ms > r.red_ms) {
      ctx.addIssue({
        code: 'custom',
        path: ['rtt_thresholds'],
        message: `expected green_ms <= yellow_ms <= red_ms, got ${r.green_ms}/${r.yellow_ms}/${r.red_ms}`,
      });
    }
    const strategy = c.uisp_integration.strategy.trim().toLowerCase();
    if (c.uisp_integration.enable_uisp && strategy !== '' && !['flat', 'ap_only', 'ap_site', 'full', 'full2'].includes(strategy)) {
      ctx.addIssue({
        code: 'custom',
        path: ['uisp_integration', 'strategy'],
        message: `expected one of "flat", "ap_only", "ap_site", "full" (or "full2", the same as "full"), or empty, got ${JSON.stringify(c.uisp_integration.strategy)}`,
      });
    }
    const s = c.stormguard;
    if (s.enabled && !s.all_sites && s.targets.length === 0) {
      ctx.addIssue({
        code: 'custom',
        path: ['stormguard', 'targets'],
        message: 'must list at least one site when stormguard is enabled and all_sites = false',
      });
    }
  });

/**
 * The lqos.conf schema. Besides validation it resolves derived values:
 * - state_directory defaults from lqos_directory;
 * - queues.queue_mode falls back to the legacy monitor_only flag, then "shape";
 * - queues.enable_actual_shell_commands = false forces queues.dry_run = true.
 */
export const configSchema = fileSchema.transform((c) => {
  const { monitor_only, ...q } = c.queues;
  return {
    ...c,
    state_directory: c.state_directory ?? defaultStateDirectory(c.lqos_directory),
    queues: {
      ...q,
      queue_mode: q.queue_mode ?? (monitor_only ? 'observe' : 'shape'),
      dry_run: q.dry_run || !q.enable_actual_shell_commands,
    },
  };
});

export type LqosConfig = z.infer<typeof configSchema>;
export type QueueMode = LqosConfig['queues']['queue_mode'];
export type LazyQueueMode = LqosConfig['queues']['lazy_queues'];
