// test-gate: shared (a browser against an in-process web server: no kernel state, no measured rates; see test/support/gate.ts)
/**
 * First run → admin → login → every page renders the dataset; screenshots; search; privacy mode on
 * every page (and across a reload); theme toggle.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { bodyText, type Browser, launchBrowser, shot } from '../support/browser.ts';
import { ADMIN, login, readSetupToken } from '../support/users.ts';
import { leakedPii, SITE_NAMES, startUiHarness, SUBSCRIBERS, type UiHarness } from './helpers.ts';

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

const mbps = (n: number) => `${Number(n.toFixed(3))} Mbps`;

test('first run creates the admin, logout, login', async () => {
  const { page } = b;
  await page.goto(`${h.base}/`);
  await page.waitForURL('**/first-run');
  await page.getByTestId('first-run-form').waitFor();
  // The page says where the setup token is; without it nothing is created.
  await page.getByTestId('setup-token-hint').getByText(`sudo cat ${h.setupTokenFile}`).waitFor();
  await shot(page, '01-first-run');
  await page.fill('input[name=username]', ADMIN.username);
  await page.fill('input[name=password]', ADMIN.password);
  await page.fill('input[name=confirm]', ADMIN.password);
  await page.fill('input[name=token]', 'not-the-token');
  await page.click('button[type=submit]');
  await page.getByRole('alert').getByText(/wrong setup token/i).waitFor();
  assert.ok((await page.getByRole('alert').innerText()).includes(h.setupTokenFile));
  await page.fill('input[name=token]', readSetupToken(h));
  await page.click('button[type=submit]');
  await page.getByTestId('current-user').waitFor();
  assert.equal(await page.getByTestId('current-user').innerText(), 'admin');

  await page.getByTestId('logout').click();
  await page.waitForURL('**/login');
  await page.getByTestId('login-form').waitFor();
  // wrong password is refused with a message
  await page.fill('input[name=username]', ADMIN.username);
  await page.fill('input[name=password]', 'wrong-password');
  await page.click('button[type=submit]');
  await page.getByRole('alert').waitFor();
  assert.match(await page.getByRole('alert').innerText(), /invalid username or password/i);
  await shot(page, '02-login');
  await login(page, h.base, ADMIN);
  assert.equal(new URL(page.url()).pathname, '/');
});

test('dashboard shows shaping, scheduler, urgent summary and top circuits', async () => {
  const { page } = b;
  const status = await (await page.request.get(`${h.base}/api/status`)).json();
  await page.goto(`${h.base}/`);
  await page.getByTestId('plan-summary').waitFor();
  assert.match(await page.getByTestId('plan-summary').innerText(), new RegExp(`^4 circuits, ${status.plan.nodes} nodes`));
  assert.match(await page.getByTestId('leaf-fallbacks').innerText(), /cake → fq_codel/);
  assert.equal(status.shapingStatus.xdp[1].mode, 'generic');
  assert.match(await page.getByTestId('xdp-modes').innerText(), /eth1 \(download\): native\s*eth0 \(upload\): generic/);
  assert.match(await page.getByTestId('xdp-program').innerText(), /^lqos_xdp_nometa: this kernel does not let XDP pass the class to tc/);
  // lqos_overrides.json in effect: the count, then the list on demand.
  const overrides = page.getByTestId('overrides');
  assert.match(await overrides.locator('summary').innerText(), /^2 changes from lqos_overrides\.json\s*1 not applied$/);
  assert.equal(await overrides.locator('li').first().isVisible(), false, 'the list opens on demand');
  await overrides.locator('summary').click();
  assert.match(await overrides.innerText(), /circuit 1001: Download Max Mbps = 77[\s\S]*not applied: circuit_adjustments\[2\]/);
  await shot(page, '03b-dashboard-overrides');
  await overrides.locator('summary').click();
  assert.match(await page.getByTestId('scheduler-card').innerText(), /healthy/);
  const top = page.getByTestId('top-circuits');
  await top.getByText('Green Valley Bakery').waitFor();
  // the largest plan first, with the plan rate of the API
  const firstRow = await top.locator('tbody tr').first().innerText();
  assert.match(firstRow, /Green Valley Bakery/);
  assert.match(firstRow, new RegExp(mbps(500)));
  if (h.channels.names().includes('throughput')) {
    await page.getByTestId('throughput-chart').waitFor();
  } else {
    await page.getByTestId('telemetry-unavailable').waitFor();
  }
  await shot(page, '03-dashboard');
});

