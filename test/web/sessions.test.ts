// test-gate: shared (CPU only; see test/support/gate.ts)
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { addressKey, backoffMs, LOGIN_LIMITS, LoginLimiter, SESSION_IDLE_MS, SESSION_MAX_AGE_MS, SessionStore, VerifyGate } from '../../lib/web/sessions.ts';

test('sessions expire after 12 h idle; use keeps them alive (up to 24 h); deleteUser keeps the named one', () => {
  let now = 1_000_000;
  const store = new SessionStore(SESSION_IDLE_MS, () => now);
  const a = store.create('alice');
  const b = store.create('alice');
  assert.equal(Buffer.from(a.id, 'base64url').length, 32);
  assert.notEqual(a.id, b.id);
  now += SESSION_IDLE_MS - 1000;
  assert.ok(store.get(a.id)); // touched
  now += SESSION_IDLE_MS - 1000;
  assert.ok(store.get(a.id));
  assert.equal(store.get(b.id), undefined, 'b idled out');
  const c = store.create('alice');
  assert.equal(store.deleteUser('alice', c.id), 1);
  assert.equal(store.get(a.id), undefined);
  assert.ok(store.get(c.id));
  assert.equal(store.isValid(c.id), true);
  now += SESSION_IDLE_MS + 1;
  assert.equal(store.isValid(c.id), false);
});

test('sessions end 24 h after login however active they are', () => {
  let now = 5_000_000;
  const store = new SessionStore(SESSION_IDLE_MS, () => now);
  assert.equal(SESSION_MAX_AGE_MS, 24 * 60 * 60 * 1000);
  const s = store.create('alice');
  // Used every hour: never idle, still alive until 24 h after creation.
  for (let h = 1; h < 24; h++) {
    now = 5_000_000 + h * 3_600_000;
    assert.ok(store.get(s.id), `alive after ${h} h`);
  }
  now = 5_000_000 + SESSION_MAX_AGE_MS;
  assert.ok(store.isValid(s.id), 'exactly 24 h: still valid');
  now += 1;
  assert.equal(store.isValid(s.id), false, 'past 24 h: over');
  assert.equal(store.get(s.id), undefined);
  assert.equal(store.size, 0, 'removed');
  // A shorter absolute lifetime is honoured too, and sweep() drops expired sessions.
  const short = new SessionStore(SESSION_IDLE_MS, () => now, 60_000);
  short.create('bob');
  now += 60_001;
  short.sweep();
  assert.equal(short.size, 0);
});

test('login limiter: per (address, username) with 5 free failures, then 1 s, 2 s, 4 s … capped at 15 min', () => {
  assert.deepEqual([4, 5, 6, 7, 8].map((n) => backoffMs(n)), [0, 1000, 2000, 4000, 8000]);
  assert.equal(backoffMs(14), 512_000);
  assert.equal(backoffMs(15), 15 * 60_000, '1024 s is past the 15 min cap');
  assert.equal(backoffMs(100), 15 * 60_000, 'capped');
  let now = 0;
  const lim = new LoginLimiter({}, () => now);
  const fail = (ip: string, user: string) => {
    assert.equal(lim.retryAfter(ip, user), 0, `${ip}/${user} allowed`);
    lim.begin(ip, user);
    lim.failed(ip, user);
  };
  for (let i = 0; i < 5; i++) fail('10.0.0.66', 'Admin');
  // The attacker's address waits; the real admin elsewhere does not; other users at the attacker's address do not.
  assert.equal(lim.retryAfter('10.0.0.66', ' admin '), 1, 'case-insensitive, trimmed');
  assert.equal(lim.retryAfter('10.0.0.1', 'admin'), 0);
  assert.equal(lim.retryAfter('10.0.0.66', 'viewer'), 0);
  // The backoff grows with every further failure, counted from the failure.
  const waits: number[] = [];
  for (let i = 0; i < 12; i++) {
    const w = lim.retryAfter('10.0.0.66', 'admin');
    waits.push(w);
    now += w * 1000;
    fail('10.0.0.66', 'admin');
  }
  assert.deepEqual(waits, [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 900, 900]);
  assert.equal(lim.retryAfter('10.0.0.66', 'admin'), 900);
  // IPv6: rotating addresses inside one /64 does not escape the (address, user) backoff.
  for (let i = 0; i < 5; i++) fail(`2001:db8:5:6::${i + 1}`, 'admin');
  assert.equal(lim.retryAfter('2001:db8:5:6::ffff', 'admin'), 1, 'another address of the same /64 waits too');
  assert.equal(lim.retryAfter('2001:db8:5:7::1', 'admin'), 0, 'another /64 does not');
  // Success clears the pair.
  now += 900_000;
  lim.begin('10.0.0.66', 'admin');
  lim.succeeded('10.0.0.66', 'admin');
  assert.equal(lim.failures('10.0.0.66', 'admin'), 0);
  assert.equal(lim.retryAfter('10.0.0.66', 'admin'), 0);
});

