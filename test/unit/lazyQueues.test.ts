// test-gate: shared (CPU only; see test/support/gate.ts)
/**
 * Lazy queues (lib/shaping/lazyQueues.ts): the pure decision (which circuits to materialise, which
 * to expire, `lazy_threshold_bytes`, `lazy_expire_seconds`), and what the compiler, the incremental
 * diff and the kernel read-back do with circuits that are not materialised (pure, no kernel), and the
 * manager's use of the dataplane's first-packet reports (a stand-in dataplane; tc batches recorded).
 *
 * The tree (as test/unit/applyDiff.test.ts): Site_A (1:3) > AP_1 (1:4) with c1 (1:5) and c3 (1:6);
 * Site_B (2:3) with c2 (2:4). eth1 is the download side, eth0 the upload side.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { compileTcBatch, type LazyQueues } from '../../lib/compile/tc.ts';
import { diffPlans } from '../../lib/apply/diff.ts';
import { verifyPlan } from '../../lib/apply/engine.ts';
import type { KernelClass } from '../../lib/apply/kernelState.ts';
import { decideLazy, expireLines, LazyQueueManager, materialiseLines, type LazyDecisionInput } from '../../lib/shaping/lazyQueues.ts';
import { LazyMapsRecreatedError, type LazySignals } from '../../lib/shaping/lazyFirstPackets.ts';
import { parseConfigText } from '../../lib/config/load.ts';
import { RecordingLog } from '../../lib/util/logRecords.ts';
import { quiet } from '../support/log.ts';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ShapingPlan } from '../../lib/model.ts';
import { buildPlan, PFIFO_LEAVES } from '../support/plan.ts';

const HEADER = 'Circuit ID,Circuit Name,Device ID,Device Name,Parent Node,MAC,IPv4,IPv6,Download Min Mbps,Upload Min Mbps,Download Max Mbps,Upload Max Mbps,Comment';
const ROWS: Record<string, string> = {
  c1: 'c1,C1,d1,D1,AP_1,,100.64.0.1,,1,1,20,5,',
  c2: 'c2,C2,d2,D2,Site_B,,100.64.0.2,,1,1,30,6,',
  c3: 'c3,C3,d3,D3,AP_1,,100.64.0.3,,1,1,40,8,',
};
const NETWORK = {
  Site_A: { downloadBandwidthMbps: 500, uploadBandwidthMbps: 200, children: { AP_1: { downloadBandwidthMbps: 200, uploadBandwidthMbps: 100 } } },
  Site_B: { downloadBandwidthMbps: 300, uploadBandwidthMbps: 100 },
};
const devices = (rows: Record<string, string>) => [HEADER, ...Object.values(rows)].join('\n') + '\n';
const p1 = buildPlan({ devices: devices(ROWS), network: JSON.stringify(NETWORK) });
const plan = p1.plan;
const next = (rows: Record<string, string>): ShapingPlan => buildPlan({ devices: devices(rows), network: JSON.stringify(NETWORK) }, { previousState: p1.state }).plan;
const lazy = (mode: 'Htb' | 'Full', live: string[] = []): LazyQueues => ({ mode, isMaterialised: (id) => live.includes(id) });

function input(over: Partial<LazyDecisionInput>): LazyDecisionInput {
  return { materialised: new Map(), traffic: new Map(), now: 100_000, thresholdBytes: 0, expireMs: 3000, inPlan: (id) => ['c1', 'c2', 'c3'].includes(id), ...over };
}

test('decideLazy: a circuit with traffic that is not materialised is created; only that one', () => {
  const d = decideLazy(input({ traffic: new Map([['c2', 1500]]) }));
  assert.deepEqual(d, { create: ['c2'], expire: [], touch: [] }, 'the circuit with traffic (c2) must be the one created');
});

test('decideLazy: lazy_threshold_bytes — at or below the threshold is no activity; above it is', () => {
  const traffic = new Map([['c1', 1000], ['c3', 1001]]);
  assert.deepEqual(decideLazy(input({ traffic, thresholdBytes: 1000 })).create, ['c3']);
  // default (0): any traffic at all; a circuit with 0 bytes is not activity
  assert.deepEqual(decideLazy(input({ traffic: new Map([['c1', 1], ['c3', 0]]) })).create, ['c1']);
});

test('decideLazy: circuits not in the plan are never created; materialised ones with traffic are touched, not re-created', () => {
  const d = decideLazy(input({ traffic: new Map([['gone', 5000], ['c1', 5000]]), materialised: new Map([['c1', 99_000]]) }));
  assert.deepEqual(d, { create: [], expire: [], touch: ['c1'] });
});

test('decideLazy: lazy_expire_seconds — idle at least that long expires, active or younger stays; 0 never expires', () => {
  const materialised = new Map([['c1', 100_000 - 3000], ['c2', 100_000 - 2999], ['c3', 100_000 - 60_000]]);
  const d = decideLazy(input({ materialised, traffic: new Map([['c3', 10]]) }));
  assert.deepEqual(d.expire, ['c1'], 'c1 was idle exactly lazy_expire_seconds (3 s); c2 for less; c3 had traffic now');
  assert.deepEqual(d.touch, ['c3']);
  assert.deepEqual(decideLazy(input({ materialised, expireMs: 0 })).expire, [], 'lazy_expire_seconds = 0: nothing expires');
});

test('compile: Htb builds every class but no circuit leaf; Full builds no circuit class; site/AP classes and materialised circuits stay', () => {
  const all = compileTcBatch(plan, PFIFO_LEAVES);
  const htb = compileTcBatch(plan, { ...PFIFO_LEAVES, lazy: lazy('Htb', ['c3']) });
  const full = compileTcBatch(plan, { ...PFIFO_LEAVES, lazy: lazy('Full', ['c3']) });
  const leafOf = (l: string[], parent: string) => l.filter((x) => x.startsWith(`qdisc add dev eth1 parent ${parent} `));
  const classOf = (l: string[], id: string) => l.filter((x) => x.startsWith('class add dev eth1 ') && x.includes(` classid ${id} `));
  for (const id of ['1:3', '1:4', '2:3']) assert.equal(classOf(full, id).length, 1, `site/AP class ${id} must be built in Full mode`);
  assert.equal(leafOf(all, '1:5').length, 1);
  assert.deepEqual([leafOf(htb, '1:5'), leafOf(htb, '2:4')], [[], []], 'Htb: no leaf for idle c1, c2');
  assert.equal(classOf(htb, '1:5').length, 1, 'Htb: c1 class is built');
  assert.deepEqual([classOf(full, '1:5'), classOf(full, '2:4'), leafOf(full, '1:5')], [[], [], []], 'Full: no class or leaf for idle c1, c2');
  assert.equal(leafOf(htb, '1:6').length, 1, 'Htb: materialised c3 keeps its leaf');
  assert.deepEqual([classOf(full, '1:6').length, leafOf(full, '1:6').length], [1, 1], 'Full: materialised c3 keeps class and leaf');
  // Full mode, nothing materialised: the tree minus 4 class lines and 4 leaf lines per idle circuit pair side
  assert.equal(all.length - compileTcBatch(plan, { ...PFIFO_LEAVES, lazy: lazy('Full') }).length, 3 * 4);
});

test('diff: a changed lazy circuit stays absent; a materialised one is changed; removing a lazy (Full) circuit deletes nothing', () => {
  const changed = next({ ...ROWS, c1: 'c1,C1,d1,D1,AP_1,,100.64.0.1,,1,1,25,5,', c3: 'c3,C3,d3,D3,AP_1,,100.64.0.3,,1,1,45,8,' });
  const d = diffPlans(plan, changed, { ...PFIFO_LEAVES, lazy: lazy('Full', ['c3']) });
  assert.deepEqual(d.tc, ['class change dev eth1 parent 1:4 classid 1:6 htb rate 1mbit ceil 45mbit burst 3028b cburst 56250b prio 3 quantum 2699'], 'only materialised c3 is changed; lazy c1 stays absent');
  const removed = diffPlans(plan, next({ c2: ROWS.c2!, c3: ROWS.c3! }), { ...PFIFO_LEAVES, lazy: lazy('Full', ['c3']) });
  assert.deepEqual(removed.tc, [], 'c1 had no class in the kernel: nothing to delete');
  assert.deepEqual(removed.mapDelete, ['100.64.0.1/32']);
  const removedHtb = diffPlans(plan, next({ c2: ROWS.c2!, c3: ROWS.c3! }), { ...PFIFO_LEAVES, lazy: lazy('Htb') });
  assert.deepEqual(removedHtb.tc, ['class del dev eth1 classid 1:5', 'class del dev eth0 classid 1:5'], 'Htb: the class exists and is deleted');
});

test('diff: a new circuit under lazy queues adds its class only (Htb) or nothing (Full); its mapping is written either way', () => {
  const added = next({ ...ROWS, c4: 'c4,C4,d4,D4,Site_B,,100.64.0.4,,1,1,10,2,' });
  const full = diffPlans(plan, added, { ...PFIFO_LEAVES, lazy: lazy('Full') });
  assert.deepEqual(full.tc, []);
  assert.deepEqual(full.mapUpsert.map((m) => m.prefix), ['100.64.0.4/32']);
  const htb = diffPlans(plan, added, { ...PFIFO_LEAVES, lazy: lazy('Htb') });
  assert.deepEqual(htb.tc.map((l) => l.split(' ').slice(0, 2).join(' ')), ['class add', 'class add']);
});

test('materialise/expire lines: Full adds class and leaf per side and deletes the classes; Htb only the leaves', () => {
  const c1 = plan.circuits.find((c) => c.id === 'c1')!;
  const full = materialiseLines(plan, c1, 'Full', PFIFO_LEAVES.substitute);
  assert.deepEqual(full.map((l) => l.split(' ').slice(0, 4).join(' ')), ['class replace dev eth1', 'qdisc replace dev eth1', 'class replace dev eth0', 'qdisc replace dev eth0']);
  assert.ok(full.every((l) => l.includes('1:5')), `every line is c1's (1:5): ${full.join(' | ')}`);
  assert.deepEqual(materialiseLines(plan, c1, 'Htb', PFIFO_LEAVES.substitute), full.filter((l) => l.startsWith('qdisc ')));
  assert.deepEqual(expireLines(plan, c1, 'Full', PFIFO_LEAVES.substitute), ['class del dev eth1 classid 1:5', 'class del dev eth0 classid 1:5']);
  assert.deepEqual(expireLines(plan, c1, 'Htb', PFIFO_LEAVES.substitute), ['qdisc del dev eth1 parent 1:5', 'qdisc del dev eth0 parent 1:5']);
});

test('read-back: a Full-mode circuit without its class is not drift; a materialised one missing is; a leftover present is checked', async () => {
  const kernel = (skip: string[]): Map<string, Map<string, KernelClass>> => {
    const m = new Map<string, Map<string, KernelClass>>();
    for (const [dev, dir] of [['eth1', 'download'], ['eth0', 'upload']] as const) {
      const k = new Map<string, KernelClass>();
      for (let q = 1; q <= plan.queues; q++) {
        k.set(`${q}:1`, { classid: `${q}:1`, parent: 'root', rateKbit: 1e6, ceilKbit: 1e6 });
        k.set(`${q}:2`, { classid: `${q}:2`, parent: `${q}:1`, rateKbit: 1, ceilKbit: 1e6 });
      }
      for (const x of [...plan.nodes, ...plan.circuits]) {
        const id = `${x.queue}:${x.minor.toString(16)}`;
        if ('id' in x && skip.includes(x.id as string)) continue;
        k.set(id, { classid: id, parent: `${x.queue}:${x.parentMinor.toString(16)}`, rateKbit: x[dir].rateMbps * 1000, ceilKbit: x[dir].ceilMbps * 1000 });
      }
      m.set(dev, k);
    }
    return m;
  };
  assert.deepEqual(await verifyPlan(plan, { readBack: kernel(['c1', 'c2']), lazy: lazy('Full', ['c3']) }), []);
  assert.deepEqual(await verifyPlan(plan, { readBack: kernel(['c1', 'c3']), lazy: lazy('Full', ['c3']) }), ['eth1: class 1:6 missing', 'eth0: class 1:6 missing']);
  assert.deepEqual(await verifyPlan(plan, { readBack: kernel([]), lazy: lazy('Full') }), [], 'classes left from before a restart are accepted');
  assert.deepEqual(await verifyPlan(plan, { readBack: kernel(['c1']), lazy: lazy('Htb') }), ['eth1: class 1:5 missing', 'eth0: class 1:5 missing'], 'Htb builds every class');
});

/** A LazySignals stand-in: what the manager armed, and reports to hand it. */
function fakeSignals() {
  const armed = new Set<bigint>();
  const calls: string[] = [];
  const queue: bigint[] = [];
  let on = false;
  const signals: LazySignals = {
    clear: () => {
      calls.push('clear');
      armed.clear();
      on = false;
    },
    arm: (hs) => hs.forEach((h) => armed.add(h)),
    disarm: (hs) => hs.forEach((h) => armed.delete(h)),
    setArmed: (v) => void (on = v),
    drain: () => queue.splice(0),
  };
  return { signals, armed, calls, queue, isOn: () => on };
}

