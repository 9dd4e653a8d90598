// test-gate: shared (CPU only; see test/support/gate.ts)
/**
 * lqtop's pure parts: the screen (lib/cli/lqtopView.ts: units, widths, truncation, columns left out
 * on narrow terminals, control characters in names, the sort marker), the `top_circuits` reply
 * (lib/daemon/topCircuits.ts: sort orders, the join with flow tracking and queue stats, the limit),
 * the request's validation (lib/bus/protocol.ts) and lqosd's handler (lib/daemon/busHandlers.ts).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { CircuitFlowView, FlowSnapshot } from '../../lib/api/flows.ts';
import type { CircuitRateView, QueueCircuitView, QueueSideView, Totals } from '../../lib/api/telemetry.ts';
import { decodeRequest, type TopCircuitRow, type TopCircuitsReply, type TopCircuitsSort } from '../../lib/bus/protocol.ts';
import {
  displayWidth, formatDrops, formatPct, formatPlan, formatRate, formatRtt, formatUptime, KEY_HELP, MIN_NAME_WIDTH, renderFrame, rowsFor, sanitize, truncate, type ViewOptions,
} from '../../lib/cli/lqtopView.ts';
import { busHandlers, type DaemonParts } from '../../lib/daemon/busHandlers.ts';
import { topCircuitsData, type TopCircuitsSources } from '../../lib/daemon/topCircuits.ts';

// ---------------------------------------------------------------------------------------------
// Fixtures

function row(id: string, over: Partial<TopCircuitRow> = {}): TopCircuitRow {
  return {
    id, name: `Customer ${id}`, parentPath: 'Tower/AP', downBps: 48.9e6, upBps: 1.2e6, planDownMbps: 50, planUpMbps: 15,
    utilDownPct: 97.8, utilUpPct: 8, rttMs: 12.3, retransmitPct: 0.4, dropsPerSecond: 2, ...over,
  };
}

function reply(rows: TopCircuitRow[], over: Partial<TopCircuitsReply> = {}): TopCircuitsReply {
  return {
    at: 1_700_000_000_000, sortBy: 'total', totals: { downBps: 61.2e6, upBps: 9.4e6, shapedDownBps: 60e6, shapedUpBps: 9e6 },
    circuits: { shaped: 5, active: rows.length }, flows: true,
    lqosd: { version: '9.8.7', pid: 1, uptimeSeconds: 3725, dataplane: 'attached', degraded: null }, rows, ...over,
  };
}

const view = (over: Partial<ViewOptions> = {}): ViewOptions => ({ width: 120, height: 30, names: true, colour: false, sortBy: 'total', now: new Date(2026, 0, 1, 12, 34, 56), ...over });
const strip = (s: string) => s.replace(/\x1b\[[0-9;]*m/g, '');
/** The column header line (the 4th). */
const headerOf = (lines: string[]) => lines[3]!;

// ---------------------------------------------------------------------------------------------
// Units

test('rates: 3 significant digits with the unit stepped at 1000 (after rounding)', () => {
  const cases: Array<[number, string]> = [
    [0, '0 bps'], [999, '999 bps'], [999.6, '1.00 kbps'], [1234, '1.23 kbps'], [48.94e6, '48.9 Mbps'], [9.996e6, '10.0 Mbps'],
    [99.96e6, '100 Mbps'], [512e6, '512 Mbps'], [999.6e6, '1.00 Gbps'], [10e9, '10.0 Gbps'], [2.5e12, '2.50 Tbps'], [-1, '—'], [NaN, '—'],
  ];
  for (const [bps, text] of cases) assert.equal(formatRate(bps), text, `formatRate(${bps})`);
});

