// test-gate: shared (CPU only; see test/support/gate.ts)
/**
 * The integration run summary (contract: lib/scheduler/README.md): the scheduler gives the integration
 * child LQOS_INTEGRATION_SUMMARY_FILE, reads the file after a good run, bounds it, hides credentials,
 * sends it to lqosd (bus `scheduler_summary`, zod-validated) and `scheduler_status` shows it.
 * The integrations here are scripts that write the file themselves (the contract's format).
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { execa } from 'execa';
import { busRequest } from '../../lib/bus/client.ts';
import { Scheduler, SCHEDULER_EXIT, type SchedulerOptions } from '../../lib/scheduler/scheduler.ts';
import { capturingLogger } from '../support/log.ts';
import { repoRoot } from '../support/paths.ts';
import { inProcessScheduler, makeSchedWorkspace, schedulerStatus, script, startTestDaemon, type SchedWorkspace } from './helpers.ts';

const KEY = 'CANARY-SPLYNX-KEY-9f3a';
const SECRET = 'CANARY-SECRET-77c1';
const SECRET_CONF = `\n[splynx_integration]\nenable_splynx = false\napi_key = "${KEY}"\napi_secret = "${SECRET}"\n`;

const cleanups: (() => unknown)[] = [];
after(async () => {
  for (const c of cleanups.reverse()) await c();
});
async function setup(): Promise<SchedWorkspace> {
  const w = makeSchedWorkspace(SECRET_CONF);
  cleanups.push(() => w.cleanup());
  const d = await startTestDaemon(w);
  cleanups.push(() => d.stop());
  return w;
}
const scheduler = (w: SchedWorkspace, opts: Partial<SchedulerOptions> = {}): Scheduler => inProcessScheduler(w, cleanups, opts);
const status = schedulerStatus;

function summary(over: Record<string, unknown> = {}) {
  return {
    integration: 'splynx',
    finishedAt: '2026-03-01T10:00:00.000Z',
    durationMs: 4321,
    circuits: { total: 120, added: 3, removed: 1, changed: 7 },
    devices: { total: 140 },
    warnings: ['duplicate IP 100.64.1.9 omitted (device 77)'],
    networkJson: 'written',
    ...over,
  };
}
/** An integration script that writes `body` (JSON text) to $LQOS_INTEGRATION_SUMMARY_FILE. */
function writer(w: SchedWorkspace, name: string, body: string): string {
  const src = join(w.dir, `${name}.json`);
  writeFileSync(src, body);
  return script(w, `${name}.sh`, `test -n "$LQOS_INTEGRATION_SUMMARY_FILE" || { echo "no LQOS_INTEGRATION_SUMMARY_FILE" >&2; exit 9; }\ncp "${src}" "$LQOS_INTEGRATION_SUMMARY_FILE.tmp" && mv "$LQOS_INTEGRATION_SUMMARY_FILE.tmp" "$LQOS_INTEGRATION_SUMMARY_FILE"\necho "$LQOS_INTEGRATION_SUMMARY_FILE" > "${w.dir}/${name}.path"`);
}

test('a good run with a summary: scheduler_status shows counts, duration and warnings — bounded to 50, no ANSI, no credential; the summary file is removed', async () => {
  const w = await setup();
  const warnings = [
    '\u001b[33mduplicate IP 100.64.1.9 omitted\u001b[0m (device 77)',
    `auth retried with api_key=${KEY}`,
    `secret ${SECRET} in a URL`,
    'x'.repeat(290),
    ...Array.from({ length: 61 }, (_, i) => `circuit ${i} has no parent; placed under the root`),
  ];
  const crm = writer(w, 'crm', JSON.stringify(summary({ warnings: warnings.map((x) => x.slice(0, 300)), extraFieldFromANewerIntegration: true })));
  const s = scheduler(w, { integrations: () => [{ name: 'splynx', file: crm, args: [] }] });
  const r = await s.once();
  assert.equal(r, SCHEDULER_EXIT.ok);
  const st = await status(w);
  const li = st.lastIntegration;
  assert.ok(li, `scheduler_status has no lastIntegration: ${JSON.stringify(st)}`);
  assert.deepEqual(
    { integration: li.integration, durationMs: li.durationMs, circuits: li.circuits, devices: li.devices, networkJson: li.networkJson, finishedAt: li.finishedAt },
    { integration: 'splynx', durationMs: 4321, circuits: { total: 120, added: 3, removed: 1, changed: 7 }, devices: { total: 140 }, networkJson: 'written', finishedAt: '2026-03-01T10:00:00.000Z' },
  );
  assert.equal(li.warnings.length, 50, 'the first 50 warnings are kept');
  assert.equal(li.warningsOmitted, 65 - 50, 'the rest is counted');
  assert.equal(li.warnings[0], 'duplicate IP 100.64.1.9 omitted (device 77)', 'colour codes removed');
  assert.equal(li.warnings[1], 'auth retried with api_key=***');
  assert.ok(li.receivedAt, 'lqosd stamps when it got the summary');
  assert.ok(!('extraFieldFromANewerIntegration' in li), 'unknown fields are dropped, not refused');
  const text = JSON.stringify(st);
  assert.ok(!text.includes(KEY) && !text.includes(SECRET), 'no credential in scheduler_status');
  // The scheduler's fresh path is private to the run and gone afterwards.
  const path = readFileSync(join(w.dir, 'crm.path'), 'utf8').trim();
  assert.match(path, /lqos-summary-[^/]+\/summary\.json$/);
  assert.equal(existsSync(path), false, 'the summary file is removed after reading');
});

