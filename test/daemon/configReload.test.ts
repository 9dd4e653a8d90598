// test-gate: shared (CPU only; see test/support/gate.ts)
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { ConfigHolder, restartOnlyChanges } from '../../lib/daemon/configHolder.ts';
import { RecordingLog } from '../../lib/util/logRecords.ts';
import { loConfig } from '../support/configs.ts';

test('restartOnlyChanges picks the keys lqosd reads only at start', () => {
  assert.deepEqual(
    restartOnlyChanges(['flows.flow_timeout_seconds', 'queue_check_period_ms', 'ip_ranges.unknown_ip_honors_allow', 'ip_ranges.allow_subnets', 'queues.default_sqm', 'web.port', 'rtt_thresholds.red_ms']),
    ['flows.flow_timeout_seconds', 'queue_check_period_ms', 'web.port'],
  );
  // [ip_ranges] follows a reload everywhere (the Unknown IPs filter too: lib/telemetry/unknownIps.ts liveUnknownIpRules).
  assert.deepEqual(restartOnlyChanges(['ip_ranges.unknown_ip_honors_allow', 'ip_ranges.unknown_ip_honors_ignore', 'node_name']), []);
  // [web]: the listener needs a restart; the host allow-list and the /metrics token are read per request.
  assert.deepEqual(
    restartOnlyChanges(['web.allowed_hosts', 'web.metrics_token', 'web.tls_cert_file', 'web.tls_key_file', 'web.trust_proxy', 'web.bind_address', 'web.metrics_top_circuits']),
    ['web.tls_cert_file', 'web.tls_key_file', 'web.trust_proxy', 'web.bind_address', 'web.metrics_top_circuits'],
  );
  // Fixed when the dataplane attaches: what it sets with ethtool, its queue count and CPUs, a stick's
  // VLAN swap. The host tuning keys are re-applied on reload (lib/kernel/hostTuning.ts tuningFingerprint).
  assert.deepEqual(
    restartOnlyChanges([
      'tuning.rx_usecs', 'tuning.tx_usecs', 'tuning.disable_rxvlan', 'tuning.disable_txvlan', 'tuning.disable_offload', 'tuning.xdp_mode',
      'queues.override_available_queues', 'exclude_efficiency_cores', 'single_interface.internet_vlan', 'single_interface.network_vlan',
      'tuning.set_cpu_governor_performance', 'tuning.stop_irq_balance', 'tuning.netdev_budget_usecs', 'tuning.netdev_budget_packets', 'queues.dry_run',
    ]),
    [
      'tuning.rx_usecs', 'tuning.tx_usecs', 'tuning.disable_rxvlan', 'tuning.disable_txvlan', 'tuning.disable_offload', 'tuning.xdp_mode',
      'queues.override_available_queues', 'exclude_efficiency_cores', 'single_interface.internet_vlan', 'single_interface.network_vlan',
    ],
  );
});

test('a reload that changes flows.flow_timeout_seconds / queue_check_period_ms says a restart is needed; others do not', () => {
  const dir = mkdtempSync(join(tmpdir(), 'lqos-reload-'));
  try {
    const file = join(dir, 'lqos.conf');
    writeFileSync(file, loConfig(dir));
    const log = new RecordingLog();
    const holder = new ConfigHolder(file, log);
    writeFileSync(file, loConfig(dir, '[flows]\nflow_timeout_seconds = 60\n').replace('disable_webserver = true\n', 'disable_webserver = true\nqueue_check_period_ms = 500\n'));
    const change = holder.reload();
    assert.deepEqual(change.changed.sort(), ['flows.flow_timeout_seconds', 'queue_check_period_ms']);
    const warned = log.records.filter((r) => r.level === 'warn' && /restart it/.test(r.msg));
    assert.equal(warned.length, 1, JSON.stringify(log.records));
    assert.match(warned[0].msg, /flows\.flow_timeout_seconds, queue_check_period_ms changed/);
    // A change lqosd applies on reload (the default SQM) gets no restart warning.
    writeFileSync(file, loConfig(dir, '[flows]\nflow_timeout_seconds = 60\n').replace('[queues]\n', '[queues]\ndefault_sqm = "fq_codel"\n').replace('disable_webserver = true\n', 'disable_webserver = true\nqueue_check_period_ms = 500\n'));
    const before = log.records.length;
    assert.deepEqual(holder.reload().changed, ['queues.default_sqm']);
    assert.equal(log.records.slice(before).filter((r) => /restart it/.test(r.msg)).length, 0);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
