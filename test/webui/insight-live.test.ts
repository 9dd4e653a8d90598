// test-gate: shared (a browser against an in-process web server: no kernel state, no measured rates; see test/support/gate.ts)
/**
 * The new pages with live data: stand-ins for the telemetry channels (`throughput`, `circuits`, `cpu`)
 * and for flow tracking (`flows`, in lib/flows/service.ts's FlowSnapshot shape) drive the CPU pages'
 * live load, the Site Map's circle colours, the Flow Globe points and the ASN table.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { rttColor } from '../../webui/src/lib/flows.ts';
import { readFileSync } from 'node:fs';
import { Reader } from 'mmdb-lib';
import { resolveGeoFiles } from '../../lib/flows/geoSources.ts';
import { bodyText, type Browser, shot } from '../support/browser.ts';
import { browserAsAdmin, closeUi, leakedPii, SITE_NAMES, startUiHarness, type UiHarness } from './helpers.ts';

let h: UiHarness;
let b: Browser;
const unregister: (() => void)[] = [];

const ASNS = [
  { asn: 15169, name: 'GOOGLE', country: 'US', flows: 42, rateBps: { down: 80_000_000, up: 4_000_000 }, bytes: { down: 9e9, up: 4e8 }, rttMs: 18.5, retransmits: 12, tcpPackets: 90_000, retransmitPct: 0.4 },
  { asn: 2906, name: 'AS-SSI (Netflix)', country: 'US', flows: 7, rateBps: { down: 150_000_000, up: 2_000_000 }, bytes: { down: 2e10, up: 1e8 }, rttMs: 24.1, retransmits: 3, tcpPackets: 120_000, retransmitPct: 0.1 },
  { asn: 3320, name: 'DTAG', country: 'DE', flows: 3, rateBps: { down: 2_000_000, up: 500_000 }, bytes: { down: 3e8, up: 4e7 }, rttMs: 121.7, retransmits: 420, tcpPackets: 6_000, retransmitPct: 7 },
];
/** What lqosd's enricher reports: the bundled data, and a warning about an unusable operator file. */
const GEO_DATA = resolveGeoFiles({ asnMmdbPath: '/nonexistent/asn.mmdb' }).info;
const version = (pkg: string) => (JSON.parse(readFileSync(`node_modules/${pkg}/package.json`, 'utf8')) as { version: string }).version;
/** ip-location-db versions end in the build stamp YYYYMMDDHH. */
const stampDay = (v: string) => v.replace(/^.*\.(\d{4})(\d\d)(\d\d)\d\d$/, '$1-$2-$3');
const GLOBE = [
  { lat: 37.4, lon: -122.1, label: 'Mountain View, US', country: 'US', bytesDown: 9e9, bytesUp: 4e8, rttMs: 18.5, flows: 42 },
  { lat: 40.7, lon: -74.0, label: 'New York, US', country: 'US', bytesDown: 2e10, bytesUp: 1e8, rttMs: 24.1, flows: 7 },
  { lat: 50.1, lon: 8.7, label: 'Frankfurt, DE', country: 'DE', bytesDown: 3e8, bytesUp: 4e7, rttMs: 121.7, flows: 3 },
  { lat: 41.9, lon: -87.6, label: 'Chicago, US', country: 'US', bytesDown: 1e9, bytesUp: 1e8, rttMs: null, flows: 2 },
];

