// test-gate: shared (a browser against an in-process web server: no kernel state, no measured rates; see test/support/gate.ts)
/**
 * A tab over lqosd's websocket limit (8 per login session): the server closes its socket with the
 * reason ("… close other tabs"). The page says so in the top bar and backs off (1, 2, 4 … s) instead
 * of reconnecting every second with "Connecting…" on every card and no word why; once a tab is
 * closed, the refused one gets its live connection and the notice goes.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import type { Page } from 'playwright-core';
import { type Browser, shot } from '../support/browser.ts';
import { browserAsAdmin, closeUi, startUiHarness, type UiHarness } from './helpers.ts';

let h: UiHarness;
let b: Browser;

before(async () => {
  h = await startUiHarness();
  b = await browserAsAdmin(h);
});
after(async () => {
  await closeUi(b, h);
});

test('the ninth tab of a session is refused a live connection: the top bar gives the reason, it backs off, and it connects once a tab closes', async () => {
  const { context, page } = b;
  await page.goto(`${h.base}/`);
  await page.getByTestId('connection-refused').waitFor({ state: 'detached' });
  const tabs: Page[] = [];
  for (let i = 0; i < 7; i++) {
    const p = await context.newPage();
    await p.goto(`${h.base}/`);
    tabs.push(p);
  }
  await page.waitForTimeout(500);
  const ninth = await context.newPage();
  let upgrades = 0;
  ninth.on('websocket', () => upgrades++);
  await ninth.goto(`${h.base}/`);
  const notice = ninth.getByTestId('connection-refused');
  await notice.waitFor({ timeout: 10_000 });
  assert.match(await notice.innerText(), /^Live updates refused: this session already has 8 websockets open \(the limit\); close other tabs$/);
  const seen = upgrades;
  await ninth.waitForTimeout(6000);
  // Backing off 1, 2, 4 s: at most 3 more attempts in 6 s (it was one a second).
  assert.ok(upgrades - seen <= 3, `${upgrades - seen} websocket attempts in 6 s after the refusal`);
  await shot(ninth, 'ws-refused');
  for (const t of tabs) assert.equal(await t.getByTestId('connection-refused').count(), 0, 'the first eight tabs are connected');

  await tabs.pop()!.close();
  await notice.waitFor({ state: 'detached', timeout: 20_000 });
  assert.equal(await ninth.getByTestId('connection-lost').count(), 0);
  for (const t of tabs) await t.close();
  await ninth.close();
});
