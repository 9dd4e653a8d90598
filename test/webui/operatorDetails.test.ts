// test-gate: shared (a browser against an in-process web server: no kernel state, no measured rates; see test/support/gate.ts)
/**
 * Small things an operator notices (issue 18, item 8): a scheduler that never reported turns amber
 * after 30 s instead of staying grey, the footer names the lqosd version, the window title the node.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { ago } from '../../webui/src/lib/format.ts';
import { type Browser, DIST, ensureBuilt, launchBrowser, shot } from '../support/browser.ts';
import { webConfig } from '../support/configs.ts';
import { ADMIN, login, seedUsers } from '../support/users.ts';
import { startWebHarness, type WebHarness } from '../support/web.ts';
import { devicesCsv, NETWORK } from './helpers.ts';

let b: Browser;
const harnesses: WebHarness[] = [];

/** lqosd started `startedAgoMs` ago; its scheduler never reported. */
async function silentScheduler(startedAgoMs: number): Promise<WebHarness> {
  ensureBuilt();
  const h = await startWebHarness({
    prefix: 'lqos-webui-silent-',
    config: (dir) => webConfig(dir),
    devices: devicesCsv(),
    network: `${JSON.stringify(NETWORK, null, 2)}\n`,
    startedAt: new Date(Date.now() - startedAgoMs),
    webRoot: DIST,
    wsIntervalMs: 300,
  });
  harnesses.push(h);
  await seedUsers(h);
  return h;
}

before(async () => {
  b = await launchBrowser();
});
after(async () => {
  await b?.close();
  for (const h of harnesses) await h.close();
});

test('a scheduler that never reported: grey at first, amber once lqosd has been up 30 s, saying what to check', async () => {
  const fresh = await silentScheduler(1000);
  await login(b.page, fresh.base, ADMIN);
  const ind = b.page.getByTestId('scheduler-indicator');
  await ind.waitFor();
  assert.equal(await ind.getAttribute('data-health'), 'unknown');
  assert.doesNotMatch((await ind.getAttribute('class')) ?? '', /\bwarn\b/, 'just started: not amber yet');

  const old = await silentScheduler(45_000);
  await b.page.getByTestId('logout').click();
  await login(b.page, old.base, ADMIN);
  await b.page.waitForSelector('[data-testid=scheduler-indicator].warn', { timeout: 10_000 });
  await ind.click();
  assert.match(await b.page.getByTestId('scheduler-silent').innerText(), /not reported .* \(over 30 s ago\): is it running\? systemctl status lqos_scheduler/);
  await shot(b.page, 'scheduler-silent-amber');
});

test('the footer names the lqosd version; the title names the node', async () => {
  const { page } = b;
  await page.getByTestId('footer').getByText('0.1.0-test').waitFor();
  assert.match(await page.getByTestId('footer').innerText(), /^lqos-ts 0\.1\.0-test · LibreQoS-compatible shaper$/);
  assert.match(await page.title(), /test-node/);
});

test('the top bar stays on one line at 1400 px wide (as at 1920 px)', async () => {
  const { page } = b;
  const heightAt = async (width: number) => {
    await page.setViewportSize({ width, height: 900 });
    await page.goto(`${harnesses[1]!.base}/`);
    await page.getByTestId('plan-summary').waitFor();
    return (await page.locator('header.topnav').boundingBox())!.height;
  };
  const wide = await heightAt(1920);
  const narrow = await heightAt(1400);
  assert.ok(wide < 70, `one line at 1920 px is under 70 px high (${wide})`);
  assert.equal(narrow, wide, 'at 1400 px the bar must not wrap onto a second line');
  await shot(page, 'topbar-1400');
  await page.setViewportSize({ width: 1400, height: 900 });
});

test('at phone width (390 px) no page is wider than the screen: wide tables scroll inside their card', async () => {
  const { page } = b;
  await page.setViewportSize({ width: 390, height: 844 });
  const base = harnesses[1]!.base;
  for (const [path, ready] of [['/', '[data-testid=top-circuits]'], ['/tree', '[data-testid=tree-table]'], ['/shaped-devices', '[data-testid=devices-table]']] as const) {
    await page.goto(`${base}${path}`);
    await page.locator(ready).first().waitFor();
    const { scroll, client } = await page.evaluate(() => ({ scroll: document.documentElement.scrollWidth, client: document.documentElement.clientWidth }));
    assert.ok(scroll <= client, `${path} is ${scroll} px wide on a ${client} px screen`);
    if (path === '/tree') await shot(page, 'phone-tree');
  }
  await page.setViewportSize({ width: 1400, height: 900 });
});

test('"ago" of a time a little ahead of the browser clock says "just now", not "in 2s"', () => {
  const now = Date.parse('2026-12-05T12:00:00Z');
  assert.equal(ago('2026-12-05T12:00:02Z', now), 'just now');
  assert.equal(ago('2026-12-05T11:59:30Z', now), '30s ago');
  assert.equal(ago('2026-12-05T12:10:00Z', now), 'in 10m');
});
