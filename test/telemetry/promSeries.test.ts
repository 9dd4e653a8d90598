/**
 * /metrics beyond throughput (lib/telemetry/promSeries.ts through the telemetry service and
 * prom-client's text output): RTT, retransmit share, queue drops / ECN marks / backlog and byte
 * counters for the network, the top-level sites and the selected circuits — the busiest
 * `[web] metrics_top_circuits` (0: none) or, with `metrics_per_circuit`, every circuit with
 * traffic (and a warning on a big plan). HELP/TYPE lines, `_total` counters, escaped label values,
 * Circuit IDs only (no names). Injected counters, tc output and flow snapshot.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { HostCounters } from '../../dataplane/abi.ts';
import type { CircuitFlowView, FlowSnapshot } from '../../lib/api/flows.ts';
import { parseConfigText } from '../../lib/config/load.ts';
import type { ShapingPlan } from '../../lib/model.ts';
import { createShapingMetrics, RateGauges } from '../../lib/telemetry/metrics.ts';
import { PER_CIRCUIT_WARN_AT } from '../../lib/telemetry/promSeries.ts';
import { buildPlanIndex } from '../../lib/telemetry/rollup.ts';
import { startTelemetry, telemetryOptionsOf } from '../../lib/telemetry/service.ts';
import { stateContext } from '../support/context.ts';
import { capturingLogger } from '../support/log.ts';
import { parseExposition, sampleOf, type Exposition } from '../support/prometheus.ts';
import { testDir } from '../support/workspace.ts';
import { circuit, hc, testPlan } from './helpers.ts';

const qdiscs = readFileSync(join(import.meta.dirname, 'fixtures', 'tc-qdisc-cake.json'), 'utf8');
const conf = (web: string) => parseConfigText(`[bridge]\nto_internet = "eth0"\nto_network = "eth1"\n[web]\n${web}`, '/etc/lqos.conf').config;

function flowCircuit(id: string, p50: number, p90: number, samples: number, retrans: [number, number], packets: [number, number]): CircuitFlowView {
  const none = { p50: null, p90: null, p99: null, samples: 0 };
  return {
    circuitHash: '0', circuitId: id, circuitName: `Circuit ${id}`, tcHandle: 0, activeFlows: 1, rateBps: { down: 0, up: 0 }, flows: [],
    rtt: { customer: none, internet: { p50, p90, p99: p90, samples } },
    retransmits: { down: retrans[0], up: retrans[1], packetsDown: packets[0], packetsUp: packets[1], pctDown: (100 * retrans[0]) / packets[0], pctUp: (100 * retrans[1]) / packets[1] },
  };
}

/** c1 and c2 under site Tower, c3 under Site2. */
const flows = {
  circuits: [
    flowCircuit('c1', 12, 30, 50, [5, 1], [100, 50]),
    flowCircuit('c2', 40, 80, 10, [0, 0], [10, 10]),
    flowCircuit('c3', 20, 25, 5, [3, 0], [30, 0]),
  ],
} as unknown as FlowSnapshot;

/**
 * A telemetry service with `maxCircuitMetrics`: tick 1 baseline, tick 2 (1 s later) c1 at 20 Mbit/s
 * down, c3 8 down / 2 up, c2 4 down; two queue polls (c1's cake +40 drops between them); then a
 * scrape of the registry.
 */
async function scrapeWith(t: Parameters<typeof testDir>[0], maxCircuitMetrics: number, plan: ShapingPlan = testPlan()): Promise<Exposition> {
  const metrics = createShapingMetrics();
  let now = Date.UTC(2025, 0, 1);
  let counters = new Map<string, HostCounters>([['10.0.0.1', hc(0, 0)], ['10.1.2.128/25', hc(0, 0)], ['10.1.2.5', hc(0, 0)]]);
  let qd = qdiscs;
  const tel = startTelemetry(stateContext(testDir(t, 'lqprom-'), () => plan), {
    pinRoot: '/nonexistent', autoStart: false, historyPath: false, now: () => now, metrics, maxCircuitMetrics,
    readCounters: () => counters, readQdiscs: async () => qd, readProcStat: () => '', flows: () => flows,
  });
  try {
    await tel.tick();
    now += 1000;
    counters = new Map([['10.0.0.1', hc(2_500_000, 0, 2000)], ['10.1.2.128/25', hc(1_000_000, 250_000, 800, 300)], ['10.1.2.5', hc(500_000, 0, 400)]]);
    await tel.tick();
    await tel.pollQueues();
    const later = JSON.parse(qd) as { drops: number }[];
    later[2]!.drops += 40;
    qd = JSON.stringify(later);
    now += 2000;
    await tel.pollQueues();
    metrics.refresh();
    return parseExposition(await metrics.registry.metrics());
  } finally {
    await tel.stop();
  }
}

