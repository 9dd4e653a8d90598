// test-gate: shared (CPU only; see test/support/gate.ts)
/**
 * Web authentication hardening (issue 14): the first-run setup token, corrupt users files, login
 * throttling per (address, username) with a cap on concurrent Argon2 checks, and HTTPS through
 * `[web] tls_cert_file` / `tls_key_file` with `trust_proxy` for a reverse proxy on this host.
 */
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { parseConfigText } from '../../lib/config/load.ts';
import { buildWebApp } from '../../lib/web/server.ts';
import { tokenMatches } from '../../lib/util/tokens.ts';
import { newSetupToken, SetupToken } from '../../lib/web/setupToken.ts';
import { webConfig } from '../support/configs.ts';
import { fakeContext } from '../support/context.ts';
import { rawRequest as request, type RawReply as Reply, type RawRequestOptions as RequestOptions } from '../support/http.ts';
import { capturingLogger, quiet } from '../support/log.ts';
import { ADMIN, firstRun, readSetupToken, VIEWER } from '../support/users.ts';
import { waitFor } from '../support/wait.ts';
import { tempDir, testDir } from '../support/workspace.ts';
import { withHarness, type Harness, type HarnessOptions } from './helpers.ts';

const post = (h: { base: string }, path: string, body: unknown, opts: RequestOptions = {}) => request(h.base + path, { ...opts, body });
const sessionCookie = (r: Reply) => r.setCookie.find((c) => c.startsWith('lqos_session='));

function withLoggedHarness(fn: (h: Harness, records: ReturnType<typeof capturingLogger>['records']) => Promise<void>, opts: HarnessOptions = {}) {
  const { log, records } = capturingLogger();
  return withHarness((h) => fn(h, records), { ...opts, log });
}

// ---------- first run ----------

test('first run needs the setup token from <state_directory>/first-run.token (0600, logged); accepted once', async () => {
  await withLoggedHarness(async (h, records) => {
    const path = join(dirname(h.usersFile), 'first-run.token');
    assert.equal(h.setupTokenFile, path);
    assert.match(readFileSync(path, 'utf8'), /^[A-Za-z0-9_-]{43}\n$/, '32 random bytes, base64url');
    assert.equal(statSync(path).mode & 0o777, 0o600);
    // The journal says where the token is and what to do with it.
    const port = new URL(h.base).port;
    const hint = records.find((r) => r.level === 40 && r.code === 'web-first-run');
    assert.ok(hint, JSON.stringify(records.map((r) => r.msg)));
    assert.ok(hint.msg.includes(`open http://127.0.0.1:${port} `), hint.msg);
    assert.ok(hint.msg.includes(`sudo cat ${path}`), hint.msg);
    assert.equal(records.filter((r) => r.code === 'web-first-run').length, 1, 'logged once');

    const st = await request(`${h.base}/api/auth/status`);
    assert.deepEqual(st.json, { firstRun: true, setupTokenFile: path });

    // Without the token, or with a wrong one: 403 naming the file; nobody is created.
    const none = await post(h, '/api/auth/first-run', ADMIN);
    assert.equal(none.status, 403);
    assert.equal(none.json.error, 'setup_token');
    assert.match(none.json.message, /setup token is required/);
    assert.ok(none.json.message.includes(path), none.json.message);
    assert.equal(none.json.tokenFile, path);
    const wrong = await post(h, '/api/auth/first-run', { ...ADMIN, token: newSetupToken() });
    assert.equal(wrong.status, 403);
    assert.match(wrong.json.message, /^wrong setup token: .*sudo cat /);
    const truncated = await post(h, '/api/auth/first-run', { ...ADMIN, token: readSetupToken(h).slice(0, 42) });
    assert.equal(truncated.status, 403);
    assert.deepEqual(none.setCookie, []);
    assert.equal(existsSync(h.usersFile), false, 'no users file yet');
    assert.equal(records.filter((r) => /first-run refused/.test(r.msg)).length, 3, 'each refusal logged');

    // With the token: the admin exists, is logged in, and the token file is gone.
    const spent = readSetupToken(h);
    const ok = await firstRun(h);
    assert.equal(ok.status, 201, ok.text);
    assert.deepEqual(ok.json, { user: { username: 'admin', role: 'admin' } });
    assert.equal(existsSync(path), false, 'token file removed');
    assert.ok(existsSync(h.usersFile));
    assert.deepEqual((await request(`${h.base}/api/auth/status`)).json, { firstRun: false });
    // Exactly once: the same token again, or any other, is 409.
    assert.equal((await post(h, '/api/auth/first-run', { ...VIEWER, token: spent })).status, 409);
    const again = await post(h, '/api/auth/first-run', { username: 'intruder', password: 'intruder-pass' });
    assert.equal(again.status, 409);
    assert.equal(again.json.error, 'already_configured');
    assert.doesNotMatch(readFileSync(h.usersFile, 'utf8'), /intruder|viewer/);
  });
});

