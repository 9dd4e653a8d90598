/**
 * The lqosd bus server: a root-only Unix socket (mode 0600) speaking the newline-delimited JSON
 * protocol of ./protocol.ts. Handlers are plugged in per request type; a type without a handler
 * answers `not_implemented`. Nothing a client sends can crash the daemon: every failure becomes
 * an error reply (or, for oversized messages, an error reply and a closed connection).
 */
import { chmodSync, existsSync, lstatSync, mkdirSync, statSync, unlinkSync } from 'node:fs';
import { createConnection, createServer, type Server, type Socket } from 'node:net';
import { dirname, join } from 'node:path';
import type { Log } from '../util/log.ts';
import { runDir } from '../util/paths.ts';
import {
  BusError,
  decodeRequest,
  encodeReply,
  errorReply,
  MAX_CONNECTIONS,
  MAX_IN_FLIGHT_PER_CONNECTION,
  MAX_MESSAGE_BYTES,
  okReply,
  type BusReply,
  type RequestOf,
  type RequestType,
} from './protocol.ts';

/** `$LQOS_BUS_PATH`, else `<$LQOS_RUN_DIR or /run/lqos>/bus`. */
export function defaultBusPath(env: NodeJS.ProcessEnv = process.env): string {
  return env.LQOS_BUS_PATH || join(runDir(env), 'bus');
}

export type BusHandler<T extends RequestType> = (req: RequestOf<T>) => unknown;
export type BusHandlers = { [K in RequestType]?: BusHandler<K> };

export interface BusServerOptions {
  path?: string;
  handlers: BusHandlers;
  log: Log;
  maxConnections?: number;
  /** Connections beyond maxConnections wait (unread) for a free slot, at most this many (default 256). */
  maxWaiting?: number;
  /** How long a waiting connection may wait before it gets `busy` (default 10 s). */
  waitTimeoutMs?: number;
  maxMessageBytes?: number;
  maxInFlight?: number;
  /**
   * A connection with no complete request for this long, while none of its requests is being
   * handled, is closed (default BUS_IDLE_TIMEOUT_MS). Covers idle clients and clients that stall
   * mid-request; a request that takes longer than this is not cut off.
   */
  idleTimeoutMs?: number;
}

/** Default idle timeout of a bus connection (the client closes its own idle connection sooner, client.ts). */
export const BUS_IDLE_TIMEOUT_MS = 60_000;

export interface BusServer {
  readonly path: string;
  /** Open client connections. */
  connections(): number;
  /** Requests answered since start. */
  requestsServed(): number;
  /** Connection counters: open (being served), waiting for a slot, most ever served at once. */
  stats(): { connections: number; waiting: number; peak: number; served: number };
  /** Stops listening, drops the connections and removes the socket file. */
  close(): Promise<void>;
}

export class BusAlreadyRunningError extends Error {
  constructor(readonly path: string) {
    super(`lqosd already running: another process answers on ${path}; stop it first (systemctl stop lqosd)`);
    this.name = 'BusAlreadyRunningError';
  }
}

/** Unread replies a client may leave queued before it is disconnected. */
const MAX_PENDING_WRITE_BYTES = 32 * 1024 * 1024;

type SocketState = 'absent' | 'alive' | 'stale';

function probeSocket(path: string, timeoutMs = 1000): Promise<SocketState> {
  let st;
  try {
    st = lstatSync(path);
  } catch {
    return Promise.resolve('absent');
  }
  if (!st.isSocket()) {
    return Promise.reject(new Error(`${path} exists and is not a socket; remove it or set LQOS_BUS_PATH to another path`));
  }
  return new Promise((resolve) => {
    const s = createConnection(path);
    const done = (r: SocketState) => {
      clearTimeout(timer);
      s.destroy();
      resolve(r);
    };
    const timer = setTimeout(() => done('alive'), timeoutMs); // something holds it but is slow: do not steal it
    s.once('connect', () => done('alive'));
    s.once('error', (e: NodeJS.ErrnoException) => done(e.code === 'ECONNREFUSED' ? 'stale' : e.code === 'ENOENT' ? 'absent' : 'alive'));
  });
}

