// test-gate: shared (CPU only; see test/support/gate.ts)
/**
 * GET /api/executive over a SQLite store seeded with chosen minute rows (./executiveSeed.ts): every
 * table's order and figures are known exactly (weighted RTT averages, retransmit shares, peaks
 * against the plan, minutes at ≥ 95 % of the ceil with the boundary row, ties, limits, the rows
 * outside the range, nodes and circuits not in the plan); the top ASNs of flow tracking's snapshot;
 * validation, roles, no history, no plan.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import type { ExecutiveResponse } from '../../lib/api/executive.ts';
import type { FlowSnapshot } from '../../lib/api/flows.ts';
import { EXECUTIVE_RULES, executiveCeilings, executiveNodes, executiveNodesInPieces, rankNodes, timeSlices, type ReadPieces } from '../../lib/telemetry/executive.ts';
import { CeilingHours } from '../../lib/telemetry/executiveHours.ts';
import { TelemetryHistory } from '../../lib/telemetry/history.ts';
import { executiveWindow } from '../../lib/web/routes/executive.ts';
import { Client } from '../support/http.ts';
import { setupUsers } from '../support/users.ts';
import { startWebHarness, type WebHarness } from '../support/web.ts';
import { putMinute } from './executiveSeed.ts';

const pad = (k: number) => String(k).padStart(2, '0');
const SITES = Array.from({ length: 12 }, (_, i) => `S${pad(i + 1)}`);
const NETWORK = { Region: { downloadBandwidthMbps: 10000, uploadBandwidthMbps: 5000, children: Object.fromEntries(SITES.map((s) => [s, { downloadBandwidthMbps: 100, uploadBandwidthMbps: 50 }])) } };
const CIRCUITS = Array.from({ length: 26 }, (_, i) => `c${pad(i + 1)}`);
const parentOf = (k: number) => SITES[(k - 1) % 12]!;
const DEVICES = [
  'Circuit ID,Circuit Name,Device ID,Device Name,Parent Node,MAC,IPv4,IPv6,Download Min Mbps,Upload Min Mbps,Download Max Mbps,Upload Max Mbps,Comment',
  ...CIRCUITS.map((c, i) => `${c},Customer ${pad(i + 1)},d${pad(i + 1)},CPE ${pad(i + 1)},${parentOf(i + 1)},,100.64.1.${i + 1},,5,1,100,20,`),
].join('\n');

const NOW_MIN = Math.floor(Date.now() / 60_000) * 60;
const R = NOW_MIN - 7200; // recent rows: two hours ago
const OLD = NOW_MIN - 3 * 86_400; // in 7d, not in 24h
const ANCIENT = NOW_MIN - 8 * 86_400; // in neither

let h: WebHarness;
let store: TelemetryHistory;
let admin: Client;
let viewer: Client;

function seed(db: TelemetryHistory['db']): void {
  SITES.forEach((s, i) => {
    const k = i + 1;
    const path = `Region/${s}`;
    const rx = { tcpDown: 10_000, tcpUp: 10_000, retransDown: 10 * (12 - k), retransUp: 5 * (12 - k) };
    putMinute(db, 'node', path, R, { rttP50: 10 * k, rttP90: 20 * k, rttN: 6, ...rx, downMax: k * 10e6, upMax: k === 3 ? 65e6 : 1e6 });
    putMinute(db, 'node', path, R + 60, { rttP50: 10 * k + 20, rttP90: 20 * k + 40, rttN: 2, ...rx, downMax: k * 5e6, upMax: 0.5e6 });
  });
  // Too few RTT captures and TCP packets to rank; 20 % of its plan (1 Gbps, the link's).
  putMinute(db, 'node', 'Region', R, { rttP50: 500, rttP90: 900, rttN: 5, tcpDown: 300, tcpUp: 100, retransDown: 200, downMax: 200e6, upMax: 100e6 });
  putMinute(db, 'node', 'Gone', R, { rttP50: 999, rttN: 60, tcpDown: 1e6, retransDown: 1e5, downMax: 1e12 });
  putMinute(db, 'node', 'Region/S01', OLD, { rttP50: 900, rttP90: 1800, rttN: 60, downMax: 1000e6 });
  putMinute(db, 'node', 'Region/S02', ANCIENT, { rttP50: 5000, rttN: 600, tcpDown: 1e6, retransDown: 1e5, downMax: 1e12 });
  // c01..c24: 25 minutes with traffic, k of them at exactly 95 % of the 100 Mbps ceil, the rest just under.
  for (let k = 1; k <= 24; k++) {
    for (let i = 0; i < 25; i++) {
      const v = i < k ? { downMax: 95e6 } : k === 24 && i === 24 ? { downMax: 0, upMax: 5e6 } : { downMax: 94.9e6 };
      putMinute(db, 'circuit', CIRCUITS[k - 1]!, R + i * 60, v);
    }
  }
  putMinute(db, 'circuit', 'c24', R + 25 * 60, { dropsDown: 5 }); // no traffic: not a minute with traffic
  for (let i = 0; i < 9; i++) putMinute(db, 'circuit', 'c25', R + i * 60, { downMax: 100e6 }); // too few minutes
  for (let i = 0; i < 50; i++) putMinute(db, 'circuit', 'c26', R + i * 60, { downMax: i < 48 ? 99e6 : 1e6 }); // 96 %, like c24
  for (let i = 0; i < 100; i++) putMinute(db, 'circuit', 'c-gone', R + i * 60, { downMax: 1e12 });
  for (let i = 0; i < 30; i++) putMinute(db, 'circuit', 'c01', OLD + i * 60, { downMax: 100e6 });
  // Totals: 60 minutes (the first half-sampled), a download peak at minute 37 and an upload peak at 12.
  for (let i = 0; i < 60; i++) {
    putMinute(db, 'totals', '', R + i * 60, {
      samples: i === 0 ? 30 : 60, downAvg: (i + 1) * 1e6, upAvg: (i + 1) * 1e5,
      downMax: i === 37 ? 500e6 : (i + 1) * 2e6, upMax: i === 12 ? 90e6 : (i + 1) * 2e5,
    });
  }
  putMinute(db, 'totals', '', OLD, { downAvg: 1e6, downMax: 900e6, upMax: 1e6 });
  putMinute(db, 'totals', '', ANCIENT, { downAvg: 1e9, downMax: 5000e6, upMax: 1e9 });
}

const ASNS = [3, 7, 1, 12, 5, 9, 11, 2, 8, 4, 10, 6].map((k) => ({
  asn: 64500 + k, name: `AS-${k}`, country: 'NL', flows: k, bytes: { down: k * 1000, up: k === 2 ? 20_000 : k }, rateBps: { down: k * 8, up: 0 },
  rttMs: null, retransmits: 0, tcpPackets: 0, retransmitPct: null,
}));

before(async () => {
  h = await startWebHarness({ prefix: 'lqos-exec-', devices: `${DEVICES}\n`, network: JSON.stringify(NETWORK) });
  store = new TelemetryHistory({ path: join(h.dir, 'state', 'telemetry.sqlite'), retentionDays: 30 });
  seed(store.db);
  h.ctx.history = () => ({ store, flush: () => store.flush() });
  ({ admin, viewer } = await setupUsers(h));
});
after(async () => {
  store?.close();
  await h?.close();
});

async function executive(range?: string, who = admin): Promise<ExecutiveResponse> {
  const r = await who.get(`/api/executive${range ? `?range=${range}` : ''}`);
  assert.equal(r.status, 200, r.text);
  return r.json as ExecutiveResponse;
}

const near = (a: number | null, b: number, what: string) => assert.ok(a !== null && Math.abs(a - b) < 1e-9, `${what}: ${a} vs ${b}`);

test('the plan in force: 100 Mbps sites and circuits (the expectations below rely on it)', () => {
  assert.deepEqual(h.plan.nodes.map((n) => [n.path, n.download.ceilMbps, n.upload.ceilMbps]), [['Region', 1000, 1000], ...SITES.map((s) => [`Region/${s}`, 100, 50])], 'Region capped at the 1 Gbps link');
  assert.deepEqual([...new Set(h.plan.circuits.map((c) => c.download.ceilMbps))], [100]);
});

test('24h: worst sites by RTT (weighted by captures), by retransmits, most loaded nodes; limits and exclusions', async () => {
  const minuteBefore = Math.floor(Date.now() / 60_000) * 60;
  const r = await executive();
  const minuteAfter = Math.floor(Date.now() / 60_000) * 60;
  assert.equal(r.range, '24h');
  assert.equal(r.to - r.from, 86_400);
  // The window ends after the current minute (the clock's, at the request: a minute may have turned
  // since the rows were seeded relative to NOW_MIN).
  assert.ok(r.to % 60 === 0 && r.to >= minuteBefore + 60 && r.to <= minuteAfter + 60, `to ${r.to}: not the end of the minute ${minuteBefore}–${minuteAfter}`);
  assert.deepEqual([r.history, r.plan], [true, 'applied']);
  const ks = (from: number, to: number) => Array.from({ length: from - to + 1 }, (_, i) => from - i);
  assert.deepEqual(r.worstRtt.map((s) => s.path), ks(12, 3).map((k) => `Region/S${pad(k)}`), 'RTT: highest p50 first, 10 rows, Region (5 captures) and Gone (not in the plan) left out');
  r.worstRtt.forEach((s, i) => {
    const k = 12 - i;
    assert.equal(s.name, `S${pad(k)}`);
    near(s.rttP50Ms, 10 * k + 5, `${s.path} p50`);
    near(s.rttP90Ms, 20 * k + 10, `${s.path} p90`);
    assert.equal(s.rttCaptures, 8);
  });
  assert.deepEqual(r.worstRetransmits.map((s) => s.path), ks(10, 1).reverse().map((k) => `Region/S${pad(k)}`), 'retransmits: highest share first; S12 (none) and Region (400 packets) left out');
  r.worstRetransmits.forEach((s, i) => {
    const k = i + 1;
    near(s.retransPct, (100 * 30 * (12 - k)) / 40_000, `${s.path} share`);
    near(s.retransDownPct, (100 * 20 * (12 - k)) / 20_000, `${s.path} down`);
    near(s.retransUpPct, (100 * 10 * (12 - k)) / 20_000, `${s.path} up`);
    assert.equal(s.tcpPackets, 40_000);
  });
  assert.deepEqual(
    r.oversubscribed.map((n) => [n.path, Math.round(n.downPct), Math.round(n.upPct)]),
    [['Region/S03', 30, 130], ...ks(12, 4).map((k) => [`Region/S${pad(k)}`, 10 * k, 2])],
    'peak against plan: the larger direction ranks (S03 upload 130 %); Region (20 %), S01, S02 below the 10 rows',
  );
  assert.deepEqual(r.oversubscribed[1], { path: 'Region/S12', name: 'S12', planDownMbps: 100, planUpMbps: 50, peakDownBps: 120e6, peakUpBps: 1e6, downPct: 120, upPct: 2 });
});

test('24h: circuits at ≥ 95 % of their ceil most of their minutes with traffic; ties by minutes; limits', async () => {
  const r = await executive('24h');
  const want = ['c26', ...Array.from({ length: 19 }, (_, i) => `c${pad(24 - i)}`)];
  assert.deepEqual(r.atCeiling.map((c) => c.id), want, 'c26 (48/50) before c24 (24/25); c25 (9 minutes), c-gone (not in the plan) and c05… left out');
  assert.deepEqual(r.atCeiling[0], { id: 'c26', name: 'Customer 26', parent: `Region/${parentOf(26)}`, ceilDownMbps: 100, activeMinutes: 50, atCeilingMinutes: 48, sharePct: 96, peakDownBps: 99e6 });
  for (const c of r.atCeiling.slice(1)) {
    const k = Number(c.id.slice(1));
    assert.deepEqual([c.activeMinutes, c.atCeilingMinutes, c.peakDownBps, c.name], [25, k, 95e6, `Customer ${pad(k)}`], c.id);
    near(c.sharePct, (100 * k) / 25, `${c.id} share`);
  }
});

/** Ways to cut the window: a few nodes/circuits × a few hours per statement, up to one statement per entity group. */
const PIECES: ReadPieces[] = [
  { entities: 1, seconds: 3600 },
  { entities: 3, seconds: 6 * 3600 },
  { entities: 7, seconds: 9 * 86_400 },
];

