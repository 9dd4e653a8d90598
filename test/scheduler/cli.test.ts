// test-gate: shared (CPU only; see test/support/gate.ts)
/**
 * The launchers (`./scheduler`, `python3 scheduler.py`) as child processes against an in-process
 * lqosd: `--once` exit codes, the real integration child (bin/integration.ts), the integration timeout
 * from lqos.conf; and the systemd units after path substitution (scripts/install-services +
 * systemd-analyze verify).
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import { loConfig } from '../support/configs.ts';
import { repoRoot } from '../support/paths.ts';
import { makeSchedWorkspace, script, startTestDaemon, type SchedWorkspace } from './helpers.ts';

const cleanups: (() => unknown)[] = [];
after(async () => {
  for (const c of cleanups.reverse()) await c();
});
async function setup(extraConf = ''): Promise<SchedWorkspace> {
  const w = makeSchedWorkspace(extraConf);
  cleanups.push(() => w.cleanup());
  const d = await startTestDaemon(w);
  cleanups.push(() => d.stop());
  return w;
}
function run(cmd: string[], w: SchedWorkspace, env: Record<string, string> = {}) {
  return execa(cmd[0], [...cmd.slice(1), '--config', w.config], {
    cwd: repoRoot,
    reject: false,
    all: true,
    timeout: 40_000,
    env: { LQOS_LOG_FORMAT: 'json', LQOS_BUS_PATH: w.busPath, LQOS_RUN_DIR: w.runDir, LQOS_SCHEDULER_LOG_DIR: w.logDir, ...env },
  });
}

test('python3 scheduler.py --once runs the TypeScript scheduler: integrations + refresh, exit 0', async () => {
  const w = await setup();
  const r = await run(['python3', 'scheduler.py', '--once'], w);
  assert.equal(r.exitCode, 0, r.all);
  assert.equal(w.refreshes().length, 1);
  const msgs = String(r.all).split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l));
  assert.ok(msgs.some((m) => m.name === 'scheduler' && /shaping refreshed/.test(m.msg)), r.all);
});

test('./scheduler --once: 1 when the inputs are invalid (nothing applied)', async () => {
  const w = await setup();
  // A row with an extra field refuses the run (a bad address alone would only skip that row's circuit).
  writeFileSync(w.devices, readFileSync(w.devices, 'utf8') + '3001,Bad,3001-a,Bad,AP_West_1,,,02:00:00:00:30:01,100.64.30.1,,5,1,10,2,,,extra\n');
  const r = await run(['./scheduler', '--once'], w);
  assert.equal(r.exitCode, 1, r.all);
  assert.match(String(r.all), /inputs are invalid/);
});

test('./scheduler --once: 2 when an integration fails or hangs past integration_timeout_secs but shaping worked', async () => {
  const w = await setup('integration_timeout_secs = 1\n');
  const hang = script(w, 'hang.sh', 'echo contacting CRM; sleep 30');
  const t0 = Date.now();
  const r = await run(['./scheduler', '--once'], w, { LQOS_SCHEDULER_TEST_INTEGRATIONS: JSON.stringify([{ name: 'hang', file: hang }]) });
  assert.equal(r.exitCode, 2, r.all);
  assert.ok(Date.now() - t0 < 20_000);
  assert.equal(w.refreshes().length, 1, 'shaping still ran');
  assert.match(String(r.all), /did not finish within 1 s/);
  const logs = readdirSync(w.logDir);
  assert.equal(logs.length, 1);
  assert.match(logs[0], /^lqos_scheduler__hang_\d{8}_\d{6}\.log$/);
  assert.match(readFileSync(join(w.logDir, logs[0]), 'utf8'), /contacting CRM/);
});

test('./scheduler --once runs the real integration child (bin/integration.ts); its failure is exit 2 with the output kept', async () => {
  const w = await setup();
  writeFileSync(w.config, loConfig(w.dir) + '[netzur_integration]\nenable_netzur = true\napi_url = ""\n');
  const r = await run(['./scheduler', '--once'], w);
  assert.equal(r.exitCode, 2, r.all);
  const logs = readdirSync(w.logDir).filter((f) => f.startsWith('lqos_scheduler__netzur_'));
  assert.equal(logs.length, 1, r.all);
  assert.match(readFileSync(join(w.logDir, logs[0]), 'utf8'), /netzur_integration\.api_url is empty/);
});

test('./scheduler --once: 3 when lqosd does not answer; 64 on bad usage', async () => {
  const w = makeSchedWorkspace();
  cleanups.push(() => w.cleanup());
  const r = await run(['./scheduler', '--once', '--bus-wait', '1'], w);
  assert.equal(r.exitCode, 3, r.all);
  assert.match(String(r.all), /lqosd did not answer/);
  const u = await run(['./scheduler', '--bogus'], w);
  assert.equal(u.exitCode, 64);
});

test('install-services writes both units with the repository path; systemd-analyze verify accepts them', async (t) => {
  const which = await execa('sh', ['-c', 'command -v systemd-analyze'], { reject: false });
  if (which.exitCode !== 0) return t.skip('systemd-analyze not installed');
  const dir = mkdtempSync(join(tmpdir(), 'lqos-units-'));
  cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
  const dry = await execa(join(repoRoot, 'scripts/install-services'), ['--dry-run', '--unit-dir', dir, '--conf', join(dir, 'lqos.conf')], { reject: false, all: true });
  assert.equal(dry.exitCode, 0, dry.all);
  assert.match(String(dry.all), /would run: systemctl enable lqosd.service lqos_scheduler.service/);
  assert.deepEqual(readdirSync(dir), [], '--dry-run writes nothing');

  const r = await execa(join(repoRoot, 'scripts/install-services'), ['--unit-dir', dir, '--conf', join(dir, 'lqos.conf'), '--no-systemctl'], { reject: false, all: true });
  assert.equal(r.exitCode, 0, r.all);
  const unit = readFileSync(join(dir, 'lqos_scheduler.service'), 'utf8');
  assert.match(unit, new RegExp(`^ExecStart=${repoRoot}/scheduler$`, 'm'));
  assert.match(unit, new RegExp(`^WorkingDirectory=${repoRoot}$`, 'm'));
  assert.match(unit, /^Wants=lqosd\.service$/m);
  assert.match(unit, /^PartOf=lqosd\.service$/m);
  assert.match(unit, /^After=.*lqosd\.service/m);
  assert.match(unit, /^Restart=always$/m);
  assert.match(unit, /^Environment=LQOS_LOG_FORMAT=journal$/m);
  assert.doesNotMatch(unit + readFileSync(join(dir, 'lqosd.service'), 'utf8'), /\/opt\/lqos-ts/);
  assert.ok(existsSync(join(dir, 'lqos.conf')), 'config installed from the example when absent');
  const v = await execa('systemd-analyze', ['verify', join(dir, 'lqosd.service'), join(dir, 'lqos_scheduler.service')], { reject: false, all: true, cwd: dir });
  assert.equal(v.exitCode, 0, v.all);
  assert.equal(String(v.all).trim(), '', v.all);
});
