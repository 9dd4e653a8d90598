// test-gate: shared (a browser against an in-process web server: no kernel state, no measured rates; see test/support/gate.ts)
/**
 * The Circuit page an operator reads when a customer calls (issue 18): live queue statistics per
 * direction with the leaf qdisc actually in use (and CAKE's tins), the circuit's flows by bytes with
 * RTT, retransmits and ASN/country, its devices with current rate and last seen, the History link;
 * privacy mode; the empty states that say why. lqosd's side is GET /api/circuits/:id/live and
 * /flows on the fake context (their payloads are tested in test/web/circuitDetail.test.ts and
 * against real telemetry in test/telemetry/circuitDetail.test.ts).
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import type { CircuitTelemetry } from '../../lib/api/circuit.ts';
import type { CircuitFlowView, FlowSnapshot, FlowView } from '../../lib/api/flows.ts';
import { type Browser, bodyText, shot } from '../support/browser.ts';
import { browserAsAdmin, closeUi, leakedPii, startUiHarness, type UiHarness } from './helpers.ts';

let h: UiHarness;
let b: Browser;

const tin = (name: string, drops: number, marks: number, avg: number) => ({ name, sent_bytes: 1_500_000, sent_packets: 1000, drops, ecn_mark: marks, ack_drops: 0, backlog_bytes: 0, avg_delay_us: avg, peak_delay_us: avg * 4, base_delay_us: 50 });
const side = (kind: string, dDrops: number, dMarks: number, backlog: number) => ({
  kind, drops: 1234, overlimits: 0, requeues: 0, ecnMarks: 56, backlog, qlen: 3, dDrops, dOverlimits: 0, dEcnMarks: dMarks, dRequeues: 0, dPackets: 2400,
});

/** Telemetry of c-1002 (Whitaker): the router busy 2 s ago, the office AP never seen; download leaf fq_codel, upload CAKE. */
function telemetry(): CircuitTelemetry {
  const now = Date.now();
  const up = { ...side('cake', 0, 6, 0), tins: [tin('Bulk', 0, 0, 0), tin('Best Effort', 7, 6, 2500), tin('Video', 0, 0, 0), tin('Voice', 0, 0, 300)].map((t) => ({
    name: t.name, sentBytes: t.sent_bytes, sentPackets: t.sent_packets, drops: t.drops, ecnMarks: t.ecn_mark, ackDrops: 0, backlogBytes: 0, avgDelayUs: t.avg_delay_us, peakDelayUs: t.peak_delay_us, baseDelayUs: 50,
  })) };
  return {
    at: now,
    dataplane: true,
    rates: { id: 'c-1002', name: 'Jonathan Whitaker', parentPath: 'Downtown/Tower_North', downBps: 15e6, upBps: 2e6, downPps: 1300, upPps: 400, ceilDownMbps: 250, ceilUpMbps: 50, utilDownPct: 6, utilUpPct: 4 },
    queues: { at: now - 400, dtMs: 2000, view: { id: 'c-1002', name: 'Jonathan Whitaker', down: side('fq_codel', 20, 4, 3028), up } },
    hosts: [{ key: '100.64.10.12', downBps: 15e6, upBps: 2e6, downBytes: 48_200_000, upBytes: 3_100_000, lastSeenMs: now - 2000 }],
  };
}

function flow(id: string, remoteIp: string, down: number, asn: number | null, country: string | null): FlowView {
  return {
    id, protocol: 'tcp', localIp: '100.64.10.12', localPort: 51000, remoteIp, remotePort: 443, bytes: { down, up: down / 20 }, packets: { down: 100, up: 50 },
    rateBps: { down: down / 2, up: down / 40 }, retransmits: { down: 3, up: 1 }, rttMs: { customer: 6.5, internet: 18, total: 24.5 }, durationMs: 9000, endStatus: 'open',
    tcHandle: 0, circuitHash: '9', circuitId: 'c-1002', circuitName: 'Jonathan Whitaker', asn, asName: asn ? 'Example Video' : null, country, remoteKind: asn ? 'public' : 'private',
  };
}
const pct = (p50: number) => ({ p50, p90: p50 * 2, p99: p50 * 3, samples: 20 });
const summary: CircuitFlowView = {
  circuitHash: '9', circuitId: 'c-1002', circuitName: 'Jonathan Whitaker', tcHandle: 0, activeFlows: 2, rateBps: { down: 15e6, up: 2e6 },
  rtt: { customer: pct(6.5), internet: pct(18) }, retransmits: { down: 3, up: 1, packetsDown: 400, packetsUp: 100, pctDown: 0.75, pctUp: 1 }, flows: [],
};

