/**
 * Live channels pushed over the websocket (`GET /api/ws`). A channel is a name plus a producer that
 * computes the current payload; the hub calls each producer once per tick (default 2 s) while at least
 * one client is subscribed and sends the same serialised `{channel, data}` to every subscriber.
 * The hub caps connections (in all and per session) and subscriptions, and drops a consumer whose
 * unsent data passes a bound instead of buffering for it without end.
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
  /** Bytes queued for sending and not yet handed to the kernel. */
  bufferedAmount: number;
  send(data: string): void;
  close(code?: number, reason?: string): void;
  /** Destroys the connection at once (a consumer that does not even read its close frame). */
  terminate?(): void;
  on(event: 'message', listener: (data: unknown, isBinary: boolean) => void): unknown;
  on(event: 'close', listener: () => void): unknown;
}

const WS_OPEN = 1;
/** Close code sent when the session behind a socket ends (logout, expiry, user deleted). */
export const WS_CLOSE_SESSION_ENDED = 4401;
/** Close code for a connection over the caps (RFC 6455 "policy violation"). */
export const WS_CLOSE_POLICY = 1008;
/** Close code for a consumer that does not keep up (RFC 6455 "try again later"). */
export const WS_CLOSE_TOO_SLOW = 1013;

/** What one lqosd's websocket may cost. */
export interface HubLimits {
  /** Open websockets in all (default 64). */
  maxConnections: number;
  /** Open websockets per login session (default 8: a few browser tabs). */
  maxPerSession: number;
  /** Open websockets per user over all their sessions (default 16), so one account cannot take them all. */
  maxPerUser: number;
  /** A socket with more than this queued and unsent is dropped (default 4 MiB). */
  maxBufferedBytes: number;
  /** Channels one socket may subscribe to (default 32). */
  maxSubscriptions: number;
  /** A dropped socket that has not closed after this long is destroyed (default 2 s). */
  terminateAfterMs: number;
}

export const DEFAULT_HUB_LIMITS: Readonly<HubLimits> = {
  maxConnections: 64,
  maxPerSession: 8,
  maxPerUser: 16,
  maxBufferedBytes: 4 * 1024 * 1024,
  maxSubscriptions: 32,
  terminateAfterMs: 2000,
};

/** Who is behind a socket (for the per-session cap and the log). */
export interface WsClient {
  sessionId: string;
  user: string;
  /** False once the session ended (logout, expiry, user deleted). */
  sessionValid: () => boolean;
}

interface Connection {
  socket: WsLike;
  subs: Set<string>;
  client: WsClient;
}

const PRODUCER_TIMEOUT_MS = 5000;
const LOG_EVERY_MS = 10_000;

/**
 * Pushes channels to websockets. Each channel's payload is produced and serialised once per tick and
 * the same text goes to every subscriber; a new subscriber gets the latest text when it is younger
 * than one tick (else one shared production), so subscribing in a loop costs nothing extra.
 */
export class ChannelHub {
  private readonly conns = new Set<Connection>();
  private timer: NodeJS.Timeout | undefined;
  private readonly limits: HubLimits;
  /** The last serialised `{channel, data}` of each channel and when it was produced. */
  private readonly latest = new Map<string, { text: string; at: number }>();
  private readonly inflight = new Map<string, Promise<string | undefined>>();
  private readonly lastWarn = new Map<string, { at: number; suppressed: number }>();

