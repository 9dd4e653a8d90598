// test-gate: shared (CPU only; see test/support/gate.ts)
/**
 * The History API's downsampling over a seeded store (30 days of minute rows with known values):
 * bucket counts per range, and every bucket's average, maximum, RTT and retransmit share exactly as
 * computed here from the seeded rows; TCP quality captures and their merge; the schema migration of
 * a database written before the quality columns existed.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { createRequire } from 'node:module';
import { HISTORY_RANGES, type HistoryPoint, type HistoryRange } from '../../lib/api/history.ts';
import { migrateHistory, TelemetryHistory, type SqliteDatabase } from '../../lib/telemetry/history.ts';
import { historyWindow } from '../../lib/web/routes/history.ts';
import { testDir } from '../support/workspace.ts';
import { seedHistory, seedRow } from './historySeed.ts';

const Database = createRequire(import.meta.url)('better-sqlite3') as new (path: string) => SqliteDatabase;

const START = Date.UTC(2025, 0, 1) / 1000;
const MINUTES = 30 * 1440;
const END = START + MINUTES * 60;

/** What a bucket must hold: computed from the seeded formulas (entity k). */
function expected(k: number, from: number, to: number, step: number): HistoryPoint[] {
  const out = new Map<number, { rows: ReturnType<typeof seedRow>[] }>();
  for (let i = 0; i < MINUTES; i++) {
    const ts = START + i * 60;
    if (ts < from || ts >= to) continue;
    const t = Math.floor(ts / step) * step;
    if (!out.has(t)) out.set(t, { rows: [] });
    out.get(t)!.rows.push(seedRow(i, k));
  }
  return [...out].map(([t, { rows }]) => {
    const n = rows.reduce((a, r) => a + r.samples, 0);
    const sum = (f: (r: ReturnType<typeof seedRow>) => number) => rows.reduce((a, r) => a + f(r), 0);
    return {
      t,
      downAvgBps: Math.round(sum((r) => r.downAvg * r.samples) / n),
      downMaxBps: Math.round(Math.max(...rows.map((r) => r.downMax))),
      upAvgBps: Math.round(sum((r) => r.upAvg * r.samples) / n),
      upMaxBps: Math.round(Math.max(...rows.map((r) => r.upMax))),
      dropsDown: sum((r) => r.dropsDown),
      dropsUp: 0,
      marksDown: 0,
      marksUp: 0,
      rttP50Ms: sum((r) => r.rttP50 * r.rttN) / sum((r) => r.rttN),
      rttP90Ms: sum((r) => r.rttP90 * r.rttN) / sum((r) => r.rttN),
      retransDownPct: (100 * sum((r) => r.retransDown)) / sum((r) => r.tcpDown),
      retransUpPct: 0,
    };
  });
}

/** Equal, RTT and shares to 1e-9 (SQL and JS sum floats in different orders). */
function assertPoints(got: HistoryPoint[], want: HistoryPoint[], what: string) {
  assert.equal(got.length, want.length, `${what}: bucket count`);
  const near = (a: number | null, b: number | null) => a !== null && b !== null && Math.abs(a - b) < 1e-9;
  for (let j = 0; j < want.length; j++) {
    const g = got[j]!;
    const w = want[j]!;
    const { rttP50Ms, rttP90Ms, retransDownPct, ...exact } = w;
    assert.deepEqual({ ...g, rttP50Ms: 0, rttP90Ms: 0, retransDownPct: 0 }, { ...exact, rttP50Ms: 0, rttP90Ms: 0, retransDownPct: 0 }, `${what}: bucket ${j} (t=${w.t})`);
    assert.ok(near(g.rttP50Ms, rttP50Ms) && near(g.rttP90Ms, rttP90Ms) && near(g.retransDownPct, retransDownPct), `${what}: bucket ${j} quality ${JSON.stringify(g)} vs ${JSON.stringify(w)}`);
  }
}

function seeded(t: { after: (fn: () => void) => void }) {
  const h = new TelemetryHistory({ path: join(testDir(t, 'lqhist-q-'), 'telemetry.sqlite'), now: () => END * 1000, retentionDays: 40 });
  seedHistory(h.db, { startS: START, minutes: MINUTES, nodes: ['Region', 'Region/Tower'], circuits: ['c-1', 'c-2'] });
  return h;
}

