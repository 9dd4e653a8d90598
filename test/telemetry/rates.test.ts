// test-gate: shared (CPU only; see test/support/gate.ts)
/** Pure per-host rates and the circuit/node/total roll-up (LPM, tc_handle, counter resets). */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { computeHostRates, HostRateTracker } from '../../lib/telemetry/hostRates.ts';
import { buildPlanIndex, lookupPrefix, parseIPv4, parseIPv6, Rollup, topIndices } from '../../lib/telemetry/rollup.ts';
import { hc, testPlan } from './helpers.ts';

test('host rates: bytes/packets deltas per direction over the interval', () => {
  const prev = new Map([['10.0.0.1', hc(1000, 500, 10, 5)]]);
  const cur = new Map([['10.0.0.1', hc(1000 + 250_000, 500 + 12_500, 10 + 200, 5 + 100)]]);
  const r = computeHostRates(prev, 10_000, cur, 12_000).get('10.0.0.1')!;
  assert.equal(r.downBps, (250_000 * 8) / 2);
  assert.equal(r.upBps, (12_500 * 8) / 2);
  assert.equal(r.downPps, 100);
  assert.equal(r.upPps, 50);
});

test('host rates: a counter that went down is a new host (rate from 0); a new host counts from 0', () => {
  const prev = new Map([['10.0.0.1', hc(5_000_000, 5_000_000, 5000, 5000)]]);
  const cur = new Map([
    ['10.0.0.1', hc(125_000, 0, 100, 0)], // evicted and recreated: counts 125 kB in this second
    ['10.0.0.2', hc(62_500, 1250, 50, 10)], // appeared during the interval
  ]);
  const r = computeHostRates(prev, 0, cur, 1000);
  assert.equal(r.get('10.0.0.1')!.downBps, 1_000_000);
  assert.equal(r.get('10.0.0.1')!.upBps, 0);
  assert.equal(r.get('10.0.0.1')!.downPps, 100);
  assert.equal(r.get('10.0.0.2')!.downBps, 500_000);
  assert.equal(r.get('10.0.0.2')!.upBps, 10_000);
});

test('host tracker: first snapshot is the baseline, vanished hosts are dropped, records reused', () => {
  const t = new HostRateTracker();
  t.update(new Map([['a', hc(100, 100)], ['b', hc(100, 100)]]), 0);
  assert.equal(t.hosts.get('a')!.downBps, 0, 'no baseline yet');
  const recA = t.hosts.get('a');
  t.update(new Map([['a', hc(1100, 100)]]), 1000);
  assert.equal(t.hosts.size, 1, 'b was evicted from the counters');
  assert.equal(t.hosts.get('a'), recA, 'same record reused');
  assert.equal(t.hosts.get('a')!.downBps, 8000);
  t.update(new Map([['a', hc(1100, 100)], ['b', hc(10, 0)]]), 2000);
  assert.equal(t.hosts.get('a')!.downBps, 0);
  assert.equal(t.hosts.get('b')!.downBps, 80, 'b came back: counts from 0');
  // dt <= 0 (clock did not move): rates 0 rather than Infinity.
  t.update(new Map([['a', hc(2000, 100)]]), 2000);
  assert.equal(t.hosts.get('a')!.downBps, 0);
});

test('address parsing', () => {
  assert.equal(parseIPv4('10.1.2.3'), 0x0a010203);
  assert.equal(parseIPv4('255.255.255.255'), 0xffffffff);
  for (const bad of ['10.1.2', '10.1.2.256', '1.2.3.4.5', 'a.b.c.d', '', '1..2.3']) assert.equal(parseIPv4(bad), -1, bad);
  assert.equal(parseIPv6('::'), 0n);
  assert.equal(parseIPv6('::1'), 1n);
  assert.equal(parseIPv6('2001:db8::1'), (0x2001n << 112n) | (0xdb8n << 96n) | 1n);
  assert.equal(parseIPv6('::ffff:10.0.0.1'), (0xffffn << 32n) | 0x0a000001n);
  assert.equal(parseIPv6('1:2:3:4:5:6:7:8'), 0x00010002000300040005000600070008n);
  for (const bad of ['1::2::3', '12345::', '1:2:3', 'g::1']) assert.equal(parseIPv6(bad), -1n, bad);
});

test('LPM: a host inside a mapped /24 belongs to it; the longest prefix wins; v6 and v4-mapped', () => {
  const ix = buildPlanIndex(testPlan());
  const id = (ip: string) => {
    const c = lookupPrefix(ix, ip);
    return c < 0 ? null : ix.circuitIds[c];
  };
  assert.equal(id('10.0.0.1'), 'c1');
  assert.equal(id('10.0.0.2'), null, '/32 only');
  assert.equal(id('10.1.2.5'), 'c2', 'inside the /24');
  assert.equal(id('10.1.2.127'), 'c2');
  assert.equal(id('10.1.2.128'), 'c3', 'the /25 is more specific');
  assert.equal(id('10.1.2.255'), 'c3');
  assert.equal(id('10.9.200.7'), 'c4');
  assert.equal(id('2001:db8:1:ffff::42'), 'c2');
  assert.equal(id('2001:db8:2::1'), null);
  assert.equal(id('::ffff:10.0.0.1'), 'c1', 'IPv4-mapped IPv6 = IPv4');
  assert.equal(id('192.168.1.1'), null);
});

