// test-gate: shared (CPU only; see test/support/gate.ts)
/**
 * Unmapped traffic (issue 20 item 5): the dataplane keeps no per-address state for addresses
 * without a mapping, only an aggregate counter and a small sampled table. Rates come from deltas of
 * both; the unknown-IP list is the sampled table's active, `[ip_ranges]`-listed addresses.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { CircuitRatesPayload, ThroughputPayload } from '../../lib/api/telemetry.ts';
import { startTelemetry } from '../../lib/telemetry/service.ts';
import { UnmappedTracker, UNKNOWN_SAMPLES, type UnmappedSnapshot } from '../../lib/telemetry/unmapped.ts';
import { RecordingLog } from '../../lib/util/logRecords.ts';
import { stateContext } from '../support/context.ts';
import { testDir } from '../support/workspace.ts';
import { hc, testPlan, unmapped } from './helpers.ts';

test('aggregate rates from deltas: first read is the baseline, a counter that went down counts from 0', () => {
  const u = new UnmappedTracker();
  u.update(unmapped(1_000_000, 500, [], 900), 0);
  assert.deepEqual([u.downBps, u.upBps, u.downPps], [0, 0, 0], 'no baseline yet');
  u.update(unmapped(1_000_000 + 250_000, 500 + 12_500, [], 900 + 200), 2000);
  assert.deepEqual([u.downBps, u.upBps, u.downPps], [1e6, 50_000, 100], 'bits/s and packets/s over 2 s');
  // Dataplane reloaded: counters restart from 0.
  u.update(unmapped(125_000, 0, [], 100), 3000);
  assert.deepEqual([u.downBps, u.downPps], [1e6, 100]);
  u.reset();
  u.update(unmapped(9e9, 0, []), 4000);
  assert.equal(u.downBps, 0, 'after a reset the next read is a new baseline');
});

test('sampled table: per-address rates, an evicted address disappears, a re-admitted one counts from 0', () => {
  const u = new UnmappedTracker();
  u.update(unmapped(0, 0, [['198.51.100.1', hc(1000, 0, 1, 0)], ['198.51.100.2', hc(0, 0)]], 0, 2), 0);
  u.update(unmapped(0, 0, [['198.51.100.1', hc(126_000, 0, 101, 0)], ['198.51.100.2', hc(0, 0)]], 0, 2), 1000);
  assert.equal(u.samples.hosts.get('198.51.100.1')!.downBps, 1e6);
  assert.equal(u.samples.hosts.get('198.51.100.2')!.downPps, 0);
  assert.deepEqual([u.tableSize, u.sampledTotal], [2, 2]);
  // .1 evicted (LRU), .3 admitted, .1 back later with fresh counters.
  u.update(unmapped(0, 0, [['198.51.100.2', hc(0, 0)], ['2001:db8:ff::3', hc(0, 12_500, 0, 10)]], 0, 3), 2000);
  assert.equal(u.samples.hosts.has('198.51.100.1'), false);
  assert.equal(u.samples.hosts.get('2001:db8:ff::3')!.upBps, 100_000, 'a new address counts from 0');
  u.update(unmapped(0, 0, [['198.51.100.1', hc(2500, 0, 2, 0)]], 0, 4), 3000);
  assert.equal(u.samples.hosts.get('198.51.100.1')!.downBps, 20_000);
});

/** One service with injected host counters and unmapped reads; two ticks one second apart. */
async function twoTicks(t: Parameters<typeof testDir>[0], first: UnmappedSnapshot, second: UnmappedSnapshot) {
  let now = Date.UTC(2025, 0, 1);
  let snap = first;
  const tel = startTelemetry(stateContext(testDir(t, 'lqtel-unm-'), () => testPlan()), {
    pinRoot: '/nonexistent',
    historyPath: false,
    autoStart: false,
    now: () => now,
    readCounters: () => new Map([['10.0.0.1', hc(0, 0)]]),
    readUnmapped: () => snap,
    readProcStat: () => 'cpu  1 0 1 1 0 0 0 0 0 0\n',
  });
  await tel.tick();
  now += 1000;
  snap = second;
  await tel.tick();
  return tel;
}

