/**
 * Retrying a shaping run that did not reach the kernel for a reason that is not the inputs' fault:
 * lqosd unreachable (restarting, bus timeout), lqosd busy past the wait, or lqosd's apply failed.
 * Backoff 2 s, doubling, at most 60 s, until the applied plan matches the inputs again. Invalid inputs
 * are never retried here: they wait for the next change of the files.
 *
 * While a retry is pending the scheduler's phase is `pending: <why>, retry in <n> s` (never `idle`, so
 * lqosd never reports the scheduler healthy while the kernel runs an older plan than the files).
 */
import { EXIT } from '../shaping/exitCodes.ts';
import type { ShapeResult } from './shape.ts';

export const RETRY_MIN_MS = 2000;
export const RETRY_MAX_MS = 60_000;

/** lqosd exit codes of a run that may work when tried again with the same inputs. */
const RETRYABLE_EXITS = new Set<number>([EXIT.apply, EXIT.locked, EXIT.lqosdDown, EXIT.write]);

/**
 * Why trying the same inputs again can help (a short phrase for the status), or undefined when it
 * cannot (success, invalid inputs or overrides, planning error, refused mass removal).
 */
export function retryReason(r: ShapeResult): string | undefined {
  if (r.ok || r.overridesError) return undefined;
  if (r.transient) return r.transientReason ?? 'lqosd unreachable';
  if (r.via !== 'none' && r.exitCode !== undefined && RETRYABLE_EXITS.has(r.exitCode)) return `apply failed (exit code ${r.exitCode})`;
  return undefined;
}

export class RetryTimer {
  private timer?: NodeJS.Timeout;
  private delay: number;
  /** Set while a retry is owed (timer armed or about to run). */
  reason?: string;
  private dueAt = 0;

  constructor(
    private readonly minMs = RETRY_MIN_MS,
    private readonly maxMs = RETRY_MAX_MS,
  ) {
    this.delay = minMs;
  }

  get pending(): boolean {
    return this.reason !== undefined;
  }

  /** Arms the next try after the current delay (then doubles it, up to the maximum); returns the delay. */
  schedule(reason: string, fn: () => void): number {
    clearTimeout(this.timer);
    const d = this.delay;
    this.delay = Math.min(this.maxMs, this.delay * 2);
    this.reason = reason;
    this.dueAt = Date.now() + d;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      fn();
    }, d);
    this.timer.unref?.();
    return d;
  }

  /** The status phase while pending, e.g. `pending: lqosd unreachable, retry in 8 s`. */
  phase(): string {
    const s = Math.max(0, Math.round((this.dueAt - Date.now()) / 1000));
    return this.timer ? `pending: ${this.reason}, retry in ${s} s` : `pending: ${this.reason}, retrying`;
  }

  /** The plan matches the inputs again (or there is nothing left to retry): back to the short delay. */
  done(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    this.reason = undefined;
    this.delay = this.minMs;
  }

  /** Stops the timer (scheduler stopping). */
  cancel(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
  }
}
