// test-gate: shared (CPU only; see test/support/gate.ts)
/**
 * `.ci/run`: it runs exactly the README's setup and test commands, and it fails (exit 1, naming the
 * files) when the run leaves the working tree dirty — tried on a scratch git repository whose
 * `npm test` writes a file on demand.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, copyFileSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { execa } from 'execa';
import { repoRoot } from '../support/paths.ts';
import { testDir } from '../support/workspace.ts';

const CI_RUN = join(repoRoot, '.ci', 'run');

/** The command lines of the README's quick-start block (comments stripped). */
function readmeCommands(): string[] {
  const readme = readFileSync(join(repoRoot, 'README.md'), 'utf8');
  const section = readme.slice(readme.indexOf('## Quick start'));
  const block = /```sh\n([\s\S]*?)```/.exec(section);
  assert.ok(block, 'README.md has no ```sh block under "## Quick start"');
  return block[1]!.split('\n').map((l) => l.replace(/#.*$/, '').trim()).filter(Boolean);
}

test('.ci/run runs exactly the README setup and test commands (the lab, the main job, left out)', () => {
  const all = readmeCommands();
  assert.ok(all.length >= 2, `README quick start: ${JSON.stringify(all)}`);
  assert.match(all[0]!, /^\.\/scripts\/setup && npm run lab$/, 'README quick start line 1: setup, then the main job');
  const readme = [all[0]!.replace(/ && npm run lab$/, ''), ...all.slice(1)];
  const ci = readFileSync(CI_RUN, 'utf8').split('\n').map((l) => l.trim()).filter((l) => /^(\.\/scripts\/|npm )/.test(l));
  assert.deepEqual(ci, readme, '.ci/run and the README quick start disagree: make .ci/run run exactly the README commands');
});

/** A scratch repository with .ci/run, a no-op scripts/setup, and an npm test that writes $LEAVE (if set). */
async function scratchRepo(t: { after(fn: () => void): void }): Promise<string> {
  const dir = testDir(t, 'lqos-ci-run-');
  mkdirSync(join(dir, '.ci'));
  mkdirSync(join(dir, 'scripts'));
  copyFileSync(CI_RUN, join(dir, '.ci', 'run'));
  writeFileSync(join(dir, 'scripts', 'setup'), '#!/bin/sh\nexit 0\n');
  chmodSync(join(dir, 'scripts', 'setup'), 0o755);
  const write = `node -e "if (process.env.LEAVE) require('fs').writeFileSync(process.env.LEAVE, String(Date.now()))"`;
  writeFileSync(join(dir, 'package.json'), JSON.stringify({ name: 'scratch', private: true, scripts: { lab: 'true', test: write } }, null, 2));
  writeFileSync(join(dir, '.gitignore'), 'test-output/\n');
  writeFileSync(join(dir, 'tracked.txt'), 'committed\n');
  const git = (...args: string[]) => execa('git', ['-c', 'user.name=t', '-c', 'user.email=t@example.invalid', ...args], { cwd: dir });
  await git('init', '-q');
  await git('add', '-A');
  await git('commit', '-q', '-m', 'scratch');
  return dir;
}

async function ciRun(dir: string, leave?: string) {
  const r = await execa(join(dir, '.ci', 'run'), [], { cwd: dir, reject: false, all: true, env: leave ? { LEAVE: leave } : {} });
  return { code: r.exitCode, out: String(r.all) };
}

test('.ci/run passes when the tests leave the tree clean (also when they write to an ignored path)', async (t) => {
  const dir = await scratchRepo(t);
  const clean = await ciRun(dir);
  assert.equal(clean.code, 0, clean.out);
  assert.match(clean.out, /the working tree is as it was/);
  mkdirSync(join(dir, 'test-output'));
  const ignored = await ciRun(dir, 'test-output/x.txt');
  assert.equal(ignored.code, 0, ignored.out);
});

test('.ci/run fails naming the file when the tests leave a new file or change a tracked one', async (t) => {
  const dir = await scratchRepo(t);
  const stray = await ciRun(dir, 'stray.txt');
  assert.equal(stray.code, 1, stray.out);
  assert.match(stray.out, /FAILED: the run left the working tree dirty/);
  assert.match(stray.out, /\?\? stray\.txt/);

  const fresh = await scratchRepo(t);
  const tracked = await ciRun(fresh, 'tracked.txt');
  assert.equal(tracked.code, 1, tracked.out);
  assert.match(tracked.out, / M tracked\.txt/);
});

test('.ci/run on an already dirty tree: fails only when the run changes it further', async (t) => {
  const dir = await scratchRepo(t);
  writeFileSync(join(dir, 'tracked.txt'), 'edited before the run\n');
  const same = await ciRun(dir);
  assert.equal(same.code, 0, same.out);
  assert.match(same.out, /already dirty/);
  const changed = await ciRun(dir, 'tracked.txt');
  assert.equal(changed.code, 1, changed.out);
  assert.match(changed.out, /tracked\.txt/);
});
