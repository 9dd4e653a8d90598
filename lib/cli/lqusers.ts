/**
 * `lqusers` (bin/lqusers.ts parses the arguments, then loads this): edits the web UI users file
 * through the same UserStore lqosd uses. lqosd re-reads the file when it changes, so a change counts
 * at the next request: a deleted user's sessions end, and so do sessions begun before a password
 * change (lib/web/access.ts). Returns the exit code (see bin/lqusers.ts).
 */
import { existsSync, rmSync } from 'node:fs';
import { dirname } from 'node:path';
import type { Role } from '../api/auth.ts';
import { ConfigError } from '../config/load.ts';
import { loadResolvedConfig } from '../config/resolve.ts';
import { setupTokenPath } from '../web/setupToken.ts';
import { ROLES, UserError, UserStore } from '../web/users.ts';
import { PromptAborted, readPassword } from '../util/passwordPrompt.ts';

export interface LqusersCommand {
  verb: string;
  config?: string;
  file?: string;
  username?: string;
  role?: string;
  passwordStdin?: boolean;
  json?: boolean;
}

const out = (s: string) => process.stdout.write(`${s}\n`);
const fail = (s: string, code: number) => {
  process.stderr.write(`lqusers: ${s}\n`);
  return code;
};

export async function runLqusers(c: LqusersCommand): Promise<number> {
  const file = usersFileOf(c);
  if (typeof file === 'number') return file;
  if (!existsSync(dirname(file))) {
    return fail(`the directory of the users file ${file} does not exist: check state_directory in lqos.conf (lqosd creates it at start)`, 2);
  }
  const role = c.role === undefined ? undefined : roleOf(c.role);
  if (role === null) return fail(`unknown role "${c.role}": use ${ROLES.join(' or ')}`, 2);
  const store = new UserStore(file);
  try {
    return await perform(store, c, role);
  } catch (err) {
    if (err instanceof UserError) return fail(err.message, 1);
    if (err instanceof PasswordInputError || err instanceof PromptAborted) return fail(err.message, 2);
    throw err;
  }
}

async function perform(store: UserStore, c: LqusersCommand, role: Role | undefined): Promise<number> {
  const name = c.username ?? '';
  switch (c.verb) {
    case 'list':
      return list(store, c.json);
    case 'add': {
      // The first user administers the UI (as on the first-run page): a read-only first user would
      // close the first-run page with no one able to manage the users or the configuration.
      const state = store.state();
      const first = state === 'empty' || (state === 'ready' && store.list().length === 0);
      if (first && role === 'read_only') return fail(`the first user must be an admin (no one could manage the web UI otherwise): add ${name} --role admin, then add read-only users`, 2);
      const user = await store.add(name, await newPassword(c), role ?? (first ? 'admin' : 'read_only'));
      out(`added ${user.username} (${user.role}${first && role === undefined ? ': the first user is an admin' : ''}) to ${store.path}`);
      // A user exists now: the first-run token has no use left (and a stale one must not be
      // reused should the users file ever be removed: lqosd then writes a new one).
      const token = setupTokenPath(store.path);
      if (existsSync(token)) {
        rmSync(token, { force: true });
        out(`removed the first-run setup token ${token}: the web UI's first-run page is closed now that a user exists`);
      }
      return 0;
    }
    case 'passwd':
      if (!store.find(name)) throw new UserError('no_such_user', `no user "${name}" in ${store.path} (lqusers list shows them)`);
      await store.setPassword(name, await newPassword(c));
      out(`password of ${name} changed; their web sessions end at their next request`);
      return 0;
    case 'role': {
      const user = await store.setRole(name, role!);
      out(`${user.username} is now ${user.role}`);
      return 0;
    }
    case 'del':
      await store.remove(name);
      out(`deleted ${name}; their web sessions end at their next request`);
      return 0;
    default:
      return fail(`unknown command "${c.verb}"`, 2);
  }
}

function list(store: UserStore, json?: boolean): number {
  if (store.state() === 'empty') {
    if (json) out('[]');
    else out(`no users yet (${store.path} does not exist): add the first admin with lqusers add NAME --role admin`);
    return 0;
  }
  const users = store.list();
  if (json) {
    out(JSON.stringify(users));
    return 0;
  }
  const width = Math.max(8, ...users.map((u) => u.username.length));
  out(`${'username'.padEnd(width)}  role`);
  for (const u of users) out(`${u.username.padEnd(width)}  ${u.role}`);
  return 0;
}

/** The users file: --file, or the one lqosd uses for the configuration's state directory. */
function usersFileOf(c: LqusersCommand): string | number {
  if (c.file) return c.file;
  try {
    // The one resolver: a relative state_directory is taken from the config file's directory (and a
    // system directory refused), as lqosd does.
    return loadResolvedConfig({ path: c.config }).state.users;
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    const details = err.details.map((d) => `\n  ${d}`).join('');
    return fail(`${err.message}${details}\n(or name the users file with --file PATH)`, 2);
  }
}

function roleOf(s: string): Role | null {
  const r = s.trim().toLowerCase().replace('-', '_');
  return (ROLES as readonly string[]).includes(r) ? (r as Role) : r === 'readonly' ? 'read_only' : null;
}

class PasswordInputError extends Error {}

/** The new password: the first line of stdin (--password-stdin) or typed twice on the terminal. */
async function newPassword(c: LqusersCommand): Promise<string> {
  if (c.passwordStdin) {
    const pw = await readPassword({ fromStdin: true });
    if (!pw) throw new PasswordInputError('--password-stdin: standard input gave no password (one line expected)');
    return pw;
  }
  if (!process.stdin.isTTY) throw new PasswordInputError('no terminal to ask for the password: pipe it in with --password-stdin');
  const first = await readPassword({ prompt: 'New password: ' });
  const again = await readPassword({ prompt: 'Again: ' });
  if (first !== again) throw new PasswordInputError('the two passwords differ; nothing was changed');
  return first;
}