test('RTT, retransmits, drops, plan and uptime texts; unknown is —', () => {
  assert.deepEqual([formatRtt(null), formatRtt(0), formatRtt(0.034), formatRtt(0.996), formatRtt(3.24), formatRtt(12.6), formatRtt(1234)], ['—', '0.00 ms', '0.03 ms', '1 ms', '3.2 ms', '13 ms', '1234 ms']);
  assert.deepEqual([formatPct(null), formatPct(0), formatPct(0.44), formatPct(12.5)], ['—', '0%', '0.4%', '13%']);
  assert.deepEqual([formatDrops(null), formatDrops(0), formatDrops(2.5), formatDrops(120.4)], ['—', '0', '2.5', '120']);
  assert.equal(formatPlan(row('a', { planDownMbps: 2.5, planUpMbps: 0.25 })), '2.5/0.25');
  assert.equal(formatPlan(row('a', { planDownMbps: 1000, planUpMbps: 100 })), '1000/100');
  assert.deepEqual([formatUptime(59), formatUptime(3725), formatUptime(200_000)], ['0m59s', '1h02m', '2d7h']);
});

// ---------------------------------------------------------------------------------------------
// Text

test('display widths and truncation: wide characters count 2, a cut is marked …, never wider than asked', () => {
  assert.equal(displayWidth('abc'), 3);
  assert.equal(displayWidth('東京タワー'), 10);
  assert.equal(displayWidth('e\u0301'), 1, 'a combining accent takes no column');
  assert.equal(truncate('Fifty Meg Customer', 10), 'Fifty Meg…');
  assert.equal(truncate('short', 10), 'short');
  assert.equal(truncate('東京タワー', 6), '東京…', 'a wide character that would straddle the edge is left out');
  for (let w = 1; w <= 12; w++) assert.ok(displayWidth(truncate('東京タワーab', w)) <= w, `width ${w}`);
});

