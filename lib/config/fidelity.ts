/**
 * Key fidelity: for every lqos.conf key lqos-ts accepts (and every key of upstream's example file),
 * whether lqos-ts does what the value asks. Nothing is accepted silently:
 *
 * - `honoured`: the key has its effect; `proof` is the test file that shows it;
 * - `same`: lqos-ts behaves exactly as the value asks while `holds(value)` (e.g. `queues.sudo = false`);
 *   any other value is warned about with `instead`;
 * - `ignored`: the key is not implemented; `when(value, config)` are the values that would make upstream
 *   behave differently from lqos-ts (a feature switch when on, a parameter only when its feature is on),
 *   and `instead` says what lqos-ts does instead.
 *
 * The loader (./load.ts) adds one warning per key whose value is not honoured, as
 * `<key path> in <file>: <instead>`. `onlyIfSet` limits that to keys written in the file (parameters
 * whose default asks nothing special). `trigger` is a value (plus other keys, TOML text) that makes the
 * warning appear; the table test (test/unit/config-fidelity.test.ts) loads it. Pure data and functions.
 */
import type { LqosConfig } from './schema.ts';
import { valueAt } from './valueAt.ts';

/** Extra TOML (other keys) that a trigger needs, e.g. the feature switch of a parameter. */
export interface Trigger {
  value: unknown;
  with?: string;
}

export type Fidelity =
  | { kind: 'honoured'; proof: string; note?: string }
  | { kind: 'same'; reason: string; holds: (value: unknown) => boolean; instead: string; example: unknown; trigger?: Trigger; onlyIfSet?: boolean }
  | { kind: 'ignored'; when: (value: unknown, config: LqosConfig) => boolean; instead: string; trigger: Trigger; onlyIfSet?: boolean };

const honoured = (proof: string, note?: string): Fidelity => ({ kind: 'honoured', proof, ...(note ? { note } : {}) });
const ignored = (instead: string, when: (value: unknown, config: LqosConfig) => boolean, trigger: Trigger, onlyIfSet = false): Fidelity => ({
  kind: 'ignored',
  when,
  instead,
  trigger,
  ...(onlyIfSet ? { onlyIfSet } : {}),
});

const isOn = (v: unknown) => v === true;
const isSet = (v: unknown) => v !== undefined && v !== '' && !(Array.isArray(v) && v.length === 0);

// ---------- features lqos-ts does not implement ----------

const LTS = 'Long-Term Stats / Insight is not implemented in lqos-ts: nothing is sent to such a server; history stays in the local SQLite store';
const ltsOn = (c: LqosConfig) => c.long_term_stats.gather_stats || c.long_term_stats.use_insight;
const ltsParam = (trigger: unknown): Fidelity => ignored(LTS, (_v, c) => ltsOn(c), { value: trigger, with: '[long_term_stats]\ngather_stats = true' }, true);

const STORMGUARD = 'StormGuard is not implemented in lqos-ts; site rates stay as planned';
const stormParam = (trigger: unknown): Fidelity =>
  ignored(STORMGUARD, (_v, c) => c.stormguard.enabled, { value: trigger, with: '[stormguard]\nenabled = true\nall_sites = true' }, true);

const uispOn = (c: LqosConfig) => c.uisp_integration.enable_uisp;
const withUisp = '[uisp_integration]\nenable_uisp = true';

// ---------- proofs ----------

const T = {
  config: 'test/unit/config.test.ts',
  effects: 'test/unit/config-effects.test.ts',
  tuning: 'test/host/tuning.test.ts',
  listen: 'test/web/listen.test.ts',
  flows: 'test/flows/config.test.ts',
  flowsLab: 'test/flows/lab.test.ts',
  influxLab: 'test/telemetry/exportLab.test.ts',
  telemetry: 'test/telemetry/config.test.ts',
  thresholds: 'test/webui/thresholds.test.ts',
  cli: 'test/cli/libreqos.test.ts',
  daemon: 'test/daemon/daemon.test.ts',
  common: 'test/integrations/common.test.ts',
  uisp: 'test/integrations/uisp.test.ts',
  splynx: 'test/integrations/splynx.test.ts',
  netzur: 'test/integrations/netzur.test.ts',
  visp: 'test/integrations/visp.test.ts',
  powercode: 'test/integrations/powercode.test.ts',
  sonar: 'test/integrations/sonar.test.ts',
  sonarSnmp: 'test/integrations/sonarSnmp.test.ts',
  wispgate: 'test/integrations/wispgate.test.ts',
  integrationOutput: 'test/integrations/output.test.ts',
  mikrotik: 'test/integrations/mikrotikIpv6.test.ts',
  uispOptions: 'test/integrations/uispOptions.test.ts',
  lazy: 'test/lab/lazyQueues.test.ts',
  lazyUnit: 'test/unit/lazyQueues.test.ts',
} as const;

