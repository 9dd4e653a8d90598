/**
 * `npm run bench:webui`: time to first render of the web UI with 10k circuits (and 1k for
 * comparison): lqosd's web server with an applied plan of N circuits, Debian's chromium headless.
 * Prints: dashboard first render (navigation → plan summary and top circuits visible), network
 * tree, and search over all circuits: median (min–max) of 5 navigations each. A search that shows no
 * result fails the bench (it is not timed as a timeout). Sets no targets (prints the empty target
 * table). (The dashboard's JS budget is checked by test/webui/bundle.test.ts.)
 */
import { generateDataset } from './dataset.ts';
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

ensureBuilt();
console.log(`web UI first render, median (min–max) of ${NAVIGATIONS}, headless chromium; ${machineLine()}`);
for (const n of [1000, 10000]) {
  const r = await run(n);
  console.log(
    `  ${String(r.circuits).padStart(6)} circuits: dashboard ${fmtSpread(r.dashboard)}, network tree ${fmtSpread(r.tree)}, search ${fmtSpread(r.search)}`,
  );
}
new Targets().report();