test('prefix keys (the dataplane counts per matched mapping): exact plan prefix, else the longest plan prefix covering it', () => {
  const ix = buildPlanIndex(testPlan());
  const id = (key: string) => {
    const c = lookupPrefix(ix, key);
    return c < 0 ? null : ix.circuitIds[c];
  };
  assert.equal(id('10.1.2.0/24'), 'c2');
  assert.equal(id('10.1.2.128/25'), 'c3', 'exact, not the covering /24');
  assert.equal(id('10.9.0.0/16'), 'c4');
  assert.equal(id('10.0.0.1/32'), 'c1');
  assert.equal(id('10.1.2.0/25'), 'c2', 'not in the plan: the /24 covers it');
  assert.equal(id('10.1.2.192/26'), 'c3', 'covered by the /25');
  assert.equal(id('10.1.2.0/23'), null, 'a /23 is not inside any plan prefix (the /24 is longer)');
  assert.equal(id('10.1.0.0/16'), null);
  assert.equal(id('2001:db8:1::/48'), 'c2');
  assert.equal(id('2001:db8:1:5::/64'), 'c2');
  assert.equal(id('2001:db8::/32'), null);
  assert.equal(id('::ffff:10.1.2.0/120'), 'c2', 'IPv4-mapped prefix = IPv4 /24');
  assert.equal(id('10.0.0.0/33'), null, 'bad length');
});

test('index: node parents from queue/minor, deepest first, handles per direction incl. stick offset', () => {
  const ix = buildPlanIndex(testPlan({ stickOffset: 2, download: 'trunk', upload: 'trunk' }));
  const at = (p: string) => ix.nodeByPath.get(p)!;
  assert.equal(ix.nodeParent[at('Tower/AP_A')], at('Tower'));
  assert.equal(ix.nodeParent[at('Tower')], -1);
  assert.deepEqual(ix.topLevel.map((n) => ix.nodePaths[n]), ['Tower', 'Site2']);
  assert.ok(ix.nodeDepth[ix.nodeOrder[0]!]! >= ix.nodeDepth[ix.nodeOrder[ix.nodeCount - 1]!]!);
  assert.equal(ix.circuitIds[ix.byDownHandle.get(0x10006)!], 'c1');
  assert.equal(ix.circuitIds[ix.byUpHandle.get(0x30006)!], 'c1', 'upload major = queue + stick offset');
  assert.equal(ix.circuitNode[ix.circuitById.get('c4')!], -1);
});

