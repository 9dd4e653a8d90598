/**
 * What lqosd knows about the scheduler, from the messages the scheduler sends over the bus.
 *
 * Health, first rule that matches:
 * 1. no scheduler message ever          → unknown
 * 2. last heartbeat said `stopped`      → stopped (a clean shutdown; not stale, not an error)
 * 3. last message older than 300 s      → stale
 * 4. an error newer than the last success → error (with a short preview of the failing output)
 * 5. phase `pending…` (retrying a change) → pending
 * 6. phase other than `idle`            → running
 * 7. otherwise                          → healthy
 *
 * Every scheduler message (heartbeat, success, error, progress, summary) counts as a sign of life.
 * Also kept: the latest cycle step (`progress`, marked stale when the scheduler went silent for the
 * stale limit or said `idle` after it without ending the cycle) and the last successful integration
 * run's summary. Kept in memory only: after an lqosd restart the scheduler's next heartbeat (once a
 * minute, repeating the current step) restores it.
 */
import { stripAnsi } from '../util/text.ts';
import {
  progressPercent,
  progressText,
  type IntegrationRunSummary,
  type SchedulerProgressReport,
  type SchedulerStatus,
  type SchedulerTracker,
} from '../api/scheduler.ts';

export const STALE_AFTER_MS = 300_000;
export const PREVIEW_MAX_LINES = 30;
export const PREVIEW_MAX_CHARS = 4000;

/** First 30 lines / 4,000 characters of `output`, ANSI/control sequences removed (trailing whitespace trimmed); '' stays ''. */
export function makePreview(output: string, maxLines = PREVIEW_MAX_LINES, maxChars = PREVIEW_MAX_CHARS): string {
  const lines = stripAnsi(output).split('\n');
  let text = lines.slice(0, maxLines).join('\n');
  let cut = lines.length > maxLines;
  if (text.length > maxChars) {
    text = text.slice(0, maxChars);
    cut = true;
  }
  text = text.trimEnd();
  return cut ? `${text}\n… (output truncated)` : text;
}

export interface SchedulerStatusTrackerOptions {
  now?: () => Date;
  staleAfterMs?: number;
}

export class SchedulerStatusTracker implements SchedulerTracker {
  private readonly now: () => Date;
  private readonly staleAfterMs: number;
  private phase = 'unknown';
  private lastHeartbeat?: Date;
  private lastSuccess?: Date;
  private nextRun?: string;
  private lastError?: { at: Date; message: string; integration?: string; preview?: string; logFile?: string };
  /** Message counter: orders a progress report against the next `idle` heartbeat. */
  private seq = 0;
  private lastProgress?: { report: Required<SchedulerProgressReport>; at: Date; seq: number };
  private idleSeq = 0;
  private lastIntegration?: IntegrationRunSummary & { receivedAt: string };

  constructor(opts: SchedulerStatusTrackerOptions = {}) {
    this.now = opts.now ?? (() => new Date());
    this.staleAfterMs = opts.staleAfterMs ?? STALE_AFTER_MS;
  }

  heartbeat(phase: string, nextRun?: string): void {
    this.lastHeartbeat = this.now();
    this.phase = phase;
    if (phase === 'idle') this.idleSeq = ++this.seq;
    if (nextRun !== undefined) this.nextRun = nextRun;
  }

  success(at?: string): void {
    const now = this.now();
    const t = at ? new Date(at) : now;
    this.lastSuccess = Number.isNaN(t.getTime()) ? now : t;
    this.lastHeartbeat = now;
  }

  error(e: { message: string; integration?: string; preview?: string; logFile?: string }): void {
    const now = this.now();
    this.lastHeartbeat = now;
    this.lastError = {
      at: now,
      message: stripAnsi(e.message).trim(),
      ...(e.integration ? { integration: e.integration } : {}),
      ...(e.preview ? { preview: makePreview(e.preview) } : {}),
      ...(e.logFile ? { logFile: e.logFile } : {}),
    };
  }

  progress(p: SchedulerProgressReport): void {
    const now = this.now();
    this.lastHeartbeat = now;
    const report = { active: p.active, phase: p.phase, label: stripAnsi(p.label), step: p.step, steps: p.steps, percent: p.percent ?? progressPercent(p) };
    this.lastProgress = { report, at: now, seq: ++this.seq };
  }

  integrationSummary(s: IntegrationRunSummary): void {
    const now = this.now();
    this.lastHeartbeat = now;
    this.lastIntegration = { ...s, warnings: s.warnings.map((w) => stripAnsi(w)), receivedAt: now.toISOString() };
  }

  status(now: Date = this.now()): SchedulerStatus {
    const s: SchedulerStatus = { health: 'unknown', phase: this.phase };
    if (this.lastHeartbeat) s.lastHeartbeat = this.lastHeartbeat.toISOString();
    if (this.lastSuccess) s.lastSuccess = this.lastSuccess.toISOString();
    if (this.nextRun) s.nextRun = this.nextRun;
    if (this.lastError) s.lastError = { ...this.lastError, at: this.lastError.at.toISOString() };
    if (this.lastIntegration) s.lastIntegration = this.lastIntegration;

    if (!this.lastHeartbeat) s.health = 'unknown';
    else if (this.phase === 'stopped') s.health = 'stopped';
    else if (now.getTime() - this.lastHeartbeat.getTime() > this.staleAfterMs) s.health = 'stale';
    else if (this.lastError && (!this.lastSuccess || this.lastError.at.getTime() > this.lastSuccess.getTime())) s.health = 'error';
    else if (this.phase.startsWith('pending')) s.health = 'pending';
    else if (this.phase !== 'idle') s.health = 'running';
    else s.health = 'healthy';

    if (this.lastProgress) {
      const { report, at, seq } = this.lastProgress;
      const old = now.getTime() - at.getTime() > this.staleAfterMs;
      const superseded = report.active && this.idleSeq > seq;
      s.progress = { ...report, at: at.toISOString(), stale: old || superseded, text: progressText(report) };
    }
    return s;
  }
}
