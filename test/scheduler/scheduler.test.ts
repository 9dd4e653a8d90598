// test-gate: shared (CPU only; see test/support/gate.ts)
/**
 * The scheduler in-process against a real lqosd (startDaemon, dry-run config, temp bus/run dirs);
 * lqosd's real shaping service runs in dry-run mode through a wrapper that logs each refresh.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { busRequest } from '../../lib/bus/client.ts';
import { ShapingService, type ShapingRequest } from '../../lib/shaping/service.ts';
import type { IntegrationCommand } from '../../lib/scheduler/integrationRunner.ts';
import { Scheduler, SCHEDULER_EXIT, type SchedulerOptions } from '../../lib/scheduler/scheduler.ts';
import { capturingLogger } from '../support/log.ts';
import { sleep, waitFor } from '../support/wait.ts';
import { fileHash, inProcessScheduler, makeSchedWorkspace, schedulerStatus, script, startTestDaemon, treeHashes, type SchedWorkspace } from './helpers.ts';

const cleanups: (() => unknown)[] = [];
after(async () => {
  for (const c of cleanups.reverse()) await c();
});
function ws(extra = ''): SchedWorkspace {
  const w = makeSchedWorkspace(extra);
  cleanups.push(() => w.cleanup());
  return w;
}
const scheduler = (w: SchedWorkspace, opts: Partial<SchedulerOptions> = {}): Scheduler => inProcessScheduler(w, cleanups, opts);
async function daemon(w: SchedWorkspace, extra = {}) {
  const d = await startTestDaemon(w, extra);
  cleanups.push(() => d.stop());
  return d;
}
const status = schedulerStatus;
const urgent = async (w: SchedWorkspace) => (await busRequest<'urgent_list', any>('urgent_list', {}, { path: w.busPath })).issues as any[];
const addRow = (text: string, n: number) => `${text}${2000 + n},Added ${n},${2000 + n}-a,Dev ${n},AP_West_1,,,02:00:00:00:20:${String(n % 100).padStart(2, '0')},100.64.20.${n},,5,1,10,2,,\n`;

test('start order: the scheduler waits for lqosd, then does a full run', async () => {
  const w = ws();
  const s = scheduler(w);
  const t0 = Date.now();
  const started = s.start();
  await sleep(2000);
  assert.equal(w.refreshes().length, 0);
  const d = await daemon(w);
  const first = await started;
  assert.equal(first.code, SCHEDULER_EXIT.ok, JSON.stringify(first.shape));
  assert.equal(first.shape?.via, 'refresh');
  const r = w.refreshes();
  assert.equal(r.length, 1, 'exactly one refresh for the full setup');
  assert.ok(r[0] - t0 >= 2000, 'the refresh came after lqosd started');
  assert.ok(d.context.shapingStatus().lastApply, 'lqosd ran LibreQoS');
  assert.ok(existsSync(join(w.stateDir, 'debug/linux_tc.txt')));
  await waitFor(async () => (await status(w)).phase === 'idle', 5000, 'idle heartbeat');
  const st = await status(w);
  assert.equal(st.health, 'healthy');
  assert.ok(st.lastSuccess);
  assert.ok(st.nextRun && Date.parse(st.nextRun) > Date.now());
});

test('file changes: a save refreshes within 1 s; 10 saves in 1 s refresh once; unchanged content and own writes do not', async () => {
  const w = ws();
  await daemon(w);
  const s = scheduler(w);
  assert.equal((await s.start()).code, 0);
  assert.equal(w.refreshes().length, 1);
  let text = readFileSync(w.devices, 'utf8');

  // One save → one refresh, quickly.
  text = addRow(text, 1);
  const tSave = Date.now();
  w.save('ShapedDevices.csv', text);
  await waitFor(() => w.refreshes().length === 2, 5000, 'refresh after a save');
  const latency = w.refreshes()[1] - tSave;
  assert.ok(latency < 1000, `save → refresh request took ${latency} ms`);
  await waitFor(async () => (await status(w)).phase === 'idle', 10_000, 'idle');

  // A burst of 10 saves within 1 s → exactly one refresh.
  for (let i = 2; i <= 11; i++) {
    text = addRow(text, i);
    w.save('ShapedDevices.csv', text);
    await sleep(90);
  }
  await waitFor(() => w.refreshes().length >= 3, 5000, 'refresh after the burst');
  await sleep(1500);
  assert.equal(w.refreshes().length, 3, 'one refresh for the whole burst');
  await waitFor(async () => (await status(w)).phase === 'idle', 10_000, 'idle');

  // Saving identical content (touch) → nothing to do.
  w.save('ShapedDevices.csv', text);
  writeFileSync(w.network, readFileSync(w.network, 'utf8'));
  await sleep(1000);
  assert.equal(w.refreshes().length, 3, 'unchanged content does not refresh');

  // An integration that writes the inputs: the cycle's own refresh only, no second one from the watcher.
  const newCsv = join(w.dir, 'from-crm.csv');
  writeFileSync(newCsv, addRow(text, 50));
  const writer = script(w, 'crm-writes.sh', `cp "${newCsv}" "${w.dir}/.tmp.csv" && mv "${w.dir}/.tmp.csv" "${w.devices}"; echo wrote`);
  const s2opts: IntegrationCommand[] = [{ name: 'writer', file: writer, args: [] }];
  (s as any).opts.integrations = () => s2opts;
  const cyc = await s.runCycle('scheduled');
  assert.equal(cyc.code, 0);
  assert.equal(w.refreshes().length, 4);
  await sleep(1000);
  assert.equal(w.refreshes().length, 4, "the integration's own write does not cause a second refresh");
  assert.equal(readFileSync(w.devices, 'utf8'), addRow(text, 50));
});

test('cycles start every queue_refresh_interval_mins however long each takes (as upstream), not an interval after the last one ended', async () => {
  const w = ws();
  await daemon(w);
  const { log, records } = capturingLogger();
  const slow = { name: 'slow', file: script(w, 'slow.sh', 'sleep 1; echo done'), args: [] };
  const s = scheduler(w, { log, intervalMs: 2500, integrations: () => [slow] });
  await s.start();
  const starts = () => records.filter((r) => r.msg.startsWith('running integration slow')).map((r) => r.time as number);
  await waitFor(async () => starts().length >= 3, 20_000, 'three cycles');
  await s.stop();
  const [a, b, c] = starts();
  // Each cycle takes over 1 s (the integration) plus the shaping: an interval after the end would be ≥ 3.5 s apart.
  for (const gap of [b! - a!, c! - b!]) assert.ok(gap >= 2300 && gap < 3300, `cycles ${gap} ms apart, expected about 2500 (start to start): ${starts().join(', ')}`);
});

test('lqos_directory that appears after start, or is replaced by a new directory: file changes in it are shaped (the watch follows the directory)', async () => {
  const w = ws();
  const src = join(w.dir, 'src');
  w.writeConfig(readFileSync(w.config, 'utf8').replace(`lqos_directory = "${w.dir}"`, `lqos_directory = "${src}"`));
  const refreshes: number[] = [];
  const real = new ShapingService();
  await daemon(w, { shaping: { run: (req: ShapingRequest, env: Parameters<ShapingService['run']>[1]) => (req.inputs.devicesFile === join(src, 'ShapedDevices.csv') && refreshes.push(Date.now()), real.run(req, env)) } });
  const s = scheduler(w);
  await s.start(); // the start-up cycle finds no inputs
  const copyInputs = (to: string) => {
    for (const f of ['ShapedDevices.csv', 'network.json']) writeFileSync(join(to, f), readFileSync(join(w.dir, f)));
  };
  mkdirSync(src);
  copyInputs(src);
  await waitFor(async () => refreshes.length >= 1, 15_000, 'a refresh once lqos_directory exists with its files');
  // Replaced (as `mv src src.old; mkdir src; cp …` does), then a row added in the new directory.
  renameSync(src, `${src}.old`);
  mkdirSync(src);
  copyInputs(src);
  await sleep(2500); // the watch moves to the new directory
  const before = refreshes.length;
  writeFileSync(join(src, 'ShapedDevices.csv'), addRow(readFileSync(join(src, 'ShapedDevices.csv'), 'utf8'), 7));
  await waitFor(async () => refreshes.length > before, 15_000, 'a refresh after the edit in the new directory');
});

test('an integration stopped by the scheduler\'s shutdown leaves no log in /tmp (a kept log means a failed run)', async () => {
  const w = ws();
  await daemon(w);
  const slow = { name: 'stopme', file: script(w, 'stopme.sh', 'echo started; sleep 30'), args: [] };
  const s = scheduler(w, { integrations: () => [slow] });
  const started = s.start();
  const logs = () => readdirSync(w.logDir).filter((f) => f.startsWith('lqos_scheduler__stopme_'));
  await waitFor(async () => logs().length === 1, 15_000, 'the integration running, its log open');
  await s.stop();
  await started.catch(() => undefined);
  assert.deepEqual(logs(), [], 'the log of a run the shutdown ended is removed');
});

test('failing integrations (exit 3, hang past the timeout, 10 MB of output): scheduler stays up, inputs unchanged, status + /tmp log', async () => {
  const w = ws();
  await daemon(w);
  let current: IntegrationCommand[] = [];
  const s = scheduler(w, { integrations: () => current, integrationTimeoutMs: 2000 });
  assert.equal((await s.start()).code, 0);
  const inputs = () => [fileHash(w.devices), fileHash(w.network)];
  const before = inputs();

  // 1. Non-zero exit.
  current = [{ name: 'crashy', file: script(w, 'crashy.sh', 'for i in $(seq 1 45); do echo "progress line $i"; done; echo "fatal: CRM said 401" >&2; exit 3'), args: [] }];
  let r = await s.runCycle('scheduled');
  assert.equal(r.code, SCHEDULER_EXIT.integrationFailed);
  assert.equal(r.shape?.ok, true, 'shaping still ran on the last good inputs');
  const crash = r.integrations[0];
  assert.equal(crash.exitCode, 3);
  assert.ok(crash.logFile && crash.logFile.startsWith(join(w.logDir, 'lqos_scheduler__crashy_')), crash.logFile);
  assert.match(crash.logFile!, /lqos_scheduler__crashy_\d{8}_\d{6}(_\d+)?\.log$/);
  const logText = readFileSync(crash.logFile!, 'utf8');
  assert.match(logText, /progress line 45/);
  assert.match(logText, /fatal: CRM said 401/);
  let st = await status(w);
  assert.equal(st.health, 'error');
  assert.equal(st.lastError.integration, 'crashy');
  assert.match(st.lastError.message, /exited with code 3/);
  assert.equal(st.lastError.logFile, crash.logFile);
  assert.match(st.lastError.preview, /progress line 1\n/);
  assert.doesNotMatch(st.lastError.preview, /progress line 31/, 'preview = first 30 lines');
  let issues = await urgent(w);
  assert.ok(issues.some((i) => i.key === 'scheduler:integration:crashy' && i.severity === 'error'));
  assert.deepEqual(inputs(), before);

  // 2. Hangs past the 2 s timeout (with a grandchild holding the pipe).
  current = [{ name: 'hangs', file: script(w, 'hangs.sh', 'echo connecting; sleep 60 & sleep 60'), args: [] }];
  const t0 = Date.now();
  r = await s.runCycle('scheduled');
  const took = Date.now() - t0;
  assert.equal(r.code, SCHEDULER_EXIT.integrationFailed);
  assert.equal(r.integrations[0].timedOut, true);
  assert.ok(took < 8000, `the cycle went on after the timeout (${took} ms)`);
  st = await status(w);
  assert.match(st.lastError.message, /did not finish within 2 s/);
  assert.match(st.lastError.preview, /connecting/);
  assert.deepEqual(inputs(), before);

  // 3. 10 MB of output: memory keeps 4 MB, the log file keeps everything, the status a preview.
  const size = 10 * 1024 * 1024;
  current = [{ name: 'chatty', file: script(w, 'chatty.sh', `yes 'abcdefghijklmnopqrstuvwxyz0123456789abcdefghijklmnopqrstuvwxyz' | head -c ${size}; exit 1`), args: [] }];
  r = await s.runCycle('scheduled');
  assert.equal(r.code, SCHEDULER_EXIT.integrationFailed);
  const chatty = r.integrations[0];
  assert.equal(chatty.totalBytes, size);
  assert.equal(chatty.output.length, 4 * 1024 * 1024);
  assert.equal(chatty.droppedBytes, size - 4 * 1024 * 1024);
  assert.equal(statSync(chatty.logFile!).size, size, 'the log file holds the full 10 MB');
  st = await status(w);
  assert.equal(st.lastError.integration, 'chatty');
  assert.ok(st.lastError.preview.length <= 4100);
  assert.match(st.lastError.preview, /^abcdefghij/);
  assert.deepEqual(inputs(), before);

  // Still alive: a good integration clears its issue and the status.
  current = [{ name: 'crashy', file: script(w, 'fixed.sh', 'echo all good'), args: [] }];
  r = await s.runCycle('scheduled');
  assert.equal(r.code, SCHEDULER_EXIT.ok);
  assert.equal(r.integrations[0].logFile, undefined, 'no log file kept for a good run');
  issues = await urgent(w);
  assert.ok(!issues.some((i) => i.key === 'scheduler:integration:crashy'), 'resolved on success');
  assert.ok(!issues.some((i) => i.key === 'scheduler:integration:chatty'), 'an integration that is no longer the enabled one has its issue resolved at the cycle');
  assert.equal((await status(w)).health, 'healthy');
});

test('bad lqos_overrides.json: clear error, nothing applied, urgent issue; a fixed file applies (lqosd shapes the effective inputs)', async () => {
  const w = ws();
  await daemon(w);
  const s = scheduler(w);
  assert.equal(await s.once(), SCHEDULER_EXIT.ok);
  const operatorCsv = readFileSync(w.devices, 'utf8');
  const shapingState = () => Object.fromEntries(Object.entries(treeHashes(w.stateDir)).filter(([k]) => !k.startsWith('urgent')));
  const state = shapingState();
  const refreshes = w.refreshes().length;

  writeFileSync(w.overrides, JSON.stringify({ circuit_adjustments: [{ type: 'circuit_adjust_speed', circuit_id: '1001', max_download_bandwidth: 'seventy' }] }));
  assert.equal(await s.once(), SCHEDULER_EXIT.shapingFailed);
  assert.equal(w.refreshes().length, refreshes, 'no refresh');
  assert.deepEqual(shapingState(), state, 'shaping state unchanged');
  assert.equal(readFileSync(w.devices, 'utf8'), operatorCsv);
  const st = await status(w);
  assert.ok(st.lastError.message.includes(w.overrides), st.lastError.message);
  assert.match(st.lastError.message, /circuit_adjustments\[0\]\.max_download_bandwidth: expected a number, got "seventy"/);
  const issue = (await urgent(w)).find((i) => i.key === 'scheduler:overrides');
  assert.equal(issue?.code, 'OVERRIDES_INVALID');

  // Fixed: applied through the effective files (bus submit_plan).
  writeFileSync(w.overrides, JSON.stringify({ circuit_adjustments: [{ type: 'circuit_adjust_speed', circuit_id: '1001', max_download_bandwidth: 77 }] }));
  const r = await s.runCycle('once');
  assert.equal(r.code, SCHEDULER_EXIT.ok, JSON.stringify(r.shape));
  assert.equal(r.shape?.via, 'submit_plan');
  assert.equal(readFileSync(w.devices, 'utf8'), operatorCsv, "the operator's file is never rewritten");
  assert.match(readFileSync(join(w.stateDir, 'shaping/effective/ShapedDevices.csv'), 'utf8'), /^1001,.*,77,20,/m);
  assert.match(readFileSync(join(w.stateDir, 'debug/linux_tc.txt'), 'utf8'), /ceil 77mbit/);
  assert.ok(!(await urgent(w)).some((i) => i.key === 'scheduler:overrides'), 'resolved');

  // Overrides removed → back to a plain refresh of lqos_directory; stale effective files go away.
  writeFileSync(w.overrides, '{}');
  const r2 = await s.runCycle('once');
  assert.equal(r2.shape?.via, 'refresh');
  assert.ok(!existsSync(join(w.stateDir, 'shaping/effective')));
  assert.doesNotMatch(readFileSync(join(w.stateDir, 'debug/linux_tc.txt'), 'utf8'), /ceil 77mbit/);
});

test('overrides go to lqosd as submit_plan with the effective file paths (lqosd with its real apply service)', async () => {
  const w = ws();
  const got: ShapingRequest[] = [];
  const service = new ShapingService();
  await daemon(w, {
    shaping: {
      run: (req: ShapingRequest, env: Parameters<ShapingService['run']>[1]) => {
        got.push(req);
        return service.run(req, env);
      },
    },
  });
  writeFileSync(
    w.overrides,
    JSON.stringify({
      circuit_adjustments: [{ type: 'remove_circuit', circuit_id: '1002' }],
      network_adjustments: [{ type: 'adjust_site_speed', site_name: 'AP_West_1', download_bandwidth_mbps: 250 }],
    }),
  );
  const s = scheduler(w);
  const sent: { type: string; payload: any }[] = [];
  const request = s.reporter.client.request.bind(s.reporter.client);
  s.reporter.client.request = ((type: any, payload: any, opts: any) => (sent.push({ type, payload }), request(type, payload, opts))) as typeof s.reporter.client.request;
  const r = await s.runCycle('scheduled');
  assert.equal(r.code, 0, JSON.stringify(r.shape));
  assert.equal(r.shape?.via, 'submit_plan');
  assert.equal(got.length, 1);
  assert.equal(sent.find((m) => m.type === 'submit_plan')?.payload.mode, 'incremental');
  const submitted = sent.find((m) => m.type === 'submit_plan')!.payload;
  assert.equal(submitted.devicesPath, join(w.stateDir, 'shaping/effective/ShapedDevices.csv'), 'lqosd reads the effective copy');
  assert.equal(submitted.networkPath, join(w.stateDir, 'shaping/effective/network.json'));
  // ... and names it after the operator's file, whose lines it keeps.
  assert.equal(got[0].inputs.devicesFile, `${w.devices} (with lqos_overrides.json applied)`);
  assert.equal(got[0].inputs.networkFile, `${w.network} (with lqos_overrides.json applied)`);
  assert.doesNotMatch(got[0].inputs.devicesText, /^1002,/m);
  assert.match(got[0].inputs.devicesText, /^1001,/m);
  assert.match(got[0].inputs.networkText, /"downloadBandwidthMbps": 250/);
  assert.equal(w.refreshes().length, 0, 'no refresh of lqos_directory');
  const mappings = readFileSync(join(w.stateDir, 'debug/ip_mappings.txt'), 'utf8');
  assert.match(mappings, /1001/);
  assert.doesNotMatch(mappings, /100\.64\.1\.5\b/, 'circuit 1002 removed by the override');

  // Invalid effective inputs (an override that reparents onto a missing node is fine; a row with an extra
  // field is not — a row-level error such as a bad address would only skip that row's circuit).
  writeFileSync(w.devices, readFileSync(w.devices, 'utf8') + '3001,Bad,3001-a,Bad,AP_West_1,,,02:00:00:00:30:01,100.64.30.1,,5,1,10,2,,,extra\n');
  const bad = await s.runCycle('scheduled');
  assert.equal(bad.code, SCHEDULER_EXIT.shapingFailed);
  assert.match(bad.shape!.message, /inputs are invalid/);
  assert.match(bad.shape!.output ?? '', /has 17 fields but the header/);
  // Named at its line in the operator's file (the copy keeps the lines; the removed 1002 rows are empty lines).
  const badLine = readFileSync(w.devices, 'utf8').split('\n').findIndex((l) => l.startsWith('3001,')) + 1;
  assert.ok((bad.shape!.output ?? '').includes(`${w.devices} (with lqos_overrides.json applied):${badLine}`), bad.shape!.output);
});