test('network tree expands and shows limits from the API', async () => {
  const { page } = b;
  const api = await (await page.request.get(`${h.base}/api/network-tree`)).json();
  await page.goto(`${h.base}/tree`);
  const table = page.getByTestId('tree-table');
  await table.waitFor();
  const downtown = api.nodes.find((n: { name: string }) => n.name === 'Downtown');
  const row = table.locator('tr[data-path="Downtown"]');
  assert.match(await row.innerText(), new RegExp(`${mbps(downtown.download.rateMbps)} / ${mbps(downtown.download.ceilMbps)}`));
  // The Circuits column counts the subtree: Downtown has none of its own, 3 under its towers.
  assert.equal((await row.locator('td').nth(1).innerText()).trim(), '3');
  assert.equal((await table.locator('tr[data-path="Downtown/Tower_North"] td').nth(1).innerText()).trim(), '2');
  // children of top-level nodes are visible, circuits of Tower_North are not until expanded
  await table.locator('tr[data-path="Downtown/Tower_North"]').waitFor();
  assert.equal(await table.getByText('Maria Lopez').count(), 0);
  await table.locator('tr[data-path="Downtown/Tower_North"]').getByTestId('tree-toggle').click();
  await table.getByText('Maria Lopez').waitFor();
  await table.locator('tr[data-path="Downtown/Tower_North"]').getByTestId('tree-toggle').click();
  assert.equal(await table.getByText('Maria Lopez').count(), 0);
  await page.getByRole('button', { name: 'Expand all' }).click();
  await table.getByText('Priya Raman').waitFor();
  await shot(page, '04-network-tree');
});

test('circuit page shows the plan, class ids and devices of the API', async () => {
  const { page } = b;
  const api = await (await page.request.get(`${h.base}/api/circuits/c-1002`)).json();
  await page.goto(`${h.base}/circuit/c-1002`);
  await page.getByTestId('circuit-name').waitFor();
  assert.match(await page.getByTestId('circuit-name').innerText(), /Jonathan Whitaker/);
  assert.equal(await page.getByTestId('plan-down-max').innerText(), mbps(api.download.ceilMbps));
  assert.equal(await page.getByTestId('plan-up-max').innerText(), mbps(api.upload.ceilMbps));
  assert.equal(await page.getByTestId('plan-down-min').innerText(), mbps(api.download.rateMbps));
  assert.equal(await page.getByTestId('class-down').innerText(), api.classId.download);
  assert.equal(await page.getByTestId('class-up').innerText(), api.classId.upload);
  const devices = await page.getByTestId('circuit-devices').innerText();
  for (const d of SUBSCRIBERS[1].devices) {
    assert.ok(devices.includes(d.name), d.name);
    assert.ok(devices.includes(d.ipv4), d.ipv4);
    assert.ok(devices.includes(d.mac), d.mac);
  }
  assert.ok(devices.includes('77 Harbor View Road'));
  await shot(page, '05-circuit');

  await page.goto(`${h.base}/circuit/no-such-circuit`);
  await page.getByText('Circuit not found').waitFor();
  await page.locator('.note', { hasText: /no-such-circuit is not in the applied plan\. It may have been removed/ }).waitFor({ timeout: 5_000 });
});