const value = (e: Exposition, name: string, labels: Record<string, string> = {}) => {
  const s = sampleOf(e, name, labels);
  assert.ok(s, `no sample ${name}${JSON.stringify(labels)}; present: ${[...new Set(e.samples.map((x) => x.name))].join(', ')}`);
  return s.value;
};
const circuitsOf = (e: Exposition) => [...new Set(e.samples.filter((s) => s.labels.circuit !== undefined).map((s) => s.labels.circuit))].sort();

test('network and site series: RTT (s), retransmit share, drops/marks counters, backlog, bytes; proper HELP/TYPE', async (t) => {
  const e = await scrapeWith(t, 20);
  // Bytes: 1 s at the tick's rates (20 + 8 + 4 Mbit/s down = 4 MB; 2 Mbit/s up = 250 kB).
  assert.equal(value(e, 'lqos_bytes_total', { direction: 'download' }), 4_000_000);
  assert.equal(value(e, 'lqos_bytes_total', { direction: 'upload' }), 250_000);
  assert.equal(value(e, 'lqos_site_bytes_total', { site: 'Tower', direction: 'download' }), 3_000_000);
  assert.equal(value(e, 'lqos_site_bytes_total', { site: 'Site2', direction: 'download' }), 1_000_000);
  // Drops: counted from the first poll's baseline on (+40 on c1's cake).
  assert.equal(value(e, 'lqos_queue_drops_total', { direction: 'download' }), 40, 'network drops since lqosd started: the +40 of c1');
  assert.equal(value(e, 'lqos_site_queue_drops_total', { site: 'Tower', direction: 'download' }), 40, "site Tower's drops since lqosd started: the +40 of c1");
  assert.equal(value(e, 'lqos_site_queue_drops_total', { site: 'Site2', direction: 'download' }), 0, 'no drops under Site2');
  assert.equal(value(e, 'lqos_site_queue_backlog_bytes', { site: 'Tower', direction: 'download' }), 3028, "c1's cake backlog");
  assert.equal(value(e, 'lqos_queue_backlog_bytes', { direction: 'download' }), 3028);
  // RTT: p50/p90 across the circuits' medians (nearest rank), in seconds.
  assert.equal(value(e, 'lqos_site_tcp_rtt_seconds', { site: 'Tower', quantile: '0.5' }), 0.012);
  assert.equal(value(e, 'lqos_site_tcp_rtt_seconds', { site: 'Tower', quantile: '0.9' }), 0.04);
  assert.equal(value(e, 'lqos_tcp_rtt_seconds', { quantile: '0.5' }), 0.02);
  // Retransmits: summed over the circuits, / their TCP packets.
  assert.equal(value(e, 'lqos_site_tcp_retransmit_ratio', { site: 'Tower', direction: 'download' }), 5 / 110);
  assert.equal(value(e, 'lqos_tcp_retransmit_ratio', { direction: 'download' }), 8 / 140);
  assert.equal(sampleOf(e, 'lqos_site_tcp_retransmit_ratio', { site: 'Site2', direction: 'upload' }), undefined, 'no TCP packets up: no ratio');
  for (const [name, type] of e.types) {
    assert.ok(e.helps.get(name), `${name} has a HELP line`);
    assert.equal(name.endsWith('_total'), type === 'counter', `${name}: counters and only counters end in _total (TYPE ${type})`);
  }
  assert.equal(e.types.get('lqos_circuit_queue_drops_total'), 'counter');
  assert.equal(e.types.get('lqos_circuit_tcp_rtt_seconds'), 'gauge');
});

