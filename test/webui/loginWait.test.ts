// test-gate: shared (a browser against an in-process web server: no kernel state, no measured rates; see test/support/gate.ts)
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

test('after guesses for the user from many places the page says so, and where it can still log in', async () => {
  const h2 = await startWebHarness({
    prefix: 'lqos-webui-wait-user-',
    config: (dir) => webConfig(dir, '[web]\ntrust_proxy = true\n'),
    devices: devicesCsv(),
    network: `${JSON.stringify(NETWORK, null, 2)}\n`,
    webRoot: DIST,
    loginLimits: { accountMaxFailures: 3 },
  });
  try {
    await seedUsers(h2);
    // Three guesses for the admin, each from another address (through the local proxy this harness trusts).
    for (let i = 1; i <= 3; i++) {
      const r = await fetch(`${h2.base}/api/auth/login`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'x-forwarded-for': `203.0.113.${i}` },
        body: JSON.stringify({ username: ADMIN.username, password: `guess-${i}-xxxx` }),
      });
      assert.equal(r.status, 401);
    }
    const { page } = b;
    await page.goto(`${h2.base}/login`);
    const form = page.getByTestId('login-form');
    await form.locator('input[name=username]').fill(ADMIN.username);
    await form.locator('input[name=password]').fill(ADMIN.password);
    await form.getByRole('button', { name: 'Log in' }).click();
    const alert = form.getByRole('alert');
    // An hour's wait reads in minutes.
    await alert.getByText(/Too many failed logins for this user from many places\. Try again in (60|61) min, or from a place you logged in from before\./).waitFor();
    assert.equal(await form.getByRole('button', { name: 'Log in' }).isDisabled(), true);
    await shot(page, 'login-wait-user');
  } finally {
    await h2.close();
  }
});
