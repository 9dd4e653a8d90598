/** Fake lqosd contexts (the web server's WebContext) for tests and benchmarks: in-memory urgent issues and scheduler status. */
import { progressPercent, progressText, type IntegrationRunSummary, type SchedulerError, type SchedulerProgressReport, type SchedulerStatus, type SchedulerTracker } from '../../lib/api/scheduler.ts';
import type { UrgentIssue, UrgentIssueInput, UrgentIssueStore } from '../../lib/api/urgent.ts';
import type { LqosConfig } from '../../lib/config/schema.ts';
import type { WebContext } from '../../lib/web/context.ts';
import type { ShapingPlan } from '../../lib/model.ts';
import { quiet } from './log.ts';

/** Urgent issues in memory, de-duplicated by key like lqosd's store. */
export class FakeUrgentStore implements UrgentIssueStore {
  items: UrgentIssue[] = [];
  private next = 1;
  submit(input: UrgentIssueInput): UrgentIssue {
    const key = input.dedupeKey ?? `${input.source}:${input.code}`;
    const now = new Date().toISOString();
    const existing = this.items.find((i) => i.key === key);
    if (existing) {
      existing.count++;
      existing.lastSeen = now;
      existing.message = input.message;
      return existing;
    }
    const issue: UrgentIssue = {
      id: String(this.next++),
      key,
      source: input.source,
      severity: input.severity,
      code: input.code,
      message: input.message,
      context: input.context,
      firstSeen: now,
      lastSeen: now,
      count: 1,
      acknowledged: false,
    };
    this.items.push(issue);
    return issue;
  }
  list(): UrgentIssue[] {
    return [...this.items];
  }
  activeCount(): number {
    return this.items.filter((i) => !i.acknowledged).length;
  }
  acknowledge(id: string): boolean {
    const i = this.items.find((x) => x.id === id);
    if (!i) return false;
    i.acknowledged = true;
    return true;
  }
  clear(id?: string): number {
    const before = this.items.length;
    this.items = id === undefined ? [] : this.items.filter((x) => x.id !== id);
    return before - this.items.length;
  }
  resolveKey(key: string): boolean {
    const before = this.items.length;
    this.items = this.items.filter((x) => x.key !== key);
    return before !== this.items.length;
  }
}

/** The scheduler's status as the tests set it. */
export class FakeScheduler implements SchedulerTracker {
  st: SchedulerStatus = { health: 'unknown', phase: 'idle' };
  heartbeat(phase: string, nextRun?: string): void {
    this.st = { ...this.st, health: 'running', phase, lastHeartbeat: new Date().toISOString(), nextRun };
  }
  success(at = new Date().toISOString()): void {
    this.st = { ...this.st, health: 'healthy', lastSuccess: at };
  }
  error(e: Omit<SchedulerError, 'at'>): void {
    this.st = { ...this.st, health: 'error', lastError: { at: new Date().toISOString(), ...e } };
  }
  progress(p: SchedulerProgressReport): void {
    const report = { ...p, percent: p.percent ?? progressPercent(p) };
    this.st = { ...this.st, progress: { ...report, at: new Date().toISOString(), stale: false, text: progressText(report) } };
  }
  integrationSummary(s: IntegrationRunSummary): void {
    this.st = { ...this.st, lastIntegration: { ...s, receivedAt: new Date().toISOString() } };
  }
  status(): SchedulerStatus {
    return this.st;
  }
}

export type FakeContext = WebContext & { urgent: FakeUrgentStore; scheduler: FakeScheduler };

/**
 * What a test sets of its context; the rest defaults to fresh fakes and an empty shaping status.
 * Without `flows` there is no flow tracking (GET /api/flows answers 404).
 */
export type FakeContextParts = Pick<WebContext, 'configPath' | 'config' | 'appliedPlan'> & Partial<Omit<WebContext, 'urgent' | 'scheduler'>>;

/** A web server context of fakes with `parts` set. */
export function fakeContext(parts: FakeContextParts): FakeContext {
  return {
    log: quiet,
    reloadConfig: async () => undefined,
    urgent: new FakeUrgentStore(),
    scheduler: new FakeScheduler(),
    shapingStatus: () => ({}),
    startedAt: new Date(),
    version: '0.1.0-test',
    ...parts,
  };
}

/** A context with only a state directory and an applied plan: what the telemetry service reads. */
export function stateContext(stateDir: string, plan: () => ShapingPlan | undefined): FakeContext {
  return fakeContext({ configPath: '/dev/null', config: () => ({ state_directory: stateDir }) as LqosConfig, appliedPlan: plan });
}
