/**
 * Live telemetry pushed over the websocket by lib/telemetry: the `throughput`, `circuits`, `queues`
 * and `cpu` channels and the per-circuit / per-node views they carry. Rates in bits (or packets) per
 * second over the last tick; `at` is the tick's wall-clock ms (0 before the first tick).
 */
import type { ShapingPlan } from '../model.ts';

/** Bits per second each way. */
export interface BitRates {
  downBps: number;
  upBps: number;
}

/**
 * All traffic the dataplane saw (`downBps`… = mapped hosts + unmapped traffic), split into what
 * belongs to a circuit of the plan and what has no mapping at all.
 */
export interface Totals extends BitRates {
  downPps: number;
  upPps: number;
  /** Traffic of hosts that belong to a circuit. */
  shapedDownBps: number;
  shapedUpBps: number;
  /**
   * Traffic of addresses without a mapping, from the dataplane's aggregate counter (exact: every
   * unmapped packet counts, whether or not its address is in the sampled unknown-IP table).
   */
  unmappedDownBps: number;
  unmappedUpBps: number;
  unmappedDownPps: number;
  unmappedUpPps: number;
  /**
   * Mapped entries in the counters (one per mapping that saw traffic: a /24 is one) / of them with
   * traffic this tick / sampled unknown IPs with traffic this tick (as `[ip_ranges]
   * unknown_ip_honors_*` filter them; a sample, not every unmapped address).
   */
  hosts: number;
  activeHosts: number;
  unknownActiveHosts: number;
}

/** Current rates of one circuit or node against its plan. */
interface RateView extends BitRates {
  name: string;
  downPps: number;
  upPps: number;
  ceilDownMbps: number;
  ceilUpMbps: number;
  /** Percent of the plan's ceil. */
  utilDownPct: number;
  utilUpPct: number;
}

export interface CircuitRateView extends RateView {
  id: string;
  parentPath: string;
}

export interface NodeRateView extends RateView {
  path: string;
  depth: number;
}

/** A time series of the live graphs, oldest first: `t` (ms) plus one array per field. */
export type RingSeries<F extends string> = { t: number[] } & Record<F, number[]>;

/** The `throughput` channel: totals, the top-level nodes and the last minutes of both. */
export interface ThroughputPayload {
  at: number;
  /** false: no dataplane attached (dry run or degraded), the counters stay at zero. */
  dataplane: boolean;
  totals: Totals;
  link: ShapingPlan['link'] | null;
  /** Top-level nodes of the applied plan. */
  nodes: NodeRateView[];
  ring: {
    totals: RingSeries<'down' | 'up' | 'shapedDown' | 'shapedUp'>;
    /** By top-level node path. */
    nodes: Record<string, RingSeries<'down' | 'up'>>;
  };
}

/** The `circuits` channel: the busiest circuits and every circuit with traffic (bounded). */
export interface CircuitRatesPayload {
  at: number;
  topDownload: CircuitRateView[];
  topUpload: CircuitRateView[];
  /** Circuits with traffic this tick (`active` may hold fewer). */
  activeCount: number;
  active: CircuitRateView[];
  /**
   * Unknown IPs: sampled addresses without a mapping that had traffic this tick, busiest first
   * (bounded), filtered by `[ip_ranges]` allow/ignore lists as `unknown_ip_honors_*` say.
   */
  unknownIps?: UnknownIpView[];
  /** What the unknown-IP list is a sample of: the unmapped traffic as a whole. */
  unknown?: UnknownIpsSummary;
}

/**
 * The unknown-IP list is a sample: the dataplane keeps per-address counters for at most
 * `capacity` unmapped addresses and admits at most about 100 new ones a second, so a
 * scan or a flood cannot fill memory. The unmapped rates are exact (an aggregate counter).
 */
export interface UnknownIpsSummary {
  sampled: true;
  /** One sentence for the UI. */
  note: string;
  /** Addresses in the sampled table now / its size / addresses ever admitted to it. */
  sampledAddresses: number;
  capacity: number;
  sampledTotal: number;
  /** Sampled addresses listed (active this tick and passing the `[ip_ranges]` rules). */
  listed: number;
  unmappedDownBps: number;
  unmappedUpBps: number;
}

export interface UnknownIpView {
  ip: string;
  downBps: number;
  upBps: number;
  /** Cumulative bytes since the dataplane first saw the address. */
  downBytes: number;
  upBytes: number;
}

/** How far back the Unknown IPs page looks (upstream: 5 minutes). */
export const UNKNOWN_IPS_WINDOW_SECONDS = 300;

/** One row of the Unknown IPs page: a sampled unmapped address seen within the window. */
export interface UnknownIpRow extends UnknownIpView {
  /** Wall-clock ms of its last packet. */
  lastSeenMs: number;
}

/** GET /api/unknown-ips: the sampled unmapped addresses seen in the last `windowSeconds`, most bytes first. */
export interface UnknownIpsTable {
  at: number;
  /** false while telemetry does not run (no dataplane counters to read). */
  available: boolean;
  windowSeconds: number;
  rows: UnknownIpRow[];
  summary: UnknownIpsSummary | null;
}

export interface QueueSideView {
  kind: string;
  drops: number;
  overlimits: number;
  requeues: number;
  ecnMarks: number;
  backlog: number;
  qlen: number;
  /** Deltas over the last poll interval. */
  dDrops: number;
  dOverlimits: number;
  dEcnMarks: number;
  dRequeues: number;
  dPackets: number;
  /** CAKE only: its tins (cumulative counters, current delays), in tc's order. */
  tins?: CakeTinView[];
}

/** One CAKE tin as `tc -s -j qdisc` reports it. */
export interface CakeTinView {
  /** `Bulk`, `Best Effort`, `Video`, `Voice` (diffserv3/4), else `Tin N`. */
  name: string;
  sentBytes: number;
  sentPackets: number;
  drops: number;
  ecnMarks: number;
  ackDrops: number;
  backlogBytes: number;
  /** Microseconds. */
  avgDelayUs: number;
  peakDelayUs: number;
  baseDelayUs: number;
}

/** Queue statistics of one circuit's leaf qdiscs. */
export interface QueueCircuitView {
  id: string;
  name: string;
  down?: QueueSideView;
  up?: QueueSideView;
}

interface DownUp {
  down: number;
  up: number;
}

export interface QueueTotals {
  drops: DownUp;
  marks: DownUp;
  backlog: DownUp;
  overlimits: DownUp;
}

/** The `queues` channel: cake / fq_codel statistics of the circuits that drop, mark or queue. */
export interface QueueStatsPayload {
  at: number;
  /** Interval the deltas were computed over. */
  dtMs: number;
  totals: QueueTotals;
  /** Circuits whose queues were read. */
  queuedCircuits: number;
  circuits: QueueCircuitView[];
}

/** The `cpu` channel: busy % over all cores and per core (index = CPU number). */
export interface CpuPayload {
  at: number;
  total: number;
  perCore: number[];
}
