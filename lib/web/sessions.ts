/**
 * Server-side sessions (random 32-byte ids in an httpOnly cookie; idle expiry plus an absolute
 * lifetime), the login failure limiter and the cap on concurrent password verifications.
 *
 * Sessions survive an lqosd restart when the store is given a file (`<state_directory>/
 * web_sessions.json`, mode 0600): it holds a SHA-256 of each session id, never the id itself, so
 * the file cannot be replayed as cookies. Creations and deletions are saved within a second; the
 * last-use time at most once a minute (a session idles out after hours, so a minute lost in a
 * crash does not matter).
 */
import { createHash, randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { writeFileAtomic } from '../util/atomicFile.ts';
import type { Log } from '../util/log.ts';

export const SESSION_COOKIE = 'lqos_session';
export const SESSION_IDLE_MS = 12 * 60 * 60 * 1000;
/** A session ends this long after login however active it is (log in again). */
export const SESSION_MAX_AGE_MS = 24 * 60 * 60 * 1000;
const SAVE_SOON_MS = 1000;
const SAVE_TOUCH_MS = 60_000;
const MAX_SESSIONS = 10_000;

export interface Session {
  /** The cookie value; '' for a session loaded from the file until its cookie is seen again. */
  id: string;
  username: string;
  /** The user's credential fingerprint at login (UserStore.credentialOf): a password change ends the session. */
  credential?: string;
  createdAt: number;
  lastSeen: number;
}

export interface SessionPersistence {
  path: string;
  log?: Log;
}

interface SavedSession {
  key: string;
  username: string;
  credential?: string;
  createdAt: number;
  lastSeen: number;
}

const keyOf = (id: string) => createHash('sha256').update(id).digest('base64url');

export class SessionStore {
  /** By SHA-256 of the id. */
  private readonly sessions = new Map<string, Session>();
  private saveTimer: NodeJS.Timeout | undefined;
  private savedAt = 0;

  constructor(
    private readonly idleMs = SESSION_IDLE_MS,
    private readonly now: () => number = Date.now,
    private readonly maxAgeMs = SESSION_MAX_AGE_MS,
    private readonly persist?: SessionPersistence,
  ) {
    if (persist) this.load(persist);
  }

  private expired(s: Session, t: number): boolean {
    return t - s.lastSeen > this.idleMs || t - s.createdAt > this.maxAgeMs;
  }

  create(username: string, credential?: string): Session {
    this.sweep();
    const t = this.now();
    const s: Session = { id: randomBytes(32).toString('base64url'), username, credential, createdAt: t, lastSeen: t };
    this.sessions.set(keyOf(s.id), s);
    if (this.sessions.size > MAX_SESSIONS) this.sessions.delete(this.sessions.keys().next().value!);
    this.saveSoon(SAVE_SOON_MS);
    return s;
  }

  /** The live session for this id (touching it), or undefined. */
  get(id: string | undefined, touch = true): Session | undefined {
    if (!id) return undefined;
    const key = keyOf(id);
    const s = this.sessions.get(key);
    if (!s) return undefined;
    const t = this.now();
    if (this.expired(s, t)) {
      this.sessions.delete(key);
      this.saveSoon(SAVE_SOON_MS);
      return undefined;
    }
    s.id = id;
    if (touch) {
      s.lastSeen = t;
      this.saveSoon(SAVE_TOUCH_MS);
    }
    return s;
  }

  /** Still valid, without extending it (used by websocket ticks). */
  isValid(id: string): boolean {
    return this.get(id, false) !== undefined;
  }

  delete(id: string | undefined): boolean {
    const gone = id ? this.sessions.delete(keyOf(id)) : false;
    if (gone) this.saveSoon(SAVE_SOON_MS);
    return gone;
  }

  /** Ends every session of a user, except `keep`. */
  deleteUser(username: string, keep?: string): number {
    const kept = keep ? keyOf(keep) : undefined;
    let n = 0;
    for (const [key, s] of this.sessions) {
      if (s.username === username && key !== kept) {
        this.sessions.delete(key);
        n++;
      }
    }
    if (n > 0) this.saveSoon(SAVE_SOON_MS);
    return n;
  }

  sweep(): void {
    const t = this.now();
    for (const [key, s] of this.sessions) if (this.expired(s, t)) this.sessions.delete(key);
  }

  get size(): number {
    return this.sessions.size;
  }

  /** Writes pending changes now (lqosd's shutdown). */
  flush(): void {
    clearTimeout(this.saveTimer);
    this.saveTimer = undefined;
    if (this.persist) this.save(this.persist);
  }

  private saveSoon(withinMs: number): void {
    if (!this.persist) return;
    const due = Math.max(0, this.savedAt + withinMs - Date.now());
    if (this.saveTimer) {
      if (withinMs === SAVE_TOUCH_MS) return;
      clearTimeout(this.saveTimer);
    }
    this.saveTimer = setTimeout(() => this.flush(), Math.min(due, withinMs));
    this.saveTimer.unref();
  }

  private save(p: SessionPersistence): void {
    this.sweep();
    const sessions: SavedSession[] = [...this.sessions].map(([key, s]) => ({
      key, username: s.username, ...(s.credential ? { credential: s.credential } : {}), createdAt: s.createdAt, lastSeen: s.lastSeen,
    }));
    try {
      writeFileAtomic(p.path, `${JSON.stringify({ version: 1, sessions })}\n`, { mode: 0o600 });
      this.savedAt = Date.now();
    } catch (err) {
      p.log?.warn({ file: p.path, err: (err as Error).message }, 'web: could not save the sessions; they end at the next lqosd restart');
    }
  }

  private load(p: SessionPersistence): void {
    let text: string;
    try {
      text = readFileSync(p.path, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') p.log?.warn({ file: p.path, err: (err as Error).message }, 'web: could not read the saved sessions; everyone logs in again');
      return;
    }
    try {
      const doc = JSON.parse(text) as { version?: number; sessions?: unknown };
      if (doc.version !== 1 || !Array.isArray(doc.sessions)) throw new Error('not a version 1 sessions file');
      const t = this.now();
      for (const x of doc.sessions as Partial<SavedSession>[]) {
        if (typeof x?.key !== 'string' || typeof x.username !== 'string' || typeof x.createdAt !== 'number' || typeof x.lastSeen !== 'number') continue;
        const s: Session = { id: '', username: x.username, createdAt: x.createdAt, lastSeen: x.lastSeen, ...(typeof x.credential === 'string' ? { credential: x.credential } : {}) };
        if (!this.expired(s, t)) this.sessions.set(x.key, s);
      }
    } catch (err) {
      p.log?.warn({ file: p.path, err: (err as Error).message }, 'web: the saved sessions file is unusable; everyone logs in again');
    }
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
  /** Failures for one username across all addresses per account window (guesses spread over many addresses). */
  accountMaxFailures: number;
  accountWindowMs: number;
  /** How long an address that logged in as a user stays exempt from that user's account budget. */
  trustedMs: number;
}

export const LOGIN_LIMITS: LoginLimits = {
  pairFreeFailures: 5,
  pairWindowMs: 60 * 60 * 1000,
  backoffBaseMs: 1000,
  backoffMaxMs: 15 * 60 * 1000,
  addressMaxFailures: 30,
  addressWindowMs: 15 * 60 * 1000,
  accountMaxFailures: 100,
  accountWindowMs: 60 * 60 * 1000,
  trustedMs: 30 * 24 * 60 * 60 * 1000,
};
const MAX_BUCKETS = 50_000;
/** Remembered (address, user) pairs that logged in; the least recently used are forgotten beyond this. */
const MAX_TRUSTED = 10_000;

/** The pair's backoff doubles at most this many times (the wait is capped by `backoffMaxMs` long before). */
const MAX_DOUBLINGS = 40;

/** How long a pair with `failures` recent failures must wait after the last one (0: no wait). */
export function backoffMs(failures: number, limits: LoginLimits = LOGIN_LIMITS): number {
  if (failures < limits.pairFreeFailures) return 0;
  const doublings = Math.min(failures - limits.pairFreeFailures, MAX_DOUBLINGS);
  return Math.min(limits.backoffBaseMs * 2 ** doublings, limits.backoffMaxMs);
}

/** A username as the limiter counts it: case-insensitive, trimmed, at most 128 characters. */
export const userKey = (username: string): string => username.trim().toLowerCase().slice(0, 128) || '<empty>';

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
 * - per address across usernames: at most `addressMaxFailures` per `addressWindowMs`;
 * - per username across addresses: at most `accountMaxFailures` per `accountWindowMs`, so guesses
 *   spread over many addresses (a botnet) still run out. An address that logged in as that user
 *   within `trustedMs` is exempt from this budget, so such an attack does not lock the real user out
 *   where they usually log in (kept in memory: after an lqosd restart during an attack the user waits
 *   out the window like everyone else).
 * Usernames compare case-insensitively; the number of buckets is capped (oldest forgotten first).
 */
export class LoginLimiter {
  private readonly buckets = new Map<string, number[]>();
  /** (address, username) → when it last logged in; in least recently used order. */
  private readonly trusted = new Map<string, number>();
  readonly limits: LoginLimits;

  constructor(
    limits: Partial<LoginLimits> = {},
    private readonly now: () => number = Date.now,
  ) {
    this.limits = { ...LOGIN_LIMITS, ...limits };
  }

  /** Per (address, user); an IPv6 address counts by its /64, as in the address budget, so rotating inside it gains nothing. */
  private pairKey(ip: string, username: string): string {
    return `p:${addressKey(ip)}\u0000${userKey(username)}`;
  }

  private accountKey(username: string): string {
    return `u:${userKey(username)}`;
  }

  /** True when this address logged in as this user within `trustedMs`. */
  private isTrusted(ip: string, username: string): boolean {
    const at = this.trusted.get(this.pairKey(ip, username));
    return at !== undefined && at > this.now() - this.limits.trustedMs;
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
    return this.check(ip, username).seconds;
  }

  /**
   * Seconds until another attempt is allowed (0: now), and whether the username's own budget (guesses
   * from many addresses) is what holds it back.
   */
  check(ip: string, username: string): { seconds: number; account: boolean } {
    const t = this.now();
    const pair = this.recent(this.pairKey(ip, username), this.limits.pairWindowMs);
    let freeAt = pair.length > 0 ? pair[pair.length - 1] + backoffMs(pair.length, this.limits) : 0;
    const addr = this.recent(`a:${addressKey(ip)}`, this.limits.addressWindowMs);
    const max = this.limits.addressMaxFailures;
    if (addr.length >= max) freeAt = Math.max(freeAt, addr[addr.length - max] + this.limits.addressWindowMs);
    let account = false;
    const acct = this.recent(this.accountKey(username), this.limits.accountWindowMs);
    const amax = this.limits.accountMaxFailures;
    if (acct.length >= amax && !this.isTrusted(ip, username)) {
      const accountFreeAt = acct[acct.length - amax] + this.limits.accountWindowMs;
      if (accountFreeAt > t && accountFreeAt >= freeAt) account = true;
      freeAt = Math.max(freeAt, accountFreeAt);
    }
    return freeAt > t ? { seconds: Math.ceil((freeAt - t) / 1000), account } : { seconds: 0, account: false };
  }

  /** Records an attempt as a failure; call succeeded() when it turns out right. */
  begin(ip: string, username: string): void {
    const t = this.now();
    if (this.buckets.size + 2 > MAX_BUCKETS) this.prune();
    const { pairWindowMs, addressWindowMs, accountWindowMs, pairFreeFailures, addressMaxFailures, accountMaxFailures } = this.limits;
    // Each list keeps only the failures a decision can use: the pair's backoff stops growing after
    // MAX_DOUBLINGS, the budgets look at their last `max` entries — plus the attempts that may still be
    // in progress (succeeded() takes those back). So a sweep of guesses costs the same per attempt
    // however long it runs, and memory stays bounded.
    const inFlight = VERIFY_MAX_ACTIVE + VERIFY_MAX_QUEUED;
    this.record(this.pairKey(ip, username), pairWindowMs, pairFreeFailures + MAX_DOUBLINGS + 1 + inFlight, t);
    this.record(`a:${addressKey(ip)}`, addressWindowMs, addressMaxFailures + inFlight, t);
    this.record(this.accountKey(username), accountWindowMs, accountMaxFailures + inFlight, t);
  }

  /** Appends `t` to a bucket, keeping its last `keep` recent entries; deleted and set again, so the map's order is least recently failed first (what prune drops). */
  private record(key: string, windowMs: number, keep: number, t: number): void {
    const list = this.recent(key, windowMs);
    list.push(t);
    if (list.length > keep) list.splice(0, list.length - keep);
    this.buckets.delete(key);
    this.buckets.set(key, list);
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
    const pairKey = this.pairKey(ip, username);
    this.buckets.delete(pairKey);
    for (const key of [`a:${addressKey(ip)}`, this.accountKey(username)]) {
      const list = this.buckets.get(key);
      list?.pop();
      if (list?.length === 0) this.buckets.delete(key);
    }
    this.trusted.delete(pairKey);
    this.trusted.set(pairKey, this.now());
    while (this.trusted.size > MAX_TRUSTED) this.trusted.delete(this.trusted.keys().next().value!);
  }

  /** Drops expired buckets, then the least recently failed down to 90 % (so pruning stays rare). */
  private prune(): void {
    const longest = Math.max(this.limits.pairWindowMs, this.limits.addressWindowMs, this.limits.accountWindowMs);
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
