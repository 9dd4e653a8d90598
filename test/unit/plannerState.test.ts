// test-gate: shared (CPU only; see test/support/gate.ts)
/**
 * Partial planner state (issue 21.4): one bad entry in planner_state.json costs only that entry;
 * a file that cannot be read at all starts fresh. Both with a note naming what was dropped.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parsePlannerState, plannerStateSchema, serializePlannerState } from '../../lib/plan/plannerState.ts';
import { buildPlan } from '../support/plan.ts';

const HEADER = 'Circuit ID,Circuit Name,Device ID,Device Name,Parent Node,MAC,IPv4,IPv6,Download Min Mbps,Upload Min Mbps,Download Max Mbps,Upload Max Mbps,Comment';
const network = JSON.stringify({
  Tower: { downloadBandwidthMbps: 500, uploadBandwidthMbps: 100, children: { AP: { downloadBandwidthMbps: 200, uploadBandwidthMbps: 50 } } },
  Hill: { downloadBandwidthMbps: 300, uploadBandwidthMbps: 100 },
});
const parents = ['AP', 'Hill', 'Tower', ''];
const rows = Array.from({ length: 12 }, (_, i) => `c${i + 1},Customer ${i + 1},d${i + 1},CPE,${parents[i % 4]},,100.64.0.${i + 1},,1,1,${20 + i},${5 + i},`);
const texts = { devices: [HEADER, ...rows].join('\n') + '\n', network };

/** Every class of the plan: node path / circuit id → queue:minor (and the circuit's leaf handle). */
function classes(r: ReturnType<typeof buildPlan>): Map<string, string> {
  const m = new Map<string, string>();
  for (const n of r.plan.nodes) m.set(`node ${n.path}`, `${n.queue}:${n.minor}`);
  for (const c of r.plan.circuits) m.set(`circuit ${c.id}`, `${c.queue}:${c.minor} leaf ${c.download.leafHandle}`);
  return m;
}

test('one bad entry is dropped with one note naming it; every other id is kept', () => {
  // Two runs so the ids are not simply the ones a fresh plan would hand out again.
  const first = buildPlan(texts);
  const reordered = { devices: [HEADER, ...rows.slice().reverse()].join('\n') + '\n', network };
  const before = buildPlan(reordered, { previousState: first.state });
  const stored = JSON.parse(serializePlannerState(before.state));
  // c5's slot gets a minor HTB reserves (the link class).
  const c5 = stored.circuits.c5;
  stored.circuits.c5 = { queue: c5.queue, minor: 1 };

  const parsed = parsePlannerState(JSON.stringify(stored));
  assert.equal(parsed.notes.length, 1, parsed.notes.join('\n'));
  assert.match(parsed.notes[0]!, /circuits\["c5"\] dropped \(minor: .*\)/);
  assert.equal(parsed.state.circuits.c5, undefined);
  assert.equal(Object.keys(parsed.state.circuits).length, Object.keys(before.state.circuits).length - 1);
  assert.deepEqual(parsed.state.sites, before.state.sites);
  assert.deepEqual(parsed.state.leafHandles, before.state.leafHandles);

  const after = buildPlan(reordered, { previousState: parsed.state });
  const a = classes(after);
  const b = classes(before);
  for (const [key, cls] of b) if (key !== 'circuit c5') assert.equal(a.get(key), cls, `${key} kept its class`);
  assert.ok(a.get('circuit c5'), 'the circuit whose entry was dropped still gets a class');
});

