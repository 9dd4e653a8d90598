// test-gate: shared (a browser against an in-process web server: no kernel state, no measured rates; see test/support/gate.ts)
/**
 * The Content-Security-Policy lqosd sends (lib/web/http.ts) against the real UI in chromium: every
 * page, with live charts (ECharts canvas and tooltips), the websocket and the theme script, loads
 * with no CSP violation — and a control shows a violation would be caught.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { type Browser, launchBrowser, shot } from '../support/browser.ts';
import { ADMIN, login, seedUsers } from '../support/users.ts';
import { startUiHarness, type UiHarness } from './helpers.ts';

let h: UiHarness;
let b: Browser;
const unregister: (() => void)[] = [];
/** Console lines and page errors, and the violations the page reported itself. */
const consoleLines: string[] = [];

const CSP_TEXT = /Content[- ]Security[- ]Policy|violates the following/i;

before(async () => {
  h = await startUiHarness();
  const view = (id: string, name: string, parentPath: string, downBps: number, upBps: number) => ({ id, name, parentPath, downBps, upBps, downPps: 0, upPps: 0, ceilDownMbps: 100, ceilUpMbps: 20, utilDownPct: 40, utilUpPct: 10 });
  let tick = 0;
  unregister.push(
    h.channels.register('throughput', () => ({
      at: Date.now(),
      dataplane: true,
      totals: { downBps: 120_000_000 + (tick++ % 5) * 1_000_000, upBps: 45_000_000, downPps: 0, upPps: 0, shapedDownBps: 119_000_000, shapedUpBps: 44_000_000, hosts: 5, activeHosts: 2, unknownActiveHosts: 0 },
      link: { downloadMbps: 1000, uploadMbps: 1000 },
      nodes: [{ path: 'Downtown', name: 'Downtown', depth: 0, downBps: 250_000_000, upBps: 80_000_000, downPps: 0, upPps: 0, ceilDownMbps: 1000, ceilUpMbps: 500, utilDownPct: 25, utilUpPct: 16 }],
      ring: { totals: [], nodes: {} },
    })),
    h.channels.register('circuits', () => {
      const a = view('c-1001', 'Maria Lopez', 'Downtown/Tower_North', 42_000_000, 3_000_000);
      return { at: Date.now(), topDownload: [a], topUpload: [a], activeCount: 1, active: [a] };
    }),
    h.channels.register('cpu', () => ({ at: Date.now(), total: 31, perCore: [37, 12, 55, 20] })),
  );
  await seedUsers(h);
  b = await launchBrowser();
  b.page.on('console', (m) => consoleLines.push(`console.${m.type()}: ${m.text()}`));
  b.page.on('pageerror', (e) => consoleLines.push(`pageerror: ${e.message}`));
  // The page's own report of every violation (also those chromium does not log).
  await b.context.addInitScript(() => {
    const w = window as unknown as { __csp: string[] };
    w.__csp = [];
    document.addEventListener('securitypolicyviolation', (e) => w.__csp.push(`${e.violatedDirective} ${e.blockedURI}`));
  });
  await login(b.page, h.base, ADMIN);
});
after(async () => {
  await b?.close();
  await h?.close();
  for (const off of unregister) off();
});

async function violations(): Promise<string[]> {
  const reported = await b.page.evaluate(() => (window as unknown as { __csp?: string[] }).__csp ?? []);
  return [...reported, ...consoleLines.filter((l) => CSP_TEXT.test(l))];
}

test('the CSP header is on the UI document and names the websocket origin', async () => {
  const res = await b.page.goto(`${h.base}/`);
  const csp = (await res!.allHeaders())['content-security-policy'] ?? '';
  assert.match(csp, /script-src 'self'(;|$)/);
  assert.match(csp, /connect-src 'self' ws:\/\/127\.0\.0\.1:\d+/);
  assert.match(csp, /frame-ancestors 'none'/);
});

test('dashboard, charts and every page load with zero CSP violations', async () => {
  const { page } = b;
  await page.goto(`${h.base}/`);
  await page.getByTestId('plan-summary').waitFor();
  await page.getByTestId('throughput-chart').locator('canvas').waitFor();
  // An ECharts tooltip (inline style attributes) on hover.
  const box = (await page.getByTestId('throughput-chart').boundingBox())!;
  await page.mouse.move(box.x + box.width * 0.6, box.y + box.height * 0.5);
  await page.waitForTimeout(500);
  // The first-paint theme script is a file now (an inline one would be blocked).
  assert.ok(await page.evaluate(() => performance.getEntriesByType('resource').some((e) => e.name.endsWith('/theme-init.js'))), 'theme-init.js loaded');

  await page.goto(`${h.base}/circuit/c-1001`);
  await page.getByTestId('circuit-live').getByText('↓ 42.0 Mbps').waitFor();
  await page.goto(`${h.base}/cpu-weights`);
  await page.getByTestId('chart-cpu-load').locator('canvas').waitFor();
  const cpu = (await page.getByTestId('chart-cpu-load').boundingBox())!;
  await page.mouse.move(cpu.x + cpu.width * 0.3, cpu.y + cpu.height * 0.5);
  await page.waitForTimeout(300);
  for (const path of ['/tree', '/site-map', '/flow-globe', '/asn-analysis', '/cpu-tree', '/network', '/shaped-devices', '/config/general', '/config/integrations/uisp', '/users']) {
    await page.goto(`${h.base}${path}`);
    await page.waitForLoadState('networkidle');
    assert.deepEqual(await violations(), [], `after ${path}`);
  }
  await shot(page, '90-csp-users');
  assert.deepEqual(await violations(), []);
  assert.deepEqual(b.errors, []);
});

test('control: an inline script is blocked and the violation is seen', async () => {
  const { page } = b;
  await page.goto(`${h.base}/`);
  await page.getByTestId('plan-summary').waitFor();
  await page.evaluate(() => {
    const s = document.createElement('script');
    s.textContent = 'window.__inlineRan = true';
    document.head.appendChild(s);
  });
  await page.waitForTimeout(200);
  assert.equal(await page.evaluate(() => (window as unknown as { __inlineRan?: boolean }).__inlineRan), undefined, 'the inline script ran');
  const seen = await violations();
  assert.ok(seen.some((v) => /script-src/.test(v)), JSON.stringify(seen));
});
