/**
 * Golden tests: for each case directory under test/golden/cases, the exact tc batch and mapping
 * list the compiler produces. Regenerate after an intended change with:
 *   UPDATE_GOLDEN=1 scripts/run-tests test/golden
 * and review the diff like code.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { renderMappings } from '../../lib/compile/mappings.ts';
import { parsePlannerState } from '../../lib/plan/plannerState.ts';
import { pipeline, planConfig, readInputs } from '../support/plan.ts';

const casesDir = join(import.meta.dirname, 'cases');
const update = process.env.UPDATE_GOLDEN === '1';

function compare(file: string, actual: string) {
  if (update || !existsSync(file)) {
    writeFileSync(file, actual);
    return;
  }
  assert.equal(actual, readFileSync(file, 'utf8'), `${file} differs (UPDATE_GOLDEN=1 to regenerate after review)`);
}

const cases = readdirSync(casesDir).filter((d) => existsSync(join(casesDir, d, 'network.json'))).sort();
test('there are at least 10 golden cases', () => assert.ok(cases.length >= 10, `only ${cases.length}`));

for (const name of cases) {
  test(`golden: ${name}`, () => {
    const dir = join(casesDir, name);
    const overrides = existsSync(join(dir, 'config.json')) ? JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8')) : {};
    const state = existsSync(join(dir, 'planner_state.json')) ? parsePlannerState(readFileSync(join(dir, 'planner_state.json'), 'utf8')).state : undefined;
    const r = pipeline(readInputs(dir), { config: planConfig(overrides), previousState: state });
    assert.ok(r.ok, `pipeline failed: ${JSON.stringify(r.ok ? '' : r.stage === 'validate' ? r.validation.issues : r.errors)}`);
    compare(join(dir, 'expected.tc.txt'), r.tcLines.join('\n') + '\n');
    compare(join(dir, 'expected.mappings.txt'), renderMappings(r.mappings));
    const warnings = r.warnings.map((w) => `${w.severity} ${w.code} ${w.file}:${w.line ?? ''} ${w.column ?? ''}`).join('\n');
    compare(join(dir, 'expected.warnings.txt'), warnings + (warnings ? '\n' : ''));
  });
}