/** A LazyQueueManager on `plan` whose tc batches are appended to a file instead of run. */
function managerWith(queues: string, signals: LazySignals | undefined, t: { after(fn: () => void): void }, now?: () => number) {
  const dir = mkdtempSync(join(tmpdir(), 'lqos-lazyfp-'));
  const batches = join(dir, 'batches');
  const { config } = parseConfigText(`[bridge]\nto_internet = "eth0"\nto_network = "eth1"\n[queues]\n${queues}\n`, 'lqos.conf');
  const m = new LazyQueueManager({ log: quiet, config: () => config, signals: () => signals, wrap: ['sh', '-c', `cat >> ${batches}`, 'tc'], ...(now ? { now } : {}) });
  t.after(() => {
    m.stop();
    rmSync(dir, { recursive: true, force: true });
  });
  const c = m.control(config);
  c.applied(plan, true, {});
  return { m, tc: () => (existsSync(batches) ? readFileSync(batches, 'utf8') : '') };
}

const hashOf = (id: string) => plan.circuits.find((c) => c.id === id)!.circuitHash;

test('first packets (dataplane reports): every circuit not built is armed; a report builds it at once and disarms it', async (t) => {
  const f = fakeSignals();
  const { m, tc } = managerWith('lazy_queues = "Full"\nlazy_expire_seconds = 3', f.signals, t);
  assert.deepEqual([...f.armed].sort(), ['c1', 'c2', 'c3'].map(hashOf).sort(), 'all three armed after the apply');
  assert.ok(f.isOn(), 'the per-packet check is on');
  const t0 = performance.now();
  f.queue.push(hashOf('c2'), hashOf('c2'), 999n); // reported twice (two CPUs) and an unknown hash
  while (!tc().includes('classid 2:4') && performance.now() - t0 < 2000) await new Promise((r) => setTimeout(r, 5));
  await m.idle();
  const ms = performance.now() - t0;
  assert.match(tc(), /class replace dev eth1 parent 2:3 classid 2:4 htb/, 'c2 (2:4) built');
  assert.ok(!/classid 1:5|classid 1:6/.test(tc()), 'only c2');
  // Nothing in this test ticks (lqosd's 1 s telemetry tick calls tick()): the report alone built it.
  // How fast is bench material, not a unit test's (a loaded CI machine took 839 ms here once).
  t.diagnostic(`built ${ms.toFixed(0)} ms after the report`);
  assert.deepEqual([...f.armed].sort(), ['c1', 'c3'].map(hashOf).sort(), 'c2 no longer armed');
  assert.equal(m.counts()?.created, 1);
});

