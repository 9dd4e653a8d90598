// test-gate: shared (CPU only; see test/support/gate.ts)
/**
 * The whole tree typechecks (strict, noUnusedLocals), and so does the web UI against lib/api: a
 * server payload and the UI's reading of it cannot drift apart, and no unused import or local stays.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { execa } from 'execa';
import { repoRoot } from '../support/paths.ts';

const bin = (name: string) => join(repoRoot, 'node_modules', '.bin', name);

test('tsc --noEmit (lib, bin, dataplane, test, bench, lab, scripts): no errors', async () => {
  const r = await execa(bin('tsc'), ['--noEmit', '-p', 'tsconfig.json'], { cwd: repoRoot, reject: false, all: true });
  assert.equal(r.exitCode, 0, r.all);
});

test('vue-tsc --noEmit (webui against lib/api): no errors', async () => {
  const r = await execa(bin('vue-tsc'), ['--noEmit', '-p', 'webui/tsconfig.json'], { cwd: repoRoot, reject: false, all: true });
  assert.equal(r.exitCode, 0, r.all);
});