test('the spent token cannot be replayed: accepted once even when sent twice at the same time', async () => {
  await withHarness(async (h) => {
    const token = readSetupToken(h);
    const [a, b] = await Promise.all([
      post(h, '/api/auth/first-run', { ...ADMIN, token }),
      post(h, '/api/auth/first-run', { username: 'second', password: 'second-pass-1', token }),
    ]);
    assert.deepEqual([a.status, b.status].sort(), [201, 409]);
    assert.equal(existsSync(h.setupTokenFile), false);
    const text = readFileSync(h.usersFile, 'utf8');
    assert.equal(text.match(/\[\[users\]\]/g)?.length, 1, text);
  });
});

test('a setup token that cannot be written: the first-run page says why (no bare 500), first run refused with 503', async () => {
  await withHarness(async (h) => {
    // Something in the way of the token file (as an unwritable state directory would be).
    rmSync(h.setupTokenFile, { force: true });
    mkdirSync(h.setupTokenFile);
    const st = await request(`${h.base}/api/auth/status`);
    assert.equal(st.status, 200, st.text);
    assert.equal(st.json.firstRun, true);
    assert.match(st.json.authError, /^cannot write the setup token .*first-run\.token: .*make the state directory writable by lqosd/);
    const r = await post(h, '/api/auth/first-run', { ...ADMIN, token: 'x'.repeat(43) });
    assert.equal(r.status, 503, r.text);
    assert.equal(r.json.error, 'auth_unavailable');
    assert.equal(existsSync(h.usersFile), false, 'no admin created');
  });
});

test('setup token: kept across restarts, replaced when malformed, mode narrowed to 0600, constant-time check', (t) => {
  const dir = testDir(t, 'lqos-token-');
  const path = join(dir, 'state', 'first-run.token');
  const a = new SetupToken(path, quiet);
  const first = a.ensure();
  assert.equal(new SetupToken(path, quiet).ensure(), first, 'a restarted lqosd keeps the token the operator may have read');
  chmodSync(path, 0o644);
  assert.equal(a.ensure(), first);
  assert.equal(statSync(path).mode & 0o777, 0o600, 'narrowed');
  writeFileSync(path, 'not a token\n');
  const second = a.ensure();
  assert.notEqual(second, first);
  assert.match(readFileSync(path, 'utf8'), /^[A-Za-z0-9_-]{43}\n$/);
  assert.equal(a.check(second), true);
  assert.equal(a.check(`  ${second}\n`), true, 'surrounding whitespace (copy and paste) is ignored');
  assert.equal(a.check(first), false);
  assert.equal(a.check(undefined), false);
  assert.equal(a.check(''), false);
  a.consume();
  assert.equal(existsSync(path), false);
  assert.equal(tokenMatches('abc', 'abc'), true);
  assert.equal(tokenMatches('abc', 'abd'), false);
  assert.equal(tokenMatches('abc', 'abcd'), false);
  assert.equal(tokenMatches('', ''), false, 'an empty token never matches');
});

