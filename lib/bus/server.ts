/**
 * The lqosd bus server: a root-only Unix socket (mode 0600) speaking the newline-delimited JSON
 * protocol of ./protocol.ts. Handlers are plugged in per request type; a type without a handler
 * answers `not_implemented`. Nothing a client sends can crash the daemon: every failure becomes
 * an error reply (or, for oversized messages, an error reply and a closed connection).
 */
import { chmodSync, existsSync, lstatSync, mkdirSync, statSync, unlinkSync } from 'node:fs';
import { createConnection, createServer, type Server, type Socket } from 'node:net';
import { dirname, join } from 'node:path';
import type { Logger } from '../util/log.ts';
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

export const DEFAULT_RUN_DIR = '/run/lqos';

/** `$LQOS_BUS_PATH`, else `<$LQOS_RUN_DIR or /run/lqos>/bus`. */
export function defaultBusPath(env: NodeJS.ProcessEnv = process.env): string {
  return env.LQOS_BUS_PATH || join(env.LQOS_RUN_DIR || DEFAULT_RUN_DIR, 'bus');
}

export type BusHandler<T extends RequestType> = (req: RequestOf<T>) => unknown;
export type BusHandlers = { [K in RequestType]?: BusHandler<K> };

export interface BusServerOptions {
  path?: string;
  handlers: BusHandlers;
  log: Logger;
  maxConnections?: number;
  /** Connections beyond maxConnections wait (unread) for a free slot, at most this many (default 256). */
  maxWaiting?: number;
  /** How long a waiting connection may wait before it gets `busy` (default 10 s). */
  waitTimeoutMs?: number;
  maxMessageBytes?: number;
  maxInFlight?: number;
}

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

