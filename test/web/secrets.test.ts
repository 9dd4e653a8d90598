// test-gate: shared (CPU only; see test/support/gate.ts)
/**
 * Secrets on disk and in messages (issue 14), through the web API and the scheduler:
 * - file modes read back with stat after web saves (lqos.conf + backups 0600, inputs 0640 or the
 *   operator's tighter mode);
 * - a secret key with a wrong value: neither the API error nor the urgent issue read-only users
 *   see carries any part of the value;
 * - repointing a CRM URL needs the section's secrets re-entered in the same save;
 * - a `state_directory` change carries the users file along (first-run not reopened).
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { parse as parseToml } from 'smol-toml';
import { busRequest } from '../../lib/bus/client.ts';
import { ConfigError, parseConfigText } from '../../lib/config/load.ts';
import { inputPaths, statePaths } from '../../lib/config/paths.ts';
import { writeIntegrationOutput } from '../../lib/integrations/common/output.ts';
import { Scheduler } from '../../lib/scheduler/scheduler.ts';
import { buildEffectiveInputs } from '../../lib/shaping/effectiveInputs.ts';
import { TelemetryHistory } from '../../lib/telemetry/history.ts';
import { RecordingLog } from '../../lib/util/logRecords.ts';
import { SECRETS } from '../support/configs.ts';
import { capturingLogger, quiet } from '../support/log.ts';
import { setupUsers } from '../support/users.ts';
import { testDir } from '../support/workspace.ts';
import { makeSchedWorkspace, startTestDaemon } from '../scheduler/helpers.ts';
import { withHarness } from './helpers.ts';

const mode = (p: string) => statSync(p).mode & 0o777;
const octal = (m: number) => `0${m.toString(8)}`;

/** A credential-looking value longer than the old 57-character cut, with no 6 characters in common with ordinary text. */
const LONG_SECRET = 'zq81XvT0pLmW93kRr7uYhGf2NcBd6sJa4eQoZq81XvT0pLmW93kRr7uYhGf2NcBd6sJa4eQo-END';

/** No 6-character window of `secret` occurs in `text`. */
function assertNoPartOf(text: string, secret: string, what: string): void {
  for (let i = 0; i + 6 <= secret.length; i++) {
    const part = secret.slice(i, i + 6);
    assert.ok(!text.includes(part), `${what} contains "${part}" (part of the secret value): ${text}`);
  }
}

const cleanups: (() => unknown)[] = [];
after(async () => {
  for (const c of cleanups.reverse()) await c();
});

test('web saves: lqos.conf and every backup 0600 (a 0644 file is narrowed); ShapedDevices.csv 0640; an operator\'s tighter mode is kept', async () => {
  await withHarness(async (h) => {
    const { admin } = await setupUsers(h);
    chmodSync(h.configPath, 0o644);
    assert.equal(mode(h.configPath), 0o644);
    for (const name of ['edge-1', 'edge-2']) {
      const r = await admin.put('/api/config', { node_name: name });
      assert.equal(r.status, 200, r.text);
    }
    assert.equal(octal(mode(h.configPath)), '0600');
    const backups = readdirSync(dirname(h.configPath)).filter((f) => f.startsWith(`${basename(h.configPath)}.bak`));
    assert.ok(backups.length >= 1, 'a backup was kept');
    for (const b of backups) assert.equal(octal(mode(join(dirname(h.configPath), b))), '0600', `${b} mode`);

    // ShapedDevices.csv: 0644 from the operator → 0640 after a web save (same circuits back).
    chmodSync(h.devicesPath, 0o644);
    const circuits = (await admin.get('/api/shaped-devices')).json.circuits;
    const put = await admin.put('/api/shaped-devices', { circuits });
    assert.equal(put.status, 200, put.text);
    assert.equal(octal(mode(h.devicesPath)), '0640');
    // network.json already 0600: stays 0600.
    chmodSync(h.networkPath, 0o600);
    const network = (await admin.get('/api/network')).json.network;
    assert.equal((await admin.put('/api/network', { network })).status, 200);
    assert.equal(octal(mode(h.networkPath)), '0600');
  });
});

