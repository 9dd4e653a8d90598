// test-gate: shared (CPU only; see test/support/gate.ts)
/**
 * The scheduler recovers by itself (issue 16), as an operator sees it: the real scheduler process
 * (`./scheduler` → bin/launch → bin/scheduler.ts) against a real lqosd in this process (dry run, temp
 * run dir and bus). Each test is "operator does X → within N seconds status / lqosd shows Y", polling
 * for the outcome with generous deadlines (shared CI cores); the measured latencies are logged.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { busRequest } from '../../lib/bus/client.ts';
import type { RunningDaemon } from '../../lib/daemon/daemon.ts';
import { EXIT } from '../../lib/shaping/exitCodes.ts';
import { failedOutcome, ShapingService } from '../../lib/shaping/service.ts';
import { retryReason, RetryTimer } from '../../lib/scheduler/retry.ts';
import { parsePid, signalGroup, startTimeOf } from '../../lib/util/processes.ts';
import type { ShapeResult } from '../../lib/scheduler/shape.ts';
import { loConfig } from '../support/configs.ts';
import { sleep } from '../support/wait.ts';
import { makeSchedWorkspace, script, spawnScheduler, startTestDaemon, type SchedWorkspace } from './helpers.ts';

const cleanups: (() => unknown)[] = [];
after(async () => {
  for (const c of cleanups.reverse()) await c();
});
const CANARY = 'CANARY-SCHED-991';
const INTERVAL_MINS = 7;

function ws(): SchedWorkspace {
  const w = makeSchedWorkspace();
  cleanups.push(() => w.cleanup());
  return w;
}
interface Beat {
  phase: string;
  nextRun?: string;
}
/** lqosd (in-process, dry run) recording every scheduler heartbeat it receives. */
async function daemon(w: SchedWorkspace, extra = {}): Promise<{ d: RunningDaemon; beats: Beat[] }> {
  const d = await startTestDaemon(w, extra);
  cleanups.push(() => d.stop());
  const beats: Beat[] = [];
  const tracker = d.context.scheduler;
  const orig = tracker.heartbeat.bind(tracker);
  tracker.heartbeat = (phase: string, nextRun?: string) => (beats.push({ phase, nextRun }), orig(phase, nextRun));
  return { d, beats };
}
function sched(w: SchedWorkspace, conf: string, env: Record<string, string> = {}) {
  const s = spawnScheduler(w, conf, env);
  cleanups.push(() => s.exitCode === null && s.kill('SIGKILL'));
  return s;
}
const goodConf = (w: SchedWorkspace, extra = '') => loConfig(w.dir, `[integration_common]\nqueue_refresh_interval_mins = ${INTERVAL_MINS}\n[uisp_integration]\nenable_uisp = false\ntoken = "${CANARY}"\n${extra}`);
/** A TOML syntax error on the line with the secret. */
const brokenSyntax = (w: SchedWorkspace) => loConfig(w.dir, `[uisp_integration]\nenable_uisp = false\ntoken = "${CANARY}\nurl = "x"\n`);
const brokenField = (w: SchedWorkspace) => loConfig(w.dir, `[integration_common]\nqueue_refresh_interval_mins = "soon"\n[uisp_integration]\ntoken = "${CANARY}"\n`);

const status = (w: SchedWorkspace) => busRequest<'scheduler_status', any>('scheduler_status', {}, { path: w.busPath });
const urgent = async (w: SchedWorkspace) => (await busRequest<'urgent_list', any>('urgent_list', {}, { path: w.busPath })).issues as any[];
const addRow = (text: string, n: number) => `${text}${2000 + n},Added ${n},${2000 + n}-a,Dev ${n},AP_West_1,,,02:00:00:00:20:${String(n % 100).padStart(2, '0')},100.64.20.${n},,5,1,10,2,,\n`;
const ipMappings = (w: SchedWorkspace) => (existsSync(join(w.stateDir, 'debug/ip_mappings.txt')) ? readFileSync(join(w.stateDir, 'debug/ip_mappings.txt'), 'utf8') : '');

