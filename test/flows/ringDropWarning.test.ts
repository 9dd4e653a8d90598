// test-gate: shared (CPU only; see test/support/gate.ts)
/** RingDropWarning (lib/flows/ringDrops.ts): when the "RTT samples lost" warning is due and what it sums. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { RingDropWarning } from '../../lib/flows/ringDrops.ts';

test('warns on the first drop, then at most once per gap with the drops summed in between', () => {
  const w = new RingDropWarning(60_000);
  assert.equal(w.observe(0, 0, 1_000), null, 'nothing lost, nothing said');
  assert.match(w.observe(7, 7, 2_000)!, /7 RTT record\(s\) dropped over 1 s \(7 since/);
  assert.equal(w.observe(3, 10, 30_000), null, 'within the gap');
  assert.equal(w.observe(0, 10, 50_000), null);
  assert.equal(w.observe(2, 12, 61_000), null, 'still within 60 s of the last warning');
  const next = w.observe(0, 12, 62_000)!;
  assert.match(next, /5 RTT record\(s\) dropped over 32 s \(12 since/, 'the 3 + 2 held back, counted from the first of them');
  assert.equal(w.observe(0, 12, 200_000), null, 'no new drops: silent');
});
