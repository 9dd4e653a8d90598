import { test } from 'node:test';
import assert from 'node:assert/strict';
import { CONFIGS, ratioStats, roundOrder, type ConfigName, type Round } from '../../bench/dataplaneLab.ts';
import { labSummaryRows } from '../../bench/dataplaneLabReport.ts';
import type { LabBenchResult } from '../../bench/dataplaneLab.ts';

const round = (endpoints: Round['endpoints'], down: Record<ConfigName, number>, up = down): Round =>
  ({ endpoints, order: [...CONFIGS], load: 1, mbps: { download: down, upload: up } });

test('roundOrder rotates: every configuration runs first exactly once in 4 rounds, each round holds all four', () => {
  const firsts = [0, 1, 2, 3].map((r) => roundOrder(r)[0]);
  assert.deepEqual([...firsts].sort(), [...CONFIGS].sort());
  for (let r = 0; r < 6; r++) assert.deepEqual([...roundOrder(r)].sort(), [...CONFIGS].sort());
});

test('ratioStats takes the ratio within each round, then median and min–max', () => {
  const rounds = [
    round('napi', { plain: 100, 'plain-fair': 100, unmapped: 90, circuit: 80 }),
    round('napi', { plain: 200, 'plain-fair': 200, unmapped: 190, circuit: 190 }),
    round('napi', { plain: 50, 'plain-fair': 50, unmapped: 45, circuit: 45 }),
  ];
  const r = ratioStats(rounds, 'download', 'circuit', 'plain-fair');
  assert.deepEqual(r.all, [0.8, 0.95, 0.9]);
  assert.equal(r.median, 0.9);
  assert.equal(r.min, 0.8);
  assert.equal(r.max, 0.95);
});

test('summary judges the 0.85 target per endpoint phase on the circuit / plain-fair median of both directions', () => {
  const lab = {
    rounds: [
      round('inline', { plain: 100, 'plain-fair': 100, unmapped: 80, circuit: 50 }),
      round('napi', { plain: 100, 'plain-fair': 100, unmapped: 95, circuit: 90 }, { plain: 100, 'plain-fair': 100, unmapped: 95, circuit: 84 }),
      round('napi', { plain: 100, 'plain-fair': 100, unmapped: 95, circuit: 92 }, { plain: 100, 'plain-fair': 100, unmapped: 95, circuit: 88 }),
    ],
    accuracy: { id: 'lab-50', ip: '10.99.1.12', planDown: 50, planUp: 15, down: 47.8, up: 14.3 },
  } as unknown as LabBenchResult;
  const rows = labSummaryRows(lab);
  const target = rows.filter((r) => r[0]!.includes('ratio circuit / plain-fair'));
  assert.equal(target.length, 2);
  assert.match(target[0]![0]!, /^\[inline\]/);
  assert.equal(target[0]![1], '0.50 / 0.50');
  assert.match(target[0]![3]!, /^\*\*missed\*\*/);
  assert.match(target[1]![0]!, /^\[napi\]/);
  assert.equal(target[1]![1], '0.91 / 0.86');
  assert.match(target[1]![3]!, /^met; per-round 0\.90–0\.92 \/ 0\.84–0\.88/);
});
