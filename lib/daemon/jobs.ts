/**
 * Shaping jobs (refresh, submit_plan) run one at a time: a second one while the first runs is
 * refused with `busy`. On stop, lqosd lets a running job finish (bounded) rather than cut it off.
 */
import { BusError } from '../bus/protocol.ts';
import type { Log } from '../util/log.ts';

export interface Job {
  kind: string;
  since: string;
}

export class JobRunner {
  private job?: Job;
  private done?: Promise<unknown>;

  constructor(private readonly now: () => Date) {}

  current(): Job | undefined {
    return this.job;
  }

  /** Throws `busy` while a job runs (before a caller prepares a job of its own, e.g. reads its inputs). */
  refuseWhileBusy(): void {
    if (this.job) throw new BusError('busy', `a ${this.job.kind} is already running (since ${this.job.since}); try again when it finishes`);
  }

  async run<T>(kind: string, fn: () => Promise<T>): Promise<T> {
    this.refuseWhileBusy();
    this.job = { kind, since: this.now().toISOString() };
    const p = fn();
    this.done = p.catch(() => undefined);
    try {
      return await p;
    } finally {
      this.job = undefined;
      this.done = undefined;
    }
  }

  /** Waits up to `timeoutMs` for the running job (if any) to finish. */
  async drain(timeoutMs: number, log: Log): Promise<void> {
    const running = this.job;
    if (!running || !this.done) return;
    log.info(`waiting up to ${timeoutMs / 1000} s for the running ${running.kind} to finish`);
    let timer: NodeJS.Timeout | undefined;
    const finished = await Promise.race([this.done.then(() => true), new Promise<boolean>((r) => (timer = setTimeout(() => r(false), timeoutMs)))]);
    clearTimeout(timer);
    if (!finished) log.warn(`the ${running.kind} did not finish in time; stopping anyway`);
  }
}
