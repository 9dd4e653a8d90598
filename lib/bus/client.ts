/**
 * Client side of the lqosd bus (see ./protocol.ts): one connection, any number of concurrent
 * requests matched by id. Used by the scheduler, the LibreQoS command and the tests.
 */
import { createConnection, type Socket } from 'node:net';
import { BusError, type BusErrorCode, type BusReply, type PayloadOf, type RequestType } from './protocol.ts';
import { BUS_IDLE_TIMEOUT_MS, defaultBusPath } from './server.ts';

export { defaultBusPath };

/**
 * The client closes its connection after this long without a request in flight, before lqosd's
 * idle timeout would (so a request is never written into a connection lqosd is closing); the next
 * request reconnects.
 */
export const CLIENT_IDLE_CLOSE_MS = BUS_IDLE_TIMEOUT_MS / 2;

/** lqosd is not there (no socket, or nothing answers on it), or the bus refused us. */
export class BusUnavailableError extends Error {
  constructor(
    message: string,
    readonly path: string,
    readonly errno?: string,
  ) {
    super(message);
    this.name = 'BusUnavailableError';
  }
}

export function notRunningMessage(path: string, errno?: string): string {
  if (errno === 'EACCES' || errno === 'EPERM') {
    return `permission denied on the lqosd bus ${path}: the bus is root-only; run this as root`;
  }
  if (errno === 'ECONNREFUSED') {
    return `lqosd is not running (stale socket at ${path}, nothing answers); start it with systemctl start lqosd`;
  }
  return `lqosd is not running (no socket at ${path}); start it with systemctl start lqosd`;
}

export interface RequestOptions {
  /** Default 30 s. A request that times out is failed locally; lqosd may still complete it. */
  timeoutMs?: number;
}

interface Pending {
  resolve: (v: unknown) => void;
  reject: (e: Error) => void;
  timer: NodeJS.Timeout;
  type: string;
}

export class BusClient {
  readonly path: string;
  private sock?: Socket;
  private connecting?: Promise<Socket>;
  private nextId = 1;
  private pending = new Map<number, Pending>();
  private buffer = '';
  private readonly idleCloseMs: number;
  private idleTimer?: NodeJS.Timeout;

  constructor(opts: { path?: string; idleCloseMs?: number } = {}) {
    this.path = opts.path ?? defaultBusPath();
    this.idleCloseMs = opts.idleCloseMs ?? CLIENT_IDLE_CLOSE_MS;
  }

  /** Starts the idle clock when nothing is in flight; the connection is closed when it runs out. */
  private armIdle(): void {
    clearTimeout(this.idleTimer);
    if (this.pending.size > 0 || !this.sock) return;
    const sock = this.sock;
    this.idleTimer = setTimeout(() => {
      if (this.pending.size === 0 && this.sock === sock) {
        this.sock = undefined;
        this.buffer = '';
        sock.destroy();
      }
    }, this.idleCloseMs);
    this.idleTimer.unref();
  }

  private connect(): Promise<Socket> {
    if (this.sock && !this.sock.destroyed) return Promise.resolve(this.sock);
    if (this.connecting) return this.connecting;
    this.connecting = new Promise<Socket>((resolve, reject) => {
      const s = createConnection(this.path);
      s.setEncoding('utf8');
      const onConnectError = (e: NodeJS.ErrnoException) => {
        this.connecting = undefined;
        reject(new BusUnavailableError(notRunningMessage(this.path, e.code), this.path, e.code));
      };
      s.once('error', onConnectError);
      s.once('connect', () => {
        s.off('error', onConnectError);
        this.sock = s;
        this.connecting = undefined;
        s.on('data', (d: string) => this.onData(d));
        // Events of a connection this client already dropped (idle close) concern nothing in flight.
        s.on('error', (e) => {
          if (this.sock === s) this.failAll(new BusUnavailableError(`lqosd bus connection failed: ${e.message}`, this.path));
        });
        s.on('close', () => {
          if (this.sock !== s) return;
          this.sock = undefined;
          this.buffer = '';
          this.failAll(new BusUnavailableError(`lqosd closed the bus connection (${this.path})`, this.path));
        });
        resolve(s);
      });
    });
    return this.connecting;
  }

