/**
 * Web UI users: `<state_directory>/lqusers.toml`, written atomically with mode 0600.
 *
 * ```toml
 * [[users]]
 * username = "admin"
 * password_hash = "$argon2id$v=19$..."
 * role = "admin"        # or "read_only"
 * ```
 *
 * The file is re-read when it changes on disk (mtime/size/inode), so edits by other tools are picked
 * up. Only a *missing* file means first run. A file that exists but is empty, truncated, cannot be
 * parsed or lists no user is "corrupt": logins and first-run are refused (never treated as "no
 * users", which would let anyone create an admin) until the operator restores or removes it.
 */
import { createHash, randomBytes } from 'node:crypto';
import { statSync, readFileSync } from 'node:fs';
import * as argon2 from 'argon2';
import { parse as parseToml, stringify as stringifyToml, TomlError } from 'smol-toml';
import { PASSWORD_MAX, PASSWORD_MIN, USERNAME_RE, type PublicUser, type Role } from '../api/auth.ts';
import { writeFileAtomic } from '../util/atomicFile.ts';
import type { Log } from '../util/log.ts';

export const ROLES: readonly Role[] = ['admin', 'read_only'];

export interface UserRecord {
  username: string;
  password_hash: string;
  role: Role;
}

export type UsersState = 'ready' | 'empty' | 'corrupt';

export class UserError extends Error {
  constructor(
    readonly code: 'user_exists' | 'no_such_user' | 'last_admin' | 'already_configured' | 'auth_unavailable' | 'invalid_user',
    message: string,
  ) {
    super(message);
  }
}

/** Upstream files say "Admin" / "ReadOnly"; anything that is not admin is read-only (least privilege). */
function parseRole(v: unknown): Role {
  return typeof v === 'string' && v.trim().toLowerCase() === 'admin' ? 'admin' : 'read_only';
}

const HASH_OPTIONS = { type: argon2.argon2id } as const;

type Loaded = { kind: 'missing' } | { kind: 'ok'; users: UserRecord[] } | { kind: 'corrupt'; reason: string };

export class UserStore {
  private cache: { fingerprint: string; loaded: Loaded } | undefined;
  private chain: Promise<unknown> = Promise.resolve();
  private readonly dummyHash: Promise<string>;
  private reported: string | undefined;

  constructor(
    readonly path: string,
    private readonly log?: Log,
  ) {
    // Verified against when the username does not exist, so failures take the same time either way.
    this.dummyHash = argon2.hash(randomBytes(24).toString('base64'), HASH_OPTIONS);
  }

  /** The file as it is on disk now (cached while it does not change). */
  private loadState(): Loaded {
    let fingerprint: string;
    try {
      const st = statSync(this.path);
      fingerprint = `${st.ino}:${st.size}:${st.mtimeMs}`;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return { kind: 'missing' };
      return this.corrupt(`cannot be read: ${(err as Error).message}`, 'stat-error');
    }
    if (this.cache?.fingerprint === fingerprint) return this.cache.loaded;
    let loaded: Loaded;
    try {
      loaded = { kind: 'ok', users: parseUsersFile(readFileSync(this.path, 'utf8')) };
    } catch (err) {
      loaded = this.corrupt(safeReason(err), fingerprint);
    }
    this.cache = { fingerprint, loaded };
    return loaded;
  }

  private corrupt(reason: string, fingerprint: string): Loaded {
    if (this.reported !== fingerprint) {
      this.reported = fingerprint;
      this.log?.error({ code: 'web-users-corrupt', file: this.path, reason }, this.corruptMessage(reason));
    }
    return { kind: 'corrupt', reason };
  }

  /** What is wrong with a corrupt file and how to fix it (for the log and the 503 replies). */
  corruptMessage(reason?: string): string {
    const why = reason ?? (this.loadState() as { reason?: string }).reason ?? 'unusable';
    return (
      `the web UI users file ${this.path} is unusable (${why}); logins are refused until it is fixed: ` +
      `restore it from its backup (${this.path}.bak*) or remove it to create the first admin again (first run)`
    );
  }

  /** Users from disk: [] when the file is missing, null when it exists but is unusable. */
  private load(): UserRecord[] | null {
    const l = this.loadState();
    return l.kind === 'ok' ? l.users : l.kind === 'missing' ? [] : null;
  }

  /** `empty` only when the file does not exist (first run). */
  state(): UsersState {
    const l = this.loadState();
    return l.kind === 'missing' ? 'empty' : l.kind === 'corrupt' ? 'corrupt' : 'ready';
  }

  private usersOrThrow(): UserRecord[] {
    const users = this.load();
    if (users === null) throw new UserError('auth_unavailable', this.corruptMessage());
    return users;
  }

  list(): PublicUser[] {
    return this.usersOrThrow().map((u) => ({ username: u.username, role: u.role }));
  }

  find(username: string): PublicUser | undefined {
    const u = this.load()?.find((x) => x.username === username);
    return u ? { username: u.username, role: u.role } : undefined;
  }

  /**
   * A fingerprint of the user's password hash: it changes when the password does (also when
   * `lqusers passwd` changes it), so sessions begun before the change can be ended.
   */
  credentialOf(username: string): string | undefined {
    const u = this.load()?.find((x) => x.username === username);
    return u && createHash('sha256').update(u.password_hash).digest('base64url').slice(0, 22);
  }

