// test-gate: shared (a browser against an in-process web server: no kernel state, no measured rates; see test/support/gate.ts)
/**
 * The pages beyond the first slice, without telemetry or flow tracking: CPU Tree / CPU Weights (circuit
 * counts per CPU from the plan), Site Map (a circle per site with coordinates, the others listed),
 * Flow Globe / ASN Analysis ("not available"), navigation, and privacy mode on all of them.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { readFileSync, writeFileSync } from 'node:fs';
import { bodyText, type Browser, shot } from '../support/browser.ts';
import { browserAsAdmin, closeUi, leakedPii, NETWORK, SITE_NAMES, startUiHarness, type UiHarness } from './helpers.ts';

let h: UiHarness;
let b: Browser;

before(async () => {
  h = await startUiHarness();
  b = await browserAsAdmin(h);
});
after(async () => {
  await closeUi(b, h);
});

interface ApiCircuit {
  id: string;
  name: string;
  queue: number;
  download: { ceilMbps: number };
}

async function expectedPerCpu(): Promise<Map<number, { count: number; ceilDown: number }>> {
  const r = await b.page.request.get(`${h.base}/api/circuits`);
  const { circuits } = (await r.json()) as { circuits: ApiCircuit[] };
  const q = (await (await b.page.request.get(`${h.base}/api/plan/queues`)).json()) as { queues: number };
  const m = new Map<number, { count: number; ceilDown: number }>();
  for (let i = 0; i < q.queues; i++) m.set(i, { count: 0, ceilDown: 0 });
  for (const c of circuits) {
    const e = m.get(c.queue - 1)!;
    e.count++;
    e.ceilDown += c.download.ceilMbps;
  }
  return m;
}

test('navigation lists the new pages', async () => {
  const { page } = b;
  await page.goto(`${h.base}/`);
  await page.getByTestId('plan-summary').waitFor();
  const nav = page.getByTestId('nav-more');
  await nav.locator('summary').click();
  for (const [name, path] of [
    ['Site Map', '/site-map'],
    ['Flow Globe', '/flow-globe'],
    ['ASN Analysis', '/asn-analysis'],
    ['CPU Tree', '/cpu-tree'],
    ['CPU Weights', '/cpu-weights'],
  ]) {
    assert.equal(await nav.getByRole('link', { name }).getAttribute('href'), path);
  }
  await nav.getByRole('link', { name: 'CPU Weights' }).click();
  await page.waitForURL('**/cpu-weights');
  // the menu closes after a choice
  assert.equal(await nav.evaluate((d) => (d as HTMLDetailsElement).open), false);
  // integration pages are tabs of the configuration
  await page.goto(`${h.base}/config/general`);
  const tabs = page.getByTestId('config-tabs');
  for (const [name, key] of [
    ['Integration Common', 'common'],
    ['UISP', 'uisp'],
    ['Splynx', 'splynx'],
    ['VISP', 'visp'],
    ['Netzur', 'netzur'],
    ['Powercode', 'powercode'],
    ['Sonar', 'sonar'],
    ['WISPGate', 'wispgate'],
  ]) {
    assert.equal(await tabs.getByRole('link', { name, exact: true }).getAttribute('href'), `/config/integrations/${key}`);
  }
});

test('CPU Weights shows circuit counts and summed ceilings per CPU, and charts', async () => {
  const { page } = b;
  const want = await expectedPerCpu();
  assert.ok(want.size >= 2, 'the test plan uses two queues');
  await page.goto(`${h.base}/cpu-weights`);
  await page.getByTestId('cpu-table').waitFor();
  assert.equal(await page.getByTestId('cpu-table').locator('tbody tr').count(), want.size);
  for (const [cpu, e] of want) {
    assert.equal(await page.locator(`[data-testid=cpu-circuits][data-cpu="${cpu}"]`).innerText(), String(e.count), `circuits on CPU ${cpu}`);
    assert.equal(await page.locator(`[data-testid=cpu-ceil-down][data-cpu="${cpu}"]`).innerText(), `${Number(e.ceilDown.toFixed(3))} Mbps`);
  }
  await page.getByTestId('chart-cpu-circuits').locator('canvas').waitFor();
  await page.getByTestId('chart-cpu-ceilings').locator('canvas').waitFor();
  if (!h.channels.names().includes('cpu')) await page.getByTestId('cpu-load-missing').waitFor();
  if (!h.channels.names().includes('circuits')) await page.getByTestId('cpu-throughput-missing').waitFor();
  await shot(page, '40-cpu-weights');
});

