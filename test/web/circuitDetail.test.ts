// test-gate: shared (CPU only; see test/support/gate.ts)
/**
 * The Circuit page's API: GET /api/circuits/:id/live (rates, queues, the leaf in use, its devices'
 * addresses with last seen) and GET /api/circuits/:id/flows (its flows by bytes), on the fake
 * context with telemetry and flow tracking present, absent, or a dry run's plan.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { CircuitTelemetry } from '../../lib/api/circuit.ts';
import type { CircuitFlowView, FlowSnapshot, FlowView } from '../../lib/api/flows.ts';
import { setupUsers } from '../support/users.ts';
import { withHarness } from './helpers.ts';

const AT = Date.UTC(2026, 0, 1, 12, 0, 0);
const side = (kind: string, dDrops: number) => ({ kind, drops: 500, overlimits: 0, requeues: 0, ecnMarks: 30, backlog: 3028, qlen: 2, dDrops, dOverlimits: 0, dEcnMarks: 4, dRequeues: 0, dPackets: 900 });

/** c2 (Bob): d2 = 100.64.0.2 + 2001:db8::/56, d3 = 100.64.0.3; a counter of the /56 and one of d2's address; one no mapping names. */
const telemetry = (): CircuitTelemetry => ({
  at: AT,
  dataplane: true,
  rates: { id: 'c2', name: 'Bob', parentPath: 'SiteA/AP_1', downBps: 12e6, upBps: 1e6, downPps: 1000, upPps: 200, ceilDownMbps: 50, ceilUpMbps: 10, utilDownPct: 24, utilUpPct: 10 },
  queues: { at: AT - 500, dtMs: 2000, view: { id: 'c2', name: 'Bob', down: side('pfifo', 20), up: undefined } },
  hosts: [
    { key: '100.64.0.2', downBps: 2e6, upBps: 5e5, downBytes: 9_000_000, upBytes: 400_000, lastSeenMs: AT - 3000 },
    { key: '2001:db8::/56', downBps: 10e6, upBps: 5e5, downBytes: 50_000_000, upBytes: 1_000_000, lastSeenMs: AT - 1000 },
    { key: '100.64.9.9', downBps: 0, upBps: 0, downBytes: 10, upBytes: 0, lastSeenMs: AT - 90_000 },
  ],
});

function flow(id: string, down: number, up: number): FlowView {
  return {
    id, protocol: 'tcp', localIp: '100.64.0.2', localPort: 40000, remoteIp: '198.51.100.7', remotePort: 443, bytes: { down, up }, packets: { down: 10, up: 10 },
    rateBps: { down: down * 8, up: up * 8 }, retransmits: { down: 1, up: 0 }, rttMs: { customer: 4, internet: 20, total: 24 }, durationMs: 5000, endStatus: 'open',
    tcHandle: 0, circuitHash: '7', circuitId: 'c2', circuitName: 'Bob', asn: 64500, asName: 'Example Net', country: 'NL', remoteKind: 'public',
  };
}
const pct = { p50: 24, p90: 30, p99: 40, samples: 9 };
const summary: CircuitFlowView = {
  circuitHash: '7', circuitId: 'c2', circuitName: 'Bob', tcHandle: 0, activeFlows: 3, rateBps: { down: 1e6, up: 1e5 }, rtt: { customer: pct, internet: pct },
  retransmits: { down: 1, up: 0, packetsDown: 30, packetsUp: 30, pctDown: 3.33, pctUp: 0 }, flows: [flow('a', 100, 100)],
};
const snapshot = { at: AT, circuits: [summary] } as unknown as FlowSnapshot;