/** Makes the socket's directory and clears a stale socket; throws if a live lqosd holds it. */
async function prepareSocketPath(path: string, log: Log): Promise<void> {
  const dir = dirname(path);
  if (!existsSync(dir)) {
    mkdirSync(dir, { recursive: true, mode: 0o755 });
    chmodSync(dir, 0o755);
  }
  const state = await probeSocket(path);
  if (state === 'alive') throw new BusAlreadyRunningError(path);
  if (state === 'stale') {
    log.warn(`removing stale bus socket ${path} (nothing answers on it)`);
    unlinkSync(path);
  }
}

/** Runs the handler of one request line; every failure becomes an error reply. */
async function dispatch(line: string, handlers: BusHandlers, log: Log): Promise<BusReply> {
  const decoded = decodeRequest(line);
  if (!decoded.ok) return decoded.reply;
  const request = decoded.request;
  const handler = handlers[request.type] as BusHandler<RequestType> | undefined;
  if (!handler) return errorReply(request.id, 'not_implemented', `request type "${request.type}" is not available in this lqosd`);
  try {
    return okReply(request.id, await handler(request as never));
  } catch (e) {
    if (e instanceof BusError) return errorReply(request.id, e.code, e.message, e.path);
    log.error({ err: e, type: request.type }, `bus handler for "${request.type}" failed: ${(e as Error)?.message ?? String(e)}`);
    return errorReply(request.id, 'internal', `lqosd failed to handle "${request.type}": ${(e as Error)?.message ?? String(e)}`);
  }
}

function send(sock: Socket, reply: BusReply, log: Log): void {
  if (sock.destroyed || !sock.writable) return;
  let text: string;
  try {
    text = encodeReply(reply);
  } catch (e) {
    text = encodeReply(errorReply(reply.id, 'internal', `reply could not be encoded: ${(e as Error).message}`));
  }
  sock.write(text);
  if (sock.writableLength > MAX_PENDING_WRITE_BYTES) {
    log.warn('bus client does not read its replies; disconnecting it');
    sock.destroy();
  }
}

interface ConnectionLimits {
  maxBytes: number;
  maxInFlight: number;
  idleMs: number;
}

/**
 * One client connection: splits the byte stream into lines (at most maxBytes each), runs at most
 * maxInFlight requests at once (pausing the socket meanwhile), writes the replies and closes the
 * connection after idleMs without a complete request while nothing of it is being handled.
 */
class Connection {
  private partial: Buffer[] = [];
  private partialLen = 0;
  private inFlight = 0;
  private closing = false;
  private readonly queue: string[] = [];
  private idleTimer?: NodeJS.Timeout;

  constructor(
    private readonly sock: Socket,
    private readonly limits: ConnectionLimits,
    private readonly handle: (line: string) => Promise<BusReply>,
    private readonly onServed: () => void,
    private readonly log: Log,
  ) {
    sock.on('data', (chunk: Buffer) => this.onData(chunk));
    sock.on('close', () => clearTimeout(this.idleTimer));
    this.armIdle();
    sock.resume();
  }

  /**
   * (Re)starts the idle clock, unless a request is queued or being handled. Only a complete request
   * or a reply restarts it, so a client trickling bytes of an unfinished line is closed too.
   */
  private armIdle(): void {
    clearTimeout(this.idleTimer);
    this.idleTimer = undefined;
    if (this.closing || this.sock.destroyed || this.inFlight > 0 || this.queue.length > 0) return;
    this.idleTimer = setTimeout(() => this.onIdle(), this.limits.idleMs);
    this.idleTimer.unref();
  }

  private onIdle(): void {
    if (this.closing || this.sock.destroyed || this.inFlight > 0 || this.queue.length > 0) return;
    this.closing = true;
    const stalled = this.partialLen > 0;
    this.log.debug(
      { idleMs: this.limits.idleMs, pendingBytes: this.partialLen },
      stalled
        ? `bus client sent an unfinished request and nothing more for ${this.limits.idleMs} ms; closing that connection`
        : `bus client idle for ${this.limits.idleMs} ms; closing that connection`,
    );
    this.partial = [];
    this.sock.destroy();
  }