test('30 days seeded: each range gives ≤ 600 buckets whose averages, maxima, RTT and retransmits match the rows', (t) => {
  const h = seeded(t);
  const nowS = END - 1; // inside the last seeded minute
  const counts: Record<string, number> = {};
  for (const range of Object.keys(HISTORY_RANGES) as HistoryRange[]) {
    const w = historyWindow({ range }, nowS);
    assert.equal(w.to, END);
    for (const [scope, id, k] of [['total', undefined, 0], ['node', 'Region/Tower', 2], ['circuit', 'c-1', 1]] as const) {
      const got = h.query({ scope, id, ...w });
      assertPoints(got, expected(k, w.from, w.to, w.step), `${range} ${scope}`);
      assert.ok(got.length <= 600, `${range}: ${got.length} points`);
    }
    counts[range] = h.query({ scope: 'total', ...w }).length;
  }
  // minute rows for an hour; 3-min, 20-min and 72-min buckets beyond
  assert.deepEqual(counts, { '1h': 60, '24h': 480, '7d': 504, '30d': 600 });
  assert.deepEqual(Object.fromEntries((Object.keys(HISTORY_RANGES) as HistoryRange[]).map((r) => [r, historyWindow({ range: r }, nowS).step])), { '1h': 60, '24h': 180, '7d': 1200, '30d': 4320 });
  h.close();
});

test('from/to: validated, buckets aligned to the step, at most 600', (t) => {
  const h = seeded(t);
  const w = historyWindow({ from: START + 125, to: START + 125 + 2 * 86_400 }, END);
  assert.equal(w.step, 300);
  assert.equal(w.from % 300, 0);
  const got = h.query({ scope: 'circuit', id: 'c-2', ...w });
  assertPoints(got, expected(2, w.from, w.to, w.step), 'from/to');
  assert.ok(got.length <= 600);
  assert.throws(() => historyWindow({ from: 10 }, END), /from and to go together/);
  assert.throws(() => historyWindow({ from: 10, to: 10 }, END), /must be after/);
  assert.throws(() => historyWindow({ from: 1, to: 2, range: '1h' }, END), /either range or from\/to/);
  h.close();
});

test('TCP quality: captures average into the minute; a flush on demand mid-minute merges with the rest', (t) => {
  const T0 = START * 1000;
  let now = T0;
  const h = new TelemetryHistory({ path: join(testDir(t, 'lqhist-q-'), 'telemetry.sqlite'), now: () => now });
  const keys = { nodeKeys: ['A'], circuitKeys: ['c1', 'c2'] };
  const rates = (down: number) => ({ downBps: down, upBps: 0, ...keys, nodeDown: [down], nodeUp: [0], circuitDown: [down, 0], circuitUp: [0, 0] });
  const q = (p50: number | null, rd: number, pd: number) => ({ rttP50: p50, rttP90: p50 === null ? null : p50 * 3, retransDown: rd, retransUp: 0, tcpDown: pd, tcpUp: 0 });
  for (let s = 0; s < 20; s++) h.addRates((now = T0 + s * 1000), rates(10e6));
  h.addQuality(now, { totals: q(20, 5, 1000), nodes: new Map([[0, q(20, 5, 1000)]]), circuits: new Map([[0, q(20, 5, 1000)]]), ...keys });
  h.flush(); // on demand, 20 s into the minute
  for (let s = 20; s < 60; s++) h.addRates((now = T0 + s * 1000), rates(10e6));
  h.addQuality(now, { totals: q(40, 1, 1000), nodes: new Map([[0, q(40, 1, 1000)]]), circuits: new Map([[0, q(40, 1, 1000)], [1, q(null, 0, 0)]]), ...keys });
  h.addQuality(now, { totals: q(null, 0, 2000), nodes: new Map(), circuits: new Map([[0, q(null, 0, 2000)]]), ...keys });
  h.flush();
  const [p] = h.query({ scope: 'circuit', id: 'c1', from: START, to: START + 60 });
  assert.equal(p!.downAvgBps, 10e6, 'rates merged over the split minute');
  assert.equal(p!.rttP50Ms, 30, 'average of the two captures with RTT (20, 40)');
  assert.equal(p!.rttP90Ms, 90);
  assert.equal(p!.retransDownPct, 100 * 6 / 4000, 'retransmits / TCP packets of all captures');
  assert.equal(p!.retransUpPct, null, 'no upload TCP packets');
  const row = h.db.prepare('SELECT samples, rtt_n FROM circuit_minute WHERE circuit = ?').get('c1') as { samples: number; rtt_n: number };
  assert.deepEqual({ ...row }, { samples: 60, rtt_n: 2 });
  assert.equal(h.query({ scope: 'circuit', id: 'c2', from: START, to: START + 60 }).length, 0, 'a capture without RTT or packets writes nothing');
  assert.equal(h.has('circuit', 'c1'), true);
  assert.equal(h.has('circuit', 'c2'), false);
  assert.equal(h.has('node', 'A'), true);
  h.close();
});