before(async () => {
  h = await startUiHarness();
  b = await browserAsAdmin(h);
});
after(async () => closeUi(b, h));

function on(): void {
  h.ctx.circuitTelemetry = (id) => (id === 'c-1002' ? telemetry() : undefined);
  h.ctx.flows = () => ({ at: Date.now(), circuits: [summary] }) as unknown as FlowSnapshot;
  h.ctx.circuitFlows = (id) => (id === 'c-1002' ? [flow('f-small', '192.168.1.20', 40_000, null, null), flow('f-big', '203.0.113.9', 62_000_000, 64501, 'US')] : []);
}
function off(): void {
  delete h.ctx.circuitTelemetry;
  delete h.ctx.flows;
  delete h.ctx.circuitFlows;
}
const rows = async (testId: string) => (await b.page.getByTestId(testId).locator('tbody tr').allInnerTexts()).map((r) => r.split('\t').map((x) => x.trim()));

test('queues per direction with the leaf in use, CAKE tins, devices with rate and last seen, flows by bytes, the History link', async () => {
  on();
  await b.page.goto(`${h.base}/circuit/c-1002`);
  const q = b.page.getByTestId('circuit-queues');
  await b.page.getByTestId('queue-drops-down').getByText(/\/s/).waitFor();
  assert.equal(await b.page.getByTestId('leaf-live-down').innerText(), 'fq_codel — fallback: this kernel has no cake');
  assert.match(await b.page.getByTestId('leaf-planned-down').innerText(), /^cake\b/);
  assert.equal(await b.page.getByTestId('leaf-live-up').innerText(), 'cake', 'tc reports the planned kind: no fallback, whatever the last run said');
  assert.equal(await b.page.getByTestId('queue-drops-down').innerText(), '10/s 1,234 in all', '20 drops over 2 s');
  assert.equal(await b.page.getByTestId('queue-marks-down').innerText(), '2/s 56 in all');
  assert.equal(await b.page.getByTestId('queue-backlog-down').innerText(), '3.0 kB 3 packets');
  assert.equal(await b.page.getByTestId('queue-packets-up').innerText(), '1200/s');
  assert.deepEqual(await rows('cake-tins-up'), [
    ['Bulk', '1.5 MB 1,000 pkts', '0', '0', '0 B', '0.0 ms', '0.0 ms'],
    ['Best Effort', '1.5 MB 1,000 pkts', '7', '6', '0 B', '2.5 ms', '10.0 ms'],
    ['Video', '1.5 MB 1,000 pkts', '0', '0', '0 B', '0.0 ms', '0.0 ms'],
    ['Voice', '1.5 MB 1,000 pkts', '0', '0', '0 B', '0.3 ms', '1.2 ms'],
  ]);
  assert.equal(await b.page.getByTestId('cake-tins-down').count(), 0, 'fq_codel has no tins');
  assert.match(await q.innerText(), /Per-second figures over the last 2 s/);

  const router = (await b.page.getByTestId('device-row-d-1002').innerText()).split('\t').map((x) => x.trim());
  assert.deepEqual(router.slice(5, 7), ['15.0 Mbps', '2.0 Mbps']);
  assert.match(router[7]!, /^[23]s ago$/, `router last seen: ${router[7]}`);
  const ap = (await b.page.getByTestId('device-row-d-1003').innerText()).split('\t').map((x) => x.trim());
  assert.deepEqual(ap.slice(5, 8), ['0 bps', '0 bps', 'never']);
  const addrs = await rows('circuit-addresses');
  assert.deepEqual(addrs.map((r) => r.slice(0, 6)), [
    ['100.64.10.12/32', 'Whitaker router', '15.0 Mbps', '2.0 Mbps', '48.2 MB', '3.1 MB'],
    ['100.64.10.13/32', 'Whitaker office AP', '0 bps', '0 bps', '0 B', '0 B'],
  ]);

  await b.page.getByTestId('flows-table').waitFor();
  assert.match(await b.page.getByTestId('flows-summary').innerText(), /2 active flows · RTT p50 customer 6\.5 ms, internet 18\.0 ms .* TCP retransmits ↓ 0\.75 % ↑ 1\.00 %/);
  assert.deepEqual(await rows('flows-table'), [
    ['203.0.113.9:443', 'tcp', 'AS64501 Example Video', 'US', '31.0 Mbps', '1.6 Mbps', '62.0 MB', '3.1 MB', '24.5 ms', '3 / 1', '100.64.10.12:51000'],
    ['192.168.1.20:443', 'tcp', 'private', '—', '20.0 kbps', '1.0 kbps', '40.0 kB', '2.0 kB', '24.5 ms', '3 / 1', '100.64.10.12:51000'],
  ]);
  const link = b.page.getByTestId('circuit-history-link');
  assert.equal(await link.getAttribute('href'), '/history?scope=circuit&id=c-1002');
  await shot(b.page, 'circuit-depth');
  assert.deepEqual(b.errors, []);
});

