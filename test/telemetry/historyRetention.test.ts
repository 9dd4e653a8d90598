// test-gate: shared (CPU only; see test/support/gate.ts)
/**
 * `[history]` retention_days / circuit_retention_days (lqos-ts keys): validated, handed to the
 * telemetry service by telemetryOptionsOf, and honoured by the store's pruning; and the service's
 * TCP quality capture from flow tracking (circuits, every ancestor node, the totals) into the history.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import type { CircuitFlowView, FlowSnapshot } from '../../lib/api/flows.ts';
import { parseConfigText } from '../../lib/config/load.ts';
import { restartOnlyChanges } from '../../lib/daemon/configHolder.ts';
import { startTelemetry, telemetryOptionsOf } from '../../lib/telemetry/service.ts';
import { stateContext } from '../support/context.ts';
import { testDir } from '../support/workspace.ts';
import { hc, testPlan } from './helpers.ts';

const BASE = '[bridge]\nto_internet = "eth0"\nto_network = "eth1"\n';

test('[history] keys: defaults 30 / 7 days, validated, handed to telemetry and honoured by pruning', async (t) => {
  const defaults = parseConfigText(BASE, '/x/lqos.conf').config;
  assert.deepEqual(defaults.history, { retention_days: 30, circuit_retention_days: 7 });
  for (const bad of ['retention_days = 0', 'circuit_retention_days = -1', 'retention_days = "long"']) {
    assert.throws(() => parseConfigText(`${BASE}[history]\n${bad}\n`, '/x/lqos.conf'), /history\.(circuit_)?retention_days/, bad);
  }
  const config = parseConfigText(`${BASE}[history]\nretention_days = 45\ncircuit_retention_days = 2\n`, '/x/lqos.conf').config;
  const opts = telemetryOptionsOf(config);
  assert.deepEqual([opts.retentionDays, opts.circuitRetentionDays], [45, 2]);
  // Read when telemetry starts: a reload says a restart is needed.
  assert.deepEqual(restartOnlyChanges(['history.retention_days', 'history.circuit_retention_days']), ['history.retention_days', 'history.circuit_retention_days']);

  const dir = testDir(t, 'lqhist-ret-');
  const now = Date.UTC(2025, 5, 1);
  const tel = startTelemetry(stateContext(dir, () => undefined), { pinRoot: '/nonexistent', autoStart: false, now: () => now, readCounters: () => new Map(), ...opts });
  const h = tel.history!;
  assert.deepEqual([h.retentionDays, h.circuitRetentionDays], [45, 2]);
  const ins = (table: string, key: string | undefined, daysAgo: number) => {
    const ts = now / 1000 - daysAgo * 86_400;
    const cols = 'ts, samples, down_avg, down_max, up_avg, up_max, drops_down, drops_up, marks_down, marks_up';
    if (key === undefined) h.db.prepare(`INSERT INTO ${table} (${cols}) VALUES (?, 60, 1, 1, 1, 1, 0, 0, 0, 0)`).run(ts);
    else h.db.prepare(`INSERT INTO ${table} (${table === 'node_minute' ? 'node' : 'circuit'}, ${cols}) VALUES (?, ?, 60, 1, 1, 1, 1, 0, 0, 0, 0)`).run(key, ts);
  };
  for (const d of [1, 3, 44, 46]) {
    ins('totals_minute', undefined, d);
    ins('node_minute', 'Tower', d);
    ins('circuit_minute', 'c1', d);
  }
  h.prune();
  const days = (table: string) => (h.db.prepare(`SELECT ts FROM ${table} ORDER BY ts DESC`).all() as { ts: number }[]).map((r) => Math.round((now / 1000 - r.ts) / 86_400));
  assert.deepEqual(days('totals_minute'), [1, 3, 44], 'network rows: 45 days');
  assert.deepEqual(days('node_minute'), [1, 3, 44], 'site rows: 45 days');
  assert.deepEqual(days('circuit_minute'), [1], 'circuit rows: 2 days');
  await tel.stop();
});

function flowView(id: string, p50: number, p90: number, rd: number, pd: number): CircuitFlowView {
  const pct = { p50, p90, p99: p90, samples: 10 };
  return {
    circuitHash: '0', circuitId: id, circuitName: id, tcHandle: 0, activeFlows: 1, rateBps: { down: 0, up: 0 },
    rtt: { customer: pct, internet: pct },
    retransmits: { down: rd, up: 0, packetsDown: pd, packetsUp: 0, pctDown: (100 * rd) / pd, pctUp: null },
    flows: [],
  };
}

test('the service captures the TCP quality of flow tracking every 10 s: circuits, their sites (every ancestor) and the totals', async (t) => {
  const dir = testDir(t, 'lqhist-ret-');
  const plan = testPlan();
  let now = Date.UTC(2025, 0, 1, 0, 0, 0);
  let counters = new Map([['10.0.0.1', hc(0, 0)]]);
  let snap: FlowSnapshot | undefined;
  const tel = startTelemetry(stateContext(dir, () => plan), { pinRoot: '/nonexistent', autoStart: false, historyPath: join(dir, 'h.sqlite'), now: () => now, readCounters: () => counters, flows: () => snap });
  // c1 under Tower/AP_A, c2 under Tower/AP_B, c3 under Site2; an id outside the plan is ignored.
  snap = { circuits: [flowView('c1', 10, 30, 2, 1000), flowView('c2', 20, 50, 0, 1000), flowView('c3', 40, 90, 6, 2000), flowView('not-in-plan', 999, 999, 0, 10)] } as FlowSnapshot;
  await tel.tick(); // first tick: a capture
  now += 5000;
  counters = new Map([['10.0.0.1', hc(1_250_000, 0, 1000, 0)]]);
  await tel.tick(); // 5 s later: no capture
  now += 5000;
  snap = { circuits: [flowView('c1', 30, 70, 0, 1000)] } as FlowSnapshot;
  await tel.tick(); // 10 s: the second capture
  tel.flushHistory();
  const q = (scope: 'total' | 'node' | 'circuit', id?: string) => tel.history!.query({ scope, id, from: now / 1000 - 60, to: now / 1000 + 60 })[0];
  const c1 = q('circuit', 'c1')!;
  assert.deepEqual([c1.rttP50Ms, c1.rttP90Ms, c1.retransDownPct], [20, 50, 0.1], 'c1: the two captures averaged (10/30, 30/70), retransmits 2 of 2000');
  const tower = q('node', 'Tower')!;
  // capture 1: medians of c1, c2 = 10, 20 → p50 10, p90 20; capture 2: c1 only → 30, 30; averaged: 20, 25.
  assert.deepEqual([tower.rttP50Ms, tower.rttP90Ms, tower.retransDownPct], [20, 25, 100 * 2 / 3000], 'Tower: its circuits across both captures');
  assert.equal(q('node', 'Tower/AP_B')!.rttP50Ms, 20, 'AP_B: c2 in the first capture only');
  const total = q('total')!;
  assert.deepEqual([total.rttP50Ms, total.rttP90Ms, total.retransDownPct], [(20 + 30) / 2, (40 + 30) / 2, 100 * 8 / 5000], 'totals: c1, c2, c3 then c1');
  assert.equal(q('circuit', 'not-in-plan'), undefined);
  await tel.stop();
});
