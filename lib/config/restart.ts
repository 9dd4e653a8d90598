/**
 * Which lqos.conf changes take effect only when lqosd restarts, and which keys a change touched.
 * lqosd (lib/daemon/configHolder.ts) logs a restart warning for them on reload; the web API marks
 * them in GET /api/config/schema and names them in the PUT /api/config reply. Pure.
 */

/** Key paths whose values differ (values are not returned: the config holds secrets). */
export function changedKeys(a: unknown, b: unknown, at = ''): string[] {
  const isObj = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
  if (isObj(a) && isObj(b)) {
    const out: string[] = [];
    for (const k of [...new Set([...Object.keys(a), ...Object.keys(b)])].sort()) out.push(...changedKeys(a[k], b[k], at ? `${at}.${k}` : k));
    return out;
  }
  return JSON.stringify(a) === JSON.stringify(b) ? [] : [at || '(whole config)'];
}

/**
 * Keys read once when lqosd starts (flow tracking and NetFlow, InfluxDB export, telemetry polling,
 * history retention, the web listener and its TLS/proxy settings, the per-circuit /metrics series, the XDP
 * attach mode, what the attach sets with ethtool, its queue count and a stick's VLANs): a reload records them but they take effect only after a
 * restart. A prefix ending in `.` or `_` matches every key it starts; anything else one key.
 */
const RESTART_ONLY = [
  // [tuning]: what the dataplane's attach sets on the NICs (ethtool); the governor, irqbalance and
  // netdev budget keys are re-applied on reload.
  'tuning.xdp_mode', 'tuning.rx_usecs', 'tuning.tx_usecs', 'tuning.disable_',
  // The dataplane's queues/CPUs and a stick's VLAN swap are fixed when it attaches (a change of the
  // interfaces themselves raises INTERFACES_CHANGED instead).
  'queues.override_available_queues', 'exclude_efficiency_cores', 'single_interface.internet_vlan', 'single_interface.network_vlan',
  'flows.', 'influxdb.', 'queue_check_period_ms',
  // [web]: the listener and what is built with it; allowed_hosts and metrics_token are read per request.
  'web.bind_address', 'web.port', 'web.tls_', 'web.trust_proxy', 'web.metrics_top_circuits', 'web.metrics_per_circuit',
  'webserver_listen', 'disable_webserver', 'node_id', 'history.',
];

/** Whether a change of this key (`section.key`) needs an lqosd restart to take effect. */
export function isRestartOnly(key: string): boolean {
  return RESTART_ONLY.some((p) => (p.endsWith('.') || p.endsWith('_') ? key.startsWith(p) : key === p));
}

/** The changed keys that need an lqosd restart to take effect. */
export function restartOnlyChanges(changed: string[]): string[] {
  return changed.filter(isRestartOnly);
}
