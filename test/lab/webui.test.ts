/**
 * The web UI against a real lqosd on the namespace lab: Debian's chromium runs inside the shaper
 * namespace (a wrapper script around `ip netns exec`), where lqosd serves the UI on :9123.
 * First run → admin → login → dashboard, network tree and a circuit page show the applied plan
 * with live traffic; the circuit's rate matches the API.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type BrowserContext, type Page } from 'playwright-core';
import { defaultLabCircuits, measure, repoRoot, runLabLibreQoS, startLab, stopLab, type Lab } from '../../lab/labEnv.ts';
import { busRequest, waitForBus } from '../../lib/bus/client.ts';

const ID = 'lqweb';
const CHROMIUM = '/usr/bin/chromium';
const built = existsSync(join(repoRoot, 'webui', 'dist', 'index.html'));
const skip = !existsSync(CHROMIUM) ? 'chromium is not installed (scripts/setup installs it)' : !built ? 'web UI not built (npm run build:webui)' : false;
let lab: Lab;
let context: BrowserContext;
let page: Page;
let tmp: string;
const base = 'http://127.0.0.1:9123';
const shots = join(repoRoot, 'test-output', 'webui-lab');

before(async () => {
  if (skip) return;
  lab = await startLab({ id: ID, web: true, circuits: defaultLabCircuits.filter((c) => c.path === 'plain') });
  await waitForBus({ path: lab.busPath, timeoutMs: 20_000 });
  const r = await runLabLibreQoS(lab);
  assert.equal(r.code, 0, r.output);
  tmp = mkdtempSync(join(tmpdir(), 'lqweb-'));
  const wrapper = join(tmp, 'chromium-in-netns');
  writeFileSync(wrapper, `#!/bin/sh\nexec ip netns exec ${lab.tb.ns.shaper} ${CHROMIUM} "$@"\n`);
  chmodSync(wrapper, 0o755);
  context = await chromium.launchPersistentContext(join(tmp, 'profile'), {
    executablePath: wrapper,
    headless: true,
    args: ['--no-sandbox', '--disable-background-networking', '--disable-gpu', '--no-first-run', '--disable-component-update', '--disable-sync'],
    viewport: { width: 1400, height: 900 },
  });
  context.setDefaultTimeout(15_000);
  page = context.pages()[0] ?? (await context.newPage());
  mkdirSync(shots, { recursive: true });
});

after(async () => {
  if (skip) return;
  await context?.close().catch(() => undefined);
  if (tmp) rmSync(tmp, { recursive: true, force: true });
  await stopLab(ID);
});

test('first run → admin → login → pages show the applied plan and live traffic', { skip }, async () => {
  // lqosd may still be starting its web server.
  for (let i = 0; i < 50; i++) {
    try {
      await page.goto(`${base}/`);
      break;
    } catch {
      await new Promise((r) => setTimeout(r, 200));
    }
  }
  await page.waitForURL('**/first-run');
  // lqosd wrote the one-time setup token into its state directory (what `sudo cat` shows the operator).
  await page.fill('input[name=token]', readFileSync(join(lab.dir, 'state', 'first-run.token'), 'utf8').trim());
  await page.fill('input[name=username]', 'admin');
  await page.fill('input[name=password]', 'lab-admin-password');
  await page.fill('input[name=confirm]', 'lab-admin-password');
  await page.click('button[type=submit]');
  await page.getByTestId('current-user').waitFor();

  // Traffic for a live view while we look at the pages.
  const traffic = measure(lab, '10.99.1.11', 'download', 6);
  await page.goto(`${base}/`);
  await page.getByTestId('plan-summary').waitFor();
  assert.match(await page.getByTestId('plan-summary').innerText(), /^4 circuits/);
  await page.screenshot({ path: join(shots, 'dashboard.png') });

  await page.goto(`${base}/tree`);
  await page.getByText('Lab_Tower').first().waitFor();
  await page.screenshot({ path: join(shots, 'tree.png') });

  // Ask the API from inside the page (the browser lives in the lab's namespace, this process does not).
  const api = await page.evaluate(async () => (await fetch('/api/circuits/lab-25')).json());
  await page.goto(`${base}/circuit/lab-25`);
  await page.getByTestId('plan-down-max').waitFor();
  const shown = await page.getByTestId('plan-down-max').innerText();
  assert.match(shown, /^25(\.0+)? Mbps/);
  const apiCeil = api.download?.ceilMbps ?? api.circuit?.download?.ceilMbps;
  assert.equal(typeof apiCeil, 'number', JSON.stringify(api).slice(0, 300));
  assert.equal(parseFloat(shown), apiCeil);
  // The live card shows traffic of this circuit within a few seconds.
  await page.waitForFunction(
    () => /[1-9]\d*(\.\d+)? Mbps/.test(document.querySelector('[data-testid=circuit-live]')?.textContent ?? ''),
    undefined,
    { timeout: 8000 },
  );
  await page.screenshot({ path: join(shots, 'circuit.png') });
  await traffic;
});

