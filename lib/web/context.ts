/** What the web server reads from lqosd (the daemon's context satisfies it; tests build fakes). */
import type { CircuitTelemetry } from '../api/circuit.ts';
import type { FlowSnapshot, FlowView } from '../api/flows.ts';
import type { SchedulerTracker } from '../api/scheduler.ts';
import type { ShapingStatus } from '../api/status.ts';
import type { UnknownIpsTable } from '../api/telemetry.ts';
import type { UrgentIssueStore } from '../api/urgent.ts';
import type { LqosConfig } from '../config/schema.ts';
import type { ShapingOutcome } from '../shaping/service.ts';
import type { ShapingPlan } from '../model.ts';
import type { TelemetryHistory } from '../telemetry/history.ts';
import type { Logger } from '../util/log.ts';

export interface WebContext {
  log: Logger;
  /** Absolute path of the config file. */
  configPath: string;
  /** The config in force (absolute directories). */
  config(): LqosConfig;
  /** Re-reads the config file; rejects (old config kept) when it is unusable. */
  reloadConfig(): Promise<void>;
  urgent: UrgentIssueStore;
  scheduler: SchedulerTracker;
  /** The plan currently applied to the kernel, if any. */
  appliedPlan(): ShapingPlan | undefined;
  /** A dry run's last plan (`[queues] dry_run = true`): planned, never applied. */
  plannedPlan?(): ShapingPlan | undefined;
  shapingStatus(): ShapingStatus;
  startedAt: Date;
  version: string;
  /** Flow tracking snapshot; undefined (or absent) while flow tracking does not run. */
  flows?(): FlowSnapshot | undefined;
  /** The per-minute history (GET /api/history); undefined (or absent) while telemetry does not keep one. */
  history?(): HistorySource | undefined;
  /** Shapes the configured input files now (the Reload button; lqosd's bus `refresh`); absent: not offered. */
  refresh?(): Promise<ShapingOutcome>;
  /** The Unknown IPs page's table; undefined (or absent) while telemetry does not run. */
  unknownIps?(): UnknownIpsTable | undefined;
  /** The Circuit page's live detail of one circuit (telemetry); absent while telemetry does not run, undefined when it has not read that circuit's plan. */
  circuitTelemetry?(id: string): CircuitTelemetry | undefined;
  /** Every tracked flow of one circuit (flow tracking); undefined (or absent) while flow tracking does not run. */
  circuitFlows?(id: string): FlowView[] | undefined;
}

/** lqosd's per-minute history (lib/telemetry/history.ts) as the History API reads it. */
export interface HistorySource {
  store: Pick<TelemetryHistory, 'query' | 'has' | 'retentionDays' | 'circuitRetentionDays' | 'db'>;
  /** Writes the minute in progress, so a query sees up to the last few seconds (lqosd's: at most every 5 s). */
  flush(): void;
}