test('the token is created before the server answers (buildWebApp) and re-used by a second start', async (t) => {
  const dir = testDir(t, 'lqos-token-app-');
  const config = parseConfigText(webConfig(dir), join(dir, 'lqos.conf')).config;
  const ctx = fakeContext({ configPath: join(dir, 'lqos.conf'), config: () => config, appliedPlan: () => undefined });
  const one = await buildWebApp(ctx, { webRoot: join(dir, 'none') });
  const path = join(dir, 'state', 'first-run.token');
  const token = readFileSync(path, 'utf8').trim();
  await one.app.close();
  const two = await buildWebApp(ctx, { webRoot: join(dir, 'none') });
  try {
    assert.equal(readFileSync(path, 'utf8').trim(), token);
    const r = await two.app.inject({ method: 'POST', url: '/api/auth/first-run', payload: { ...ADMIN, token } });
    assert.equal(r.statusCode, 201, r.body);
  } finally {
    await two.app.close();
  }
  // Closing the app saved the admin's new session (due a second later) and left no save timer behind.
  const saved = JSON.parse(readFileSync(join(dir, 'state', 'web_sessions.json'), 'utf8'));
  assert.equal(saved.sessions.length, 1);
  assert.equal(saved.sessions[0].username, ADMIN.username);
});

test('wrong setup tokens count in the login limiter (per address)', async () => {
  await withLoggedHarness(
    async (h, records) => {
      for (let i = 0; i < 5; i++) {
        assert.equal((await post(h, '/api/auth/first-run', { ...ADMIN, token: `guess-${i}` }, { from: '127.0.0.2' })).status, 403);
      }
      // The guesser's address is now throttled, even with the right token...
      const blocked = await post(h, '/api/auth/first-run', { ...ADMIN, token: readSetupToken(h) }, { from: '127.0.0.2' });
      assert.equal(blocked.status, 429);
      assert.ok(Number(blocked.headers['retry-after']) > 50, String(blocked.headers['retry-after']));
      assert.equal(existsSync(h.usersFile), false);
      // ...the operator's is not.
      const ok = await post(h, '/api/auth/first-run', { ...ADMIN, token: readSetupToken(h) }, { from: '127.0.0.3' });
      assert.equal(ok.status, 201, ok.text);
      const refused = records.filter((r) => /first-run refused/.test(r.msg));
      assert.equal(refused.length, 5);
      assert.ok(refused.every((r) => r.ip === '127.0.0.2' && r.level === 40));
    },
    { loginLimits: { backoffBaseMs: 60_000 } },
  );
});

// ---------- the users file ----------

test('an empty, truncated or user-less lqusers.toml is corrupt: 503 with how to fix it, first run stays closed', async () => {
  await withLoggedHarness(async (h, records) => {
    const token = readSetupToken(h);
    // A real file to cut short.
    const scratch = tempDir('lqos-users-scratch-');
    await (async () => {
      const config = parseConfigText(webConfig(scratch), join(scratch, 'lqos.conf')).config;
      const app = await buildWebApp(fakeContext({ configPath: '/dev/null', config: () => config, appliedPlan: () => undefined }), { webRoot: join(scratch, 'none') });
      const tok = readFileSync(join(scratch, 'state', 'first-run.token'), 'utf8').trim();
      assert.equal((await app.app.inject({ method: 'POST', url: '/api/auth/first-run', payload: { ...ADMIN, token: tok } })).statusCode, 201);
      await app.app.close();
    })();
    const good = readFileSync(join(scratch, 'state', 'lqusers.toml'), 'utf8');
    rmSync(scratch, { recursive: true, force: true });

    mkdirSync(dirname(h.usersFile), { recursive: true });
    const cases: [string, string][] = [
      ['empty', ''],
      ['whitespace', '\n  \n'],
      ['truncated', good.slice(0, Math.floor(good.length / 2))],
      ['no users', '# lqos-ts web UI users\nusers = []\n'],
    ];
    for (const [what, text] of cases) {
      writeFileSync(h.usersFile, text);
      const st = await request(`${h.base}/api/auth/status`);
      assert.equal(st.json.firstRun, false, what);
      assert.match(st.json.authError, /unusable/, what);
      // The reason never quotes the file (a TOML error would show the line with the hash).
      assert.doesNotMatch(st.text, /argon2/, what);
      for (const [path, body] of [
        ['/api/auth/first-run', { ...ADMIN, token }],
        ['/api/auth/login', ADMIN],
      ] as const) {
        const r = await post(h, path, body);
        assert.equal(r.status, 503, `${what} ${path}`);
        assert.equal(r.json.error, 'auth_unavailable');
        assert.ok(r.json.message.includes(`${h.usersFile}.bak*`), r.json.message);
        assert.match(r.json.message, /restore it from its backup .* or remove it to create the first admin again/);
        assert.doesNotMatch(r.text, /argon2/);
      }
      assert.equal(readFileSync(h.usersFile, 'utf8'), text, `${what}: left for the operator`);
    }
    const logged = records.filter((r) => r.level === 50 && r.code === 'web-users-corrupt');
    assert.equal(logged.length, cases.length, 'each broken version logged once, as an error');
    assert.match(String(logged[2].reason), /^not valid TOML at line \d+: /);
    assert.doesNotMatch(JSON.stringify(logged), /argon2/);
    // Removing the file (as the message says) opens first run again, with the token.
    rmSync(h.usersFile);
    assert.equal((await request(`${h.base}/api/auth/status`)).json.firstRun, true);
    assert.equal((await post(h, '/api/auth/first-run', { ...ADMIN, token })).status, 201);
  });
});

