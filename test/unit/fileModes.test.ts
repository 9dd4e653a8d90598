// test-gate: shared (CPU only; see test/support/gate.ts)
/** lib/util/fileModes.ts: which state directories lqosd narrows, and how. */
import assert from 'node:assert/strict';
import { chmodSync, mkdirSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { ensureStateDir, inspectStateDir, isStateEntry, narrowMode, STATE_DIR_MODE } from '../../lib/util/fileModes.ts';
import { readRecovering } from '../../lib/util/recoverFile.ts';
import { testDir } from '../support/workspace.ts';

const mode = (p: string) => statSync(p).mode & 0o7777;

test('a damaged state file set aside by recoverFile (.corrupt-<time>) is lqos state: the directory is still its own', (t) => {
  const dir = join(testDir(t, 'lqos-modes-'), 'state');
  mkdirSync(dir);
  chmodSync(dir, 0o755);
  const urgent = join(dir, 'urgent_issues.json');
  writeFileSync(urgent, '{"truncated":');
  const r = readRecovering(urgent, { parse: (s) => JSON.parse(s) as unknown, what: 'urgent issue list', onLoss: 'starting empty', now: () => new Date('2026-01-02T03:04:05.678Z') });
  assert.equal(r.setAside, `${urgent}.corrupt-2026-01-02T03-04-05-678Z`);
  assert.deepEqual(inspectStateDir(dir), { action: 'narrowed', from: 0o755 });
  // Every state file name, with or without a backup suffix before it; not other names.
  for (const n of ['lqusers.toml.corrupt-2025-12-31T23-59-59-000Z', 'web_sessions.json.corrupt-2026-01-02T03-04-05-678Z', 'urgent_issues.json.bak.1']) assert.ok(isStateEntry(n), n);
  for (const n of ['notes.txt.corrupt-2026-01-02T03-04-05-678Z', 'urgent_issues.json.corrupt-', 'urgent_issues.json.corrupt-yesterday']) assert.ok(!isStateEntry(n), n);
  assert.deepEqual(ensureStateDir(dir), { action: 'narrowed', from: 0o755 });
  assert.equal(mode(dir), 0o750);
});

test('setuid, setgid and sticky bits are not permissions: a 2750 directory is not wider than 0750, and narrowing keeps them', (t) => {
  const base = testDir(t, 'lqos-modes-');
  const setgid = join(base, 'setgid');
  mkdirSync(setgid);
  chmodSync(setgid, 0o2750);
  assert.deepEqual(inspectStateDir(setgid, STATE_DIR_MODE), { action: 'unchanged' });
  assert.deepEqual(ensureStateDir(setgid, STATE_DIR_MODE), { action: 'unchanged' });
  assert.equal(mode(setgid), 0o2750, 'setgid kept');

  // Wider permission bits are narrowed, the setgid bit kept.
  chmodSync(setgid, 0o2775);
  assert.deepEqual(ensureStateDir(setgid, STATE_DIR_MODE), { action: 'narrowed', from: 0o2775 });
  assert.equal(mode(setgid), 0o2750);

  // A sticky directory within 0750 is left alone too (sticky only matters when it would need narrowing).
  const sticky = join(base, 'sticky');
  mkdirSync(sticky);
  chmodSync(sticky, 0o1750);
  assert.deepEqual(ensureStateDir(sticky, STATE_DIR_MODE), { action: 'unchanged' });
  chmodSync(sticky, 0o1777);
  assert.deepEqual(inspectStateDir(sticky, STATE_DIR_MODE), { action: 'left', mode: 0o1777, sticky: true, foreign: [] });

  // Files: the same rule.
  const f = join(base, 'data.csv');
  writeFileSync(f, '');
  chmodSync(f, 0o2640);
  narrowMode(f, 0o640);
  assert.equal(mode(f), 0o2640, 'not wider: untouched');
  chmodSync(f, 0o2664);
  narrowMode(f, 0o640);
  assert.equal(mode(f), 0o2640);
});
