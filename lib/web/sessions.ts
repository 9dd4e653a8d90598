/**
 * Server-side sessions (random 32-byte ids in an httpOnly cookie; idle expiry plus an absolute
 * lifetime), the login failure limiter and the cap on concurrent password verifications.
 */
import { randomBytes } from 'node:crypto';

export const SESSION_COOKIE = 'lqos_session';
export const SESSION_IDLE_MS = 12 * 60 * 60 * 1000;
/** A session ends this long after login however active it is (log in again). */
export const SESSION_MAX_AGE_MS = 24 * 60 * 60 * 1000;

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
    private readonly maxAgeMs = SESSION_MAX_AGE_MS,
  ) {}

  private expired(s: Session, t: number): boolean {
    return t - s.lastSeen > this.idleMs || t - s.createdAt > this.maxAgeMs;
  }

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
    if (this.expired(s, t)) {
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
    for (const [id, s] of this.sessions) if (this.expired(s, t)) this.sessions.delete(id);
  }

  get size(): number {
    return this.sessions.size;
  }
}


export interface LoginLimits {
  /** Failures of one (address, username) pair before the backoff starts. */
  pairFreeFailures: number;
  /** How long a pair's failures are remembered. */
  pairWindowMs: number;
  /** The first backoff; it doubles with every further failure of the pair. */
  backoffBaseMs: number;
  backoffMaxMs: number;
  /** Failures of one address (an IPv6 /64) across all usernames per address window. */
  addressMaxFailures: number;
  addressWindowMs: number;
}

export const LOGIN_LIMITS: LoginLimits = {
  pairFreeFailures: 5,
  pairWindowMs: 60 * 60 * 1000,
  backoffBaseMs: 1000,
  backoffMaxMs: 15 * 60 * 1000,
  addressMaxFailures: 30,
  addressWindowMs: 15 * 60 * 1000,
};
const MAX_BUCKETS = 50_000;

/** How long a pair with `failures` recent failures must wait after the last one (0: no wait). */
export function backoffMs(failures: number, limits: LoginLimits = LOGIN_LIMITS): number {
  if (failures < limits.pairFreeFailures) return 0;
  const doublings = Math.min(failures - limits.pairFreeFailures, 40);
  return Math.min(limits.backoffBaseMs * 2 ** doublings, limits.backoffMaxMs);
}

/** The address a budget is kept for: IPv4 as is (also when IPv4-mapped), IPv6 by its /64. */
export function addressKey(ip: string): string {
  const v4 = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(ip);
  if (v4) return v4[1];
  if (!ip.includes(':')) return ip;
  const [left, right = ''] = ip.toLowerCase().split('::');
  const l = left ? left.split(':') : [];
  const r = ip.includes('::') && right ? right.split(':') : [];
  const groups = ip.includes('::') ? [...l, ...Array(Math.max(0, 8 - l.length - r.length)).fill('0'), ...r] : l;
  return `${groups.slice(0, 4).map((g) => g.replace(/^0+(?=.)/, '')).join(':')}::/64`;
}

/**
 * Failed logins, counted when an attempt starts (so parallel guesses cannot slip past), re-dated
 * when it fails and cleared for its (address, username) pair when it succeeds:
 * - per (address, username): `pairFreeFailures` free, then an exponential backoff after each
 *   failure (1 s, 2 s, 4 s … up to 15 min). Guesses from one address never lock the real user out
 *   at another address;
 * - per address across usernames: at most `addressMaxFailures` per `addressWindowMs`.
 * Usernames compare case-insensitively; the number of buckets is capped (oldest forgotten first).
 */
export class LoginLimiter {
  private readonly buckets = new Map<string, number[]>();
  readonly limits: LoginLimits;

  constructor(
    limits: Partial<LoginLimits> = {},
    private readonly now: () => number = Date.now,
  ) {
    this.limits = { ...LOGIN_LIMITS, ...limits };
  }

  /** Per (address, user); an IPv6 address counts by its /64, as in the address budget, so rotating inside it gains nothing. */
  private pairKey(ip: string, username: string): string {
    return `p:${addressKey(ip)}\u0000${username.trim().toLowerCase().slice(0, 128) || '<empty>'}`;
  }

  private recent(key: string, windowMs: number): number[] {
    const cutoff = this.now() - windowMs;
    const list = (this.buckets.get(key) ?? []).filter((t) => t > cutoff);
    if (list.length === 0) this.buckets.delete(key);
    else this.buckets.set(key, list);
    return list;
  }