// ---------- login throttling ----------

test('throttling is per (address, username): the real admin logs in from another address while the attacker is throttled', async () => {
  await withLoggedHarness(
    async (h, records) => {
      assert.equal((await firstRun(h)).status, 201);
      const attacker = '127.0.0.2';
      for (let i = 0; i < 5; i++) {
        const r = await post(h, '/api/auth/login', { username: 'admin', password: `guess-${i}-xxxx` }, { from: attacker });
        assert.equal(r.status, 401);
      }
      const blocked = await post(h, '/api/auth/login', ADMIN, { from: attacker });
      assert.equal(blocked.status, 429);
      assert.equal(blocked.json.error, 'rate_limited');
      assert.ok(Number(blocked.headers['retry-after']) > 50);
      // The real admin at another address is not locked out.
      const real = await post(h, '/api/auth/login', ADMIN, { from: '127.0.0.1' });
      assert.equal(real.status, 200, real.text);
      assert.ok(sessionCookie(real));
      // The attacker's address may still try other names (until its address budget runs out).
      assert.equal((await post(h, '/api/auth/login', { username: 'other', password: 'x-xxxxxxx' }, { from: attacker })).status, 401);

      // Every failure logged with the username and the address.
      const fails = records.filter((r) => r.msg === 'web: failed login');
      assert.equal(fails.length, 6);
      assert.deepEqual(
        fails.slice(0, 5).map((r) => [r.username, r.ip, r.failures]),
        [1, 2, 3, 4, 5].map((n) => ['admin', attacker, n]),
      );
      // Usernames are logged printable and length-capped.
      const nasty = `evil\u001b[31m\n${'x'.repeat(300)}`;
      assert.equal((await post(h, '/api/auth/login', { username: nasty.slice(0, 128), password: 'x-xxxxxxx' }, { from: '127.0.0.4' })).status, 401);
      const logged = records.filter((r) => r.msg === 'web: failed login').at(-1)!.username as string;
      assert.ok(logged.startsWith('evil?[31m?xxx'), logged);
      assert.ok(logged.length <= 65, `${logged.length} characters`);
      assert.doesNotMatch(logged, /[\u0000-\u001f\u007f]/);
    },
    { loginLimits: { backoffBaseMs: 60_000 } },
  );
});