test('live: rates, the queue sides with a note for the missing one, the planned leaf and its fallback, every address joined to its device', async () => {
  await withHarness(async (h) => {
    const { viewer } = await setupUsers(h);
    h.ctx.circuitTelemetry = (id) => (id === 'c2' ? telemetry() : undefined);
    h.shaping.leafFallbacks = { cake: 'pfifo limit 1000', fq_codel: 'pfifo limit 1000' };
    h.shaping.lazyQueues = { mode: 'Htb', circuits: 2, materialised: 1, lazy: 1, created: 1, expired: 0 } as never;
    const r = await viewer.get('/api/circuits/c2/live');
    assert.equal(r.status, 200, r.text);
    const j = r.json;
    assert.equal(j.unavailable, null);
    assert.deepEqual(j.rates, { downBps: 12e6, upBps: 1e6, downPps: 1000, upPps: 200 });
    assert.deepEqual([j.queues.dtMs, j.queues.download.kind, j.queues.download.dDrops, j.queues.upload], [2000, 'pfifo', 20, null]);
    assert.match(j.queues.note, /^Lazy queues \(Htb\): an idle circuit has no leaf qdisc/);
    const planned = h.plan.circuits.find((c) => c.id === 'c2')!.download.leaf!;
    assert.deepEqual(j.leaf.download, { planned: [planned.kind, ...planned.args].join(' '), fallback: 'pfifo limit 1000', live: 'pfifo' });
    assert.equal(j.leaf.upload.live, null);
    assert.deepEqual(
      j.addresses.map((a: { deviceId: string | null; prefix: string; downBps: number; lastSeenMs: number | null }) => [a.deviceId, a.prefix, a.downBps, a.lastSeenMs]),
      [['d2', '2001:db8::/56', 10e6, AT - 1000], ['d2', '100.64.0.2/32', 2e6, AT - 3000], [null, '100.64.9.9', 0, AT - 90_000], ['d3', '100.64.0.3/32', 0, null]],
      'busiest first; d3 has no counter (never seen); a counter no mapping names is listed without a device',
    );
  });
});

test('live: why there are no numbers (telemetry off, no dataplane, a dry run), and 404 for an unknown circuit', async () => {
  await withHarness(async (h) => {
    const { viewer } = await setupUsers(h);
    let j = (await viewer.get('/api/circuits/c1/live')).json;
    assert.match(j.unavailable, /^Telemetry is not running on this lqosd/);
    assert.equal(j.rates, null);
    assert.deepEqual(j.addresses.map((a: { prefix: string; lastSeenMs: null }) => [a.prefix, a.lastSeenMs]), [['100.64.0.1/32', null]]);
    h.ctx.circuitTelemetry = () => ({ ...telemetry(), dataplane: false, hosts: [] });
    j = (await viewer.get('/api/circuits/c1/live')).json;
    assert.match(j.unavailable, /^No dataplane attached/);
    assert.match(j.queues.note, /^No dataplane attached/);
    // The 404 says which plan was searched: the applied one, a dry run's, or none yet.
    const missing = async () => ((await viewer.get('/api/circuits/nope/live')).json as { message: string }).message;
    assert.equal(await missing(), 'circuit nope is not in the applied plan');
    const plan = h.plan;
    h.ctx.appliedPlan = () => undefined;
    h.ctx.plannedPlan = () => plan;
    j = (await viewer.get('/api/circuits/c1/live')).json;
    assert.match(j.unavailable, /planned, not applied \(dry run\)/);
    assert.equal((await viewer.get('/api/circuits/nope/live')).status, 404);
    assert.equal((await viewer.get('/api/circuits/nope/flows')).status, 404);
    assert.equal(await missing(), 'circuit nope is not in the planned (dry-run) plan');
    h.ctx.plannedPlan = () => undefined;
    assert.equal(await missing(), 'circuit nope: no plan is applied yet (run LibreQoS or wait for the scheduler)');
  });
});

test('flows: most bytes first with the circuit summary, bounded by limit; off and empty states', async () => {
  await withHarness(async (h) => {
    const { viewer } = await setupUsers(h);
    let j = (await viewer.get('/api/circuits/c2/flows')).json;
    assert.deepEqual([j.available, j.flows, j.total], [false, [], 0]);
    assert.match(j.reason, /^Flow tracking is not running/);

    h.ctx.flows = () => snapshot;
    h.ctx.circuitFlows = (id) => (id === 'c2' ? [flow('small', 10, 5), flow('big', 9_000, 100), flow('mid', 50, 4_000)] : []);
    j = (await viewer.get('/api/circuits/c2/flows')).json;
    assert.equal(j.available, true);
    assert.deepEqual(j.flows.map((f: FlowView) => f.id), ['big', 'mid', 'small']);
    assert.deepEqual([j.total, j.summary.activeFlows, j.summary.retransmits.pctDown, 'flows' in j.summary], [3, 3, 3.33, false]);
    const two = await viewer.get('/api/circuits/c2/flows?limit=2');
    assert.equal(two.status, 200, two.text);
    j = two.json;
    assert.deepEqual([j.flows.length, j.total], [2, 3]);
    assert.equal((await viewer.get('/api/circuits/c2/flows?limit=0')).status, 400);
    assert.equal((await viewer.get('/api/circuits/c2/flows?limit=99999')).json.flows.length, 3, 'a large limit is capped, not refused');
    j = (await viewer.get('/api/circuits/c1/flows')).json;
    assert.deepEqual([j.available, j.summary, j.flows, j.total], [true, null, [], 0]);
  });
});