test('login limiter: failures are forgotten after the pair window', () => {
  let now = 0;
  const lim = new LoginLimiter({}, () => now);
  for (let i = 0; i < 5; i++) lim.begin('10.0.0.7', 'admin');
  assert.equal(lim.retryAfter('10.0.0.7', 'admin'), 1);
  now = LOGIN_LIMITS.pairWindowMs + 1;
  assert.equal(lim.failures('10.0.0.7', 'admin'), 0);
  assert.equal(lim.retryAfter('10.0.0.7', 'admin'), 0);
});

test('login limiter: 30 failures per address per 15 min across usernames; IPv6 counted per /64', () => {
  let now = 0;
  const lim = new LoginLimiter({}, () => now);
  assert.equal(LOGIN_LIMITS.addressMaxFailures, 30);
  for (let i = 0; i < 30; i++) {
    assert.equal(lim.retryAfter('192.0.2.9', `user${i}`), 0, `attempt ${i + 1}`);
    lim.begin('192.0.2.9', `user${i}`);
    now += 10_000;
  }
  // 30 failures at t = 0 … 290 s; now t = 300 s: free when the first leaves the 15 min window.
  assert.equal(lim.retryAfter('192.0.2.9', 'fresh-name'), 600);
  assert.equal(lim.retryAfter('::ffff:192.0.2.9', 'fresh-name'), 600, 'IPv4-mapped is the same address');
  assert.equal(lim.retryAfter('192.0.2.10', 'fresh-name'), 0, 'other addresses are not affected');
  now = 15 * 60_000 + 1;
  assert.equal(lim.retryAfter('192.0.2.9', 'fresh-name'), 0);

  assert.equal(addressKey('2001:db8:1:2:aaaa::1'), '2001:db8:1:2::/64');
  assert.equal(addressKey('2001:0db8:0001:0002:ffff:1:2:3'), '2001:db8:1:2::/64');
  assert.equal(addressKey('2001:db8::7'), '2001:db8:0:0::/64');
  assert.equal(addressKey('::1'), '0:0:0:0::/64');
  const v6 = new LoginLimiter({ addressMaxFailures: 3 }, () => now);
  for (let i = 1; i <= 3; i++) v6.begin(`2001:db8:1:2::${i}`, `u${i}`);
  assert.ok(v6.retryAfter('2001:db8:1:2::ffff', 'other') > 0, 'same /64');
  assert.equal(v6.retryAfter('2001:db8:1:3::1', 'other'), 0, 'another /64');
});

test('login limiter: 100 failures for one username per hour across addresses; an address that logged in as that user is not held back', () => {
  let now = 0;
  const lim = new LoginLimiter({}, () => now);
  assert.equal(LOGIN_LIMITS.accountMaxFailures, 100);
  // The admin logs in from the office once; then guesses come from 100 addresses (a botnet), 2 each.
  lim.begin('198.51.100.7', 'admin');
  lim.succeeded('198.51.100.7', 'admin');
  for (let i = 0; i < 100; i++) {
    const ip = `10.1.${i >> 8}.${i & 255}`;
    assert.deepEqual(lim.check(ip, i % 2 ? 'Admin ' : 'admin'), { seconds: 0, account: false }, `guess ${i + 1}: no address or pair budget is spent yet`);
    lim.begin(ip, i % 2 ? 'Admin ' : 'admin'); // case and blanks do not make another account
    lim.failed(ip, 'admin');
    now += 1000;
  }
  // 100 failures at t = 0 … 99 s; at t = 100 s a new address waits until the first leaves the hour.
  assert.deepEqual(lim.check('203.0.113.5', 'admin'), { seconds: 3500, account: true });
  assert.equal(lim.retryAfter('203.0.113.5', 'ADMIN'), 3500);
  assert.deepEqual(lim.check('198.51.100.7', 'admin'), { seconds: 0, account: false }, 'the office address logged in as admin before');
  assert.deepEqual(lim.check('203.0.113.5', 'viewer'), { seconds: 0, account: false }, 'other users are not affected');
  // A success frees its own attempt from the budget (as with the address budget), and trusts the address.
  lim.begin('198.51.100.7', 'admin');
  lim.succeeded('198.51.100.7', 'admin');
  assert.equal(lim.retryAfter('203.0.113.5', 'admin'), 3500);
  now = 60 * 60_000 + 1;
  assert.equal(lim.retryAfter('203.0.113.5', 'admin'), 0, 'the first failure left the window');
  // Trust lasts 30 days from the last login.
  now += 31 * 24 * 60 * 60_000;
  for (let i = 0; i < 100; i++) lim.begin(`10.2.${i >> 8}.${i & 255}`, 'admin');
  assert.ok(lim.retryAfter('198.51.100.7', 'admin') > 0, 'a login 31 days ago no longer exempts the address');
});