/** Polls `probe` until `ok`; on timeout the error names what was awaited and the last value seen. */
async function until<T>(what: string, ms: number, probe: () => T | Promise<T>, ok: (v: T) => boolean): Promise<T> {
  const t0 = Date.now();
  let last: unknown;
  for (;;) {
    try {
      const v = await probe();
      if (ok(v)) return v;
      last = v;
    } catch (e) {
      last = (e as Error).message;
    }
    if (Date.now() - t0 > ms) throw new Error(`timed out after ${ms} ms waiting for ${what}; last seen: ${JSON.stringify(last)?.slice(0, 1500)}`);
    await sleep(100);
  }
}
const snapshot = async (w: SchedWorkspace) => ({ st: await status(w), issues: await urgent(w) });
const configIssue = (issues: any[]) => issues.find((i) => i.key === 'scheduler:config');

test('lqos.conf broken at start → a save that fixes it runs the start-up cycle within seconds, resolves the issue; watchers and interval work; nextRun survives a file-triggered refresh', async () => {
  const w = ws();
  const { beats } = await daemon(w);
  const conf = join(w.dir, 'sched.conf');
  writeFileSync(conf, brokenSyntax(w));
  const s = sched(w, conf);

  const broken = await until('status error for the broken lqos.conf', 30_000, () => snapshot(w), (v) => v.st.health === 'error' && !!configIssue(v.issues));
  assert.ok(broken.st.lastError.message.includes(conf), `the status names the file: ${broken.st.lastError.message}`);
  assert.match(broken.st.lastError.message, /TOML syntax error at line 13, column 26/);
  assert.equal(configIssue(broken.issues).code, 'SCHEDULER_CONFIG_INVALID');
  assert.doesNotMatch(JSON.stringify(broken), new RegExp(CANARY), 'the secret on the broken line is not in status or issue');
  assert.equal(w.refreshes().length, 0, 'nothing shaped with an unusable lqos.conf');

  const tFix = Date.now();
  w.save('sched.conf', goodConf(w));
  await until('the start-up cycle after the fix', 20_000, () => w.refreshes().length, (n) => n === 1);
  const fixed = await until('status healthy and SCHEDULER_CONFIG_INVALID resolved', 15_000, () => snapshot(w), (v) => v.st.health === 'healthy' && !configIssue(v.issues));
  console.log(`# lqos.conf fixed → start-up refresh in ${w.refreshes()[0] - tFix} ms`);
  const ahead = Date.parse(fixed.st.nextRun) - Date.now();
  assert.ok(ahead > (INTERVAL_MINS - 1) * 60_000 && ahead <= INTERVAL_MINS * 60_000, `nextRun honours queue_refresh_interval_mins = ${INTERVAL_MINS}: ${fixed.st.nextRun} is ${ahead} ms ahead`);

  // The input watcher started once the directory was known; the refresh keeps nextRun in its heartbeats.
  const from = beats.length;
  w.save('ShapedDevices.csv', addRow(readFileSync(w.devices, 'utf8'), 1));
  await until('the refresh after a save of ShapedDevices.csv', 15_000, () => w.refreshes().length, (n) => n === 2);
  const idle = await until('the idle heartbeat after the file-triggered refresh', 15_000, () => beats.slice(from), (b) => b.some((x) => x.phase === 'refreshing') && b.at(-1)?.phase === 'idle');
  assert.equal(idle.at(-1)!.nextRun, fixed.st.nextRun, 'the idle heartbeat after a file-triggered refresh carries the next cycle');
  assert.equal((await status(w)).nextRun, fixed.st.nextRun);
  assert.doesNotMatch(s.output(), new RegExp(CANARY), 'the secret is not in the scheduler log');
});