test('bad entries in several sections: each named, the rest kept', () => {
  const r = buildPlan(texts);
  const stored = JSON.parse(serializePlannerState(r.state));
  stored.topLevel.Hill = 'two';
  stored.leafHandles.c2 = { down: 'x' };
  stored.sites['Tower/AP'] = null;
  stored.queues = 0;
  const parsed = parsePlannerState(JSON.stringify(stored));
  assert.equal(parsed.notes.length, 4, parsed.notes.join('\n'));
  assert.ok(parsed.notes.some((n) => n.includes('topLevel["Hill"]')));
  assert.ok(parsed.notes.some((n) => n.includes('leafHandles["c2"]')));
  assert.ok(parsed.notes.some((n) => n.includes('sites["Tower/AP"]')));
  assert.ok(parsed.notes.some((n) => n.includes('"queues" dropped')));
  assert.equal(parsed.state.topLevel.Tower, r.state.topLevel.Tower);
  assert.deepEqual(parsed.state.circuits, r.state.circuits);
});

test('an unreadable file starts fresh with one note', () => {
  for (const text of ['not json', '[1,2]', '{"version":1,"sites":{}}', '{"topLevel":{}}']) {
    const p = parsePlannerState(text);
    assert.equal(p.notes.length, 1, text);
    assert.match(p.notes[0]!, /starting fresh class ids/);
    assert.deepEqual(p.state.circuits, {});
    assert.deepEqual(p.state.sites, {});
  }
  // A missing file is not a problem.
  assert.deepEqual(parsePlannerState(undefined).notes, []);
  // The state this planner writes reads back without a note.
  assert.deepEqual(parsePlannerState(serializePlannerState(buildPlan(texts).state)).notes, []);
});

test('the hand-written entry checks keep and drop exactly what the zod schema does (values, stripped keys, notes)', () => {
  // Every section with valid entries, edge values and invalid ones of each kind: the parse must
  // equal a parse that checks every entry through plannerStateSchema's own section schemas.
  const good = { queue: 1, minor: 3 };
  const entries: unknown[] = [
    good, { queue: 2, minor: 0xfffe }, { queue: 1, minor: 3, extra: 'x' }, { queue: 0, minor: 3 }, { queue: 1, minor: 2 },
    { queue: 1, minor: 0xffff }, { queue: 1.5, minor: 3 }, { queue: '1', minor: 3 }, { queue: 1 }, null, [], 'x', 7, -1, 0, 2.5,
    true, { down: 0x2000, up: -5 }, { down: 1, up: 2, more: 3 }, { down: 1 }, { down: 1e300, up: 1 }, 2 ** 53, { queue: 2 ** 53, minor: 3 },
  ];
  const section = Object.fromEntries(entries.map((e, i) => [`k${i}`, e]));
  const stored = { version: 2, topLevel: section, generated: section, sites: section, circuits: section, leafHandles: section, moves: section, queues: 3, run: 4, rebalancing: true };
  const parsed = parsePlannerState(JSON.stringify(stored));
  const shape = plannerStateSchema.shape;
  const expected: Record<string, Record<string, unknown>> = {};
  const notes: string[] = [];
  for (const name of ['topLevel', 'generated', 'sites', 'circuits', 'leafHandles', 'moves'] as const) {
    const inner = (name === 'moves' ? shape.moves.unwrap() : shape[name]).valueType;
    expected[name] = {};
    for (const [k, v] of Object.entries(section)) {
      const r = inner.safeParse(v);
      if (r.success) expected[name][k] = r.data;
      else notes.push(`${name}[${JSON.stringify(k)}]`);
    }
  }
  for (const name of Object.keys(expected)) assert.deepEqual((parsed.state as Record<string, unknown>)[name], expected[name], `section ${name}`);
  assert.ok(Object.keys(expected.circuits!).length >= 3 && Object.keys(expected.leafHandles!).length >= 2, 'some entries must be valid');
  assert.deepEqual(parsed.state.circuits.k2, good, 'unknown keys are stripped, as zod does');
  assert.equal(parsed.notes.length, notes.length, parsed.notes.join('\n'));
  for (const [i, n] of notes.entries()) assert.ok(parsed.notes[i]!.includes(n), `note ${i}: ${parsed.notes[i]} should name ${n}`);
  assert.deepEqual([parsed.state.queues, parsed.state.run, parsed.state.rebalancing], [3, 4, true]);
});
