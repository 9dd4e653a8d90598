/**
 * Prometheus metrics served unauthenticated at /metrics. Only numeric shaping metrics live here (no
 * process/runtime defaults, no config values). Telemetry sets the throughput gauges; the web server
 * refreshes the urgent/plan gauges on every scrape.
 */
import { Gauge, Registry } from 'prom-client';

const registry = new Registry();

export const metrics = {
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
  urgentIssuesActive: new Gauge({
    name: 'lqos_urgent_issues_active',
    help: 'Unacknowledged urgent issues',
    registers: [registry],
  }),
  shapedCircuits: new Gauge({
    name: 'lqos_shaped_circuits',
    help: 'Circuits in the applied shaping plan',
    registers: [registry],
  }),
  shapingDegraded: new Gauge({
    name: 'lqos_shaping_degraded',
    help: '1 when the daemon runs without shaping (preflight failed), else 0',
    registers: [registry],
  }),
};

export type WebMetrics = typeof metrics;
