// test-gate: shared (CPU only; see test/support/gate.ts)
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { startWebServer } from '../../lib/web/server.ts';
import { capturingLogger } from '../support/log.ts';
import { Client } from '../support/http.ts';
import { ADMIN, firstRun, setupUsers, VIEWER } from '../support/users.ts';
import { withHarness } from './helpers.ts';

test('first run: everything but auth status and first-run answers 409; first-run creates an admin once', async () => {
  await withHarness(async (h) => {
    const c = new Client(h.base);
    const st = await c.get('/api/auth/status');
    assert.equal(st.status, 200);
    assert.deepEqual(st.json, { firstRun: true, setupTokenFile: h.setupTokenFile });

    for (const [m, p] of [
      ['GET', '/api/status'],
      ['GET', '/api/config'],
      ['POST', '/api/auth/login'],
      ['GET', '/api/users'],
      ['DELETE', '/api/urgent'],
    ] as const) {
      const r = await c.req(m, p, m === 'POST' ? { username: 'x', password: 'y' } : undefined);
      assert.equal(r.status, 409, `${m} ${p}`);
      assert.deepEqual(r.json, { error: 'first_run', message: 'create the first admin' });
    }

    // Validation of the first admin.
    assert.equal((await c.post('/api/auth/first-run', { username: 'ab', password: 'long-enough' })).status, 400);
    assert.equal((await c.post('/api/auth/first-run', { username: 'bad name', password: 'long-enough' })).status, 400);
    assert.equal((await c.post('/api/auth/first-run', { username: 'admin', password: 'short' })).status, 400);
    const extra = await c.post('/api/auth/first-run', { ...ADMIN, role: 'admin' });
    assert.equal(extra.status, 400);
    assert.equal(extra.json.error, 'bad_request');
    assert.match(extra.json.message, /additional properties/i);

    // The setup token is required (tested in depth in auth-hardening.test.ts).
    const noToken = await c.post('/api/auth/first-run', ADMIN);
    assert.equal(noToken.status, 403);
    assert.equal(noToken.json.error, 'setup_token');
    const r = await firstRun(h, ADMIN, c);
    assert.equal(r.status, 201);
    assert.deepEqual(r.json, { user: { username: 'admin', role: 'admin' } });
    const cookie = r.setCookie.find((x) => x.startsWith('lqos_session='));
    assert.ok(cookie);
    assert.match(cookie, /HttpOnly/i);
    assert.match(cookie, /SameSite=Strict/i);
    assert.match(cookie, /Path=\//);
    // 32 random bytes, base64url
    assert.equal(cookie.split(';')[0].split('=')[1].length, 43);

    // Logged in straight away.
    assert.deepEqual((await c.get('/api/auth/status')).json, { firstRun: false, user: { username: 'admin', role: 'admin' } });
    assert.equal((await c.get('/api/status')).status, 200);

    // The users file: argon2id hash, role, mode 0600.
    const text = readFileSync(h.usersFile, 'utf8');
    assert.match(text, /\[\[users\]\]/);
    assert.match(text, /password_hash = "\$argon2id\$/);
    assert.match(text, /role = "admin"/);
    assert.equal(statSync(h.usersFile).mode & 0o777, 0o600);

    // Refused once a user exists, from anyone.
    const again = await new Client(h.base).post('/api/auth/first-run', { username: 'intruder', password: 'intruder-pass', token: 'x' });
    assert.equal(again.status, 409);
    assert.equal(again.json.error, 'already_configured');
    assert.doesNotMatch(readFileSync(h.usersFile, 'utf8'), /intruder/);
  });
});

test('a first-run token left next to a users file is removed when the web server starts; a new one comes only once the users file is gone', async () => {
  await withHarness(async (h) => {
    assert.equal((await firstRun(h)).status, 201);
    assert.ok(!existsSync(h.setupTokenFile), 'the first-run page removes the token it used');
    // As an older lqusers left it: a user exists and the token is still there.
    const stale = 'A'.repeat(43);
    writeFileSync(h.setupTokenFile, `${stale}\n`, { mode: 0o600 });
    const { log, records } = capturingLogger();
    await h.server.close();
    // Port 0 again (another test file may have the freed port by now).
    const restart = () => startWebServer({ ...h.ctx, log }, { host: '127.0.0.1', port: 0, webRoot: join(h.dir, 'no-webui') });
    let restarted = await restart();
    try {
      assert.ok(!existsSync(h.setupTokenFile), `${h.setupTokenFile} kept at start although ${h.usersFile} has users`);
      assert.ok(records.some((r) => r.msg === `removed the first-run setup token ${h.setupTokenFile}: web UI users exist`), 'the removal is logged');
      assert.equal((await new Client(restarted.address).post('/api/auth/login', ADMIN)).status, 200, 'the users still log in');
      // The users file removed (the documented way back to the first-run page): a new token, never the old one.
      rmSync(h.usersFile);
      await restarted.close();
      restarted = await restart();
      const token = readFileSync(h.setupTokenFile, 'utf8').trim();
      assert.match(token, /^[A-Za-z0-9_-]{43}$/);
      assert.notEqual(token, stale);
    } finally {
      await restarted.close();
      // h.close() closes the first server again (already closed) and removes the directory.
    }
  });
});

test('login, status, logout; the session is dead after logout', async () => {
  await withHarness(async (h) => {
    assert.equal((await firstRun(h)).status, 201);
    const c = new Client(h.base);
    assert.equal((await c.get('/api/status')).status, 401);
    assert.deepEqual((await c.get('/api/auth/status')).json, { firstRun: false });

    const r = await c.post('/api/auth/login', ADMIN);
    assert.equal(r.status, 200);
    assert.deepEqual(r.json, { user: { username: 'admin', role: 'admin' } });
    const session = c.cookie;
    assert.ok(session);

    const st = await c.get('/api/status');
    assert.equal(st.status, 200);
    assert.equal(st.json.version, '0.1.0-test');
    assert.equal(typeof st.json.uptimeSeconds, 'number');
    assert.ok(st.json.uptimeSeconds >= 4);
    assert.equal(st.json.urgentActive, 0);
    assert.equal(st.json.scheduler.health, 'unknown');
    assert.equal(st.json.shapingStatus.lastApply.mode, 'full');

    const out = await c.post('/api/auth/logout');
    assert.equal(out.status, 200);
    assert.ok(out.setCookie.some((x) => /^lqos_session=;/.test(x)), 'cookie cleared');

    // Replaying the old cookie does not work: the session is gone server-side.
    const replay = new Client(h.base);
    replay.cookie = session;
    assert.equal((await replay.get('/api/status')).status, 401);
    assert.deepEqual((await replay.get('/api/auth/status')).json, { firstRun: false });
    // A made-up cookie neither.
    replay.cookie = 'lqos_session=' + 'A'.repeat(43);
    assert.equal((await replay.get('/api/status')).status, 401);
  });
});

test('wrong password and unknown user both give 401 invalid_credentials', async () => {
  await withHarness(async (h) => {
    assert.equal((await firstRun(h)).status, 201);
    const c = new Client(h.base);
    const wrong = await c.post('/api/auth/login', { username: 'admin', password: 'wrong-password' });
    assert.equal(wrong.status, 401);
    assert.deepEqual(wrong.json, { error: 'invalid_credentials', message: 'invalid username or password' });
    assert.deepEqual(wrong.setCookie, []);
    const nobody = await c.post('/api/auth/login', { username: 'nobody', password: 'wrong-password' });
    assert.equal(nobody.status, 401);
    assert.deepEqual(nobody.json, wrong.json);
    assert.equal((await c.post('/api/auth/login', { username: 'admin' })).status, 400);
  });
});

test('failed logins take about as long for unknown users as for known ones', async () => {
  await withHarness(async (h) => {
    assert.equal((await firstRun(h)).status, 201);
    const time = async (username: string) => {
      const t = process.hrtime.bigint();
      // Distinct usernames/IP buckets are not an issue: 2 attempts each stay under the limit.
      const r = await new Client(h.base).post('/api/auth/login', { username, password: 'wrong-password' });
      assert.equal(r.status, 401);
      return Number(process.hrtime.bigint() - t) / 1e6;
    };
    await time('warmup');
    const known = Math.min(await time('admin'), await time('admin'));
    const unknown = Math.min(await time('ghost-1'), await time('ghost-2'));
    // Both include an Argon2 verification (tens of ms); without the dummy hash unknown would be ~1 ms.
    assert.ok(unknown > known * 0.4, `unknown user ${unknown.toFixed(1)} ms vs known ${known.toFixed(1)} ms`);
  });
});

test('rate limit: after 5 failures the 6th attempt gets 429 with Retry-After, even with the right password', async () => {
  await withHarness(async (h) => {
    // The backoff starts at 1 s in lqosd; a minute here so a slow machine cannot outwait it.
    assert.equal((await firstRun(h)).status, 201);
    const c = new Client(h.base);
    for (let i = 0; i < 5; i++) {
      assert.equal((await c.post('/api/auth/login', { username: 'admin', password: `wrong-${i}-xxxx` })).status, 401);
    }
    const r = await c.post('/api/auth/login', ADMIN);
    assert.equal(r.status, 429);
    assert.equal(r.json.error, 'rate_limited');
    const retry = Number(r.headers.get('retry-after'));
    assert.ok(retry > 50 && retry <= 60, `Retry-After ${retry}`);
    assert.deepEqual(r.setCookie, []);
  }, { loginLimits: { backoffBaseMs: 60_000 } });
});

test('rate limit per source IP: the address budget over different usernames blocks the IP', async () => {
  // lqosd allows 30 failures per address per 15 min (test/web/sessions.test.ts); 5 here to keep it quick.
  await withHarness(async (h) => {
    assert.equal((await firstRun(h)).status, 201);
    const c = new Client(h.base);
    for (let i = 0; i < 5; i++) {
      assert.equal((await c.post('/api/auth/login', { username: `user${i}`, password: 'wrong-password' })).status, 401);
    }
    const r = await c.post('/api/auth/login', ADMIN);
    assert.equal(r.status, 429);
    assert.ok(Number(r.headers.get('retry-after')) > 0);
  }, { loginLimits: { addressMaxFailures: 5 } });
});

test('rate limit per (address, username), case-insensitive, parallel guesses included', async () => {
  await withHarness(async (h) => {
    assert.equal((await firstRun(h)).status, 201);
    // 8 guesses in parallel: at most 5 are verified, the rest are refused.
    const results = await Promise.all(
      Array.from({ length: 8 }, (_, i) => new Client(h.base).post('/api/auth/login', { username: 'ADMIN', password: `guess-${i}-xxxx` })),
    );
    const codes = results.map((r) => r.status).sort();
    assert.equal(codes.filter((s) => s === 401).length, 5, codes.join(','));
    assert.equal(codes.filter((s) => s === 429).length, 3, codes.join(','));
    assert.equal((await new Client(h.base).post('/api/auth/login', ADMIN)).status, 429);
  }, { loginLimits: { backoffBaseMs: 60_000 } });
});

test('users: list shows username and role only; last admin protected; password change ends other sessions', async () => {
  await withHarness(async (h) => {
    const { admin, viewer } = await setupUsers(h);
    const list = await admin.get('/api/users');
    assert.equal(list.status, 200);
    assert.deepEqual(list.json, {
      users: [
        { username: 'admin', role: 'admin' },
        { username: 'viewer', role: 'read_only' },
      ],
    });
    assert.doesNotMatch(list.text, /argon2|hash|password/i);

    assert.equal((await admin.post('/api/users', { ...VIEWER, role: 'read_only' })).status, 409);
    assert.equal((await admin.post('/api/users', { username: 'x1x', password: 'password-1', role: 'root' })).status, 400);

    const last = await admin.del('/api/users/admin');
    assert.equal(last.status, 409);
    assert.equal(last.json.error, 'last_admin');
    assert.equal((await admin.put('/api/users/admin/role', { role: 'read_only' })).json.error, 'last_admin');
    assert.equal((await admin.del('/api/users/nobody')).status, 404);

    // Password change: the viewer's session ends; the new password works, the old does not.
    const pw = await admin.put('/api/users/viewer/password', { password: 'new-viewer-pass' });
    assert.equal(pw.status, 200);
    assert.equal((await viewer.get('/api/status')).status, 401);
    assert.equal((await new Client(h.base).post('/api/auth/login', VIEWER)).status, 401);
    const v2 = new Client(h.base);
    assert.equal((await v2.post('/api/auth/login', { username: 'viewer', password: 'new-viewer-pass' })).status, 200);

    // Promote, then the first admin may be deleted; deleting a user ends their sessions.
    assert.deepEqual((await admin.put('/api/users/viewer/role', { role: 'admin' })).json, { user: { username: 'viewer', role: 'admin' } });
    assert.equal((await v2.get('/api/users')).status, 200, 'role change applies to the live session');
    assert.equal((await v2.del('/api/users/admin')).status, 200);
    assert.equal((await admin.get('/api/status')).status, 401);
    assert.deepEqual((await v2.get('/api/users')).json, { users: [{ username: 'viewer', role: 'admin' }] });
  });
});

test('a corrupt users file is never treated as a first run', async () => {
  await withHarness(async (h) => {
    mkdirSync(dirname(h.usersFile), { recursive: true });
    writeFileSync(h.usersFile, 'this is [not toml');
    const c = new Client(h.base);
    const st = await c.get('/api/auth/status');
    assert.equal(st.json.firstRun, false);
    assert.equal((await c.post('/api/auth/first-run', ADMIN)).status, 503);
    assert.equal((await c.post('/api/auth/login', ADMIN)).status, 503);
    assert.equal((await c.get('/api/status')).status, 503);
  });
});
