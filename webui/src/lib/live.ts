/**
 * The one websocket to lqosd (`/api/ws`). Components subscribe to channels by name; the socket sends
 * `{subscribe:[...]}` and dispatches `{channel, data}` pushes. The server answers every subscribe with
 * `{channel:"subscribed", data:[names]}`, so a channel the daemon does not offer (telemetry not running,
 * older lqosd) is marked `missing` and the UI shows a note instead of a chart. Channel data has the
 * shapes of lib/api/channels.ts.
 */
import { reactive, ref } from 'vue';
import type { ChannelName, ChannelPayloads, ServerMessage } from '../../../lib/api/index.ts';

export type ChannelState = 'pending' | 'available' | 'missing';
type Handler = (data: unknown) => void;

const RECONNECT_MIN_MS = 1000;
const RECONNECT_MAX_MS = 10_000;
/** Close code lqosd uses when the session behind the socket ended. */
const CLOSE_SESSION_ENDED = 4401;
/** Close codes of a refusal (a websocket limit reached, lqosd busy): the reason says what to do. */
const CLOSE_REFUSED = new Set([1008, 1013]);

class LiveSocket {
  private ws: WebSocket | undefined;
  private readonly handlers = new Map<string, Set<Handler>>();
  private readonly last = new Map<string, unknown>();
  private retryMs = RECONNECT_MIN_MS;
  private retryTimer: ReturnType<typeof setTimeout> | undefined;
  private wanted = false;
  /** Per channel: whether the daemon offers it. */
  readonly channels = reactive<Record<string, ChannelState>>({});
  readonly connected = ref(false);
  /** When the open socket was lost (undefined while connected or stopped). */
  readonly lostAt = ref<number | undefined>();
  /** Why lqosd refused the last socket (its close reason, e.g. "… close other tabs"), until one is accepted. */
  readonly refused = ref<string | undefined>();
  onSessionEnded: (() => void) | undefined;

  start(): void {
    this.wanted = true;
    if (!this.ws) this.open();
  }

  stop(): void {
    this.wanted = false;
    clearTimeout(this.retryTimer);
    this.ws?.close(1000, 'bye');
    this.ws = undefined;
    this.connected.value = false;
    this.lostAt.value = undefined;
    this.refused.value = undefined;
    this.last.clear();
    for (const k of Object.keys(this.channels)) delete this.channels[k];
  }

  /** Registers a handler; returns the unsubscribe function. The last value is replayed at once. */
  subscribe<K extends ChannelName>(channel: K, onData: (data: ChannelPayloads[K]) => void): () => void {
    const handler = onData as Handler;
    let set = this.handlers.get(channel);
    if (!set) {
      set = new Set();
      this.handlers.set(channel, set);
      if (!(channel in this.channels)) this.channels[channel] = 'pending';
      this.send({ subscribe: [channel] });
    }
    set.add(handler);
    if (this.last.has(channel)) handler(this.last.get(channel));
    return () => {
      const s = this.handlers.get(channel);
      if (!s) return;
      s.delete(handler);
      if (s.size === 0) {
        this.handlers.delete(channel);
        this.last.delete(channel);
        if (this.channels[channel] === 'available') this.send({ unsubscribe: [channel] });
      }
    };
  }

  private send(msg: unknown): void {
    if (this.ws && this.ws.readyState === WebSocket.OPEN) this.ws.send(JSON.stringify(msg));
  }

  private open(): void {
    const proto = location.protocol === 'https:' ? 'wss:' : 'ws:';
    const ws = new WebSocket(`${proto}//${location.host}/api/ws`);
    this.ws = ws;
    ws.onopen = () => {
      this.connected.value = true;
      const names = [...this.handlers.keys()];
      // A refused socket opens and is closed at once: it counts as accepted (the loss cleared, the
      // back-off reset) only at lqosd's first answer, or at once when there is nothing to ask.
      if (names.length > 0) ws.send(JSON.stringify({ subscribe: names }));
      else this.accepted();
    };
    ws.onmessage = (ev) => {
      let msg: ServerMessage;
      try {
        msg = JSON.parse(String(ev.data)) as ServerMessage;
      } catch {
        return;
      }
      this.accepted();
      if (msg.channel === 'subscribed') {
        const ok = new Set(msg.data);
        for (const name of this.handlers.keys()) this.channels[name] = ok.has(name) ? 'available' : 'missing';
        return;
      }
      if (msg.channel === 'error' || msg.channel === 'unsubscribed') return;
      this.channels[msg.channel] = 'available';
      this.last.set(msg.channel, msg.data);
      for (const h of this.handlers.get(msg.channel) ?? []) {
        try {
          h(msg.data);
        } catch (err) {
          console.error(`live channel ${msg.channel} handler failed`, err);
        }
      }
    };
    ws.onclose = (ev) => {
      if (this.ws === ws) this.ws = undefined;
      this.connected.value = false;
      if (ev.code === CLOSE_SESSION_ENDED) {
        this.wanted = false;
        this.onSessionEnded?.();
        return;
      }
      if (!this.wanted) return;
      if (CLOSE_REFUSED.has(ev.code)) this.refused.value = ev.reason || `lqosd refused the live connection (code ${ev.code})`;
      if (this.lostAt.value === undefined) this.lostAt.value = Date.now();
      this.retryTimer = setTimeout(() => void this.retry(), this.retryMs);
      this.retryMs = Math.min(RECONNECT_MAX_MS, this.retryMs * 2);
    };
  }

  private accepted(): void {
    this.lostAt.value = undefined;
    this.refused.value = undefined;
    this.retryMs = RECONNECT_MIN_MS;
  }

  /**
   * Before reconnecting, asks whether the session still exists: a refused websocket upgrade (401)
   * only shows as a closed socket, so without this an ended session would retry forever. While the
   * users file is unusable (`authError` outside first run) lqosd cannot tell and ends no session (it
   * answers 503 and keeps open sockets open): that is no logout, so it keeps retrying.
   */
  private async retry(): Promise<void> {
    if (!this.wanted || this.ws) return;
    const status = await fetch('/api/auth/status', { headers: { accept: 'application/json' } })
      .then((r) => (r.ok ? (r.json() as Promise<{ user?: unknown; firstRun?: boolean; authError?: string }>) : undefined))
      .catch(() => undefined);
    if (!this.wanted || this.ws) return;
    if (status && !status.user && status.authError !== undefined && !status.firstRun) {
      this.retryTimer = setTimeout(() => void this.retry(), this.retryMs);
      this.retryMs = Math.min(RECONNECT_MAX_MS, this.retryMs * 2);
      return;
    }
    if (status && !status.user) {
      this.wanted = false;
      this.lostAt.value = undefined;
      this.onSessionEnded?.();
      return;
    }
    this.open();
  }
}

export const live = new LiveSocket();