test('a secret with a wrong, long value: the 422 names the key and says "value hidden", with no part of the value', async () => {
  await withHarness(async (h) => {
    const { admin } = await setupUsers(h);
    const before = readFileSync(h.configPath, 'utf8');
    for (const bad of [[LONG_SECRET], { nested: LONG_SECRET }, 1234567890123]) {
      const r = await admin.put('/api/config', { uisp_integration: { token: bad } });
      assert.equal(r.status, 422, r.text);
      assert.match(r.json.message, /uisp_integration\.token: invalid \(value hidden\); expected a string/);
      assertNoPartOf(r.text, typeof bad === 'number' ? String(bad) : LONG_SECRET, 'the API error');
    }
    assert.equal(readFileSync(h.configPath, 'utf8'), before, 'nothing written');
  });
  // The loader itself (what lqosd, LibreQoS and the scheduler print), TOML syntax errors included.
  for (const text of [
    `[uisp_integration]\ntoken = ["${LONG_SECRET}"]\n`,
    `[splynx_integration]\napi_secret = ${LONG_SECRET.slice(0, 40)}\n`, // bare word: a TOML syntax error quoting the line
    `[sonar_integration]\nsonar_api_key = "${LONG_SECRET}\n`, // unterminated string
    `[uisp_integration]\ntoken = """${LONG_SECRET}\n${LONG_SECRET}\n`, // unterminated multi-line string
  ]) {
    try {
      parseConfigText(`[bridge]\nto_internet = "a"\nto_network = "b"\n${text}`, 'lqos.conf');
      assert.fail('must not load');
    } catch (e) {
      assert.ok(e instanceof ConfigError, String(e));
      assertNoPartOf(`${e.message}\n${e.details.join('\n')}`, LONG_SECRET.slice(0, 40), 'the ConfigError');
      assert.match(`${e.message}\n${e.details.join('\n')}`, /\(value hidden\)/);
    }
  }
});

test('the scheduler\'s urgent issue for an invalid config (seen by read-only users) carries no part of a secret value', async () => {
  const w = makeSchedWorkspace();
  cleanups.push(() => w.cleanup());
  const d = await startTestDaemon(w);
  cleanups.push(() => d.stop());
  // The file goes bad after lqosd started: the scheduler's next cycle cannot use it.
  writeFileSync(w.config, `${readFileSync(w.config, 'utf8')}[uisp_integration]\nenable_uisp = true\ntoken = ["${LONG_SECRET}"]\n`);
  const s = new Scheduler({ configPath: w.config, busPath: w.busPath, log: quiet, busWaitMs: 15_000, logDir: w.logDir, intervalMs: 3_600_000, integrations: () => [] });
  cleanups.push(() => s.stop());
  await s.runCycle('scheduled');
  const issues = (await busRequest<'urgent_list', any>('urgent_list', {}, { path: w.busPath })).issues as any[];
  const issue = issues.find((i) => i.code === 'SCHEDULER_CONFIG_INVALID');
  assert.ok(issue, JSON.stringify(issues));
  assert.match(issue.message, /uisp_integration\.token: invalid \(value hidden\)/);
  assertNoPartOf(JSON.stringify(issues), LONG_SECRET, 'the urgent issues');
});

