/**
 * Prometheus metrics served at /metrics: numeric shaping metrics only (no process/runtime defaults,
 * no config values). lqosd creates one set; telemetry keeps the throughput gauges current every tick
 * (RateGauges) and registers the source of the other series (./promSeries.ts: RTT, retransmits,
 * queue drops / marks / backlog, bytes), which the web server writes on every scrape (`refresh()`),
 * as it does the urgent/plan gauges.
 */
import { Counter, Gauge, Registry } from 'prom-client';
import type { FlowSnapshot } from '../api/flows.ts';
import type { Log } from '../util/log.ts';
import { PromCounters } from './promCounters.ts';
import { perCircuitWarning, promFamily, promView, PROM_LEVELS, PROM_MEASURES, type PromLevel, type PromMeasure, type PromView } from './promSeries.ts';
import type { CircuitQueues } from './queueStats.ts';
import type { PlanIndex, Rollup } from './rollup.ts';

type SeriesMetric = Gauge<string> | Counter<string>;

/** One prom-client metric per level and measure of ./promSeries.ts. */
function createSeriesMetrics(registry: Registry): Record<PromLevel, Record<PromMeasure, SeriesMetric>> {
  const level = (l: PromLevel) =>
    Object.fromEntries(
      PROM_MEASURES.map((m) => {
        const f = promFamily(l, m);
        const cfg = { name: f.name, help: f.help, labelNames: f.labelNames, registers: [registry] };
        return [m, f.type === 'counter' ? new Counter(cfg) : new Gauge(cfg)];
      }),
    ) as Record<PromMeasure, SeriesMetric>;
  return { network: level('network'), site: level('site'), circuit: level('circuit') };
}

/** The samples of one scrape into the metrics: exactly these series, the previous ones gone. */
export function writeSeries(series: Record<PromLevel, Record<PromMeasure, SeriesMetric>>, view: PromView | undefined): void {
  for (const l of PROM_LEVELS) {
    for (const m of PROM_MEASURES) {
      const metric = series[l][m];
      metric.reset();
      for (const s of view?.[l][m] ?? []) {
        if (metric instanceof Counter) metric.inc(s.labels, s.value);
        else metric.set(s.labels, s.value);
      }
    }
  }
}

export function createShapingMetrics() {
  const registry = new Registry();
  const series = createSeriesMetrics(registry);
  return {
    registry,
    /** Bits per second through a network.json node. Labels: node (path), direction (download|upload). */
    nodeThroughputBps: new Gauge({
      name: 'lqos_node_throughput_bps',
      help: 'Current throughput of a network node in bits per second',
      labelNames: ['node', 'direction'] as const,
      registers: [registry],
    }),
    /** Bits per second of a circuit (the selected circuits: RateGauges). Labels: circuit (Circuit ID), direction (download|upload). */
    circuitThroughputBps: new Gauge({
      name: 'lqos_circuit_throughput_bps',
      help: 'Current throughput of a circuit in bits per second',
      labelNames: ['circuit', 'direction'] as const,
      registers: [registry],
    }),
    /** Total shaped throughput (all circuits) in bits per second. Label: direction. */
    totalThroughputBps: new Gauge({
      name: 'lqos_total_throughput_bps',
      help: 'Current total throughput in bits per second',
      labelNames: ['direction'] as const,
      registers: [registry],
    }),
    urgentIssuesActive: new Gauge({ name: 'lqos_urgent_issues_active', help: 'Unacknowledged urgent issues', registers: [registry] }),
    shapedCircuits: new Gauge({ name: 'lqos_shaped_circuits', help: 'Circuits in the applied shaping plan', registers: [registry] }),
    shapingDegraded: new Gauge({
      name: 'lqos_shaping_degraded',
      help: '1 when the daemon runs without shaping (preflight failed), else 0',
      registers: [registry],
    }),
    /** RTT, retransmit, queue and byte series (./promSeries.ts), written by refresh(). */
    series,
    /** Telemetry's source of those series (undefined: none are served). */
    source: undefined as (() => PromView | undefined) | undefined,
    /** Before each scrape: the series from the source's current view. */
    refresh(): void {
      writeSeries(series, this.source?.());
    },
  };
}

export type ShapingMetrics = ReturnType<typeof createShapingMetrics>;

