// test-gate: shared (CPU only; see test/support/gate.ts)
/**
 * The ring of recently finished flows (lib/flows/recent.ts) starts small and grows while full, up to
 * its capacity: entries stay in order across a growth that happens while the ring is wrapped, and a
 * full ring at capacity drops the oldest. Pure (no kernel).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { FlowStore, keyHash } from '../../lib/flows/flowStore.ts';
import { RecentFlows } from '../../lib/flows/recent.ts';

/** A one-flow store to retire from (the ring copies its slot; entries differ by endedAt). */
function source(): { st: FlowStore; s: number } {
  const st = new FlowStore(1);
  const k = new Uint32Array(10).fill(7);
  return { st, s: st.add(k, 0, keyHash(k)) };
}

test('the recent ring grows while wrapped, keeps the order, and drops the oldest at capacity', () => {
  const { st, s } = source();
  const ring = new RecentFlows(600);
  const push = (t: number) => ring.push(st, s, t, 'idle', { customer: t, internet: null }, 0);
  for (let t = 0; t < 256; t++) push(t);
  ring.prune(100); // entries 0–99 go: the oldest now sits at ring position 100
  for (let t = 256; t < 356; t++) push(t); // fills positions 0–99: full and wrapped
  push(356); // grows while wrapped
  const want = Array.from({ length: 257 }, (_, i) => 100 + i);
  assert.deepEqual(ring.views().map((f) => f.endedAt), want, 'oldest first, nothing lost across the growth');
  assert.deepEqual(ring.views().map((f) => f.rttMs.customer), want, 'per-entry fields moved with their entries');
  for (let t = 357; t < 1000; t++) push(t);
  assert.equal(ring.count, 600, 'at most `cap` entries');
  assert.deepEqual(ring.views(3).map((f) => f.endedAt), [997, 998, 999], 'the newest three');
  assert.equal(ring.views()[0]!.endedAt, 400, 'the oldest were dropped');
});