test('control characters in names cannot reach the terminal', () => {
  assert.equal(sanitize('a\x1b[2Jb\x07c\u202ed\x9b'), 'a?[2Jb?c?d?');
  const lines = renderFrame(reply([row('x', { name: 'Evil\x1b]0;owned\x07\x1b[2J' })]), view({ colour: true }));
  const escapes = lines.join('\n').match(/\x1b[^m]*m?/g) ?? [];
  for (const e of escapes) assert.match(e, /^\x1b\[[0-9;]*m$/, `only colour (SGR) sequences are written, found ${JSON.stringify(e)}`);
  assert.ok(lines.some((l) => strip(l).startsWith('Evil?]0;owned??[2J')), lines.join('\n'));
});

// ---------------------------------------------------------------------------------------------
// The frame

test('every line fits the terminal at any width, with and without colour; the frame fits its height', () => {
  const rows = [row('lab-50', { name: 'Fifty Meg Customer' }), row('wide', { name: '東京タワー顧客 with a long name that will not fit', rttMs: null, dropsPerSecond: null }), row('c', { downBps: 12.3e9, planDownMbps: 10000, planUpMbps: 10000 })];
  for (const colour of [false, true]) {
    for (let width = 10; width <= 200; width += 7) {
      for (const height of [3, 6, 7, 40]) {
        const lines = renderFrame(reply(rows), view({ width, height, colour }));
        assert.ok(lines.length <= height, `${lines.length} lines for height ${height}`);
        for (const l of lines) assert.ok(displayWidth(strip(l)) <= width, `width ${width} colour ${colour}: ${JSON.stringify(strip(l))} is ${displayWidth(strip(l))} wide`);
      }
    }
  }
  const full = renderFrame(reply(rows), view({ height: 40 }));
  assert.equal(full.length, 4 + rows.length + 1, full.join('\n'));
  assert.equal(full.at(-1), KEY_HELP);
  const short = renderFrame(reply(rows), view({ height: 7 }));
  assert.equal(rowsFor(7), 2);
  const names = short.slice(4, 6).map((l) => l.split(/\s{2,}/)[0]!);
  assert.deepEqual(names, ['Fifty Meg Customer', '東京タワー顧客 with a long name that will not f…'], 'as many rows as fit, in the order given');
  assert.equal(displayWidth(names[1]!), 48, 'a long name is cut at the widest circuit column (48)');
  assert.equal(short.at(-1), KEY_HELP);
});

test('a row shows the rates with units, plan, utilisation, RTT, retransmits and drops; — when unknown', () => {
  const lines = renderFrame(reply([row('lab-50', { name: 'Fifty Meg Customer' }), row('lab-25', { name: 'Twenty-five', rttMs: null, retransmitPct: null, dropsPerSecond: null, downBps: 200e3, upBps: 7.9e6 })]), view());
  assert.match(headerOf(lines), /^Circuit +Down▼ +Up▼ +Plan Mbps +Util % +RTT p50 +Retx +Drops\/s/);
  assert.deepEqual(lines[4]!.trim().split(/\s{2,}/), ['Fifty Meg Customer', '48.9 Mbps', '1.20 Mbps', '50/15', '98/8', '12 ms', '0.4%', '2']);
  assert.deepEqual(lines[5]!.trim().split(/\s{2,}/), ['Twenty-five', '200 kbps', '7.90 Mbps', '50/15', '98/8', '—', '—', '—']);
  assert.match(lines[0]!, /^lqtop  12:34:56  lqosd 9\.8\.7 \(attached, up 1h02m\)  5 circuits shaped, 2 active$/);
  assert.match(lines[1]!, /^Down 61\.2 Mbps  Up 9\.40 Mbps  sort: throughput  \(shaped 60\.0 Mbps \/ 9\.00 Mbps\)$/);
  const ids = renderFrame(reply([row('lab-50')]), view({ names: false }));
  assert.match(headerOf(ids), /^Circuit ID /);
  assert.match(ids[4]!, /^lab-50 /, 'n shows ids instead of names');
});

test('narrow terminals leave out the least useful columns first; the circuit column keeps its minimum', () => {
  const cols = (width: number) => headerOf(renderFrame(reply([row('a')]), view({ width }))).trim().split(/\s{2,}/).slice(1).map((h) => h.replace('▼', ''));
  assert.deepEqual(cols(120), ['Down', 'Up', 'Plan Mbps', 'Util %', 'RTT p50', 'Retx', 'Drops/s']);
  assert.deepEqual(cols(80), ['Down', 'Up', 'Util %', 'RTT p50', 'Retx', 'Drops/s'], 'plan goes first');
  assert.deepEqual(cols(60), ['Down', 'Up', 'Util %', 'RTT p50'], 'then retransmits and drops');
  assert.deepEqual(cols(40), ['Down', 'Up']);
  assert.deepEqual(cols(20), ['Down'], 'the download rate stays, whatever the width');
  for (const w of [40, 60, 80, 120]) {
    // The row: the name padded to the circuit column, two spaces, the download rate (the widest cell of its column).
    const name = renderFrame(reply([row('a')]), view({ width: w }))[4]!.indexOf('48.9 Mbps') - 2;
    assert.ok(name >= MIN_NAME_WIDTH, `width ${w}: the circuit column is ${name} wide`);
  }
});

test('the sort in force is named in the header and marked on its column(s)', () => {
  const marked = (sortBy: TopCircuitsSort) => {
    const lines = renderFrame(reply([row('a')], { sortBy }), view({ sortBy }));
    return { label: /sort: (\S+)/.exec(lines[1]!)![1], marked: headerOf(lines).trim().split(/\s{2,}/).filter((h) => h.endsWith('▼')) };
  };
  assert.deepEqual(marked('total'), { label: 'throughput', marked: ['Down▼', 'Up▼'] });
  assert.deepEqual(marked('download'), { label: 'download', marked: ['Down▼'] });
  assert.deepEqual(marked('upload'), { label: 'upload', marked: ['Up▼'] });
  assert.deepEqual(marked('rtt'), { label: 'RTT', marked: ['RTT p50▼'] });
});

test('problems and notes: an error line in red, degraded lqosd, no dataplane, no flow tracking, no traffic', () => {
  const err = renderFrame(reply([row('a')]), view({ error: 'lqosd is not running (no socket at /run/lqos/bus): systemctl status lqosd; retrying every 1 s', colour: true }));
  assert.equal(err[2], '\x1b[1;31mlqosd is not running (no socket at /run/lqos/bus): systemctl status lqosd; retrying every 1 s\x1b[0m');
  assert.match(strip(err[4]!), /^Customer a /, 'the last data stays on screen');
  assert.equal(renderFrame(reply([], { lqosd: { ...reply([]).lqosd, degraded: 'preflight failed' } }), view())[2], 'lqosd is degraded: preflight failed');
  const none = renderFrame(reply([], { note: 'no dataplane attached (dry run or degraded): no circuit rates' }), view());
  assert.equal(none[2], 'no dataplane attached (dry run or degraded): no circuit rates');
  assert.equal(none[4], 'no circuit has traffic');
  assert.equal(renderFrame(reply([row('a')], { flows: false }), view())[2], 'flow tracking is off: no RTT or retransmits');
  assert.equal(renderFrame(reply([row('a')]), view())[2], '');
});

// ---------------------------------------------------------------------------------------------
// The reply lqosd builds

const TOTALS: Totals = {
  downBps: 70e6, upBps: 20e6, downPps: 0, upPps: 0, shapedDownBps: 69e6, shapedUpBps: 19e6, unmappedDownBps: 1e6, unmappedUpBps: 1e6,
  unmappedDownPps: 0, unmappedUpPps: 0, hosts: 4, activeHosts: 4, unknownActiveHosts: 0,
};

function rate(id: string, down: number, up: number): CircuitRateView {
  return { id, name: `N ${id}`, parentPath: 'P', downBps: down, upBps: up, downPps: 0, upPps: 0, ceilDownMbps: 50, ceilUpMbps: 10, utilDownPct: down / 5e5, utilUpPct: up / 1e5 };
}

const pct = (p50: number | null) => ({ p50, p90: p50, p99: p50, samples: p50 === null ? 0 : 5 });
function flow(id: string, customer: number | null, internet: number | null, retrans?: [number, number, number, number]): CircuitFlowView {
  const [down, up, packetsDown, packetsUp] = retrans ?? [0, 0, 0, 0];
  return {
    circuitHash: '1', circuitId: id, circuitName: null, tcHandle: 0, activeFlows: 1, rateBps: { down: 0, up: 0 }, flows: [],
    rtt: { customer: pct(customer), internet: pct(internet) }, retransmits: { down, up, packetsDown, packetsUp, pctDown: null, pctUp: null },
  };
}
const side = (dDrops: number): QueueSideView => ({ kind: 'pfifo', drops: 100, overlimits: 0, requeues: 0, ecnMarks: 0, backlog: 0, qlen: 0, dDrops, dOverlimits: 0, dEcnMarks: 0, dRequeues: 0, dPackets: 10 });

function sources(over: Partial<TopCircuitsSources> = {}): TopCircuitsSources {
  const queues: Record<string, QueueCircuitView> = { a: { id: 'a', name: 'N a', down: side(6), up: side(2) }, b: { id: 'b', name: 'N b', down: side(0) } };
  return {
    at: 123, dataplane: true, totals: TOTALS, shaped: 10,
    // a: the most in total; b: the most down; c: the most up; d: idle but with the worst RTT; e: ties b's total.
    active: [rate('a', 30e6, 15e6), rate('b', 40e6, 1e6), rate('c', 1e6, 25e6), rate('d', 0.5e6, 0.1e6), rate('e', 39e6, 2e6)],
    activeCount: 5,
    queues: (id) => queues[id],
    queueDtMs: 2000,
    flows: { circuits: [flow('a', 20, 80, [3, 1, 300, 100]), flow('b', null, 45), flow('d', 300, null), flow(null as unknown as string, 999, 999)] } as unknown as FlowSnapshot,
    ...over,
  };
}
const ids = (by: TopCircuitsSort, limit = 10) => topCircuitsData(sources(), { limit, sortBy: by }).rows.map((r) => r.id);

test('top_circuits: each sort order, ties by total then id, the limit', () => {
  assert.deepEqual(ids('total'), ['a', 'b', 'e', 'c', 'd']);
  assert.deepEqual(ids('download'), ['b', 'e', 'a', 'c', 'd']);
  assert.deepEqual(ids('upload'), ['c', 'a', 'e', 'b', 'd']);
  assert.deepEqual(ids('rtt'), ['d', 'b', 'a', 'e', 'c'], 'highest RTT first (customer side, else Internet side); circuits without one last, by total');
  assert.deepEqual(ids('total', 2), ['a', 'b']);
  // b and e tie on total (41 Mbit/s): by id.
  const tie = topCircuitsData(sources({ active: [rate('z', 20e6, 1e6), rate('y', 20e6, 1e6)] }), { limit: 5, sortBy: 'total' });
  assert.deepEqual(tie.rows.map((r) => r.id), ['y', 'z']);
});

test('top_circuits: rows joined with flow tracking (RTT, retransmit share) and queue drops per second', () => {
  const r = topCircuitsData(sources(), { limit: 10, sortBy: 'total' });
  const a = r.rows.find((x) => x.id === 'a')!;
  assert.deepEqual(a, {
    id: 'a', name: 'N a', parentPath: 'P', downBps: 30e6, upBps: 15e6, planDownMbps: 50, planUpMbps: 10, utilDownPct: 60, utilUpPct: 150,
    rttMs: 20, retransmitPct: 1, dropsPerSecond: 4,
  });
  const b = r.rows.find((x) => x.id === 'b')!;
  assert.deepEqual([b.rttMs, b.retransmitPct, b.dropsPerSecond], [45, null, 0], 'Internet-side RTT when the customer side has none; no TCP packets: no share; a queue without drops: 0');
  const c = r.rows.find((x) => x.id === 'c')!;
  assert.deepEqual([c.rttMs, c.retransmitPct, c.dropsPerSecond], [null, null, null], 'no flows, no queue stats');
  assert.deepEqual(r.totals, { downBps: 70e6, upBps: 20e6, shapedDownBps: 69e6, shapedUpBps: 19e6 });
  assert.deepEqual([r.circuits, r.flows, r.at, r.sortBy, r.note], [{ shaped: 10, active: 5 }, true, 123, 'total', undefined]);
  const off = topCircuitsData(sources({ flows: undefined, dataplane: false, active: [], activeCount: 0 }), { limit: 5, sortBy: 'rtt' });
  assert.deepEqual([off.flows, off.rows, off.note], [false, [], 'no dataplane attached (dry run or degraded): no circuit rates']);
});

test('top_circuits request: defaults, bounds and unknown fields', () => {
  const ok = decodeRequest('{"id":1,"type":"top_circuits"}');
  assert.ok(ok.ok);
  assert.deepEqual(ok.request, { id: 1, type: 'top_circuits', limit: 20, sortBy: 'total' });
  const bad = (body: string, path: string | undefined) => {
    const d = decodeRequest(`{"id":1,"type":"top_circuits",${body}}`);
    assert.ok(!d.ok, body);
    assert.equal((d.reply as { error: { code: string } }).error.code, 'invalid');
    assert.deepEqual((d.reply as { error: { path: string[] } }).error.path, path === undefined ? [] : [path], body);
  };
  bad('"limit":0', 'limit');
  bad('"limit":1001', 'limit');
  bad('"limit":2.5', 'limit');
  bad('"sortBy":"latency"', 'sortBy');
  bad('"count":5', undefined);
  const rtt = decodeRequest('{"id":1,"type":"top_circuits","limit":1000,"sortBy":"rtt"}');
  assert.ok(rtt.ok && rtt.request.type === 'top_circuits' && rtt.request.limit === 1000 && rtt.request.sortBy === 'rtt');
});

test("lqosd's top_circuits handler: lqosd's state added; unavailable when telemetry is off", async () => {
  const parts = {
    version: '1.2.3', startedAt: new Date(0), now: () => new Date(90_000), host: { state: { state: 'attached' } }, status: { degraded: 'x' },
    topCircuits: (r: { limit: number }) => ({ ...topCircuitsData(sources(), { limit: r.limit, sortBy: 'total' }) }),
  } as unknown as DaemonParts;
  const res = (await busHandlers(parts).top_circuits!({ id: 1, type: 'top_circuits', limit: 2, sortBy: 'total' })) as TopCircuitsReply;
  assert.deepEqual(res.lqosd, { version: '1.2.3', pid: process.pid, uptimeSeconds: 90, dataplane: 'attached', degraded: 'x' });
  assert.equal(res.rows.length, 2);
  const off = busHandlers({ ...parts, topCircuits: undefined });
  assert.throws(() => off.top_circuits!({ id: 1, type: 'top_circuits', limit: 2, sortBy: 'total' }), { name: 'BusError', code: 'unavailable', message: /telemetry is off/ });
});
