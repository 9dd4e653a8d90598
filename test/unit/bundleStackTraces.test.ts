// test-gate: shared (CPU only; see test/support/gate.ts)
/**
 * lib/util/bundleStackTraces.ts: a stack through a bundle whose map node never loaded (the start-up
 * snapshot's case) names the .ts file and line; without the map it still formats, with the bundle's.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildSync } from 'esbuild';
import { mapStackTraces } from '../../lib/util/bundleStackTraces.ts';

const dir = mkdtempSync(join(tmpdir(), 'lqos-stack-'));
const saved = Error.prepareStackTrace;
after(() => {
  Error.prepareStackTrace = saved;
  rmSync(dir, { recursive: true, force: true });
});

/** A bundle (CommonJS, external map) of a .ts file that throws on line 3 of `fail`. */
function bundle(name: string): { file: string; fail: () => void } {
  const src = join(dir, `${name}.ts`);
  writeFileSync(src, ['// a source whose lines the bundle does not keep', 'export function fail(): void {', "  throw new Error('planned failure');", '}', ''].join('\n'));
  const file = join(dir, `${name}.cjs`);
  buildSync({ entryPoints: [src], bundle: true, format: 'cjs', platform: 'node', sourcemap: true, outfile: file, logLevel: 'error' });
  return { file, fail: (createRequire(import.meta.url)(file) as { fail: () => void }).fail };
}

test('a frame in the bundle is shown at its .ts line and column; other frames as V8 prints them', () => {
  const { file, fail } = bundle('mapped');
  mapStackTraces(file);
  const stack = (() => {
    try {
      fail();
    } catch (e) {
      return (e as Error).stack ?? '';
    }
    return '';
  })();
  const lines = stack.split('\n');
  assert.equal(lines[0], 'Error: planned failure');
  assert.match(lines[1]!, new RegExp(`^    at fail \\(${join(dir, 'mapped.ts').replace(/[.]/g, '\\.')}:3:9\\)$`), stack);
  assert.ok(!stack.includes('mapped.cjs'), stack);
  assert.match(lines[2]!, /bundleStackTraces\.test\.ts:\d+:\d+/, 'the caller (not in the bundle) keeps its own location');
});

test("without the map file the bundle's own lines are shown (no failure while formatting)", () => {
  const { file, fail } = bundle('unmapped');
  rmSync(`${file}.map`);
  mapStackTraces(file);
  const installed = Error.prepareStackTrace;
  assert.ok(installed && installed !== saved, 'mapStackTraces formats stacks itself');
  try {
    fail();
    assert.fail('fail() returned');
  } catch (e) {
    assert.match((e as Error).stack ?? '', new RegExp(`^    at fail \\(${file.replace(/[.]/g, '\\.')}:\\d+:\\d+\\)$`, 'm'));
  }
});
