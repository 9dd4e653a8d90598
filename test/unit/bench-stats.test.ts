// test-gate: shared (CPU only; see test/support/gate.ts)
/** bench/stats.ts: the medians, interleaving and target verdicts every benchmark reports. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { fmtSpread, interleaved, spread, Targets } from '../../bench/stats.ts';

test('spread gives median (mean of the middle two for an even count), min and max; an empty list throws', () => {
  assert.deepEqual(spread([5, 1, 9]), { median: 5, min: 1, max: 9, n: 3 });
  assert.deepEqual(spread([4, 1, 3, 10]), { median: 3.5, min: 1, max: 10, n: 4 });
  assert.throws(() => spread([]), /no measurements/);
  assert.equal(fmtSpread([86.9, 76.1, 131]), '86.9 (76.1–131) ms');
});

test('interleaved rotates the order every round and collects every measurement', async () => {
  const calls: string[] = [];
  const r = await interleaved(3, {
    a: () => (calls.push('a'), 1),
    b: () => (calls.push('b'), [2, 3]),
    c: async () => (calls.push('c'), 4),
  });
  assert.deepEqual(calls, ['a', 'b', 'c', 'b', 'c', 'a', 'c', 'a', 'b']);
  assert.deepEqual(r, { a: [1, 1, 1], b: [2, 3, 2, 3, 2, 3], c: [4, 4, 4] });
});

test('a missed target is printed as MISSED and sets exit code 1; met targets leave it alone', () => {
  const saved = process.exitCode;
  try {
    process.exitCode = undefined;
    const ok = new Targets();
    assert.equal(ok.atMost('x ≤ 10 ms', [9, 11, 8], 10), true);
    const lines: string[] = [];
    ok.report((s) => lines.push(s));
    assert.equal(process.exitCode, undefined);
    assert.match(lines.join('\n'), /\| x ≤ 10 ms +\| median 9\.0 \(8\.0–11\.0\) ms +\| met +\|/);

    const bad = new Targets();
    // Best-of would pass (min 9), the median does not.
    assert.equal(bad.atMost('y ≤ 10 ms', [9, 12, 13], 10), false);
    const out: string[] = [];
    bad.report((s) => out.push(s));
    assert.equal(process.exitCode, 1);
    assert.match(out.join('\n'), /\| y ≤ 10 ms +\| median 12\.0 \(9\.0–13\.0\) ms +\| MISSED \|/);
  } finally {
    process.exitCode = saved;
  }
});
