// test-gate: shared (a browser against an in-process web server: no kernel state, no measured rates; see test/support/gate.ts)
/**
 * Editing: configuration values and shaped devices persist to the files; server-side validation errors
 * are shown with line/column; an enabled integration locks the devices editor; a read-only user sees
 * no editing control and gets 403 from the API.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { after, before, test } from 'node:test';
import type { Dialog } from 'playwright-core';
import { parse as parseToml } from 'smol-toml';
import { type Browser, launchBrowser, shot } from '../support/browser.ts';
import { SECRETS } from '../support/configs.ts';
import { login, VIEWER } from '../support/users.ts';
import { browserAsAdmin, closeUi, PII, startUiHarness, type UiHarness } from './helpers.ts';

let h: UiHarness;
let b: Browser;

before(async () => {
  h = await startUiHarness();
  b = await browserAsAdmin(h);
  b.page.on('dialog', (d) => void onDialog(d));
});
/** What the page's confirm() dialogs get (default: accepted). */
let onDialog: (d: Dialog) => Promise<void> = (d) => d.accept();
after(async () => {
  await closeUi(b, h);
});

const conf = () => parseToml(readFileSync(h.configPath, 'utf8')) as Record<string, any>;

async function waitUntil(ok: () => boolean, what: string, ms = 10_000): Promise<void> {
  const end = Date.now() + ms;
  while (!ok()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

test('general settings are saved to lqos.conf; keys lqos-ts does not implement have no control', async () => {
  const { page } = b;
  await page.goto(`${h.base}/config/general`);
  await page.locator('input[name=node_name]').fill('edge-north-1');
  await page.locator('input[name="queue_check_period_ms"]').fill('1500');
  await page.getByTestId('config-save').click();
  await page.getByTestId('config-notice').waitFor();
  let c = conf();
  assert.equal(c.node_name, 'edge-north-1');
  assert.equal(c.queue_check_period_ms, 1500);
  // untouched values and secrets are kept
  assert.equal(c.long_term_stats.license_key, SECRETS.license);
  assert.equal(c.uisp_integration.token, SECRETS.uisp);

  // Long-term stats is not implemented (lib/config/fidelity.ts): its secret is shown, never editable,
  // with the note saying so (secrets are edited on the integration pages, test/webui/integrations.test.ts).
  assert.equal(await page.locator('[data-value-of="long_term_stats.license_key"]').innerText(), 'set');
  assert.equal(await page.getByTestId('change-long_term_stats.license_key').count(), 0);
  assert.match(await page.locator('[data-unsupported="long_term_stats.license_key"]').innerText(), /^ignored by lqos-ts: Long-Term Stats \/ Insight is not implemented/);
  assert.equal(await page.locator('input[name="long_term_stats.gather_stats"]').count(), 0);
  c = conf();
  assert.equal(c.long_term_stats.license_key, SECRETS.license);
  // the page re-reads what the server saved
  await page.reload();
  assert.equal(await page.locator('input[name=node_name]').inputValue(), 'edge-north-1');
});

test('queues and interfaces save; server-side validation errors are shown', async () => {
  const { page } = b;
  await page.goto(`${h.base}/config/queues`);
  await page.locator('input[name="queues.downlink_bandwidth_mbps"]').fill('2500');
  await page.locator('select[name="queues.default_sqm"]').selectOption('fq_codel');
  await page.getByTestId('config-save').click();
  await page.getByTestId('config-notice').waitFor();
  const q = conf().queues;
  assert.equal(q.downlink_bandwidth_mbps, 2500);
  assert.equal(q.default_sqm, 'fq_codel');
  assert.equal(q.override_available_queues, 2);

  await page.goto(`${h.base}/config/interfaces`);
  await page.locator('input[name="bridge.to_internet"]').fill('an-interface-name-far-too-long');
  await page.getByTestId('config-save').click();
  await page.getByTestId('config-error').waitFor();
  assert.match(await page.getByTestId('config-details').innerText(), /bridge\.to_internet/);
  await shot(page, '30-config-validation-error');
  assert.equal(conf().bridge.to_internet, 'eth0');
  await page.locator('input[name="bridge.to_internet"]').fill('enp1s0f0');
  await page.getByTestId('config-save').click();
  await page.getByTestId('config-notice').waitFor();
  assert.equal(conf().bridge.to_internet, 'enp1s0f0');
  assert.equal(conf().bridge.to_network, 'eth1');
});

test('shaped devices: edit, add, delete persist; validation errors name line and column', async () => {
  const { page } = b;
  await page.goto(`${h.base}/shaped-devices`);
  const table = page.getByTestId('devices-table');
  await table.waitFor();

  // edit a circuit's plan
  await table.locator('tr[data-device="d-1001"]').getByTestId('devices-edit').click();
  const form = page.getByTestId('device-form');
  await form.locator('input[name=download_max]').fill('150');
  await form.getByTestId('device-apply').click();
  // add a device
  await page.getByTestId('devices-add').click();
  await form.locator('input[name=circuit_id]').fill('c-1005');
  await form.locator('input[name=circuit_name]').fill('Olsen Farm');
  await form.locator('input[name=device_id]').fill('d-1006');
  await form.locator('input[name=device_name]').fill('Olsen barn radio');
  await form.locator('select[name=parent_node]').selectOption('Tower_South');
  await form.locator('input[name=ipv4]').fill('100.64.30.40');
  await form.locator('input[name=comment]').fill('5 Country Road');
  await form.getByTestId('device-apply').click();
  // delete one
  await table.locator('tr[data-device="d-1003"]').getByRole('button', { name: 'Delete' }).click();
  await page.getByTestId('devices-save').click();
  await page.getByTestId('devices-notice').waitFor();

  const csv = readFileSync(h.devicesPath, 'utf8');
  const line = (dev: string) => csv.split('\n').find((l) => l.includes(`,${dev},`)) ?? '';
  assert.match(line('d-1001'), /,150,/);
  assert.match(line('d-1006'), /^c-1005,Olsen Farm,d-1006,Olsen barn radio,Tower_South,.*100\.64\.30\.40/);
  assert.match(line('d-1006'), /5 Country Road/);
  assert.equal(line('d-1003'), '');
  assert.ok(line('d-1002').startsWith('c-1002,Jonathan Whitaker'));

  // a duplicate IP is refused by the server: nothing written, the issue names line and column
  await page.getByTestId('devices-add').click();
  await form.locator('input[name=circuit_id]').fill('c-1006');
  await form.locator('input[name=circuit_name]').fill('Duplicate Test');
  await form.locator('input[name=device_id]').fill('d-1007');
  await form.locator('select[name=parent_node]').selectOption('Tower_South');
  await form.locator('input[name=ipv4]').fill('100.64.10.11');
  await form.getByTestId('device-apply').click();
  await page.getByTestId('devices-save').click();
  await page.getByTestId('devices-issues').waitFor();
  const issues = await page.getByTestId('devices-issues').innerText();
  assert.match(issues, /line \d+, column “IPv4”/);
  assert.match(issues, /100\.64\.10\.11/);
  assert.equal(await table.locator('tr.invalid').count() > 0, true);
  await shot(page, '31-devices-validation-error');
  assert.equal(readFileSync(h.devicesPath, 'utf8'), csv);
});

test('a devices save that would unshape most circuits asks first, naming how many; declined nothing is written, confirmed it is saved', async () => {
  const { page } = b;
  await page.goto(`${h.base}/shaped-devices`);
  const table = page.getByTestId('devices-table');
  await table.waitFor();
  const csv = readFileSync(h.devicesPath, 'utf8');
  // Three of the four circuits in force (c-1002, c-1003, c-1004) lose their last device.
  for (const d of ['d-1002', 'd-1004', 'd-1005']) await table.locator(`tr[data-device="${d}"]`).getByRole('button', { name: 'Delete' }).click();
  const asked: string[] = [];
  let answer = false;
  onDialog = async (d) => {
    asked.push(d.message());
    await (answer ? d.accept() : d.dismiss());
  };
  try {
    await page.getByTestId('devices-save').click();
    await page.getByTestId('devices-notice').filter({ hasText: 'Not saved' }).waitFor();
    assert.equal(asked.length, 1);
    assert.match(asked[0]!, /This save would unshape 3 of the 4 shaped circuits — more than the 20 % allowed/);
    assert.match(asked[0]!, /First: c-1002 \(Jonathan Whitaker\), c-1003 \(.+\), c-1004 \(.+\)\./);
    assert.equal(readFileSync(h.devicesPath, 'utf8'), csv, 'declined: nothing written');

    // Privacy mode: the questions (a browser dialog, outside the page's masks) name circuits by id
    // only, and the delete question no device name.
    await page.getByTestId('privacy-toggle').click();
    try {
      await page.getByTestId('devices-save').click();
      await waitUntil(() => asked.length === 2, 'the second mass-removal question');
      assert.match(asked[1]!, /First: c-1002, c-1003, c-1004\./);
      await table.locator('tr[data-device="d-1001"]').getByRole('button', { name: 'Delete' }).click();
      await waitUntil(() => asked.length === 3, 'the delete question');
      assert.match(asked[2]!, /^Delete device “.+” of circuit c-1001\?$/);
      assert.deepEqual(PII.filter((x) => asked.slice(1).some((q) => q.includes(x))), [], `PII in a question asked in privacy mode: ${asked.slice(1).join(' | ')}`);
    } finally {
      await page.getByTestId('privacy-toggle').click();
    }
    asked.length = 0;

    answer = true;
    await page.getByTestId('devices-save').click();
    await page.getByTestId('devices-notice').filter({ hasText: 'unshaping 3 circuit(s) you confirmed' }).waitFor();
    assert.equal(asked.length, 1);
    const saved = readFileSync(h.devicesPath, 'utf8');
    assert.ok(!saved.includes('d-1002') && !saved.includes('d-1005') && saved.includes('d-1001'), saved);
  } finally {
    onDialog = (d) => d.accept();
  }
});

test('an enabled integration locks the devices editor (409 from the API is explained too)', async () => {
  const { page } = b;
  await page.goto(`${h.base}/shaped-devices`);
  await page.getByTestId('devices-table').waitFor();
  // the integration gets enabled behind the editor's back: Save answers 409
  const r = await page.request.put(`${h.base}/api/config`, { data: { uisp_integration: { enable_uisp: true } } });
  assert.equal(r.status(), 200);
  await page.getByTestId('devices-table').locator('tr[data-device="d-1001"]').getByTestId('devices-edit').click();
  await page.getByTestId('device-form').locator('input[name=download_max]').fill('175');
  await page.getByTestId('device-apply').click();
  await page.getByTestId('devices-save').click();
  await page.getByTestId('devices-locked').waitFor();
  assert.match(await page.getByTestId('devices-locked').innerText(), /uisp integration is enabled/);
  assert.equal(await page.locator('[data-edit]').count(), 0);
  // and on a fresh load the lock is known up front
  await page.reload();
  await page.getByTestId('devices-locked').waitFor();
  assert.equal(await page.locator('[data-edit]').count(), 0);
  await shot(page, '32-devices-locked');
  await page.request.put(`${h.base}/api/config`, { data: { uisp_integration: { enable_uisp: false } } });
});

test('a read-only user sees no editing control and the API refuses its writes', async () => {
  const viewer = await launchBrowser();
  try {
    const { page } = viewer;
    await login(page, h.base, VIEWER);
    h.ctx.urgent.submit({ source: 'LibreQoS', severity: 'error', code: 'XDP_IP_MAPPING_CAPACITY', message: 'map full' });
    assert.equal(await page.getByRole('link', { name: 'Users' }).count(), 0);
    for (const path of ['/shaped-devices', '/config/general', '/config/interfaces', '/config/queues']) {
      await page.goto(`${h.base}${path}`);
      await page.locator('[data-editor]').first().waitFor();
      assert.equal(await page.locator('[data-edit]').count(), 0, `edit controls on ${path}`);
      const enabled = await page.locator('[data-editor]').evaluateAll((forms) =>
        forms.flatMap((f) => [...f.querySelectorAll('button, input, select, textarea')]).filter((e) => !(e as HTMLInputElement).disabled).length,
      );
      assert.equal(enabled, 0, `enabled controls in the editor on ${path}`);
      if (path === '/config/general') {
        assert.equal(await page.locator('[data-value-of=node_name]').innerText(), 'edge-north-1');
        await shot(page, '33-readonly-config');
      }
    }
    await page.goto(`${h.base}/users`);
    await page.waitForURL(`${h.base}/`);
    await page.getByTestId('urgent-count').waitFor({ timeout: 5000 });
    await page.getByTestId('urgent-indicator').click();
    await page.getByTestId('urgent-list').waitFor();
    assert.equal(await page.locator('[data-testid=urgent-list] button').count(), 0);
    await page.keyboard.press('Escape');

    const req = page.request;
    assert.equal((await req.put(`${h.base}/api/config`, { data: { node_name: 'x' } })).status(), 403);
    assert.equal((await req.put(`${h.base}/api/shaped-devices`, { data: { circuits: [] } })).status(), 403);
    assert.equal((await req.post(`${h.base}/api/urgent/1/ack`)).status(), 403);
    assert.equal((await req.get(`${h.base}/api/users`)).status(), 403);
    assert.equal((await req.get(`${h.base}/api/config`)).status(), 200);
    assert.deepEqual(viewer.errors, []);
  } finally {
    await viewer.close();
  }
});
