// test-gate: shared (CPU only; see test/support/gate.ts)
/**
 * The golden suites cannot bless their own output: a missing golden fails (and is not created), and
 * UPDATE_GOLDEN=1 is refused when CI is set (the run fails, nothing is written) — for the compiler
 * goldens (test/golden/golden.test.ts, run as a child process on a temporary cases directory) and
 * the CRM integration goldens (test/integrations/helpers.ts checkGolden, on a temporary golden root).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { cpSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { execa } from 'execa';
import { repoRoot } from '../support/paths.ts';
import { testDir } from '../support/workspace.ts';

const CASES = join(repoRoot, 'test', 'golden', 'cases');
const CRM_GOLDEN = join(repoRoot, 'test', 'fixtures', 'crm', 'golden');

/** This process's environment without the node:test runner's own marker (a child runs its own tests). */
function childEnv(env: Record<string, string>): Record<string, string | undefined> {
  const { NODE_TEST_CONTEXT: _ignored, ...rest } = process.env;
  return { ...rest, CI: '', UPDATE_GOLDEN: '', ...env };
}

/** Runs the compiler golden suite on `casesDir` with `env` (CI and UPDATE_GOLDEN cleared unless given). */
async function goldenSuite(casesDir: string, env: Record<string, string>) {
  const r = await execa('node', ['--import', 'tsx', '--test', '--test-reporter=spec', join(repoRoot, 'test', 'golden', 'golden.test.ts')], {
    cwd: repoRoot,
    reject: false,
    all: true,
    extendEnv: false,
    env: childEnv({ GOLDEN_CASES_DIR: casesDir, ...env }),
  });
  return { code: r.exitCode, out: String(r.all) };
}

/** A cases directory holding copies of the named repository cases. */
function casesCopy(t: { after(fn: () => void): void }, names: string[]): string {
  const dir = testDir(t, 'lqos-golden-cases-');
  for (const n of names) cpSync(join(CASES, n), join(dir, n), { recursive: true });
  return dir;
}

test('compiler goldens: the harness passes on an intact copy of a case (control)', async (t) => {
  const dir = casesCopy(t, ['02-flat']);
  const r = await goldenSuite(dir, {});
  assert.equal(r.code, 0, r.out);
  assert.match(r.out, /✔ golden: 02-flat/);
});

test('compiler goldens: a missing expected file fails, names the file and how to create it, and is not created', async (t) => {
  const dir = casesCopy(t, ['01-hierarchical', '02-flat']);
  const missing = join(dir, '01-hierarchical', 'expected.tc.txt');
  rmSync(missing);
  const r = await goldenSuite(dir, {});
  assert.notEqual(r.code, 0, `the suite passed with ${missing} missing:\n${r.out}`);
  assert.match(r.out, /✖ golden: 01-hierarchical/);
  assert.ok(r.out.includes(`golden ${missing} is missing`), r.out);
  assert.ok(r.out.includes('UPDATE_GOLDEN=1 scripts/run-tests test/golden'), `the failure does not say how to create it:\n${r.out}`);
  assert.match(r.out, /✔ golden: 02-flat/);
  assert.ok(!existsSync(missing), 'the suite wrote the missing golden');
});

test('compiler goldens: UPDATE_GOLDEN=1 with CI set fails loudly and rewrites nothing', async (t) => {
  const dir = casesCopy(t, ['02-flat']);
  const stale = join(dir, '02-flat', 'expected.tc.txt');
  writeFileSync(stale, 'stale golden\n');
  for (const ci of ['1', 'true']) {
    const r = await goldenSuite(dir, { CI: ci, UPDATE_GOLDEN: '1' });
    assert.notEqual(r.code, 0, `CI=${ci} UPDATE_GOLDEN=1 passed:\n${r.out}`);
    assert.ok(r.out.includes('UPDATE_GOLDEN=1 is refused because CI is set'), `no refusal message (CI=${ci}):\n${r.out}`);
    assert.doesNotMatch(r.out, /✔ golden: /, 'cases ran although the update was refused');
    assert.equal(readFileSync(stale, 'utf8'), 'stale golden\n', `CI=${ci}: the golden was rewritten`);
  }
  // Outside CI the same command does rewrite it (the refusal is what kept it above).
  const dev = await goldenSuite(dir, { UPDATE_GOLDEN: '1' });
  assert.equal(dev.code, 0, dev.out);
  assert.equal(readFileSync(stale, 'utf8'), readFileSync(join(CASES, '02-flat', 'expected.tc.txt'), 'utf8'));
});

/** Runs checkGolden(name, outDir, root) of test/integrations/helpers.ts in a child process. */
async function crmCheck(t: { after(fn: () => void): void }, root: string, name: string, env: Record<string, string>) {
  const dir = testDir(t, 'lqos-golden-crm-');
  const outDir = join(dir, 'out');
  mkdirSync(outDir);
  for (const f of ['network.json', 'ShapedDevices.csv']) cpSync(join(CRM_GOLDEN, 'netzur', f), join(outDir, f));
  const script = join(dir, 'check.ts');
  writeFileSync(
    script,
    `import { checkGolden } from ${JSON.stringify(join(repoRoot, 'test', 'integrations', 'helpers.ts'))};\ncheckGolden(${JSON.stringify(name)}, ${JSON.stringify(outDir)}, ${JSON.stringify(root)});\nconsole.log('golden check passed');\n`,
  );
  const r = await execa('node', ['--import', 'tsx', script], { cwd: repoRoot, reject: false, all: true, extendEnv: false, env: childEnv(env) });
  return { code: r.exitCode, out: String(r.all) };
}

test('CRM goldens: a missing golden fails naming the command; UPDATE_GOLDEN=1 with CI set is refused and writes nothing', async (t) => {
  const root = testDir(t, 'lqos-golden-root-');
  const missing = await crmCheck(t, root, 'netzur', {});
  assert.notEqual(missing.code, 0, missing.out);
  assert.ok(missing.out.includes(`golden ${join(root, 'netzur', 'network.json')} is missing`), missing.out);
  assert.ok(missing.out.includes('UPDATE_GOLDEN=1 scripts/run-tests test/integrations/netzur.test.ts'), missing.out);

  const refused = await crmCheck(t, root, 'netzur', { CI: '1', UPDATE_GOLDEN: '1' });
  assert.notEqual(refused.code, 0, refused.out);
  assert.ok(refused.out.includes('UPDATE_GOLDEN=1 is refused because CI is set'), refused.out);
  assert.deepEqual(readdirSync(root), [], 'a golden was written under CI');

  // Control: outside CI the update writes the pair, and then the plain check passes.
  const written = await crmCheck(t, root, 'netzur', { UPDATE_GOLDEN: '1' });
  assert.equal(written.code, 0, written.out);
  assert.deepEqual(readdirSync(join(root, 'netzur')).sort(), ['ShapedDevices.csv', 'network.json']);
  const checked = await crmCheck(t, root, 'netzur', {});
  assert.equal(checked.code, 0, checked.out);
  assert.match(checked.out, /golden check passed/);
});