test('roll-up: hosts → circuits → nodes (ancestors) → totals; top-N with ceil and utilisation', () => {
  const plan = testPlan();
  const ix = buildPlanIndex(plan);
  const t = new HostRateTracker();
  const snap = (mult: number) =>
    new Map([
      ['10.0.0.1', hc(1_250_000 * mult, 125_000 * mult, 1000 * mult, 100 * mult)], // c1: 10 Mbps down, 1 up
      ['10.1.2.5', hc(2_500_000 * mult, 0, 2000 * mult, 0)], // c2: 20 down
      ['10.1.2.6', hc(1_250_000 * mult, 0, 1000 * mult, 0)], // c2: +10 down
      ['2001:db8:1::9', hc(625_000 * mult, 0, 500 * mult, 0)], // c2: +5 down (v6)
      ['10.1.2.200', hc(6_250_000 * mult, 250_000 * mult, 5000 * mult, 200 * mult)], // c3: 50 down, 2 up
      ['10.9.1.1', hc(125_000 * mult, 0, 100 * mult, 0)], // c4: 1 down
      ['172.16.0.1', hc(12_500 * mult, 12_500 * mult, 10 * mult, 10 * mult)], // mapped, but not by the plan (bus map_ip_add): 0.1 / 0.1
      ['10.0.0.99', hc(0, 0, 0, 0, 0x10007)], // idle, resolved by tc_handle → c2 (no prefix covers it)
    ]);
  t.update(snap(0), 0);
  t.update(snap(1), 1000);
  const r = new Rollup(3);
  r.run(ix, t.hosts.values());
  const c = (id: string) => ix.circuitById.get(id)!;
  const n = (p: string) => ix.nodeByPath.get(p)!;
  assert.equal(r.circuitDownBps[c('c1')], 10e6);
  assert.equal(r.circuitUpBps[c('c1')], 1e6);
  assert.equal(r.circuitDownBps[c('c2')], 35e6);
  assert.equal(r.circuitDownBps[c('c3')], 50e6);
  assert.equal(r.circuitDownBps[c('c4')], 1e6);
  assert.equal(r.nodeDownBps[n('Tower/AP_A')], 10e6);
  assert.equal(r.nodeDownBps[n('Tower/AP_B')], 35e6);
  assert.equal(r.nodeDownBps[n('Tower')], 45e6, 'children roll up into the parent');
  assert.equal(r.nodeUpBps[n('Tower')], 1e6);
  assert.equal(r.nodeDownBps[n('Site2')], 50e6);
  assert.equal(r.totals.downBps, 10e6 + 35e6 + 50e6 + 1e6 + 0.1e6);
  assert.equal(r.totals.shapedDownBps, 10e6 + 35e6 + 50e6 + 1e6);
  assert.equal(r.totals.unknownActiveHosts, 0, 'unknown IPs come from the sampled table (./unmapped.ts), not from host counters');
  assert.equal(r.totals.unmappedDownBps, 0, 'the service adds unmapped traffic');
  assert.equal(r.totals.hosts, 8);
  assert.equal(t.hosts.get('10.0.0.99')!.circuit, c('c2'), 'tc_handle fallback');
  assert.deepEqual(r.topDown.map((i) => ix.circuitIds[i]), ['c3', 'c2', 'c1']);
  assert.deepEqual(r.topUp.map((i) => ix.circuitIds[i]), ['c3', 'c1']);
  const v = r.circuitView(c('c3'));
  assert.equal(v.ceilDownMbps, 200);
  assert.equal(v.utilDownPct, 25);
  assert.equal(r.nodeView(n('Tower')).utilDownPct, 4.5);

  // Next tick: only c1 moves; the previous tick's circuits are cleared, nodes recomputed.
  const s2 = snap(1);
  s2.set('10.0.0.1', hc(1_250_000 * 3, 125_000, 3000, 100));
  t.update(s2, 2000);
  r.run(ix, t.hosts.values());
  assert.equal(r.circuitDownBps[c('c1')], 20e6);
  assert.equal(r.circuitDownBps[c('c3')], 0);
  assert.equal(r.nodeDownBps[n('Tower')], 20e6);
  assert.equal(r.nodeDownBps[n('Site2')], 0);
  assert.deepEqual(r.topDown.map((i) => ix.circuitIds[i]), ['c1']);
  assert.equal(r.touchedCount, 1);
});

test('roll-up: a new plan index re-resolves hosts', () => {
  const t = new HostRateTracker();
  t.update(new Map([['10.1.2.200', hc(0, 0)]]), 0);
  t.update(new Map([['10.1.2.200', hc(1000, 0, 1, 0)]]), 1000);
  const r = new Rollup();
  const ix1 = buildPlanIndex(testPlan());
  r.run(ix1, t.hosts.values());
  assert.equal(ix1.circuitIds[t.hosts.get('10.1.2.200')!.circuit], 'c3');
  const p2 = testPlan();
  p2.mappings = p2.mappings.filter((m) => m.circuitId !== 'c3');
  const ix2 = buildPlanIndex(p2);
  r.run(ix2, t.hosts.values());
  assert.equal(ix2.circuitIds[t.hosts.get('10.1.2.200')!.circuit], 'c2', 'c3 gone: the /24 catches it');
});

test('topIndices keeps the n largest, best first, ignoring zeros', () => {
  const vals = Float64Array.from([5, 0, 9, 1, 7, 3, 9.5, 2]);
  assert.deepEqual(topIndices([0, 1, 2, 3, 4, 5, 6, 7], 8, vals, 3), [6, 2, 4]);
  assert.deepEqual(topIndices([0, 1, 3], 3, vals, 5), [0, 3]);
  assert.deepEqual(topIndices([1], 1, vals, 2), []);
});

test('activeCircuits: the busiest `limit` circuits, best first (threshold path)', () => {
  const ix = buildPlanIndex(testPlan());
  const t = new HostRateTracker();
  const ips = ['10.0.0.1', '10.1.2.5', '10.1.2.200', '10.9.0.1'];
  t.update(new Map(ips.map((ip) => [ip, hc(0, 0)])), 0);
  t.update(new Map(ips.map((ip, i) => [ip, hc([300, 100, 400, 100][i]!, 0, 1, 0)])), 1000);
  const r = new Rollup();
  r.run(ix, t.hosts.values());
  const ids = (l: number) => r.activeCircuits(l).map((c) => ix.circuitIds[c]);
  assert.deepEqual(ids(10).slice(0, 2), ['c3', 'c1']);
  assert.deepEqual(ids(10).slice(2).sort(), ['c2', 'c4']);
  assert.deepEqual(ids(2), ['c3', 'c1']);
  assert.equal(ids(3).length, 3, 'ties at the threshold fill up to the limit');
  assert.deepEqual(ids(3).slice(0, 2), ['c3', 'c1']);
});