  /** Recent failures of the pair (including attempts in progress). */
  failures(ip: string, username: string): number {
    return this.recent(this.pairKey(ip, username), this.limits.pairWindowMs).length;
  }

  /** Seconds until another attempt is allowed; 0 when allowed now. */
  retryAfter(ip: string, username: string): number {
    const t = this.now();
    const pair = this.recent(this.pairKey(ip, username), this.limits.pairWindowMs);
    let freeAt = pair.length > 0 ? pair[pair.length - 1] + backoffMs(pair.length, this.limits) : 0;
    const addr = this.recent(`a:${addressKey(ip)}`, this.limits.addressWindowMs);
    const max = this.limits.addressMaxFailures;
    if (addr.length >= max) freeAt = Math.max(freeAt, addr[addr.length - max] + this.limits.addressWindowMs);
    return freeAt > t ? Math.ceil((freeAt - t) / 1000) : 0;
  }

  /** Records an attempt as a failure; call succeeded() when it turns out right. */
  begin(ip: string, username: string): void {
    const t = this.now();
    if (this.buckets.size + 2 > MAX_BUCKETS) this.prune();
    // Deleted and set again: the map's order is least recently failed first (what prune drops).
    const pairKey = this.pairKey(ip, username);
    const pair = [...this.recent(pairKey, this.limits.pairWindowMs), t];
    this.buckets.delete(pairKey);
    this.buckets.set(pairKey, pair);
    const addrKey = `a:${addressKey(ip)}`;
    const addr = [...this.recent(addrKey, this.limits.addressWindowMs), t];
    this.buckets.delete(addrKey);
    this.buckets.set(addrKey, addr);
  }

  /** The attempt turned out wrong: the pair's backoff runs from now (not from when it started). */
  failed(ip: string, username: string): void {
    const list = this.buckets.get(this.pairKey(ip, username));
    if (!list || list.length === 0) return;
    list.pop();
    list.push(this.now());
  }

  /** The attempt was right: the pair starts afresh and the attempt leaves the address budget. */
  succeeded(ip: string, username: string): void {
    this.buckets.delete(this.pairKey(ip, username));
    const addrKey = `a:${addressKey(ip)}`;
    const list = this.buckets.get(addrKey);
    list?.pop();
    if (list?.length === 0) this.buckets.delete(addrKey);
  }

  /** Drops expired buckets, then the least recently failed down to 90 % (so pruning stays rare). */
  private prune(): void {
    const longest = Math.max(this.limits.pairWindowMs, this.limits.addressWindowMs);
    for (const key of [...this.buckets.keys()]) this.recent(key, longest);
    // Still too many (an address sweep): forget the oldest buckets.
    while (this.buckets.size > MAX_BUCKETS * 0.9) {
      const first = this.buckets.keys().next().value;
      if (first === undefined) break;
      this.buckets.delete(first);
    }
  }

  get size(): number {
    return this.buckets.size;
  }
}

export const VERIFY_MAX_ACTIVE = 2;
export const VERIFY_MAX_QUEUED = 8;

/**
 * Caps the password verifications (Argon2, 64 MiB each) running at once in lqosd: `maxActive` run,
 * `maxQueued` wait, anything beyond is refused at once without hashing.
 */
export class VerifyGate {
  private active = 0;
  private readonly waiting: (() => void)[] = [];

  constructor(
    readonly maxActive = VERIFY_MAX_ACTIVE,
    readonly maxQueued = VERIFY_MAX_QUEUED,
  ) {}

  /** Runs `fn` when a slot is free; undefined (fn not run) when every slot and queue place is taken. */
  run<T>(fn: () => Promise<T>): Promise<T> | undefined {
    if (this.active < this.maxActive) {
      this.active++;
      return this.runHeld(fn);
    }
    if (this.waiting.length >= this.maxQueued) return undefined;
    return new Promise<void>((r) => this.waiting.push(r)).then(() => this.runHeld(fn));
  }

  private async runHeld<T>(fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } finally {
      const next = this.waiting.shift();
      if (next) next(); // the slot passes to the next in line
      else this.active--;
    }
  }

  get stats(): { active: number; queued: number } {
    return { active: this.active, queued: this.waiting.length };
  }
}
