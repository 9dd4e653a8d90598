// test-gate: shared (a browser against an in-process web server: no kernel state, no measured rates; see test/support/gate.ts)
/**
 * The Executive summary page (GET /api/executive) in Chromium over a seeded history store: totals with
 * units, the four rankings in their order with links to the History and Circuit pages, the 7 d range,
 * top ASNs from a flow snapshot, the empty states (no history yet, history off, flow tracking off),
 * privacy mode, the Insight menu entry, phone width. Screenshots: test-output/webui/exec-*.png.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import type { FlowSnapshot } from '../../lib/api/flows.ts';
import { TelemetryHistory } from '../../lib/telemetry/history.ts';
import { type Browser, bodyText, shot } from '../support/browser.ts';
import { putMinute } from './executiveSeed.ts';
import { browserAsAdmin, closeUi, leakedPii, SITE_NAMES, startUiHarness, type UiHarness } from './helpers.ts';

let h: UiHarness;
let b: Browser;
let store: TelemetryHistory;
const NOW_MIN = Math.floor(Date.now() / 60_000) * 60;
const R = NOW_MIN - 3 * 3600;
const OLD = NOW_MIN - 3 * 86_400;

function seed(db: TelemetryHistory['db']): void {
  const q = (p50: number, rd: number) => ({ rttP50: p50, rttP90: p50 * 2, rttN: 6, tcpDown: 50_000, tcpUp: 20_000, retransDown: rd, retransUp: rd / 10 });
  for (let i = 0; i < 120; i++) {
    putMinute(db, 'totals', '', R + i * 60, { downAvg: 250e6 + (i % 2) * 2e6, upAvg: 40e6, downMax: i === 90 ? 812e6 : 400e6, upMax: 95e6 });
    putMinute(db, 'node', 'Downtown', R + i * 60, { ...q(22, 150), downMax: 700e6, upMax: 90e6 });
    putMinute(db, 'node', 'Downtown/Tower_North', R + i * 60, { ...q(48, 900), downMax: 396e6, upMax: 60e6 });
    putMinute(db, 'node', 'Downtown/Tower_South', R + i * 60, { ...q(31, 50), downMax: 200e6, upMax: 20e6 });
    putMinute(db, 'node', 'Riverside', R + i * 60, { ...q(95, 400), downMax: 260e6, upMax: 30e6 });
    putMinute(db, 'node', 'Riverside/AP_River_1', R + i * 60, { ...q(140, 2100), downMax: 250e6, upMax: 30e6 });
  }
  for (let i = 0; i < 30; i++) putMinute(db, 'circuit', 'c-1001', R + i * 60, { downMax: i < 27 ? 99e6 : 40e6 });
  for (let i = 0; i < 20; i++) putMinute(db, 'circuit', 'c-1004', R + i * 60, { downMax: i < 5 ? 480e6 : 100e6 });
  for (let i = 0; i < 40; i++) putMinute(db, 'circuit', 'c-1002', R + i * 60, { downMax: i < 12 ? 248e6 : 20e6 });
  // Three days ago: only in the 7 d range.
  putMinute(db, 'totals', '', OLD, { downAvg: 100e6, downMax: 1.2e9, upMax: 1e6 });
  putMinute(db, 'node', 'Downtown/Tower_South', OLD, { downMax: 900e6 });
}

const ASNS = [
  { asn: 15169, name: 'GOOGLE', country: 'US', flows: 40, bytes: { down: 8.2e9, up: 3e8 }, rateBps: { down: 120e6, up: 4e6 } },
  { asn: 2906, name: 'AS-SSI Netflix', country: 'US', flows: 12, bytes: { down: 2.5e10, up: 1e8 }, rateBps: { down: 310e6, up: 2e6 } },
  { asn: 13335, name: 'CLOUDFLARENET', country: 'US', flows: 55, bytes: { down: 1.1e9, up: 2e8 }, rateBps: { down: 30e6, up: 3e6 } },
];

before(async () => {
  h = await startUiHarness();
  store = new TelemetryHistory({ path: join(h.dir, 'state', 'telemetry.sqlite'), retentionDays: 30 });
  seed(store.db);
  h.ctx.history = () => ({ store, flush: () => store.flush() });
  h.ctx.flows = () => ({ at: Date.now(), asns: ASNS }) as unknown as FlowSnapshot;
  b = await browserAsAdmin(h);
});
after(async () => {
  await closeUi(b, h);
  store?.close();
});

const rows = (testid: string, attr: string) =>
  b.page.locator(`[data-testid=${testid}] tbody tr`).evaluateAll((trs, a) => trs.map((tr) => tr.getAttribute(a)), attr);
const cells = (testid: string) =>
  b.page.locator(`[data-testid=${testid}] tbody tr`).evaluateAll((trs) => trs.map((tr) => [...tr.querySelectorAll('td')].map((td) => (td as HTMLElement).innerText.trim())));

test('from the Insight menu: totals with units, the rankings in order, top ASNs', async () => {
  const { page } = b;
  await page.goto(`${h.base}/`);
  await page.getByTestId('nav-more').locator('summary').click();
  await page.getByTestId('nav-more').getByText('Executive summary').click();
  await page.waitForURL(/\/executive$/);
  await page.getByTestId('exec-totals').waitFor();
  assert.equal(await page.getByTestId('exec-peak-down').innerText(), '812 Mbps');
  assert.equal(await page.getByTestId('exec-peak-up').innerText(), '95.0 Mbps');
  assert.equal(await page.getByTestId('exec-avg-down').innerText(), '251 Mbps');
  assert.equal(await page.getByTestId('exec-avg-up').innerText(), '40.0 Mbps');
  assert.match(await page.getByTestId('exec-totals').innerText(), /120 minutes recorded/);
  assert.deepEqual(await rows('exec-worst-rtt', 'data-path'), ['Riverside/AP_River_1', 'Riverside', 'Downtown/Tower_North', 'Downtown/Tower_South', 'Downtown']);
  assert.deepEqual((await cells('exec-worst-rtt'))[0], ['AP_River_1', '140 ms', '280 ms']);
  assert.deepEqual((await rows('exec-worst-retransmits', 'data-path'))[0], 'Riverside/AP_River_1');
  assert.deepEqual((await cells('exec-worst-retransmits'))[0], ['AP_River_1', '3.30 %', '4.20 %', '1.05 %']);
  // Peaks against the plan: AP_River_1 250 of 200 Mbps, Tower_North 396 of 400.
  assert.deepEqual((await rows('exec-oversubscribed', 'data-path')).slice(0, 2), ['Riverside/AP_River_1', 'Downtown/Tower_North']);
  assert.deepEqual((await cells('exec-oversubscribed'))[0], ['AP_River_1', '200 Mbps / 100 Mbps', '250 Mbps / 30.0 Mbps', '125 %', '30 %']);
  assert.deepEqual(await rows('exec-at-ceiling', 'data-circuit'), ['c-1001', 'c-1002', 'c-1004']);
  assert.deepEqual((await cells('exec-at-ceiling'))[0], ['Maria Lopez', 'Downtown / Tower_North', '100 Mbps', '90 %', '27 of 30', '99.0 Mbps', 'History']);
  assert.deepEqual(await rows('exec-asns', 'data-asn'), ['2906', '15169', '13335']);
  assert.deepEqual((await cells('exec-asns'))[0], ['AS2906', 'AS-SSI Netflix US', '25.0 GB / 100 MB', '310 Mbps / 2.0 Mbps', '12']);
  await shot(page, 'exec-24h');
  assert.deepEqual(b.errors, []);
});

test('links to the Circuit page and History; the 7 d range takes older minutes', async () => {
  const { page } = b;
  await page.goto(`${h.base}/executive`);
  await page.locator('[data-testid=exec-at-ceiling] tr[data-circuit=c-1001] [data-testid=exec-circuit-history]').click();
  await page.waitForURL(/\/history\?scope=circuit&id=c-1001&range=24h/);
  await page.getByTestId('history-summary').waitFor();
  await page.goBack();
  await page.locator('[data-testid=exec-at-ceiling] tr[data-circuit=c-1001] td a').first().click();
  await page.waitForURL(/\/circuit\/c-1001$/);
  await page.goto(`${h.base}/executive`);
  await page.locator('[data-testid=exec-worst-rtt] tr[data-path=Riverside] a').click();
  await page.waitForURL(/\/history\?scope=site&id=Riverside&range=24h/);
  await page.goto(`${h.base}/executive`);
  await page.getByTestId('exec-range-7d').click();
  await page.waitForURL(/range=7d/);
  await page.waitForFunction(() => document.querySelector('[data-testid=exec-peak-down]')?.textContent === '1.2 Gbps');
  assert.equal((await rows('exec-oversubscribed', 'data-path'))[0], 'Downtown/Tower_South', '900 of 600 Mbps three days ago');
  await shot(page, 'exec-7d');
  assert.deepEqual(b.errors, []);
});

test('privacy mode: no subscriber or site name on the page', async () => {
  const { page } = b;
  await page.goto(`${h.base}/executive`);
  await page.getByTestId('exec-totals').waitFor();
  await page.getByTestId('privacy-toggle').click();
  await page.waitForFunction(() => !document.body.innerText.includes('Maria Lopez'));
  assert.deepEqual(await leakedPii(page), []);
  const text = await bodyText(page);
  assert.deepEqual(SITE_NAMES.filter((s) => text.includes(s)), []);
  assert.equal((await rows('exec-worst-rtt', 'data-path')).length, 5, 'the rows are still there');
  await shot(page, 'exec-privacy');
  await page.getByTestId('privacy-toggle').click();
});

test('empty states: no history yet, history off, flow tracking off; no plan', async () => {
  const { page } = b;
  const empty = new TelemetryHistory({ path: ':memory:' });
  const source = h.ctx.history;
  const flows = h.ctx.flows;
  try {
    h.ctx.history = () => ({ store: empty, flush: () => empty.flush() });
    delete h.ctx.flows;
    await page.goto(`${h.base}/executive`);
    assert.match(await page.getByTestId('exec-empty').innerText(), /^No history yet: lqosd writes a row per minute/);
    assert.match(await page.getByTestId('exec-asns-off').innerText(), /^Flow tracking is off/);
    await shot(page, 'exec-empty');
    h.ctx.history = () => undefined;
    await page.reload();
    assert.match(await page.getByTestId('exec-empty').innerText(), /keeps no history right now/);
    const plan = h.ctx.appliedPlan;
    h.ctx.appliedPlan = () => undefined;
    try {
      await page.reload();
      await page.getByTestId('exec-no-plan').waitFor();
    } finally {
      h.ctx.appliedPlan = plan;
    }
  } finally {
    h.ctx.history = source;
    h.ctx.flows = flows;
    empty.close();
  }
  assert.deepEqual(b.errors, []);
});

test('phone width (390 px): the page is not wider than the screen', async () => {
  const { page } = b;
  await page.setViewportSize({ width: 390, height: 844 });
  try {
    await page.goto(`${h.base}/executive`);
    await page.getByTestId('exec-at-ceiling').locator('tbody tr').first().waitFor();
    const { scroll, client } = await page.evaluate(() => ({ scroll: document.documentElement.scrollWidth, client: document.documentElement.clientWidth }));
    assert.ok(scroll <= client, `/executive is ${scroll} px wide on a ${client} px screen`);
    await shot(page, 'exec-phone');
  } finally {
    await page.setViewportSize({ width: 1400, height: 900 });
  }
});
