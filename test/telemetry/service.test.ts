/** The telemetry service with injected counters, tc output, /proc/stat and clock. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import type { ShapingPlan } from '../../lib/model.ts';
import { createShapingMetrics } from '../../lib/telemetry/metrics.ts';
import { startTelemetry } from '../../lib/telemetry/service.ts';
import { ChannelRegistry } from '../../lib/web/channels.ts';
import type { HostCounters } from '../../dataplane/abi.ts';
import { stateContext } from '../support/context.ts';
import { sleep } from '../support/wait.ts';
import { testDir } from '../support/workspace.ts';
import { hc, testPlan, unmapped as um } from './helpers.ts';

const fx = (name: string) => readFileSync(join(import.meta.dirname, 'fixtures', name), 'utf8');

const metrics = createShapingMetrics();

async function gauge(name: 'totalThroughputBps' | 'circuitThroughputBps' | 'nodeThroughputBps', labels: Record<string, string>): Promise<number | undefined> {
  const m = await metrics[name].get();
  return m.values.find((v) => Object.entries(labels).every(([k, x]) => (v.labels as Record<string, unknown>)[k] === x))?.value;
}

test('ticks: rates, roll-ups, channels, gauges, stats_hosts, queue stats, history, stop', async (t) => {
  const dir = testDir(t, 'lqtel-svc-');
  let plan: ShapingPlan | undefined = testPlan();
  let now = Date.UTC(2025, 0, 1, 0, 0, 0);
  let counters = new Map<string, HostCounters>();
  let unmapped = um(0, 0, []);
  const stat = [fx('proc-stat-1.txt'), fx('proc-stat-2.txt')];
  let qd = fx('tc-qdisc-cake.json');
  const channels = new ChannelRegistry();
  const tel = startTelemetry(stateContext(dir, () => plan), {
    pinRoot: '/nonexistent',
    autoStart: false,
    now: () => now,
    readCounters: () => counters,
    readUnmapped: () => unmapped,
    readQdiscs: async () => qd,
    readProcStat: () => stat.shift() ?? fx('proc-stat-2.txt'),
    publish: channels.publish,
    metrics,
  });
  assert.deepEqual(channels.names(), ['circuits', 'cpu', 'queues', 'throughput'], 'channels published');
  assert.deepEqual(channels.get('cpu')!(), tel.payload('cpu'), 'the published producer is the payload');

  // Tick 1: baseline. Tick 2: c1 20 Mbps down (host 10.0.0.1), c3 8 Mbps down, 2 up (counted per
  // mapping: its /25 is one key); unmapped 1 Mbps down, of which the sampled 192.0.2.1 0.4 Mbps.
  counters = new Map([['10.0.0.1', hc(0, 0)], ['10.1.2.128/25', hc(0, 0)]]);
  unmapped = um(1000, 0, [['192.0.2.1', hc(0, 0)]]);
  await tel.tick();
  now += 1000;
  counters = new Map([['10.0.0.1', hc(2_500_000, 0, 2000, 0)], ['10.1.2.128/25', hc(1_000_000, 250_000, 800, 300)]]);
  unmapped = um(1000 + 125_000, 0, [['192.0.2.1', hc(50_000, 0, 40, 0)]], 100, 7);
  await tel.tick();
  const s = tel.snapshot();
  assert.equal(s.dataplane, true);
  assert.equal(s.dtMs, 1000);
  assert.equal(s.totals.downBps, 20e6 + 8e6 + 1e6, 'all traffic: mapped + unmapped');
  assert.equal(s.totals.shapedDownBps, 28e6);
  assert.equal(s.totals.unmappedDownBps, 1e6);
  assert.equal(s.totals.unmappedDownPps, 100);
  assert.equal(s.totals.unknownActiveHosts, 1);
  assert.deepEqual(tel.unknownIps(), [{ ip: '192.0.2.1', downBps: 400_000, upBps: 0, downBytes: 50_000, upBytes: 0 }]);
  const summary = tel.unknownSummary();
  assert.equal(summary.sampled, true);
  assert.match(summary.note, /^Sampled: .* at most 4096 addresses/);
  assert.deepEqual([summary.sampledAddresses, summary.sampledTotal, summary.listed, summary.unmappedDownBps], [1, 7, 1, 1e6]);
  assert.deepEqual(s.topDownload.map((c) => [c.id, c.downBps, c.ceilDownMbps, c.utilDownPct]), [['c1', 20e6, 50, 40], ['c3', 8e6, 200, 4]]);
  assert.equal(s.nodes.find((n) => n.path === 'Tower')!.downBps, 20e6);
  assert.equal(s.cpu.perCore.length, 2);
  assert.deepEqual(tel.circuit('c3')?.upBps, 2e6);
  assert.equal(tel.circuit('nope'), undefined);

  // Channels.
  const thr = tel.payload('throughput') as { totals: { downBps: number }; nodes: { path: string; downBps: number }[]; ring: { totals: { t: number[]; down: number[] }; nodes: Record<string, { down: number[] }> } };
  assert.equal(thr.totals.downBps, 29e6);
  assert.deepEqual(thr.nodes.map((n) => n.path), ['Tower', 'Site2']);
  assert.deepEqual(thr.ring.totals.down, [0, 29e6]);
  assert.deepEqual(thr.ring.nodes['Site2']!.down, [0, 8e6]);
  const circ = tel.payload('circuits') as { activeCount: number; active: { id: string }[]; unknown: unknown };
  assert.equal(circ.activeCount, 2);
  assert.deepEqual(circ.unknown, summary, 'the circuits channel carries the summary');
  assert.deepEqual(circ.active.map((c) => c.id), ['c1', 'c3']);
  assert.deepEqual(Object.keys(tel.payload('cpu') as object).sort(), ['at', 'perCore', 'total']);
  JSON.stringify(tel.payload('throughput')); // no bigints in channel payloads

  // Gauges.
  assert.equal(await gauge('totalThroughputBps', { direction: 'download' }), 29e6);
  assert.equal(await gauge('circuitThroughputBps', { circuit: 'c1', direction: 'download' }), 20e6);
  assert.equal(await gauge('nodeThroughputBps', { node: 'Tower/AP_A', direction: 'download' }), 20e6);

  // stats_hosts.
  const sh = tel.statsHosts({ limit: 2, sortBy: 'download' }) as { hosts: { ip: string; prefix: string; circuitId: string | null; downloadBps: number; downloadBytes: bigint }[] };
  // A counter per mapping: `ip` stays an address (the network address of a prefix), `prefix` says which.
  assert.deepEqual(sh.hosts.map((h) => [h.ip, h.prefix, h.circuitId, h.downloadBps]), [['10.0.0.1', '10.0.0.1/32', 'c1', 20e6], ['10.1.2.128', '10.1.2.128/25', 'c3', 8e6]]);
  assert.equal(sh.hosts[0]!.downloadBytes, 2_500_000n);

  // Queue stats: baseline then +40 drops on c1's cake.
  await tel.pollQueues();
  const later = JSON.parse(qd) as { drops: number }[];
  later[2]!.drops += 40;
  qd = JSON.stringify(later);
  now += 2000;
  await tel.pollQueues();
  const q = tel.payload('queues') as { totals: { drops: { down: number } }; circuits: { id: string; down?: { dDrops: number; kind: string } }[] };
  assert.equal(q.totals.drops.down, 40);
  assert.equal(q.circuits[0]!.id, 'c1');
  assert.equal(q.circuits[0]!.down!.dDrops, 40);
  assert.equal(tel.circuitQueues('c2')?.down?.kind, 'fq_codel');

  // Idle tick: c1 stops → its gauge label goes away.
  now += 1000;
  counters = new Map([['10.0.0.1', hc(2_500_000, 0, 2000, 0)], ['10.1.2.128/25', hc(4_000_000, 250_000, 1600, 300)]]); // 3 MB over 3 s
  await tel.tick();
  assert.equal(await gauge('circuitThroughputBps', { circuit: 'c1', direction: 'download' }), undefined);
  assert.equal(await gauge('circuitThroughputBps', { circuit: 'c3', direction: 'download' }), 8e6);

  // A new plan (c3 removed) re-indexes; hosts re-resolve (the /25's counters fall into c2's /24).
  plan = testPlan();
  plan.circuits = plan.circuits.filter((c) => c.id !== 'c3');
  plan.mappings = plan.mappings.filter((m) => m.circuitId !== 'c3');
  now += 1000;
  counters = new Map([['10.1.2.128/25', hc(5_000_000, 250_000, 2400, 300)]]);
  await tel.tick();
  assert.deepEqual(tel.snapshot().topDownload.map((c) => [c.id, c.downBps]), [['c2', 8e6]]);

  // The next minute flushes the history.
  now += 60_000;
  await tel.tick();
  const rows = tel.history!.query({ scope: 'circuit', id: 'c1', from: 0, to: now / 1000 + 60 });
  assert.equal(rows.length, 1);
  assert.equal(rows[0]!.downMaxBps, 20e6);
  assert.equal(rows[0]!.dropsDown, 40);

  await tel.stop();
  assert.deepEqual(channels.names(), [], 'channels withdrawn');
  assert.equal(await gauge('totalThroughputBps', { direction: 'download' }), undefined, 'gauges cleared');
  assert.ok(existsSync(join(dir, 'telemetry.sqlite')));
});

test('not attached (dry run): no counters are read, stats_hosts says why; timers run and stop', async (t) => {
  const dir = testDir(t, 'lqtel-svc-');
  let reads = 0;
  const tel = startTelemetry(stateContext(dir, () => testPlan()), {
    pinRoot: '/nonexistent',
    intervalMs: 20,
    queueIntervalMs: 20,
    isAttached: () => false,
    readCounters: () => (reads++, new Map()),
    readQdiscs: async () => '[]',
    historyPath: false,
  });
  await sleep(120);
  assert.equal(reads, 0);
  assert.ok(tel.snapshot().ticks >= 3, `ticks ${tel.snapshot().ticks}`);
  assert.equal(tel.snapshot().dataplane, false);
  assert.match(String((tel.statsHosts({ limit: 5, sortBy: 'total' }) as { note: string }).note), /no dataplane/);
  assert.equal(tel.history, undefined);
  await tel.stop();
  const ticks = tel.snapshot().ticks;
  await sleep(60);
  assert.equal(tel.snapshot().ticks, ticks, 'stopped');
});

test('a failing counter reader is logged once and the loop keeps going', async (t) => {
  const dir = testDir(t, 'lqtel-svc-');
  let fail = true;
  const tel = startTelemetry(stateContext(dir, () => undefined), {
    pinRoot: '/nonexistent',
    autoStart: false,
    historyPath: false,
    readCounters: () => {
      if (fail) throw new Error('map gone');
      return new Map([['10.0.0.1', hc(1, 1)]]);
    },
  });
  await tel.tick();
  await tel.tick();
  fail = false;
  await tel.tick();
  assert.equal(tel.snapshot().totals.hosts, 1);
  assert.deepEqual(tel.snapshot().topDownload, [], 'no plan: no circuits');
  await tel.stop();
});

test('Unknown IPs page table: listed addresses seen within the window, most bytes first, last seen in wall time', async (t) => {
  const dir = testDir(t, 'lqtel-svc-');
  let now = Date.UTC(2026, 11, 5, 12, 0, 0);
  let unmapped = um(0, 0, []);
  const at = (c: ReturnType<typeof hc>, lastSeenNs: bigint) => ({ ...c, lastSeenNs });
  const tel = startTelemetry(stateContext(dir, () => testPlan()), {
    pinRoot: '/nonexistent', autoStart: false, now: () => now, historyPath: false,
    readCounters: () => new Map(), readUnmapped: () => unmapped, readQdiscs: async () => '[]',
    unknownIps: { allow: [], ignore: ['203.0.113.0/24'], honorsAllow: false, honorsIgnore: true },
  });
  const boot = 1_000_000_000_000n; // the dataplane clock (ns) at `now`
  unmapped = um(0, 0, [
    ['192.0.2.1', at(hc(5_000, 100), boot - 2_000_000_000n)], // 2 s ago
    ['2001:db8::9', at(hc(90_000, 0), boot - 240_000_000_000n)], // 4 min ago
    ['192.0.2.77', at(hc(1_000_000, 0), boot - 400_000_000_000n)], // 6 min 40 s ago: outside
    ['203.0.113.5', at(hc(7_000_000, 0), boot)], // ignored by [ip_ranges]
  ]);
  await tel.tick();
  const table = tel.unknownIpTable(boot, 300_000);
  assert.equal(table.available, true);
  assert.equal(table.windowSeconds, 300);
  assert.deepEqual(
    table.rows.map((r) => [r.ip, r.downBytes, r.upBytes, now - r.lastSeenMs]),
    [['2001:db8::9', 90_000, 0, 240_000], ['192.0.2.1', 5_000, 100, 2_000]],
  );
  now += 1000;
  unmapped = um(0, 0, [['192.0.2.1', at(hc(6_000_000, 100), boot + 1_000_000_000n)], ['2001:db8::9', at(hc(90_000, 0), boot - 240_000_000_000n)]]);
  await tel.tick();
  const next = tel.unknownIpTable(boot + 1_000_000_000n, 300_000);
  assert.deepEqual(next.rows.map((r) => [r.ip, r.downBps, now - r.lastSeenMs]), [['192.0.2.1', 47_960_000, 0], ['2001:db8::9', 0, 241_000]]);
  await tel.stop();
});
