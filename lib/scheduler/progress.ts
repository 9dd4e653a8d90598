/**
 * Cycle progress, scheduler side: which step of the current cycle runs, sent to lqosd as
 * `scheduler_progress` (lqosd keeps the latest; `scheduler_status` and the web UI show it as
 * `Applying shaping (4/4, 75 %)`).
 *
 *   start-up (and --once):  waiting_for_lqosd → integration → overrides → validate → apply   (5 steps)
 *   scheduled refresh:      integration → overrides → validate → apply                      (4 steps)
 *   file change:            overrides → validate → apply                                    (3 steps)
 *
 * A running step counts as not yet done (step 4 of 4 = 75 %); the cycle ends with an inactive report
 * at 100 %: `ready`, `degraded` (shaped with the last good inputs after an integration or hook
 * failure), `failed` (nothing applied) or `pending` (lqosd did not take the run; retried). A step
 * with nothing to do (no integration enabled) is skipped. Sending never throws (StatusReporter).
 */
import { progressPercent, type SchedulerProgressReport } from '../api/scheduler.ts';

export type CycleKind = 'startup' | 'refresh' | 'files';
export type StepName = 'waiting_for_lqosd' | 'integration' | 'overrides' | 'validate' | 'apply';
export type CycleOutcome = 'ready' | 'degraded' | 'failed' | 'pending';

export const CYCLE_STEPS: Record<CycleKind, readonly StepName[]> = {
  startup: ['waiting_for_lqosd', 'integration', 'overrides', 'validate', 'apply'],
  refresh: ['integration', 'overrides', 'validate', 'apply'],
  files: ['overrides', 'validate', 'apply'],
};

export const STEP_LABELS: Record<StepName, string> = {
  waiting_for_lqosd: 'Waiting for lqosd',
  integration: 'Running integration',
  overrides: 'Applying overrides',
  validate: 'Validating inputs',
  apply: 'Applying shaping',
};

export const OUTCOME_LABELS: Record<CycleOutcome, string> = {
  ready: 'Up to date',
  degraded: 'Shaped with the last good inputs (integration or hook failed)',
  failed: 'Shaping failed; the shaping in force is unchanged',
  pending: 'lqosd did not take the run; retrying (the kernel keeps the previous plan)',
};

/** How a cycle ended: nothing applied (`failed`, or `pending` when lqosd did not take it), applied after a failed integration/hook (`degraded`), or `ready`. */
export function cycleOutcome(shape: { ok: boolean; transient?: boolean }, integrationFailed: boolean): CycleOutcome {
  if (!shape.ok) return shape.transient ? 'pending' : 'failed';
  return integrationFailed ? 'degraded' : 'ready';
}

/** Tracks the current cycle and reports each step through `send`. */
export class CycleProgress {
  private kind: CycleKind = 'startup';
  private last?: SchedulerProgressReport;

  constructor(private readonly send: (p: SchedulerProgressReport) => void) {}

  /** The latest report (the reporter repeats an active one with its heartbeats). */
  get current(): SchedulerProgressReport | undefined {
    return this.last;
  }

  begin(kind: CycleKind): void {
    this.kind = kind;
  }

  /** Reports `name` as running (`label` replaces the default, e.g. `Running integration uisp`). Steps not in this cycle are ignored. */
  step(name: StepName, label?: string): void {
    const steps = CYCLE_STEPS[this.kind];
    const i = steps.indexOf(name);
    if (i < 0) return;
    this.report({ active: true, phase: name, label: label ?? STEP_LABELS[name], step: i + 1, steps: steps.length });
  }

  finish(outcome: CycleOutcome, label?: string): void {
    const steps = CYCLE_STEPS[this.kind].length;
    this.report({ active: false, phase: outcome, label: label ?? OUTCOME_LABELS[outcome], step: steps, steps });
  }

  private report(p: Omit<SchedulerProgressReport, 'percent'>): void {
    this.last = { ...p, percent: progressPercent(p) };
    this.send(this.last);
  }
}

/**
 * The shaping run's steps (ShapeOptions.onStep of ./shape.ts) as progress. The inputs are validated
 * once, by lqosd, which decides what is applied (rows skipped or the run refused); the scheduler does
 * not validate them a second time.
 */
export function shapeStepHook(cycle: CycleProgress): (step: 'overrides' | 'validate' | 'apply') => void {
  return (step) => cycle.step(step);
}
