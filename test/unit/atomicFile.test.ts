// test-gate: shared (CPU only; see test/support/gate.ts)
/**
 * lib/util/atomicFile.ts: rotated backups (names, order, contents, hard links), modes (explicit,
 * kept, default, never widened on backups), no temp file left after a failure, a disk-full error
 * that names the file and the mount and leaves everything unchanged, the directory fsync (and none
 * for `durable: false`), the set-of-files write, and lib/util/recoverFile.ts (set aside + newest readable backup).
 */
import { test, mock } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { join } from 'node:path';
import {
  AtomicWriteError,
  backupPaths,
  copyFileAtomic,
  DEFAULT_BACKUPS,
  DiskFullError,
  writeFileAtomic,
  writeFilesAtomic,
} from '../../lib/util/atomicFile.ts';
import { readRecovering } from '../../lib/util/recoverFile.ts';
import { testDir } from '../support/workspace.ts';

const read = (p: string) => fs.readFileSync(p, 'utf8');
const modeOf = (p: string) => fs.statSync(p).mode & 0o7777;
const temps = (dir: string) => fs.readdirSync(dir).filter((n) => n.includes('.tmp-'));

/** Every file of `dir` with its content. */
function snapshot(dir: string): Record<string, string> {
  return Object.fromEntries(fs.readdirSync(dir).sort().map((n) => [n, read(join(dir, n))]));
}

function enospc(syscall: string): NodeJS.ErrnoException {
  return Object.assign(new Error(`ENOSPC: no space left on device, ${syscall}`), { code: 'ENOSPC', errno: -28, syscall });
}

test('backup: true keeps DEFAULT_BACKUPS rotated backups, newest in .bak, oldest dropped', (t) => {
  const dir = testDir(t, 'lqos-atomic-');
  const f = join(dir, 'state.json');
  assert.equal(DEFAULT_BACKUPS, 5);
  for (let v = 1; v <= 8; v++) writeFileAtomic(f, `v${v}\n`, { backup: true });
  assert.equal(read(f), 'v8\n');
  assert.deepEqual(backupPaths(f).map(read), ['v7\n', 'v6\n', 'v5\n', 'v4\n', 'v3\n']);
  assert.deepEqual(backupPaths(f), [`${f}.bak`, `${f}.bak.1`, `${f}.bak.2`, `${f}.bak.3`, `${f}.bak.4`]);
  assert.deepEqual(fs.readdirSync(dir).sort(), ['state.json', ...['.bak', '.bak.1', '.bak.2', '.bak.3', '.bak.4'].map((s) => `state.json${s}`)].sort());
  // The backup is the old file itself (a hard link), not a copy: no space needed.
  const before = fs.statSync(f).ino;
  writeFileAtomic(f, 'v9\n', { backup: true });
  assert.equal(fs.statSync(`${f}.bak`).ino, before);
  assert.notEqual(fs.statSync(f).ino, before);
});

test('backup: N keeps N (1 = only .bak); no backup option keeps none; the first write has nothing to back up', (t) => {
  const dir = testDir(t, 'lqos-atomic-');
  const a = join(dir, 'a');
  for (const v of ['1', '2', '3', '4']) writeFileAtomic(a, v, { backup: 3 });
  assert.deepEqual([read(a), read(`${a}.bak`), read(`${a}.bak.1`), read(`${a}.bak.2`)], ['4', '3', '2', '1']);
  assert.ok(!fs.existsSync(`${a}.bak.3`));
  const b = join(dir, 'b');
  writeFileAtomic(b, '1', { backup: 1 });
  assert.ok(!fs.existsSync(`${b}.bak`), 'nothing to back up yet');
  for (const v of ['2', '3']) writeFileAtomic(b, v, { backup: 1 });
  assert.deepEqual([read(b), read(`${b}.bak`)], ['3', '2']);
  assert.ok(!fs.existsSync(`${b}.bak.1`));
  const c = join(dir, 'c');
  for (const v of ['1', '2']) writeFileAtomic(c, v);
  assert.deepEqual(fs.readdirSync(dir).filter((n) => n.startsWith('c')), ['c']);
});

test('modes: explicit, else the existing file\'s, else 0644 (not narrowed by the umask); backups never wider than an explicit mode', (t) => {
  const dir = testDir(t, 'lqos-atomic-');
  const old = process.umask(0o077);
  try {
    const f = join(dir, 'f');
    writeFileAtomic(f, 'a');
    assert.equal(modeOf(f), 0o644);
    fs.chmodSync(f, 0o640);
    writeFileAtomic(f, 'b');
    assert.equal(modeOf(f), 0o640, 'the existing mode is kept');
    const s = join(dir, 'secret');
    writeFileAtomic(s, 'v1', { mode: 0o644, backup: true });
    writeFileAtomic(s, 'v2', { mode: 0o644, backup: true });
    assert.equal(modeOf(`${s}.bak`), 0o644);
    writeFileAtomic(s, 'v3', { mode: 0o600, backup: true });
    assert.equal(modeOf(s), 0o600);
    for (const b of [`${s}.bak`, `${s}.bak.1`]) assert.equal(modeOf(b), 0o600, `${b} narrowed to the new mode`);
    // A wider explicit mode does not widen the backups.
    writeFileAtomic(s, 'v4', { mode: 0o640, backup: true });
    assert.equal(modeOf(s), 0o640);
    assert.equal(modeOf(`${s}.bak`), 0o600);
  } finally {
    process.umask(old);
  }
});

