// test-gate: shared (CPU only; see test/support/gate.ts)
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { cpuUsage, CpuSampler, parseProcStat } from '../../lib/telemetry/cpu.ts';

const fx = (n: number) => readFileSync(join(import.meta.dirname, 'fixtures', `proc-stat-${n}.txt`), 'utf8');

test('parses the cpu lines of /proc/stat (idle = idle + iowait)', () => {
  const s = parseProcStat(fx(1));
  assert.deepEqual(s.map((c) => c.name), ['cpu', 'cpu0', 'cpu1']);
  assert.equal(s[1]!.total, 5000 + 100 + 1500 + 40000 + 250 + 50 + 100);
  assert.equal(s[1]!.idle, 40250);
});

test('per-core utilisation from deltas', () => {
  const u = cpuUsage(parseProcStat(fx(1)), parseProcStat(fx(2)));
  // cpu0: +800 busy, +0 idle → 100 %; cpu1: +100 busy, +1000 idle → 9.1 %
  assert.deepEqual(u.perCore, [100, 9.1]);
  // aggregate: busy +900 (700 user + 200 system), idle +1000 → 47.4 %
  assert.equal(u.total, 47.4);
});

test('sampler: first sample has no baseline; a core that did not advance is 0', () => {
  const texts = [fx(1), fx(2), fx(2)];
  const s = new CpuSampler(() => texts.shift()!);
  assert.deepEqual(s.sample(), { total: 0, perCore: [] });
  assert.deepEqual(s.sample().perCore, [100, 9.1]);
  assert.deepEqual(s.sample().perCore, [0, 0]);
});

test('the real /proc/stat parses with one entry per online CPU', () => {
  const s = parseProcStat(readFileSync('/proc/stat', 'utf8'));
  assert.equal(s[0]!.name, 'cpu');
  assert.ok(s.length >= 2);
});
