// test-gate: shared (CPU only; see test/support/gate.ts)
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { RecordingLog } from '../../lib/util/logRecords.ts';
import { parseUsersFile, UserError, UserStore } from '../../lib/web/users.ts';
import { testDir } from '../support/workspace.ts';

test('users file: upstream role spellings; anything but admin is read-only; malformed files throw', () => {
  const users = parseUsersFile(`version = 2
auth_epoch = 7
[[users]]
username = "boss"
password_hash = "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA"
role = "Admin"
[[users]]
username = "looker"
password_hash = "x"
role = "ReadOnly"
[[users]]
username = "odd"
password_hash = "x"
role = "superuser"
`);
  assert.deepEqual(
    users.map((u) => [u.username, u.role]),
    [
      ['boss', 'admin'],
      ['looker', 'read_only'],
      ['odd', 'read_only'],
    ],
  );
  // Only a missing file means "no users yet": an existing file without users is malformed.
  assert.throws(() => parseUsersFile(''), /empty/);
  assert.throws(() => parseUsersFile(' \n\t\n'), /empty/);
  assert.throws(() => parseUsersFile('# lqos-ts web UI users\n'), /no users/);
  assert.throws(() => parseUsersFile('users = []\n'), /no users/);
  assert.throws(() => parseUsersFile('users = 3'));
  assert.throws(() => parseUsersFile('[[users]]\nusername = "a"\n'));
  assert.throws(() => parseUsersFile('[[users]]\nusername = "a"\npassword_hash = "x"\n[[users]]\nusername = "a"\npassword_hash = "y"\n'));
});

test('users store: only a missing file is a first run; empty, truncated or user-less files are corrupt', async (t) => {
  const dir = testDir(t, 'lqos-users-');
  const file = join(dir, 'lqusers.toml');
  const log = new RecordingLog();
  const store = new UserStore(file, log);
  assert.equal(store.state(), 'empty');
  await store.createFirstAdmin('admin', 'correct-horse-1');
  assert.equal(store.state(), 'ready');
  assert.equal(statSync(file).mode & 0o777, 0o600);
  // Every change keeps the previous file as a backup (what the corrupt message says to restore), 0600 too.
  await store.add('viewer', 'viewer-pass-1', 'read_only');
  const good = readFileSync(file, 'utf8');
  assert.equal(statSync(`${file}.bak`).mode & 0o777, 0o600);
  assert.deepEqual(parseUsersFile(readFileSync(`${file}.bak`, 'utf8')).map((u) => u.username), ['admin']);

  const broken: [string, string][] = [
    ['empty', ''],
    ['whitespace only', '  \n\n'],
    ['cut inside the hash', good.slice(0, good.indexOf('$argon2id$') + 12)],
    ['cut before the password hash', good.slice(0, good.indexOf('password_hash'))],
    ['no users', '# lqos-ts web UI users\n'],
  ];
  for (const [what, text] of broken) {
    writeFileSync(file, text);
    assert.equal(store.state(), 'corrupt', what);
    assert.equal(await store.verify('admin', 'correct-horse-1'), null, `${what}: no login`);
    await assert.rejects(store.createFirstAdmin('intruder', 'intruder-pass'), (e: Error) => e instanceof UserError && e.code === 'auth_unavailable', what);
    assert.equal(readFileSync(file, 'utf8'), text, `${what}: the file is left alone`);
    const msg = store.corruptMessage();
    assert.ok(msg.includes(file), msg);
    assert.match(msg, /restore it from its backup \(.*lqusers\.toml\.bak\*\) or remove it/);
  }
  // Each broken version was reported once, at error level.
  const reports = log.records.filter((r) => r.code === 'web-users-corrupt');
  assert.equal(reports.length, broken.length);
  assert.ok(reports.every((r) => r.level === 'error'));

  writeFileSync(file, good);
  assert.equal(store.state(), 'ready');
  assert.deepEqual(await store.verify('admin', 'correct-horse-1'), { username: 'admin', role: 'admin' });
  rmSync(file);
  assert.equal(store.state(), 'empty', 'removing the file starts first run again');
});