test('a database of an older lqosd gets the quality columns (ALTER TABLE), keeps its rows, and takes new ones', (t) => {
  const path = join(testDir(t, 'lqhist-q-'), 'telemetry.sqlite');
  const VALS = 'samples INTEGER NOT NULL, down_avg REAL NOT NULL, down_max REAL NOT NULL, up_avg REAL NOT NULL, up_max REAL NOT NULL, drops_down INTEGER NOT NULL, drops_up INTEGER NOT NULL, marks_down INTEGER NOT NULL, marks_up INTEGER NOT NULL';
  const old = new Database(path);
  old.exec(`CREATE TABLE totals_minute (ts INTEGER PRIMARY KEY, ${VALS});
    CREATE TABLE node_minute (node TEXT NOT NULL, ts INTEGER NOT NULL, ${VALS}, PRIMARY KEY (node, ts)) WITHOUT ROWID;
    CREATE TABLE circuit_minute (circuit TEXT NOT NULL, ts INTEGER NOT NULL, ${VALS}, PRIMARY KEY (circuit, ts)) WITHOUT ROWID;`);
  old.prepare('INSERT INTO totals_minute VALUES (?, 60, 5e6, 9e6, 1e6, 2e6, 3, 0, 0, 0)').run(START);
  old.prepare("INSERT INTO circuit_minute VALUES ('c1', ?, 60, 5e6, 9e6, 1e6, 2e6, 3, 0, 0, 0)").run(START);
  old.close();
  const now = (START + 60) * 1000;
  const h = new TelemetryHistory({ path, now: () => now, retentionDays: 3650 });
  const cols = (h.db.prepare('PRAGMA table_info(circuit_minute)').all() as { name: string }[]).map((c) => c.name);
  assert.deepEqual(cols.slice(-7), ['rtt_p50', 'rtt_p90', 'rtt_n', 'retrans_down', 'retrans_up', 'tcp_down', 'tcp_up']);
  assert.deepEqual(migrateHistory(h.db as SqliteDatabase), [], 'nothing left to add');
  const [p] = h.query({ scope: 'circuit', id: 'c1', from: START, to: START + 60 });
  assert.deepEqual([p!.downAvgBps, p!.downMaxBps, p!.dropsDown, p!.rttP50Ms, p!.retransDownPct], [5e6, 9e6, 3, null, null]);
  const nodeKeys: string[] = [];
  const circuitKeys = ['c1'];
  h.addRates(now, { downBps: 1e6, upBps: 0, nodeKeys, nodeDown: [], nodeUp: [], circuitKeys, circuitDown: [1e6], circuitUp: [0] });
  h.addQuality(now, { totals: undefined, nodeKeys, nodes: new Map(), circuitKeys, circuits: new Map([[0, { rttP50: 12, rttP90: 30, retransDown: 1, retransUp: 0, tcpDown: 100, tcpUp: 0 }]]) });
  h.flush();
  const rows = h.query({ scope: 'circuit', id: 'c1', from: START, to: START + 120 });
  assert.deepEqual(rows.map((r) => [r.t, r.rttP50Ms, r.retransDownPct]), [[START, null, null], [START + 60, 12, 1]]);
  h.close();
});
