/**
 * The first-run setup token: while no users file exists, `<state_directory>/first-run.token` holds a
 * random secret (32 bytes, base64url, mode 0600) that only someone with a shell on this host can
 * read. POST /api/auth/first-run must carry it, so whoever merely reaches the web port first cannot
 * make themselves admin. The file is removed once the first admin exists.
 */
import { randomBytes } from 'node:crypto';
import { chmodSync, readFileSync, rmSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { writeFileAtomic } from '../util/atomicFile.ts';
import type { Log } from '../util/log.ts';
import { tokenMatches } from '../util/tokens.ts';

export const SETUP_TOKEN_FILE = 'first-run.token';
const TOKEN_RE = /^[A-Za-z0-9_-]{43}$/;

/** Where the token lives: next to the users file (i.e. `<state_directory>/first-run.token`). */
export function setupTokenPath(usersFile: string): string {
  return join(dirname(usersFile), SETUP_TOKEN_FILE);
}

export function newSetupToken(): string {
  return randomBytes(32).toString('base64url');
}

export function isWellFormedToken(text: string): boolean {
  return TOKEN_RE.test(text);
}

/** The operator's instructions, in the log and in the 403 of a first-run without the right token. */
export function setupTokenHelp(path: string, url?: string): string {
  const where = url ? `open ${url} and enter` : 'enter';
  return `no web UI admin yet: ${where} the setup token from ${path} on the first-run page (read it on this host with: sudo cat ${path})`;
}

export class SetupToken {
  /** Where the UI is reachable (set once listening), for the log line. */
  url: string | undefined;
  private announced: string | undefined;

  constructor(
    readonly path: string,
    private readonly log: Log,
  ) {}

  private readValid(): string | undefined {
    try {
      const text = readFileSync(this.path, 'utf8').trim();
      if (!isWellFormedToken(text)) return undefined;
      if ((statSync(this.path).mode & 0o077) !== 0) chmodSync(this.path, 0o600);
      return text;
    } catch {
      return undefined;
    }
  }

  /**
   * The token, creating (or replacing a malformed) file when needed; says in the log where it is
   * (once per token; `quiet` leaves that to a later announce()).
   */
  ensure(opts: { quiet?: boolean } = {}): string {
    let token = this.readValid();
    if (!token) {
      token = newSetupToken();
      writeFileAtomic(this.path, `${token}\n`, { mode: 0o600 });
    }
    if (!opts.quiet && this.announced !== token) {
      this.announced = token;
      this.log.warn({ code: 'web-first-run', tokenFile: this.path }, setupTokenHelp(this.path, this.url));
    }
    return token;
  }

  /** At start: writes the token without logging (announce() follows); a failure is logged, not thrown. */
  prepare(): void {
    try {
      this.ensure({ quiet: true });
    } catch (err) {
      this.log.error(
        { code: 'web-first-run', tokenFile: this.path },
        `cannot write the first-run setup token ${this.path} (${(err as Error).message}); nobody can create the first web UI admin until its directory is writable`,
      );
    }
  }

  /** Logs the instructions again (e.g. once the listening address is known). */
  announce(): void {
    this.announced = undefined;
    try {
      this.ensure();
    } catch {
      // prepare() said why.
    }
  }

  /** True when `given` is the token on disk (created now if missing, which then cannot match). */
  check(given: string | undefined): boolean {
    const token = this.ensure();
    return tokenMatches(token, (given ?? '').trim());
  }

  /** Removes the file (after the first admin was created). */
  consume(): void {
    rmSync(this.path, { force: true });
    this.announced = undefined;
  }
}