/** Every key path (`section.key` or top-level `key`) → what lqos-ts does with it. */
export const FIDELITY: Record<string, Fidelity> = {
  version: honoured(T.config, 'only "1.5" is understood; any other value is warned about'),
  lqos_directory: honoured(T.cli),
  state_directory: honoured(T.config),
  node_id: honoured(T.listen),
  node_name: honoured(T.listen),
  qoo_profile_id: ignored(
    'QoO profiles are not implemented; the quality score on the ASN page uses one fixed formula (retransmits, RTT against rtt_thresholds, traffic share)',
    isSet,
    { value: 'default' },
  ),
  packet_capture_time: ignored(
    'lqos-ts has no on-demand packet capture, so the capture length is not used',
    (v) => v !== 10,
    { value: 30 },
  ),
  queue_check_period_ms: honoured(T.telemetry),
  disable_webserver: honoured(T.listen),
  webserver_listen: honoured(T.listen),
  disable_icmp_ping: {
    kind: 'same',
    reason: 'lqos-ts never sends ICMP pings, which is what disable_icmp_ping = true asks',
    holds: (v) => v === true,
    instead: 'lqos-ts has no ICMP ping monitoring of hosts; it behaves as with disable_icmp_ping = true',
    example: true,
    trigger: { value: false },
    onlyIfSet: true,
  },
  exclude_efficiency_cores: honoured(T.tuning),
  enable_circuit_heatmaps: honoured(T.thresholds),
  enable_site_heatmaps: honoured(T.thresholds),
  enable_asn_heatmaps: honoured(T.thresholds),
  'rtt_thresholds.green_ms': honoured(T.thresholds),
  'rtt_thresholds.yellow_ms': honoured(T.thresholds),
  'rtt_thresholds.red_ms': honoured(T.thresholds),

  'tuning.set_cpu_governor_performance': honoured(T.tuning),
  'tuning.stop_irq_balance': honoured(T.tuning),
  'tuning.netdev_budget_usecs': honoured(T.tuning),
  'tuning.netdev_budget_packets': honoured(T.tuning),
  'tuning.rx_usecs': honoured(T.tuning),
  'tuning.tx_usecs': honoured(T.tuning),
  'tuning.disable_rxvlan': honoured(T.tuning),
  'tuning.disable_txvlan': honoured(T.tuning),
  'tuning.disable_offload': honoured(T.tuning),
  'tuning.xdp_mode': honoured('test/dataplane/attach-checks.test.ts'),

  'bridge.use_xdp_bridge': honoured(
    'test/daemon/forwarding.test.ts',
    'true: lqos-ts forwards between the two NICs (tc-ingress redirect); refused while a Linux bridge holds both; takes effect when lqosd restarts',
  ),
  'bridge.to_internet': honoured(T.config),
  'bridge.to_network': honoured(T.config),
  'bridge.mtu': honoured(T.tuning),
  'single_interface.interface': honoured(T.config),
  'single_interface.internet_vlan': honoured(T.effects),
  'single_interface.network_vlan': honoured(T.effects),
  'single_interface.mtu': honoured(T.tuning),

  'queues.default_sqm': honoured(T.effects),
  'queues.queue_mode': honoured(T.effects),
  'queues.monitor_only': honoured(T.config, 'legacy spelling of queue_mode = "observe"'),
  'queues.uplink_bandwidth_mbps': honoured(T.effects, 'total upload capacity (Internet-facing interface)'),
  'queues.downlink_bandwidth_mbps': honoured(T.effects, 'total download capacity (ISP-facing interface)'),
  'queues.generated_pn_download_mbps': honoured(T.effects),
  'queues.generated_pn_upload_mbps': honoured(T.effects),
  'queues.dry_run': honoured(T.cli),
  'queues.enable_actual_shell_commands': honoured(T.config, 'false behaves like dry_run = true'),
  'queues.sudo': {
    kind: 'same',
    reason: 'lqosd runs tc and ip itself (as root); no command is prefixed with sudo',
    holds: (v) => v === false,
    instead: 'lqosd runs tc and ip itself with its own (root) privileges and never prefixes sudo',
    example: false,
    trigger: { value: true },
  },
  'queues.override_available_queues': honoured(T.effects),
  'queues.use_binpacking': honoured('test/unit/planner.test.ts'),
  'queues.lazy_queues': honoured(T.lazy, 'circuit classes/leaves are added by lqosd on traffic; LibreQoS --direct builds them all'),
  'queues.lazy_expire_seconds': honoured(T.lazy, '0 = never expire'),
  'queues.lazy_threshold_bytes': honoured(T.lazyUnit, 'bytes (both directions) in one 1 s telemetry tick'),
  'queues.fast_queues_fq_codel': honoured(T.effects),
  'queues.integration_timeout_secs': honoured('test/scheduler/cli.test.ts'),

  'long_term_stats.gather_stats': ignored(LTS, isOn, { value: true }),
  'long_term_stats.collation_period_seconds': ltsParam(60),
  'long_term_stats.license_key': ignored(LTS, isSet, { value: 'abc-123' }),
  'long_term_stats.uisp_reporting_interval_seconds': ltsParam(60),
  'long_term_stats.lts_url': ltsParam('lts.example.net'),
  'long_term_stats.use_insight': ignored(LTS, isOn, { value: true }),
  'long_term_stats.enable_insight_topology': ignored(
    'topology is never fetched from Insight; network.json (or your integration) is used',
    isOn,
    { value: true },
  ),

  'ip_ranges.ignore_subnets': honoured(T.common),
  'ip_ranges.allow_subnets': honoured(T.common),
  'ip_ranges.unknown_ip_honors_ignore': honoured(T.telemetry),
  'ip_ranges.unknown_ip_honors_allow': honoured(T.telemetry),

  'flows.flow_timeout_seconds': honoured(T.flows),
  'flows.netflow_enabled': honoured(T.flowsLab),
  'flows.netflow_port': honoured(T.flowsLab, 'default 2055'),
  'flows.netflow_ip': honoured(T.flowsLab, 'default 127.0.0.1'),
  'flows.netflow_version': honoured(T.flowsLab, '5, 9 or 10 (IPFIX); default 9'),
  'flows.do_not_track_subnets': honoured(T.flows),
  'flows.geo_mmdb_path': honoured('test/flows/geoData.test.ts', 'lqos-ts only: country/city MMDB instead of the bundled data; an unusable file is warned about at lqosd start (restart to apply)'),
  'flows.asn_mmdb_path': honoured('test/flows/geoData.test.ts', 'lqos-ts only: ASN MMDB instead of the bundled data; an unusable file is warned about at lqosd start (restart to apply)'),

  'integration_common.circuit_name_as_address': honoured(T.common),
  'integration_common.always_overwrite_network_json': honoured(
    T.integrationOutput,
    'false (the default) keeps an existing network.json and writes only ShapedDevices.csv; true replaces both',
  ),
  'integration_common.queue_refresh_interval_mins': honoured(T.effects),
  'integration_common.use_mikrotik_ipv6': honoured(T.mikrotik),
  'integration_common.promote_to_root': honoured(T.common),
  'integration_common.client_bandwidth_multiplier': honoured(T.visp),
  'integration_common.ethernet_port_limits_enabled': honoured(T.effects),
  'integration_common.ethernet_port_limit_multiplier': honoured(T.effects),

  'topology.compile_mode': honoured(T.common),
  'topology.queue_auto_virtualize_threshold_mbps': ignored(
    'nodes are not made virtual automatically by their rate; mark them "virtual": true in network.json (or with a set_node_virtual override)',
    (v) => v !== undefined,
    { value: 10000 },
  ),

  'mikrotik_ipv6.config_path': honoured(T.mikrotik, 'routers are read over the RouterOS v7 REST API (https by default)'),

  'uisp_integration.enable_uisp': honoured(T.uisp),
  'uisp_integration.token': honoured(T.uisp),
  'uisp_integration.url': honoured(T.uisp),
  'uisp_integration.site': honoured(T.uisp),
  'uisp_integration.strategy': honoured(T.uisp),
  'uisp_integration.suspended_strategy': honoured(T.uisp),
  'uisp_integration.airmax_capacity': honoured(T.effects),
  'uisp_integration.airmax_flexible_frame_download_ratio': honoured(T.effects),
  'uisp_integration.ltu_capacity': honoured(T.uisp),
  'uisp_integration.exclude_sites': honoured(T.common),
  'uisp_integration.squash_sites': honoured(T.uispOptions),
  'uisp_integration.ipv6_with_mikrotik': honoured(T.mikrotik),
  'uisp_integration.bandwidth_overhead_factor': honoured(T.splynx),
  'uisp_integration.commit_bandwidth_multiplier': honoured(T.uisp),
  'uisp_integration.exception_cpes': honoured(T.common),
  'uisp_integration.use_ptmp_as_parent': honoured(T.uispOptions),
  'uisp_integration.ignore_calculated_capacity': honoured(T.effects),
  'uisp_integration.infrastructure_transport_caps_enabled': honoured(T.uispOptions),
  'uisp_integration.insecure_ssl': ignored(
    'TLS certificates are always verified (insecure_ssl is not supported)',
    (v, c) => uispOn(c) && isOn(v),
    { value: true, with: withUisp },
  ),
  'uisp_integration.enable_squashing': honoured(T.uispOptions),
  'uisp_integration.do_not_squash_sites': honoured(T.uispOptions),

  'splynx_integration.enable_splynx': honoured(T.splynx),
  'splynx_integration.api_key': honoured(T.splynx),
  'splynx_integration.api_secret': honoured(T.splynx),
  'splynx_integration.url': honoured(T.splynx),
  'splynx_integration.strategy': honoured(T.splynx),

  'netzur_integration.enable_netzur': honoured(T.netzur),
  'netzur_integration.api_key': honoured(T.netzur),
  'netzur_integration.api_url': honoured(T.netzur),
  'netzur_integration.timeout_secs': honoured(T.effects, 'at least 5 s'),

  'visp_integration.enable_visp': honoured(T.visp),
  'visp_integration.client_id': honoured(T.visp),
  'visp_integration.client_secret': honoured(T.visp),
  'visp_integration.username': honoured(T.visp),
  'visp_integration.password': honoured(T.visp),
  'visp_integration.token_url': honoured(T.visp),
  'visp_integration.graphql_url': honoured(T.visp),
  'visp_integration.isp_id': honoured(T.visp),
  'visp_integration.tenant_id': {
    kind: 'same',
    reason: 'accepted and unused, as in upstream (which does not read it either)',
    holds: () => true,
    instead: '',
    example: 7,
  },
  'visp_integration.online_users_domain': honoured(T.visp),
  'visp_integration.strategy': {
    kind: 'same',
    reason: 'accepted and unused, as in upstream: the VISP import always builds the full tree',
    holds: () => true,
    instead: '',
    example: 'full',
  },
  'visp_integration.timeout_secs': honoured(T.effects, 'at least 10 s'),
  'visp_integration.verify_tls': ignored(
    'certificates are always verified (verify_tls = false is not supported: without certificate checks anyone on the path to VISP could pose as it and read the credentials and token sent to it; trust a private CA with NODE_EXTRA_CA_CERTS instead)',
    (v, c) => c.visp_integration.enable_visp && v === false,
    { value: false, with: '[visp_integration]\nenable_visp = true' },
  ),
  'visp_integration.service_type_allowlist': {
    kind: 'same',
    reason: 'accepted and unused, as in upstream (which does not read it either)',
    holds: () => true,
    instead: '',
    example: ['ServiceTypeWifi'],
  },

  'powercode_integration.enable_powercode': honoured(T.powercode),
  'powercode_integration.powercode_api_key': honoured(T.powercode),
  'powercode_integration.powercode_api_url': honoured(T.powercode),

  'sonar_integration.enable_sonar': honoured(T.sonar),
  'sonar_integration.sonar_api_url': honoured(T.sonar),
  'sonar_integration.sonar_api_key': honoured(T.sonar),
  'sonar_integration.snmp_community': honoured(T.sonarSnmp, 'an empty value turns SNMP AP discovery off'),
  'sonar_integration.airmax_model_ids': honoured(T.sonar),
  'sonar_integration.ltu_model_ids': honoured(T.sonar),
  'sonar_integration.active_status_ids': honoured(T.sonar),
  'sonar_integration.recurring_excluded_service_names': honoured(T.sonar),
  'sonar_integration.recurring_service_rates': honoured(T.sonar),

  'wispgate_integration.enable_wispgate': honoured(T.wispgate),
  'wispgate_integration.wispgate_api_token': honoured(T.wispgate),
  'wispgate_integration.wispgate_api_url': honoured(T.wispgate),

  'influxdb.enable_influxdb': honoured(T.influxLab),
  'influxdb.url': honoured(T.influxLab),
  'influxdb.org': honoured(T.influxLab, 'sent on the v2 API; InfluxDB 1.x (v1 /write) has no orgs'),
  'influxdb.bucket': honoured(T.influxLab, 'the database on InfluxDB 1.x'),
  'influxdb.token': honoured(T.influxLab, 'sent as "Authorization: Token …"'),

  'stormguard.enabled': ignored(STORMGUARD, isOn, { value: true, with: '[stormguard]\nall_sites = true' }),
  'stormguard.dry_run': stormParam(false),
  'stormguard.strategy': stormParam('delay_probe'),
  'stormguard.all_sites': stormParam(true),
  'stormguard.targets': stormParam(['Tower']),
  'stormguard.exclude_sites': stormParam(['Tower']),
  'stormguard.log_file': stormParam('/var/log/stormguard.csv'),
  'stormguard.minimum_download_percentage': stormParam(0.6),
  'stormguard.minimum_upload_percentage': stormParam(0.6),
  'stormguard.increase_fast_multiplier': stormParam(1.4),
  'stormguard.increase_multiplier': stormParam(1.2),
  'stormguard.decrease_multiplier': stormParam(0.9),
  'stormguard.decrease_fast_multiplier': stormParam(0.8),
  'stormguard.increase_fast_cooldown_seconds': stormParam(3),
  'stormguard.increase_cooldown_seconds': stormParam(2),
  'stormguard.decrease_cooldown_seconds': stormParam(4),
  'stormguard.decrease_fast_cooldown_seconds': stormParam(8),
  'stormguard.circuit_fallback_enabled': stormParam(true),
  'stormguard.circuit_fallback_persist': stormParam(false),
  'stormguard.circuit_fallback_sqm': stormParam('cake'),
  'stormguard.delay_threshold_ms': stormParam(50),
  'stormguard.delay_threshold_ratio': stormParam(1.2),
  'stormguard.baseline_alpha_up': stormParam(0.02),
  'stormguard.baseline_alpha_down': stormParam(0.2),
  'stormguard.probe_interval_seconds': stormParam(20),
  'stormguard.min_throughput_mbps_for_rtt': stormParam(0.1),
  'stormguard.active_ping_target': stormParam('9.9.9.9'),
  'stormguard.active_ping_interval_seconds': stormParam(5),
  'stormguard.active_ping_weight': stormParam(0.5),
  'stormguard.active_ping_timeout_seconds': stormParam(2),

  'web.bind_address': honoured(T.listen),
  'web.port': honoured(T.listen),
  'web.tls_cert_file': honoured('test/web/auth-hardening.test.ts'),
  'web.tls_key_file': honoured('test/web/auth-hardening.test.ts'),
  'web.trust_proxy': honoured('test/web/auth-hardening.test.ts'),
  'web.allowed_hosts': honoured('test/web/transport-hardening.test.ts'),
  'web.metrics_token': honoured('test/web/transport-hardening.test.ts'),
  'web.metrics_top_circuits': honoured('test/telemetry/promSeries.test.ts'),
  'web.metrics_per_circuit': honoured('test/telemetry/promSeries.test.ts'),
  'safety.max_removed_percent': honoured('test/faults/mass-deletion.test.ts'),
  'safety.scheduler_allow_mass_removal': honoured('test/faults/mass-deletion.test.ts'),
  'history.retention_days': honoured('test/telemetry/historyRetention.test.ts'),
  'history.circuit_retention_days': honoured('test/telemetry/historyRetention.test.ts'),
};

/** The fidelity entry of a key path, if any. */
export function fidelityOf(key: string): Fidelity | undefined {
  return Object.hasOwn(FIDELITY, key) ? FIDELITY[key] : undefined;
}

/**
 * One warning per key whose value lqos-ts does not honour: `<key> in <file>: <instead>`.
 * `raw` is the file as parsed (to tell keys written in it from defaults), `config` the validated one.
 */
export function fidelityWarnings(raw: unknown, config: LqosConfig, file: string): string[] {
  const out: string[] = [];
  for (const [key, f] of Object.entries(FIDELITY)) {
    if (f.kind === 'honoured') continue;
    const written = valueAt(raw, key.split('.')) !== undefined;
    if (f.onlyIfSet && !written) continue;
    const value = valueAt(config, key.split('.'));
    const differs = f.kind === 'ignored' ? f.when(value, config) : !f.holds(value);
    if (differs) out.push(`${key} in ${file}: ${f.instead}`);
  }
  return out;
}
