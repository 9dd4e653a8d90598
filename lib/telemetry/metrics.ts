/**
 * Prometheus metrics served unauthenticated at /metrics: numeric shaping metrics only (no
 * process/runtime defaults, no config values). lqosd creates one set; telemetry sets the throughput
 * gauges (RateGauges), the web server refreshes the urgent/plan gauges on every scrape.
 */
import { Gauge, Registry } from 'prom-client';
import type { PlanIndex, Rollup } from './rollup.ts';

export function createShapingMetrics() {
  const registry = new Registry();
  return {
    registry,
    /** Bits per second through a network.json node. Labels: node (path), direction (download|upload). */
    nodeThroughputBps: new Gauge({
      name: 'lqos_node_throughput_bps',
      help: 'Current throughput of a network node in bits per second',
      labelNames: ['node', 'direction'] as const,
      registers: [registry],
    }),
    /** Bits per second of a circuit. Labels: circuit (Circuit ID), direction (download|upload). */
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
  };
}

export type ShapingMetrics = ReturnType<typeof createShapingMetrics>;

/**
 * The throughput gauges after each telemetry tick: totals, every node, and the busiest circuits
 * (at most `maxCircuits`); circuits that went idle or fell out of the top lose their gauge.
 */
export class RateGauges {
  private withGauge = new Set<number>();
  private next = new Set<number>();

  constructor(
    private readonly metrics: ShapingMetrics,
    private readonly maxCircuits: number,
  ) {}

  /** A new plan: the old node and circuit series go. */
  resetPlan(): void {
    this.metrics.nodeThroughputBps.reset();
    this.metrics.circuitThroughputBps.reset();
    this.withGauge.clear();
  }

  update(rollup: Rollup, index: PlanIndex | undefined): void {
    const m = this.metrics;
    m.totalThroughputBps.set({ direction: 'download' }, rollup.totals.downBps);
    m.totalThroughputBps.set({ direction: 'upload' }, rollup.totals.upBps);
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

  /** Telemetry stops: no stale rates are left behind. */
  clear(): void {
    this.metrics.totalThroughputBps.reset();
    this.resetPlan();
  }
}
