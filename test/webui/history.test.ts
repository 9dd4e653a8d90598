// test-gate: shared (a browser against an in-process web server: no kernel state, no measured rates; see test/support/gate.ts)
/**
 * The History page and GET /api/history over a seeded store (30 days of minute rows with known
 * values, lib/telemetry/history.ts): bucket counts per range, validation, roles, 404s; the page's
 * charts, range buttons, drag-to-zoom, empty state, the links from the Circuit page and the tree,
 * and privacy mode. The lab test (test/lab/webui.test.ts) shows real traffic.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { TelemetryHistory } from '../../lib/telemetry/history.ts';
import { type Browser, bodyText, shot } from '../support/browser.ts';
import { Client } from '../support/http.ts';
import { ADMIN, VIEWER } from '../support/users.ts';
import { seedHistory, seedRow } from '../telemetry/historySeed.ts';
import { browserAsAdmin, closeUi, leakedPii, SITE_NAMES, startUiHarness, type UiHarness } from './helpers.ts';

let h: UiHarness;
let b: Browser;
let store: TelemetryHistory;
let admin: Client;
const NOW_MIN = Math.floor(Date.now() / 60_000) * 60; // the minute in progress
const START = NOW_MIN - 30 * 86_400 + 60; // 30 days of rows up to the last whole minute
const MINUTES = (NOW_MIN - START) / 60;

before(async () => {
  h = await startUiHarness();
  store = new TelemetryHistory({ path: join(h.dir, 'state', 'telemetry.sqlite'), retentionDays: 30, circuitRetentionDays: 30 });
  seedHistory(store.db, { startS: START, minutes: MINUTES, nodes: ['Downtown', 'Downtown/Tower_North'], circuits: ['c-1001', 'c-gone'] });
  h.ctx.history = () => ({ store, flush: () => store.flush() });
  b = await browserAsAdmin(h);
  admin = new Client(h.base);
  assert.equal((await admin.post('/api/auth/login', ADMIN)).status, 200);
});
after(async () => {
  await closeUi(b, h);
  store?.close();
});

test('API: each range downsampled (minute rows for 1 h, ≤ 601 buckets); every bucket holds the average and maximum of its seeded rows', async () => {
  for (const range of ['1h', '24h', '7d', '30d']) {
    const r = await admin.get(`/api/history?scope=circuit&id=c-1001&range=${range}`);
    assert.equal(r.status, 200, r.text);
    const { from, to, step, points } = r.json as { from: number; to: number; step: number; points: { t: number; downMaxBps: number; downAvgBps: number }[] };
    assert.equal(r.json.name, 'Maria Lopez');
    assert.equal(r.json.retentionDays, 30);
    // Every bucket with seeded minutes in [from, to), recomputed from the seeded rows.
    const buckets = new Map<number, ReturnType<typeof seedRow>[]>();
    for (let i = 0; i < MINUTES; i++) {
      const ts = START + i * 60;
      if (ts < from || ts >= to) continue;
      const t = Math.floor(ts / step) * step;
      buckets.set(t, [...(buckets.get(t) ?? []), seedRow(i, 1)]);
    }
    assert.deepEqual(points.map((p) => p.t), [...buckets.keys()], `${range}: buckets`);
    assert.ok(points.length <= 601, `${range}: ${points.length} points`);
    for (const p of points) {
      const rows = buckets.get(p.t)!;
      assert.equal(p.downMaxBps, Math.round(Math.max(...rows.map((x) => x.downMax))), `${range} t=${p.t}: max`);
      assert.equal(p.downAvgBps, Math.round(rows.reduce((a, x) => a + x.downAvg, 0) / rows.length), `${range} t=${p.t}: average`);
    }
    assert.equal(step, { '1h': 60, '24h': 180, '7d': 1200, '30d': 4320 }[range]);
  }
  const net = await admin.get('/api/history?scope=network&range=24h');
  assert.equal(net.json.step, 180);
  const site = await admin.get(`/api/history?scope=site&id=${encodeURIComponent('Downtown/Tower_North')}&range=1h`);
  assert.equal(site.status, 200);
  assert.equal(site.json.name, 'Tower_North');
  const first = (site.json.from - START) / 60;
  assert.equal(site.json.points[0].downAvgBps, seedRow(first, 2).downAvg);
  // from/to (unix seconds, as strings in the query) reach the store: the same buckets as range=1h.
  const span = await admin.get(`/api/history?scope=site&id=${encodeURIComponent('Downtown/Tower_North')}&from=${site.json.from}&to=${site.json.to}`);
  assert.equal(span.status, 200, span.text);
  assert.deepEqual([span.json.from, span.json.to, span.json.step], [site.json.from, site.json.to, 60]);
  assert.deepEqual(span.json.points.map((p: { t: number }) => p.t), site.json.points.map((p: { t: number }) => p.t));
  assert.equal((await admin.get('/api/history')).json.scope, 'network', 'no scope: the whole network');
});

test('API: validation, 404 for unknown circuits and sites, roles, a circuit no longer in the plan, no history', async () => {
  const refused = {
    'scope=everything': /scope/,
    'scope=network&range=2h': /range/,
    'scope=circuit': /needs an id/,
    'scope=network&from=10': /from and to go together/,
    'scope=network&from=20&to=10': /to \(10\) must be after from \(20\)/,
    'scope=network&from=x&to=10': /from/,
    'scope=network&range=1h&from=10&to=20': /either range or from\/to/,
  };
  for (const [q, why] of Object.entries(refused)) {
    const r = await admin.get(`/api/history?${q}`);
    assert.equal(r.status, 400, `${q}: ${r.text}`);
    assert.match(r.json.message, why, q);
  }
  assert.equal((await admin.get('/api/history?scope=circuit&id=nope')).status, 404);
  assert.equal((await admin.get('/api/history?scope=site&id=Nowhere')).status, 404);
  const gone = await admin.get('/api/history?scope=circuit&id=c-gone&range=1h');
  assert.equal(gone.status, 200, 'in the store, no longer in the plan');
  assert.equal(gone.json.name, 'c-gone');
  assert.equal((await new Client(h.base).get('/api/history?scope=network')).status, 401);
  const viewer = new Client(h.base);
  assert.equal((await viewer.post('/api/auth/login', VIEWER)).status, 200);
  assert.equal((await viewer.get('/api/history?scope=network&range=7d')).status, 200, 'read-only users read history');
  const source = h.ctx.history;
  h.ctx.history = () => undefined;
  try {
    const r = await admin.get('/api/history?scope=network');
    assert.deepEqual([r.status, r.json.available, r.json.points.length], [200, false, 0]);
  } finally {
    h.ctx.history = source;
  }
});

test('page: network 30 days, charts with units and local times; ranges; drag to zoom', async () => {
  const { page } = b;
  await page.goto(`${h.base}/history?range=30d`);
  await page.getByTestId('history-summary').waitFor();
  assert.match(await page.getByTestId('history-title').innerText(), /History: Whole network/);
  assert.match(await page.getByTestId('history-meta').innerText(), /^60[01] points of 72 min · .* kept 30 days/);
  for (const card of ['history-throughput', 'history-rtt', 'history-retransmits', 'history-drops']) await page.getByTestId(card).locator('.history-chart[data-drawn] canvas').first().waitFor();
  const peak = await page.getByTestId('history-peak-down').innerText();
  assert.match(peak, /^\d+(\.\d)? Mbps$/);
  await page.waitForTimeout(300);
  await shot(page, '95-history-network-30d');
  await page.getByTestId('history-range-1h').click();
  await page.waitForFunction(() => /^(5[89]|60) points of 1 min/.test(document.querySelector('[data-testid=history-meta]')?.textContent?.trim() ?? ''));
  assert.match(page.url(), /range=1h/);
  await page.waitForTimeout(300); // the charts redraw with the new range after the summary
  // Drag across the throughput chart: the charts zoom into that window and the summary follows.
  const chart = page.getByTestId('history-throughput').locator('.history-chart');
  const box = (await chart.boundingBox())!;
  await page.mouse.move(box.x + box.width * 0.4, box.y + box.height / 2);
  await page.mouse.down();
  await page.mouse.move(box.x + box.width * 0.6, box.y + box.height / 2, { steps: 8 });
  await page.mouse.up();
  await page.getByTestId('history-reset-zoom').waitFor();
  const from = Number(await chart.getAttribute('data-zoom-from'));
  const to = Number(await chart.getAttribute('data-zoom-to'));
  assert.ok(to - from > 300 && to - from < 1800, `zoomed to ${to - from} s of the hour`);
  await shot(page, '96-history-zoomed');
  await page.getByTestId('history-reset-zoom').click();
  await page.getByTestId('history-reset-zoom').waitFor({ state: 'detached' });
  // The charts follow their element's size (they skip only the ResizeObserver's report of the size they
  // were drawn at): a narrower window draws them narrower.
  const canvasWidth = () => chart.locator('canvas').first().evaluate((c) => c.getBoundingClientRect().width);
  const wide = await canvasWidth();
  await page.setViewportSize({ width: 900, height: 900 });
  try {
    await page.waitForFunction((w) => {
      const c = document.querySelector('[data-testid=history-throughput] .history-chart canvas');
      return c !== null && c.getBoundingClientRect().width < w - 300;
    }, wide);
    assert.ok((await canvasWidth()) < wide - 300, `chart width ${await canvasWidth()} after the window went from 1400 to 900 px (was ${wide})`);
  } finally {
    await page.setViewportSize({ width: 1400, height: 900 });
  }
  assert.deepEqual(b.errors, []);
});

test('page: reached from the Circuit page and the tree; empty state for a circuit without rows', async () => {
  const { page } = b;
  await page.goto(`${h.base}/circuit/c-1001`);
  await page.getByTestId('circuit-history-link').click();
  await page.waitForURL(/\/history\?scope=circuit&id=c-1001/);
  await page.getByTestId('history-summary').waitFor();
  assert.match(await page.getByTestId('history-title').innerText(), /Maria Lopez/);
  await shot(page, '97-history-circuit');
  await page.goto(`${h.base}/tree`);
  await page.locator('[data-testid=tree-table] tr[data-path="Downtown"] [data-testid=tree-history-link]').click();
  await page.waitForURL(/scope=site&id=Downtown/);
  await page.getByTestId('history-summary').waitFor();
  // Circuit search on the page, then a circuit with no history.
  await page.getByTestId('history-scope-circuit').click();
  await page.getByTestId('history-circuit-search').fill('Bakery');
  await page.getByTestId('history-circuit-matches').getByText('Green Valley Bakery').click();
  await page.waitForURL(/id=c-1004/);
  const empty = await page.getByTestId('history-empty').innerText();
  assert.match(empty, /^No history yet: lqosd writes a row per minute\./);
  await shot(page, '98-history-empty');
  await page.goto(`${h.base}/history?scope=circuit&id=nope`);
  await page.getByTestId('history-not-found').waitFor();
  assert.deepEqual(b.errors, []);
});

test('page: privacy mode masks circuit and site names', async () => {
  const { page } = b;
  await page.evaluate(() => localStorage.setItem('redact', 'true'));
  try {
    await page.goto(`${h.base}/history?scope=circuit&id=c-1001&range=24h`);
    await page.getByTestId('history-summary').waitFor();
    assert.deepEqual(await leakedPii(page), []);
    assert.match(await page.getByTestId('history-title').innerText(), /••••••/);
    await shot(page, '99-history-privacy');
    await page.goto(`${h.base}/history?scope=site&id=${encodeURIComponent('Downtown/Tower_North')}`);
    await page.getByTestId('history-summary').waitFor();
    // The site list loads after the charts: wait for it (5 sites + "Pick a site…").
    await page.waitForFunction(() => document.querySelectorAll('[data-testid=history-site] option').length === 6);
    const text = await bodyText(page);
    const options = await page.getByTestId('history-site').locator('option').allInnerTexts();
    assert.deepEqual(SITE_NAMES.filter((s) => text.includes(s) || options.some((o) => o.includes(s))), [], 'site names in privacy mode');
    await page.getByTestId('history-scope-circuit').click();
    await page.getByTestId('history-circuit-search').fill('c-10');
    await page.getByTestId('history-circuit-matches').waitFor();
    assert.deepEqual(await leakedPii(page), [], 'circuit search results');
  } finally {
    await page.evaluate(() => localStorage.setItem('redact', 'false'));
  }
});
