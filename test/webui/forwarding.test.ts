// test-gate: shared (a browser against an in-process web server: no kernel state, no measured rates; see test/support/gate.ts)
/**
 * The forwarding mode in force (lqosd's shapingStatus.forwarding, issue 12) in operator words: on
 * the dashboard for each mode, "not attached" without one, and on the interfaces config page next
 * to the use_xdp_bridge toggle, whose help says what it changes and that lqosd must restart. Lazy
 * queues in force (shapingStatus.lazyQueues) on the dashboard: counts and how circuits get built.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
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

test('dashboard: the forwarding mode in force, in words, for each mode', async () => {
  const { page } = b;
  const cases = [
    { status: { mode: 'linux-bridge', toInternet: 'eth0', toNetwork: 'eth1', bridge: 'br0' }, text: 'Linux bridge (br0) — lqos-ts classifies only', shot: '70-forwarding-linux-bridge' },
    { status: { mode: 'xdp-bridge', toInternet: 'eth0', toNetwork: 'eth1' }, text: 'XDP bridge: lqos-ts forwards between eth0 and eth1', shot: '71-forwarding-xdp-bridge' },
    { status: { mode: 'stick', interface: 'eth0', internetVlan: 2, networkVlan: 3 }, text: 'On a stick: eth0, VLAN 2 ↔ 3', shot: '72-forwarding-stick' },
  ] as const;
  for (const c of cases) {
    h.shaping.forwarding = c.status;
    // A new websocket subscriber may be served the status payload cached up to one tick (2 s) before
    // the change (lib/web/channels.ts); past that age it is produced again.
    await new Promise((r) => setTimeout(r, 2100));
    const api = await (await page.request.get(`${h.base}/api/status`)).json();
    assert.deepEqual(api.shapingStatus.forwarding, c.status);
    await page.goto(`${h.base}/`);
    const dd = page.getByTestId('forwarding-mode');
    // The status channel may first push the payload computed before the change (lib/web/channels.ts).
    await page.waitForFunction((want) => document.querySelector('[data-testid=forwarding-mode]')?.textContent?.trim() === want, c.text, { timeout: 6000 });
    assert.equal((await dd.innerText()).trim(), c.text);
    assert.match((await dd.getAttribute('title')) ?? '', c.status.mode === 'linux-bridge' ? /Linux bridge forwards/ : c.status.mode === 'stick' ? /VLAN 2 \(Internet side\)/ : /redirects every frame/);
    await shot(page, c.shot);
  }
  delete h.shaping.forwarding;
  await new Promise((r) => setTimeout(r, 2100)); // past the cached payload's age, as above
  await page.goto(`${h.base}/`);
  await page.getByTestId('forwarding-mode').waitFor({ state: 'detached', timeout: 6000 });
  assert.match(await page.getByTestId('shaping-card').innerText(), /Forwarding\s+not attached/);
});

test('interfaces config page: the mode in force next to the use_xdp_bridge toggle and its help', async () => {
  const { page } = b;
  h.shaping.forwarding = { mode: 'xdp-bridge', toInternet: 'eth0', toNetwork: 'eth1' };
  await page.goto(`${h.base}/config/interfaces`);
  await page.waitForFunction(() => /XDP bridge/.test(document.querySelector('[data-testid=forwarding-in-force]')?.textContent ?? ''), null, { timeout: 6000 });
  assert.equal((await page.getByTestId('forwarding-in-force').innerText()).trim(), 'XDP bridge: lqos-ts forwards between eth0 and eth1');
  const text = await page.locator('main, body').first().innerText();
  assert.match(text, /Use the XDP bridge/);
  assert.match(text, /On: lqos-ts forwards between the two interfaces itself; take them out of any Linux bridge first/);
  assert.match(text, /Takes effect when lqosd restarts\./);
  await shot(page, '73-config-interfaces-forwarding');
  delete h.shaping.forwarding;
});

test('dashboard: lazy queues in force, with counts and how a circuit gets built; absent when off', async () => {
  const { page } = b;
  const cases = [
    {
      status: { mode: 'Full', circuits: 10003, materialised: 1, lazy: 10002, created: 4, expired: 3, firstPacketReports: true, reported: 4 },
      text: /^Full — 1 of 10,003 circuits built now; 4 built, 3 removed since lqosd started\s+The others get their class and SQM leaf on their first packet \(reported by the dataplane: 4 so far\)\.$/,
      shot: 'lazy-queues-full',
    },
    {
      status: { mode: 'Htb', circuits: 2, materialised: 0, lazy: 2, created: 0, expired: 0, firstPacketReports: false, reported: 0 },
      text: /^Htb — 0 of 2 circuits built now; 0 built, 0 removed since lqosd started\s+The others get their SQM leaf at the 1 s telemetry tick after their traffic starts \(no first-packet reports: lazy_threshold_bytes is set, or no dataplane is attached\)\.$/,
      shot: 'lazy-queues-htb-tick',
    },
  ] as const;
  for (const c of cases) {
    h.shaping.lazyQueues = c.status;
    await new Promise((r) => setTimeout(r, 2100)); // past the cached status payload's age (see above)
    await page.goto(`${h.base}/`);
    await page.waitForFunction((mode) => (document.querySelector('[data-testid=lazy-queues]')?.textContent ?? '').trim().startsWith(`${mode} —`), c.status.mode, { timeout: 6000 });
    assert.match((await page.getByTestId('lazy-queues').innerText()).trim(), c.text);
    await shot(page, c.shot);
  }
  delete h.shaping.lazyQueues;
  await new Promise((r) => setTimeout(r, 2100));
  await page.goto(`${h.base}/`);
  await page.getByTestId('lazy-queues').waitFor({ state: 'detached', timeout: 6000 });
  assert.doesNotMatch(await page.getByTestId('shaping-card').innerText(), /Lazy queues/);
});