  private onData(chunk: Buffer): void {
    if (this.closing) return;
    const { maxBytes } = this.limits;
    let start = 0;
    for (;;) {
      const nl = chunk.indexOf(10, start);
      if (nl < 0) break;
      const part = chunk.subarray(start, nl);
      if (this.partialLen + part.length > maxBytes) return this.tooLarge();
      const line = (this.partialLen ? Buffer.concat([...this.partial, part]) : part).toString('utf8');
      this.partial = [];
      this.partialLen = 0;
      start = nl + 1;
      if (line.trim() !== '') this.queue.push(line);
    }
    if (start < chunk.length) {
      const rest = chunk.subarray(start);
      if (this.partialLen + rest.length > maxBytes) return this.tooLarge();
      this.partial.push(Buffer.from(rest));
      this.partialLen += rest.length;
    }
    this.pump();
  }

  private tooLarge(): void {
    const { maxBytes } = this.limits;
    this.closing = true;
    clearTimeout(this.idleTimer);
    this.queue.length = 0;
    this.partial = [];
    this.log.warn(`bus message over ${maxBytes} bytes; closing that connection`);
    send(this.sock, errorReply(null, 'too_large', `message larger than ${maxBytes} bytes; the connection is closed`), this.log);
    this.sock.end();
    setTimeout(() => this.sock.destroy(), 2000).unref();
  }

  private pump(): void {
    if (this.queue.length) clearTimeout(this.idleTimer);
    while (!this.closing && this.inFlight < this.limits.maxInFlight && this.queue.length) {
      const line = this.queue.shift()!;
      this.inFlight++;
      this.handle(line)
        .catch((e: unknown) => errorReply(null, 'internal', String(e)))
        .then((reply) => {
          this.onServed();
          send(this.sock, reply, this.log);
        })
        .finally(() => {
          this.inFlight--;
          this.pump();
          this.armIdle();
        });
    }
    if (this.closing || this.sock.destroyed) return;
    if (this.queue.length) this.sock.pause();
    else if (this.sock.isPaused()) this.sock.resume();
  }
}

/**
 * Admission: at most maxConnections are served at once; further ones wait, unread, for a free slot
 * (at most maxWaiting of them, each for at most waitTimeoutMs), then get `busy`.
 */
class ConnectionSlots {
  readonly active = new Set<Socket>();
  readonly waiting: { sock: Socket; timer: NodeJS.Timeout }[] = [];
  peak = 0;
  closed = false;
  /** Connections refused since the last log line about it (one line per burst, not per connection). */
  private refused = 0;
  /** Sockets answered `busy` that have not closed yet (destroyed at the latest 1 s later, or on close). */
  private readonly refusing = new Set<Socket>();
  private lastRefusalLog = 0;

  constructor(
    private readonly limits: { maxConnections: number; maxWaiting: number; waitTimeoutMs: number },
    private readonly serve: (sock: Socket) => void,
    private readonly log: Log,
  ) {}

  admit(sock: Socket): void {
    const { maxConnections, maxWaiting, waitTimeoutMs } = this.limits;
    if (this.closed) return void sock.destroy();
    if (this.active.size < maxConnections) return this.activate(sock);
    if (this.waiting.length >= maxWaiting) return this.refuse(sock, `too many bus connections (limit ${maxConnections}); try again later`);
    const entry = {
      sock,
      timer: setTimeout(() => {
        this.forget(entry);
        this.refuse(sock, `too many bus connections (limit ${maxConnections}) for ${waitTimeoutMs} ms; try again later`);
      }, waitTimeoutMs),
    };
    entry.timer.unref();
    this.waiting.push(entry);
    sock.once('close', () => this.forget(entry));
  }

  private forget(entry: { sock: Socket; timer: NodeJS.Timeout }): void {
    const i = this.waiting.indexOf(entry);
    if (i < 0) return;
    this.waiting.splice(i, 1);
    clearTimeout(entry.timer);
  }

  private activate(sock: Socket): void {
    this.active.add(sock);
    this.peak = Math.max(this.peak, this.active.size);
    sock.on('close', () => {
      this.active.delete(sock);
      // A slot is free: the longest-waiting connection gets it.
      while (!this.closed && this.waiting.length && this.active.size < this.limits.maxConnections) {
        const next = this.waiting.shift()!;
        clearTimeout(next.timer);
        if (!next.sock.destroyed) this.activate(next.sock);
      }
    });
    this.serve(sock);
  }