test('repointing a CRM URL keeps no stored secret: 400 naming the secrets unless they are sent again', async () => {
  await withHarness(async (h) => {
    const { admin } = await setupUsers(h);
    const before = readFileSync(h.configPath, 'utf8');
    const raw = () => parseToml(readFileSync(h.configPath, 'utf8')) as any;

    // New URL, token left out or sent as the "set" placeholder: refused, nothing written.
    for (const patch of [{ url: 'https://crm.attacker.example' }, { url: 'https://crm.attacker.example', token: 'set' }]) {
      const r = await admin.put('/api/config', { uisp_integration: patch });
      assert.equal(r.status, 400, r.text);
      assert.equal(r.json.error, 'secret_reentry_required');
      assert.match(r.json.message, /^uisp_integration\.url changes where the credentials are sent: enter uisp_integration\.token again/);
      assert.doesNotMatch(r.text, new RegExp(SECRETS.uisp));
    }
    // Every stored secret of the section is named (Sonar: API key and SNMP community).
    const sonar = await admin.put('/api/config', { sonar_integration: { sonar_api_url: 'https://sonar.new.example/api/graphql' } });
    assert.equal(sonar.status, 400);
    assert.match(sonar.json.message, /enter sonar_integration\.sonar_api_key, sonar_integration\.snmp_community again/);
    // Removing the URL (null) is a change too: the schema default would receive the stored token.
    const removed = await admin.put('/api/config', { uisp_integration: { url: null } });
    assert.equal(removed.status, 400, removed.text);
    assert.match(removed.json.message, /^uisp_integration\.url changes where the credentials are sent/);
    assert.equal(readFileSync(h.configPath, 'utf8'), before);

    // Re-entered in the same save: accepted.
    const ok = await admin.put('/api/config', { uisp_integration: { url: 'https://uisp.new.example', token: 'NEW-UISP-TOKEN' } });
    assert.equal(ok.status, 200, ok.text);
    assert.equal(raw().uisp_integration.url, 'https://uisp.new.example');
    assert.equal(raw().uisp_integration.token, 'NEW-UISP-TOKEN');
    // Same URL sent back with the placeholder (what the form does): nothing to re-enter.
    const same = await admin.put('/api/config', { uisp_integration: { url: 'https://uisp.new.example', token: 'set', site: 'Tower 2' } });
    assert.equal(same.status, 200, same.text);
    assert.equal(raw().uisp_integration.token, 'NEW-UISP-TOKEN');
    // Clearing the secret while moving is fine too ("" is a new value).
    const cleared = await admin.put('/api/config', { netzur_integration: { api_url: 'https://netzur.example', api_key: '' } });
    assert.equal(cleared.status, 200, cleared.text);
  });
});

test('state_directory change: the users file is copied (0600) into the new directory; an existing one is kept; an unusable one refuses the save', async () => {
  await withHarness(async (h) => {
    const { admin } = await setupUsers(h);
    const users = readFileSync(h.usersFile, 'utf8');
    assert.match(users, /admin/);

    const moved = join(h.dir, 'new-state');
    const r = await admin.put('/api/config', { state_directory: moved });
    assert.equal(r.status, 200, r.text);
    assert.equal(readFileSync(join(moved, 'lqusers.toml'), 'utf8'), users, 'same users in the new directory');
    assert.equal(octal(mode(join(moved, 'lqusers.toml'))), '0600');
    assert.equal(octal(mode(moved)), '0750');
    assert.equal(readFileSync(h.usersFile, 'utf8'), users, 'the old file is left in place');

    // A directory that has its own users file keeps it.
    const other = join(h.dir, 'other-state');
    mkdirSync(other);
    writeFileSync(join(other, 'lqusers.toml'), '# other users\n', { mode: 0o600 });
    assert.equal((await admin.put('/api/config', { state_directory: other })).status, 200);
    assert.equal(readFileSync(join(other, 'lqusers.toml'), 'utf8'), '# other users\n');

    // A path that cannot be a directory: refused, config unchanged.
    const before = readFileSync(h.configPath, 'utf8');
    writeFileSync(join(h.dir, 'a-file'), 'x');
    const bad = await admin.put('/api/config', { state_directory: join(h.dir, 'a-file', 'state') });
    assert.equal(bad.status, 409, bad.text);
    assert.equal(bad.json.error, 'state_directory_unusable');
    assert.match(bad.json.message, /cannot copy the web users file .*lqusers\.toml there .*nothing was saved/);
    assert.equal(readFileSync(h.configPath, 'utf8'), before);
    assert.ok(!existsSync(join(h.dir, 'a-file', 'state')));
  });
});

