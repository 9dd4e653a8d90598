/**
 * What lqosd's parts share: the daemon context handed to the bus handlers and the web server.
 * Interfaces only; bin/lqosd.ts builds the concrete objects.
 */
import type { LqosConfig } from '../config/schema.ts';
import type { ShapingPlan } from '../model.ts';
import type { Logger } from '../util/log.ts';

export type Severity = 'info' | 'warning' | 'error';

export interface UrgentIssue {
  id: string;
  /** Deduplication key: submitting the same key again bumps count/lastSeen instead of adding. */
  key: string;
  source: string;
  severity: Severity;
  code: string;
  message: string;
  context?: unknown;
  firstSeen: string;
  lastSeen: string;
  count: number;
  acknowledged: boolean;
}

export interface UrgentIssueInput {
  source: string;
  severity: Severity;
  code: string;
  message: string;
  context?: unknown;
  /** Defaults to `${source}:${code}`. */
  dedupeKey?: string;
}

export interface UrgentIssueStore {
  submit(issue: UrgentIssueInput): UrgentIssue;
  list(): UrgentIssue[];
  /** Unacknowledged count (what the UI badge shows). */
  activeCount(): number;
  acknowledge(id: string): boolean;
  /** Removes one issue (by id) or all. Admin only at the API level. */
  clear(id?: string): number;
  /** Removes the issue with this dedupe key (e.g. when an integration recovers). */
  resolveKey(key: string): boolean;
}

export type SchedulerHealth = 'unknown' | 'running' | 'healthy' | 'stale' | 'error';

export interface SchedulerStatus {
  health: SchedulerHealth;
  phase: string;
  lastHeartbeat?: string;
  lastSuccess?: string;
  nextRun?: string;
  lastError?: { at: string; message: string; integration?: string; preview?: string; logFile?: string };
}

export interface SchedulerTracker {
  heartbeat(phase: string, nextRun?: string): void;
  success(at?: string): void;
  error(e: { message: string; integration?: string; preview?: string; logFile?: string }): void;
  status(now?: Date): SchedulerStatus;
}

export interface ShapingStatus {
  /** Set when the preflight failed: the daemon runs without shaping and says why. */
  degraded?: string;
  /** The dataplane / tc tree drifted from the applied plan; the next apply rebuilds. */
  reloadRequired?: string;
  lastApply?: { at: string; mode: 'full' | 'incremental' | 'none'; commands: number; seconds: number };
  /** qdisc kinds replaced by fallbacks on this kernel, e.g. { cake: 'pfifo limit 1000' }. */
  leafFallbacks?: Record<string, string>;
}

export interface DaemonContext {
  log: Logger;
  configPath: string;
  config(): LqosConfig;
  reloadConfig(): Promise<void>;
  urgent: UrgentIssueStore;
  scheduler: SchedulerTracker;
  /** The plan currently applied to the kernel, if any. */
  appliedPlan(): ShapingPlan | undefined;
  shapingStatus(): ShapingStatus;
  startedAt: Date;
  version: string;
  /** Flow tracking snapshot (lib/flows), when the dataplane is attached and flows are enabled. */
  flows?: () => unknown;
}

/**
 * lqosd extras beyond the shared context (optional, so test doubles of DaemonContext need not
 * provide them). `startDaemon` in ./daemon.ts fills them in.
 */
export interface DaemonContext {
  /** Path of the bus socket lqosd listens on. */
  busPath?: string;
  /** Runs the LibreQoS pipeline (`LibreQoS --config <configPath>`) once; rejects with a `busy` BusError while another run is going. */
  refresh?(): Promise<{ exitCode: number; ok: boolean; durationMs: number; lines: string[] }>;
}
