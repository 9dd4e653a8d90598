// test-gate: shared (CPU only; see test/support/gate.ts)
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { configsFor, ratioStats, roundOrder, type ConfigName, type LabBenchResult, type Round } from '../../bench/dataplaneLab.ts';
import { labSummaryRows, labTargets } from '../../bench/dataplaneLabReport.ts';
import type { DataplaneStats } from '../../dataplane/abi.ts';

type Mbps = Partial<Record<ConfigName, number>>;
const round = (endpoints: Round['endpoints'], down: Mbps, up: Mbps = down): Round =>
  ({ endpoints, order: Object.keys(down) as ConfigName[], load: 1, mbps: { download: down, upload: up } });
const stats = (seen: bigint, redirected: bigint) => ({ xdpSeen: seen, xdpRedirect: redirected } as DataplaneStats);

test('configsFor: baselines first, two configurations per mode, plain-stick only with the stick', () => {
  assert.deepEqual(configsFor(['linux-bridge']), ['plain', 'plain-fair', 'linux-bridge:unmapped', 'linux-bridge:circuit']);
  assert.deepEqual(configsFor(['xdp-bridge', 'stick']), ['plain', 'plain-fair', 'plain-stick', 'xdp-bridge:unmapped', 'xdp-bridge:circuit', 'stick:unmapped', 'stick:circuit']);
});

test('roundOrder rotates: every configuration runs first exactly once per cycle, each round holds all of them', () => {
  const configs = configsFor(['linux-bridge', 'xdp-bridge', 'stick']);
  assert.equal(configs.length, 9);
  const firsts = configs.map((_, r) => roundOrder(r, configs)[0]);
  assert.deepEqual([...firsts].sort(), [...configs].sort());
  for (let r = 0; r < 12; r++) assert.deepEqual([...roundOrder(r, configs)].sort(), [...configs].sort());
});

test('ratioStats takes the ratio within each round, then median and min–max; no common round is an error', () => {
  const rounds = [
    round('napi', { 'plain-fair': 100, 'linux-bridge:circuit': 80 }),
    round('napi', { 'plain-fair': 200, 'linux-bridge:circuit': 190 }),
    round('napi', { 'plain-fair': 50, 'linux-bridge:circuit': 45 }),
  ];
  const r = ratioStats(rounds, 'download', 'linux-bridge:circuit', 'plain-fair');
  assert.deepEqual(r.all, [0.8, 0.95, 0.9]);
  assert.equal(r.median, 0.9);
  assert.equal(r.min, 0.8);
  assert.equal(r.max, 0.95);
  assert.throws(() => ratioStats(rounds, 'download', 'stick:circuit', 'plain-fair'), /no round measured both stick:circuit and plain-fair/);
});

/** Two modes; xdp-bridge misses the 0.85 target upward (0.84 median), linux-bridge meets it; inline rounds are ignored. */
function lab(): LabBenchResult {
  const down: Mbps = { plain: 100, 'plain-fair': 100, 'linux-bridge:unmapped': 80, 'linux-bridge:circuit': 90, 'xdp-bridge:unmapped': 90, 'xdp-bridge:circuit': 95 };
  return {
    modes: ['linux-bridge', 'xdp-bridge'],
    rounds: [
      round('inline', { ...down, 'linux-bridge:circuit': 50, 'xdp-bridge:circuit': 50 }),
      round('napi', down, { ...down, 'xdp-bridge:circuit': 84 }),
      round('napi', down, { ...down, 'xdp-bridge:circuit': 83 }),
      round('napi', down, { ...down, 'xdp-bridge:circuit': 99 }),
    ],
    seconds: 5,
    perMode: {
      'linux-bridge': { circuitStats: stats(1000n, 1000n) } as never,
      'xdp-bridge': { circuitStats: stats(1000n, 900n) } as never,
    },
    fairOffloads: '', plainDefaultOffloads: '', buildMs: 0, libreqosMs: 0,
  };
}

test('labTargets: shaped/plain-fair ≥ 0.85 per mode and direction on the NAPI medians, redirect share, XDP vs Linux bridge', () => {
  const t = labTargets(lab());
  const by = (re: RegExp) => { const f = t.filter((x) => re.test(x.name)); assert.equal(f.length, 1, `one target matching ${re}, got ${f.length}`); return f[0]!; };
  assert.equal(t.length, 8);
  const lbDown = by(/^\[linux-bridge\] shaped circuit .* ↓$/);
  assert.deepEqual([lbDown.value, lbDown.spread, lbDown.target, lbDown.met], ['0.90', '0.90–0.90', '≥ 0.85', true]);
  const xUp = by(/^\[xdp-bridge\] shaped circuit .* ↑$/);
  assert.deepEqual([xUp.value, xUp.spread, xUp.met], ['0.84', '0.83–0.99', false]);
  assert.equal(by(/^\[linux-bridge\] circuit runs took the CPU redirect/).met, true);
  const redirect = by(/^\[xdp-bridge\] circuit runs took the CPU redirect/);
  assert.deepEqual([redirect.value, redirect.met], ['90.0 % of 1000', false]);
  assert.deepEqual([by(/xdp-bridge \/ linux-bridge mode ↓$/).value, by(/xdp-bridge \/ linux-bridge mode ↓$/).met], ['1.13', true]);
});

test('labTargets: a median just under the threshold prints three decimals, never the threshold itself', () => {
  const l = lab();
  for (const r of l.rounds) if (r.endpoints === 'napi') r.mbps.upload = { ...r.mbps.upload, 'xdp-bridge:circuit': 84.6 };
  const t = labTargets(l).find((x) => /^\[xdp-bridge\] shaped circuit .* ↑$/.test(x.name));
  assert.ok(t, 'xdp-bridge upload target present');
  assert.deepEqual([t.value, t.met], ['0.846', false]);
});

test('labTargets: no NAPI rounds is a missed target, never a silent pass', () => {
  const l = lab();
  l.rounds = l.rounds.filter((r) => r.endpoints === 'inline');
  const t = labTargets(l);
  assert.equal(t.length, 1);
  assert.equal(t[0]!.met, false);
});

test('summary rows print each target as met / **MISSED** with its per-round spread; inline rows carry no target', () => {
  const rows = labSummaryRows(lab());
  const target = rows.filter((r) => r[0]!.includes('shaped circuit / plain bridge (fair baseline)'));
  assert.equal(target.length, 4);
  assert.match(target.find((r) => r[0]!.startsWith('[xdp-bridge]') && r[0]!.endsWith('↑'))![3]!, /^\*\*MISSED\*\*; per-round 0\.83–0\.99$/);
  assert.match(target.find((r) => r[0]!.startsWith('[linux-bridge]') && r[0]!.endsWith('↓'))![3]!, /^met; per-round 0\.90–0\.90$/);
  const inline = rows.filter((r) => r[0]!.startsWith('[inline]'));
  assert.equal(inline.length, 2);
  for (const r of inline) assert.equal(r[2], '—');
});
