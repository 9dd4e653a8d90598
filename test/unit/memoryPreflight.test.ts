// test-gate: shared (CPU only; see test/support/gate.ts)
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { estimatePlanMemory, memoryPreflight, readMemInfo } from '../../lib/apply/memoryPreflight.ts';
import { planShaping } from '../../lib/plan/planner.ts';
import { applyPlan, MemoryPreflightError } from '../../lib/apply/engine.ts';
import { pino } from 'pino';
import type { Circuit } from '../../lib/model.ts';
import { planConfig } from '../support/plan.ts';

const circuits: Circuit[] = Array.from({ length: 2000 }, (_, i) => ({
  id: `c${i}`, name: `c${i}`, parentNode: '', parentNodeId: '', anchorNodeId: '',
  downloadMinMbps: 1, uploadMinMbps: 1, downloadMaxMbps: 50, uploadMaxMbps: 10, comment: '',
  devices: [{ id: `d${i}`, name: '', mac: '', ipv4: [`10.0.${i >> 8}.${i & 255}/32`], ipv6: [], comment: '', line: i + 2 }],
  line: i + 2,
}));
const { plan } = planShaping({
  inputs: { network: [], circuits },
  config: planConfig({ interfaces: { download: 'a', upload: 'b' } }),
});

test('estimate counts leaves by kind after substitution', () => {
  const cake = estimatePlanMemory(plan);
  assert.equal(cake.leaves.cake, 4000);
  assert.ok(cake.bytes > 4000 * 512 * 1024);
  const pfifo = estimatePlanMemory(plan, { cake: { kind: 'pfifo' } });
  assert.equal(pfifo.leaves.pfifo, 4000);
  assert.ok(pfifo.bytes < cake.bytes / 50);
});

test('preflight refuses when the growth does not fit above the reserve, and says what to do', () => {
  const est = estimatePlanMemory(plan); // ~2 GiB of CAKE
  const small = memoryPreflight(est, undefined, { available: 3 * 1024 ** 3, total: 4 * 1024 ** 3 });
  assert.equal(small.ok, false);
  assert.match(small.message, /not enough memory.*4000 cake.*nothing was changed/);
  const big = memoryPreflight(est, undefined, { available: 20 * 1024 ** 3, total: 24 * 1024 ** 3 });
  assert.equal(big.ok, true);
  // Only growth counts: the same plan again needs nothing new.
  assert.equal(memoryPreflight(est, est, { available: 3 * 1024 ** 3, total: 4 * 1024 ** 3 }).ok, true);
});

test('the engine refuses a full build before running any tc command', async () => {
  await assert.rejects(
    applyPlan({ applied: undefined, next: plan, log: pino({ level: 'silent' }), wrap: ['false'], memInfo: { available: 1024 ** 3, total: 2 * 1024 ** 3 } }),
    MemoryPreflightError,
  );
});

test('meminfo parsing', () => {
  const m = readMemInfo('MemTotal:       24684084 kB\nMemFree: 1 kB\nMemAvailable:   20000000 kB\n');
  assert.equal(m.total, 24684084 * 1024);
  assert.equal(m.available, 20000000 * 1024);
});