test('first packets: off with lazy_threshold_bytes (a first packet says nothing about bytes) and without a dataplane', async (t) => {
  const f = fakeSignals();
  const { m: m0, tc } = managerWith('lazy_queues = "Full"\nlazy_threshold_bytes = 1000', f.signals, t);
  assert.deepEqual(f.calls, ['clear'], 'cleared, nothing armed');
  assert.equal(f.armed.size, 0);
  assert.ok(!f.isOn());
  f.queue.push(hashOf('c1'));
  await new Promise((r) => setTimeout(r, 150));
  assert.equal(tc(), '', 'no report is acted on');
  assert.equal(f.queue.length, 1, 'the reports are not even read');
  assert.equal(m0.counts()?.firstPacketReports, false);
  // No dataplane (lqosd not attached, or a test's stand-in attach): the 1 s tick alone, no error.
  const { m } = managerWith('lazy_queues = "Htb"', undefined, t);
  assert.equal(m.counts()?.lazy, 3);
});

test('first packets: a circuit removed after its idle time is armed again; recreated maps are armed again', async (t) => {
  const f = fakeSignals();
  let clock = 1_000_000;
  const { m, tc } = managerWith('lazy_queues = "Full"\nlazy_expire_seconds = 3', f.signals, t, () => clock);
  f.queue.push(hashOf('c1'));
  while (!tc().includes('classid 1:5') ) await new Promise((r) => setTimeout(r, 5));
  await m.idle();
  assert.ok(!f.armed.has(hashOf('c1')), 'c1 built: not armed');
  // 4 s without traffic (lazy_expire_seconds = 3): the next tick removes it and arms it again.
  clock += 4000;
  m.observe([]);
  await m.idle();
  assert.match(tc(), /class del dev eth1 classid 1:5/);
  assert.ok(f.armed.has(hashOf('c1')), 'c1 removed: armed again');
  assert.ok(f.isOn());
  // The maps were recreated (lqosd re-attached): the next read says so and everything not built is armed again.
  const clears = f.calls.length;
  f.armed.clear();
  f.signals.drain = () => {
    f.signals.drain = () => f.queue.splice(0);
    throw new LazyMapsRecreatedError();
  };
  const t0 = Date.now();
  while (f.armed.size < 3 && Date.now() - t0 < 2000) await new Promise((r) => setTimeout(r, 5));
  assert.equal(f.calls.length, clears + 1, 'cleared once more');
  assert.deepEqual([...f.armed].sort(), ['c1', 'c2', 'c3'].map(hashOf).sort());
});

