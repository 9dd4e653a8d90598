// test-gate: shared (CPU only; see test/support/gate.ts)
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { circuitIdIndex, IndexBuilder, StringIndex } from '../../lib/util/keyIndex.ts';

/** A small deterministic generator (the same keys every run). */
function lcg(seed: number): () => number {
  let s = seed;
  return () => (s = (Math.imul(s, 1103515245) + 12345) >>> 0);
}

test('SortedIndex answers like a Map built with set (last wins) or set-if-absent (first wins), numbers and bigints', () => {
  const next = lcg(7);
  for (const wins of ['first', 'last'] as const) {
    const num = new IndexBuilder<number>(wins);
    const big = new IndexBuilder<bigint>(wins);
    const numMap = new Map<number, number>();
    const bigMap = new Map<bigint, number>();
    for (let i = 0; i < 5000; i++) {
      // Few distinct keys (duplicates), IPv4-sized numbers and 64-bit bigints.
      const k = (next() % 3000) * 1_431_655; // up to ~4.3e9
      const b = (BigInt(next()) << 32n) | BigInt(next() % 2000);
      num.add(k, i);
      big.add(b, i);
      if (wins === 'last' || !numMap.has(k)) numMap.set(k, i);
      if (wins === 'last' || !bigMap.has(b)) bigMap.set(b, i);
    }
    const n = num.build();
    const g = big.build();
    assert.equal(n.size, numMap.size);
    assert.equal(g.size, bigMap.size);
    for (const [k, v] of numMap) assert.equal(n.get(k), v, `${wins}: number key ${k}`);
    for (const [k, v] of bigMap) assert.equal(g.get(k), v, `${wins}: bigint key ${k}`);
    for (const k of [-1, 1, 2 ** 33, 0.5]) assert.equal(n.get(k), numMap.get(k), `absent key ${k}`);
    assert.equal(g.get(2n ** 64n - 1n), bigMap.get(2n ** 64n - 1n));
  }
  assert.equal(new IndexBuilder<number>('first').build().get(0), undefined, 'empty index');
});

test('StringIndex: the position of each key, the last of duplicates, undefined for others', () => {
  const keys = Array.from({ length: 3000 }, (_, i) => `C${String(i % 2500).padStart(6, '0')}`);
  const ix = new StringIndex(keys);
  const map = new Map<string, number>();
  keys.forEach((k, i) => map.set(k, i));
  assert.equal(ix.size, map.size);
  for (const [k, v] of map) assert.equal(ix.get(k), v, k);
  for (const k of ['', 'C', 'C002500', 'c000001', 'C0000010']) assert.equal(ix.get(k), undefined, k);
  assert.equal(new StringIndex([]).get('x'), undefined);
});

test('circuitIdIndex: made once for a frozen circuit list (shared by its holders), afresh for a list that may change', () => {
  const frozen = Object.freeze([{ id: 'a' }, { id: 'b' }]);
  const one = circuitIdIndex(frozen);
  assert.deepEqual(one.ids, ['a', 'b']);
  assert.equal(one.byId.get('b'), 1);
  assert.equal(circuitIdIndex(frozen), one, 'the same index for the same frozen list');
  const open = [{ id: 'a' }];
  assert.equal(circuitIdIndex(open).byId.get('c'), undefined);
  open.push({ id: 'c' });
  assert.equal(circuitIdIndex(open).byId.get('c'), 1, 'a changed list is indexed again');
});
