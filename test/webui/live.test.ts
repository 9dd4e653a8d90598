/**
 * Live updates over the websocket: urgent issues (badge within 5 s, acknowledge), scheduler indicator,
 * and the telemetry channels (throughput graph, per-circuit rates) when lqosd publishes them.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { registerChannel } from '../../lib/web/channels.ts';
import { launchBrowser, login, seedUsers, shot, startUiHarness, ADMIN, type Browser, type UiHarness } from './helpers.ts';

let h: UiHarness;
let b: Browser;
const unregister: (() => void)[] = [];
let tick = 0;

before(async () => {
  // Stand-ins for the telemetry channels (their producer lives elsewhere in lqosd).
  unregister.push(
    registerChannel('throughput', () => ({ downloadBps: 123_400_000 + (tick++ % 5) * 1_000_000, uploadBps: 45_600_000 })),
    registerChannel('circuits', () => ({
      circuits: [
        { id: 'c-1001', downloadBps: 42_000_000, uploadBps: 3_000_000 },
        { id: 'c-1003', downloadBps: 7_500_000, uploadBps: 900_000 },
      ],
    })),
    registerChannel('queues', () => ({ nodes: [{ path: 'Downtown', downloadBps: 250_000_000, uploadBps: 80_000_000 }] })),
  );
  h = await startUiHarness();
  await seedUsers(h);
  b = await launchBrowser();
  await login(b.page, h.base, ADMIN);
});
after(async () => {
  await b?.close();
  await h?.close();
  for (const off of unregister) off();
});

test('an urgent issue shows up within 5 s and acknowledging updates the count', async () => {
  const { page } = b;
  await page.goto(`${h.base}/`);
  await page.getByTestId('plan-summary').waitFor();
  assert.equal(await page.getByTestId('urgent-count').count(), 0);
  const t0 = Date.now();
  h.ctx.urgent.submit({ source: 'LibreQoS', severity: 'error', code: 'TC_U16_OVERFLOW', message: 'too many classes on CPU 3' });
  await page.getByTestId('urgent-count').waitFor({ timeout: 5000 });
  assert.ok(Date.now() - t0 < 5000);
  assert.equal(await page.getByTestId('urgent-count').innerText(), '1');
  h.ctx.urgent.submit({ source: 'scheduler', severity: 'warning', code: 'INTEGRATION_FAILED', message: 'uisp: connection refused' });
  await page.waitForFunction(() => document.querySelector('[data-testid=urgent-count]')?.textContent === '2', undefined, { timeout: 5000 });
  assert.equal(await page.getByTestId('urgent-active').innerText(), '2');

  await page.getByTestId('urgent-indicator').click();
  const list = page.getByTestId('urgent-list');
  await list.waitFor();
  assert.match(await list.innerText(), /TC_U16_OVERFLOW/);
  assert.match(await list.innerText(), /uisp: connection refused/);
  await shot(page, '20-urgent-modal');
  await list.locator('li', { hasText: 'TC_U16_OVERFLOW' }).getByTestId('urgent-ack').click();
  await page.waitForFunction(() => document.querySelector('[data-testid=urgent-count]')?.textContent === '1', undefined, { timeout: 5000 });
  assert.equal(h.ctx.urgent.items.find((i) => i.code === 'TC_U16_OVERFLOW')?.acknowledged, true);
  await page.getByTestId('urgent-ack-all').click();
  await page.getByTestId('urgent-count').waitFor({ state: 'detached', timeout: 5000 });
  assert.equal(h.ctx.urgent.activeCount(), 0);
  await page.keyboard.press('Escape');
});

test('the scheduler indicator follows the scheduler and shows the error preview', async () => {
  const { page } = b;
  const ind = page.getByTestId('scheduler-indicator');
  assert.equal(await ind.getAttribute('data-health'), 'healthy');
  h.ctx.scheduler.heartbeat('running_integration');
  await page.waitForSelector('[data-testid=scheduler-indicator][data-health=running]', { timeout: 5000 });
  h.ctx.scheduler.error({ message: 'splynx integration failed', integration: 'splynx', preview: 'Traceback:\n  HTTP 401 Unauthorized', logFile: '/tmp/lqos_scheduler__splynx_20250101_120000.log' });
  await page.waitForSelector('[data-testid=scheduler-indicator][data-health=error]', { timeout: 5000 });
  await ind.click();
  const pop = page.getByTestId('scheduler-popover');
  await pop.waitFor();
  assert.match(await page.getByTestId('scheduler-preview').innerText(), /HTTP 401 Unauthorized/);
  assert.match(await pop.innerText(), /lqos_scheduler__splynx_20250101_120000\.log/);
  await shot(page, '21-scheduler-popover');
  await ind.click();
  h.ctx.scheduler.success();
  await page.waitForSelector('[data-testid=scheduler-indicator][data-health=healthy]', { timeout: 5000 });
});

test('telemetry channels drive the throughput graph, top circuits and live rates', async () => {
  const { page } = b;
  await page.goto(`${h.base}/`);
  await page.getByTestId('throughput-chart').locator('canvas').waitFor();
  await page.getByTestId('throughput-card').getByText(/↓ 12\d Mbps/).waitFor();
  const top = page.getByTestId('top-circuits');
  await top.getByText('42.0 Mbps').waitFor();
  const first = await top.locator('tbody tr').first().innerText();
  assert.match(first, /Maria Lopez/);
  assert.match(first, /100 Mbps \/ 20 Mbps/);
  assert.match(first, /42 %/);
  await page.waitForTimeout(1000); // a few points on the graph
  await shot(page, '22-dashboard-live');

  await page.goto(`${h.base}/circuit/c-1001`);
  await page.getByTestId('circuit-live').getByText('↓ 42.0 Mbps').waitFor();
  assert.match(await page.getByTestId('circuit-live').innerText(), /42 % of plan/);

  await page.goto(`${h.base}/tree`);
  await page.locator('tr[data-path="Downtown"]').getByText('250 Mbps').waitFor();
  assert.deepEqual(b.errors, []);
});
