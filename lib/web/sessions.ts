/**
 * Server-side sessions (random 32-byte ids in an httpOnly cookie; idle expiry) and the login
 * failure limiter.
 */
import { randomBytes } from 'node:crypto';

export const SESSION_COOKIE = 'lqos_session';
export const SESSION_IDLE_MS = 12 * 60 * 60 * 1000;

export interface Session {
  id: string;
  username: string;
  createdAt: number;
  lastSeen: number;
}

export class SessionStore {
  private readonly sessions = new Map<string, Session>();

  constructor(
    private readonly idleMs = SESSION_IDLE_MS,
    private readonly now: () => number = Date.now,
  ) {}

  create(username: string): Session {
    this.sweep();
    const t = this.now();
    const s: Session = { id: randomBytes(32).toString('base64url'), username, createdAt: t, lastSeen: t };
    this.sessions.set(s.id, s);
    return s;
  }

  /** The live session for this id (touching it), or undefined. */
  get(id: string | undefined, touch = true): Session | undefined {
    if (!id) return undefined;
    const s = this.sessions.get(id);
    if (!s) return undefined;
    const t = this.now();
    if (t - s.lastSeen > this.idleMs) {
      this.sessions.delete(id);
      return undefined;
    }
    if (touch) s.lastSeen = t;
    return s;
  }

  /** Still valid, without extending it (used by websocket ticks). */
  isValid(id: string): boolean {
    return this.get(id, false) !== undefined;
  }

  delete(id: string | undefined): boolean {
    return id ? this.sessions.delete(id) : false;
  }

  /** Ends every session of a user, except `keep`. */
  deleteUser(username: string, keep?: string): number {
    let n = 0;
    for (const [id, s] of this.sessions) {
      if (s.username === username && id !== keep) {
        this.sessions.delete(id);
        n++;
      }
    }
    return n;
  }

  sweep(): void {
    const t = this.now();
    for (const [id, s] of this.sessions) if (t - s.lastSeen > this.idleMs) this.sessions.delete(id);
  }

  get size(): number {
    return this.sessions.size;
  }
}

export const LOGIN_MAX_FAILURES = 5;
export const LOGIN_WINDOW_MS = 15 * 60 * 1000;
const MAX_BUCKETS = 50_000;

/**
 * Counts failed logins per source IP and per username (lower-cased) in a sliding window. An attempt is
 * counted as a failure when it starts (so parallel guesses cannot slip past the limit) and the count is
 * cleared when it succeeds.
 */
export class LoginLimiter {
  private readonly buckets = new Map<string, number[]>();

  constructor(
    private readonly maxFailures = LOGIN_MAX_FAILURES,
    private readonly windowMs = LOGIN_WINDOW_MS,
    private readonly now: () => number = Date.now,
  ) {}

  private keys(ip: string, username: string): string[] {
    const u = username.trim().toLowerCase().slice(0, 128) || '<empty>';
    return [`ip:${ip}`, `user:${u}`];
  }

  private recent(key: string): number[] {
    const cutoff = this.now() - this.windowMs;
    const list = (this.buckets.get(key) ?? []).filter((t) => t > cutoff);
    if (list.length === 0) this.buckets.delete(key);
    else this.buckets.set(key, list);
    return list;
  }

  /** Seconds until another attempt is allowed; 0 when allowed now. */
  retryAfter(ip: string, username: string): number {
    let wait = 0;
    for (const key of this.keys(ip, username)) {
      const list = this.recent(key);
      if (list.length >= this.maxFailures) {
        const freeAt = list[list.length - this.maxFailures] + this.windowMs;
        wait = Math.max(wait, Math.ceil((freeAt - this.now()) / 1000));
      }
    }
    return wait;
  }

  /** Records an attempt as a failure; call succeeded() when it turns out right. */
  begin(ip: string, username: string): void {
    const t = this.now();
    if (this.buckets.size > MAX_BUCKETS) this.prune();
    for (const key of this.keys(ip, username)) {
      const list = this.recent(key);
      list.push(t);
      this.buckets.set(key, list);
    }
  }

  succeeded(ip: string, username: string): void {
    for (const key of this.keys(ip, username)) this.buckets.delete(key);
  }

  private prune(): void {
    for (const key of [...this.buckets.keys()]) this.recent(key);
    // Still too many (an address sweep): forget the oldest buckets.
    while (this.buckets.size > MAX_BUCKETS) {
      const first = this.buckets.keys().next().value;
      if (first === undefined) break;
      this.buckets.delete(first);
    }
  }
}
