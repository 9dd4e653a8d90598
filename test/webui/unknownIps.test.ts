// test-gate: shared (a browser against an in-process web server: no kernel state, no measured rates; see test/support/gate.ts)
/**
 * The dashboard's "Unmapped traffic" card (issue 20 item 5): the exact unmapped rate, the unknown
 * IPs marked as a sample (note + how many sample slots are in use), byte units, the empty state,
 * and privacy mode masking the addresses. Channel payloads in lib/telemetry's shapes.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import type { CircuitRatesPayload } from '../../lib/api/telemetry.ts';
import { type Browser, shot } from '../support/browser.ts';
import { browserAsAdmin, closeUi, startUiHarness, type UiHarness } from './helpers.ts';

let h: UiHarness;
let b: Browser;
const unregister: (() => void)[] = [];

const NOTE = 'Sampled: per-address counters are kept for at most 4096 addresses without a mapping (at most about 100 new addresses a second are admitted), so this list shows some of them, not all; the unmapped rate counts all of their traffic.';
const busy: CircuitRatesPayload = {
  at: 1,
  topDownload: [],
  topUpload: [],
  activeCount: 0,
  active: [],
  unknownIps: [
    { ip: '198.51.100.23', downBps: 2_400_000, upBps: 310_000, downBytes: 48_200_000, upBytes: 1_250 },
    { ip: '2001:db8:ff::7', downBps: 90_000, upBps: 0, downBytes: 900, upBytes: 0 },
  ],
  unknown: { sampled: true, note: NOTE, sampledAddresses: 37, capacity: 4096, sampledTotal: 1200, listed: 2, unmappedDownBps: 80_000_000, unmappedUpBps: 1_500_000 },
};
const idle: CircuitRatesPayload = { ...busy, unknownIps: [], unknown: { ...busy.unknown!, sampledAddresses: 0, listed: 0, unmappedDownBps: 0, unmappedUpBps: 0 } };
let current = busy;

before(async () => {
  h = await startUiHarness();
  unregister.push(h.channels.register('circuits', () => ({ ...current, at: Date.now() })));
  b = await browserAsAdmin(h);
});
after(async () => {
  await closeUi(b, h, unregister);
});

test('the card shows the unmapped rate, the sampled note and count, and the unknown IPs with units', async () => {
  const { page } = b;
  await page.goto(`${h.base}/`);
  const card = page.getByTestId('unknown-ips');
  await card.getByText('198.51.100.23').waitFor();
  assert.match(await page.getByTestId('unmapped-rate').innerText(), /^↓ 80\.0 Mbps\s*↑ 1\.5 Mbps$/);
  assert.equal(await page.getByTestId('sampled-badge').innerText(), 'sampled');
  const note = await page.getByTestId('sampled-note').innerText();
  assert.match(note, /^Sampled: .* at most 4096 addresses/);
  assert.match(note, /37 of 4096 sample slots in use; 2 with traffic now\./);
  const rows = await card.locator('tbody tr').allInnerTexts();
  assert.deepEqual(rows.map((r) => r.split('\t').map((x) => x.trim())), [
    ['198.51.100.23', '2.4 Mbps', '310 kbps', '48.2 MB', '1.3 kB'],
    ['2001:db8:ff::7', '90.0 kbps', '0 bps', '900 B', '0 B'],
  ]);
  assert.equal(await page.getByTestId('unknown-all').getAttribute('href'), '/unknown-ips', 'the card links to the Unknown IPs page');
  await shot(page, '40-unknown-ips');
  assert.deepEqual(b.errors, []);
});

test('empty state: no unknown IP with traffic', async () => {
  const { page } = b;
  current = idle;
  try {
    const card = page.getByTestId('unknown-ips');
    await page.getByTestId('unknown-empty').waitFor({ timeout: 5000 });
    assert.equal(await card.locator('table').count(), 0);
    assert.match(await page.getByTestId('unmapped-rate').innerText(), /^↓ 0 bps\s*↑ 0 bps$/);
    assert.match(await page.getByTestId('sampled-note').innerText(), /0 of 4096 sample slots in use; 0 with traffic now\./);
    await shot(page, '41-unknown-ips-empty');
  } finally {
    current = busy;
  }
});

test('privacy mode masks the unknown IPs', async () => {
  const { page } = b;
  await page.evaluate(() => localStorage.setItem('redact', 'true'));
  await page.goto(`${h.base}/`);
  const card = page.getByTestId('unknown-ips');
  await card.locator('tbody tr').first().waitFor();
  const text = await card.innerText();
  assert.ok(!text.includes('198.51.100.23') && !text.includes('2001:db8:ff::7'), text);
  await page.evaluate(() => localStorage.setItem('redact', 'false'));
});