const PAGES = [
  '/', '/tree', '/circuit/lab-10', '/shaped-devices', '/network', '/config/general', '/config/interfaces', '/config/queues',
  '/config/integrations/common', '/config/integrations/uisp', '/site-map', '/flow-globe', '/asn-analysis',
  '/cpu-tree', '/cpu-weights', '/users',
];

test('every page renders against the real lqosd (screenshots kept) without page errors', { skip }, async () => {
  const errors: string[] = [];
  page.on('pageerror', (e) => errors.push(e.message));
  for (const path of PAGES) {
    await page.goto(`${base}${path}`);
    await page.waitForLoadState('networkidle');
    const text = await page.evaluate(() => document.body.innerText);
    assert.ok(text.length > 50, `${path} rendered almost nothing`);
    assert.doesNotMatch(text, /Not found/i, `${path} is not a page`);
    await page.screenshot({ path: join(shots, `page${path.replace(/[/:]/g, '_') || '_root'}.png`), fullPage: true });
  }
  assert.deepEqual(errors, []);
});

test('privacy mode hides every subscriber name and IP of the lab, and survives a reload', { skip }, async () => {
  await page.goto(`${base}/tree`);
  await page.getByTestId('privacy-toggle').click();
  const secrets = lab.circuits.flatMap((c) => [c.name, c.ipv4, c.ipv6].filter(Boolean));
  for (const path of ['/', '/tree', '/circuit/lab-25', '/shaped-devices', '/cpu-tree']) {
    await page.goto(`${base}${path}`);
    await page.waitForLoadState('networkidle');
    const text = await page.evaluate(() => document.body.innerText);
    for (const s of secrets) assert.ok(!text.includes(s), `${path} shows "${s}" in privacy mode`);
  }
  await page.reload();
  await page.waitForLoadState('networkidle');
  const text = await page.evaluate(() => document.body.innerText);
  assert.ok(!text.includes('Fifty Meg Customer'), 'privacy mode was lost on reload');
  await page.getByTestId('privacy-toggle').click();
  await page.goto(`${base}/circuit/lab-25`);
  await page.getByText('Twenty-five Meg Customer').first().waitFor();
});

test("an urgent issue raised over lqosd's bus shows in the indicator within 5 s", { skip }, async () => {
  await page.goto(`${base}/`);
  await page.waitForLoadState('networkidle');
  const before = Number((await page.getByTestId('urgent-count').innerText().catch(() => '0')) || 0);
  await busRequest('urgent_submit', { source: 'lab-test', severity: 'error', code: 'LAB_TEST', message: 'raised by the lab browser test' }, { path: lab.busPath });
  await page.waitForFunction(
    (n) => Number(document.querySelector('[data-testid=urgent-count]')?.textContent ?? 0) === n + 1,
    before,
    { timeout: 5000 },
  );
});