test("over HTTP, Retry-After is the pair's backoff (1 s in lqosd; a 100 s base here)", async () => {
  // 5 free failures, then 1 s, 2 s, 4 s … as Retry-After (test/web/sessions.test.ts walks the whole
  // sequence with a fake clock); over HTTP with a 100 s base so no wait depends on this machine's speed.
  await withHarness(
    async (h) => {
      assert.equal((await firstRun(h)).status, 201);
      for (let i = 0; i < 5; i++) assert.equal((await post(h, '/api/auth/login', { username: 'admin', password: `guess-${i}-xxxx` })).status, 401);
      const r = await post(h, '/api/auth/login', ADMIN);
      assert.equal(r.status, 429);
      const first = Number(r.headers['retry-after']);
      assert.ok(first > 90 && first <= 100, `Retry-After ${first}`);
    },
    { loginLimits: { backoffBaseMs: 100_000 } },
  );
});

test('at most 2 password checks run at once; beyond the queue a login is refused at once (503, Retry-After) without hashing', async (t) => {
  const dir = tempDir('lqos-gate-');
  const config = parseConfigText(webConfig(dir), join(dir, 'lqos.conf')).config;
  const web = await buildWebApp(fakeContext({ configPath: join(dir, 'lqos.conf'), config: () => config, appliedPlan: () => undefined }), { webRoot: join(dir, 'none') });
  // Closing saves the sessions into dir/state: close first, then remove.
  t.after(async () => {
    await web.app.close();
    rmSync(dir, { recursive: true, force: true });
  });
  const token = readFileSync(join(dir, 'state', 'first-run.token'), 'utf8').trim();
  assert.equal((await web.app.inject({ method: 'POST', url: '/api/auth/first-run', payload: { ...ADMIN, token } })).statusCode, 201);

  // Count the verifications that run at the same time; hold each until released.
  const { users, gate, limiter } = web;
  const real = users.verify.bind(users);
  let running = 0;
  let peak = 0;
  let calls = 0;
  const held: (() => void)[] = [];
  users.verify = async (u: string, p: string) => {
    calls++;
    running++;
    peak = Math.max(peak, running);
    try {
      await new Promise<void>((r) => held.push(r));
      return await real(u, p);
    } finally {
      running--;
    }
  };
  const login = (i: number) => web.app.inject({ method: 'POST', url: '/api/auth/login', payload: { username: `user-${i}`, password: 'wrong-password' } });
  const done: { i: number; status: number; retry: unknown; error: string }[] = [];
  const all = Array.from({ length: 12 }, (_, i) =>
    login(i).then((r) => done.push({ i, status: r.statusCode, retry: r.headers['retry-after'], error: r.json().error })),
  );
  // 2 run, 8 wait, the last 2 are answered straight away.
  await waitFor(() => done.length === 2 && gate.stats.queued === 8, 15_000, 'two refusals and a full queue');
  assert.deepEqual(gate.stats, { active: 2, queued: 8 });
  assert.deepEqual(
    done.map((d) => [d.status, d.retry, d.error]),
    [
      [503, '1', 'busy'],
      [503, '1', 'busy'],
    ],
  );
  assert.equal(calls, 2, 'the refused ones were never verified');
  for (const d of done) assert.equal(limiter.failures('127.0.0.1', `user-${d.i}`), 0, 'a refusal is not a failed guess');
  // Release them as they come: never more than 2 at once.
  while (done.length < 12) {
    held.splice(0).forEach((r) => r());
    await new Promise((r) => setImmediate(r));
  }
  await Promise.all(all);
  assert.equal(calls, 10);
  assert.equal(peak, 2);
  assert.equal(done.filter((d) => d.status === 401).length, 10);

  // With real Argon2 and nothing held: 12 parallel logins still never verify more than 2 at once.
  users.verify = async (u: string, p: string) => {
    running++;
    peak = Math.max(peak, running);
    try {
      return await real(u, p);
    } finally {
      running--;
    }
  };
  peak = 0;
  const t0 = performance.now();
  const statuses = (await Promise.all(Array.from({ length: 12 }, (_, i) => login(100 + i)))).map((r) => r.statusCode);
  t.diagnostic(`12 parallel wrong logins: ${statuses.filter((s) => s === 401).length} verified, ${statuses.filter((s) => s === 503).length} refused busy, peak ${peak} at once, ${(performance.now() - t0).toFixed(0)} ms`);
  assert.ok(statuses.every((s) => s === 401 || s === 503), statuses.join(','));
  assert.ok(peak >= 1 && peak <= 2, `peak ${peak}`);
});

