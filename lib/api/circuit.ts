/**
 * The Circuit page's live detail: GET /api/circuits/:id/live (rates, queue statistics, the leaf
 * qdisc in use, per-address counters of its devices) and GET /api/circuits/:id/flows (its flows).
 * Rates in bits per second, byte counts in bytes, times in wall-clock ms since the epoch.
 */
import type { CircuitFlowView, FlowView } from './flows.ts';
import type { CircuitRateView, QueueCircuitView } from './telemetry.ts';

/** One host counter (a mapping that saw traffic) of a circuit, as telemetry reads it. */
export interface CircuitHostCounter {
  /** The dataplane's key: a bare address for a /32 or /128 mapping, else `addr/len`. */
  key: string;
  downBps: number;
  upBps: number;
  /** Cumulative since the dataplane first counted the mapping. */
  downBytes: number;
  upBytes: number;
  /** Wall-clock ms of its last packet; null when unknown. */
  lastSeenMs: number | null;
}

/** What telemetry knows of one circuit now (lqosd hands it to the web server). */
export interface CircuitTelemetry {
  /** Wall-clock ms of the last counter tick (0 before the first). */
  at: number;
  /** false: no dataplane attached (dry run or degraded): no counters. */
  dataplane: boolean;
  rates: CircuitRateView | undefined;
  /** The last queue poll (`queue_check_period_ms`) and the interval its deltas cover. */
  queues: { at: number; dtMs: number; view: QueueCircuitView | undefined };
  hosts: CircuitHostCounter[];
}

/** The leaf qdisc of one direction: as planned, what this kernel runs instead, and what tc reports. */
export interface LeafInUse {
  /** Kind and arguments as planned (`cake diffserv4`), null without a leaf. */
  planned: string | null;
  /** The fallback this kernel uses instead of the planned kind (`pfifo limit 1000`), null when none is needed. */
  fallback: string | null;
  /** The kind tc reported at the last queue poll, null when not read (no poll yet, lazy queues, no telemetry). */
  live: string | null;
}

/** One address of the circuit: the plan's mapping joined with its host counter. */
export interface CircuitAddressLive {
  /** The plan's device that owns the address (null: counted for the circuit by no mapping of it, e.g. by its tc handle). */
  deviceId: string | null;
  /** The mapping's prefix as the plan has it (`100.64.0.1/32`, `2001:db8::/56`). */
  prefix: string;
  downBps: number;
  upBps: number;
  downBytes: number;
  upBytes: number;
  /** Wall-clock ms of its last packet; null: no traffic counted since the counters started. */
  lastSeenMs: number | null;
}

/** A direction's queue statistics (cumulative counters, per-interval deltas, CAKE tins). */
export type CircuitQueueSide = NonNullable<QueueCircuitView['down']>;

/** GET /api/circuits/:id/live. */
export interface CircuitLivePayload {
  /** Wall-clock ms of the counters shown (0: none yet). */
  at: number;
  /** Why there are no live numbers (telemetry off, no dataplane, plan not applied); null when there are. */
  unavailable: string | null;
  rates: { downBps: number; upBps: number; downPps: number; upPps: number } | null;
  queues: {
    at: number;
    /** Interval the per-interval deltas (dDrops, dEcnMarks, ...) cover. */
    dtMs: number;
    download: CircuitQueueSide | null;
    upload: CircuitQueueSide | null;
    /** Why a side has no statistics; null when both have them. */
    note: string | null;
  };
  leaf: { download: LeafInUse; upload: LeafInUse };
  /** Every address of the plan's devices (and any other counter of the circuit), busiest first. */
  addresses: CircuitAddressLive[];
}

/** GET /api/circuits/:id/flows. */
export interface CircuitFlowsPayload {
  /** false: flow tracking does not run (`reason` says why). */
  available: boolean;
  reason: string | null;
  /** Wall-clock ms of the flow poll. */
  at: number;
  /** The circuit's flow summary (RTT percentiles, retransmits), null while it has no tracked flow. */
  summary: Omit<CircuitFlowView, 'flows'> | null;
  /** Its flows, most bytes first (at most `limit`); `total`: how many it has. */
  flows: FlowView[];
  total: number;
}
