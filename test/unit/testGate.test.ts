// test-gate: shared (CPU only; see test/support/gate.ts)
/**
 * scripts/run-tests' file gate (test/support/gate.ts), on throwaway test files run by node:test with
 * the gate preloaded: two `test-gate: shared` files overlap, an unmarked file runs alone, and a file
 * killed with SIGKILL while it holds the lock does not keep it from the next file.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { execa } from 'execa';
import { repoRoot } from '../support/paths.ts';
import { testDir } from '../support/workspace.ts';

function testFile(dir: string, name: string, shared: boolean, body = ''): string {
  const path = join(dir, `${name}.test.mjs`);
  const log = join(dir, 'times.log');
  writeFileSync(
    path,
    `${shared ? '// test-gate: shared\n' : ''}import { test } from 'node:test';\nimport { appendFileSync } from 'node:fs';\n` +
      `test('${name}', async () => {\n  appendFileSync(${JSON.stringify(log)}, '${name} start ' + Date.now() + '\\n');\n${body}` +
      `  await new Promise((r) => setTimeout(r, 1500));\n  appendFileSync(${JSON.stringify(log)}, '${name} end ' + Date.now() + '\\n');\n});\n`,
  );
  return path;
}

/** node:test on `files` with the gate preloaded (a run of its own, not a subtest of this file). */
function runGated(dir: string, files: string[], concurrency: number, timeout?: number) {
  return execa('node', ['--import', 'tsx', '--import', join(repoRoot, 'test/support/gate.ts'), '--test', `--test-concurrency=${concurrency}`, '--test-reporter=tap', ...files], {
    cwd: repoRoot,
    reject: false,
    all: true,
    timeout,
    // node:test skips running files when NODE_TEST_CONTEXT says it is inside a test already.
    extendEnv: false,
    env: { ...process.env, NODE_TEST_CONTEXT: undefined, LQOS_TEST_GATE: join(dir, 'gate.lock') },
  });
}

function spans(dir: string): Map<string, { start: number; end: number }> {
  const out = new Map<string, { start: number; end: number }>();
  for (const line of readFileSync(join(dir, 'times.log'), 'utf8').trim().split('\n')) {
    const [name, what, ms] = line.split(' ');
    const s = out.get(name!) ?? { start: 0, end: 0 };
    s[what as 'start' | 'end'] = Number(ms);
    out.set(name!, s);
  }
  return out;
}

test('the gate: two shared files run together, an unmarked file alone', { timeout: 60_000 }, async (t) => {
  const dir = testDir(t, 'lqos-gate-test-');
  const r = await runGated(dir, [testFile(dir, 'a', true), testFile(dir, 'b', true), testFile(dir, 'alone', false)], 3);
  assert.equal(r.exitCode, 0, r.all);
  const s = spans(dir);
  const all = [...s].map(([n, x]) => `${n} ${x.start}–${x.end}`).join(', ');
  assert.deepEqual([...s.keys()].sort(), ['a', 'alone', 'b'], `${all}\n${r.all}`);
  const overlap = (x: string, y: string) => s.get(x)!.start < s.get(y)!.end && s.get(y)!.start < s.get(x)!.end;
  assert.ok(overlap('a', 'b'), `the two shared files ran one after the other: ${all}`);
  assert.ok(!overlap('alone', 'a') && !overlap('alone', 'b'), `the unmarked file shared the machine: ${all}`);
});

test('the gate: a file killed with SIGKILL while it holds the lock does not keep it from the next file', { timeout: 60_000 }, async (t) => {
  const dir = testDir(t, 'lqos-gate-test-');
  const killed = await runGated(dir, [testFile(dir, 'killed', false, "  process.kill(process.pid, 'SIGKILL');\n")], 1);
  assert.match(killed.all ?? '', /signal: 'SIGKILL'/, 'the first file was killed');
  const next = await runGated(dir, [testFile(dir, 'next', false)], 1, 20_000);
  assert.equal(next.exitCode, 0, `the next file did not get the lock: ${next.all}`);
  assert.ok(spans(dir).get('next')!.end > 0);
});
