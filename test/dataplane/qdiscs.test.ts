/**
 * Qdisc capability probe (throwaway namespace, never real interfaces) and leaf fallback choice.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execa } from 'execa';
import { probeQdiscKinds, chooseLeafFallback, resetQdiscProbeCache } from '../../lib/kernel/qdiscs.ts';

test('probe finds the basic qdiscs, cleans up, and caches', async () => {
  resetQdiscProbeCache();
  const t0 = performance.now();
  const kinds = await probeQdiscKinds();
  const first = performance.now() - t0;
  console.log(`# available qdiscs: ${[...kinds].sort().join(', ')} (probe ${first.toFixed(0)} ms)`);
  for (const k of ['htb', 'tbf', 'pfifo', 'bfifo']) assert.ok(kinds.has(k), k);
  const t1 = performance.now();
  const again = await probeQdiscKinds();
  assert.ok(performance.now() - t1 < 5, 'second call is cached');
  assert.deepEqual([...again].sort(), [...kinds].sort());
  const nsAfter = (await execa('ip', ['netns', 'list'])).stdout;
  assert.doesNotMatch(nsAfter, /lqprobe-/, 'probe namespace removed');
});

test('leaf fallback order', () => {
  assert.deepEqual(chooseLeafFallback(new Set(['cake', 'fq_codel']), 'cake', ['diffserv4']), { kind: 'cake', args: ['diffserv4'], fallback: false, reason: 'cake is available' });
  const fq = chooseLeafFallback(new Set(['fq_codel', 'sfq']), 'cake');
  assert.equal(fq.kind, 'fq_codel');
  assert.ok(fq.fallback);
  assert.match(fq.reason, /cake is not available/);
  assert.equal(chooseLeafFallback(new Set(['fq_pie', 'pie', 'sfq']), 'fq_codel').kind, 'fq_pie');
  assert.equal(chooseLeafFallback(new Set(['codel', 'pie']), 'cake').kind, 'codel');
  assert.equal(chooseLeafFallback(new Set(['pie', 'sfq']), 'cake').kind, 'pie');
  assert.deepEqual(chooseLeafFallback(new Set(['sfq', 'pfifo']), 'cake').kind, 'sfq');
  const fifo = chooseLeafFallback(new Set(['pfifo', 'htb', 'tbf']), 'cake');
  assert.deepEqual([fifo.kind, fifo.args], ['pfifo', ['limit', '1000']]);
  assert.equal(chooseLeafFallback(new Set(['htb']), 'cake').kind, 'none');
});

test('this kernel: cake/fq_codel missing leads to a documented fallback', async () => {
  const kinds = await probeQdiscKinds();
  const choice = chooseLeafFallback(kinds, 'cake');
  console.log(`# leaf for a cake plan here: ${choice.kind} ${choice.args.join(' ')} - ${choice.reason}`);
  assert.ok(choice.kind === 'cake' || choice.fallback);
});
