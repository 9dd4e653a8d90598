// test-gate: shared (a browser against an in-process web server: no kernel state, no measured rates; see test/support/gate.ts)
/**
 * An open UI across an lqosd restart (issue 18, failure 1): the page says it is disconnected while
 * the server is down, reconnects by itself to the same session afterwards (sessions are saved in
 * web_sessions.json), and when the session did not survive it goes to the login page saying so
 * instead of retrying forever.
 */
import assert from 'node:assert/strict';
import { existsSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { SESSIONS_FILE, startWebServer, type WebServer } from '../../lib/web/server.ts';
import { type Browser, DIST, shot } from '../support/browser.ts';
import { browserAsAdmin, closeUi, startUiHarness, type UiHarness } from './helpers.ts';

let h: UiHarness;
let b: Browser;
let restarted: WebServer | undefined;

before(async () => {
  h = await startUiHarness();
  b = await browserAsAdmin(h);
});
after(async () => {
  await restarted?.close();
  await closeUi(b, h);
});

async function stopServer(): Promise<void> {
  if (restarted) {
    await restarted.close();
    restarted = undefined;
  } else {
    await h.server.close();
  }
}

async function startServer(): Promise<void> {
  restarted = await startWebServer(h.ctx, { host: '127.0.0.1', port: Number(new URL(h.base).port), webRoot: DIST, wsIntervalMs: 300 });
}

test('lqosd restarts under an open page: "Disconnected" while down, then the same session carries on without a login', async () => {
  const { page } = b;
  await page.goto(`${h.base}/`);
  await page.getByTestId('plan-summary').waitFor();
  await page.getByTestId('node-name').waitFor();
  assert.equal(await page.getByTestId('connection-lost').count(), 0, 'connected: no disconnected notice');

  await stopServer();
  assert.ok(existsSync(join(h.dir, 'state', SESSIONS_FILE)), 'the sessions are saved when the server stops');
  await page.getByTestId('connection-lost').waitFor({ timeout: 10_000 });
  assert.match(await page.getByTestId('connection-lost').innerText(), /Disconnected · reconnecting/);
  await shot(page, 'session-restart-disconnected');

  await startServer();
  await page.getByTestId('connection-lost').waitFor({ state: 'detached', timeout: 20_000 });
  assert.equal(new URL(page.url()).pathname, '/', 'still on the dashboard, not sent to the login page');
  assert.equal(await page.getByTestId('current-user').innerText(), 'admin');
  // The restored session works for data routes too.
  await page.getByRole('link', { name: 'Shaped Devices' }).click();
  await page.getByText('Maria Lopez').first().waitFor({ timeout: 10_000 });
  await shot(page, 'session-restart-reconnected');
});

test('a session that did not survive the restart: the page goes to the login page and says the session ended', async () => {
  const { page } = b;
  await page.goto(`${h.base}/`);
  await page.getByTestId('plan-summary').waitFor();
  await stopServer();
  rmSync(join(h.dir, 'state', SESSIONS_FILE), { force: true });
  await startServer();
  await page.getByTestId('login-form').waitFor({ timeout: 20_000 });
  assert.match(await page.getByTestId('login-form').innerText(), /Your session has ended .* Log in again\./);
  await shot(page, 'session-restart-ended');
});
