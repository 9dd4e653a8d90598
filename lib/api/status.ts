/** lqosd's own state: GET /api/status and the `status` channel. */
import type { ShapingPlan } from '../model.ts';
import type { SchedulerStatus } from './scheduler.ts';

export type QueueMode = ShapingPlan['mode'];

export interface LastApply {
  at: string;
  mode: 'full' | 'incremental' | 'none';
  commands: number;
  seconds: number;
}

export interface ShapingStatus {
  /** Set when the preflight failed: the daemon runs without shaping and says why. */
  degraded?: string;
  /** The dataplane / tc tree drifted from the applied plan; the next apply rebuilds. */
  reloadRequired?: string;
  lastApply?: LastApply;
  /** qdisc kinds replaced by fallbacks on this kernel, e.g. { cake: 'pfifo limit 1000' }. */
  leafFallbacks?: Record<string, string>;
}

/** The applied plan in a few numbers. */
export type PlanSummary = { applied: true; circuits: number; nodes: number; mode: QueueMode } | { applied: false };

export interface StatusPayload {
  version: string;
  nodeName: string;
  startedAt: string;
  uptimeSeconds: number;
  shapingStatus: ShapingStatus;
  dryRun: boolean;
  queueMode: QueueMode;
  /** Unacknowledged urgent issues. */
  urgentActive: number;
  scheduler: SchedulerStatus;
  plan: PlanSummary;
  /** The CRM integration that owns ShapedDevices.csv / network.json (editors are read-only), if any. */
  inputsOwnedBy: string | null;
}
