/**
 * lqosd's Prometheus series beyond throughput (pure): TCP RTT, retransmit share, queue drops, ECN
 * marks, backlog and bytes, for the network, every top-level site and the selected circuits (the
 * busiest `[web] metrics_top_circuits` by current throughput, or every circuit with traffic with
 * `metrics_per_circuit`). Built once per scrape from telemetry's state, its counters
 * (./promCounters.ts) and flow tracking's snapshot (./circuitTcp.ts, as the InfluxDB export).
 *
 * Labels: `direction` (download|upload), `quantile` (0.5|0.9), `site` (top-level node path),
 * `circuit` (Circuit ID only: circuit and device names stay out, as in the InfluxDB export).
 * RTT of a site or the network: p50/p90 across the median RTTs of its circuits, retransmits summed
 * over them — the History page's aggregate (./historyQuality.ts; flow tracking keeps no
 * network-wide RTT distribution).
 */
import type { FlowSnapshot } from '../api/flows.ts';
import { circuitTcpById, type CircuitTcp } from './circuitTcp.ts';
import type { QualityValues } from './historyAcc.ts';
import { qualitySample } from './historyQuality.ts';
import type { DownUp, PromCounters } from './promCounters.ts';
import type { CircuitQueues } from './queueStats.ts';

export type PromLevel = 'network' | 'site' | 'circuit';

export interface PromFamily {
  name: string;
  type: 'counter' | 'gauge';
  help: string;
}

const SCOPE: Record<PromLevel, { prefix: string; of: string; label: string[] }> = {
  network: { prefix: 'lqos_', of: 'all shaped traffic', label: [] },
  site: { prefix: 'lqos_site_', of: 'a top-level site (label site: its node path)', label: ['site'] },
  circuit: { prefix: 'lqos_circuit_', of: 'a circuit (label circuit: its Circuit ID)', label: ['circuit'] },
};

/** The measures, per level: metric name suffix, type, help and their own label. */
const MEASURES = {
  bytes: { suffix: 'bytes_total', type: 'counter', help: 'Bytes through the shaper', label: 'direction' },
  rtt: { suffix: 'tcp_rtt_seconds', type: 'gauge', help: 'TCP round-trip time to the Internet side from flow tracking (median and 90th percentile)', label: 'quantile' },
  retransmits: { suffix: 'tcp_retransmit_ratio', type: 'gauge', help: 'Share of TCP packets that were retransmissions over flow tracking\'s window (0..1)', label: 'direction' },
  drops: { suffix: 'queue_drops_total', type: 'counter', help: 'Packets dropped by the shaping queues (leaf qdiscs)', label: 'direction' },
  marks: { suffix: 'queue_ecn_marks_total', type: 'counter', help: 'Packets ECN-marked by the shaping queues', label: 'direction' },
  backlog: { suffix: 'queue_backlog_bytes', type: 'gauge', help: 'Bytes waiting in the shaping queues at the last queue poll', label: 'direction' },
} as const;

export type PromMeasure = keyof typeof MEASURES;
export const PROM_MEASURES = Object.keys(MEASURES) as PromMeasure[];
export const PROM_LEVELS: PromLevel[] = ['network', 'site', 'circuit'];

/** Metric name, type and help of one measure at one level. */
export function promFamily(level: PromLevel, m: PromMeasure): PromFamily & { labelNames: string[] } {
  const s = SCOPE[level];
  const x = MEASURES[m];
  return { name: s.prefix + x.suffix, type: x.type, help: `${x.help}, ${s.of}`, labelNames: [...s.label, x.label] };
}

export interface PromSample {
  labels: Record<string, string>;
  value: number;
}

/** level → measure → samples. */
export type PromView = Record<PromLevel, Record<PromMeasure, PromSample[]>>;

export interface PromViewSources {
  counters: PromCounters;
  /** Circuit indices (of counters.index) that get per-circuit series. */
  circuits: Iterable<number>;
  /** Leaf-qdisc stats, mapped with `counters.queuesIndex` (unused for circuits when that is not the current index). */
  queues: CircuitQueues;
  queuesCurrent: boolean;
  flows: FlowSnapshot | undefined;
}

const DIRS = ['download', 'upload'] as const;

function emptyView(): PromView {
  const level = () => Object.fromEntries(PROM_MEASURES.map((m) => [m, [] as PromSample[]])) as Record<PromMeasure, PromSample[]>;
  return { network: level(), site: level(), circuit: level() };
}