export interface RateGaugesOptions {
  log?: Log;
  /** Flow tracking's snapshot (RTT, retransmits), when it runs. */
  flows?: () => FlowSnapshot | undefined;
  /** Telemetry's per-circuit leaf-qdisc stats (drops, marks, backlog). */
  queues?: () => CircuitQueues;
}

/**
 * The throughput gauges after each telemetry tick: totals, every node, and the selected circuits —
 * the busiest `maxCircuits` by current throughput (Infinity: every circuit with traffic); circuits
 * that went idle or fell out of the selection lose their series. Keeps the counters of the other
 * series (./promCounters.ts) and is their source: the same circuits get RTT, retransmit, queue and
 * byte series at the next scrape.
 */
export class RateGauges {
  private withGauge = new Set<number>();
  private next = new Set<number>();
  private readonly counters = new PromCounters();
  private warned = false;
  private readonly source = () => this.view();

  constructor(
    private readonly metrics: ShapingMetrics,
    private readonly maxCircuits: number,
    private readonly opts: RateGaugesOptions = {},
  ) {
    metrics.source = this.source;
  }

  /** A new plan: the old node and circuit series go. */
  resetPlan(index?: PlanIndex): void {
    this.metrics.nodeThroughputBps.reset();
    this.metrics.circuitThroughputBps.reset();
    this.withGauge.clear();
    this.counters.setPlan(index);
    const warning = perCircuitWarning(!Number.isFinite(this.maxCircuits), index?.circuitCount ?? 0);
    if (warning && !this.warned) this.opts.log?.warn(warning);
    this.warned = warning !== undefined;
  }

  /** One tick's rates (over `dtMs`, for the byte counters). */
  update(rollup: Rollup, index: PlanIndex | undefined, dtMs = 0): void {
    const m = this.metrics;
    m.totalThroughputBps.set({ direction: 'download' }, rollup.totals.downBps);
    m.totalThroughputBps.set({ direction: 'upload' }, rollup.totals.upBps);
    this.counters.setPlan(index);
    this.counters.addTick(rollup, dtMs);
    if (!index) return;
    for (let n = 0; n < index.nodeCount; n++) {
      const node = index.nodePaths[n]!;
      m.nodeThroughputBps.set({ node, direction: 'download' }, rollup.nodeDownBps[n]!);
      m.nodeThroughputBps.set({ node, direction: 'upload' }, rollup.nodeUpBps[n]!);
    }
    this.next.clear();
    const setOne = (c: number) => {
      const circuit = index.circuitIds[c]!;
      m.circuitThroughputBps.set({ circuit, direction: 'download' }, rollup.circuitDownBps[c]!);
      m.circuitThroughputBps.set({ circuit, direction: 'upload' }, rollup.circuitUpBps[c]!);
      this.next.add(c);
    };
    if (rollup.touchedCount > this.maxCircuits) for (const c of rollup.activeCircuits(this.maxCircuits)) setOne(c);
    else for (let k = 0; k < rollup.touchedCount; k++) setOne(rollup.touched[k]!);
    for (const c of this.withGauge) {
      if (this.next.has(c)) continue;
      const circuit = index.circuitIds[c]!;
      m.circuitThroughputBps.remove({ circuit, direction: 'download' });
      m.circuitThroughputBps.remove({ circuit, direction: 'upload' });
    }
    [this.withGauge, this.next] = [this.next, this.withGauge];
  }

  /** One queue-stats poll, mapped to circuits with `ix`. */
  queuePoll(ix: PlanIndex, queues: CircuitQueues): void {
    this.counters.addPoll(ix, queues);
  }

  /** This scrape's RTT, retransmit, queue and byte series. */
  view(): PromView | undefined {
    const queues = this.opts.queues?.();
    if (!queues) return undefined;
    const c = this.counters;
    return promView({ counters: c, circuits: this.withGauge, queues, queuesCurrent: c.queuesIndex === c.index, flows: this.opts.flows?.() });
  }

  /** Telemetry stops: no stale rates are left behind. */
  clear(): void {
    this.metrics.totalThroughputBps.reset();
    this.resetPlan();
    if (this.metrics.source === this.source) this.metrics.source = undefined;
    writeSeries(this.metrics.series, undefined);
  }
}
