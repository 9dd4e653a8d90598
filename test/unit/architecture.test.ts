// test-gate: shared (CPU only; see test/support/gate.ts)
/**
 * The layer diagram in docs/ARCHITECTURE.md holds: imports in lib/, dataplane/ and webui/ point only
 * to the same or a lower layer, nothing imports in a circle, and no function in lib/ is longer than
 * 150 lines. The checker itself is tested on made-up import graphs so that it cannot pass vacuously.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  importCycles,
  importsOf,
  LAYERS,
  layerOf,
  layerViolations,
  listSources,
  longFunctions,
  MAX_FUNCTION_LINES,
  REPO,
} from '../../scripts/architecture.ts';

test('the checker reads imports (static, type-only, dynamic, .vue) and places files in layers', () => {
  const files = listSources();
  assert.ok(files.length > 150, `${files.length} source files found`);
  assert.ok(files.includes('lib/daemon/daemon.ts') && files.some((f) => f.endsWith('.vue')));
  assert.ok(importsOf('lib/daemon/daemon.ts').includes('lib/web/server.ts'));
  assert.ok(importsOf('lib/shaping/kernel.ts').some((f) => f.startsWith('dataplane/')), 'dynamic import seen');
  assert.equal(layerOf('lib/util/log.ts'), 0);
  assert.equal(layerOf('lib/daemon/daemon.ts'), 5);
  assert.equal(layerOf('bench/compile.bench.ts'), undefined);
  for (const f of files.filter((x) => !x.startsWith('webui/'))) assert.notEqual(layerOf(f), undefined, `${f} has a layer`);
});

test('the checker finds an upward import, an unplaced file, a file circle and a module circle', () => {
  const graph: Record<string, string[]> = {
    'lib/util/a.ts': ['lib/daemon/b.ts'], // layer 0 → 5
    'lib/daemon/b.ts': ['lib/util/a.ts'], // fine, but closes a circle
    'lib/web/c.ts': ['lib/scheduler/d.ts'], // same layer
    'lib/scheduler/d.ts': ['lib/web/e.ts'], // module circle web ↔ scheduler, no file circle
    'lib/web/e.ts': [],
    'lib/nowhere/f.ts': [],
    'webui/src/g.ts': ['lib/model.ts'],
  };
  const files = Object.keys(graph);
  const read = (f: string) => graph[f] ?? [];
  const v = layerViolations(files, read).map((x) => `${x.from} → ${x.to}`);
  assert.deepEqual(v.sort(), ['lib/util/a.ts → lib/daemon/b.ts', 'webui/src/g.ts → lib/model.ts']);
  assert.deepEqual(layerViolations(['lib/nowhere/f.ts', 'lib/web/e.ts'], () => ['lib/web/e.ts']).length, 1);
  const c = importCycles(files, read);
  assert.deepEqual(c.files, [['lib/daemon/b.ts', 'lib/util/a.ts']]);
  assert.deepEqual(c.modules.map((m) => m.join(' ')).sort(), ['lib/daemon lib/util', 'lib/scheduler lib/web']);
});

test('no import points up a layer; the web UI imports only itself and lib/api', () => {
  const v = layerViolations();
  assert.deepEqual(v.map((x) => `${x.from} → ${x.to}: ${x.why}`), []);
});

test('no import circles between files or between modules', () => {
  const c = importCycles();
  assert.deepEqual(c.files, []);
  assert.deepEqual(c.modules, []);
});

test(`no function in lib/ is longer than ${MAX_FUNCTION_LINES} lines`, () => {
  assert.deepEqual(longFunctions().map((f) => `${f.file}:${f.line} ${f.name} (${f.lines} lines)`), []);
  // The measure itself works: the longest functions are found at a lower limit.
  assert.ok(longFunctions(60).length > 0);
});

test('docs/ARCHITECTURE.md shows the same layers as the checker', () => {
  const doc = readFileSync(join(REPO, 'docs/ARCHITECTURE.md'), 'utf8');
  for (const l of LAYERS) for (const m of l.modules) assert.ok(doc.includes(m.replace(/^lib\//, '')), `docs/ARCHITECTURE.md names ${m}`);
});
