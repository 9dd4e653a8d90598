// test-gate: shared (CPU only; see test/support/gate.ts)
/**
 * Golden tests: for each case directory under test/golden/cases, the exact tc batch and mapping
 * list the compiler produces. A missing expected file fails. Regenerate after an intended change
 * with `UPDATE_GOLDEN=1 scripts/run-tests test/golden` (refused when CI is set) and review the diff
 * like code. GOLDEN_CASES_DIR points the suite at another cases directory (test/golden/guard.test.ts).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { renderMappings } from '../../lib/compile/mappings.ts';
import { parsePlannerState } from '../../lib/plan/plannerState.ts';
import { compareGolden, goldenUpdate } from '../support/golden.ts';
import { pipeline, planConfig, readInputs } from '../support/plan.ts';

// Refused under CI: throws here, before any case runs, so the file fails and nothing is written.
goldenUpdate();

const ownCases = join(import.meta.dirname, 'cases');
const casesDir = process.env.GOLDEN_CASES_DIR || ownCases;

const cases = readdirSync(casesDir).filter((d) => existsSync(join(casesDir, d, 'network.json'))).sort();
test('there are at least 10 golden cases', { skip: casesDir !== ownCases && `GOLDEN_CASES_DIR=${casesDir}` }, () =>
  assert.ok(cases.length >= 10, `only ${cases.length} case directories (with a network.json) in ${casesDir}`),
);

for (const name of cases) {
  test(`golden: ${name}`, () => {
    const dir = join(casesDir, name);
    const overrides = existsSync(join(dir, 'config.json')) ? JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8')) : {};
    const state = existsSync(join(dir, 'planner_state.json')) ? parsePlannerState(readFileSync(join(dir, 'planner_state.json'), 'utf8')).state : undefined;
    const r = pipeline(readInputs(dir), { config: planConfig(overrides), previousState: state });
    assert.ok(r.ok, `pipeline failed: ${JSON.stringify(r.ok ? '' : r.stage === 'validate' ? r.validation.issues : r.errors)}`);
    compareGolden(join(dir, 'expected.tc.txt'), r.tcLines.join('\n') + '\n');
    compareGolden(join(dir, 'expected.mappings.txt'), renderMappings(r.mappings));
    const warnings = r.warnings.map((w) => `${w.severity} ${w.code} ${w.file}:${w.line ?? ''} ${w.column ?? ''}`).join('\n');
    compareGolden(join(dir, 'expected.warnings.txt'), warnings + (warnings ? '\n' : ''));
  });
}