test('first packets: after a failed batch, reports wait for the next tick (no read-back loop every 25 ms)', async (t) => {
  const f = fakeSignals();
  const dir = mkdtempSync(join(tmpdir(), 'lqos-lazyfp-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const runs = join(dir, 'runs');
  const { config } = parseConfigText('[bridge]\nto_internet = "eth0"\nto_network = "eth1"\n[queues]\nlazy_queues = "Full"\n', 'lqos.conf');
  // Every tc call fails (and is counted): the batch, and the read-back that follows a failure.
  const m = new LazyQueueManager({ log: quiet, config: () => config, signals: () => f.signals, wrap: ['sh', '-c', `echo x >> ${runs}; exit 1`, 'tc'] });
  t.after(() => m.stop());
  m.control(config).applied(plan, true, {});
  f.queue.push(hashOf('c2'));
  const t0 = Date.now();
  while (!existsSync(runs) && Date.now() - t0 < 2000) await new Promise((r) => setTimeout(r, 5));
  await m.idle();
  // Re-armed by nothing (no tick): c2 reports again, as a busy circuit would, for 400 ms.
  for (let i = 0; i < 16; i++) {
    f.queue.push(hashOf('c2'));
    await new Promise((r) => setTimeout(r, 25));
  }
  await m.idle();
  assert.equal(readFileSync(runs, 'utf8').split('\n').filter(Boolean).length, 1, 'one failed batch, no read-back or retry until the next tick');
});

test('dry_run set by a reload after a real apply: traffic builds no circuit until it is cleared (one warning)', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'lqos-lazydry-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const batches = join(dir, 'batches');
  const conf = (extra: string) => parseConfigText(`[bridge]\nto_internet = "eth0"\nto_network = "eth1"\n[queues]\nlazy_queues = "Full"\n${extra}`, 'lqos.conf').config;
  let config = conf('');
  const log = new RecordingLog();
  const m = new LazyQueueManager({ log, config: () => config, signals: () => undefined, wrap: ['sh', '-c', `cat >> ${batches}`, 'tc'] });
  t.after(() => m.stop());
  m.control(config).applied(plan, true, {});
  const tc = () => (existsSync(batches) ? readFileSync(batches, 'utf8') : '');
  config = conf('dry_run = true\n');
  m.observe([['c2', 5000]]);
  await m.idle();
  m.observe([['c2', 5000]]);
  await m.idle();
  assert.doesNotMatch(tc(), /classid 2:4/, 'c2 built under dry_run');
  assert.equal(m.counts()?.materialised, 0);
  assert.equal(log.records.filter((r) => r.level === 'warn' && /dry_run is set, so no circuit is built or removed until it is cleared/.test(r.msg)).length, 1);
  config = conf('');
  m.observe([['c2', 5000]]);
  await m.idle();
  assert.match(tc(), /class replace dev eth1 parent 2:3 classid 2:4 htb/, 'c2 built once dry_run is cleared');
  assert.equal(m.counts()?.materialised, 1);
});

test('first packets: a config reload that sets lazy_threshold_bytes switches the reports off; clearing it switches them on again', async (t) => {
  const f = fakeSignals();
  const dir = mkdtempSync(join(tmpdir(), 'lqos-lazyfp-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const conf = (extra: string) => parseConfigText(`[bridge]\nto_internet = "eth0"\nto_network = "eth1"\n[queues]\nlazy_queues = "Htb"\n${extra}`, 'lqos.conf').config;
  let config = conf('');
  const m = new LazyQueueManager({ log: quiet, config: () => config, signals: () => f.signals, wrap: ['sh', '-c', `cat >> ${join(dir, 'batches')}`, 'tc'] });
  t.after(() => m.stop());
  m.control(config).applied(plan, true, {});
  assert.equal(f.armed.size, 3);
  assert.equal(m.counts()?.firstPacketReports, true);
  config = conf('lazy_threshold_bytes = 5000\n');
  m.configChanged();
  assert.equal(f.armed.size, 0, 'nothing armed with a threshold');
  assert.ok(!f.isOn());
  assert.equal(m.counts()?.firstPacketReports, false);
  const clears = f.calls.length;
  m.configChanged(); // unchanged threshold: nothing to do
  assert.equal(f.calls.length, clears);
  config = conf('');
  m.configChanged();
  assert.equal(f.armed.size, 3, 'armed again');
  assert.equal(m.counts()?.firstPacketReports, true);
});
