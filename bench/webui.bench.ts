/**
 * `npm run bench:webui`: time to first render of the web UI with 10k circuits (and 1k for
 * comparison): lqosd's web server with an applied plan of N circuits, Debian's chromium headless.
 * Prints: dashboard first render (navigation → plan summary and top circuits visible), network
 * tree, and search over all circuits. (The dashboard's JS budget is checked by test/webui/bundle.test.ts.)
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { generateDataset } from './dataset.ts';
import { runPipeline } from '../lib/pipeline.ts';
import { loadConfig } from '../lib/config/load.ts';
import { planConfigFromLqos } from '../lib/plan/planConfig.ts';
import { startWebServer } from '../lib/web/server.ts';
import { configText, FakeScheduler, FakeUrgentStore } from '../test/web/helpers.ts';
import { ADMIN, DIST, ensureBuilt, launchBrowser, login } from '../test/webui/helpers.ts';

async function run(circuits: number) {
  const dir = mkdtempSync(join(tmpdir(), 'lqos-uibench-'));
  const ds = generateDataset({ circuits, seed: 3 });
  writeFileSync(join(dir, 'ShapedDevices.csv'), ds.shapedDevicesCsv);
  writeFileSync(join(dir, 'network.json'), ds.networkJson);
  const configPath = join(dir, 'lqos.conf');
  writeFileSync(configPath, configText(dir));
  const config = loadConfig({ path: configPath }).config;
  const r = runPipeline({
    devicesText: ds.shapedDevicesCsv,
    devicesFile: 'ShapedDevices.csv',
    networkText: ds.networkJson,
    networkFile: 'network.json',
    config: planConfigFromLqos(config, { download: 'eth1', upload: 'eth0', onAStick: false }, 4),
  });
  if (!r.ok) throw new Error(`plan failed at ${r.stage}`);
  const plan = r.plan;
  const ctx = {
    log: pino({ level: 'silent' }),
    configPath,
    config: () => config,
    reloadConfig: async () => undefined,
    urgent: new FakeUrgentStore(),
    scheduler: new FakeScheduler(),
    appliedPlan: () => plan,
    shapingStatus: () => ({}),
    startedAt: new Date(),
    version: 'bench',
  };
  const server = await startWebServer(ctx, { host: '127.0.0.1', port: 0, webRoot: DIST });
  const b = await launchBrowser();
  try {
    const res = await fetch(`${server.address}/api/auth/first-run`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(ADMIN) });
    if (res.status !== 201) throw new Error(`first-run ${res.status}`);
    await login(b.page, server.address, ADMIN);
    const page = b.page;
    const times = { dashboard: [] as number[], tree: [] as number[], search: [] as number[] };
    for (let i = 0; i < 3; i++) {
      let t0 = performance.now();
      await page.goto(`${server.address}/`);
      await page.getByTestId('plan-summary').waitFor();
      await page.locator('[data-testid=top-circuits] tbody tr').first().waitFor();
      times.dashboard.push(performance.now() - t0);
      t0 = performance.now();
      await page.goto(`${server.address}/tree`);
      await page.locator('[data-testid=tree-table]').waitFor();
      times.tree.push(performance.now() - t0);
      t0 = performance.now();
      const search = page.getByPlaceholder(/search/i).first();
      await search.fill(plan.circuits[Math.floor(plan.circuits.length / 2)]!.name.slice(0, 8));
      await page.waitForFunction(() => document.querySelectorAll('[data-testid=search-results] li, [role=option]').length > 0, undefined, { timeout: 10_000 }).catch(() => undefined);
      times.search.push(performance.now() - t0);
    }
    const med = (xs: number[]) => [...xs].sort((a, c) => a - c)[1]!;
    return { circuits: plan.circuits.length, dashboard: med(times.dashboard), tree: med(times.tree), search: med(times.search) };
  } finally {
    await b.close();
    await server.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

ensureBuilt();
console.log('web UI first render (median of 3, headless chromium, this machine):');
for (const n of [1000, 10000]) {
  const r = await run(n);
  console.log(
    `  ${String(r.circuits).padStart(6)} circuits: dashboard ${r.dashboard.toFixed(0)} ms, network tree ${r.tree.toFixed(0)} ms, search ${r.search.toFixed(0)} ms`,
  );
}
