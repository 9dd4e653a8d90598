// test-gate: shared (a browser against an in-process web server: no kernel state, no measured rates; see test/support/gate.ts)
/**
 * Web UI keys of lqos.conf (issue 13 item 1): `[rtt_thresholds] green_ms / yellow_ms / red_ms` drive
 * the RTT colours (through the status payload), and `enable_circuit_heatmaps` /
 * `enable_site_heatmaps` / `enable_asn_heatmaps` show or hide the heatmap of the circuit page, the
 * site (network tree node) page and the ASN page. Stand-in telemetry and flow channels feed them.
 */
import assert from 'node:assert/strict';
import { writeFileSync, readFileSync } from 'node:fs';
import { after, before, test } from 'node:test';
import { DEFAULT_RTT_THRESHOLDS, rttColor } from '../../webui/src/lib/flows.ts';
import { bucketize, rttScale } from '../../webui/src/lib/heatmap.ts';
import { DIST, ensureBuilt, type Browser, launchBrowser, shot } from '../support/browser.ts';
import { webConfig } from '../support/configs.ts';
import { ADMIN, login, setupUsers } from '../support/users.ts';
import { startWebHarness, type WebHarness } from '../support/web.ts';
import { devicesCsv, NETWORK } from './helpers.ts';

let h: WebHarness;
let b: Browser;
const unregister: (() => void)[] = [];

const ON = 'enable_circuit_heatmaps = true\nenable_site_heatmaps = true\nenable_asn_heatmaps = true\n';
const OFF = 'enable_circuit_heatmaps = false\nenable_site_heatmaps = false\nenable_asn_heatmaps = false\n';
const THRESHOLDS = '[rtt_thresholds]\ngreen_ms = 10\nyellow_ms = 20\nred_ms = 30\n';

const pct = (ms: number) => ({ p50: ms, p90: ms, p99: ms, samples: 10 });
const ASNS = [
  { asn: 15169, name: 'GOOGLE', country: 'US', flows: 42, rateBps: { down: 80e6, up: 4e6 }, bytes: { down: 9e9, up: 4e8 }, rttMs: 5, retransmits: 1, tcpPackets: 9000, retransmitPct: 0.1 },
  { asn: 2906, name: 'NETFLIX', country: 'US', flows: 7, rateBps: { down: 150e6, up: 2e6 }, bytes: { down: 2e10, up: 1e8 }, rttMs: 25, retransmits: 3, tcpPackets: 12000, retransmitPct: 0.1 },
  { asn: 3320, name: 'DTAG', country: 'DE', flows: 3, rateBps: { down: 2e6, up: 5e5 }, bytes: { down: 3e8, up: 4e7 }, rttMs: 121.7, retransmits: 40, tcpPackets: 600, retransmitPct: 7 },
];

function writeConfig(top: string, tail: string): void {
  writeFileSync(h.configPath, webConfig(h.dir, tail).replace('node_name = "test-node"\n', `node_name = "test-node"\n${top}`));
}

before(async () => {
  ensureBuilt();
  h = await startWebHarness({
    prefix: 'lqos-thresholds-',
    config: (dir) => webConfig(dir, THRESHOLDS).replace('node_name = "test-node"\n', `node_name = "test-node"\n${ON}`),
    devices: devicesCsv(),
    network: `${JSON.stringify(NETWORK, null, 2)}\n`,
    webRoot: DIST,
    wsIntervalMs: 200,
  });
  const view = { id: 'c-1001', name: 'Maria Lopez', parentPath: 'Downtown/Tower_North', downBps: 42e6, upBps: 3e6, downPps: 0, upPps: 0, ceilDownMbps: 100, ceilUpMbps: 20, utilDownPct: 42, utilUpPct: 15 };
  let tick = 0;
  unregister.push(
    h.channels.register('throughput', () => ({
      at: Date.now(),
      dataplane: true,
      totals: { downBps: 300e6, upBps: 50e6, shapedDownBps: 290e6, shapedUpBps: 49e6 },
      nodes: [{ path: 'Downtown', name: 'Downtown', depth: 0, downBps: 600e6 + (tick++ % 5) * 50e6, upBps: 80e6, ceilDownMbps: 1000, ceilUpMbps: 500 }],
      ring: { totals: { t: [], down: [], up: [], shapedDown: [], shapedUp: [] }, nodes: {} },
    })),
    h.channels.register('circuits', () => ({ at: Date.now(), topDownload: [view], topUpload: [view], activeCount: 1, active: [view] })),
    h.channels.register('flows', () => ({
      at: Date.now(),
      activeFlows: 52,
      globe: [],
      asns: ASNS,
      countries: [],
      circuits: [{ circuitHash: '1', circuitId: 'c-1001', circuitName: 'Maria Lopez', tcHandle: 0, activeFlows: 3, rateBps: { down: 42e6, up: 3e6 }, rtt: { customer: pct(25), internet: pct(12) }, retransmits: { down: 0, up: 0, packetsDown: 0, packetsUp: 0, pctDown: null, pctUp: null }, flows: [] }],
      topFlows: [],
      recent: [],
    })),
  );
  await setupUsers(h);
  b = await launchBrowser();
  await login(b.page, h.base, ADMIN);
});
after(async () => {
  await b?.close();
  for (const off of unregister) off();
  await h?.close();
});

