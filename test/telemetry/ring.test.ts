// test-gate: shared (CPU only; see test/support/gate.ts)
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MultiRing, Ring } from '../../lib/telemetry/ring.ts';

test('ring: fills, wraps, keeps the newest capacity samples oldest → newest', () => {
  const r = new Ring(3);
  assert.equal(r.size, 0);
  assert.equal(r.last(), undefined);
  assert.deepEqual(r.toArray(), []);
  r.push(1);
  r.push(2);
  assert.deepEqual(r.toArray(), [1, 2]);
  r.push(3);
  r.push(4);
  r.push(5);
  assert.equal(r.size, 3);
  assert.deepEqual(r.toArray(), [3, 4, 5]);
  assert.equal(r.at(0), 3);
  assert.equal(r.at(2), 5);
  assert.equal(r.at(3), undefined);
  assert.equal(r.last(), 5);
  r.clear();
  assert.equal(r.size, 0);
  assert.throws(() => new Ring(0));
});

test('ring: 300 samples at 1 Hz keep exactly the last 5 minutes', () => {
  const r = new Ring(300);
  for (let i = 0; i < 1000; i++) r.push(i);
  const a = r.toArray();
  assert.equal(a.length, 300);
  assert.equal(a[0], 700);
  assert.equal(a[299], 999);
});

test('multi ring: aligned series with timestamps', () => {
  const m = new MultiRing(2, ['down', 'up'] as const);
  m.push(1000, 10, 1);
  m.push(2000, 20, 2);
  m.push(3000, 30);
  assert.equal(m.size, 2);
  assert.deepEqual(m.toJSON(), { t: [2000, 3000], down: [20, 30], up: [2, 0] });
});
