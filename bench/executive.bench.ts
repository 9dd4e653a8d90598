/**
 * `node --import tsx bench/executive.bench.ts`: GET /api/executive over a seeded history store —
 * 2,000 circuits (BENCH_EXEC_CIRCUITS) and every node of the generated network with a row every
 * minute for 7 days (the worst case: every circuit active all the time; test/telemetry/historySeed.ts),
 * on lqosd's web server. Prints the seeding, the database size, and per range the API time (the
 * first request, then median (min–max) of 4 more: the circuits' closed hours are kept after the first)
 * and each query timed once directly (circuits: one query over the whole window, for comparison).
 * BENCH_EXEC_DB=path keeps the seeded file there and reuses it on the next run.
 */
import { existsSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { generateDataset } from './dataset.ts';
import { EXECUTIVE_RANGES, type ExecutiveRange } from '../lib/api/executive.ts';
import { executiveCeilings, executiveNodes, executiveTotals } from '../lib/telemetry/executive.ts';
import { TelemetryHistory } from '../lib/telemetry/history.ts';
import { executiveWindow } from '../lib/web/routes/executive.ts';
import { Client } from '../test/support/http.ts';
import { seedHistory } from '../test/telemetry/historySeed.ts';
import { ADMIN, firstRun } from '../test/support/users.ts';
import { startWebHarness } from '../test/support/web.ts';
import { fmtSpread, machineLine } from './stats.ts';

const RUNS = 5;
const circuits = Number(process.env.BENCH_EXEC_CIRCUITS ?? 2000);
const minutes = 7 * 1440;
const ds = generateDataset({ circuits, seed: 3 });
const h = await startWebHarness({ prefix: 'lqos-execbench-', devices: ds.shapedDevicesCsv, network: ds.networkJson, queues: 4 });
const path = process.env.BENCH_EXEC_DB ?? join(h.dir, 'telemetry.sqlite');
const reuse = existsSync(path);
const store = new TelemetryHistory({ path, retentionDays: 8 });
try {
  console.log(`Executive summary API, ${circuits} circuits, ${h.plan.nodes.length} nodes, 7 days of minute rows; ${machineLine()}`);
  const endS = Math.floor(Date.now() / 60_000) * 60;
  if (!reuse) {
    const t0 = performance.now();
    const rows = seedHistory(store.db, { startS: endS - minutes * 60, minutes, nodes: h.plan.nodes.map((n) => n.path), circuits: h.plan.circuits.map((c) => c.id) });
    console.log(`  seeded ${rows.toLocaleString()} rows in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
    // lqosd's minute flushes keep the WAL small (auto-checkpoint); one seeding transaction leaves it at GBs.
    store.db.pragma('wal_checkpoint(TRUNCATE)');
  } else console.log(`  reusing ${path} (seeded earlier; its newest minute may be older than now)`);
  console.log(`  database ${(statSync(path).size / 1e9).toFixed(2)} GB`);
  h.ctx.history = () => ({ store, flush: () => store.flush() });
  if ((await firstRun(h)).status !== 201) throw new Error('first-run failed');
  const api = new Client(h.base);
  if ((await api.post('/api/auth/login', ADMIN)).status !== 200) throw new Error('login failed');
  for (const range of Object.keys(EXECUTIVE_RANGES) as ExecutiveRange[]) {
    const times: number[] = [];
    let body = '';
    const blocked: number[] = [];
    for (let i = 0; i < RUNS; i++) {
      // The longest the event loop (lqosd's 1 Hz sampling) waited during the request.
      let last = performance.now();
      let gap = 0;
      const tick = setInterval(() => {
        const now = performance.now();
        gap = Math.max(gap, now - last);
        last = now;
      }, 5);
      const t = performance.now();
      const r = await api.get(`/api/executive?range=${range}`);
      times.push(performance.now() - t);
      clearInterval(tick);
      blocked.push(Math.max(gap, performance.now() - last));
      if (r.status !== 200) throw new Error(`executive ${r.status} ${r.text}`);
      body = r.text;
    }
    const w = executiveWindow(range, Math.floor(Date.now() / 1000));
    const part = (fn: () => unknown) => {
      const t = performance.now();
      fn();
      return performance.now() - t;
    };
    const nodes = h.plan.nodes.map((n) => ({ path: n.path, downMbps: n.download.ceilMbps, upMbps: n.upload.ceilMbps }));
    const cs = h.plan.circuits.map((c) => ({ id: c.id, downMbps: c.download.ceilMbps }));
    const split = {
      totals: part(() => executiveTotals(store.db, w)),
      nodes: part(() => executiveNodes(store.db, w, nodes, (p) => p)),
      circuits: part(() => executiveCeilings(store.db, w, cs)),
    };
    console.log(
      `  range ${range}: API first ${times[0]!.toFixed(0)} ms, then ${fmtSpread(times.slice(1))} (${(body.length / 1024).toFixed(1)} kB); ` +
        `longest event-loop stall: first ${blocked[0]!.toFixed(0)} ms, then ${Math.max(...blocked.slice(1)).toFixed(0)} ms; ` +
        `each query once: totals ${split.totals.toFixed(0)} ms, nodes ${split.nodes.toFixed(0)} ms, circuits in one query over the window ${split.circuits.toFixed(0)} ms`,
    );
  }
} finally {
  store.close();
  await h.close();
}