test('state_directory change: a shared directory (0755, other files) is refused and left as it is; system directories are refused before anything is touched', async () => {
  await withHarness(async (h) => {
    const { admin } = await setupUsers(h);
    const before = readFileSync(h.configPath, 'utf8');

    // A 0755 directory that holds something else: lqosd would have to narrow it, and it is not its own.
    const shared = join(h.dir, 'shared');
    mkdirSync(shared);
    chmodSync(shared, 0o755);
    writeFileSync(join(shared, 'unrelated.txt'), 'not lqos\n');
    const r = await admin.put('/api/config', { state_directory: shared });
    assert.equal(r.status, 409, r.text);
    assert.equal(r.json.error, 'state_directory_shared');
    assert.match(r.json.message, /state_directory .*shared is mode 0755 and holds files that are not lqos state \(unrelated\.txt\).*Nothing was saved.*chmod 0750/);
    assert.equal(octal(mode(shared)), '0755', 'mode unchanged');
    assert.deepEqual(readdirSync(shared), ['unrelated.txt'], 'no users file written');
    assert.equal(readFileSync(h.configPath, 'utf8'), before);

    // Already 0750 (narrowed by its owner): nothing to chmod, so it is accepted and its other files kept.
    chmodSync(shared, 0o750);
    assert.equal((await admin.put('/api/config', { state_directory: shared })).status, 200);
    assert.equal(octal(mode(shared)), '0750');
    assert.deepEqual(readdirSync(shared).sort(), ['lqusers.toml', 'unrelated.txt']);
    const saved = readFileSync(h.configPath, 'utf8');

    // System directories, absolute or reached through a relative path: 422 naming the key, nothing touched.
    const etcMode = mode('/etc');
    const etcUsers = existsSync('/etc/lqusers.toml');
    const up = '../'.repeat(h.configPath.split('/').length);
    for (const dir of ['/etc', '/etc/', '/', '/var/lib', '/tmp', '/usr', `${up}etc`]) {
      const bad = await admin.put('/api/config', { state_directory: dir });
      assert.equal(bad.status, 422, `${dir}: ${bad.text}`);
      assert.equal(bad.json.error, 'invalid_config');
      assert.match(bad.json.message, /state_directory: .* is a system directory: .*set state_directory to one such as \/var\/lib\/lqos/, dir);
      assert.equal(readFileSync(h.configPath, 'utf8'), saved, dir);
    }
    assert.equal(mode('/etc'), etcMode, '/etc mode unchanged');
    assert.equal(existsSync('/etc/lqusers.toml'), etcUsers, 'no users file written to /etc');

    // The config file itself gets the same check (every path: lqosd, lqusers, LibreQoS).
    assert.throws(() => parseConfigText('state_directory = "/etc"\n', '/etc/lqos.conf'), (e: unknown) => e instanceof ConfigError && /state_directory: "\/etc" is a system directory/.test(e.message));
    for (const ok of ['/var/lib/lqos', '/tmp/xyz/state', '/etc/lqos', '/opt/libreqos/state']) {
      assert.equal(parseConfigText(`state_directory = "${ok}"\n`, '/etc/lqos.conf').config.state_directory, ok);
    }
  });
});

