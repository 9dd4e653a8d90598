// test-gate: shared (a browser against an in-process web server: no kernel state, no measured rates; see test/support/gate.ts)
/** The dashboard says "Shaping from last good inputs of <time>" with the reason while lqosd's status carries `lastGood`, and stops saying it when cleared. */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { type Browser, launchBrowser, shot } from '../support/browser.ts';
import { ADMIN, login, seedUsers } from '../support/users.ts';
import { startUiHarness, type UiHarness } from './helpers.ts';

let h: UiHarness;
let b: Browser;

before(async () => {
  h = await startUiHarness();
  b = await launchBrowser();
});
after(async () => {
  await b?.close();
  await h?.close();
});

test('dashboard shows the last-good fallback with the refused file and line', async () => {
  const { page } = b;
  await seedUsers(h);
  await login(page, h.base, ADMIN);
  await page.goto(`${h.base}/`);
  await page.getByTestId('plan-summary').waitFor();
  assert.equal(await page.getByTestId('last-good').count(), 0, 'nothing shown while the current inputs are in force');

  const at = '2026-03-04T05:06:07.000Z';
  h.shaping.lastGood = { at, since: new Date().toISOString(), reason: '/opt/libreqos/ShapedDevices.csv line 1: the header row is missing required column "Circuit ID"', file: '/opt/libreqos/ShapedDevices.csv', line: 1 };
  await page.reload();
  await page.getByTestId('last-good').waitFor();
  const text = await page.getByTestId('last-good').innerText();
  assert.match(text, /^Shaping from last good inputs of /);
  assert.match(text, /2026/, 'the time of the last good inputs');
  assert.match(text, /ShapedDevices\.csv line 1: the header row is missing/);
  await shot(page, '60-dashboard-last-good');

  delete h.shaping.lastGood;
  await page.reload();
  await page.getByTestId('plan-summary').waitFor();
  // The live status channel shares one payload per push interval (lib/web/channels.ts), so a new
  // page may first get the one computed just before the change: gone within the next push (2 s).
  await page.getByTestId('last-good').waitFor({ state: 'detached', timeout: 6000 });
  assert.equal(await page.getByTestId('last-good').count(), 0);
});
