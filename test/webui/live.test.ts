// test-gate: shared (a browser against an in-process web server: no kernel state, no measured rates; see test/support/gate.ts)
/**
 * Live updates over the websocket: urgent issues (badge within 5 s, acknowledge), scheduler indicator,
 * and the telemetry channels (throughput graph, per-circuit rates) when lqosd publishes them.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { type Browser, shot } from '../support/browser.ts';
import { browserAsAdmin, closeUi, startUiHarness, type UiHarness } from './helpers.ts';

let h: UiHarness;
let b: Browser;
const unregister: (() => void)[] = [];
let tick = 0;

before(async () => {
  h = await startUiHarness();
  // Stand-ins for lib/telemetry/service.ts's channels, in its payload shapes.
  const view = (id: string, name: string, parentPath: string, downBps: number, upBps: number, ceilDown: number, ceilUp: number) => ({
    id,
    name,
    parentPath,
    downBps,
    upBps,
    downPps: 0,
    upPps: 0,
    ceilDownMbps: ceilDown,
    ceilUpMbps: ceilUp,
    utilDownPct: Math.round((downBps / (ceilDown * 1e4)) * 10) / 10,
    utilUpPct: Math.round((upBps / (ceilUp * 1e4)) * 10) / 10,
  });
  unregister.push(
    h.channels.register('throughput', () => ({
      at: Date.now(),
      dataplane: true,
      totals: { downBps: 123_400_000 + (tick++ % 5) * 1_000_000, upBps: 45_600_000, downPps: 0, upPps: 0, shapedDownBps: 120_000_000, shapedUpBps: 45_000_000, hosts: 5, activeHosts: 2, unknownActiveHosts: 0 },
      link: { downloadMbps: 1000, uploadMbps: 1000 },
      nodes: [{ path: 'Downtown', name: 'Downtown', depth: 0, downBps: 250_000_000, upBps: 80_000_000, downPps: 0, upPps: 0, ceilDownMbps: 1000, ceilUpMbps: 500, utilDownPct: 25, utilUpPct: 16 }],
      ring: { totals: [], nodes: {} },
    })),
    h.channels.register('circuits', () => {
      const a = view('c-1001', 'Maria Lopez', 'Downtown/Tower_North', 42_000_000, 3_000_000, 100, 20);
      const b2 = view('c-1003', 'Priya Raman', 'Riverside/AP_River_1', 7_500_000, 900_000, 50, 10);
      return { at: Date.now(), topDownload: [a, b2], topUpload: [a, b2], activeCount: 2, active: [a, b2] };
    }),
  );
  b = await browserAsAdmin(h);
});
after(async () => {
  await closeUi(b, h, unregister);
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
  // First paint: the time axis shows the last 5 minutes, not a two-day span around the first point.
  assert.equal(await page.getByTestId('throughput-chart').getAttribute('data-window-s'), '300');
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
