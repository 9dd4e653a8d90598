/** The scheduler's health as lqosd tracks it (GET /api/scheduler, the `scheduler` channel). */

export type SchedulerHealth = 'unknown' | 'running' | 'healthy' | 'stale' | 'error';

export interface SchedulerError {
  at: string;
  message: string;
  integration?: string;
  /** First lines of the failed run's output. */
  preview?: string;
  logFile?: string;
}

export interface SchedulerStatus {
  health: SchedulerHealth;
  phase: string;
  lastHeartbeat?: string;
  lastSuccess?: string;
  nextRun?: string;
  lastError?: SchedulerError;
}

/** What the bus handlers report the scheduler's heartbeats, successes and failures to. */
export interface SchedulerTracker {
  heartbeat(phase: string, nextRun?: string): void;
  success(at?: string): void;
  error(e: Omit<SchedulerError, 'at'>): void;
  status(now?: Date): SchedulerStatus;
}
