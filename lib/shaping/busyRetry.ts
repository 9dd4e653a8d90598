/**
 * Waiting while lqosd is busy. lqosd runs one shaping job at a time (bus `refresh`, `submit_plan`)
 * and answers a second one with the bus error `busy` (lib/daemon/jobs.ts); the job running then
 * (a scheduler refresh, another LibreQoS's apply) usually ends within seconds to minutes. A front
 * end that submits a job retries it for a bounded time through retryWhileBusy: `LibreQoS`
 * (lib/cli/libreqos.ts; LQOS_BUSY_WAIT_SECS) and the scheduler (lib/scheduler/shape.ts), both
 * 60 s by default, a try every 2 s, the last pause cut short at the end of the wait.
 */
import { BusError } from '../bus/protocol.ts';

/** How long a submitter keeps retrying while lqosd is busy, by default. */
export const BUSY_WAIT_MS = 60_000;
/** Pause between two tries. */
export const BUSY_RETRY_INTERVAL_MS = 2000;

export interface BusyRetryOptions {
  /** How long to keep retrying (default BUSY_WAIT_MS); 0: one try only. */
  waitMs?: number;
  /** Pause between tries (default BUSY_RETRY_INTERVAL_MS). */
  intervalMs?: number;
  /** Called for each `busy` answer that is retried, with the time waited so far. */
  onBusy?: (e: BusError, waitedMs: number) => void;
}

/** lqosd's answer that another shaping job is running. */
export function isBusy(e: unknown): e is BusError {
  return e instanceof BusError && e.code === 'busy';
}

/**
 * Runs `attempt`; while it throws `busy` and the time is not over, waits and runs it again. Any other
 * error, or `busy` once the time is over, is thrown as it is.
 */
export async function retryWhileBusy<T>(attempt: () => Promise<T>, opts: BusyRetryOptions = {}): Promise<T> {
  const waitMs = opts.waitMs ?? BUSY_WAIT_MS;
  const t0 = Date.now();
  for (;;) {
    try {
      return await attempt();
    } catch (e) {
      const waited = Date.now() - t0;
      if (!isBusy(e) || waited >= waitMs) throw e;
      opts.onBusy?.(e, waited);
      await new Promise((r) => setTimeout(r, Math.min(opts.intervalMs ?? BUSY_RETRY_INTERVAL_MS, waitMs - waited)));
    }
  }
}