// ---------- TLS and the reverse proxy ----------

let tlsDir: string;
let cert: Buffer;
before(() => {
  tlsDir = tempDir('lqos-tls-');
  execFileSync('openssl', [
    'req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-subj', '/CN=localhost', '-days', '1',
    '-addext', 'subjectAltName=IP:127.0.0.1,DNS:localhost',
    '-keyout', join(tlsDir, 'key.pem'), '-out', join(tlsDir, 'cert.pem'),
  ], { stdio: 'ignore' });
  cert = readFileSync(join(tlsDir, 'cert.pem'));
  process.on('exit', () => rmSync(tlsDir, { recursive: true, force: true }));
});

const tlsConfig = () => `[web]\ntls_cert_file = "${join(tlsDir, 'cert.pem')}"\ntls_key_file = "${join(tlsDir, 'key.pem')}"\n`;

test('[web] tls_cert_file + tls_key_file: HTTPS, the session cookie is Secure, plain HTTP to the port fails', async (t) => {
  await withLoggedHarness(
    async (h, records) => {
      assert.match(h.base, /^https:\/\/127\.0\.0\.1:\d+$/);
      const st = await request(`${h.base}/api/auth/status`, { ca: cert });
      assert.equal(st.status, 200);
      assert.equal(st.json.firstRun, true);
      const hint = records.find((r) => r.code === 'web-first-run');
      assert.ok(hint?.msg.includes(`open ${h.base} `), hint?.msg);

      const created = await post(h, '/api/auth/first-run', { ...ADMIN, token: readSetupToken(h) }, { ca: cert });
      assert.equal(created.status, 201, created.text);
      assert.match(sessionCookie(created)!, /;\s*Secure/i);
      const login = await post(h, '/api/auth/login', ADMIN, { ca: cert });
      assert.equal(login.status, 200);
      assert.match(sessionCookie(login)!, /;\s*Secure/i);
      assert.match(sessionCookie(login)!, /HttpOnly/i);

      // The certificate is checked (no CA given: refused by the client).
      await assert.rejects(request(`${h.base}/api/auth/status`), /self[- ]signed|unable to verify/i);
      // Plain HTTP to the HTTPS port gets no answer from the API.
      const plain = await request(h.base.replace('https:', 'http:') + '/api/auth/status').then(
        (r) => `HTTP ${r.status}`,
        (e: Error) => `error ${e.message}`,
      );
      t.diagnostic(`plain HTTP to the HTTPS port: ${plain}`);
      assert.ok(!plain.startsWith('HTTP 200'), plain);
      assert.doesNotMatch(plain, /firstRun/);
    },
    { extraConfig: tlsConfig() },
  );
});

test('TLS misconfiguration: half a pair, an unreadable file or a non-PEM file is a clear error at start', async (t) => {
  const dir = testDir(t, 'lqos-tls-bad-');
  const start = async (extra: string) => {
    const config = parseConfigText(webConfig(dir, extra), join(dir, 'lqos.conf')).config;
    const web = await buildWebApp(fakeContext({ configPath: join(dir, 'lqos.conf'), config: () => config, appliedPlan: () => undefined }), { webRoot: join(dir, 'none') });
    await web.app.close();
  };
  const certFile = join(tlsDir, 'cert.pem');
  await assert.rejects(start(`[web]\ntls_cert_file = "${certFile}"\n`), (e: Error) => {
    assert.match(e.message, /^\[web\] tls_cert_file is set but tls_key_file is not: HTTPS needs both tls_cert_file .* and tls_key_file/);
    return true;
  });
  await assert.rejects(start(`[web]\ntls_key_file = "${certFile}"\n`), /tls_key_file is set but tls_cert_file is not/);
  const missing = join(dir, 'nope', 'key.pem');
  await assert.rejects(start(`[web]\ntls_cert_file = "${certFile}"\ntls_key_file = "${missing}"\n`), (e: Error) => {
    assert.ok(e.message.includes(`tls_key_file = "${missing}" cannot be read (ENOENT)`), e.message);
    return true;
  });
  const junk = join(dir, 'junk.pem');
  writeFileSync(junk, 'not a certificate\n');
  await assert.rejects(start(`[web]\ntls_cert_file = "${junk}"\ntls_key_file = "${join(tlsDir, 'key.pem')}"\n`), (e: Error) => {
    assert.ok(e.message.includes(`tls_cert_file = "${junk}"`), e.message);
    assert.match(e.message, /PEM certificate/);
    return true;
  });
});