test('login limiter: the number of buckets stays capped under an address sweep', () => {
  let now = 0;
  const lim = new LoginLimiter({}, () => now);
  for (let i = 0; i < 30_000; i++) lim.begin(`10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`, 'admin');
  assert.ok(lim.size <= 50_000, `${lim.size} buckets`);
  // The most recent attacker's state is kept (the oldest buckets go first).
  lim.begin('10.0.117.47', 'admin');
  assert.equal(lim.failures('10.0.117.47', 'admin'), 2);
  // The username's budget still holds after the sweep (its list keeps only what a decision uses).
  assert.deepEqual(lim.check('203.0.113.9', 'admin'), { seconds: 3600, account: true });
  now = 60 * 60_000 + 1;
  assert.deepEqual(lim.check('203.0.113.9', 'admin'), { seconds: 0, account: false }, 'and ends an hour after the last guess');
});

test('verify gate: at most 2 verifications at once, 8 waiting, the rest refused without running', async () => {
  const gate = new VerifyGate();
  let running = 0;
  let peak = 0;
  let started = 0;
  const releases: (() => void)[] = [];
  const verify = () => {
    started++;
    running++;
    peak = Math.max(peak, running);
    return new Promise<boolean>((r) => releases.push(() => { running--; r(false); }));
  };
  const accepted = Array.from({ length: 14 }, () => gate.run(verify));
  assert.equal(accepted.filter((p) => p === undefined).length, 4, '2 running + 8 queued, 4 refused');
  assert.equal(started, 2);
  assert.deepEqual(gate.stats, { active: 2, queued: 8 });
  // Finish them one at a time: each finished one lets exactly one waiting one start.
  while (releases.length > 0) {
    releases.shift()!();
    await new Promise((r) => setImmediate(r));
  }
  await Promise.all(accepted.filter(Boolean));
  assert.equal(started, 10);
  assert.equal(peak, 2);
  assert.deepEqual(gate.stats, { active: 0, queued: 0 });
  // A failing verification frees its slot too.
  await assert.rejects(gate.run(() => Promise.reject(new Error('boom')))!, /boom/);
  assert.deepEqual(gate.stats, { active: 0, queued: 0 });
});

test('sessions saved to a file survive a restart: ids hashed, mode 0600, expired and deleted ones not restored, a bad file starts empty', async () => {
  const { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } = await import('node:fs');
  const { join } = await import('node:path');
  const { tmpdir } = await import('node:os');
  const dir = mkdtempSync(join(tmpdir(), 'lqos-sessions-'));
  const stores: SessionStore[] = [];
  const open = (opts: ConstructorParameters<typeof SessionStore>[3]) => {
    const s = new SessionStore(SESSION_IDLE_MS, () => now, SESSION_MAX_AGE_MS, opts);
    stores.push(s);
    return s;
  };
  let now = 10_000_000;
  try {
    const path = join(dir, 'web_sessions.json');
    const first = open({ path });
    const a = first.create('alice', 'cred-a');
    const b = first.create('bob');
    const gone = first.create('carol');
    first.delete(gone.id);
    first.flush();
    const text = readFileSync(path, 'utf8');
    assert.equal(statSync(path).mode & 0o777, 0o600);
    for (const id of [a.id, b.id, gone.id]) assert.ok(!text.includes(id), 'the file must not hold a session id (only its hash)');

    now += 1000;
    const second = open({ path });
    assert.equal(second.size, 2);
    const back = second.get(a.id);
    assert.equal(back?.username, 'alice');
    assert.equal(back?.credential, 'cred-a');
    assert.equal(back?.id, a.id, 'the id is known again once its cookie is seen');
    assert.equal(second.get(gone.id), undefined, 'a deleted session stays deleted');

    // bob idles out while lqosd is down: not restored.
    now += SESSION_IDLE_MS;
    second.get(a.id);
    second.flush();
    const third = open({ path });
    assert.ok(third.get(a.id), 'alice was used: kept');
    assert.equal(third.get(b.id), undefined, 'bob idled out: gone');

    writeFileSync(path, '{"version":1,"sessions":[{"key":');
    const warnings: string[] = [];
    const log = { warn: (_o: unknown, msg: string) => warnings.push(msg) } as never;
    const fourth = open({ path, log });
    assert.equal(fourth.size, 0);
    assert.match(warnings.join('\n'), /saved sessions file is unusable; everyone logs in again/);
  } finally {
    // Their save timers would otherwise write the file again after the directory is gone.
    for (const s of stores) s.flush();
    rmSync(dir, { recursive: true, force: true });
  }
});