test('the page follows the live counters (polled)', async () => {
  on();
  await b.page.goto(`${h.base}/circuit/c-1002`);
  await b.page.getByTestId('queue-drops-down').getByText('10/s').waitFor();
  const busier = telemetry;
  h.ctx.circuitTelemetry = () => {
    const t = busier();
    t.queues.view!.down!.dDrops = 90;
    return t;
  };
  await b.page.getByTestId('queue-drops-down').getByText('45/s').waitFor({ timeout: 6000 });
});

test('privacy mode masks names, addresses and flow endpoints', async () => {
  on();
  await b.page.evaluate(() => localStorage.setItem('redact', 'true'));
  try {
    await b.page.goto(`${h.base}/circuit/c-1002`);
    await b.page.getByTestId('flows-table').waitFor();
    await b.page.getByTestId('circuit-addresses').waitFor();
    assert.deepEqual(await leakedPii(b.page), []);
    const text = await bodyText(b.page);
    assert.ok(!text.includes('203.0.113.9') && !text.includes('192.168.1.20'), 'remote addresses are masked too');
    await shot(b.page, 'circuit-depth-privacy');
  } finally {
    await b.page.evaluate(() => localStorage.setItem('redact', 'false'));
  }
});

test('empty states say why: no telemetry, flow tracking off, no flows, a leaf not read yet', async () => {
  off();
  await b.page.goto(`${h.base}/circuit/c-1002`);
  await b.page.getByTestId('flows-off').waitFor();
  assert.match(await b.page.getByTestId('flows-off').innerText(), /^Flow tracking is not running on this lqosd/);
  assert.match(await b.page.getByTestId('live-unavailable').innerText(), /^Telemetry is not running on this lqosd/);
  assert.match(await b.page.getByTestId('queue-note').innerText(), /^Telemetry is not running/);
  assert.match(await b.page.getByTestId('leaf-live-down').innerText(), /^fq_codel \(not read from tc yet\) — fallback: this kernel has no cake$/);
  assert.deepEqual((await b.page.getByTestId('device-row-d-1002').innerText()).split('\t').map((x) => x.trim()).slice(5, 8), ['—', '—', '—']);
  await shot(b.page, 'circuit-depth-off');

  on();
  h.ctx.circuitFlows = () => [];
  await b.page.goto(`${h.base}/circuit/c-1001`);
  await b.page.getByTestId('flows-empty').waitFor();
  assert.match(await b.page.getByTestId('flows-empty').innerText(), /^No tracked flow for this circuit right now/);
  assert.deepEqual(b.errors, []);
});
