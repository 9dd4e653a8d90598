/**
 * What lqosd knows about the scheduler, from the messages the scheduler sends over the bus.
 *
 * Health, first rule that matches:
 * 1. no scheduler message ever          → unknown
 * 2. last message older than 300 s      → stale
 * 3. an error newer than the last success → error (with a short preview of the failing output)
 * 4. phase other than `idle`            → running
 * 5. otherwise                          → healthy
 *
 * Every scheduler message (heartbeat, success, error) counts as a sign of life. Kept in memory
 * only: after an lqosd restart the scheduler's next heartbeat (once a minute) restores it.
 */
import type { SchedulerStatus, SchedulerTracker } from '../api/scheduler.ts';

export const STALE_AFTER_MS = 300_000;
export const PREVIEW_MAX_LINES = 30;
export const PREVIEW_MAX_CHARS = 4000;

/** First 30 lines / 4,000 characters of `output` (trailing whitespace trimmed); '' stays ''. */
export function makePreview(output: string, maxLines = PREVIEW_MAX_LINES, maxChars = PREVIEW_MAX_CHARS): string {
  const lines = output.replace(/\r\n?/g, '\n').split('\n');
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

  constructor(opts: SchedulerStatusTrackerOptions = {}) {
    this.now = opts.now ?? (() => new Date());
    this.staleAfterMs = opts.staleAfterMs ?? STALE_AFTER_MS;
  }

  heartbeat(phase: string, nextRun?: string): void {
    this.lastHeartbeat = this.now();
    this.phase = phase;
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
      message: e.message,
      ...(e.integration ? { integration: e.integration } : {}),
      ...(e.preview ? { preview: makePreview(e.preview) } : {}),
      ...(e.logFile ? { logFile: e.logFile } : {}),
    };
  }

  status(now: Date = this.now()): SchedulerStatus {
    const s: SchedulerStatus = { health: 'unknown', phase: this.phase };
    if (this.lastHeartbeat) s.lastHeartbeat = this.lastHeartbeat.toISOString();
    if (this.lastSuccess) s.lastSuccess = this.lastSuccess.toISOString();
    if (this.nextRun) s.nextRun = this.nextRun;
    if (this.lastError) s.lastError = { ...this.lastError, at: this.lastError.at.toISOString() };

    if (!this.lastHeartbeat) s.health = 'unknown';
    else if (now.getTime() - this.lastHeartbeat.getTime() > this.staleAfterMs) s.health = 'stale';
    else if (this.lastError && (!this.lastSuccess || this.lastError.at.getTime() > this.lastSuccess.getTime())) s.health = 'error';
    else if (this.phase !== 'idle') s.health = 'running';
    else s.health = 'healthy';
    return s;
  }
}