  private onData(d: string): void {
    this.buffer += d;
    let nl: number;
    while ((nl = this.buffer.indexOf('\n')) >= 0) {
      const line = this.buffer.slice(0, nl);
      this.buffer = this.buffer.slice(nl + 1);
      let reply: BusReply;
      try {
        reply = JSON.parse(line) as BusReply;
      } catch {
        continue;
      }
      if (typeof reply.id !== 'number') {
        // A connection-level error (too_large, busy, bad_json): it concerns every request in flight.
        if (!reply.ok) this.failAll(new BusError(reply.error.code, reply.error.message, reply.error.path));
        continue;
      }
      const p = this.pending.get(reply.id);
      if (!p) continue;
      this.pending.delete(reply.id);
      clearTimeout(p.timer);
      if (reply.ok) p.resolve(reply.result);
      else p.reject(new BusError(reply.error.code as BusErrorCode, reply.error.message, reply.error.path));
    }
    this.armIdle();
  }

  private failAll(e: Error): void {
    for (const [id, p] of this.pending) {
      clearTimeout(p.timer);
      this.pending.delete(id);
      p.reject(e);
    }
  }

  /**
   * Sends one request and resolves with its `result`. Rejects with BusError (the daemon's error
   * code and message) or BusUnavailableError (lqosd down / connection lost / timeout).
   */
  async request<T extends RequestType, R = unknown>(type: T, payload?: PayloadOf<T>, opts: RequestOptions = {}): Promise<R> {
    const sock = await this.connect();
    clearTimeout(this.idleTimer);
    const id = this.nextId++;
    const timeoutMs = opts.timeoutMs ?? 30_000;
    return new Promise<R>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        this.armIdle();
        reject(new BusUnavailableError(`lqosd did not answer "${type}" within ${timeoutMs} ms`, this.path, 'ETIMEDOUT'));
      }, timeoutMs);
      this.pending.set(id, { resolve: resolve as (v: unknown) => void, reject, timer, type });
      sock.write(JSON.stringify({ ...(payload ?? {}), id, type }) + '\n');
    });
  }

  close(): void {
    clearTimeout(this.idleTimer);
    this.failAll(new BusUnavailableError('bus client closed', this.path));
    const sock = this.sock;
    this.sock = undefined;
    sock?.destroy();
  }
}

/** One request on a fresh connection (closed afterwards). */
export async function busRequest<T extends RequestType, R = unknown>(
  type: T,
  payload?: PayloadOf<T>,
  opts: RequestOptions & { path?: string } = {},
): Promise<R> {
  const c = new BusClient({ path: opts.path });
  try {
    return await c.request<T, R>(type, payload, opts);
  } finally {
    c.close();
  }
}

export interface WaitForBusOptions {
  path?: string;
  /** Give up after this long (default 5 s). */
  timeoutMs?: number;
  /** Pause between attempts (default 250 ms). */
  intervalMs?: number;
  /** Called after each failed attempt. */
  onProgress?: (info: { elapsedMs: number; attempt: number; error: string }) => void;
}

/**
 * Waits until lqosd answers a ping (e.g. the scheduler at boot, before lqosd is up). Resolves with
 * the ping result; rejects with BusUnavailableError naming the last problem after `timeoutMs`.
 */
export async function waitForBus(opts: WaitForBusOptions = {}): Promise<unknown> {
  const path = opts.path ?? defaultBusPath();
  const timeoutMs = opts.timeoutMs ?? 5000;
  const intervalMs = opts.intervalMs ?? 250;
  const t0 = Date.now();
  let attempt = 0;
  for (;;) {
    attempt++;
    const left = timeoutMs - (Date.now() - t0);
    try {
      return await busRequest('ping', {}, { path, timeoutMs: Math.max(100, Math.min(2000, left)) });
    } catch (e) {
      const elapsedMs = Date.now() - t0;
      opts.onProgress?.({ elapsedMs, attempt, error: (e as Error).message });
      if (elapsedMs + intervalMs > timeoutMs) {
        const code = e instanceof BusUnavailableError ? e.errno : undefined;
        throw new BusUnavailableError(`${(e as Error).message} (waited ${Math.round(elapsedMs / 1000)} s)`, path, code);
      }
      await new Promise((r) => setTimeout(r, intervalMs));
    }
  }
}