  /** The user when the password matches; null otherwise. Takes an Argon2 verification either way. */
  async verify(username: string, password: string): Promise<PublicUser | null> {
    const users = this.load() ?? [];
    const u = users.find((x) => x.username === username);
    const hash = u?.password_hash ?? (await this.dummyHash);
    let ok = false;
    try {
      ok = await argon2.verify(hash, password);
    } catch {
      // Not an Argon2 PHC string (e.g. an upstream legacy hash): verify the dummy to keep the timing.
      await argon2.verify(await this.dummyHash, password).catch(() => false);
      ok = false;
    }
    return u && ok ? { username: u.username, role: u.role } : null;
  }

  /** Runs a read-modify-write of the file, one at a time. */
  private mutate<T>(fn: (users: UserRecord[]) => Promise<{ users: UserRecord[]; result: T }>): Promise<T> {
    const run = this.chain.then(async () => {
      const current = this.usersOrThrow().map((u) => ({ ...u }));
      const { users, result } = await fn(current);
      this.save(users);
      return result;
    });
    this.chain = run.catch(() => undefined);
    return run;
  }

  private save(users: UserRecord[]): void {
    const text = stringifyToml({
      users: users.map((u) => ({ username: u.username, password_hash: u.password_hash, role: u.role })),
    });
    writeFileAtomic(this.path, `# lqos-ts web UI users (managed by lqosd; hashes are argon2id)\n${text}\n`, { mode: 0o600, backup: true });
    this.cache = undefined;
  }

  /** Creates the first admin; refused once any user exists. */
  createFirstAdmin(username: string, password: string): Promise<PublicUser> {
    return this.mutate(async (users) => {
      if (users.length > 0) throw new UserError('already_configured', 'an administrator already exists; log in instead');
      checkNewUser(username, password);
      const password_hash = await argon2.hash(password, HASH_OPTIONS);
      return { users: [{ username, password_hash, role: 'admin' }], result: { username, role: 'admin' } };
    });
  }

  add(username: string, password: string, role: Role): Promise<PublicUser> {
    return this.mutate(async (users) => {
      checkNewUser(username, password);
      if (users.some((u) => u.username === username)) throw new UserError('user_exists', `user "${username}" already exists`);
      const password_hash = await argon2.hash(password, HASH_OPTIONS);
      return { users: [...users, { username, password_hash, role }], result: { username, role } };
    });
  }

  setPassword(username: string, password: string): Promise<void> {
    return this.mutate(async (users) => {
      const u = users.find((x) => x.username === username);
      if (!u) throw new UserError('no_such_user', `no user "${username}"`);
      checkPassword(password);
      u.password_hash = await argon2.hash(password, HASH_OPTIONS);
      return { users, result: undefined };
    });
  }

  setRole(username: string, role: Role): Promise<PublicUser> {
    return this.mutate(async (users) => {
      const u = users.find((x) => x.username === username);
      if (!u) throw new UserError('no_such_user', `no user "${username}"`);
      if (u.role === 'admin' && role !== 'admin' && users.filter((x) => x.role === 'admin').length === 1) {
        throw new UserError('last_admin', `"${username}" is the last admin; add another admin first`);
      }
      u.role = role;
      return { users, result: { username, role } };
    });
  }

  remove(username: string): Promise<void> {
    return this.mutate(async (users) => {
      const u = users.find((x) => x.username === username);
      if (!u) throw new UserError('no_such_user', `no user "${username}"`);
      if (u.role === 'admin' && users.filter((x) => x.role === 'admin').length === 1) {
        throw new UserError('last_admin', `"${username}" is the last admin and cannot be deleted`);
      }
      return { users: users.filter((x) => x !== u), result: undefined };
    });
  }
}

/** Why the file is unusable, without quoting its content (a TOML error shows the line: part of a hash). */
function safeReason(err: unknown): string {
  if (err instanceof TomlError) return `not valid TOML at line ${err.line}: ${err.message.split('\n')[0].replace(/^Invalid TOML document: /, '')}`;
  return (err as Error).message;
}

function checkNewUser(username: string, password: string): void {
  if (!USERNAME_RE.test(username)) {
    throw new UserError('invalid_user', 'username must be 3-32 characters of letters, digits, "_", "." or "-"');
  }
  checkPassword(password);
}

function checkPassword(password: string): void {
  if (password.length < PASSWORD_MIN || password.length > PASSWORD_MAX) {
    throw new UserError('invalid_user', `password must be ${PASSWORD_MIN} to ${PASSWORD_MAX} characters`);
  }
}

/**
 * Parses lqusers.toml; throws on anything malformed, and on a file without users (empty, only
 * whitespace or comments, or cut short before the first user): lqosd never writes such a file.
 */
export function parseUsersFile(text: string): UserRecord[] {
  if (text.trim() === '') throw new Error('the file is empty');
  const doc = parseToml(text) as Record<string, unknown>;
  const list = doc.users ?? [];
  if (!Array.isArray(list)) throw new Error('users must be an array of tables');
  if (list.length === 0) throw new Error('the file lists no users');
  const seen = new Set<string>();
  return list.map((entry, i) => {
    const e = entry as Record<string, unknown>;
    if (typeof e !== 'object' || e === null || typeof e.username !== 'string' || typeof e.password_hash !== 'string' || e.username === '') {
      throw new Error(`users[${i}] needs username and password_hash strings`);
    }
    if (seen.has(e.username)) throw new Error(`users[${i}]: duplicate username`);
    seen.add(e.username);
    return { username: e.username, password_hash: e.password_hash, role: parseRole(e.role) };
  });
}
