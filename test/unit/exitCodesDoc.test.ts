// test-gate: shared (CPU only; see test/support/gate.ts)
/** README's exit-code table of LibreQoS lists exactly the codes lib/shaping/exitCodes.ts returns. */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { EXIT } from '../../lib/shaping/exitCodes.ts';
import { repoRoot } from '../support/paths.ts';

test('README: the exit-code table of LibreQoS has one row per EXIT code, and no other', () => {
  const readme = readFileSync(join(repoRoot, 'README.md'), 'utf8');
  const at = readme.indexOf('Exit codes of `LibreQoS`');
  assert.ok(at >= 0, 'README has no "Exit codes of `LibreQoS`" table');
  const table = readme.slice(at).split('\n\n')[1]!;
  const documented = [...table.matchAll(/^\| (\d+) \|/gm)].map((m) => Number(m[1])).sort((a, b) => a - b);
  assert.deepEqual(documented, [...new Set(Object.values(EXIT))].sort((a, b) => a - b));
});