test('a failed write leaves no temp file and the file and backups unchanged', (t) => {
  const dir = testDir(t, 'lqos-atomic-');
  const f = join(dir, 'f');
  for (const v of ['1', '2', '3']) writeFileAtomic(f, v, { backup: true });
  const before = snapshot(dir);
  // The rename fails: the target became a directory.
  const d = join(dir, 'adir');
  fs.mkdirSync(join(d, 'x'), { recursive: true });
  assert.throws(() => writeFileAtomic(d, 'data'), (e: unknown) => e instanceof AtomicWriteError && /cannot write .*adir \(renaming the temp file over it\)/.test(e.message));
  assert.deepEqual(temps(dir), []);
  // The fsync of the temp file fails (EIO).
  const fsync = mock.method(fs, 'fsyncSync', () => {
    throw Object.assign(new Error('EIO: i/o error, fsync'), { code: 'EIO' });
  });
  try {
    assert.throws(() => writeFileAtomic(f, 'new', { backup: true }), (e: unknown) => e instanceof AtomicWriteError && e.code === 'EIO' && e.message.includes(`${f} and its backups are unchanged`));
  } finally {
    fsync.mock.restore();
  }
  fs.rmSync(d, { recursive: true });
  assert.deepEqual(snapshot(dir), before);
  assert.deepEqual(temps(dir), []);
});

test('disk full while writing: DiskFullError names the file and the mount; file, backups and directory unchanged', (t) => {
  const dir = testDir(t, 'lqos-atomic-');
  const f = join(dir, 'applied_plan.json');
  for (const v of ['1', '2', '3']) writeFileAtomic(f, v, { backup: true });
  const before = snapshot(dir);
  const write = mock.method(fs, 'writeFileSync', () => {
    throw enospc('write');
  });
  let err: unknown;
  try {
    writeFileAtomic(f, 'x'.repeat(10_000), { backup: true });
  } catch (e) {
    err = e;
  } finally {
    write.mock.restore();
  }
  assert.ok(err instanceof DiskFullError, String(err));
  assert.equal(err.code, 'ENOSPC');
  assert.equal(err.path, f);
  assert.ok(err.mount.startsWith('/'), err.mount);
  assert.match(err.message, new RegExp(`^cannot write ${f}: the disk holding ${dir} \\(mount ${err.mount}, \\d+ KiB free\\) is full \\(ENOSPC\\); ${f} and its backups are unchanged — free space on ${err.mount}`));
  assert.deepEqual(snapshot(dir), before);
});

test('the directory is fsynced after the rename', (t) => {
  const dir = testDir(t, 'lqos-atomic-');
  const f = join(dir, 'f');
  const dirIno = fs.statSync(dir).ino;
  const synced: { dir: boolean; exists: boolean }[] = [];
  const real = fs.fsyncSync;
  const spy = mock.method(fs, 'fsyncSync', (fd: number) => {
    const st = fs.fstatSync(fd);
    // At the directory fsync the new file must already be in place (renamed before).
    synced.push({ dir: st.isDirectory() && st.ino === dirIno, exists: fs.existsSync(f) });
    real(fd);
  });
  try {
    writeFileAtomic(f, 'data');
  } finally {
    spy.mock.restore();
  }
  assert.deepEqual(synced, [
    { dir: false, exists: false },
    { dir: true, exists: true },
  ]);
});

test('durable: false (debug outputs) renames into place without an fsync; a set with durable files still flushes their directory', (t) => {
  const dir = testDir(t, 'lqos-atomic-');
  const sub = join(dir, 'debug');
  fs.mkdirSync(sub);
  const dirIno = fs.statSync(dir).ino;
  const synced: string[] = [];
  const real = fs.fsyncSync;
  const spy = mock.method(fs, 'fsyncSync', (fd: number) => {
    const st = fs.fstatSync(fd);
    synced.push(st.isDirectory() ? (st.ino === dirIno ? 'dir' : 'debug dir') : 'file');
    real(fd);
  });
  try {
    writeFileAtomic(join(sub, 'a.txt'), 'old a', { durable: false });
    writeFileAtomic(join(sub, 'a.txt'), 'new a', { durable: false });
    assert.deepEqual(synced, [], 'nothing fsynced for a non-durable file');
    writeFilesAtomic([
      { path: join(sub, 'b.txt'), data: 'b', opts: { durable: false } },
      { path: join(dir, 'state.json'), data: '{}' },
    ]);
    assert.deepEqual(synced, ['file', 'dir'], 'only the durable file and its directory');
  } finally {
    spy.mock.restore();
  }
  assert.deepEqual(snapshot(sub), { 'a.txt': 'new a', 'b.txt': 'b' });
  assert.deepEqual(temps(sub), []);
});

