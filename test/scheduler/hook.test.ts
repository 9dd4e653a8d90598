// test-gate: shared (CPU only; see test/support/gate.ts)
/**
 * `<lqos_directory>/bin/post_integration_hook.sh` and the integration logs: the scheduler (in-process)
 * against a real lqosd (dry run). The hook runs after a successful integration (cwd
 * `<lqos_directory>/bin`, own process group, timeout, its own /tmp log kept on failure); a failure is
 * reported (scheduler_error + urgent issue `scheduler:post_integration_hook`) while the shaping still
 * runs; a hook that is not executable is a warning naming `chmod +x`. Also: previews without ANSI
 * codes, and no empty log after a silent timeout.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, existsSync, mkdirSync, readdirSync, readFileSync, realpathSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { busRequest } from '../../lib/bus/client.ts';
import { POST_HOOK_TIMEOUT_ENV } from '../../lib/scheduler/postHook.ts';
import { Scheduler, SCHEDULER_EXIT, type SchedulerOptions } from '../../lib/scheduler/scheduler.ts';
import { capturingLogger } from '../support/log.ts';
import { inProcessScheduler, makeSchedWorkspace, schedulerStatus, script, startTestDaemon, type SchedWorkspace } from './helpers.ts';

const cleanups: (() => unknown)[] = [];
after(async () => {
  for (const c of cleanups.reverse()) await c();
});
async function setup(): Promise<SchedWorkspace> {
  const w = makeSchedWorkspace();
  cleanups.push(() => w.cleanup());
  const d = await startTestDaemon(w);
  cleanups.push(() => d.stop());
  mkdirSync(join(w.dir, 'bin'));
  return w;
}
const scheduler = (w: SchedWorkspace, opts: Partial<SchedulerOptions> = {}): Scheduler => inProcessScheduler(w, cleanups, opts);
const status = schedulerStatus;
const urgent = async (w: SchedWorkspace) => (await busRequest<'urgent_list', any>('urgent_list', {}, { path: w.busPath })).issues as any[];
const HOOK_KEY = 'scheduler:post_integration_hook';
const hookPath = (w: SchedWorkspace) => join(w.dir, 'bin', 'post_integration_hook.sh');
function hook(w: SchedWorkspace, body: string, mode = 0o755): void {
  writeFileSync(hookPath(w), `#!/bin/sh\n${body}\n`, { mode });
  chmodSync(hookPath(w), mode);
}
const logs = (w: SchedWorkspace, prefix: string) => readdirSync(w.logDir).filter((f) => f.startsWith(prefix));
const ESC = '\u001b';

test('a good hook runs after the integration, in <lqos_directory>/bin, with LQOS_INTEGRATION; no log kept, no issue', async () => {
  const w = await setup();
  const trace = join(w.dir, 'trace.txt');
  const crm = script(w, 'crm.sh', `echo integration >> "${trace}"`);
  hook(w, `echo "hook cwd=$(pwd) integration=$LQOS_INTEGRATION dir=$LQOS_DIRECTORY" >> "${trace}"; printf '${ESC}[32mok${ESC}[0m\\n'`);
  const s = scheduler(w, { integrations: () => [{ name: 'crm', file: crm, args: [] }] });
  assert.equal(await s.once(), SCHEDULER_EXIT.ok);
  assert.deepEqual(readFileSync(trace, 'utf8').trim().split('\n'), ['integration', `hook cwd=${realpathSync(join(w.dir, 'bin'))} integration=crm dir=${w.dir}`]);
  assert.deepEqual(logs(w, 'lqos_scheduler__'), [], 'no log kept for good runs');
  assert.ok(!(await urgent(w)).some((i) => i.key === HOOK_KEY));
  assert.equal((await status(w)).health, 'healthy');
  assert.equal(w.refreshes().length, 1);
});

test('a failing hook: reported (preview without ANSI, its own log kept as written, urgent issue) but the shaping runs; the next good hook clears it', async () => {
  const w = await setup();
  const crm = script(w, 'crm.sh', 'echo synced');
  hook(w, `printf '${ESC}[1;31mERROR${ESC}[0m: radius sync refused\\r\\n'; echo "line 2" >&2; exit 4`);
  const s = scheduler(w, { integrations: () => [{ name: 'crm', file: crm, args: [] }] });
  assert.equal(await s.once(), SCHEDULER_EXIT.integrationFailed, 'a hook failure counts as an integration-step failure (exit 2)');
  assert.equal(w.refreshes().length, 1, 'the shaping ran with the integration output');
  const st = await status(w);
  assert.equal(st.health, 'error');
  assert.equal(st.lastError.integration, 'post_integration_hook');
  assert.match(st.lastError.message, /post_integration_hook\.sh exited with code 4; shaping goes on with the output of integration crm/);
  assert.equal(st.lastError.preview, 'ERROR: radius sync refused\nline 2', 'preview without colour codes or CR');
  const kept = logs(w, 'lqos_scheduler__post_integration_hook_');
  assert.equal(kept.length, 1, `hook log: ${readdirSync(w.logDir)}`);
  assert.equal(st.lastError.logFile, join(w.logDir, kept[0]));
  assert.ok(readFileSync(join(w.logDir, kept[0]), 'utf8').includes(`${ESC}[1;31mERROR${ESC}[0m`), 'the log file keeps the bytes as written');
  let issue = (await urgent(w)).find((i) => i.key === HOOK_KEY);
  assert.ok(issue, 'urgent issue for the hook');
  assert.equal(issue.code, 'POST_INTEGRATION_HOOK_FAILED');
  assert.equal(issue.severity, 'error');
  assert.ok(!(await urgent(w)).some((i) => i.key === 'scheduler:integration:crm'), 'the integration itself did not fail');

  hook(w, 'echo fixed');
  assert.equal(await s.once(), SCHEDULER_EXIT.ok);
  issue = (await urgent(w)).find((i) => i.key === HOOK_KEY);
  assert.equal(issue, undefined, 'resolved by the next good run');
  assert.equal((await status(w)).health, 'healthy');
});

test('a silent hook past its timeout: stopped, its log says so (not empty), the shaping runs', async () => {
  const w = await setup();
  process.env[POST_HOOK_TIMEOUT_ENV] = '1';
  cleanups.push(() => delete process.env[POST_HOOK_TIMEOUT_ENV]);
  const crm = script(w, 'crm.sh', 'echo synced');
  hook(w, 'sleep 30 & sleep 30');
  const s = scheduler(w, { integrations: () => [{ name: 'crm', file: crm, args: [] }] });
  assert.equal(await s.once(), SCHEDULER_EXIT.integrationFailed);
  assert.equal(w.refreshes().length, 1);
  const st = await status(w);
  assert.match(st.lastError.message, /post_integration_hook\.sh did not finish within 1 s and was stopped/);
  const kept = logs(w, 'lqos_scheduler__post_integration_hook_');
  assert.equal(kept.length, 1);
  assert.equal(readFileSync(join(w.logDir, kept[0]), 'utf8'), '[lqos_scheduler] killed after the 1 s timeout (SIGTERM to its process group, SIGKILL 2 s later), no output\n');
});

test('a hook that is not executable is not run: a warning naming chmod +x; a failed integration runs no hook', async () => {
  const w = await setup();
  const ran = join(w.dir, 'hook-ran');
  const { log, records } = capturingLogger();
  let crm = script(w, 'crm.sh', 'echo synced');
  hook(w, `touch "${ran}"`, 0o644);
  const s = scheduler(w, { log, integrations: () => [{ name: 'crm', file: crm, args: [] }] });
  assert.equal(await s.once(), SCHEDULER_EXIT.ok, 'not a failure');
  assert.equal(existsSync(ran), false, 'not run');
  const warn = records.find((r) => r.level === 40 && /post_integration_hook\.sh was not run/.test(r.msg));
  assert.ok(warn, 'warning logged');
  assert.match(warn.msg, new RegExp(`chmod \\+x ${hookPath(w).replace(/[.]/g, '\\.')}`));
  const issue = (await urgent(w)).find((i) => i.key === HOOK_KEY);
  assert.ok(issue);
  assert.equal(issue.severity, 'warning');
  assert.match(issue.message, /chmod \+x/);

  // Made executable, but the integration fails: the hook does not run.
  chmodSync(hookPath(w), 0o755);
  crm = script(w, 'crm-bad.sh', 'exit 1');
  assert.equal(await s.once(), SCHEDULER_EXIT.integrationFailed);
  assert.equal(existsSync(ran), false, 'no hook after a failed integration');
  // Removed: its warning is resolved after the next good integration.
  rmSync(hookPath(w));
  crm = script(w, 'crm-ok2.sh', 'echo synced');
  assert.equal(await s.once(), SCHEDULER_EXIT.ok);
  assert.ok(!(await urgent(w)).some((i) => i.key === HOOK_KEY), 'the hook issue goes with the hook');
});

test('integration logs: a silent timeout leaves a log that says what happened; a preview has no ANSI codes', async () => {
  const w = await setup();
  let cmd = script(w, 'silent.sh', 'sleep 30');
  const s = scheduler(w, { integrationTimeoutMs: 1000, integrations: () => [{ name: 'silent', file: cmd, args: [] }] });
  assert.equal(await s.once(), SCHEDULER_EXIT.integrationFailed);
  let st = await status(w);
  const log = st.lastError.logFile;
  assert.ok(log, 'the error names a log file');
  assert.equal(readFileSync(log, 'utf8'), '[lqos_scheduler] killed after the 1 s timeout (SIGTERM to its process group, SIGKILL 2 s later), no output\n');

  // A silent non-zero exit: the log says the exit code instead of being empty.
  cmd = script(w, 'quiet-fail.sh', 'exit 7');
  assert.equal(await s.once(), SCHEDULER_EXIT.integrationFailed);
  st = await status(w);
  assert.match(readFileSync(st.lastError.logFile, 'utf8'), /^\[lqos_scheduler\] exited with code 7 after \d+\.\d s, no output\n$/);

  // Colour codes, cursor moves, an OSC title and a bell: gone from the preview and the status message, kept in the log.
  cmd = script(w, 'colour.sh', `printf '${ESC}[31mred${ESC}[0m ${ESC}[2K${ESC}]0;title\\a\\007plain\\n${ESC}[1mbold${ESC}[22m\\n'; exit 5`);
  assert.equal(await s.once(), SCHEDULER_EXIT.integrationFailed);
  st = await status(w);
  assert.equal(st.lastError.preview, 'red plain\nbold');
  assert.ok(!/[\u0000-\u0008\u000b-\u001f\u007f]/.test(JSON.stringify(st.lastError.preview).replace(/\\n/g, '')), 'no control characters');
  assert.ok(readFileSync(st.lastError.logFile, 'utf8').includes(`${ESC}[31mred`), 'log keeps what was written');
  const issue = (await urgent(w)).find((i) => i.key === 'scheduler:integration:silent');
  assert.ok(issue);
  assert.ok(!issue.message.includes(ESC), 'urgent issue text without ESC');
});
