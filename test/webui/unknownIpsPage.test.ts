// test-gate: shared (a browser against an in-process web server: no kernel state, no measured rates; see test/support/gate.ts)
/**
 * The Unknown IPs page (issue 18): the table of sampled unmapped addresses with last seen, totals and
 * current rates; the filter; privacy mode; the totals CSV and the ShapedDevices rows downloaded from
 * the browser (parent and plan chosen on the page); a parent that is not in network.json refused by
 * the API; the empty and "no telemetry" states. The table is lib/telemetry's shape (its rows are
 * tested against the telemetry service in test/telemetry/service.test.ts).
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { after, before, test } from 'node:test';
import type { UnknownIpsTable } from '../../lib/api/telemetry.ts';
import { type Browser, shot } from '../support/browser.ts';
import { browserAsAdmin, closeUi, startUiHarness, type UiHarness } from './helpers.ts';

let h: UiHarness;
let b: Browser;

const summary = {
  sampled: true as const,
  note: 'Sampled: per-address counters are kept for at most 4096 addresses without a mapping.',
  sampledAddresses: 3, capacity: 4096, sampledTotal: 12, listed: 1, unmappedDownBps: 2_500_000, unmappedUpBps: 300_000,
};
/** What lqosd answers now (rows' last-seen times are relative to each request). */
let table: (() => UnknownIpsTable) | undefined;
const busy = (): UnknownIpsTable => ({
  at: Date.now(),
  available: true,
  windowSeconds: 300,
  summary,
  rows: [
    { ip: '198.51.100.23', lastSeenMs: Date.now() - 5_000, downBps: 2_400_000, upBps: 310_000, downBytes: 48_200_000, upBytes: 1_250 },
    { ip: '2001:db8:ff::7', lastSeenMs: Date.now() - 125_000, downBps: 0, upBps: 0, downBytes: 900, upBytes: 0 },
  ],
});

before(async () => {
  h = await startUiHarness();
  h.ctx.unknownIps = () => table?.();
  b = await browserAsAdmin(h);
});
after(async () => closeUi(b, h));

async function open(): Promise<void> {
  await b.page.goto(`${h.base}/unknown-ips`);
}
const cells = async () => (await b.page.getByTestId('unknown-table').locator('tbody tr').allInnerTexts()).map((r) => r.split('\t').map((x) => x.trim()));

test('the table lists the addresses with last seen, totals and current rates; the filter narrows it', async () => {
  table = busy;
  await open();
  await b.page.getByTestId('unknown-table').waitFor();
  assert.deepEqual(await cells(), [
    ['198.51.100.23', '5s ago', '48.2 MB', '1.3 kB', '2.4 Mbps', '310 kbps'],
    ['2001:db8:ff::7', '2m ago', '900 B', '0 B', '0 bps', '0 bps'],
  ]);
  assert.match(await b.page.getByTestId('unknown-sample-note').innerText(), /Sampled: .* Unmapped traffic now: ↓ 2\.5 Mbps ↑ 300 kbps\./);
  assert.equal(await b.page.getByTestId('unknown-count').innerText(), '2 of 2 addresses');
  await shot(b.page, 'unknown-ips-page');
  await b.page.getByTestId('unknown-filter').fill('2001:');
  await b.page.getByText('1 of 2 addresses').waitFor();
  assert.deepEqual((await cells()).map((r) => r[0]), ['2001:db8:ff::7']);
  assert.deepEqual(b.errors, []);
});

test('downloads: upstream totals CSV, and ShapedDevices rows with the parent and plan chosen on the page', async () => {
  table = busy;
  await open();
  const [totals] = await Promise.all([b.page.waitForEvent('download'), b.page.getByTestId('download-totals').click()]);
  assert.equal(totals.suggestedFilename(), 'unknown-ips.csv');
  assert.equal(readFileSync((await totals.path())!, 'utf8'), 'IP Address,Total Download (bytes),Total Upload (bytes)\n198.51.100.23,48200000,1250\n2001:db8:ff::7,900,0\n');

  assert.match(await b.page.getByTestId('shaped-problem').innerText(), /Enter the plan/);
  assert.equal(await b.page.getByTestId('download-shaped').isDisabled(), true, 'no plan entered: no download');
  await b.page.getByTestId('shaped-parent').selectOption('Tower_North');
  await b.page.getByTestId('shaped-down').fill('100');
  await b.page.getByTestId('shaped-up').fill('20');
  const [shaped] = await Promise.all([b.page.waitForEvent('download'), b.page.getByTestId('download-shaped').click()]);
  const csv = readFileSync((await shaped.path())!, 'utf8').split('\n');
  assert.equal(csv[0], 'Circuit ID,Circuit Name,Device ID,Device Name,Parent Node,MAC,IPv4,IPv6,Download Min Mbps,Upload Min Mbps,Download Max Mbps,Upload Max Mbps,Comment');
  assert.match(csv[1]!, /^unknown-198\.51\.100\.23,Unknown 198\.51\.100\.23,unknown-198\.51\.100\.23,198\.51\.100\.23,Tower_North,,198\.51\.100\.23,,100,20,100,20,/);
  assert.match(csv[2]!, /^unknown-2001:db8:ff::7,.*,Tower_North,,,2001:db8:ff::7,100,20,100,20,/);
  await shot(b.page, 'unknown-ips-rows');
});

test('the API refuses a parent that is not in network.json, and ShapedDevices rows without a plan', async () => {
  table = busy;
  await open();
  const r = await b.page.evaluate(async () => {
    const a = await fetch('/api/unknown-ips.csv?format=shaped&down=10&up=2&parent=Nowhere');
    const c = await fetch('/api/unknown-ips.csv?format=shaped&parent=Tower_North');
    const z = await fetch('/api/unknown-ips.csv?format=shaped&down=0&up=5');
    return [a.status, await a.text(), c.status, await c.text(), z.status] as const;
  });
  assert.equal(r[0], 400);
  assert.match(r[1], /parent node \\"Nowhere\\" is not in the applied network\.json/);
  assert.equal(r[2], 400);
  assert.match(r[3], /need the plan: give down and up/);
  assert.equal(r[4], 400, 'a rate of 0 is no plan');
});

test('privacy mode masks the addresses on the page', async () => {
  table = busy;
  await b.page.evaluate(() => localStorage.setItem('redact', 'true'));
  try {
    await open();
    await b.page.getByTestId('unknown-table').waitFor();
    const text = await b.page.locator('main, body').first().innerText();
    assert.ok(!text.includes('198.51.100.23') && !text.includes('2001:db8:ff::7'), text);
    await shot(b.page, 'unknown-ips-privacy');
  } finally {
    await b.page.evaluate(() => localStorage.setItem('redact', 'false'));
  }
});

test('empty and unavailable states say why nothing is listed', async () => {
  table = () => ({ ...busy(), rows: [] });
  await open();
  assert.match(await b.page.getByTestId('unknown-empty').innerText(), /No unknown IP in the last 5 minutes/);
  assert.equal(await b.page.getByTestId('download-totals').isDisabled(), true);
  await shot(b.page, 'unknown-ips-empty');
  table = undefined;
  await open();
  assert.match(await b.page.getByTestId('unknown-unavailable').innerText(), /Live traffic counters are not available/);
});