  /** Answers `busy` and closes; logs a warning at most every 10 s with the count refused meanwhile. */
  private refuse(sock: Socket, message: string): void {
    this.refused++;
    const now = Date.now();
    if (now - this.lastRefusalLog >= 10_000) {
      const { maxConnections, maxWaiting } = this.limits;
      this.log.warn(
        { refused: this.refused, served: this.active.size, waiting: this.waiting.length },
        `bus connection limit reached (${maxConnections} served at once, ${maxWaiting} waiting): refused ${this.refused} connection(s) with "busy"; ` +
          'a client is opening connections without closing them',
      );
      this.refused = 0;
      this.lastRefusalLog = now;
    }
    this.refusing.add(sock);
    sock.once('close', () => this.refusing.delete(sock));
    refuse(sock, message);
  }

  /** Drops every waiting, active and refused-but-not-yet-closed connection (the server's close waits for all of them). */
  close(): void {
    this.closed = true;
    for (const w of this.waiting.splice(0)) {
      clearTimeout(w.timer);
      w.sock.destroy();
    }
    for (const s of this.active) s.destroy();
    for (const s of this.refusing) s.destroy();
  }
}

function refuse(sock: Socket, message: string): void {
  sock.end(encodeReply(errorReply(null, 'busy', message)));
  setTimeout(() => sock.destroy(), 1000).unref();
}

function listen(server: Server, path: string): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    const onError = (e: NodeJS.ErrnoException) => reject(e.code === 'EADDRINUSE' ? new BusAlreadyRunningError(path) : e);
    server.once('error', onError);
    // Created 0600 (umask 0177 while the socket file is bound, synchronously in listen): no moment in
    // which another user could connect before the chmod below, whatever umask lqosd was started with.
    const umask = process.umask(0o177);
    try {
      server.listen(path, () => {
        server.off('error', onError);
        resolve();
      });
    } finally {
      process.umask(umask);
    }
  });
}

export async function startBusServer(opts: BusServerOptions): Promise<BusServer> {
  const path = opts.path ?? defaultBusPath();
  const log = opts.log;
  const limits = {
    maxBytes: opts.maxMessageBytes ?? MAX_MESSAGE_BYTES,
    maxInFlight: opts.maxInFlight ?? MAX_IN_FLIGHT_PER_CONNECTION,
    idleMs: opts.idleTimeoutMs ?? BUS_IDLE_TIMEOUT_MS,
  };
  await prepareSocketPath(path, log);

  let served = 0;
  const slots = new ConnectionSlots(
    { maxConnections: opts.maxConnections ?? MAX_CONNECTIONS, maxWaiting: opts.maxWaiting ?? 256, waitTimeoutMs: opts.waitTimeoutMs ?? 10_000 },
    (sock) => new Connection(sock, limits, (line) => dispatch(line, opts.handlers, log), () => served++, log),
    log,
  );
  const server: Server = createServer({ allowHalfOpen: false, pauseOnConnect: true }, (sock) => {
    sock.on('error', (e) => log.debug({ err: e.message }, 'bus connection error'));
    slots.admit(sock);
  });
  server.on('error', (e) => log.error({ err: e.message }, `bus server error: ${e.message}`));
  await listen(server, path);
  // Root-only: the bus can change shaping; no other user may connect.
  chmodSync(path, 0o600);
  const ino = statSync(path).ino;
  log.info(`bus listening on ${path}`);

  return {
    path,
    connections: () => slots.active.size,
    requestsServed: () => served,
    stats: () => ({ connections: slots.active.size, waiting: slots.waiting.length, peak: slots.peak, served }),
    close: async () => {
      if (slots.closed) return;
      const done = new Promise<void>((resolve) => server.close(() => resolve()));
      slots.close();
      await done;
      try {
        // Only remove the socket file if it is still ours.
        if (statSync(path).ino === ino) unlinkSync(path);
      } catch {
        /* already gone */
      }
    },
  };
}
