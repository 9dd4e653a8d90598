/**
 * The scheduler's side of the lqosd bus for status, progress, run summaries and urgent issues.
 * Never throws: a bus outage is logged (once per outage, not per message) and the next message
 * simply tries again — the BusClient reconnects on demand. Credential values of lqos.conf
 * (`secrets`, set with each config read) are replaced by `***` in every error text sent.
 */
import type { IntegrationRunSummary } from '../api/scheduler.ts';
import { BusClient, BusUnavailableError } from '../bus/client.ts';
import type { PayloadOf, RequestType } from '../bus/protocol.ts';
import type { Logger } from '../util/log.ts';
import { CycleProgress } from './progress.ts';
import { hideSecrets } from '../config/secrets.ts';

export const URGENT_SOURCE = 'scheduler';
/** An active step is repeated with a heartbeat when it was last sent this long ago (keeps it from going stale). */
export const PROGRESS_REPEAT_MS = 30_000;

export class StatusReporter {
  readonly client: BusClient;
  /** The current cycle's steps (`scheduler_progress`). */
  readonly cycle: CycleProgress;
  /** Credential values to hide from error texts and previews. */
  secrets: readonly string[] = [];
  private down = false;
  private progressSentAt = 0;

  constructor(
    private readonly log: Logger,
    busPath?: string,
  ) {
    this.client = new BusClient({ path: busPath });
    this.cycle = new CycleProgress((p) => {
      this.progressSentAt = Date.now();
      void this.send('scheduler_progress', p);
    });
  }

  /** Sends one request; resolves undefined (after logging) when it fails. */
  async send<T extends RequestType, R = unknown>(type: T, payload?: PayloadOf<T>, timeoutMs = 10_000): Promise<R | undefined> {
    try {
      const r = await this.client.request<T, R>(type, payload, { timeoutMs });
      if (this.down) {
        this.down = false;
        this.log.info('lqosd bus is reachable again');
      }
      return r;
    } catch (e) {
      if (e instanceof BusUnavailableError) {
        if (!this.down) this.log.warn(`lqosd bus unavailable (${e.message}); status updates are retried with the next message`);
        this.down = true;
      } else {
        this.log.warn(`lqosd rejected ${type}: ${(e as Error).message}`);
      }
      return undefined;
    }
  }

  heartbeat(phase: string, nextRun?: string): Promise<unknown> {
    const p = this.cycle.current;
    // A long step (a slow CRM) stays fresh in lqosd: repeat it with the heartbeat.
    if (p?.active && Date.now() - this.progressSentAt >= PROGRESS_REPEAT_MS) {
      this.progressSentAt = Date.now();
      void this.send('scheduler_progress', p);
    }
    return this.send('scheduler_heartbeat', nextRun ? { phase, nextRun } : { phase });
  }

  success(): Promise<unknown> {
    return this.send('scheduler_success', { at: new Date().toISOString() });
  }

  /** The last successful integration run's summary (already bounded and validated, ./summary.ts). */
  summary(s: IntegrationRunSummary): Promise<unknown> {
    return this.send('scheduler_summary', { summary: s });
  }

  error(e: { message: string; integration?: string; output?: string; logFile?: string }): Promise<unknown> {
    const message = hideSecrets(e.message, this.secrets);
    const payload = {
      message: message.length > 4000 ? `${message.slice(0, 3990)} …` : message,
      ...(e.integration ? { integration: e.integration } : {}),
      ...(e.output ? { output: hideSecrets(e.output, this.secrets) } : {}),
      ...(e.logFile ? { logFile: e.logFile } : {}),
    };
    return this.send('scheduler_error', payload);
  }

  urgent(code: string, message: string, dedupeKey: string, context?: unknown, severity: 'warning' | 'error' = 'error'): Promise<unknown> {
    return this.send('urgent_submit', { source: URGENT_SOURCE, severity, code, message: hideSecrets(message, this.secrets), dedupeKey, ...(context !== undefined ? { context } : {}) });
  }

  resolve(key: string): Promise<unknown> {
    return this.send('urgent_resolve', { key });
  }

  close(): void {
    this.client.close();
  }
}
