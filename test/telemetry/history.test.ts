// test-gate: shared (CPU only; see test/support/gate.ts)
/** Per-minute SQLite history: aggregation, merging split minutes, queries with steps, retention. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { TelemetryHistory, type RateSample } from '../../lib/telemetry/history.ts';
import { testDir } from '../support/workspace.ts';

const T0 = Date.UTC(2025, 0, 1, 12, 0, 0); // a minute boundary
const S0 = T0 / 1000;
const nodeKeys = ['Tower', 'Tower/AP'];
const circuitKeys = ['c1', 'c2', 'c3'];

function sample(down: number[], up: number[], nodes = [down[0]! + down[1]!, down[0]!]): RateSample {
  return {
    downBps: down.reduce((a, b) => a + b, 0),
    upBps: up.reduce((a, b) => a + b, 0),
    nodeKeys,
    nodeDown: nodes,
    nodeUp: [0, 0],
    circuitKeys,
    circuitDown: down,
    circuitUp: up,
  };
}

function tempDb(t: { after: (fn: () => void) => void }) {
  const dir = testDir(t, 'lqtel-hist-');
  return join(dir, 'telemetry.sqlite');
}

test('one row per minute: avg/max over the samples, idle circuits not written, one flush per minute', (t) => {
  let now = T0;
  const h = new TelemetryHistory({ path: tempDb(t), now: () => now });
  for (let i = 0; i < 60; i++) {
    now = T0 + i * 1000;
    // c1: 10 Mbps for 30 s then 0; c2: ramp 0..59 Mbps; c3 idle.
    h.addRates(now, sample([i < 30 ? 10e6 : 0, i * 1e6, 0], [1e6, 0, 0]));
  }
  assert.equal((h.db.prepare('SELECT COUNT(*) AS n FROM totals_minute').get() as { n: number }).n, 0, 'nothing written before the minute ends');
  now = T0 + 60_000;
  h.addRates(now, sample([0, 0, 0], [0, 0, 0])); // first sample of the next minute → flush
  assert.equal(h.lastFlush.minute, S0);
  const tot = h.db.prepare('SELECT * FROM totals_minute WHERE ts = ?').get(S0) as Record<string, number>;
  assert.equal(tot.samples, 60);
  assert.equal(tot.down_max, 59e6, 'max of the per-second totals');
  assert.ok(Math.abs(tot.down_avg - (5e6 + 29.5e6)) < 1);
  assert.equal(tot.up_avg, 1e6);
  const circuits = h.db.prepare('SELECT circuit, down_avg, down_max FROM circuit_minute WHERE ts = ? ORDER BY circuit').all(S0) as { circuit: string; down_avg: number; down_max: number }[];
  assert.deepEqual(circuits.map((c) => c.circuit), ['c1', 'c2'], 'idle c3 has no row');
  assert.equal(circuits[0]!.down_avg, 5e6, '30 s at 10 Mbps over 60 samples');
  assert.equal(circuits[0]!.down_max, 10e6);
  const nodes = h.db.prepare('SELECT node FROM node_minute WHERE ts = ? ORDER BY node').all(S0) as { node: string }[];
  assert.deepEqual(nodes.map((n) => n.node), ['Tower', 'Tower/AP']);
  h.close();
});

test('drops are summed per minute; a minute split by a plan change merges (weighted average)', (t) => {
  let now = T0;
  const h = new TelemetryHistory({ path: tempDb(t), now: () => now });
  for (let i = 0; i < 20; i++) h.addRates((now = T0 + i * 1000), sample([3e6, 0, 0], [0, 0, 0]));
  h.addDrops(now, { drops: { down: 5, up: 1 }, marks: { down: 2, up: 0 }, nodeKeys, circuitKeys, circuits: [{ index: 0, dropsDown: 5, dropsUp: 1, marksDown: 2, marksUp: 0 }] });
  // New plan (new key arrays) mid-minute: the partial minute is written, then merged.
  const keys2 = ['c1', 'c9'];
  for (let i = 20; i < 60; i++) {
    now = T0 + i * 1000;
    h.addRates(now, { downBps: 6e6, upBps: 0, nodeKeys, nodeDown: [0, 0], nodeUp: [0, 0], circuitKeys: keys2, circuitDown: [6e6, 0], circuitUp: [0, 0] });
  }
  h.addDrops(now, { drops: { down: 3, up: 0 }, marks: { down: 0, up: 0 }, nodeKeys, circuitKeys: keys2, circuits: [{ index: 0, dropsDown: 3, dropsUp: 0, marksDown: 0, marksUp: 0 }] });
  h.flush();
  const c1 = h.db.prepare('SELECT * FROM circuit_minute WHERE circuit = ? AND ts = ?').get('c1', S0) as Record<string, number>;
  assert.equal(c1.samples, 60);
  assert.ok(Math.abs(c1.down_avg - (20 * 3e6 + 40 * 6e6) / 60) < 1, `avg ${c1.down_avg}`);
  assert.equal(c1.down_max, 6e6);
  assert.equal(c1.drops_down, 8);
  assert.equal(c1.drops_up, 1);
  assert.equal(c1.marks_down, 2);
  const tot = h.db.prepare('SELECT * FROM totals_minute WHERE ts = ?').get(S0) as Record<string, number>;
  assert.equal(tot.samples, 60);
  assert.equal(tot.drops_down, 8);
  h.close();
});

test('queries: time range and step; averages count idle minutes as 0; top circuits', (t) => {
  let now = T0;
  const h = new TelemetryHistory({ path: tempDb(t), now: () => now });
  // 10 minutes, 2 samples each (enough to test the arithmetic). c1 busy only in minutes 0-4.
  for (let m = 0; m < 10; m++) {
    for (let s = 0; s < 2; s++) {
      now = T0 + m * 60_000 + s * 1000;
      h.addRates(now, sample([m < 5 ? 8e6 : 0, 1e6 * (m + 1), 0], [0, 0, 0]));
    }
  }
  h.flush();
  const minutes = h.query({ scope: 'total', from: S0, to: S0 + 600 });
  assert.equal(minutes.length, 10);
  assert.equal(minutes[0]!.t, S0);
  const byFive = h.query({ scope: 'circuit', id: 'c1', from: S0, to: S0 + 600, step: 300 });
  // c1 has no row in the second bucket, which lqosd recorded: a zero point there, not a gap.
  assert.deepEqual(
    byFive.map((p) => [p.t, p.downAvgBps, p.downMaxBps, p.rttP50Ms, p.retransDownPct]),
    [[S0, 8e6, 8e6, null, null], [S0 + 300, 0, 0, null, null]],
  );
  assert.deepEqual(h.query({ scope: 'circuit', id: 'c-never', from: S0, to: S0 + 600, step: 300 }), [], 'no row in the range at all: no points');
  const c1Ten = h.query({ scope: 'circuit', id: 'c1', from: S0, to: S0 + 600, step: 600 });
  assert.equal(c1Ten[0]!.downAvgBps, 4e6, 'idle half counts as 0');
  assert.equal(c1Ten[0]!.downMaxBps, 8e6);
  const c2 = h.query({ scope: 'circuit', id: 'c2', from: S0 + 300, to: S0 + 600, step: 300 });
  assert.equal(c2[0]!.downAvgBps, 8e6, 'mean of 6..10 Mbps');
  const node = h.query({ scope: 'node', id: 'Tower', from: S0, to: S0 + 120 });
  assert.deepEqual(node.map((p) => p.downAvgBps), [9e6, 10e6]);
  assert.throws(() => h.query({ scope: 'circuit', from: S0, to: S0 + 60 }));
  const top = h.topCircuits({ from: S0, to: S0 + 600, limit: 2 });
  assert.deepEqual(top.map((x) => x.circuit), ['c2', 'c1']);
  assert.equal(top[0]!.avgBps, 5.5e6);
  now = T0 + 600_000;
  assert.equal(h.query({ scope: 'total' }).length, 10, 'default: the last hour');
  h.close();
});

test('retention: rows older than retentionDays are pruned (at most hourly); WAL file on disk', (t) => {
  let now = T0;
  const path = tempDb(t);
  const h = new TelemetryHistory({ path, now: () => now, retentionDays: 1, circuitRetentionDays: 0.5 });
  h.addRates(now, sample([1e6, 0, 0], [0, 0, 0]));
  h.flush();
  assert.ok(existsSync(`${path}-wal`), 'WAL mode');
  const count = (table: string) => (h.db.prepare(`SELECT COUNT(*) AS n FROM ${table}`).get() as { n: number }).n;
  assert.equal(count('circuit_minute'), 1);
  // 13 h later: circuits (12 h retention) go, totals (24 h) stay.
  now = T0 + 13 * 3600_000;
  h.addRates(now, sample([1e6, 0, 0], [0, 0, 0]));
  h.flush();
  assert.equal(count('circuit_minute'), 1, 'only the new minute');
  assert.equal(count('totals_minute'), 2);
  // 25 h: the first totals row goes too. A flush within the hour does not prune again.
  now = T0 + 25 * 3600_000;
  h.addRates(now, sample([0, 0, 0], [0, 0, 0]));
  h.flush();
  assert.equal(count('totals_minute'), 2);
  now += 30 * 60_000;
  h.db.prepare('INSERT INTO totals_minute (ts, samples, down_avg, down_max, up_avg, up_max, drops_down, drops_up, marks_down, marks_up) VALUES (?, 1, 0, 0, 0, 0, 0, 0, 0, 0)').run(S0 - 10 * 86400);
  h.addRates(now, sample([0, 0, 0], [0, 0, 0]));
  h.flush();
  assert.equal(count('totals_minute'), 4, 'not pruned again within the hour');
  assert.ok(h.prune() >= 1);
  h.close();
  // Reopen: data persisted, and the open prunes.
  const h2 = new TelemetryHistory({ path, now: () => now, retentionDays: 1 });
  assert.equal((h2.db.prepare('SELECT COUNT(*) AS n FROM totals_minute').get() as { n: number }).n, 3);
  h2.close();
});