test('circuits by kept hours (read a few circuits over a few hours at a time) rank exactly as one query over the window, also after new minutes', async () => {
  const circuits = h.plan.circuits.map((c) => ({ id: c.id, downMbps: c.download.ceilMbps }));
  const kept = PIECES.map((p) => new CeilingHours(p));
  const check = async (what: string) => {
    for (const range of ['24h', '7d', '24h'] as const) {
      const w = executiveWindow(range, Math.floor(Date.now() / 1000));
      const whole = executiveCeilings(store.db, w, circuits);
      assert.equal(whole.length, 20);
      for (const [j, k] of kept.entries()) assert.deepEqual(await k.top(store.db, w, circuits), whole, `${what} ${range}, pieces ${JSON.stringify(PIECES[j])}`);
    }
  };
  // A minute near the 24h window's start (its first, partly covered hour: an edge read each time).
  const edge = executiveWindow('24h', Math.floor(Date.now() / 1000)).from + 120;
  putMinute(store.db, 'circuit', 'c24', edge, { downMax: 95e6 });
  await check('first');
  const c24 = (await kept[1]!.top(store.db, executiveWindow('24h', Math.floor(Date.now() / 1000)), circuits)).find((c) => c.id === 'c24')!;
  assert.deepEqual([c24.atCeilingMinutes, c24.activeMinutes], [25, 26], 'the edge minute counts');
  await check('kept'); // the closed hours now come from memory
  // The minute in progress (lqosd writes only that one; never a kept hour): c06 gets a 26th minute, its 7th at the ceiling.
  const now = Math.floor(Date.now() / 60_000) * 60;
  putMinute(store.db, 'circuit', 'c06', now, { downMax: 96e6 });
  await check('after the minute in progress');
  const w = executiveWindow('24h', now);
  assert.ok((await kept[0]!.top(store.db, w, circuits)).some((c) => c.id === 'c06' && c.atCeilingMinutes === 7 && c.activeMinutes === 26), 'c06 counted with its new minute');
  store.db.prepare('DELETE FROM circuit_minute WHERE circuit = ? AND ts = ?').run('c06', now);
  store.db.prepare('DELETE FROM circuit_minute WHERE circuit = ? AND ts = ?').run('c24', edge);
});

