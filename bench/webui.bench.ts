/**
 * `npm run bench:webui`: time to first render of the web UI with 10k circuits (and 1k for
 * comparison): lqosd's web server with an applied plan of N circuits, Debian's chromium headless.
 * Prints: dashboard first render (navigation → plan summary and top circuits visible), network
 * tree, and search over all circuits: median (min–max) of 5 navigations each. A search that shows no
 * result fails the bench (it is not timed as a timeout). (The dashboard's JS budget is checked by
 * test/webui/bundle.test.ts.)
 * History (2,000 circuits, 30 days in the store): GET /api/history?range=30d for one circuit and for
 * the network, and the History page until its charts are drawn; target ≤ 500 ms each (median).
 * `BENCH_WEBUI=history` runs only that part.
 */
import { join } from 'node:path';
import { generateDataset } from './dataset.ts';
import { TelemetryHistory } from '../lib/telemetry/history.ts';
import { Client } from '../test/support/http.ts';
import { seedHistory } from '../test/telemetry/historySeed.ts';
import { DIST, ensureBuilt, launchBrowser } from '../test/support/browser.ts';
import { ADMIN, firstRun, login } from '../test/support/users.ts';
import { startWebHarness } from '../test/support/web.ts';
import { fmtSpread, machineLine, Targets } from './stats.ts';

const NAVIGATIONS = 5;

async function run(circuits: number) {
  const ds = generateDataset({ circuits, seed: 3 });
  const h = await startWebHarness({ prefix: 'lqos-uibench-', devices: ds.shapedDevicesCsv, network: ds.networkJson, queues: 4, webRoot: DIST });
  const { plan, base } = h;
  const b = await launchBrowser();
  try {
    const res = await firstRun(h);
    if (res.status !== 201) throw new Error(`first-run ${res.status}`);
    await login(b.page, base, ADMIN);
    const page = b.page;
    const times = { dashboard: [] as number[], tree: [] as number[], search: [] as number[] };
    for (let i = 0; i < NAVIGATIONS; i++) {
      let t0 = performance.now();
      await page.goto(`${base}/`);
      await page.getByTestId('plan-summary').waitFor();
      await page.locator('[data-testid=top-circuits] tbody tr').first().waitFor();
      times.dashboard.push(performance.now() - t0);
      t0 = performance.now();
      await page.goto(`${base}/tree`);
      await page.locator('[data-testid=tree-table]').waitFor();
      times.tree.push(performance.now() - t0);
      t0 = performance.now();
      const search = page.getByPlaceholder(/search/i).first();
      await search.fill(plan.circuits[Math.floor(plan.circuits.length / 2)]!.name.slice(0, 8));
      await page.waitForFunction(() => document.querySelectorAll('[data-testid=search-results] li, [role=option]').length > 0, undefined, { timeout: 10_000 }).catch((e: Error) => {
        throw new Error(`search showed no result within 10 s (${circuits} circuits): ${e.message}`);
      });
      times.search.push(performance.now() - t0);
    }
    return { circuits: plan.circuits.length, ...times };
  } finally {
    await b.close();
    await h.close();
  }
}

/**
 * History of 30 days: totals and every node for 30 days, the measured circuit for 30 days, every other
 * circuit for its last day (per-circuit retention defaults to 7 days; the query reads one circuit's rows).
 */
async function history(circuits: number, targets: Targets) {
  const ds = generateDataset({ circuits, seed: 3 });
  const h = await startWebHarness({ prefix: 'lqos-histbench-', devices: ds.shapedDevicesCsv, network: ds.networkJson, queues: 4, webRoot: DIST });
  const store = new TelemetryHistory({ path: join(h.dir, 'telemetry.sqlite'), retentionDays: 31, circuitRetentionDays: 31 });
  const b = await launchBrowser();
  try {
    const minutes = 30 * 1440;
    const startS = Math.floor(Date.now() / 60_000) * 60 - minutes * 60;
    const ids = h.plan.circuits.map((c) => c.id);
    const target = ids[Math.floor(ids.length / 2)]!;
    const t0 = performance.now();
    let rows = seedHistory(store.db, { startS, minutes, nodes: h.plan.nodes.map((n) => n.path), circuits: [target] });
    rows += seedHistory(store.db, { startS: startS + (minutes - 1440) * 60, minutes: 1440, circuits: ids.filter((id) => id !== target), totals: false });
    console.log(`  seeded ${rows.toLocaleString()} minute rows (${h.plan.nodes.length} nodes, ${ids.length} circuits) in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
    h.ctx.history = () => ({ store, flush: () => store.flush() });
    const res = await firstRun(h);
    if (res.status !== 201) throw new Error(`first-run ${res.status}`);
    const api = new Client(h.base);
    if ((await api.post('/api/auth/login', ADMIN)).status !== 200) throw new Error('login failed');
    await login(b.page, h.base, ADMIN);
    const page = b.page;
    for (const [what, q] of [['one circuit', `scope=circuit&id=${encodeURIComponent(target)}`], ['whole network', 'scope=network']] as const) {
      const times = { api: [] as number[], page: [] as number[], shell: [] as number[], data: [] as number[] };
      let points = 0;
      for (let i = 0; i < NAVIGATIONS; i++) {
        const t = performance.now();
        const r = await api.get(`/api/history?${q}&range=30d`);
        times.api.push(performance.now() - t);
        if (r.status !== 200) throw new Error(`history ${r.status} ${r.text}`);
        points = r.json.points.length;
        await page.goto('about:blank');
        await page.goto(`${h.base}/history?${q}&range=30d`, { waitUntil: 'commit' });
        // Timed in the page, from its navigation start, checked every animation frame: Playwright's
        // own waits poll at 20, 50, 100, 100, 500 ms steps, which added up to 100 ms to a phase.
        const at = (sel: string) => page.waitForFunction((s) => (document.querySelectorAll(s).length ? performance.now() : 0), sel, { polling: 'raf' }).then((r) => r.jsonValue());
        times.shell.push(await at('[data-testid=history-title]'));
        times.data.push(await at('[data-testid=history-summary]'));
        times.page.push(await page.waitForFunction(() => (document.querySelectorAll('.history-chart[data-drawn]').length === 4 ? performance.now() : 0), undefined, { polling: 'raf' }).then((r) => r.jsonValue()));
      }
      console.log(`  history 30 d, ${what} (${points} points): API ${fmtSpread(times.api)}, page (navigation → 4 charts painted) ${fmtSpread(times.page)}`);
      console.log(`    page phases: app shell and title ${fmtSpread(times.shell)}, data shown ${fmtSpread(times.data)}`);
      targets.atMost(`history 30 d ${what}: API`, times.api, 500);
      targets.atMost(`history 30 d ${what}: page`, times.page, 500);
    }
  } finally {
    await b.close();
    store.close();
    await h.close();
  }
}

ensureBuilt();
const targets = new Targets();
if (process.env.BENCH_WEBUI !== 'history') {
  console.log(`web UI first render, median (min–max) of ${NAVIGATIONS}, headless chromium; ${machineLine()}`);
  for (const n of [1000, 10000]) {
    const r = await run(n);
    console.log(
      `  ${String(r.circuits).padStart(6)} circuits: dashboard ${fmtSpread(r.dashboard)}, network tree ${fmtSpread(r.tree)}, search ${fmtSpread(r.search)}`,
    );
  }
}
console.log(`History page, median (min–max) of ${NAVIGATIONS}, headless chromium; ${machineLine()}`);
await history(2000, targets);
targets.report();
