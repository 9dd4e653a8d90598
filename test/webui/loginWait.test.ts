/**
 * The login page after too many failed logins (issue 18, item 7): it says how long to wait and counts
 * down, and the button stays disabled until then.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { type Browser, DIST, ensureBuilt, launchBrowser, shot } from '../support/browser.ts';
import { webConfig } from '../support/configs.ts';
import { ADMIN, seedUsers } from '../support/users.ts';
import { startWebHarness, type WebHarness } from '../support/web.ts';
import { devicesCsv, NETWORK } from './helpers.ts';

let h: WebHarness;
let b: Browser;

before(async () => {
  ensureBuilt();
  h = await startWebHarness({
    prefix: 'lqos-webui-wait-',
    config: (dir) => webConfig(dir),
    devices: devicesCsv(),
    network: `${JSON.stringify(NETWORK, null, 2)}\n`,
    webRoot: DIST,
    // One free failure, then 20 s: long enough to watch the countdown.
    loginLimits: { pairFreeFailures: 1, backoffBaseMs: 20_000 },
  });
  await seedUsers(h);
  b = await launchBrowser();
});
after(async () => {
  await b?.close();
  await h?.close();
});

test('after a failed login the page says how long to wait, counts down and keeps the button disabled', async () => {
  const { page } = b;
  await page.goto(`${h.base}/login`);
  const form = page.getByTestId('login-form');
  await form.locator('input[name=username]').fill(ADMIN.username);
  await form.locator('input[name=password]').fill('wrong-password-1');
  await form.getByRole('button', { name: 'Log in' }).click();
  await form.getByText('invalid username or password').waitFor();

  await form.locator('input[name=password]').fill(ADMIN.password);
  await form.getByRole('button', { name: 'Log in' }).click();
  const alert = form.getByRole('alert');
  await alert.getByText(/Try again in \d+ s\./).waitFor();
  const first = Number(/in (\d+) s/.exec(await alert.innerText())![1]);
  assert.ok(first >= 15 && first <= 21, `waits about 20 s (${first})`);
  assert.equal(await form.getByRole('button', { name: 'Log in' }).isDisabled(), true, 'no retry before the wait is over');
  await shot(page, 'login-wait');
  await page.waitForTimeout(2500);
  const later = Number(/in (\d+) s/.exec(await alert.innerText())![1]);
  assert.ok(later <= first - 2, `counts down (${first} → ${later})`);
});