test('rttColor: green at or below green_ms, yellow at yellow_ms, red at or above red_ms', () => {
  const t = { greenMs: 10, yellowMs: 20, redMs: 30 };
  assert.equal(rttColor(5, t), 'rgb(63, 185, 80)');
  assert.equal(rttColor(10, t), 'rgb(63, 185, 80)');
  assert.equal(rttColor(20, t), 'rgb(210, 153, 34)');
  assert.equal(rttColor(25, t), 'rgb(229, 117, 54)');
  assert.equal(rttColor(30, t), 'rgb(248, 81, 73)');
  assert.equal(rttColor(121.7, t), 'rgb(248, 81, 73)');
  assert.equal(rttColor(null, t), '#8b949e');
  // Upstream's defaults 0/100/200: 25 ms is still mostly green, 121.7 ms between yellow and red.
  assert.deepEqual(DEFAULT_RTT_THRESHOLDS, { greenMs: 0, yellowMs: 100, redMs: 200 });
  assert.notEqual(rttColor(25), rttColor(25, t));
});

test('heatmap buckets: per-bucket means on a continuous timeline; RTT scaled by the thresholds', () => {
  const g = bucketize([{ t: 1000, values: [10, 100] }, { t: 5000, values: [30, null] }, { t: 32_000, values: [40, 50] }], 2, 10_000, 4);
  assert.deepEqual(g.buckets, [0, 10_000, 20_000, 30_000]);
  assert.deepEqual(g.cells, [[0, 0, 20], [0, 1, 100], [3, 0, 40], [3, 1, 50]]);
  const t = { greenMs: 10, yellowMs: 20, redMs: 30 };
  assert.deepEqual([5, 10, 15, 20, 25, 30, 99].map((ms) => rttScale(ms, t)), [0, 0, 0.25, 0.5, 0.75, 1, 1]);
});

test('status payload carries rtt_thresholds and the heatmap switches', async () => {
  const s = await b.page.request.get(`${h.base}/api/status`);
  const j = (await s.json()) as { rttThresholds: unknown; heatmaps: unknown };
  assert.deepEqual(j.rttThresholds, { greenMs: 10, yellowMs: 20, redMs: 30 });
  assert.deepEqual(j.heatmaps, { circuit: true, site: true, asn: true });
});

/** Background colours of the ASN page's RTT swatches, by ASN, once they are `want` (the status loads after the page). */
async function asnSwatches(want: Record<string, string>): Promise<Record<string, string>> {
  const { page } = b;
  await page.goto(`${h.base}/asn-analysis`);
  await page.getByTestId('asn-table').waitFor();
  let got: Record<string, string> = {};
  for (let i = 0; i < 50; i++) {
    got = Object.fromEntries(
      await Promise.all(
        ASNS.map(async (a) => [a.name, await page.locator(`tr[data-asn="${a.asn}"] [data-testid=asn-rtt] .swatch`).evaluate((e) => getComputedStyle(e).backgroundColor)] as const),
      ),
    );
    if (JSON.stringify(got) === JSON.stringify(want)) break;
    await page.waitForTimeout(100);
  }
  return got;
}