test('lqos.conf broken while running → status error naming the field + issue, file changes still shaped with the last good config; the fix recovers', async () => {
  const w = ws();
  await daemon(w);
  const conf = join(w.dir, 'sched.conf');
  writeFileSync(conf, goodConf(w));
  const s = sched(w, conf);
  await until('the start-up cycle', 30_000, () => snapshot(w), (v) => w.refreshes().length === 1 && v.st.health === 'healthy');

  w.save('sched.conf', brokenField(w));
  const broken = await until('status error after lqos.conf broke', 15_000, () => snapshot(w), (v) => v.st.health === 'error' && !!configIssue(v.issues));
  assert.ok(broken.st.lastError.message.includes(conf), broken.st.lastError.message);
  assert.match(broken.st.lastError.message, /integration_common\.queue_refresh_interval_mins: expected a number, got "soon"/);
  assert.match(configIssue(broken.issues).message, /queue_refresh_interval_mins/);
  assert.match(configIssue(broken.issues).message, /keeps using the last good configuration/);
  assert.doesNotMatch(JSON.stringify(broken), new RegExp(CANARY));

  // Still shapes an input change, with the last good configuration; the status stays error.
  w.save('ShapedDevices.csv', addRow(readFileSync(w.devices, 'utf8'), 2));
  await until('the refresh of a file change while lqos.conf is broken', 15_000, () => w.refreshes().length, (n) => n === 2);
  await until('the scheduler back between jobs', 10_000, () => status(w), (st) => st.phase === 'error');
  assert.equal((await status(w)).health, 'error', 'a shaping run does not hide the broken lqos.conf');
  assert.match(ipMappings(w), /100\.64\.20\.2\b/, 'lqosd applied the change');

  w.save('sched.conf', goodConf(w));
  const ok = await until('recovered after the fix', 15_000, () => snapshot(w), (v) => v.st.health === 'healthy' && v.st.phase === 'idle' && !configIssue(v.issues));
  assert.ok(ok.st.nextRun);
  assert.doesNotMatch(s.output(), new RegExp(CANARY));
});

test('restarting the scheduler clears what an earlier process raised: SCHEDULER_CONFIG_INVALID, and the issue of an integration no longer enabled', async () => {
  const w = ws();
  await daemon(w);
  const conf = join(w.dir, 'sched.conf');
  writeFileSync(conf, brokenSyntax(w));
  const s1 = sched(w, conf);
  await until('SCHEDULER_CONFIG_INVALID from the first process', 30_000, () => urgent(w), (i) => !!configIssue(i));
  s1.kill('SIGTERM');
  assert.equal((await s1).exitCode, 0);
  // As an earlier process (or an earlier configuration) left it:
  await busRequest('urgent_submit', { source: 'scheduler', severity: 'error', code: 'INTEGRATION_FAILED', message: 'integration oldcrm exited with code 1', dedupeKey: 'scheduler:integration:oldcrm' }, { path: w.busPath });
  assert.ok(configIssue(await urgent(w)), 'still there after the first process stopped');

  writeFileSync(conf, goodConf(w));
  sched(w, conf);
  const cleared = await until('the stale issues resolved by the new process', 30_000, () => snapshot(w), (v) => w.refreshes().length === 1 && v.st.health === 'healthy' && !v.issues.some((i) => i.key.startsWith('scheduler:')));
  assert.deepEqual(cleared.issues.filter((i) => i.source === 'scheduler'), []);
});

test('lqosd down when a file changes → retried with backoff, applied once lqosd is back (lastApply, ip mappings), then idle', async () => {
  const w = ws();
  const { d } = await daemon(w);
  const conf = join(w.dir, 'sched.conf');
  writeFileSync(conf, goodConf(w));
  const s = sched(w, conf);
  await until('the start-up cycle', 30_000, () => snapshot(w), (v) => w.refreshes().length === 1 && v.st.health === 'healthy');

  await d.stop();
  w.save('ShapedDevices.csv', addRow(readFileSync(w.devices, 'utf8'), 3));
  const retries = () => s.output().split('\n').filter((l) => /trying again in \d+ s/.test(l));
  await until('two failed tries while lqosd is down', 20_000, retries, (l) => l.length >= 2);
  assert.match(retries()[0], /lqosd/);
  assert.doesNotMatch(ipMappings(w), /100\.64\.20\.3\b/);

  const tUp = Date.now();
  const { d: d2 } = await daemon(w);
  await until("lqosd's lastApply after it came back", 60_000, () => d2.context.shapingStatus().lastApply, (a) => a !== undefined);
  console.log(`# lqosd back → applied by the retry in ${Date.now() - tUp} ms`);
  assert.match(ipMappings(w), /100\.64\.20\.3\b/, 'the plan lqosd applied has the row saved while it was down');
  await until('status healthy and idle', 15_000, () => status(w), (st) => st.health === 'healthy' && st.phase === 'idle');
});

