/**
 * `npm run bench:webui`: time to first render of the web UI with 10k circuits (and 1k for
 * comparison): lqosd's web server with an applied plan of N circuits, Debian's chromium headless.
 * Prints: dashboard first render (navigation → plan summary and top circuits visible), network
 * tree, and search over all circuits. (The dashboard's JS budget is checked by test/webui/bundle.test.ts.)
 */
import { generateDataset } from './dataset.ts';
import { DIST, ensureBuilt, launchBrowser } from '../test/support/browser.ts';
import { ADMIN, firstRun, login } from '../test/support/users.ts';
import { startWebHarness } from '../test/support/web.ts';

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
    for (let i = 0; i < 3; i++) {
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
      await page.waitForFunction(() => document.querySelectorAll('[data-testid=search-results] li, [role=option]').length > 0, undefined, { timeout: 10_000 }).catch(() => undefined);
      times.search.push(performance.now() - t0);
    }
    const med = (xs: number[]) => [...xs].sort((a, c) => a - c)[1]!;
    return { circuits: plan.circuits.length, dashboard: med(times.dashboard), tree: med(times.tree), search: med(times.search) };
  } finally {
    await b.close();
    await h.close();
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