test('rtt_thresholds green_ms / yellow_ms / red_ms colour the RTTs of the ASN page', async () => {
  const want = { GOOGLE: 'rgb(63, 185, 80)', NETFLIX: 'rgb(229, 117, 54)', DTAG: 'rgb(248, 81, 73)' };
  assert.deepEqual(await asnSwatches(want), want);
  await shot(b.page, 'thresholds-asn-10-20-30');
  // Other thresholds in lqos.conf → other colours after the reload.
  writeConfig('', '[rtt_thresholds]\ngreen_ms = 30\nyellow_ms = 130\nred_ms = 500\n');
  await h.ctx.reloadConfig();
  const want2 = { GOOGLE: 'rgb(63, 185, 80)', NETFLIX: 'rgb(63, 185, 80)', DTAG: rttColor(121.7, { greenMs: 30, yellowMs: 130, redMs: 500 }) };
  assert.notEqual(want2.DTAG, want.DTAG);
  assert.deepEqual(await asnSwatches(want2), want2);
  writeConfig(ON, THRESHOLDS);
  await h.ctx.reloadConfig();
});

async function cellsOf(testId: string): Promise<number> {
  const chart = b.page.getByTestId(testId).locator('.heatmap-chart');
  await chart.locator('canvas').first().waitFor();
  await b.page.waitForFunction((id) => Number(document.querySelector(`[data-testid=${id}] .heatmap-chart`)?.getAttribute('data-cells')) > 0, testId);
  return Number(await chart.getAttribute('data-cells'));
}

test('enable_circuit_heatmaps / enable_site_heatmaps / enable_asn_heatmaps on: each page shows its heatmap', async () => {
  const { page } = b;
  await page.goto(`${h.base}/circuit/c-1001`);
  await page.getByTestId('circuit-live').getByText('42 % of plan').waitFor();
  await cellsOf('circuit-heatmap');
  // A bucket gets a cell per row that has a sample in it, and the newest bucket can have its rates
  // before its RTT sample (CI saw 5 cells once): wait (5 s at most) for a moment when every bucket
  // has all three, then hold the chart to it.
  await page.waitForFunction(() => {
    const n = Number(document.querySelector('[data-testid=circuit-heatmap] .heatmap-chart')?.getAttribute('data-cells'));
    return n >= 3 && n % 3 === 0;
  }, undefined, { timeout: 5_000 }).catch(() => undefined);
  const cells = Number(await page.getByTestId('circuit-heatmap').locator('.heatmap-chart').getAttribute('data-cells'));
  assert.ok(cells >= 3 && cells % 3 === 0, `download, upload and RTT per bucket (${cells} cells)`);
  await page.waitForTimeout(400);
  await shot(page, 'heatmap-circuit');
  await page.goto(`${h.base}/tree?node=Downtown`);
  assert.ok((await cellsOf('site-heatmap')) >= 2);
  await page.waitForTimeout(400);
  await shot(page, 'heatmap-site');
  await page.goto(`${h.base}/asn-analysis`);
  assert.ok((await cellsOf('asn-heatmap')) >= 6, 'throughput and RTT of the busiest ASNs');
  await page.waitForTimeout(400);
  await shot(page, 'heatmap-asn');
});

test('enable_*_heatmaps = false: no heatmap on any of the pages', async () => {
  writeConfig(OFF, THRESHOLDS);
  await h.ctx.reloadConfig();
  assert.match(readFileSync(h.configPath, 'utf8'), /enable_asn_heatmaps = false/);
  const { page } = b;
  await page.goto(`${h.base}/circuit/c-1001`);
  await page.getByTestId('circuit-live').getByText('42 % of plan').waitFor();
  await page.goto(`${h.base}/tree?node=Downtown`);
  await page.getByTestId('tree-table').waitFor();
  assert.equal(await page.getByTestId('site-heatmap').count(), 0);
  await page.goto(`${h.base}/circuit/c-1001`);
  await page.getByTestId('circuit-live').getByText('42 % of plan').waitFor();
  await page.waitForTimeout(600);
  assert.equal(await page.getByTestId('circuit-heatmap').count(), 0);
  await page.goto(`${h.base}/asn-analysis`);
  await page.getByTestId('asn-table').waitFor();
  await page.waitForTimeout(600);
  assert.equal(await page.getByTestId('asn-heatmap').count(), 0);
  await shot(page, 'heatmap-asn-off');
});