test('nodes read in pieces (a few nodes over a few hours per statement, the event loop free in between) rank as the one query over the window', async () => {
  const nodes = h.plan.nodes.map((n) => ({ path: n.path, downMbps: n.download.ceilMbps, upMbps: n.upload.ceilMbps }));
  // More rows in the 7d window only (S11 and S12: each one more minute).
  putMinute(store.db, 'node', 'Region/S11', OLD + 60, { rttP50: 700, rttP90: 800, rttN: 40, downMax: 1e6 });
  putMinute(store.db, 'node', 'Region/S12', OLD + 60, { rttP50: 700, rttP90: 800, rttN: 40, downMax: 1e6 });
  try {
    for (const range of ['24h', '7d'] as const) {
      const w = executiveWindow(range, Math.floor(Date.now() / 1000));
      const whole = executiveNodes(store.db, w, nodes, (p) => `name of ${p}`);
      assert.ok(whole.worstRtt.length >= 10 && whole.worstRetransmits.length > 0 && whole.oversubscribed.length >= 10, JSON.stringify(whole).slice(0, 300));
      for (const p of PIECES) {
        // Event-loop turns during the call (one per turn: the callback queues itself for the next).
        let ticks = 0;
        let on = true;
        const turn = () => {
          ticks++;
          if (on) setImmediate(turn);
        };
        setImmediate(turn);
        const got = await executiveNodesInPieces(store.db, w, nodes, (x) => `name of ${x}`, undefined, p);
        on = false;
        const at = `${range}, pieces ${JSON.stringify(p)}`;
        // The same rows in the same order; the figures equal up to the order of the floating-point additions.
        for (const table of ['worstRtt', 'worstRetransmits', 'oversubscribed'] as const) {
          assert.deepEqual(got[table].map((r) => r.path), whole[table].map((r) => r.path), `${at}: ${table} order`);
          got[table].forEach((r, i) => {
            for (const [k, v] of Object.entries(r)) {
              const want = (whole[table][i] as unknown as Record<string, unknown>)[k];
              if (typeof v === 'number' && typeof want === 'number') near(v, want, `${at}: ${table}[${i}].${k}`);
              else assert.deepEqual(v, want, `${at}: ${table}[${i}].${k}`);
            }
          });
        }
        if (p.entities === 1 && p.seconds === 3600) assert.ok(ticks >= 100, `${at}: the event loop turned ${ticks} times between the statements (${nodes.length} nodes × hours)`);
        if (p.seconds > 7 * 86_400) assert.ok(ticks <= Math.ceil(nodes.length / p.entities) + 1, `${at}: ${ticks} turns for ${Math.ceil(nodes.length / p.entities)} statements`);
      }
    }
  } finally {
    store.db.prepare('DELETE FROM node_minute WHERE node IN (?, ?) AND ts = ?').run('Region/S11', 'Region/S12', OLD + 60);
  }
});

