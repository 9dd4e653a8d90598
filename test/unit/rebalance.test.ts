// test-gate: shared (CPU only; see test/support/gate.ts)
/**
 * Rebalancing top-level sites onto CPU queues (issue 21.2): queues stay sticky, but when the queue
 * count grows or the load is badly skewed a bounded number of sites move per run, each move is
 * reported, and a settled plan moves nothing. Runs the pure pipeline with the state chained.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import type { InputIssue } from '../../lib/model.ts';
import type { PlannerState } from '../../lib/plan/plannerState.ts';
import { moveBudget, REBALANCE, rebalance } from '../../lib/plan/rebalance.ts';
import { buildPlan, planConfig } from '../support/plan.ts';
import { runCli, workspaceFactory } from '../support/workspace.ts';

const HEADER = 'Circuit ID,Circuit Name,Device ID,Device Name,Parent Node,MAC,IPv4,IPv6,Download Min Mbps,Upload Min Mbps,Download Max Mbps,Upload Max Mbps,Comment';

/** One top-level site per entry, each with one circuit of plan `down`/`up` (its load is down + up). */
function inputs(sites: Array<{ name: string; down: number; up: number }>) {
  const network: Record<string, unknown> = {};
  const rows = [HEADER];
  sites.forEach((s, i) => {
    network[s.name] = { downloadBandwidthMbps: 1000, uploadBandwidthMbps: 1000 };
    rows.push(`c${i + 1},Customer ${i + 1},d${i + 1},CPE,${s.name},,100.64.${Math.floor(i / 250)}.${(i % 250) + 1},,1,1,${s.down},${s.up},`);
  });
  return { devices: rows.join('\n') + '\n', network: JSON.stringify(network) };
}

interface Run {
  state: PlannerState;
  moves: InputIssue[];
  queueOf: Map<string, number>;
  /** Site name → its class id (queue:minor). */
  classOf: Map<string, string>;
}

function run(texts: { devices: string; network: string }, queues: number, previousState?: PlannerState): Run {
  const r = buildPlan(texts, { config: planConfig({ queues }), previousState });
  const moves = r.warnings.filter((w) => w.code === 'site-queue-moved');
  const top = r.plan.nodes.filter((n) => n.depth === 1);
  return {
    state: r.state,
    moves,
    queueOf: new Map(top.map((n) => [n.name, n.queue])),
    classOf: new Map(top.map((n) => [n.name, `${n.queue}:${n.minor}`])),
  };
}

function loads(r: Run, weight: (name: string) => number, queues: number): number[] {
  const l = new Array<number>(queues).fill(0);
  for (const [name, q] of r.queueOf) l[q - 1]! += weight(name);
  return l;
}