test('CPU Tree puts each top-level node and its circuits on its CPU', async () => {
  const { page } = b;
  const want = await expectedPerCpu();
  const tree = (await (await page.request.get(`${h.base}/api/network-tree`)).json()) as { nodes: { name: string; parent: string | null; queue: number }[] };
  await page.goto(`${h.base}/cpu-tree`);
  await page.getByTestId('cpu-card').first().waitFor();
  assert.equal(await page.getByTestId('cpu-card').count(), want.size);
  for (const [cpu, e] of want) {
    const card = page.locator(`[data-testid=cpu-card][data-cpu="${cpu}"]`);
    assert.equal(await card.getByTestId('cpu-circuits').innerText(), String(e.count));
    const text = await card.innerText();
    for (const n of tree.nodes.filter((x) => x.parent === null)) {
      assert.equal(text.includes(n.name), n.queue - 1 === cpu, `${n.name} on CPU ${cpu}`);
    }
  }
  // circuits of a CPU on demand
  const first = page.locator('[data-testid=cpu-card][data-cpu="0"]');
  await first.getByTestId('cpu-show-circuits').click();
  assert.equal(await first.getByTestId('cpu-circuit-list').locator('tbody tr').count(), want.get(0)!.count);
  await shot(page, '41-cpu-tree');
});

test('Site Map draws a circle per site with coordinates and lists the others', async () => {
  const { page } = b;
  const withCoords: string[] = [];
  const without: string[] = [];
  const walk = (level: Record<string, any>) => {
    for (const [name, n] of Object.entries(level)) {
      (n.latitude !== undefined ? withCoords : without).push(name);
      if (n.children) walk(n.children);
    }
  };
  walk(NETWORK);
  await page.goto(`${h.base}/site-map`);
  await page.getByTestId('site-map').waitFor();
  await page.locator('[data-testid=site-map] path.country').first().waitFor();
  assert.equal(await page.getByTestId('site-circle').count(), withCoords.length);
  const titles = await page.locator('[data-testid=site-circle] title').allTextContents();
  for (const s of withCoords) assert.ok(titles.some((t) => t.startsWith(`${s} —`)), `circle for ${s}`);
  const unmapped = await page.getByTestId('unmapped-sites').innerText();
  for (const s of without) assert.ok(unmapped.includes(s), `${s} listed without coordinates`);
  // the countries come from the offline atlas
  assert.ok((await page.locator('[data-testid=site-map] path.country').count()) > 100);
  await page.getByTestId('site-circle').first().click({ force: true });
  await page.getByTestId('site-details').waitFor();
  await shot(page, '42-site-map');
});

test('Site Map: an AP without coordinates stands at its parent site; one under a site without coordinates stays listed', async () => {
  const { page } = b;
  const original = readFileSync(h.networkPath, 'utf8');
  try {
    const net = JSON.parse(original);
    net.Downtown.children.Tower_North.children = { AP_North_1: { downloadBandwidthMbps: 100, uploadBandwidthMbps: 50, type: 'AP' } };
    net.Riverside.children.AP_River_2 = { downloadBandwidthMbps: 100, uploadBandwidthMbps: 50, type: 'ap' };
    writeFileSync(h.networkPath, JSON.stringify(net));
    await page.goto(`${h.base}/site-map`);
    await page.locator('[data-testid=site-map] path.country').first().waitFor();
    const titles = await page.locator('[data-testid=site-circle] title').allTextContents();
    const ap = titles.find((t) => t.startsWith('AP_North_1'));
    assert.ok(ap, `AP_North_1 is drawn: ${titles.join(' | ')}`);
    assert.match(ap, /^AP_North_1 \(at its parent site: no coordinates of its own\) —/);
    const circles = page.getByTestId('site-circle');
    const at = async (name: string) => {
      const i = titles.findIndex((t) => t.startsWith(name));
      const c = circles.nth(i);
      return [Number(await c.getAttribute('cx')), Number(await c.getAttribute('cy'))];
    };
    assert.deepEqual(await at('AP_North_1'), await at('Tower_North —'), 'drawn where its site is');
    assert.match(await page.getByTestId('unmapped-sites').innerText(), /AP_River_2/, 'no site coordinates above it: listed');
  } finally {
    writeFileSync(h.networkPath, original);
  }
});

test('Flow Globe and ASN Analysis say when flow tracking is not available', async () => {
  const { page } = b;
  const route = await page.request.get(`${h.base}/api/flows`);
  if (route.status() !== 404 || h.channels.names().includes('flows')) return; // flow tracking is wired: flows-live.test.ts covers it
  await page.goto(`${h.base}/flow-globe`);
  await page.getByTestId('flows-unavailable').waitFor();
  assert.match(await page.getByTestId('flows-unavailable').innerText(), /Flow tracking is not available on this lqosd/);
  await shot(page, '43-flow-globe-unavailable');
  await page.goto(`${h.base}/asn-analysis`);
  await page.getByTestId('flows-unavailable').waitFor();
  await shot(page, '44-asn-unavailable');
});