test('a failed apply is retried: phase "pending: apply failed …", not healthy, until lqosd applies', async () => {
  const w = ws();
  let failing = true;
  let attempts = 0;
  const real = new ShapingService();
  const { d } = await daemon(w, {
    shaping: {
      run: (req: any, env: any) => {
        attempts++;
        return failing ? Promise.resolve({ outcome: failedOutcome(EXIT.apply, [], performance.now()) }) : real.run(req, env);
      },
    },
  });
  const conf = join(w.dir, 'sched.conf');
  writeFileSync(conf, goodConf(w));
  sched(w, conf);
  const pending = await until('phase pending after the failed apply', 30_000, () => status(w), (st) => st.phase.startsWith('pending'));
  assert.match(pending.phase, /^pending: apply failed \(exit code 4\), retry in \d+ s$/);
  // The failed apply itself was reported (scheduler_error), so health is error until a good apply; without it, pending.
  assert.ok(['error', 'pending'].includes(pending.health), `a retried change is not healthy: ${pending.health}`);
  await until('a second try', 20_000, () => attempts, (n) => n >= 2);
  assert.equal(d.context.shapingStatus().lastApply, undefined);
  assert.notEqual((await status(w)).health, 'healthy', 'never healthy while pending');

  failing = false;
  await until('applied by a retry', 30_000, () => d.context.shapingStatus().lastApply, (a) => a !== undefined);
  assert.match(ipMappings(w), /100\.64\.1\./, 'the example circuits are in the plan lqosd applied');
  await until('status healthy and idle', 15_000, () => status(w), (st) => st.health === 'healthy' && st.phase === 'idle');
  assert.ok(!(await urgent(w)).some((i) => i.code === 'REFRESH_FAILED'), "lqosd's REFRESH_FAILED resolved by the good run");
});

for (const variant of ['the scheduler', 'the whole cgroup (systemd)'] as const) {
  test(`SIGTERM to ${variant} during a long integration → exit 0, no INTEGRATION_FAILED, no error status, no refresh`, async () => {
    const w = ws();
    const { beats } = await daemon(w);
    const conf = join(w.dir, 'sched.conf');
    writeFileSync(conf, goodConf(w));
    const pidFile = join(w.dir, 'integration.pid');
    const slow = script(w, 'slow.sh', `echo $$ > "${pidFile}"; echo fetching from the CRM; sleep 120`);
    const s = sched(w, conf, { LQOS_SCHEDULER_TEST_INTEGRATIONS: JSON.stringify([{ name: 'slowcrm', file: slow }]) });
    await until('the integration running', 30_000, () => status(w), (st) => st.phase === 'running integration slowcrm' && existsSync(pidFile));
    // The shell creates the file before it writes its PID: an empty read is Number('') = 0, and
    // kill(-0) signals this test's own process group (CI's, exit 143). Wait for the PID itself.
    const ipid = (await until('the integration PID in its file', 10_000, () => parsePid(readFileSync(pidFile, 'utf8')), (pid) => pid !== undefined))!;
    const started = startTimeOf(ipid);
    cleanups.push(() => signalGroup(ipid, 'SIGKILL', started)); // at the end of the file: never a later owner of the PID
    if (variant !== 'the scheduler') {
      // systemd signals every process of the unit: the integration may end (and be seen) first.
      assert.ok(signalGroup(ipid, 'SIGTERM'), 'the integration process group was signalled');
      await sleep(150);
    }
    s.kill('SIGTERM');
    const r = await s;
    assert.equal(r.exitCode, 0, r.all);
    assert.throws(() => process.kill(ipid, 0), 'the integration is gone');
    const v = await snapshot(w);
    assert.ok(!v.issues.some((i) => i.key === 'scheduler:integration:slowcrm'), JSON.stringify(v.issues));
    assert.equal(v.st.lastError, undefined, `no error reported: ${JSON.stringify(v.st.lastError)}`);
    assert.equal(v.st.health, 'stopped', 'a clean stop shows as stopped, not as running or error');
    assert.equal(beats.at(-1)?.phase, 'stopped', 'a last heartbeat says stopped');
    assert.ok(!beats.some((b) => b.phase === 'refreshing'), 'no refresh started during the shutdown');
    assert.equal(w.refreshes().length, 0);
  });
}