before(async () => {
  h = await startUiHarness();
  const view = (id: string, name: string, parentPath: string, downBps: number, upBps: number) => ({ id, name, parentPath, downBps, upBps, downPps: 0, upPps: 0, ceilDownMbps: 100, ceilUpMbps: 20, utilDownPct: 0, utilUpPct: 0 });
  unregister.push(
    h.channels.register('throughput', () => ({
      at: Date.now(),
      dataplane: true,
      totals: { downBps: 300_000_000, upBps: 50_000_000, shapedDownBps: 290_000_000, shapedUpBps: 49_000_000 },
      nodes: [{ path: 'Downtown', name: 'Downtown', depth: 0, downBps: 800_000_000, upBps: 80_000_000, ceilDownMbps: 1000, ceilUpMbps: 500 }],
    })),
    h.channels.register('circuits', () => {
      const a = view('c-1001', 'Maria Lopez', 'Downtown/Tower_North', 42_000_000, 3_000_000);
      const c = view('c-1004', 'Green Valley Bakery', 'Downtown/Tower_South', 8_000_000, 1_000_000);
      const d = view('c-1003', 'Priya Raman', 'Riverside/AP_River_1', 7_500_000, 900_000);
      return { at: Date.now(), topDownload: [a, c, d], topUpload: [a, c, d], activeCount: 3, active: [a, c, d] };
    }),
    h.channels.register('cpu', () => ({ at: Date.now(), total: 31, perCore: [37, 12, 55, 20] })),
    h.channels.register('flows', () => ({ at: Date.now(), geoData: GEO_DATA, activeFlows: 52, globe: GLOBE, asns: ASNS, circuits: [], topFlows: [], recent: [] })),
  );
  b = await browserAsAdmin(h);
});
after(async () => {
  await closeUi(b, h, unregister);
});

test('CPU Weights shows live CPU load and per-queue throughput', async () => {
  const { page } = b;
  const { circuits } = (await (await page.request.get(`${h.base}/api/circuits`)).json()) as { circuits: { id: string; queue: number }[] };
  const queueOf = new Map(circuits.map((c) => [c.id, c.queue]));
  const perQueue = new Map<number, number>();
  for (const [id, bps] of [['c-1001', 42_000_000], ['c-1004', 8_000_000], ['c-1003', 7_500_000]] as const) {
    const q = queueOf.get(id)!;
    perQueue.set(q, (perQueue.get(q) ?? 0) + bps);
  }
  await page.goto(`${h.base}/cpu-weights`);
  await page.getByTestId('cpu-table').waitFor();
  await page.locator('[data-testid=cpu-load][data-cpu="0"]').getByText('37 %').waitFor();
  assert.match(await page.locator('[data-testid=cpu-load][data-cpu="1"]').innerText(), /12 %/);
  for (const [q, bps] of perQueue) {
    const want = `${(bps / 1e6).toFixed(1)} Mbps`;
    await page.locator(`[data-testid=cpu-live-down][data-cpu="${q - 1}"]`).getByText(want).waitFor();
  }
  await page.getByTestId('chart-cpu-load').locator('canvas').waitFor();
  await page.getByTestId('chart-cpu-throughput').locator('canvas').waitFor();
  await page.waitForTimeout(500);
  await shot(page, '60-cpu-weights-live');
});

test('Site Map colours a site by its live rate', async () => {
  const { page } = b;
  await page.goto(`${h.base}/site-map`);
  await page.getByTestId('site-circle').first().waitFor();
  await page.getByTestId('site-map-summary').getByText(/live throughput/).waitFor();
  // Downtown: 800 of 1000 Mbps → the 75–90 % colour
  await page.waitForSelector('[data-testid=site-circle][fill="#f0883e"]');
  await shot(page, '61-site-map-live');
});

test('Flow Globe draws the flow endpoints; dragging rotates the globe', async () => {
  const { page } = b;
  await page.goto(`${h.base}/flow-globe`);
  await page.getByTestId('flow-globe').waitFor();
  await page.locator('[data-testid=flow-globe] path.country').first().waitFor();
  await page.getByTestId('globe-summary').getByText(/4 endpoints/).waitFor();
  const table = await page.getByTestId('globe-table').innerText();
  assert.match(table.split('\n')[1], /New York, US/); // most bytes first
  assert.match(table, /121\.7 ms/);
  assert.match(await page.getByTestId('geo-data-geo').innerText(), /^Geo data: @ip-location-db\/geo-whois-asn-country-mmdb@[\d.]+ \d{4}-\d\d-\d\d/);
  const visible = await page.getByTestId('globe-point').count();
  assert.ok(visible >= 3, `${visible} points on the visible side`);
  // colour by RTT on the [rtt_thresholds] scale (upstream defaults 0/100/200 ms here): Mountain View
  // (18.5 ms) mostly green, Chicago (unknown) grey
  const fills = await page.getByTestId('globe-point').evaluateAll((els) => els.map((e) => e.getAttribute('fill')));
  assert.ok(fills.includes(rttColor(18.5)), fills.join());
  assert.ok(fills.includes('#8b949e'), fills.join());
  // the legend names the same scale
  assert.equal((await page.getByTestId('rtt-legend-green').innerText()).trim(), '≤ 0 ms');
  assert.equal((await page.getByTestId('rtt-legend-red').innerText()).trim(), '≥ 200 ms');
  const box = (await page.getByTestId('flow-globe').boundingBox())!;
  const outlines = () => page.locator('[data-testid=flow-globe] path.country').evaluateAll((els) => els.map((e) => e.getAttribute('d')).join(''));
  const before = await outlines();
  await page.mouse.move(box.x + box.width / 2, box.y + box.height / 2);
  await page.mouse.down();
  await page.mouse.move(box.x + box.width / 2 + 150, box.y + box.height / 2 + 20, { steps: 5 });
  await page.mouse.up();
  const after = await outlines();
  assert.notEqual(after, before, 'the globe rotated');
  await shot(page, '62-flow-globe');
});