test('rankNodes: the SQL definition\'s order — key descending, ties by the node path\'s bytes (not the locale); limits and filters', () => {
  const agg = (node: string, o: Partial<Parameters<typeof rankNodes>[0][number]>) => ({
    kind: 'load' as const, node, dceil: 100e6, uceil: 50e6, r50: 100, r90: 200, rn: 10, rd: 0, ru: 0, pd: 0, pu: 0, dmax: 10e6, umax: 1e6, ...o,
  });
  // Same RTT, same load, same retransmit share: BINARY order puts 'Region/S2' (0x53) before 'Region/s1' (0x73).
  const rows = [agg('Region/s1', { rd: 10, pd: 2000 }), agg('Region/S2', { rd: 10, pd: 2000 }), agg('Region/few', { rn: 5, r50: 1e6 }), agg('Region/low', { r50: 50, rd: 1, pd: 2000 })];
  const r = rankNodes(rows, EXECUTIVE_RULES);
  const of = (k: string) => r.filter((x) => x.kind === k).map((x) => x.node);
  assert.deepEqual(of('rtt'), ['Region/S2', 'Region/s1', 'Region/low'], 'Region/few has too few RTT captures');
  assert.deepEqual(of('retrans'), ['Region/S2', 'Region/s1', 'Region/low'], 'Region/few has no TCP packets');
  assert.deepEqual(of('load'), ['Region/S2', 'Region/few', 'Region/low', 'Region/s1']);
  assert.equal(rankNodes(Array.from({ length: 15 }, (_, i) => agg(`N${i}`, {})), EXECUTIVE_RULES).filter((x) => x.kind === 'rtt').length, EXECUTIVE_RULES.siteLimit);
  assert.throws(() => timeSlices(0, 100, 0), /positive/);
  assert.deepEqual(timeSlices(0, 100, 40), [[0, 40], [40, 80], [80, 100]]);
});