  constructor(
    private readonly channels: ChannelRegistry,
    private readonly log: Log,
    private readonly intervalMs = 2000,
    limits: Partial<HubLimits> = {},
  ) {
    this.limits = { ...DEFAULT_HUB_LIMITS, ...limits };
  }

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
    this.latest.clear();
  }

  get connectionCount(): number {
    return this.conns.size;
  }

  /** Takes a new socket, or closes it (policy code) when a cap is reached; false then. */
  attach(socket: WsLike, client: WsClient): boolean {
    const perSession = [...this.conns].filter((c) => c.client.sessionId === client.sessionId).length;
    const perUser = [...this.conns].filter((c) => c.client.user === client.user).length;
    const over =
      this.conns.size >= this.limits.maxConnections
        ? `lqosd already serves ${this.conns.size} websockets (the limit)`
        : perSession >= this.limits.maxPerSession
          ? `this session already has ${perSession} websockets open (the limit); close other tabs`
          : perUser >= this.limits.maxPerUser
            ? `user ${client.user} already has ${perUser} websockets open over all logins (the limit); close other tabs or log out elsewhere`
            : undefined;
    if (over) {
      this.warn('cap', { user: client.user, open: this.conns.size, openForSession: perSession }, `websocket refused: ${over}`);
      socket.close(WS_CLOSE_POLICY, over.slice(0, 120));
      return false;
    }
    const conn: Connection = { socket, subs: new Set(), client };
    this.conns.add(conn);
    socket.on('close', () => this.conns.delete(conn));
    socket.on('message', (data, isBinary) => void this.onMessage(conn, data, isBinary));
    return true;
  }

  /** Sends a serialised message unless the socket is closed; drops a consumer that does not keep up. */
  private deliver(conn: Connection, text: string): void {
    if (!this.conns.has(conn) || conn.socket.readyState !== WS_OPEN) return;
    const queued = conn.socket.bufferedAmount;
    if (queued > this.limits.maxBufferedBytes) {
      this.drop(conn, queued);
      return;
    }
    conn.socket.send(text);
  }

  private drop(conn: Connection, queued: number): void {
    this.conns.delete(conn);
    this.warn(
      'slow',
      { user: conn.client.user, queuedBytes: queued, limitBytes: this.limits.maxBufferedBytes },
      `websocket of ${conn.client.user} dropped: it does not read fast enough (${queued} bytes queued); the browser reconnects by itself`,
    );
    conn.socket.close(WS_CLOSE_TOO_SLOW, 'too slow');
    // Its close frame waits behind what it does not read: destroy it if it does not go away soon.
    setTimeout(() => conn.socket.terminate?.(), this.limits.terminateAfterMs).unref();
  }

  /** A warning line, at most one per kind every 10 s (a client can provoke these in a loop). */
  private warn(kind: string, fields: Record<string, unknown>, msg: string): void {
    const now = Date.now();
    const last = this.lastWarn.get(kind);
    if (last && now - last.at < LOG_EVERY_MS) {
      last.suppressed++;
      return;
    }
    this.log.warn({ ...fields, alsoSinceLastLine: last?.suppressed ?? 0 }, msg);
    this.lastWarn.set(kind, { at: now, suppressed: 0 });
  }

  private send(conn: Connection, channel: string, data: unknown): void {
    this.deliver(conn, JSON.stringify({ channel, data }));
  }

  private async onMessage(conn: Connection, raw: unknown, isBinary: boolean): Promise<void> {
    if (!conn.client.sessionValid()) {
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
    const added = this.subscribe(conn, parsed.subscribe);
    if (parsed.subscribe.length > 0) this.send(conn, 'subscribed', [...conn.subs].sort());
    if (parsed.unsubscribe.length > 0) this.send(conn, 'unsubscribed', parsed.unsubscribe);
    // New subscribers get the current value right away instead of waiting for the next tick.
    for (const c of added) {
      const text = await this.payload(c, this.intervalMs);
      if (text !== undefined && conn.subs.has(c)) this.deliver(conn, text);
    }
  }

  /** Adds the known channels up to the cap; returns the ones added. */
  private subscribe(conn: Connection, names: string[]): string[] {
    const added: string[] = [];
    for (const c of new Set(names)) {
      if (!this.channels.has(c) || conn.subs.has(c)) continue;
      if (conn.subs.size >= this.limits.maxSubscriptions) {
        this.send(conn, 'error', { error: 'too_many_subscriptions', message: `at most ${this.limits.maxSubscriptions} channels per websocket; unsubscribe from some first` });
        break;
      }
      conn.subs.add(c);
      added.push(c);
    }
    return added;
  }

  /**
   * The serialised message of a channel: the latest when younger than `maxAgeMs`, else the one being
   * produced, else a new production. Undefined when the producer failed or the channel is gone.
   */
  private payload(channel: string, maxAgeMs: number): Promise<string | undefined> {
    const hit = this.latest.get(channel);
    if (hit && Date.now() - hit.at < maxAgeMs) return Promise.resolve(hit.text);
    const running = this.inflight.get(channel);
    if (running) return running;
    const job = this.produce(channel)
      .then((data) => {
        if (data === undefined) return undefined;
        const text = this.serialise(channel, data);
        if (text !== undefined) this.latest.set(channel, { text, at: Date.now() });
        return text;
      })
      .finally(() => this.inflight.delete(channel));
    this.inflight.set(channel, job);
    return job;
  }

  private serialise(channel: string, data: unknown): string | undefined {
    try {
      return JSON.stringify({ channel, data });
    } catch (err) {
      this.log.warn({ channel, err: (err as Error).message }, 'websocket channel payload cannot be serialised');
      return undefined;
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
      if (!conn.client.sessionValid()) {
        conn.socket.close(WS_CLOSE_SESSION_ENDED, 'session ended');
        this.conns.delete(conn);
        continue;
      }
      for (const c of conn.subs) wanted.add(c);
    }
    // Payloads nobody wants any more are not kept.
    for (const c of this.latest.keys()) if (!wanted.has(c)) this.latest.delete(c);
    await Promise.all(
      [...wanted].map(async (channel) => {
        const text = await this.payload(channel, 0);
        if (text === undefined) return;
        for (const conn of this.conns) {
          if (conn.subs.has(channel)) this.deliver(conn, text);
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
