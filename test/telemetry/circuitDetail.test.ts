/**
 * Telemetry's detail of one circuit (the Circuit page, GET /api/circuits/:id/live): its rates, its
 * host counters with the wall time of their last packet, and its queue statistics with CAKE's tins,
 * from injected counters and `tc -s -j qdisc` output.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { cakeTinViews, parseQdiscStats } from '../../lib/telemetry/queueStats.ts';
import { startTelemetry } from '../../lib/telemetry/service.ts';
import type { HostCounters } from '../../dataplane/abi.ts';
import { stateContext } from '../support/context.ts';
import { testDir } from '../support/workspace.ts';
import { hc, testPlan } from './helpers.ts';

const fx = (name: string) => readFileSync(join(import.meta.dirname, 'fixtures', name), 'utf8');
const seenAt = (c: HostCounters, ns: bigint): HostCounters => ({ ...c, lastSeenNs: ns });

test('circuitDetail: rates, host counters of the circuit with last seen in wall time, queues with CAKE tins', async (t) => {
  const dir = testDir(t, 'lqtel-cd-');
  let now = Date.UTC(2025, 0, 1, 0, 0, 0);
  let counters = new Map<string, HostCounters>();
  let qd = fx('tc-qdisc-cake.json');
  const plan = testPlan();
  const tel = startTelemetry(stateContext(dir, () => plan), {
    pinRoot: '/nonexistent', autoStart: false, now: () => now, readCounters: () => counters, readQdiscs: async () => qd, isAttached: () => true,
  });
  try {
    // c2 maps 10.1.2.0/24 and 2001:db8:1::/48; c1 maps 10.0.0.1/32 (a bare key).
    counters = new Map([['10.0.0.1', hc(0, 0)], ['10.1.2.0/24', hc(0, 0)], ['2001:db8:1::/48', hc(0, 0)]]);
    await tel.tick();
    now += 1000;
    counters = new Map([
      ['10.0.0.1', seenAt(hc(2_500_000, 125_000, 2000, 100), 9_000_000_000n)],
      ['10.1.2.0/24', seenAt(hc(1_000_000, 0, 800, 0), 9_500_000_000n)],
      ['2001:db8:1::/48', seenAt(hc(0, 0), 4_000_000_000n)],
    ]);
    await tel.tick();
    await tel.pollQueues();
    const later = JSON.parse(qd) as { drops: number; tins?: { drops: number }[] }[];
    later[2]!.drops += 40;
    later[2]!.tins![1]!.drops += 40;
    qd = JSON.stringify(later);
    now += 2000;
    await tel.pollQueues();

    const c1 = tel.circuitDetail('c1', 10_000_000_000n)!;
    assert.equal(c1.dataplane, true);
    assert.deepEqual([c1.rates?.downBps, c1.rates?.upBps], [20e6, 1e6]);
    assert.deepEqual(c1.hosts, [{ key: '10.0.0.1', downBps: 20e6, upBps: 1e6, downBytes: 2_500_000, upBytes: 125_000, lastSeenMs: now - 1000 }], 'only c1 hosts; last seen 1 s before the boot clock now');
    const c2 = tel.circuitDetail('c2', 10_000_000_000n)!;
    assert.deepEqual(c2.hosts.map((h) => [h.key, h.downBps, h.lastSeenMs]).sort(), [['10.1.2.0/24', 8e6, now - 500], ['2001:db8:1::/48', 0, now - 6000]]);

    const down = c1.queues.view!.down!;
    assert.deepEqual([c1.queues.dtMs, down.kind, down.dDrops, down.drops, down.ecnMarks], [2000, 'cake', 40, 1040, 75]);
    assert.deepEqual(down.tins!.map((x) => [x.name, x.drops, x.ecnMarks]), [['Bulk', 0, 0], ['Best Effort', 1030, 70], ['Video', 10, 5], ['Voice', 0, 0]]);
    assert.deepEqual(
      down.tins![1],
      { name: 'Best Effort', sentBytes: 4_999_999_000, sentPackets: 3_399_990, drops: 1030, ecnMarks: 70, ackDrops: 4, backlogBytes: 3028, avgDelayUs: 3000, peakDelayUs: 12000, baseDelayUs: 100 },
    );
    assert.equal(tel.circuitDetail('c2', 10_000_000_000n)!.queues.view!.down!.tins, undefined, 'fq_codel has no tins');
    const channel = tel.payload('queues') as { circuits: { id: string; down?: { tins?: unknown } }[] };
    assert.equal(channel.circuits.find((c) => c.id === 'c1')!.down!.tins, undefined, 'the queues channel stays without tins');
    assert.equal(tel.circuitDetail('nope', 0n), undefined);
  } finally {
    await tel.stop();
  }
});

test('CAKE tins are named by diffserv mode; other counts are numbered', () => {
  const tin = { sent_bytes: '12', drops: 1 };
  assert.deepEqual(cakeTinViews([tin]).map((x) => x.name), ['Best Effort']);
  assert.deepEqual(cakeTinViews([tin, tin, tin]).map((x) => x.name), ['Bulk', 'Best Effort', 'Voice']);
  assert.deepEqual(cakeTinViews(Array(8).fill(tin)).map((x) => x.name), ['Tin 0', 'Tin 1', 'Tin 2', 'Tin 3', 'Tin 4', 'Tin 5', 'Tin 6', 'Tin 7']);
  assert.equal(cakeTinViews([tin])[0]!.sentBytes, 12, 'numbers given as text are read');
  assert.equal(parseQdiscStats(fx('tc-qdisc-cake.json')).find((q) => q.kind === 'fq_codel')!.tinList, undefined);
});
