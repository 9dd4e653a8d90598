/**
 * The network.json editor: a valid edit is written (file re-read), an invalid one shows the
 * server's line/key message and leaves the file unchanged, and a read-only user sees no control.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { type Browser, launchBrowser, shot } from '../support/browser.ts';
import { ADMIN, login, seedUsers, VIEWER } from '../support/users.ts';
import { startUiHarness, type UiHarness } from './helpers.ts';

let h: UiHarness;
let b: Browser;
const file = () => join(h.dir, 'network.json');

before(async () => {
  h = await startUiHarness();
  await seedUsers(h);
  b = await launchBrowser();
  b.page.on('dialog', (d) => void d.accept());
});
after(async () => {
  await b?.close();
  await h?.close();
});

test('admin edits network.json: a valid change is saved, an invalid one is refused with the line', async () => {
  const { page } = b;
  await login(page, h.base, ADMIN);
  await page.goto(`${h.base}/network`);
  const area = page.getByTestId('network-text');
  await area.waitFor();
  const net = JSON.parse(await area.inputValue());
  net.Riverside.downloadBandwidthMbps = 750;
  await area.fill(JSON.stringify(net, null, 2));
  await page.getByTestId('network-save').click();
  await page.getByTestId('network-notice').waitFor();
  assert.equal(JSON.parse(readFileSync(file(), 'utf8')).Riverside.downloadBandwidthMbps, 750);
  await shot(page, '70-network-editor');

  const before = readFileSync(file(), 'utf8');
  net.Riverside.downloadBandwidthMbps = -5;
  await area.fill(JSON.stringify(net, null, 2));
  await page.getByTestId('network-save').click();
  await page.getByTestId('network-issues').waitFor();
  const text = await page.getByTestId('network-issues').innerText();
  assert.match(text, /network\.json, line \d+/);
  assert.match(text, /downloadBandwidthMbps/);
  assert.equal(readFileSync(file(), 'utf8'), before, 'an invalid network.json was written');

  await area.fill('{ "broken": ');
  await page.getByTestId('network-parse-error').waitFor();
  assert.equal(await page.getByTestId('network-save').isDisabled(), true);
});

test('a read-only user sees the layout but no editing control', async () => {
  const { page } = b;
  await page.getByTestId('logout').click();
  await page.waitForURL('**/login');
  await login(page, h.base, VIEWER);
  await page.goto(`${h.base}/network`);
  await page.getByTestId('network-view').waitFor();
  assert.equal(await page.locator('[data-edit]').count(), 0);
  assert.match(await page.getByTestId('network-view').innerText(), /Riverside|downloadBandwidthMbps/);
});