test('shaped devices, configuration and users pages render', async () => {
  const { page } = b;
  await page.goto(`${h.base}/shaped-devices`);
  await page.getByTestId('devices-table').waitFor();
  assert.equal(await page.getByTestId('devices-table').locator('tbody tr').count(), 5);
  assert.match(await page.getByTestId('devices-table').innerText(), /Priya Raman/);
  await shot(page, '06-shaped-devices');

  await page.goto(`${h.base}/config/general`);
  await page.locator('input[name=node_name]').waitFor();
  assert.equal(await page.locator('input[name=node_name]').inputValue(), 'test-node');
  assert.equal(await page.locator('[data-value-of="long_term_stats.license_key"]').innerText(), 'set');
  assert.ok(!(await bodyText(page)).includes('LTS-LICENSE-222'));
  await shot(page, '07-config-general');

  await page.goto(`${h.base}/config/interfaces`);
  await page.locator('input[name="bridge.to_internet"]').waitFor();
  assert.equal(await page.locator('input[name="bridge.to_internet"]').inputValue(), 'eth0');
  assert.equal(await page.locator('input[name="bridge.to_network"]').inputValue(), 'eth1');
  await shot(page, '08-config-interfaces');

  await page.goto(`${h.base}/config/queues`);
  await page.locator('input[name="queues.override_available_queues"]').waitFor();
  assert.equal(await page.locator('input[name="queues.override_available_queues"]').inputValue(), '2');
  assert.equal(await page.locator('input[name="queues.dry_run"]').isChecked(), true);
  await shot(page, '09-config-queues');

  await page.goto(`${h.base}/users`);
  await page.getByTestId('users-table').locator('tbody tr').first().waitFor();
  assert.match(await page.getByTestId('users-table').innerText(), /admin \(you\)/);
  await shot(page, '10-users');
});

test('search finds circuits, devices, IPs and sites', async () => {
  const { page } = b;
  await page.goto(`${h.base}/`);
  const search = page.getByTestId('search');
  await search.fill('lopez');
  const results = page.getByTestId('search-results');
  await results.getByText('Maria Lopez', { exact: true }).waitFor();
  await search.fill('100.64.20');
  await results.getByText('100.64.20.21').waitFor();
  await search.fill('Tower_S');
  await results.getByText('Tower_South', { exact: true }).waitFor();
  await search.fill('02:1a:2b:3c:4d:05');
  await results.getByText('Bakery POS').waitFor();
  await search.press('Enter');
  await page.waitForURL('**/circuit/c-1004');
  await page.getByTestId('circuit-name').getByText('Green Valley Bakery').waitFor();

  // An address inside a circuit's routed IPv6 /56 (not listed anywhere as such) finds its circuit.
  await search.fill('2001:db8:20:0:abcd::7');
  await results.getByText('Priya Raman').waitFor();
  await shot(page, '11-search-subnet');
  await search.press('Enter');
  await page.waitForURL('**/circuit/c-1003');
  // The exact address first: Enter on 100.64.10.12 opens its owner, whatever else starts with it.
  await search.fill('100.64.10.12');
  await results.getByText('100.64.10.12').waitFor();
  assert.match(await results.locator('li').first().innerText(), /100\.64\.10\.12\s+Jonathan Whitaker/);
  await search.press('Enter');
  await page.waitForURL('**/circuit/c-1002');
});

