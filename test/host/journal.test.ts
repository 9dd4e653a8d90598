// test-gate: shared (CPU only; see test/support/gate.ts)
/**
 * Logs in the real journal: Debian's systemd-journald (started here when none runs) receives a
 * process's stderr through systemd-cat, the way a unit's stderr reaches it, and journalctl reads
 * back each entry's PRIORITY and MESSAGE. `journalctl -p err` must find the error and only it.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, writeFileSync, rmSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import { repoRoot } from '../support/paths.ts';
import { waitFor } from '../support/wait.ts';

const JOURNALD = '/lib/systemd/systemd-journald';
let started: ChildProcess | undefined;
let dir: string;

async function journaldRunning(): Promise<boolean> {
  return (await execa('pgrep', ['-x', 'systemd-journal'], { reject: false })).exitCode === 0;
}

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'lqos-journal-'));
  if (await journaldRunning()) return;
  assert.ok(existsSync(JOURNALD), `${JOURNALD} missing: scripts/setup installs systemd (Debian package)`);
  started = spawn(JOURNALD, [], { stdio: 'ignore' });
  await waitFor(async () => (await execa('systemd-cat', ['-t', 'lqos-journal-probe', 'true'], { reject: false })).exitCode === 0, 10_000, 'systemd-journald accepting streams');
});

after(async () => {
  if (started) {
    started.kill('SIGTERM');
    await new Promise((r) => started!.once('exit', r));
  }
  rmSync(dir, { recursive: true, force: true });
});

/** Runs a script that logs through createLogger() with stderr connected to the journal. */
async function logThroughJournal(tag: string, env: Record<string, string>, autoStream: boolean): Promise<Array<{ PRIORITY: string; MESSAGE: string }>> {
  const script = join(dir, `${tag}.ts`);
  writeFileSync(script, `
import { createLogger } from ${JSON.stringify(join(repoRoot, 'lib/util/log.ts'))};
const log = createLogger('lqosd');
log.info({ circuits: 5 }, 'plan applied');
log.warn({ file: '/etc/lqos.conf', key: 'bridge.to_internet' }, 'interface has no TX queues to spare');
log.error({ err: Object.assign(new Error('tc class add failed'), { code: 'EINVAL' }) }, 'apply failed, last good plan kept');
`);
  const envs = Object.entries(env).map(([k, v]) => `${k}=${v}`).join(' ');
  const stream = autoStream ? 'JOURNAL_STREAM=$(stat -L -c %d:%i /proc/self/fd/2) ' : '';
  const r = await execa('systemd-cat', ['-t', tag, 'sh', '-c', `${stream}${envs} exec "${process.execPath}" --import tsx "${script}"`], { cwd: repoRoot, reject: false, all: true, env: { LQOS_LOG_FORMAT: '' } });
  assert.equal(r.exitCode, 0, r.all);
  let entries: Array<{ PRIORITY: string; MESSAGE: string }> = [];
  await waitFor(async () => {
    const j = await execa('journalctl', ['-t', tag, '-o', 'json', '--no-pager'], { reject: false });
    entries = j.stdout.split('\n').filter(Boolean).map((l) => JSON.parse(l) as { PRIORITY: string; MESSAGE: string });
    return entries.length >= 3;
  }, 10_000, `3 journal entries tagged ${tag}`);
  return entries;
}

test('under systemd (JOURNAL_STREAM names stderr) lines are readable and carry their priority', async () => {
  const tag = `lqos-jt-auto-${process.pid}`;
  const e = await logThroughJournal(tag, {}, true);
  assert.deepEqual(e.map((x) => x.PRIORITY), ['6', '4', '3']);
  assert.equal(e[0]!.MESSAGE, 'plan applied circuits=5');
  assert.equal(e[1]!.MESSAGE, 'interface has no TX queues to spare file=/etc/lqos.conf key=bridge.to_internet');
  assert.match(e[2]!.MESSAGE, /^apply failed, last good plan kept err="Error: tc class add failed" err\.code=EINVAL err\.stack="Error: tc class add failed\\n/);
  const errs = await execa('journalctl', ['-t', tag, '-p', 'err', '-o', 'cat', '--no-pager']);
  assert.deepEqual(errs.stdout.split('\n').map((l) => l.replace(/ err=.*/, '')), ['apply failed, last good plan kept']);
});

test('LQOS_LOG_FORMAT=json still writes pino JSON (for log shippers), all at the default priority', async () => {
  const tag = `lqos-jt-json-${process.pid}`;
  const e = await logThroughJournal(tag, { LQOS_LOG_FORMAT: 'json' }, true);
  assert.deepEqual(e.map((x) => (JSON.parse(x.MESSAGE) as { level: number }).level), [30, 40, 50]);
  assert.deepEqual(e.map((x) => x.PRIORITY), ['6', '6', '6']);
});

test('the units ask for the journal format explicitly (systemd-cat-style streams set no JOURNAL_STREAM)', async () => {
  const tag = `lqos-jt-unit-${process.pid}`;
  const e = await logThroughJournal(tag, { LQOS_LOG_FORMAT: 'journal' }, false);
  assert.deepEqual(e.map((x) => x.PRIORITY), ['6', '4', '3']);
});
