/** What the web server reads from lqosd (the daemon's context satisfies it; tests build fakes). */
import type { FlowSnapshot } from '../api/flows.ts';
import type { SchedulerTracker } from '../api/scheduler.ts';
import type { ShapingStatus } from '../api/status.ts';
import type { UrgentIssueStore } from '../api/urgent.ts';
import type { LqosConfig } from '../config/schema.ts';
import type { ShapingPlan } from '../model.ts';
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
  shapingStatus(): ShapingStatus;
  startedAt: Date;
  version: string;
  /** Flow tracking snapshot; undefined (or absent) while flow tracking does not run. */
  flows?(): FlowSnapshot | undefined;
}