test('24h and 7d totals: average weighted by samples, peaks and their minute; older rows only in 7d', async () => {
  const r = await executive('24h');
  const samples = (i: number) => (i === 0 ? 30 : 60);
  const n = Array.from({ length: 60 }, (_, i) => samples(i)).reduce((a, b) => a + b, 0);
  const avg = (f: (i: number) => number) => Math.round(Array.from({ length: 60 }, (_, i) => f(i) * samples(i)).reduce((a, b) => a + b, 0) / n);
  assert.deepEqual(r.totals, {
    minutes: 60, downAvgBps: avg((i) => (i + 1) * 1e6), upAvgBps: avg((i) => (i + 1) * 1e5),
    downPeakBps: 500e6, downPeakAt: R + 37 * 60, upPeakBps: 90e6, upPeakAt: R + 12 * 60,
  });
  const w = await executive('7d');
  assert.equal(w.to - w.from, 7 * 86_400);
  assert.deepEqual([w.totals!.minutes, w.totals!.downPeakBps, w.totals!.downPeakAt], [61, 900e6, OLD]);
  assert.equal(w.worstRtt[0]!.path, 'Region/S01', '7d: the old minute of S01 (900 ms, 60 captures) counts');
  near(w.worstRtt[0]!.rttP50Ms, (6 * 10 + 2 * 30 + 60 * 900) / 68, 'S01 7d p50');
  assert.deepEqual([w.oversubscribed[0]!.path, w.oversubscribed[0]!.downPct], ['Region/S01', 1000]);
  // c01 over 7 days: 31 of 55 minutes (56.4 %) goes between c15 (60 %) and c14 (56 %).
  const ids = w.atCeiling.map((c) => c.id);
  assert.deepEqual(ids, ['c26', ...Array.from({ length: 10 }, (_, i) => `c${pad(24 - i)}`), 'c01', ...Array.from({ length: 8 }, (_, i) => `c${pad(14 - i)}`)]);
  assert.deepEqual([w.atCeiling[11]!.activeMinutes, w.atCeiling[11]!.atCeilingMinutes], [55, 31]);
});