test('1 → 2 queues: one run moves the heaviest site that fits onto the new queue, reports it, then nothing moves', () => {
  const texts = inputs([
    { name: 'Alpha', down: 80, up: 20 },
    { name: 'Bravo', down: 50, up: 10 },
    { name: 'Charlie', down: 30, up: 10 },
  ]);
  const r1 = run(texts, 1);
  assert.deepEqual([...r1.queueOf.values()], [1, 1, 1]);
  assert.equal(r1.moves.length, 0);

  const r2 = run(texts, 2, r1.state);
  // Loads 100/60/40 all on queue 1: budget max(1, 10% of 3) = 1; Alpha (100 ≤ 200/2) moves → 100 | 100.
  assert.equal(r2.moves.length, 1);
  assert.deepEqual(new Set(r2.queueOf.values()), new Set([1, 2]));
  assert.equal(r2.queueOf.get('Alpha'), 2);
  const m = r2.moves[0]!;
  assert.equal(m.column, 'Alpha');
  assert.match(m.message, /"Alpha" moved from CPU queue 1 to queue 2 \(the queue count changed from 1 to 2/);
  // The sites that stayed keep their class ids.
  assert.equal(r2.classOf.get('Bravo'), r1.classOf.get('Bravo'));
  assert.equal(r2.classOf.get('Charlie'), r1.classOf.get('Charlie'));

  const r3 = run(texts, 2, r2.state);
  assert.equal(r3.moves.length, 0);
  assert.deepEqual(r3.classOf, r2.classOf);
  assert.equal(r3.state.rebalancing, undefined, 'the rebalance is over');
  const r4 = run(texts, 2, r3.state);
  assert.equal(r4.moves.length, 0);
  assert.deepEqual(r4.classOf, r2.classOf);
});

test('1 → 2 queues with 30 sites: at most the budget moves per run, both queues end up balanced, then nothing moves', () => {
  const sites = Array.from({ length: 30 }, (_, i) => ({ name: `Site_${String(i + 1).padStart(2, '0')}`, down: 20 + (i % 7) * 10, up: 5 + (i % 3) * 5 }));
  const weight = new Map(sites.map((s) => [s.name, s.down + s.up]));
  const texts = inputs(sites);
  let r = run(texts, 1);
  const budget = moveBudget(30);
  assert.equal(budget, 3);
  const movedBy = new Map<string, number>();
  let runs = 0;
  let first = true;
  for (;;) {
    const before = r;
    r = run(texts, 2, before.state);
    runs++;
    assert.ok(r.moves.length <= budget, `run ${runs} moved ${r.moves.length} > budget ${budget}`);
    if (first) {
      assert.equal(r.moves.length, budget, 'the first run after the queue count grew uses its budget');
      assert.deepEqual(new Set(r.queueOf.values()), new Set([1, 2]), 'both queues used');
      first = false;
    }
    for (const m of r.moves) movedBy.set(m.column!, (movedBy.get(m.column!) ?? 0) + 1);
    // Sites that did not move keep their class ids.
    const moved = new Set(r.moves.map((m) => m.column!));
    for (const [name, cls] of before.classOf) if (!moved.has(name) && before.queueOf.get(name) === r.queueOf.get(name)) assert.equal(r.classOf.get(name), cls);
    if (r.moves.length === 0) break;
    assert.ok(runs < 20, 'converges');
  }
  // Every site moved at most once (no ping-pong), all from queue 1.
  assert.ok([...movedBy.values()].every((n) => n === 1));
  const [q1, q2] = loads(r, (n) => weight.get(n)!, 2);
  const maxWeight = Math.max(...weight.values());
  assert.ok(Math.abs(q1! - q2!) <= 2 * maxWeight, `balanced within one site: ${q1} vs ${q2}`);
  // Settled: further runs move nothing and keep every id.
  const again = run(texts, 2, r.state);
  assert.equal(again.moves.length, 0);
  assert.deepEqual(again.classOf, r.classOf);
});

test('a skewed load (same queue count) converges over a few runs without ping-pong', () => {
  const names = ['A', 'B', 'C', 'D', 'E', 'F', 'G', 'H', 'I', 'J', 'K', 'L'];
  const light = inputs(names.map((name) => ({ name, down: 50, up: 10 })));
  const r1 = run(light, 2);
  assert.equal(r1.moves.length, 0);
  // Placement alternates; now every site on queue 1 grows tenfold.
  const onQ1 = new Set(names.filter((n) => r1.queueOf.get(n) === 1));
  assert.equal(onQ1.size, 6);
  const heavySites = names.map((name) => (onQ1.has(name) ? { name, down: 500, up: 100 } : { name, down: 50, up: 10 }));
  const weight = new Map(heavySites.map((s) => [s.name, s.down + s.up]));
  const heavy = inputs(heavySites);
  let r = r1;
  const history: Array<Array<[string, number]>> = [];
  for (let i = 0; i < 10; i++) {
    r = run(heavy, 2, r.state);
    assert.ok(r.moves.length <= moveBudget(12));
    history.push(r.moves.map((m) => [m.column!, Number(/ to queue (\d+)/.exec(m.message)![1])]));
    if (r.moves.length === 0) break;
  }
  const allMoves = history.flat();
  assert.ok(allMoves.length >= 2, 'it moved something');
  assert.equal(history.at(-1)!.length, 0, 'it settled');
  // No site went back and forth.
  const seen = new Set<string>();
  for (const [name] of allMoves) {
    assert.ok(!seen.has(name), `${name} moved twice`);
    seen.add(name);
  }
  const [q1, q2] = loads(r, (n) => weight.get(n)!, 2);
  assert.ok(Math.max(q1!, q2!) <= REBALANCE.SKEW_RATIO * ((q1! + q2!) / 2), `no longer skewed: ${q1} vs ${q2}`);
  for (let i = 0; i < 3; i++) {
    const again = run(heavy, 2, r.state);
    assert.equal(again.moves.length, 0);
    assert.deepEqual(again.classOf, r.classOf);
    r = again;
  }
});

test('unchanged queue count and balanced load: nothing moves; a single site is never bounced between queues', () => {
  const texts = inputs([{ name: 'Only', down: 100, up: 100 }]);
  let r = run(texts, 2);
  const cls = r.classOf.get('Only');
  for (let i = 0; i < 3; i++) {
    r = run(texts, 2, r.state);
    assert.equal(r.moves.length, 0);
    assert.equal(r.classOf.get('Only'), cls);
  }
  r = run(texts, 4, r.state);
  assert.equal(r.moves.length, 0, 'moving the only site cannot narrow the spread');
});

test('fewer queues: sites on a queue that no longer exists are re-placed and reported', () => {
  const texts = inputs(['A', 'B', 'C', 'D'].map((name) => ({ name, down: 50, up: 10 })));
  const r1 = run(texts, 4);
  assert.deepEqual(new Set(r1.queueOf.values()), new Set([1, 2, 3, 4]));
  const r2 = run(texts, 2, r1.state);
  const gone = [...r1.queueOf].filter(([, q]) => q > 2).map(([n]) => n).sort();
  assert.deepEqual(r2.moves.map((m) => m.column).sort(), gone);
  for (const m of r2.moves) assert.match(m.message, /moved from CPU queue [34] to queue [12] \(queue [34] no longer exists \(2 queue\(s\) now\)\)/);
  assert.deepEqual([...r2.queueOf.values()].sort(), [1, 1, 2, 2]);
  assert.equal(run(texts, 2, r2.state).moves.length, 0);
});

test('the cool-down holds a recently moved site back', () => {
  const sites = [
    { name: 'X', queue: 1, weight: 10, pinned: false, stored: true },
    { name: 'Y', queue: 1, weight: 10, pinned: false, stored: true },
  ];
  const held = rebalance({ queues: 2, sites, previousQueues: 2, underWay: true, run: 5, lastMoved: { X: 4, Y: 3 } });
  assert.deepEqual(held.moves, []);
  assert.equal(held.underWay, true, 'continues once the cool-down is over');
  // X (moved in run 4) is still cooling; Y's cool-down is over.
  const later = rebalance({ queues: 2, sites, previousQueues: 2, underWay: true, run: 4 + REBALANCE.COOLDOWN_RUNS, lastMoved: { X: 4, Y: 3 } });
  assert.deepEqual(later.moves.map((m) => [m.name, m.from, m.to]), [['Y', 1, 2]]);
});

const workspace = workspaceFactory();

// The queue count is min(override, CPUs): two queues need two CPUs.
test('./LibreQoS --dry-run previews the moves without saving them: the preview repeats, planner_state.json keeps the old queues', { skip: availableParallelism() < 2 && 'needs 2 CPUs' }, async () => {
  const texts = inputs([
    { name: 'Alpha', down: 80, up: 20 },
    { name: 'Bravo', down: 50, up: 10 },
    { name: 'Charlie', down: 30, up: 10 },
  ]);
  const w = workspace({ devices: texts.devices, network: texts.network });
  const shape = async (queues: number) => {
    w.writeConfig(readFileSync(w.config, 'utf8').replace(/override_available_queues = \d+/, `override_available_queues = ${queues}`));
    const r = await runCli(['--config', w.config, '--dry-run']);
    assert.equal(r.code, 0, r.stderr);
    return r.logs.filter((l) => l.level === 40 && l.msg.includes('moved from CPU queue')).map((l) => l.msg);
  };
  assert.deepEqual(await shape(1), []);
  const moved = await shape(2);
  assert.equal(moved.length, 1);
  assert.match(moved[0]!, /network\.json: at "Alpha": top-level site "Alpha" moved from CPU queue 1 to queue 2 \(the queue count changed from 1 to 2/);
  const state = JSON.parse(readFileSync(join(w.stateDir, 'shaping', 'planner_state.json'), 'utf8'));
  assert.equal(state.queues, 1, 'a dry run that would move sites does not save the move');
  assert.equal(state.topLevel.Alpha, 1);
  assert.equal(state.moves, undefined);
  // Another preview shows the same move (the budget was not spent by the first one).
  assert.deepEqual(await shape(2), moved);
});