test('SIGHUP (systemctl reload lqos_scheduler) re-reads lqos.conf and the scheduler keeps running', async () => {
  const w = ws();
  await daemon(w);
  const conf = join(w.dir, 'sched.conf');
  writeFileSync(conf, goodConf(w));
  const s = sched(w, conf);
  await until('healthy after the start-up cycle', 30_000, () => status(w), (st) => st.health === 'healthy');
  const refreshes = w.refreshes().length;
  s.kill('SIGHUP');
  await until('the SIGHUP line', 10_000, () => s.output(), (out) => out.includes(`re-reading ${conf} (SIGHUP)`));
  await sleep(500);
  assert.equal(s.exitCode, null, `the scheduler ended on SIGHUP: ${s.output().slice(-500)}`);
  assert.equal((await status(w)).health, 'healthy');
  // Still at work: a saved input is shaped.
  w.save('ShapedDevices.csv', addRow(readFileSync(w.devices, 'utf8'), 1));
  await until('a refresh after the input was saved', 20_000, () => w.refreshes().length, (n) => n > refreshes);
});

test('an integration that is disabled has its INTEGRATION_FAILED resolved when lqos.conf is saved', async () => {
  const w = ws();
  await daemon(w);
  const conf = join(w.dir, 'sched.conf');
  writeFileSync(conf, goodConf(w, '[netzur_integration]\nenable_netzur = true\napi_url = ""\n'));
  sched(w, conf);
  const failed = await until("netzur's failure reported", 60_000, () => snapshot(w), (v) => v.issues.some((i) => i.key === 'scheduler:integration:netzur') && v.st.health === 'error');
  assert.equal(failed.st.lastError.integration, 'netzur');

  w.save('sched.conf', goodConf(w, '[netzur_integration]\nenable_netzur = false\napi_url = ""\n'));
  await until('the issue resolved and the status healthy', 20_000, () => snapshot(w), (v) => !v.issues.some((i) => i.key === 'scheduler:integration:netzur') && v.st.health === 'healthy');
});

test('what is retried: lqosd unreachable/busy/unavailable and failed applies, with 2 s doubling to 60 s; never invalid inputs, overrides or a refused mass removal', () => {
  const r = (x: Partial<ShapeResult>): ShapeResult => ({ ok: false, via: 'refresh', message: 'm', ...x });
  assert.equal(retryReason(r({ via: 'none', transient: true, transientReason: 'lqosd unreachable' })), 'lqosd unreachable');
  assert.equal(retryReason(r({ via: 'none', transient: true, transientReason: 'lqosd busy' })), 'lqosd busy');
  assert.equal(retryReason(r({ exitCode: EXIT.apply })), 'apply failed (exit code 4)');
  assert.equal(retryReason(r({ via: 'submit_plan', exitCode: EXIT.locked })), 'apply failed (exit code 5)');
  for (const exitCode of [EXIT.invalidInput, EXIT.config, EXIT.plan, EXIT.massRemoval]) assert.equal(retryReason(r({ exitCode })), undefined, `exit ${exitCode} waits for a change`);
  assert.equal(retryReason(r({ via: 'none', overridesError: {} as any, message: 'bad overrides' })), undefined);
  assert.equal(retryReason(r({ via: 'none', exitCode: 1, message: 'missing file' })), undefined);
  assert.equal(retryReason({ ok: true, via: 'refresh', message: 'ok' }), undefined);

  const t = new RetryTimer();
  const delays = Array.from({ length: 8 }, () => t.schedule('lqosd unreachable', () => assert.fail('not run')));
  assert.deepEqual(delays, [2000, 4000, 8000, 16_000, 32_000, 60_000, 60_000, 60_000]);
  assert.match(t.phase(), /^pending: lqosd unreachable, retry in (59|60) s$/);
  t.done();
  assert.equal(t.pending, false);
  assert.equal(t.schedule('x', () => undefined), 2000, 'back to 2 s once the plan matches');
  t.done();
});
