import { test } from 'node:test';
import assert from 'node:assert/strict';
import { LoginLimiter, SESSION_IDLE_MS, SessionStore } from '../../lib/web/sessions.ts';

test('sessions expire after 12 h idle; use keeps them alive; deleteUser keeps the named one', () => {
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

test('login limiter: 5 failures in 15 min block; the window slides; success clears', () => {
  let now = 0;
  const lim = new LoginLimiter(5, 15 * 60_000, () => now);
  for (let i = 0; i < 5; i++) {
    assert.equal(lim.retryAfter('1.2.3.4', 'Admin'), 0);
    lim.begin('1.2.3.4', 'Admin');
    now += 60_000;
  }
  // 5 failures at t=0..4 min; now t=5 min: blocked until the first one leaves the window (t=15 min).
  assert.equal(lim.retryAfter('1.2.3.4', 'someone-else'), 600);
  assert.equal(lim.retryAfter('5.6.7.8', ' admin '), 600, 'per username, case-insensitive');
  assert.equal(lim.retryAfter('5.6.7.8', 'other'), 0);
  now = 15 * 60_000 + 1;
  assert.equal(lim.retryAfter('1.2.3.4', 'admin'), 0);
  lim.begin('1.2.3.4', 'admin');
  lim.succeeded('1.2.3.4', 'admin');
  assert.equal(lim.retryAfter('1.2.3.4', 'admin'), 0);
});