export async function startBusServer(opts: BusServerOptions): Promise<BusServer> {
  const path = opts.path ?? defaultBusPath();
  const log = opts.log;
  const maxConnections = opts.maxConnections ?? MAX_CONNECTIONS;
  const maxBytes = opts.maxMessageBytes ?? MAX_MESSAGE_BYTES;
  const maxInFlight = opts.maxInFlight ?? MAX_IN_FLIGHT_PER_CONNECTION;

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

  const maxWaiting = opts.maxWaiting ?? 256;
  const waitTimeoutMs = opts.waitTimeoutMs ?? 10_000;
  const sockets = new Set<Socket>();
  const waiting: { sock: Socket; timer: NodeJS.Timeout }[] = [];
  let served = 0;
  let peak = 0;
  let closed = false;

  const reject = (sock: Socket, message: string) => {
    sock.end(encodeReply(errorReply(null, 'busy', message)));
    setTimeout(() => sock.destroy(), 1000).unref();
  };

  const activate = (sock: Socket) => {
    sockets.add(sock);
    peak = Math.max(peak, sockets.size);
    sock.on('close', () => {
      sockets.delete(sock);
      // A slot is free: the longest-waiting connection gets it.
      while (!closed && waiting.length && sockets.size < maxConnections) {
        const next = waiting.shift()!;
        clearTimeout(next.timer);
        if (!next.sock.destroyed) activate(next.sock);
      }
    });
    serveConnection(sock);
  };

  const server: Server = createServer({ allowHalfOpen: false, pauseOnConnect: true }, (sock) => {
    sock.on('error', (e) => log.debug({ err: e.message }, 'bus connection error'));
    if (closed) return void sock.destroy();
    if (sockets.size < maxConnections) return activate(sock);
    if (waiting.length >= maxWaiting) return reject(sock, `too many bus connections (limit ${maxConnections}); try again later`);
    // Over the limit: the connection waits, unread, for a free slot.
    const entry = {
      sock,
      timer: setTimeout(() => {
        const i = waiting.indexOf(entry);
        if (i >= 0) waiting.splice(i, 1);
        reject(sock, `too many bus connections (limit ${maxConnections}) for ${waitTimeoutMs} ms; try again later`);
      }, waitTimeoutMs),
    };
    entry.timer.unref();
    waiting.push(entry);
    sock.once('close', () => {
      const i = waiting.indexOf(entry);
      if (i >= 0) {
        waiting.splice(i, 1);
        clearTimeout(entry.timer);
      }
    });
  });

  function send(sock: Socket, reply: BusReply): void {
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

  async function dispatch(line: string): Promise<BusReply> {
    const decoded = decodeRequest(line);
    if (!decoded.ok) return decoded.reply;
    const request = decoded.request;
    const handler = opts.handlers[request.type] as BusHandler<RequestType> | undefined;
    if (!handler) return errorReply(request.id, 'not_implemented', `request type "${request.type}" is not available in this lqosd`);
    try {
      return okReply(request.id, await handler(request as never));
    } catch (e) {
      if (e instanceof BusError) return errorReply(request.id, e.code, e.message, e.path);
      log.error({ err: e, type: request.type }, `bus handler for "${request.type}" failed: ${(e as Error)?.message ?? String(e)}`);
      return errorReply(request.id, 'internal', `lqosd failed to handle "${request.type}": ${(e as Error)?.message ?? String(e)}`);
    }
  }

  function serveConnection(sock: Socket): void {
    let partial: Buffer[] = [];
    let partialLen = 0;
    let inFlight = 0;
    let closing = false;
    const queue: string[] = [];

    const tooLarge = () => {
      closing = true;
      queue.length = 0;
      partial = [];
      log.warn(`bus message over ${maxBytes} bytes; closing that connection`);
      send(sock, errorReply(null, 'too_large', `message larger than ${maxBytes} bytes; the connection is closed`));
      sock.end();
      setTimeout(() => sock.destroy(), 2000).unref();
    };

    const pump = () => {
      while (!closing && inFlight < maxInFlight && queue.length) {
        const line = queue.shift()!;
        inFlight++;
        dispatch(line)
          .catch((e: unknown) => errorReply(null, 'internal', String(e)))
          .then((reply) => {
            served++;
            send(sock, reply);
          })
          .finally(() => {
            inFlight--;
            pump();
          });
      }
      if (closing || sock.destroyed) return;
      if (queue.length) sock.pause();
      else if (sock.isPaused()) sock.resume();
    };

    sock.on('data', (chunk: Buffer) => {
      if (closing) return;
      let start = 0;
      for (;;) {
        const nl = chunk.indexOf(10, start);
        if (nl < 0) break;
        const part = chunk.subarray(start, nl);
        if (partialLen + part.length > maxBytes) return tooLarge();
        const line = (partialLen ? Buffer.concat([...partial, part]) : part).toString('utf8');
        partial = [];
        partialLen = 0;
        start = nl + 1;
        if (line.trim() !== '') queue.push(line);
      }
      if (start < chunk.length) {
        const rest = chunk.subarray(start);
        if (partialLen + rest.length > maxBytes) return tooLarge();
        partial.push(Buffer.from(rest));
        partialLen += rest.length;
      }
      pump();
    });
    sock.resume();
  }

  server.on('error', (e) => log.error({ err: e.message }, `bus server error: ${e.message}`));
  await new Promise<void>((resolve, reject) => {
    const onError = (e: NodeJS.ErrnoException) => {
      reject(e.code === 'EADDRINUSE' ? new BusAlreadyRunningError(path) : e);
    };
    server.once('error', onError);
    server.listen(path, () => {
      server.off('error', onError);
      resolve();
    });
  });
  // Root-only: the bus can change shaping; no other user may connect.
  chmodSync(path, 0o600);
  const ino = statSync(path).ino;
  log.info(`bus listening on ${path}`);

  return {
    path,
    connections: () => sockets.size,
    requestsServed: () => served,
    stats: () => ({ connections: sockets.size, waiting: waiting.length, peak, served }),
    close: async () => {
      if (closed) return;
      closed = true;
      for (const w of waiting.splice(0)) {
        clearTimeout(w.timer);
        w.sock.destroy();
      }
      const done = new Promise<void>((resolve) => server.close(() => resolve()));
      for (const s of sockets) s.destroy();
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