test('ASN Analysis lists ASNs with throughput, RTT and retransmits', async () => {
  const { page } = b;
  await page.goto(`${h.base}/asn-analysis`);
  const table = page.getByTestId('asn-table');
  await table.waitFor();
  assert.equal(await table.locator('tbody tr').count(), ASNS.length);
  const first = await table.locator('tbody tr').first().innerText();
  assert.match(first, /AS2906/); // highest throughput first
  assert.match(first, /150 Mbps/);
  const dtag = await table.locator('tr[data-asn="3320"]').innerText();
  assert.match(dtag, /121\.7 ms/);
  assert.match(dtag, /7\.00 %/);
  assert.match(dtag, /\(420\)/);
  // Where the ASN/country data comes from and when it was built, with the licence credit and link.
  const geo = version('@ip-location-db/geo-whois-asn-country-mmdb'), asn = version('@ip-location-db/asn');
  const geoBuilt = new Reader(readFileSync('node_modules/@ip-location-db/geo-whois-asn-country-mmdb/geo-whois-asn-country.mmdb')).metadata.buildEpoch.toISOString().slice(0, 10);
  assert.equal(await page.getByTestId('geo-data-geo').innerText(), `Geo data: @ip-location-db/geo-whois-asn-country-mmdb@${geo} ${geoBuilt} · ip-location-db, NRO, CC0-1.0 (includes RIR data by the NRO, CC BY 4.0)`);
  assert.match(await page.getByTestId('geo-data-asn').innerText(), new RegExp(`^ASN data: @ip-location-db/asn@${asn.replaceAll('.', '\\.')} ${stampDay(asn)} · IP to ASN data by RouteViews, NRO and DB-IP, CC BY 4.0`));
  assert.equal(await page.getByTestId('geo-data-asn').locator('a').getAttribute('href'), 'https://db-ip.com');
  assert.equal(await page.getByTestId('geo-data-warning').innerText(), '[flows] asn_mmdb_path = "/nonexistent/asn.mmdb" is not a readable MMDB file (no such file); using the bundled @ip-location-db/asn data instead');
  await table.getByRole('columnheader', { name: 'Retransmits' }).click();
  assert.match(await table.locator('tbody tr').first().innerText(), /AS3320/);
  await shot(page, '63-asn-analysis');
});

test('privacy mode on the live pages', async () => {
  const { page } = b;
  await page.goto(`${h.base}/`);
  await page.getByTestId('privacy-toggle').click();
  for (const [path, ready] of [
    ['/cpu-tree', '[data-testid=cpu-card]'],
    ['/cpu-weights', '[data-testid=cpu-table]'],
    ['/site-map', '[data-testid=site-circle]'],
    ['/flow-globe', '[data-testid=globe-point]'],
    ['/asn-analysis', '[data-testid=asn-table]'],
  ]) {
    await page.goto(`${h.base}${path}`);
    await page.locator(ready).first().waitFor();
    if (path === '/cpu-tree') for (const btn of await page.getByTestId('cpu-show-circuits').all()) await btn.click();
    assert.deepEqual(await leakedPii(page), [], `privacy leak on ${path}`);
    const text = await bodyText(page);
    assert.deepEqual(SITE_NAMES.filter((s) => text.includes(s)), [], `site name on ${path}`);
  }
  await page.getByTestId('privacy-toggle').click();
  assert.deepEqual(b.errors, []);
});
