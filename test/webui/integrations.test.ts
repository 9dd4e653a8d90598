// test-gate: shared (a browser against an in-process web server: no kernel state, no measured rates; see test/support/gate.ts)
/**
 * Integration configuration editors (UISP, Splynx, VISP, Netzur, Powercode, Sonar, WISPGate and
 * Integration Common): generated from GET /api/config; changed values are saved to lqos.conf; secrets
 * never reach the DOM; read-only users see no editing control.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { after, before, test } from 'node:test';
import { parse as parseToml } from 'smol-toml';
import { type Browser, launchBrowser, shot } from '../support/browser.ts';
import { SECRETS } from '../support/configs.ts';
import { login, VIEWER } from '../support/users.ts';
import { browserAsAdmin, closeUi, startUiHarness, type UiHarness } from './helpers.ts';

let h: UiHarness;
let b: Browser;

const PAGES = ['common', 'uisp', 'splynx', 'visp', 'netzur', 'powercode', 'sonar', 'wispgate'];
const SECRET_VALUES = Object.values(SECRETS);

before(async () => {
  h = await startUiHarness();
  b = await browserAsAdmin(h);
  b.page.on('dialog', (d) => void d.accept());
});
after(async () => {
  await closeUi(b, h);
});

const conf = () => parseToml(readFileSync(h.configPath, 'utf8')) as Record<string, any>;

async function noSecrets(where: string) {
  const html = await b.page.content();
  const leaked = SECRET_VALUES.filter((s) => html.includes(s));
  assert.deepEqual(leaked, [], `secret in the DOM of ${where}`);
}

test('every integration page renders its section from the config, secrets as set / not set', async () => {
  const { page } = b;
  const cfg = (await (await page.request.get(`${h.base}/api/config`)).json()).config;
  for (const name of PAGES) {
    await page.goto(`${h.base}/config/integrations/${name}`);
    await page.locator(`[data-editor="integration-${name}"]`).waitFor();
    await noSecrets(name);
    await shot(page, `50-integration-${name}`);
  }
  await page.goto(`${h.base}/config/integrations/uisp`);
  await page.locator('input[name="uisp_integration.url"]').waitFor();
  assert.equal(await page.locator('input[name="uisp_integration.url"]').inputValue(), cfg.uisp_integration.url);
  assert.equal(await page.locator('input[name="uisp_integration.enable_uisp"]').isChecked(), false);
  assert.equal(await page.locator('[data-value-of="uisp_integration.token"]').innerText(), 'set');
  // numbers and lists from the values
  assert.equal(await page.locator('input[name="uisp_integration.airmax_capacity"]').getAttribute('type'), 'number');
  assert.equal(await page.locator('textarea[name="uisp_integration.exclude_sites"]').count(), 1);
  await page.goto(`${h.base}/config/integrations/visp`);
  assert.equal(await page.locator('[data-value-of="visp_integration.client_secret"]').innerText(), 'set');
  assert.equal(await page.locator('[data-value-of="visp_integration.password"]').innerText(), 'set');
  assert.equal(await page.locator('input[name="visp_integration.client_id"]').inputValue(), 'visp-client');
  await page.goto(`${h.base}/config/integrations/common`);
  assert.equal(
    await page.locator('input[name="integration_common.queue_refresh_interval_mins"]').inputValue(),
    String(cfg.integration_common.queue_refresh_interval_mins),
  );
  assert.equal(await page.locator('select[name="topology.compile_mode"]').count(), 1);
});

test('changed values and a new secret are saved to lqos.conf and re-read', async () => {
  const { page } = b;
  await page.goto(`${h.base}/config/integrations/uisp`);
  await page.locator('input[name="uisp_integration.url"]').fill('https://uisp.changed.example');
  await page.locator('input[name="uisp_integration.ignore_calculated_capacity"]').check();
  // insecure_ssl is not implemented (certificates are always verified): no control, a note instead
  assert.equal(await page.locator('input[name="uisp_integration.insecure_ssl"]').count(), 0);
  assert.match(await page.locator('[data-unsupported="uisp_integration.insecure_ssl"]').innerText(), /^ignored by lqos-ts: TLS certificates are always verified/);
  await page.locator('textarea[name="uisp_integration.exclude_sites"]').fill('Old Tower\nTest Lab');
  await page.locator('input[name="uisp_integration.airmax_capacity"]').fill('0.65');
  // A new URL without the token again: refused with the server's reason, nothing written.
  const before = readFileSync(h.configPath, 'utf8');
  await page.getByTestId('config-save').click();
  await page.getByTestId('config-error').waitFor();
  assert.match(await page.getByTestId('config-error').innerText(), /uisp_integration\.token/);
  assert.equal(readFileSync(h.configPath, 'utf8'), before, 'nothing written');
  await page.getByTestId('change-uisp_integration.token').click();
  await page.locator('input[name="uisp_integration.token"]').fill('UISP-TOKEN-FOR-NEW-URL');
  await page.getByTestId('config-save').click();
  await page.getByTestId('config-notice').waitFor();
  let c = conf();
  assert.equal(c.uisp_integration.url, 'https://uisp.changed.example');
  assert.equal(c.uisp_integration.ignore_calculated_capacity, true);
  assert.deepEqual(c.uisp_integration.exclude_sites, ['Old Tower', 'Test Lab']);
  assert.equal(c.uisp_integration.airmax_capacity, 0.65);
  assert.equal(c.uisp_integration.token, 'UISP-TOKEN-FOR-NEW-URL', 'the token re-entered for the new URL');
  assert.equal(c.uisp_integration.enable_uisp, false);
  await page.reload();
  assert.equal(await page.locator('input[name="uisp_integration.url"]').inputValue(), 'https://uisp.changed.example');
  assert.equal(await page.locator('textarea[name="uisp_integration.exclude_sites"]').inputValue(), 'Old Tower\nTest Lab');

  // a secret: typed, saved, never shown
  await page.goto(`${h.base}/config/integrations/splynx`);
  await page.getByTestId('change-splynx_integration.api_key').click();
  await page.locator('input[name="splynx_integration.api_key"]').fill('NEW-SPLYNX-KEY-000');
  await page.getByTestId('config-save').click();
  await page.getByTestId('config-notice').waitFor();
  c = conf();
  assert.equal(c.splynx_integration.api_key, 'NEW-SPLYNX-KEY-000');
  assert.equal(c.splynx_integration.api_secret, SECRETS.splynxSecret);
  assert.equal(await page.locator('[data-value-of="splynx_integration.api_key"]').innerText(), 'set');
  assert.ok(!(await page.content()).includes('NEW-SPLYNX-KEY-000'));

  // Integration Common spans two sections
  await page.goto(`${h.base}/config/integrations/common`);
  await page.locator('input[name="integration_common.queue_refresh_interval_mins"]').fill('15');
  await page.locator('select[name="topology.compile_mode"]').selectOption('ap_site');
  await page.getByTestId('config-save').click();
  await page.getByTestId('config-notice').waitFor();
  c = conf();
  assert.equal(c.integration_common.queue_refresh_interval_mins, 15);
  assert.equal(c.topology.compile_mode, 'ap_site');

  // lists of objects as JSON (Sonar service rates)
  await page.goto(`${h.base}/config/integrations/sonar`);
  await page
    .locator('textarea[name="sonar_integration.recurring_service_rates"]')
    .fill('[{"service_name": "Business 100", "download_mbps": 100, "upload_mbps": 20}]');
  await page.getByTestId('config-save').click();
  await page.getByTestId('config-notice').waitFor();
  c = conf();
  assert.equal(c.sonar_integration.recurring_service_rates[0].service_name, 'Business 100');
  assert.equal(c.sonar_integration.sonar_api_key, SECRETS.sonar);
  await noSecrets('sonar after save');
});

test('invalid values are refused with the server message; nothing is written', async () => {
  const { page } = b;
  const before = readFileSync(h.configPath, 'utf8');
  // out of the key's range (GET /api/config/schema): the form refuses it before sending
  await page.goto(`${h.base}/config/integrations/netzur`);
  const timeout = page.locator('input[name="netzur_integration.timeout_secs"]');
  await timeout.fill('0');
  await page.getByTestId('config-save').click();
  assert.equal(await timeout.evaluate((el) => (el as HTMLInputElement).validity.rangeUnderflow), true);
  assert.equal(readFileSync(h.configPath, 'utf8'), before);
  // what only the server checks (an exception CPE without a parent) comes back with its message
  await page.goto(`${h.base}/config/integrations/uisp`);
  await page.locator('textarea[name="uisp_integration.exception_cpes"]').fill('[{"cpe": "cpe-1"}]');
  await page.getByTestId('config-save').click();
  await page.getByTestId('config-error').waitFor();
  assert.match(await page.getByTestId('config-details').innerText(), /uisp_integration\.exception_cpes/);
  assert.equal(readFileSync(h.configPath, 'utf8'), before);
  await shot(page, '51-integration-validation-error');
  // broken JSON is caught before sending
  await page.goto(`${h.base}/config/integrations/uisp`);
  await page.locator('textarea[name="uisp_integration.exception_cpes"]').fill('[{"cpe": ');
  await page.getByTestId('config-save').click();
  await page.getByTestId('config-error').waitFor();
  assert.match(await page.getByTestId('config-details').innerText(), /not valid JSON/);
  assert.equal(readFileSync(h.configPath, 'utf8'), before);
  assert.deepEqual(b.errors, []);
});

test('a read-only user sees the integration settings without any editing control', async () => {
  const viewer = await launchBrowser();
  try {
    const { page } = viewer;
    await login(page, h.base, VIEWER);
    for (const name of PAGES) {
      await page.goto(`${h.base}/config/integrations/${name}`);
      await page.locator(`[data-editor="integration-${name}"]`).waitFor();
      assert.equal(await page.locator('[data-edit]').count(), 0, `edit controls on ${name}`);
      const enabled = await page.locator('[data-editor]').evaluateAll((forms) =>
        forms.flatMap((f) => [...f.querySelectorAll('button, input, select, textarea')]).filter((e) => !(e as HTMLInputElement).disabled).length,
      );
      assert.equal(enabled, 0, `enabled controls on ${name}`);
      const html = await page.content();
      assert.deepEqual(SECRET_VALUES.filter((s) => html.includes(s)), [], `secret in the DOM of ${name}`);
    }
    await page.goto(`${h.base}/config/integrations/uisp`);
    assert.equal(await page.locator('[data-value-of="uisp_integration.url"]').innerText(), 'https://uisp.changed.example');
    assert.equal(await page.locator('[data-value-of="uisp_integration.token"]').innerText(), 'set');
    await shot(page, '52-integration-readonly');
    assert.deepEqual(viewer.errors, []);
  } finally {
    await viewer.close();
  }
});