test('top ASNs by bytes of the tracked flows now; tracking off says so', async () => {
  assert.deepEqual((await executive()).asns, { tracking: false, at: null, rows: [] });
  h.ctx.flows = () => ({ at: 1234, asns: ASNS }) as unknown as FlowSnapshot;
  try {
    const { asns } = await executive();
    assert.equal(asns.tracking, true);
    assert.equal(asns.at, 1234);
    // bytes down + up: AS-2 has 2,000 + 20,000; then 12, 11, … by k·1000 + k.
    assert.deepEqual(asns.rows.map((a) => a.name), ['AS-2', 'AS-12', 'AS-11', 'AS-10', 'AS-9', 'AS-8', 'AS-7', 'AS-6', 'AS-5', 'AS-4']);
    assert.deepEqual(asns.rows[1], { asn: 64512, name: 'AS-12', country: 'NL', flows: 12, bytesDown: 12_000, bytesUp: 12, rateDownBps: 96, rateUpBps: 0 });
  } finally {
    delete h.ctx.flows;
  }
});

test('validation, roles, no history, no plan', async () => {
  for (const q of ['?range=30d', '?range=1h', '?range=7', '?range=24h&x=1']) assert.equal((await admin.get(`/api/executive${q}`)).status, 400, q);
  assert.equal((await new Client(h.base).get('/api/executive')).status, 401);
  assert.equal((await executive('7d', viewer)).range, '7d', 'read-only users read it');
  const source = h.ctx.history;
  h.ctx.history = () => undefined;
  try {
    const r = await executive();
    assert.deepEqual([r.history, r.totals, r.worstRtt, r.atCeiling], [false, null, [], []]);
  } finally {
    h.ctx.history = source;
  }
  const applied = h.ctx.appliedPlan;
  h.ctx.appliedPlan = () => undefined;
  try {
    const r = await executive();
    assert.deepEqual([r.plan, r.totals!.minutes, r.worstRtt, r.oversubscribed, r.atCeiling], ['none', 60, [], [], []]);
  } finally {
    h.ctx.appliedPlan = applied;
  }
});