test('writeFilesAtomic: a failure on any file changes none of them', (t) => {
  const dir = testDir(t, 'lqos-atomic-');
  const files = ['a.csv', 'b.json', 'c.meta'].map((n) => join(dir, n));
  writeFilesAtomic(files.map((path) => ({ path, data: `old ${path}` })));
  const before = snapshot(dir);
  let calls = 0;
  const real = fs.writeFileSync;
  const write = mock.method(fs, 'writeFileSync', (...args: Parameters<typeof fs.writeFileSync>) => {
    if (++calls === 3) throw enospc('write'); // the third temp file
    return real(...args);
  });
  try {
    assert.throws(
      () => writeFilesAtomic(files.map((path) => ({ path, data: `new ${path}` }))),
      (e: unknown) => e instanceof DiskFullError && e.path === files[2] && e.message.includes(`none of ${files.join(', ')} was changed`),
    );
  } finally {
    write.mock.restore();
  }
  assert.deepEqual(snapshot(dir), before);
  writeFilesAtomic(files.map((path) => ({ path, data: `new ${path}` })));
  assert.deepEqual(files.map(read), files.map((p) => `new ${p}`));
});

test('copyFileAtomic keeps the source mode; stale temp files of dead writers are removed', (t) => {
  const dir = testDir(t, 'lqos-atomic-');
  const src = join(dir, 'src');
  fs.writeFileSync(src, 'content');
  fs.chmodSync(src, 0o600);
  const dst = join(dir, 'sub', 'dst');
  copyFileAtomic(src, dst);
  assert.equal(read(dst), 'content');
  assert.equal(modeOf(dst), 0o600);
  // A writer killed mid-write (pid 2^22+1 cannot exist: above pid_max's ceiling) left its temp file.
  const stale = `${dst}.tmp-4194305-0123abcd`;
  const live = `${dst}.tmp-${process.ppid}-0123abcd`;
  fs.writeFileSync(stale, 'half');
  fs.writeFileSync(live, 'another writer, still running');
  writeFileAtomic(dst, 'again');
  assert.ok(!fs.existsSync(stale));
  assert.ok(fs.existsSync(live), 'a live writer\'s temp file is left alone');
});

test('readRecovering: damaged file set aside; newest readable backup restored; missing file is not damage', (t) => {
  const dir = testDir(t, 'lqos-atomic-');
  const f = join(dir, 'x.json');
  const warnings: string[] = [];
  const log = { warn: (m: string) => void warnings.push(m) } as never;
  const parse = (text: string) => JSON.parse(text) as { v: number };
  const opts = { parse, what: 'test file', onLoss: 'starting empty', log, now: () => new Date('2026-01-02T03:04:05.678Z') };
  assert.deepEqual(readRecovering(f, opts), {});
  for (const v of [1, 2, 3]) writeFileAtomic(f, JSON.stringify({ v }), { backup: true });
  fs.writeFileSync(`${f}.bak`, ''); // empty
  fs.writeFileSync(f, '{"v":'); // truncated
  const r = readRecovering(f, opts);
  assert.deepEqual(r.value, { v: 1 });
  assert.equal(r.source, `${f}.bak.1`);
  assert.equal(r.setAside, `${f}.corrupt-2026-01-02T03-04-05-678Z`);
  assert.equal(read(r.setAside!), '{"v":');
  assert.equal(read(f), '{"v":1}', 'restored in place');
  assert.equal(warnings.length, 1);
  assert.match(warnings[0]!, /x\.json is not a valid test file \(.*JSON.*\); moved it to .*corrupt-2026.*restored the newest readable backup .*x\.json\.bak\.1; unreadable backups skipped: .*x\.json\.bak \(the file is empty\)/);
  // Backups not allowed (or none readable): undefined and the consequence in the warning.
  warnings.length = 0;
  fs.writeFileSync(f, 'garbage');
  const none = readRecovering(f, { ...opts, fromBackups: false, now: () => new Date('2026-01-02T03:04:06Z') });
  assert.equal(none.value, undefined);
  assert.ok(!fs.existsSync(f));
  assert.match(warnings[0]!, /x\.json is not a valid test file .*moved it to .*corrupt-.*; starting empty$/);
});
