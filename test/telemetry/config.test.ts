/**
 * Telemetry keys of lqos.conf (issue 13 item 1): queue_check_period_ms is the period of the
 * queue-stats (tc -s qdisc) poll; [ip_ranges] unknown_ip_honors_allow / unknown_ip_honors_ignore
 * decide which unmapped addresses are listed (and counted) as unknown IPs. Injected counters and tc
 * output, real timers for the poll period.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { HostCounters } from '../../dataplane/abi.ts';
import type { CircuitRatesPayload } from '../../lib/api/telemetry.ts';
import { parseConfigText } from '../../lib/config/load.ts';
import { startTelemetry, telemetryOptionsOf } from '../../lib/telemetry/service.ts';
import { liveUnknownIpRules } from '../../lib/telemetry/unknownIps.ts';
import { stateContext } from '../support/context.ts';
import { sleep } from '../support/wait.ts';
import { testDir } from '../support/workspace.ts';
import { hc, testPlan, unmapped } from './helpers.ts';

const conf = (top: string, ipRanges = '') =>
  parseConfigText(`${top}\n[bridge]\nto_internet = "eth0"\nto_network = "eth1"\n[ip_ranges]\n${ipRanges}`, '/etc/lqos.conf').config;
const qdiscs = readFileSync(join(import.meta.dirname, 'fixtures', 'tc-qdisc-cake.json'), 'utf8');

/** Counts tc polls over `ms` with the config's queue_check_period_ms (real timers). */
async function pollsIn(t: Parameters<typeof testDir>[0], top: string, ms: number): Promise<number> {
  let polls = 0;
  const tel = startTelemetry(stateContext(testDir(t, 'lqtel-cfg-'), () => testPlan()), {
    pinRoot: '/nonexistent',
    historyPath: false,
    intervalMs: 60_000,
    readCounters: () => new Map(),
    readQdiscs: async () => (polls++, qdiscs),
    readProcStat: () => 'cpu  1 0 1 1 0 0 0 0 0 0\n',
    ...telemetryOptionsOf(conf(top)),
  });
  try {
    await sleep(ms);
  } finally {
    await tel.stop();
  }
  return polls;
}

test('queue_check_period_ms sets the queue-stats poll period', async (t) => {
  assert.equal(telemetryOptionsOf(conf('queue_check_period_ms = 250')).queueIntervalMs, 250);
  assert.equal(telemetryOptionsOf(conf('')).queueIntervalMs, 1000, 'upstream default 1000 ms');
  // 2 interfaces per poll (download + upload): polls = tc calls / 2.
  const fast = (await pollsIn(t, 'queue_check_period_ms = 100', 1050)) / 2;
  const slow = (await pollsIn(t, 'queue_check_period_ms = 5000', 1050)) / 2;
  assert.ok(fast >= 7 && fast <= 11, `100 ms period: ~10 polls in 1.05 s, got ${fast}`);
  assert.equal(slow, 0, '5000 ms period: no poll within 1.05 s');
});

/**
 * Two ticks: traffic of the mapped 10.0.0.1 (c1, host counters) and of three unmapped addresses
 * in the sampled unknown-IP table; returns what is listed and counted.
 */
async function unknownAfterTraffic(t: Parameters<typeof testDir>[0], ipRanges: string, reloadTo?: string) {
  let now = Date.UTC(2025, 0, 1);
  let cfg = conf('', ipRanges);
  const hosts = ['10.50.0.9' /* allow, unmapped */, '192.168.7.7' /* allow + ignore */, '198.51.100.4' /* outside allow */];
  let counters = new Map<string, HostCounters>([['10.0.0.1', hc(0, 0)]]);
  let table = unmapped(0, 0, hosts.map((ip) => [ip, hc(0, 0)]));
  const tel = startTelemetry(stateContext(testDir(t, 'lqtel-unk-'), () => testPlan()), {
    pinRoot: '/nonexistent',
    historyPath: false,
    autoStart: false,
    now: () => now,
    readCounters: () => counters,
    readUnmapped: () => table,
    readProcStat: () => 'cpu  1 0 1 1 0 0 0 0 0 0\n',
    ...telemetryOptionsOf(cfg),
    unknownIps: liveUnknownIpRules(() => cfg),
  });
  try {
    await tel.tick();
    now += 1000;
    counters = new Map([['10.0.0.1', hc(5000, 100, 10, 1)]]);
    table = unmapped(6000, 300, hosts.map((ip, i) => [ip, hc(1000 * (i + 1), 100, 10, 1)]));
    await tel.tick();
    const payload = tel.payload('circuits') as CircuitRatesPayload;
    assert.deepEqual(payload.unknownIps, tel.unknownIps(), 'the API field is the listing');
    const first = { listed: tel.unknownIps().map((u) => u.ip).sort(), count: tel.snapshot().totals.unknownActiveHosts };
    if (reloadTo === undefined) return first;
    // A reload replaces the configuration: the next listing and tick follow the new [ip_ranges].
    cfg = conf('', reloadTo);
    now += 1000;
    table = unmapped(12000, 600, hosts.map((ip, i) => [ip, hc(2000 * (i + 1), 200, 20, 2)]));
    await tel.tick();
    return { ...first, afterReload: { listed: tel.unknownIps().map((u) => u.ip).sort(), count: tel.snapshot().totals.unknownActiveHosts } };
  } finally {
    await tel.stop();
  }
}

test('unknown_ip_honors_allow / unknown_ip_honors_ignore filter the unknown IPs (listing and count)', async (t) => {
  const lists = 'allow_subnets = ["10.0.0.0/8", "192.168.0.0/16"]\nignore_subnets = ["192.168.7.0/24"]\n';
  // Both honoured (default): inside allow, outside ignore.
  assert.deepEqual(await unknownAfterTraffic(t, lists), { listed: ['10.50.0.9'], count: 1 });
  // Allow not honoured: also the address outside allow_subnets.
  assert.deepEqual(await unknownAfterTraffic(t, `${lists}unknown_ip_honors_allow = false\n`), { listed: ['10.50.0.9', '198.51.100.4'], count: 2 });
  // Ignore not honoured: also the ignored address.
  assert.deepEqual(await unknownAfterTraffic(t, `${lists}unknown_ip_honors_ignore = false\n`), { listed: ['10.50.0.9', '192.168.7.7'], count: 2 });
  // Neither: every unmapped address with traffic; the mapped one (c1) never.
  assert.deepEqual(await unknownAfterTraffic(t, `${lists}unknown_ip_honors_allow = false\nunknown_ip_honors_ignore = false\n`), {
    listed: ['10.50.0.9', '192.168.7.7', '198.51.100.4'],
    count: 3,
  });
});

test('[ip_ranges] follows a reload: the Unknown IPs listing and count use the new lists without a restart', async (t) => {
  const before = 'allow_subnets = ["10.0.0.0/8", "192.168.0.0/16"]\nignore_subnets = ["192.168.7.0/24"]\n';
  const after = 'allow_subnets = ["10.0.0.0/8", "192.168.0.0/16", "198.51.100.0/24"]\nignore_subnets = ["10.50.0.0/16"]\n';
  assert.deepEqual(await unknownAfterTraffic(t, before, after), {
    listed: ['10.50.0.9'],
    count: 1,
    afterReload: { listed: ['192.168.7.7', '198.51.100.4'], count: 2 },
  });
});
