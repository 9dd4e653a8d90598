// test-gate: shared (CPU only; see test/support/gate.ts)
/**
 * `./lqusers` against a running web server (test/web's harness): users added, re-passworded,
 * re-roled and deleted from the shell are what the login API sees, at once and without a restart;
 * sessions of a deleted user, or begun before a password change, end.
 */
import { strict as assert } from 'node:assert';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { withHarness } from '../web/helpers.ts';
import { Client } from '../support/http.ts';
import { repoRoot } from '../support/paths.ts';

const LQUSERS = join(repoRoot, 'lqusers');

function lqusers(args: string[], stdin = '') {
  const r = spawnSync(LQUSERS, args, { input: stdin, encoding: 'utf8', timeout: 60_000 });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

async function login(base: string, username: string, password: string): Promise<{ status: number; client: Client }> {
  const client = new Client(base);
  const r = await client.post('/api/auth/login', { username, password });
  return { status: r.status, client };
}

test('lqusers: add, list, passwd, role, del round trip through the login API; sessions follow the file', async () => {
  await withHarness(async (h) => {
    const conf = ['--config', h.configPath];
    assert.ok(existsSync(h.setupTokenFile), 'no users yet: the server wrote the first-run token');
    const added = lqusers([...conf, 'add', 'alice', '--role', 'admin', '--password-stdin'], 'first-pass-1\n');
    assert.equal(added.code, 0, `add failed: ${added.err}`);
    assert.match(added.out, new RegExp(`added alice \\(admin\\) to ${h.usersFile}`));
    assert.equal(statSync(h.usersFile).mode & 0o777, 0o600, 'the users file must be mode 0600');
    // The first user exists: the first-run token goes with it (it lives only while no users file exists).
    assert.ok(!existsSync(h.setupTokenFile), `${h.setupTokenFile} left behind after the first user was added`);
    assert.match(added.out, /removed the first-run setup token .*first-run\.token: the web UI's first-run page is closed/);
    assert.deepEqual((await new Client(h.base).get('/api/auth/status')).json, { firstRun: false });

    const a = await login(h.base, 'alice', 'first-pass-1');
    assert.equal(a.status, 200, 'alice logs in with the password lqusers set');
    assert.equal((await a.client.get('/api/users')).status, 200, 'alice is an admin');

    const listed = lqusers([...conf, 'list', '--json']);
    assert.deepEqual(JSON.parse(listed.out), [{ username: 'alice', role: 'admin' }]);
    assert.match(lqusers([...conf, 'list']).out, /^alice +admin$/m);

    // passwd: the old session ends at its next request, the old password stops working.
    const pw = lqusers([...conf, 'passwd', 'alice', '--password-stdin'], 'second-pass-2\n');
    assert.equal(pw.code, 0, pw.err);
    assert.equal((await a.client.get('/api/users')).status, 401, 'a session begun before the password change must end');
    assert.equal((await login(h.base, 'alice', 'first-pass-1')).status, 401, 'the old password must be refused');
    const a2 = await login(h.base, 'alice', 'second-pass-2');
    assert.equal(a2.status, 200, 'the new password logs in');

    // role: the last admin cannot be demoted; with a second admin it can, and it counts at once.
    const refused = lqusers([...conf, 'role', 'alice', 'read_only']);
    assert.equal(refused.code, 1);
    assert.match(refused.err, /last admin/);
    assert.equal(lqusers([...conf, 'add', 'bob', '--role', 'admin', '--password-stdin'], 'bob-pass-123\n').code, 0);
    assert.equal(lqusers([...conf, 'role', 'alice', 'read-only']).code, 0);
    assert.equal((await a2.client.get('/api/users')).status, 403, 'alice is read-only now, in the same session');

    // del: alice's session ends, her login is refused; the file keeps bob.
    assert.equal(lqusers([...conf, 'del', 'alice']).code, 0);
    assert.equal((await a2.client.get('/api/auth/status')).json?.user, undefined, "a deleted user's session must end");
    assert.equal((await login(h.base, 'alice', 'second-pass-2')).status, 401);
    assert.deepEqual(JSON.parse(lqusers([...conf, 'list', '--json']).out), [{ username: 'bob', role: 'admin' }]);

    // Refusals name the problem.
    const nobody = lqusers([...conf, 'passwd', 'carol', '--password-stdin'], 'whatever-123\n');
    assert.equal(nobody.code, 1);
    assert.match(nobody.err, /no user "carol"/);
    const weak = lqusers([...conf, 'add', 'carol', '--password-stdin'], 'short\n');
    assert.equal(weak.code, 1);
    assert.match(weak.err, /password must be 8 to 1024 characters/);
    const noTty = lqusers([...conf, 'add', 'carol']);
    assert.equal(noTty.code, 2);
    assert.match(noTty.err, /--password-stdin/);
    const badRole = lqusers([...conf, 'add', 'carol', '--role', 'root', '--password-stdin'], 'carol-pass-1\n');
    assert.equal(badRole.code, 2);
    assert.match(badRole.err, /unknown role "root": use admin or read_only/);
  });
});

test('lqusers add: the first user is an admin (by default; --role read_only is refused, nothing written); later users default to read_only', async () => {
  await withHarness(async (h) => {
    const conf = ['--config', h.configPath];
    const ro = lqusers([...conf, 'add', 'viewer', '--role', 'read_only', '--password-stdin'], 'viewer-pass-1\n');
    assert.equal(ro.code, 2, ro.out);
    assert.match(ro.err, /the first user must be an admin .*add viewer --role admin/);
    assert.ok(!existsSync(h.usersFile), 'refused: no users file written');
    assert.ok(existsSync(h.setupTokenFile), 'refused: the first-run token stays');
    const first = lqusers([...conf, 'add', 'root-admin', '--password-stdin'], 'admin-pass-1\n');
    assert.equal(first.code, 0, first.err);
    assert.match(first.out, /added root-admin \(admin: the first user is an admin\)/);
    assert.equal(lqusers([...conf, 'add', 'noc', '--password-stdin'], 'noc-pass-123\n').code, 0);
    assert.deepEqual(JSON.parse(lqusers([...conf, 'list', '--json']).out), [
      { username: 'root-admin', role: 'admin' },
      { username: 'noc', role: 'read_only' },
    ]);
  });
});

test('lqusers passwd on a terminal: asks twice without echo; a mismatch changes nothing', async () => {
  await withHarness(async (h) => {
    assert.equal(lqusers(['--file', h.usersFile, 'add', 'dave', '--role', 'admin', '--password-stdin'], 'dave-pass-1\n').code, 0);
    const typed = (answers: string[]) =>
      new Promise<{ code: number | null; out: string }>((resolve) => {
        // script(1) gives the command a pseudo-terminal; what we write is typed on it.
        const p = spawn('script', ['-qec', `${LQUSERS} --file ${h.usersFile} passwd dave`, '/dev/null'], { stdio: ['pipe', 'pipe', 'pipe'] });
        let out = '';
        p.stdout.on('data', (d) => {
          out += d;
          const prompts = (out.match(/New password: |Again: /g) ?? []).length;
          if (prompts > 0 && answers.length > 0 && prompts > 2 - answers.length) p.stdin.write(`${answers.shift()}\r`);
        });
        p.on('close', (code) => resolve({ code, out }));
      });
    const mismatch = await typed(['tty-pass-11', 'tty-pass-22']);
    assert.notEqual(mismatch.code, 0);
    assert.match(mismatch.out, /the two passwords differ; nothing was changed/);
    assert.equal((await login(h.base, 'dave', 'dave-pass-1')).status, 200, 'a mismatch must leave the password as it was');

    const ok = await typed(['tty-pass-33', 'tty-pass-33']);
    assert.equal(ok.code, 0, ok.out);
    assert.doesNotMatch(ok.out, /tty-pass-33/, 'the typed password must not be echoed');
    assert.equal((await login(h.base, 'dave', 'tty-pass-33')).status, 200, 'the password typed on the terminal logs in');
  });
});

test('lqusers: a missing configuration is exit 2 naming the file; an unusable users file is refused, not overwritten', () => {
  const r = lqusers(['--config', '/nonexistent/lqos.conf', 'list']);
  assert.equal(r.code, 2);
  assert.match(r.err, /\/nonexistent\/lqos\.conf/);
  assert.match(r.err, /--file PATH/);

  const dir = spawnSync('mktemp', ['-d'], { encoding: 'utf8' }).stdout.trim();
  const file = join(dir, 'lqusers.toml');
  writeFileSync(file, 'users = [ { username = "x"', { mode: 0o600 });
  const corrupt = lqusers(['--file', file, 'add', 'eve', '--password-stdin'], 'eve-pass-123\n');
  assert.equal(corrupt.code, 1);
  assert.match(corrupt.err, /is unusable .* restore it from its backup/);
  spawnSync('rm', ['-rf', dir]);
});

test("lqusers: a relative state_directory is taken from the config file's directory, as lqosd takes it; one resolving to a system directory is refused", () => {
  const dir = spawnSync('mktemp', ['-d'], { encoding: 'utf8' }).stdout.trim();
  try {
    const conf = join(dir, 'lqos.conf');
    writeFileSync(conf, 'lqos_directory = "src"\nstate_directory = "state"\n');
    mkdirSync(join(dir, 'state'), { mode: 0o750 });
    // Run from elsewhere (/): the users file must still land next to the config, not in /state.
    const r = spawnSync(LQUSERS, ['--config', conf, 'add', 'ops', '--role', 'admin', '--password-stdin'], { input: 'ops-pass-1234\n', encoding: 'utf8', cwd: '/', timeout: 60_000 });
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, new RegExp(`to ${join(dir, 'state', 'lqusers.toml')}`));
    writeFileSync(conf, `state_directory = "${'../'.repeat(12)}etc"\n`);
    const bad = lqusers(['--config', conf, 'list']);
    assert.equal(bad.code, 2, bad.err);
    assert.match(bad.err, /state_directory.*resolves to \/etc/s);
  } finally {
    spawnSync('rm', ['-rf', dir]);
  }
});
