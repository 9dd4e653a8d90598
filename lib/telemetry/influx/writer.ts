/**
 * Writes line-protocol points to InfluxDB in batches, with a bounded buffer and backoff:
 *
 * - `add()` only buffers; a flush runs every `flushIntervalMs` (0: only when the owner calls
 *   `flush()`, as the export does right after each `add()`), one request per `batchLines` lines,
 *   gzip-free plain text.
 * - API: InfluxDB 2 (`/api/v2/write?org=&bucket=&precision=s`, `Authorization: Token …`); a server
 *   answering 404 there is taken for InfluxDB 1.x and written through `/write?db=<bucket>&precision=s`
 *   from then on (1.8+ also has the v2 endpoint; Debian 12 ships 1.6).
 * - A failed write (server down, 5xx, timeout) keeps the lines and retries after a backoff doubling
 *   from 1 s to 5 minutes; a 4xx other than 404/429 is the data's or the token's fault: that batch is
 *   dropped and counted, so one bad line cannot block the rest forever.
 * - The buffer holds at most `maxBufferedLines`: beyond it the oldest lines are dropped and counted.
 */
export interface InfluxTarget {
  url: string;
  org: string;
  bucket: string;
  /** Never logged or reported. */
  token: string;
}

export interface InfluxWriterOptions extends InfluxTarget {
  batchLines?: number;
  maxBufferedLines?: number;
  flushIntervalMs?: number;
  requestTimeoutMs?: number;
  /** Called on state changes (write failed, recovered, dropped) with a message safe to log. */
  onEvent?: (level: 'warn' | 'info', msg: string) => void;
}

export interface InfluxWriterStats {
  written: number;
  buffered: number;
  droppedOverflow: number;
  droppedRejected: number;
  failures: number;
  api: 'v2' | 'v1' | 'unknown';
  lastError?: string;
  /** Unix ms before which no write is tried (backoff). */
  retryAtMs?: number;
}

const MIN_BACKOFF_MS = 1000;
const MAX_BACKOFF_MS = 5 * 60_000;

export class InfluxWriter {
  private buffer: string[] = [];
  private api: 'v2' | 'v1' | 'unknown' = 'unknown';
  private backoffMs = 0;
  private retryAt = 0;
  private flushing: Promise<void> | undefined;
  private readonly timer: NodeJS.Timeout | undefined;
  private readonly s = { written: 0, droppedOverflow: 0, droppedRejected: 0, failures: 0, lastError: undefined as string | undefined };
  private failing = false;

  constructor(private readonly o: InfluxWriterOptions) {
    const every = o.flushIntervalMs ?? 10_000;
    this.timer = every > 0 ? setInterval(() => void this.flush(), every) : undefined;
    this.timer?.unref();
  }

  add(lines: readonly string[]): void {
    this.buffer.push(...lines);
    const max = this.o.maxBufferedLines ?? 100_000;
    if (this.buffer.length > max) {
      const over = this.buffer.length - max;
      this.buffer.splice(0, over);
      this.s.droppedOverflow += over;
    }
  }

  stats(): InfluxWriterStats {
    return { ...this.s, buffered: this.buffer.length, api: this.api, ...(this.retryAt > Date.now() ? { retryAtMs: this.retryAt } : {}) };
  }

  /** Writes what is buffered now (one flush at a time; skipped while backing off). */
  flush(): Promise<void> {
    if (this.flushing) return this.flushing;
    if (Date.now() < this.retryAt || this.buffer.length === 0) return Promise.resolve();
    this.flushing = this.flushAll().finally(() => (this.flushing = undefined));
    return this.flushing;
  }

  private async flushAll(): Promise<void> {
    const batch = this.o.batchLines ?? 5000;
    while (this.buffer.length > 0) {
      const lines = this.buffer.slice(0, batch);
      const outcome = await this.write(lines);
      if (outcome === 'retry') return this.backOff();
      this.buffer.splice(0, lines.length);
      if (outcome === 'ok') this.s.written += lines.length;
      else this.s.droppedRejected += lines.length;
      this.recovered();
    }
  }

  private async write(lines: string[]): Promise<'ok' | 'rejected' | 'retry'> {
    const body = `${lines.join('\n')}\n`;
    try {
      let r = await this.post(this.api === 'v1' ? 'v1' : 'v2', body);
      if (r.status === 404 && this.api !== 'v1') {
        r = await this.post('v1', body);
        if (r.status < 300) this.api = 'v1';
      } else if (r.status < 300) this.api = this.api === 'unknown' ? 'v2' : this.api;
      if (r.status < 300) return 'ok';
      const text = (await r.text()).slice(0, 300);
      this.s.lastError = `HTTP ${r.status}: ${text}`;
      if (r.status >= 500 || r.status === 429 || r.status === 404) return 'retry';
      this.o.onEvent?.('warn', `InfluxDB refused ${lines.length} line(s) (${this.s.lastError}); they are dropped`);
      return 'rejected';
    } catch (err) {
      this.s.lastError = (err as Error).cause ? String(((err as Error).cause as Error).message ?? (err as Error).cause) : (err as Error).message;
      return 'retry';
    }
  }

  private post(api: 'v1' | 'v2', body: string): Promise<Response> {
    const base = this.o.url.replace(/\/+$/, '');
    const q = (p: Record<string, string>) => new URLSearchParams(p).toString();
    const url = api === 'v2' ? `${base}/api/v2/write?${q({ org: this.o.org, bucket: this.o.bucket, precision: 's' })}` : `${base}/write?${q({ db: this.o.bucket, precision: 's' })}`;
    const headers: Record<string, string> = { 'content-type': 'text/plain; charset=utf-8' };
    if (this.o.token) headers.authorization = `Token ${this.o.token}`;
    return fetch(url, { method: 'POST', headers, body, signal: AbortSignal.timeout(this.o.requestTimeoutMs ?? 10_000) });
  }

  private backOff(): void {
    this.s.failures++;
    this.backoffMs = Math.min(MAX_BACKOFF_MS, Math.max(MIN_BACKOFF_MS, this.backoffMs * 2));
    this.retryAt = Date.now() + this.backoffMs;
    if (!this.failing) {
      this.failing = true;
      this.o.onEvent?.('warn', `InfluxDB write to ${this.o.url} failed (${this.s.lastError}); keeping up to ${this.o.maxBufferedLines ?? 100_000} lines and retrying with backoff`);
    }
  }

  private recovered(): void {
    this.backoffMs = 0;
    this.retryAt = 0;
    if (this.failing) {
      this.failing = false;
      this.o.onEvent?.('info', `InfluxDB writes to ${this.o.url} work again`);
    }
  }

  /** Stops the timer after one last flush attempt. */
  async close(): Promise<void> {
    clearInterval(this.timer);
    await this.flush();
  }
}