test('Flow Globe and ASN Analysis show a failing /api/flows as a failure with its message, not as "not available"', async () => {
  const { page } = b;
  await page.route('**/api/flows', (r) => r.fulfill({ status: 500, contentType: 'application/json', body: JSON.stringify({ error: 'internal', message: 'flow table read failed: EIO' }) }));
  try {
    for (const path of ['/flow-globe', '/asn-analysis']) {
      await page.goto(`${h.base}${path}`);
      const alert = page.getByTestId('flows-error');
      await alert.waitFor({ timeout: 10_000 });
      assert.match(await alert.innerText(), /Flow data could not be loaded: .*flow table read failed: EIO.*This is a failure, not flow tracking being off: journalctl -u lqosd -b says why/s);
      assert.equal(await page.getByTestId('flows-unavailable').count(), 0, `${path}: not "unavailable"`);
    }
    await shot(page, '44b-asn-flows-error');
  } finally {
    await page.unroute('**/api/flows');
  }
});

test('CPU pages say when the plan\'s queue count could not be read (it was swallowed), and still draw the CPUs they know', async () => {
  const { page } = b;
  await page.route('**/api/plan/queues', (r) => r.fulfill({ status: 500, contentType: 'application/json', body: JSON.stringify({ error: 'internal', message: 'plan store unreadable' }) }));
  try {
    for (const path of ['/cpu-tree', '/cpu-weights']) {
      await page.goto(`${h.base}${path}`);
      const note = page.getByTestId('cpu-queue-note');
      await note.waitFor();
      assert.match(await note.innerText(), /^the plan's queue count could not be read \(plan store unreadable\): CPUs are counted from the nodes and circuits shown/);
    }
    await page.getByTestId('cpu-table').waitFor(); // still drawn, from the nodes and circuits it knows
  } finally {
    await page.unroute('**/api/plan/queues');
  }
});

test('Network Tree of a plan that shapes nothing: a sentence saying what to do, not an empty table', async () => {
  const { page } = b;
  await page.route('**/api/network-tree', (r) =>
    r.fulfill({ status: 200, contentType: 'application/json', body: JSON.stringify({ applied: true, link: { downloadMbps: 1000, uploadMbps: 1000 }, mode: 'shape', nodes: [], unparentedCircuits: 0 }) }),
  );
  await page.route('**/api/circuits', (r) => r.fulfill({ status: 200, contentType: 'application/json', body: JSON.stringify({ applied: true, circuits: [] }) }));
  try {
    await page.goto(`${h.base}/tree`);
    const empty = page.getByTestId('tree-empty');
    await empty.waitFor();
    assert.match(await empty.innerText(), /^The plan in force shapes nothing: .* then run LibreQoS\.$/s);
    assert.equal(await page.getByTestId('tree-table').count(), 0, 'no empty table');
  } finally {
    await page.unroute('**/api/network-tree');
    await page.unroute('**/api/circuits');
  }
});

test('privacy mode hides site names, circuit names and IPs on the new pages', async () => {
  const { page } = b;
  await page.goto(`${h.base}/`);
  await page.getByTestId('privacy-toggle').click();
  assert.equal(await page.getByTestId('privacy-toggle').getAttribute('aria-pressed'), 'true');
  const check = async (path: string) => {
    const text = await bodyText(page);
    const html = await page.content();
    assert.deepEqual(await leakedPii(page), [], `privacy leak on ${path}`);
    assert.deepEqual(SITE_NAMES.filter((s) => text.includes(s)), [], `site name on ${path}`);
    assert.deepEqual(SITE_NAMES.filter((s) => html.includes(s)), [], `site name in the DOM of ${path}`);
  };

  await page.goto(`${h.base}/site-map`);
  await page.getByTestId('site-circle').first().waitFor();
  await page.getByTestId('site-circle').first().click({ force: true });
  await page.getByTestId('site-details').waitFor();
  await check('/site-map');
  assert.ok((await bodyText(page)).includes('[site]'));
  await shot(page, '45-privacy-site-map');

  await page.goto(`${h.base}/cpu-tree`);
  await page.getByTestId('cpu-card').first().waitFor();
  for (const btn of await page.getByTestId('cpu-show-circuits').all()) await btn.click();
  await page.getByTestId('cpu-circuit-list').first().waitFor();
  await check('/cpu-tree');
  await shot(page, '46-privacy-cpu-tree');

  await page.goto(`${h.base}/cpu-weights`);
  await page.getByTestId('cpu-table').waitFor();
  await check('/cpu-weights');

  for (const path of ['/flow-globe', '/asn-analysis']) {
    await page.goto(`${h.base}${path}`);
    await page.locator('h1').waitFor();
    await page.waitForTimeout(300);
    await check(path);
  }
  await page.getByTestId('privacy-toggle').click();
  assert.deepEqual(b.errors, []);
});
