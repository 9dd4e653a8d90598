// test-gate: shared (CPU only; see test/support/gate.ts)
/**
 * The real `lqosd` command as a child process (dry-run configs, temp run dir and socket):
 * SIGTERM cleanup, single instance, degraded preflight, SIGHUP reload, bad config.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { busRequest } from '../../lib/bus/client.ts';
import { loConfig, missingInterfacesConfig } from '../support/configs.ts';
import { spawnLqosd } from '../support/daemon.ts';
import { waitFor } from '../support/wait.ts';
import { workspaceFactory, type Workspace } from '../support/workspace.ts';

const newWorkspace = workspaceFactory();
function ws(conf: (dir: string) => string = loConfig): Workspace {
  return newWorkspace({ prefix: 'lqosd-', conf, runDir: true });
}
const up = (w: Workspace) => waitFor(async () => busRequest('ping', {}, { path: w.busPath }).then(() => true, () => false), 20_000, 'lqosd to answer');

test('SIGTERM: lqosd removes its socket and lock and exits 0; a second lqosd exits non-zero with "already running"', async () => {
  const w = ws();
  const child = spawnLqosd(w);
  try {
    await up(w);
    assert.ok(existsSync(w.busPath));
    assert.equal(readFileSync(w.lockPath, 'utf8').trim(), String(child.pid));

    const second = await spawnLqosd(w);
    assert.notEqual(second.exitCode, 0);
    assert.match(String(second.all), /lqosd already running \(PID \d+ holds .*lqosd\.lock\)/);
    assert.ok(existsSync(w.busPath), 'the second instance left the first one alone');
    assert.equal((await busRequest<'ping', any>('ping', {}, { path: w.busPath })).pid, child.pid);
  } finally {
    child.kill('SIGTERM');
  }
  const r = await child;
  assert.equal(r.exitCode, 0, String(r.all));
  assert.equal(existsSync(w.busPath), false, 'socket removed');
  assert.equal(existsSync(w.lockPath), false, 'lock removed');
  assert.match(String(r.all), /shaping stays in the kernel/);
});

test('preflight failure (interface missing): lqosd stays up, status is degraded, an urgent issue exists; SIGHUP reload recovers', async () => {
  const w = ws(missingInterfacesConfig);
  const child = spawnLqosd(w);
  try {
    await up(w);
    const st = await busRequest<'status', any>('status', {}, { path: w.busPath });
    assert.match(st.shaping.degraded, /interface lqt-nope0 does not exist on this host/);
    const issues = (await busRequest<'urgent_list', any>('urgent_list', {}, { path: w.busPath })).issues;
    const pf = issues.find((i: any) => i.code === 'PREFLIGHT_FAILED');
    assert.ok(pf, JSON.stringify(issues));
    assert.match(pf.message, /lqt-nope0/);

    w.writeConfig(loConfig(w.dir));
    child.kill('SIGHUP');
    await waitFor(async () => (await busRequest<'status', any>('status', {}, { path: w.busPath })).shaping.degraded === undefined, 10_000, 'reload to clear degraded');
    assert.ok(child.exitCode === null, 'still running after SIGHUP');
  } finally {
    child.kill('SIGTERM');
  }
  const r = await child;
  assert.equal(r.exitCode, 0);
  const logs = String(r.all).split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as { msg: string; changed?: string[] });
  const reload = logs.find((l) => /config reloaded/.test(l.msg));
  assert.ok(reload, String(r.all));
  assert.ok(reload.changed!.includes('bridge') && reload.changed!.includes('single_interface'));
});

test('an unreadable config at start → exit 2 with the reason; nothing left behind', async () => {
  const w = ws(() => 'this = = is not toml');
  const r = await spawnLqosd(w);
  assert.equal(r.exitCode, 2);
  assert.match(String(r.all), /TOML syntax error/);
  assert.equal(existsSync(w.lockPath), false);
  assert.equal(existsSync(w.busPath), false);
});
