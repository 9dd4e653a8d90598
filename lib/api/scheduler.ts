/** The scheduler's health as lqosd tracks it (GET /api/scheduler, the `scheduler` channel). */

/**
 * `stopped`: the scheduler's last word was that it is shutting down (systemctl stop, or stopped for a
 * one-time run); `pending`: a change waits for lqosd (unreachable, busy or a failed apply) and is retried.
 */
export type SchedulerHealth = 'unknown' | 'running' | 'pending' | 'healthy' | 'stale' | 'error' | 'stopped';

export interface SchedulerError {
  at: string;
  message: string;
  integration?: string;
  /** First lines of the failed run's output (ANSI colour codes and control characters removed). */
  preview?: string;
  logFile?: string;
}

/** One step of a cycle as the scheduler reports it (bus `scheduler_progress`). */
export interface SchedulerProgressReport {
  /** True while the step runs; false for the end of a cycle (`ready`, `degraded`, `failed`). */
  active: boolean;
  /** `waiting_for_lqosd`, `integration`, `overrides`, `validate`, `apply`, `ready`, `degraded`, `failed`. */
  phase: string;
  label: string;
  step: number;
  steps: number;
  /** Default: completed steps / steps, rounded (a running step does not count yet). */
  percent?: number;
}

export interface SchedulerProgress extends Required<SchedulerProgressReport> {
  /** When lqosd last heard about this step (the scheduler repeats it with every heartbeat). */
  at: string;
  /**
   * Not current: the scheduler went silent for longer than the stale limit, or said `idle` after
   * this step without ending the cycle.
   */
  stale: boolean;
  /** `Applying shaping (4/4, 75 %)`. */
  text: string;
}

/** What the last successful integration run did (the file the integration writes, see lib/scheduler/README.md). */
export interface IntegrationRunSummary {
  integration: string;
  finishedAt: string;
  durationMs: number;
  /** Compared with the ShapedDevices.csv in place before the run (by Circuit ID). */
  circuits: { total: number; added: number; removed: number; changed: number };
  devices: { total: number };
  /** Non-fatal warnings (e.g. duplicate IP omitted), at most 50. */
  warnings: string[];
  warningsOmitted?: number;
  /** `kept`: always_overwrite_network_json = false kept the operator's network.json. */
  networkJson: 'written' | 'kept';
}

export interface SchedulerStatus {
  health: SchedulerHealth;
  phase: string;
  lastHeartbeat?: string;
  lastSuccess?: string;
  nextRun?: string;
  lastError?: SchedulerError;
  /** The latest cycle step. */
  progress?: SchedulerProgress;
  /** The last successful integration run's summary, with when lqosd received it. */
  lastIntegration?: IntegrationRunSummary & { receivedAt: string };
}

/** `Applying shaping (4/4, 75 %)`; the default percent is completed steps / steps. */
export function progressText(p: SchedulerProgressReport): string {
  return `${p.label} (${p.step}/${p.steps}, ${p.percent ?? progressPercent(p)} %)`;
}

/** Completed steps / steps in percent (a running step is not completed yet), 0..100. */
export function progressPercent(p: Pick<SchedulerProgressReport, 'active' | 'step' | 'steps'>): number {
  const done = p.active ? p.step - 1 : p.step;
  return Math.max(0, Math.min(100, Math.round((done / p.steps) * 100)));
}

/** What the bus handlers report the scheduler's heartbeats, successes, failures, progress and run summaries to. */
export interface SchedulerTracker {
  heartbeat(phase: string, nextRun?: string): void;
  success(at?: string): void;
  error(e: Omit<SchedulerError, 'at'>): void;
  progress(p: SchedulerProgressReport): void;
  integrationSummary(s: IntegrationRunSummary): void;
  status(now?: Date): SchedulerStatus;
}