test('privacy mode hides subscriber data on every page, survives a reload and turns off again', async () => {
  const { page } = b;
  h.ctx.urgent.submit({ source: 'LibreQoS', severity: 'warning', code: 'IP_CONFLICT', message: 'Maria Lopez (100.64.10.11, 02:1a:2b:3c:4d:01) seen twice' });
  await page.goto(`${h.base}/`);
  const toggle = page.getByTestId('privacy-toggle');
  assert.equal(await toggle.getAttribute('aria-pressed'), 'false');
  await toggle.click();
  assert.equal(await toggle.getAttribute('aria-pressed'), 'true');
  assert.equal(await page.evaluate(() => localStorage.getItem('redact')), 'true');

  const pages: [string, string][] = [
    ['/', '[data-testid=top-circuits] tbody tr'],
    ['/tree', '[data-testid=tree-table]'],
    ['/circuit/c-1001', '[data-testid=circuit-devices]'],
    ['/circuit/c-1002', '[data-testid=circuit-devices]'],
    ['/circuit/c-1003', '[data-testid=circuit-devices]'],
    ['/shaped-devices', '[data-testid=devices-table]'],
    ['/network', '[data-testid=network-privacy]'],
    ['/config/general', 'input[name=node_name]'],
    ['/config/interfaces', 'input[name="bridge.to_internet"]'],
    ['/config/queues', 'input[name="queues.dry_run"]'],
    ['/users', '[data-testid=users-table]'],
  ];
  for (const [path, ready] of pages) {
    await page.goto(`${h.base}${path}`);
    await page.locator(ready).first().waitFor();
    if (path === '/tree') await page.getByRole('button', { name: 'Expand all' }).click();
    if (path === '/') {
      await page.getByTestId('urgent-card').getByText('IP_CONFLICT').waitFor();
      await page.getByTestId('overrides').locator('summary').click(); // the overrides' list, open
    }
    assert.deepEqual(await leakedPii(page), [], `privacy leak on ${path}`);
    const text = await bodyText(page);
    assert.deepEqual(SITE_NAMES.filter((n) => text.includes(n)), [], `site name shown on ${path} in privacy mode`);
    if (path === '/' || path === '/circuit/c-1001' || path === '/tree') await shot(page, `11-privacy${path.replace(/\//g, '-').replace(/-$/, '')}`);
  }
  // the tree still lists the circuits, masked
  await page.goto(`${h.base}/tree`);
  await page.getByRole('button', { name: 'Expand all' }).click();
  assert.ok((await bodyText(page)).includes('••••••'));

  // search results and the urgent issue modal
  await page.goto(`${h.base}/`);
  await page.getByTestId('search').fill('lopez');
  await page.getByTestId('search-results').locator('li a').first().waitFor();
  assert.deepEqual(await leakedPii(page), [], 'privacy leak in search results');
  await page.getByTestId('search').fill('100.64.10');
  await page.getByTestId('search-results').locator('li a').first().waitFor();
  assert.deepEqual(await leakedPii(page), [], 'privacy leak in IP search results');
  await page.getByTestId('search').fill('Tower_N');
  await page.getByTestId('search-results').locator('li a').first().waitFor();
  const found = await page.getByTestId('search-results').innerText();
  assert.deepEqual(SITE_NAMES.filter((n) => found.includes(n)), [], `site name in search results: ${found}`);
  await page.getByTestId('search').press('Escape');
  await page.getByTestId('urgent-indicator').click();
  await page.getByTestId('urgent-list').waitFor();
  assert.match(await page.getByTestId('urgent-list').innerText(), /IP_CONFLICT/);
  assert.deepEqual(await leakedPii(page), [], 'privacy leak in urgent issues');
  await page.keyboard.press('Escape');

  // reload keeps it on
  await page.goto(`${h.base}/circuit/c-1001`);
  await page.reload();
  await page.getByTestId('circuit-devices').waitFor();
  assert.equal(await page.getByTestId('privacy-toggle').getAttribute('aria-pressed'), 'true');
  assert.deepEqual(await leakedPii(page), []);

  // off again: the data is back
  await page.getByTestId('privacy-toggle').click();
  const text = await bodyText(page);
  for (const s of ['Maria Lopez', '100.64.10.11', '02:1a:2b:3c:4d:01', '1423 Oak Street, Springfield', '2001:db8:10::/56']) assert.ok(text.includes(s), s);
  assert.equal(await page.evaluate(() => localStorage.getItem('redact')), 'false');
});

test('theme toggle switches light/dark and is remembered', async () => {
  const { page } = b;
  await page.goto(`${h.base}/`);
  await page.getByTestId('plan-summary').waitFor();
  const before = await page.evaluate(() => document.documentElement.dataset.theme);
  assert.equal(before, 'dark');
  await page.getByTestId('theme-toggle').click();
  assert.equal(await page.evaluate(() => document.documentElement.dataset.theme), 'light');
  await page.reload();
  await page.getByTestId('plan-summary').waitFor();
  assert.equal(await page.evaluate(() => document.documentElement.dataset.theme), 'light');
  await shot(page, '12-dashboard-light');
  await page.getByTestId('theme-toggle').click();
  assert.equal(await page.evaluate(() => localStorage.getItem('theme')), 'dark');
  assert.deepEqual(b.errors, []);
});