test('per-circuit series only for the busiest metrics_top_circuits; 0 = none; Circuit IDs only, no names', async (t) => {
  const top2 = await scrapeWith(t, 2);
  assert.deepEqual(circuitsOf(top2), ['c1', 'c3'], 'the two busiest (c1 20, c3 10 Mbit/s; c2 4)');
  assert.equal(value(top2, 'lqos_circuit_tcp_rtt_seconds', { circuit: 'c1', quantile: '0.5' }), 0.012);
  assert.equal(value(top2, 'lqos_circuit_tcp_rtt_seconds', { circuit: 'c1', quantile: '0.9' }), 0.03);
  assert.equal(value(top2, 'lqos_circuit_tcp_retransmit_ratio', { circuit: 'c1', direction: 'download' }), 0.05);
  assert.equal(value(top2, 'lqos_circuit_queue_drops_total', { circuit: 'c1', direction: 'download' }), 1040, "the cake's own counter");
  assert.equal(value(top2, 'lqos_circuit_queue_backlog_bytes', { circuit: 'c1', direction: 'download' }), 3028);
  assert.equal(value(top2, 'lqos_circuit_bytes_total', { circuit: 'c1', direction: 'download' }), 2_500_000);
  assert.equal(value(top2, 'lqos_circuit_throughput_bps', { circuit: 'c3', direction: 'upload' }), 2e6);
  assert.ok(!top2.samples.some((s) => Object.values(s.labels).some((v) => v.startsWith('Circuit '))), 'circuit names are never label values');

  assert.deepEqual(circuitsOf(await scrapeWith(t, 0)), [], 'metrics_top_circuits = 0: no per-circuit series');
  const none = await scrapeWith(t, 0);
  assert.equal(value(none, 'lqos_site_tcp_rtt_seconds', { site: 'Tower', quantile: '0.5' }), 0.012, 'sites and network stay');
  assert.deepEqual(circuitsOf(await scrapeWith(t, Infinity)), ['c1', 'c2', 'c3'], 'metrics_per_circuit: every circuit with traffic');
});

test('label values are escaped (backslash, double quote, newline) and read back intact', async (t) => {
  const plan = testPlan();
  const odd = 'c1 "north"\\rack\nB';
  plan.circuits[0]!.id = odd;
  plan.mappings = plan.mappings.map((m) => (m.circuitId === 'c1' ? { ...m, circuitId: odd } : m));
  const e = await scrapeWith(t, 20, plan);
  assert.ok(circuitsOf(e).includes(odd), `the odd id is read back: ${JSON.stringify(circuitsOf(e))}`);
  assert.equal(value(e, 'lqos_circuit_bytes_total', { circuit: odd, direction: 'download' }), 2_500_000);
});

test('[web] metrics_top_circuits / metrics_per_circuit reach telemetry; the schema refuses a negative N', () => {
  assert.equal(telemetryOptionsOf(conf('')).maxCircuitMetrics, 20, 'default 20');
  assert.equal(telemetryOptionsOf(conf('metrics_top_circuits = 5')).maxCircuitMetrics, 5);
  assert.equal(telemetryOptionsOf(conf('metrics_top_circuits = 0')).maxCircuitMetrics, 0);
  assert.equal(telemetryOptionsOf(conf('metrics_per_circuit = true')).maxCircuitMetrics, Infinity, 'metrics_per_circuit = true: no top-N cut');
  assert.throws(() => conf('metrics_top_circuits = -1'), /metrics_top_circuits/);
});

test('metrics_per_circuit on a plan above the warning size logs one warning (not again for the next plan)', () => {
  const big = testPlan();
  big.circuits = Array.from({ length: PER_CIRCUIT_WARN_AT + 1 }, (_, i) => circuit(`b${i}`, 'Tower', 1, 10 + i, [`10.200.${i >> 8}.${i & 255}/32`]));
  const small = testPlan();
  for (const [max, plans, warnings] of [[Infinity, [big, big, small, big], 2], [20, [big], 0], [Infinity, [small], 0]] as const) {
    const { log, records } = capturingLogger();
    const g = new RateGauges(createShapingMetrics(), max, { log });
    for (const p of plans) g.resetPlan(buildPlanIndex(p));
    const warned = records.filter((r) => r.level === 40 && /metrics_per_circuit is on with 1001 circuits/.test(r.msg));
    assert.equal(warned.length, warnings, `max ${max}, ${plans.length} plans: ${JSON.stringify(records.map((r) => r.msg))}`);
  }
});