test('a full sampled table: the list is bounded, the count and the aggregate are not', async (t) => {
  const ips = Array.from({ length: UNKNOWN_SAMPLES }, (_, i) => `198.18.${i >> 8}.${i & 255}`);
  const tel = await twoTicks(
    t,
    unmapped(0, 0, ips.map((ip) => [ip, hc(0, 0)]), 0, 50_000),
    unmapped(10_000_000, 0, ips.map((ip, i) => [ip, hc(100 + i, 0, 1, 0)]), 1_000_000, 90_000),
  );
  try {
    const p = tel.payload('circuits') as CircuitRatesPayload;
    assert.equal(p.unknownIps!.length, 100, 'the channel lists the 100 busiest');
    assert.equal(p.unknownIps![0]!.ip, ips.at(-1), 'busiest first');
    assert.deepEqual(
      { sampledAddresses: p.unknown!.sampledAddresses, capacity: p.unknown!.capacity, sampledTotal: p.unknown!.sampledTotal, listed: p.unknown!.listed, down: p.unknown!.unmappedDownBps },
      { sampledAddresses: UNKNOWN_SAMPLES, capacity: UNKNOWN_SAMPLES, sampledTotal: 90_000, listed: UNKNOWN_SAMPLES, down: 80e6 },
    );
    const thr = tel.payload('throughput') as ThroughputPayload;
    assert.equal(thr.totals.unmappedDownBps, 80e6, 'the aggregate: every unmapped byte, sampled or not');
    assert.equal(thr.totals.downBps, 80e6, 'total = mapped (idle here) + unmapped');
    assert.equal(thr.totals.unmappedDownPps, 1e6);
    assert.equal(thr.totals.unknownActiveHosts, UNKNOWN_SAMPLES);
    assert.equal(thr.totals.hosts, 1, 'one mapped counter entry');
  } finally {
    await tel.stop();
  }
});

test('a failing unmapped reader is logged once; mapped telemetry goes on; injected counters alone read no unmapped traffic', async (t) => {
  const log = new RecordingLog();
  let fail = true;
  let reads = 0;
  const ctx = { ...stateContext(testDir(t, 'lqtel-unm-'), () => testPlan()), log };
  const tel = startTelemetry(ctx, {
    pinRoot: '/nonexistent',
    historyPath: false,
    autoStart: false,
    readCounters: () => new Map([['10.0.0.1', hc(1, 1)]]),
    readUnmapped: () => {
      reads++;
      if (fail) throw new Error('unknown_ips gone');
      return unmapped(0, 0, []);
    },
  });
  await tel.tick();
  await tel.tick();
  fail = false;
  await tel.tick();
  await tel.stop();
  assert.equal(reads, 3);
  assert.equal(log.records.filter((r) => /reading unmapped traffic .* failed: unknown_ips gone/.test(r.msg)).length, 1);
  assert.equal(log.records.filter((r) => /reading unmapped traffic works again/.test(r.msg)).length, 1);
  assert.equal(tel.snapshot().totals.hosts, 1);

  // No unmapped reader and injected counters: nothing tries the (absent) kernel maps.
  const quiet = new RecordingLog();
  const tel2 = startTelemetry({ ...stateContext(testDir(t, 'lqtel-unm-'), () => testPlan()), log: quiet }, {
    pinRoot: '/nonexistent',
    historyPath: false,
    autoStart: false,
    readCounters: () => new Map(),
  });
  await tel2.tick();
  await tel2.stop();
  assert.deepEqual(quiet.records.filter((r) => r.level === 'warn'), []);
  assert.equal(tel2.unknownSummary().sampledAddresses, 0);
});