test('lqosd start: a 0755 state directory holding other files keeps its mode, with a warning; an own one (only lqos state) is narrowed', async () => {
  const w = makeSchedWorkspace();
  cleanups.push(() => w.cleanup());
  mkdirSync(w.stateDir, { recursive: true });
  chmodSync(w.stateDir, 0o755);
  writeFileSync(join(w.stateDir, 'operator-notes.txt'), 'mine\n');
  const { log, records } = capturingLogger('warn');
  const d = await startTestDaemon(w, { log });
  await d.stop();
  assert.equal(octal(mode(w.stateDir)), '0755', 'not chmodded');
  const warned = records.filter((r) => r.level === 40 && /state_directory .* is mode 0755 and holds files that are not lqos state \(operator-notes\.txt\)/.test(r.msg));
  assert.equal(warned.length, 1, JSON.stringify(records.map((r) => r.msg)));
  assert.match(warned[0]!.msg, /leaves its mode as it is .*chmod 0750/);

  // Only lqos state (what that start wrote, plus backups and temp files): narrowed at the next start.
  rmSync(join(w.stateDir, 'operator-notes.txt'));
  writeFileSync(join(w.stateDir, 'lqusers.toml.bak.1'), '');
  writeFileSync(join(w.stateDir, 'urgent_issues.json.tmp-1-abcd'), '');
  const d2 = await startTestDaemon(w);
  await d2.stop();
  assert.equal(octal(mode(w.stateDir)), '0750', JSON.stringify(readdirSync(w.stateDir)));
});

test('state files: state directory 0750 at lqosd start, telemetry.sqlite (+ -wal/-shm) and the effective inputs 0640, integration output 0640', async (t) => {
  const umask = process.umask(0o022); // the usual shell umask: the modes must not depend on it
  t.after(() => process.umask(umask));
  // lqosd narrows an existing 0755 state directory at start.
  const w = makeSchedWorkspace();
  cleanups.push(() => w.cleanup());
  mkdirSync(w.stateDir, { mode: 0o755 });
  chmodSync(w.stateDir, 0o755);
  const d = await startTestDaemon(w);
  cleanups.push(() => d.stop());
  assert.equal(octal(mode(w.stateDir)), '0750');

  // Telemetry history: a new database and its WAL files are 0640; an old 0644 one is narrowed.
  const dir = testDir(t, 'lqos-modes-');
  const db = join(dir, 'state', 'telemetry.sqlite');
  let h = new TelemetryHistory({ path: db });
  h.flush();
  assert.ok(existsSync(`${db}-wal`) && existsSync(`${db}-shm`), 'WAL mode creates -wal and -shm');
  for (const f of [db, `${db}-wal`, `${db}-shm`]) assert.equal(octal(mode(f)), '0640', f);
  h.close();
  chmodSync(db, 0o644);
  h = new TelemetryHistory({ path: db });
  assert.equal(octal(mode(db)), '0640');
  h.close();

  // Effective inputs (operator files + lqos_overrides.json) in the state directory: 0640.
  const paths = { inputs: inputPaths({ lqos_directory: w.dir }), state: statePaths(w.stateDir) };
  writeFileSync(paths.inputs.overrides, JSON.stringify({ circuit_adjustments: [{ type: 'circuit_adjust_speed', circuit_id: '1001', max_download_bandwidth: 77 }] }));
  const r = buildEffectiveInputs(paths, new RecordingLog());
  assert.ok(r.ok && r.overridden);
  for (const f of readdirSync(paths.state.effectiveDir)) assert.equal(octal(mode(join(paths.state.effectiveDir, f))), '0640', f);

  // Integration output: new files 0640 even under a permissive umask; an operator's 0600 stays 0600.
  const out = testDir(t, 'lqos-modes-out-');
  const networkJson = readFileSync(w.network, 'utf8');
  const shapedDevicesCsv = readFileSync(w.devices, 'utf8');
  writeIntegrationOutput({ dir: out, networkJson, shapedDevicesCsv, crm: 'Test' });
  assert.equal(octal(mode(join(out, 'ShapedDevices.csv'))), '0640');
  assert.equal(octal(mode(join(out, 'network.json'))), '0640');
  chmodSync(join(out, 'ShapedDevices.csv'), 0o600);
  writeIntegrationOutput({ dir: out, networkJson, shapedDevicesCsv, crm: 'Test' });
  assert.equal(octal(mode(join(out, 'ShapedDevices.csv'))), '0600');
});
