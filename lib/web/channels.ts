/**
 * Live channels pushed over the websocket (`GET /api/ws`). A channel is a name plus a producer that
 * computes the current payload; the hub calls each producer once per tick (default 2 s) while at least
 * one client is subscribed and sends `{channel, data}` to every subscriber.
 *
 * lqosd creates one ChannelRegistry and hands it to the web server (which adds `urgent`,
 * `scheduler`, `status`) and to the services that publish live data (telemetry: `throughput`,
 * `circuits`, `queues`, `cpu`; flows: `flows`).
 */
import type { Log } from '../util/log.ts';

export type ChannelProducer = () => unknown;

/** Names the hub uses for its own messages; channels cannot take them. */
export const RESERVED_CHANNELS: readonly string[] = ['error', 'subscribed', 'unsubscribed'];
const NAME_RE = /^[a-z][a-z0-9_.-]{0,63}$/;

export class ChannelRegistry {
  private readonly producers = new Map<string, ChannelProducer>();

  /**
   * Adds (or replaces) a channel. Returns a function that removes it again. Names: lower-case letters,
   * digits, `_ . -`, starting with a letter, at most 64 characters.
   */
  register(name: string, producer: ChannelProducer): () => void {
    if (!NAME_RE.test(name) || RESERVED_CHANNELS.includes(name)) {
      throw new Error(`invalid channel name ${JSON.stringify(name)}`);
    }
    this.producers.set(name, producer);
    return () => {
      if (this.producers.get(name) === producer) this.producers.delete(name);
    };
  }

  /** The same as register, as a free function (what services are handed). */
  readonly publish = (name: string, producer: ChannelProducer): (() => void) => this.register(name, producer);

  has(name: string): boolean {
    return this.producers.has(name);
  }

  get(name: string): ChannelProducer | undefined {
    return this.producers.get(name);
  }

  names(): string[] {
    return [...this.producers.keys()].sort();
  }
}

/** The part of a `ws` WebSocket the hub uses. */
export interface WsLike {
  readyState: number;
  send(data: string): void;
  close(code?: number, reason?: string): void;
  on(event: 'message', listener: (data: unknown, isBinary: boolean) => void): unknown;
  on(event: 'close', listener: () => void): unknown;
}

const WS_OPEN = 1;
/** Close code sent when the session behind a socket ends (logout, expiry, user deleted). */
export const WS_CLOSE_SESSION_ENDED = 4401;

interface Connection {
  socket: WsLike;
  subs: Set<string>;
  sessionValid: () => boolean;
}

const PRODUCER_TIMEOUT_MS = 5000;

export class ChannelHub {
  private readonly conns = new Set<Connection>();
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly channels: ChannelRegistry,
    private readonly log: Log,
    private readonly intervalMs = 2000,
  ) {}

  start(): void {
    if (this.timer) return;
    this.timer = setInterval(() => void this.tick(), this.intervalMs);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    for (const c of this.conns) c.socket.close(1001, 'server shutting down');
    this.conns.clear();
  }

  get connectionCount(): number {
    return this.conns.size;
  }

  attach(socket: WsLike, sessionValid: () => boolean): void {
    const conn: Connection = { socket, subs: new Set(), sessionValid };
    this.conns.add(conn);
    socket.on('close', () => this.conns.delete(conn));
    socket.on('message', (data, isBinary) => void this.onMessage(conn, data, isBinary));
  }

  private send(conn: Connection, channel: string, data: unknown): void {
    if (conn.socket.readyState !== WS_OPEN) return;
    conn.socket.send(JSON.stringify({ channel, data }));
  }

  private async onMessage(conn: Connection, raw: unknown, isBinary: boolean): Promise<void> {
    if (!conn.sessionValid()) {
      conn.socket.close(WS_CLOSE_SESSION_ENDED, 'session ended');
      return;
    }
    let msg: unknown;
    try {
      if (isBinary) throw new Error('binary');
      msg = JSON.parse(Buffer.isBuffer(raw) ? raw.toString('utf8') : String(raw));
    } catch {
      this.send(conn, 'error', { error: 'bad_message', message: 'send JSON text such as {"subscribe":["urgent"]}' });
      return;
    }
    const parsed = parseClientMessage(msg);
    if ('error' in parsed) {
      this.send(conn, 'error', { error: 'bad_message', message: parsed.error });
      return;
    }
    const unknown = [...parsed.subscribe, ...parsed.unsubscribe].filter((c) => !this.channels.has(c));
    if (unknown.length > 0) {
      this.send(conn, 'error', {
        error: 'unknown_channel',
        message: `unknown channel(s): ${unknown.join(', ')}; available: ${this.channels.names().join(', ')}`,
      });
    }
    for (const c of parsed.unsubscribe) conn.subs.delete(c);
    const added = parsed.subscribe.filter((c) => this.channels.has(c) && !conn.subs.has(c));
    for (const c of added) conn.subs.add(c);
    if (parsed.subscribe.length > 0) this.send(conn, 'subscribed', [...conn.subs].sort());
    if (parsed.unsubscribe.length > 0) this.send(conn, 'unsubscribed', parsed.unsubscribe);
    // New subscribers get the current value right away instead of waiting for the next tick.
    for (const c of added) {
      const data = await this.produce(c);
      if (data !== undefined && conn.subs.has(c)) this.send(conn, c, data);
    }
  }

  private async produce(channel: string): Promise<unknown> {
    const producer = this.channels.get(channel);
    if (!producer) return undefined;
    let timer: NodeJS.Timeout | undefined;
    try {
      const timeout = new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`channel ${channel} took longer than ${PRODUCER_TIMEOUT_MS} ms`)), PRODUCER_TIMEOUT_MS);
      });
      const data = await Promise.race([Promise.resolve().then(() => producer()), timeout]);
      return data === undefined ? null : data;
    } catch (err) {
      this.log.warn({ channel, err: (err as Error).message }, 'websocket channel producer failed');
      return undefined;
    } finally {
      clearTimeout(timer);
    }
  }

  /** One round: drop connections whose session ended, then push every subscribed channel once. */
  async tick(): Promise<void> {
    const wanted = new Set<string>();
    for (const conn of this.conns) {
      if (!conn.sessionValid()) {
        conn.socket.close(WS_CLOSE_SESSION_ENDED, 'session ended');
        this.conns.delete(conn);
        continue;
      }
      for (const c of conn.subs) wanted.add(c);
    }
    await Promise.all(
      [...wanted].map(async (channel) => {
        const data = await this.produce(channel);
        if (data === undefined) return;
        const text = JSON.stringify({ channel, data });
        for (const conn of this.conns) {
          if (conn.subs.has(channel) && conn.socket.readyState === WS_OPEN) conn.socket.send(text);
        }
      }),
    );
  }
}

const MAX_CHANNELS_PER_MESSAGE = 64;

function parseClientMessage(msg: unknown): { subscribe: string[]; unsubscribe: string[] } | { error: string } {
  if (typeof msg !== 'object' || msg === null || Array.isArray(msg)) return { error: 'expected an object' };
  const out = { subscribe: [] as string[], unsubscribe: [] as string[] };
  for (const [k, v] of Object.entries(msg)) {
    if (k !== 'subscribe' && k !== 'unsubscribe') return { error: `unknown field ${JSON.stringify(k)}; use subscribe / unsubscribe` };
    if (!Array.isArray(v) || v.length > MAX_CHANNELS_PER_MESSAGE || !v.every((c) => typeof c === 'string' && c.length <= 64)) {
      return { error: `${k} must be a list of channel names` };
    }
    out[k] = v as string[];
  }
  return out;
}