function pushDirs(out: PromSample[], labels: Record<string, string>, v: DownUp | [number | undefined, number | undefined]): void {
  for (let d = 0; d < 2; d++) if (v[d] !== undefined) out.push({ labels: { ...labels, direction: DIRS[d] }, value: v[d]! });
}

function pushRtt(out: PromSample[], labels: Record<string, string>, p50Ms: number | null | undefined, p90Ms: number | null | undefined): void {
  if (p50Ms !== null && p50Ms !== undefined) out.push({ labels: { ...labels, quantile: '0.5' }, value: p50Ms / 1000 });
  if (p90Ms !== null && p90Ms !== undefined) out.push({ labels: { ...labels, quantile: '0.9' }, value: p90Ms / 1000 });
}

/** Retransmits / TCP packets; undefined without packets. */
const ratio = (retransmits: number, packets: number) => (packets > 0 ? retransmits / packets : undefined);

/** A site's or the network's TCP figures (the history's aggregate: ./historyQuality.ts). */
function pushQuality(v: Record<PromMeasure, PromSample[]>, labels: Record<string, string>, q: QualityValues | undefined): void {
  if (!q) return;
  pushRtt(v.rtt, labels, q.rttP50, q.rttP90);
  pushDirs(v.retransmits, labels, [ratio(q.retransDown, q.tcpDown), ratio(q.retransUp, q.tcpUp)]);
}

function circuitSeries(v: Record<PromMeasure, PromSample[]>, s: PromViewSources, tcp: Map<string, CircuitTcp>): void {
  const ix = s.counters.index;
  if (!ix) return;
  const b = s.counters.circuitBytes;
  for (const c of s.circuits) {
    const id = ix.circuitIds[c]!;
    const labels = { circuit: id };
    pushDirs(v.bytes, labels, [Math.round(b[2 * c]!), Math.round(b[2 * c + 1]!)]);
    const t = tcp.get(id);
    if (t) {
      pushRtt(v.rtt, labels, t.rttP50Ms, t.rttP90Ms);
      pushDirs(v.retransmits, labels, [ratio(t.retransmitsDown, t.packetsDown), ratio(t.retransmitsUp, t.packetsUp)]);
    }
    if (!s.queuesCurrent) continue;
    const [down, up] = [s.queues.down[c], s.queues.up[c]];
    if (!down && !up) continue;
    pushDirs(v.drops, labels, [down?.drops, up?.drops]);
    pushDirs(v.marks, labels, [down?.ecnMarks, up?.ecnMarks]);
    pushDirs(v.backlog, labels, [down?.backlog, up?.backlog]);
  }
}

/** Every sample of this scrape. */
export function promView(s: PromViewSources): PromView {
  const v = emptyView();
  const tcp = circuitTcpById(s.flows);
  const ix = s.counters.index;
  const quality = ix ? qualitySample(ix, s.flows) : undefined;
  const net = s.counters.network;
  const round = (x: DownUp): DownUp => [Math.round(x[0]), Math.round(x[1])];
  pushDirs(v.network.bytes, {}, round(net.bytes));
  pushDirs(v.network.drops, {}, net.drops);
  pushDirs(v.network.marks, {}, net.marks);
  pushDirs(v.network.backlog, {}, net.backlog);
  pushQuality(v.network, {}, quality?.totals);
  for (const [site, c] of s.counters.sites) {
    const labels = { site };
    pushDirs(v.site.bytes, labels, round(c.bytes));
    pushDirs(v.site.drops, labels, c.drops);
    pushDirs(v.site.marks, labels, c.marks);
    pushDirs(v.site.backlog, labels, c.backlog);
    const n = ix?.nodeByPath.get(site);
    pushQuality(v.site, labels, n === undefined ? undefined : quality?.nodes.get(n));
  }
  circuitSeries(v.circuit, s, tcp);
  return v;
}

/** Above this many circuits, `metrics_per_circuit` is worth a warning. */
export const PER_CIRCUIT_WARN_AT = 1000;

/** The warning lqosd logs when every circuit gets series on a big plan (undefined: none). */
export function perCircuitWarning(perCircuit: boolean, circuits: number): string | undefined {
  if (!perCircuit || circuits <= PER_CIRCUIT_WARN_AT) return undefined;
  return (
    `[web] metrics_per_circuit is on with ${circuits} circuits in the plan: /metrics carries about 14 series per circuit with traffic, ` +
    'which a Prometheus server has to store; consider metrics_per_circuit = false and [web] metrics_top_circuits (the busiest N circuits) instead'
  );
}
