/**
 * The scheduler's side of the lqosd bus for status and urgent issues. Never throws: a bus outage is
 * logged (once per outage, not per message) and the next message simply tries again — the
 * BusClient reconnects on demand.
 */
import { BusClient, BusUnavailableError } from '../bus/client.ts';
import type { PayloadOf, RequestType } from '../bus/protocol.ts';
import type { Logger } from '../util/log.ts';

export const URGENT_SOURCE = 'scheduler';

export class StatusReporter {
  readonly client: BusClient;
  private down = false;

  constructor(
    private readonly log: Logger,
    busPath?: string,
  ) {
    this.client = new BusClient({ path: busPath });
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
    return this.send('scheduler_heartbeat', nextRun ? { phase, nextRun } : { phase });
  }

  success(): Promise<unknown> {
    return this.send('scheduler_success', { at: new Date().toISOString() });
  }

  error(e: { message: string; integration?: string; output?: string; logFile?: string }): Promise<unknown> {
    const payload = {
      message: e.message.length > 4000 ? `${e.message.slice(0, 3990)} …` : e.message,
      ...(e.integration ? { integration: e.integration } : {}),
      ...(e.output ? { output: e.output } : {}),
      ...(e.logFile ? { logFile: e.logFile } : {}),
    };
    return this.send('scheduler_error', payload);
  }

  urgent(code: string, message: string, dedupeKey: string, context?: unknown, severity: 'warning' | 'error' = 'error'): Promise<unknown> {
    return this.send('urgent_submit', { source: URGENT_SOURCE, severity, code, message, dedupeKey, ...(context !== undefined ? { context } : {}) });
  }

  resolve(key: string): Promise<unknown> {
    return this.send('urgent_resolve', { key });
  }

  close(): void {
    this.client.close();
  }
}
