// test-gate: shared (CPU only; see test/support/gate.ts)
/**
 * Stable class ids: adding or removing one circuit changes only that circuit's compiled lines
 * (tc batch and mappings), across runs that carry the planner state.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { renderMappings } from '../../lib/compile/mappings.ts';
import type { PlannerState } from '../../lib/plan/plannerState.ts';
import { pipeline } from '../support/plan.ts';

const HEADER = 'Circuit ID,Circuit Name,Device ID,Device Name,Parent Node,MAC,IPv4,IPv6,Download Min Mbps,Upload Min Mbps,Download Max Mbps,Upload Max Mbps,Comment';
const network = JSON.stringify({
  Region: {
    downloadBandwidthMbps: 1000,
    uploadBandwidthMbps: 1000,
    children: {
      AP_1: { downloadBandwidthMbps: 500, uploadBandwidthMbps: 200 },
      AP_2: { downloadBandwidthMbps: 500, uploadBandwidthMbps: 200 },
    },
  },
  Other: { downloadBandwidthMbps: 300, uploadBandwidthMbps: 300 },
});

function row(i: number, parent: string): string {
  return `c${i},Customer ${i},d${i},CPE ${i},${parent},,100.64.0.${i},2001:db8:${i}::/56,2,1,${25 + i},${5 + i},`;
}

function run(rows: string[], previousState?: PlannerState) {
  const r = pipeline({ devices: [HEADER, ...rows].join('\n') + '\n', network }, { previousState });
  assert.ok(r.ok, 'pipeline failed');
  return { tc: r.tcLines, maps: renderMappings(r.mappings).split('\n').filter(Boolean), state: r.state };
}

/** Lines only in a, lines only in b (multiset difference). */
function diff(a: string[], b: string[]) {
  const count = new Map<string, number>();
  for (const l of a) count.set(l, (count.get(l) ?? 0) + 1);
  const added: string[] = [];
  for (const l of b) {
    const n = count.get(l) ?? 0;
    if (n > 0) count.set(l, n - 1);
    else added.push(l);
  }
  const removed = [...count.entries()].flatMap(([l, n]) => Array(n).fill(l) as string[]);
  return { added, removed };
}

const parents = ['AP_1', 'AP_2', 'Other', ''];
const base = Array.from({ length: 40 }, (_, i) => row(i + 1, parents[i % parents.length]!));

test('adding one circuit adds only its own lines', () => {
  const first = run(base);
  const second = run([...base.slice(0, 20), row(99, 'AP_1'), ...base.slice(20)], first.state);
  const tc = diff(first.tc, second.tc);
  assert.deepEqual(tc.removed, []);
  assert.ok(tc.added.length >= 2);
  for (const l of tc.added) assert.match(l, new RegExp(`classid [0-9a-f]+:${second.state.circuits.c99!.minor.toString(16)} |parent [0-9a-f]+:${second.state.circuits.c99!.minor.toString(16)} handle`));
  const maps = diff(first.maps, second.maps);
  assert.deepEqual(maps.removed, []);
  assert.equal(maps.added.length, 2);
  assert.ok(maps.added.every((l) => l.includes('circuit "c99"')));
});

test('removing one circuit removes only its own lines', () => {
  const first = run(base);
  const without = base.filter((_, i) => i !== 6); // c7, on AP_2's... whatever parent: its lines only
  const second = run(without, first.state);
  const tc = diff(first.tc, second.tc);
  assert.deepEqual(tc.added, []);
  const minor = first.state.circuits.c7!.minor.toString(16);
  assert.ok(tc.removed.length >= 2);
  for (const l of tc.removed) assert.ok(l.includes(`:${minor} `), l);
  const maps = diff(first.maps, second.maps);
  assert.deepEqual(maps.added, []);
  assert.equal(maps.removed.length, 2, 'c7 had an IPv4 and an IPv6 mapping');
  assert.ok(maps.removed.every((l) => l.includes('circuit "c7"')));
});

test('an unparented circuit added keeps the others on their generated parents', () => {
  const first = run(base);
  const second = run([row(98, ''), ...base], first.state);
  const tc = diff(first.tc, second.tc);
  assert.deepEqual(tc.removed, []);
  for (const [id, slot] of Object.entries(first.state.circuits)) assert.deepEqual(second.state.circuits[id], slot, id);
});

test('without stored state the result is deterministic', () => {
  assert.deepEqual(run(base).tc, run(base).tc);
});