test('a secret from the environment (LQOS_REST_TOKEN, as the unit sets it) is hidden from scheduler_status like one from lqos.conf', async () => {
  const w = await setup();
  const TOKEN = 'CANARY-ENV-TOKEN-41d8';
  const was = process.env.LQOS_REST_TOKEN;
  process.env.LQOS_REST_TOKEN = TOKEN;
  try {
    const crm = writer(w, 'envcrm', JSON.stringify(summary({ integration: 'rest', warnings: [`the CRM refused bearer ${TOKEN} once, then answered`] })));
    const s = scheduler(w, { integrations: () => [{ name: 'rest', file: crm, args: [] }] });
    assert.equal(await s.once(), SCHEDULER_EXIT.ok);
    const st = await status(w);
    assert.equal(st.lastIntegration.warnings[0], 'the CRM refused bearer *** once, then answered');
    assert.ok(!JSON.stringify(st).includes(TOKEN), 'no environment secret in scheduler_status');
  } finally {
    if (was === undefined) delete process.env.LQOS_REST_TOKEN;
    else process.env.LQOS_REST_TOKEN = was;
  }
});

test('no summary file or an invalid one: the run is still good (exit 0), a warning is logged, the previous summary stays', async () => {
  const w = await setup();
  const { log, records } = capturingLogger();
  let cmd = writer(w, 'good', JSON.stringify(summary({ circuits: { total: 5, added: 5, removed: 0, changed: 0 } })));
  const s = scheduler(w, { log, integrations: () => [{ name: 'splynx', file: cmd, args: [] }] });
  assert.equal(await s.once(), SCHEDULER_EXIT.ok);
  assert.equal((await status(w)).lastIntegration.circuits.added, 5);

  const cases: [string, string, RegExp][] = [
    ['silent', '', /wrote no run summary/],
    ['notjson', '{"integration": ', /not JSON/],
    ['negative', JSON.stringify(summary({ circuits: { total: 5, added: -1, removed: 0, changed: 0 } })), /invalid at circuits\.added/],
    ['badenum', JSON.stringify(summary({ networkJson: 'maybe' })), /invalid at networkJson/],
  ];
  for (const [name, body, warning] of cases) {
    cmd = name === 'silent' ? script(w, 'silent.sh', 'echo synced') : writer(w, name, body);
    const before = records.length;
    assert.equal(await s.once(), SCHEDULER_EXIT.ok, `${name}: a bad summary is not a failure`);
    const warns = records.slice(before).filter((x) => x.level === 40).map((x) => x.msg);
    assert.ok(warns.some((m) => warning.test(m)), `${name}: expected a warning matching ${warning}, got ${JSON.stringify(warns)}`);
    const st = await status(w);
    assert.equal(st.lastIntegration.circuits.added, 5, `${name}: the last good summary stays`);
    assert.equal(st.health, 'healthy', `${name}: ${JSON.stringify(st.lastError)}`);
  }
});

test('a failed integration: its summary file is not read', async () => {
  const w = await setup();
  const src = join(w.dir, 'fail.json');
  writeFileSync(src, JSON.stringify(summary({ circuits: { total: 1, added: 1, removed: 0, changed: 0 } })));
  const bad = script(w, 'fail.sh', `cp "${src}" "$LQOS_INTEGRATION_SUMMARY_FILE"; exit 3`);
  const s = scheduler(w, { integrations: () => [{ name: 'splynx', file: bad, args: [] }] });
  assert.equal(await s.once(), SCHEDULER_EXIT.integrationFailed);
  assert.equal((await status(w)).lastIntegration, undefined);
});

test('lqosd refuses an unbounded or malformed scheduler_summary', async () => {
  const w = await setup();
  const send = (s: unknown) => busRequest('scheduler_summary', { summary: s } as any, { path: w.busPath }).then(() => 'ok', (e: Error) => e.message);
  assert.equal(await send(summary()), 'ok');
  assert.match(await send(summary({ warnings: Array.from({ length: 51 }, () => 'w') })), /warnings/);
  assert.match(await send(summary({ warnings: ['y'.repeat(301)] })), /warnings/);
  assert.match(await send(summary({ finishedAt: 'yesterday' })), /finishedAt/);
  assert.match(await send(summary({ circuits: { total: 1, added: 0, removed: 0 } })), /changed/);
  assert.match(await send({ ...summary(), token: 'x' }), /token|unrecognized/i);
});

test('./scheduler --once (the real process) with LQOS_SCHEDULER_TEST_INTEGRATIONS: lqosd shows the summary', async () => {
  const w = await setup();
  const crm = writer(w, 'cli', JSON.stringify(summary({ integration: 'uisp', networkJson: 'kept', warnings: [] })));
  const r = await execa(join(repoRoot, 'scheduler'), ['--once', '--config', w.config], {
    cwd: repoRoot,
    reject: false,
    all: true,
    timeout: 40_000,
    env: { LQOS_LOG_FORMAT: 'json', LQOS_BUS_PATH: w.busPath, LQOS_RUN_DIR: w.runDir, LQOS_SCHEDULER_LOG_DIR: w.logDir, LQOS_SCHEDULER_TEST_INTEGRATIONS: JSON.stringify([{ name: 'uisp', file: crm }]) },
  });
  assert.equal(r.exitCode, 0, r.all);
  assert.match(String(r.all), /integration run summary: uisp: 120 circuits \(3 added, 1 removed, 7 changed\), 140 devices, 0 warnings, network\.json kept/);
  const st = await status(w);
  assert.equal(st.lastIntegration.integration, 'uisp');
  assert.equal(st.lastIntegration.networkJson, 'kept');
  assert.equal(st.progress.phase, 'ready');
  assert.deepEqual(readdirSync(w.logDir), [], 'no log kept for a good run');
});