test('guesses for one user from many addresses run out of its account budget; the address it logged in from still gets in; one journal line', async () => {
  // lqosd allows 100 failures per user per hour across addresses (test/web/sessions.test.ts); 4 here to keep it quick.
  const from = (ip: string) => ({ headers: { 'x-forwarded-for': ip } });
  await withLoggedHarness(
    async (h, records) => {
      assert.equal((await firstRun(h)).status, 201);
      assert.equal((await post(h, '/api/auth/login', ADMIN, from('198.51.100.7'))).status, 200, 'the office logs in');
      for (let i = 1; i <= 4; i++) {
        assert.equal((await post(h, '/api/auth/login', { username: 'admin', password: `guess-${i}-xxxx` }, from(`203.0.113.${i}`))).status, 401);
      }
      for (const ip of ['203.0.113.50', '203.0.113.51']) {
        const r = await post(h, '/api/auth/login', ADMIN, from(ip));
        assert.equal(r.status, 429, `${ip}: the right password from a new address waits too`);
        assert.equal(r.json.error, 'rate_limited');
        assert.match(String(r.json.message), /too many failed logins for this user from many addresses; try again in \d+ s, or from an address you logged in from before/);
        assert.ok(Number(r.headers['retry-after']) > 3000);
      }
      assert.equal((await post(h, '/api/auth/login', ADMIN, from('198.51.100.7'))).status, 200, 'the office is not locked out');
      const throttled = records.filter((r) => String(r.msg).startsWith('web: logins for this user are throttled'));
      assert.equal(throttled.length, 1, 'one journal line, not one per refusal');
      assert.equal(throttled[0].username, 'admin');
    },
    { extraConfig: '[web]\ntrust_proxy = true\n', loginLimits: { accountMaxFailures: 4 } },
  );
});

test('[web] trust_proxy: a proxy on this host saying https gets a Secure cookie and its client address counts', async () => {
  const viaProxy = { 'x-forwarded-proto': 'https', 'x-forwarded-for': '198.51.100.7' };
  await withLoggedHarness(
    async (h, records) => {
      assert.equal((await firstRun(h)).status, 201);
      const proxied = await post(h, '/api/auth/login', ADMIN, { headers: viaProxy });
      assert.equal(proxied.status, 200);
      assert.match(sessionCookie(proxied)!, /;\s*Secure/i);
      const direct = await post(h, '/api/auth/login', ADMIN);
      assert.doesNotMatch(sessionCookie(direct)!, /Secure/i, 'plain HTTP without the proxy header');
      assert.equal((await post(h, '/api/auth/login', { username: 'admin', password: 'wrong-pass-1' }, { headers: viaProxy })).status, 401);
      assert.equal(records.filter((r) => r.msg === 'web: failed login').at(-1)!.ip, '198.51.100.7');
    },
    { extraConfig: '[web]\ntrust_proxy = true\n' },
  );
  // Off (the default): the same headers are ignored.
  await withLoggedHarness(async (h, records) => {
    assert.equal((await firstRun(h)).status, 201);
    const r = await post(h, '/api/auth/login', ADMIN, { headers: viaProxy });
    assert.equal(r.status, 200);
    assert.doesNotMatch(sessionCookie(r)!, /Secure/i);
    assert.equal((await post(h, '/api/auth/login', { username: 'admin', password: 'wrong-pass-1' }, { headers: viaProxy })).status, 401);
    assert.equal(records.filter((r) => r.msg === 'web: failed login').at(-1)!.ip, '127.0.0.1');
  });
});
