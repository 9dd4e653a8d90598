/**
 * The LibreQoS command end to end (as a child process): validation exit codes on upstream
 * sample inputs, dry runs that never touch the kernel, files written, lock and planner reset.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync, writeFileSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { execa } from 'execa';
import { needsUpstream, repoRoot, upstreamFixturesDir } from '../support/paths.ts';
import { makeWorkspace, runCli, testDir, type Workspace } from '../support/workspace.ts';

const upstream = upstreamFixturesDir;
const workspaces: Workspace[] = [];
after(() => workspaces.forEach((w) => w.cleanup()));
function ws(opts: Parameters<typeof makeWorkspace>[0]) {
  const w = makeWorkspace(opts);
  workspaces.push(w);
  return w;
}
const read = (p: string) => readFileSync(p, 'utf8');
const example = (f: string) => read(join(repoRoot, 'conf', 'example', f));

test('--validate accepts the upstream v1.4 sample inputs', { skip: needsUpstream('v1.4-ShapedDevices.example.csv', 'v1.4-network.example.json') }, async () => {
  const w = ws({ devices: read(join(upstream, 'v1.4-ShapedDevices.example.csv')), network: read(join(upstream, 'v1.4-network.example.json')) });
  const r = await runCli(['--config', w.config, '--validate']);
  assert.equal(r.code, 0, r.stderr);
  assert.ok(r.logs.some((l) => /passed validation/.test(l.msg)));
});

test('--validate accepts the upstream 2.2 network.json', { skip: needsUpstream('v1.4-ShapedDevices.example.csv', 'network.example.json') }, async () => {
  const w = ws({ devices: read(join(upstream, 'v1.4-ShapedDevices.example.csv')), network: read(join(upstream, 'network.example.json')) });
  const r = await runCli(['--config', w.config, '--validate']);
  assert.equal(r.code, 0, r.stderr);
});

test('--validate rejects the upstream 2.2 CSV whose rows are shorter than its header (exit 1, line named)', { skip: needsUpstream('ShapedDevices.example.csv', 'network.example.json') }, async () => {
  const w = ws({ devices: read(join(upstream, 'ShapedDevices.example.csv')), network: read(join(upstream, 'network.example.json')) });
  const r = await runCli(['--config', w.config, '--validate']);
  assert.equal(r.code, 1);
  assert.ok(r.logs.some((l) => l.level === 50 && /ShapedDevices\.csv:2\b/.test(l.msg)), r.stderr);
});

test('missing config file → exit 2 with advice', async () => {
  const r = await runCli(['--config', '/nonexistent/lqos.conf', '--validate']);
  assert.equal(r.code, 2);
  assert.match(r.stderr, /not found.*lqos\.conf\.example/);
});

test('missing input file → exit 1 naming the file', async () => {
  const w = ws({ network: '{}' });
  const r = await runCli(['--config', w.config, '--validate']);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /ShapedDevices\.csv does not exist/);
});

test('an input that cannot be read (a directory in its place) → exit 1 naming the file, not a crash', async () => {
  const w = ws({ network: '{}' });
  mkdirSync(join(w.dir, 'ShapedDevices.csv'));
  const r = await runCli(['--config', w.config, '--validate']);
  assert.equal(r.code, 1, r.stderr);
  const err = r.logs.find((l) => l.level === 50);
  assert.ok(err, r.stderr);
  assert.match(err.msg, /ShapedDevices\.csv cannot be read \(EISDIR: .*\); it must be a readable file/);
  assert.ok(!r.logs.some((l) => l.level === 60), `no "unexpected failure": ${r.stderr}`);
});

test('bad command-line flag → exit 2', async () => {
  const r = await runCli(['--no-such-flag']);
  assert.equal(r.code, 2);
});

test('--direct on interfaces that do not exist → exit 2 naming them, with or without override_available_queues, and nothing in the kernel changes', async () => {
  const before = await kernelSnapshot();
  for (const override of ['override_available_queues = 2\n', '']) {
    const w = ws({
      conf: (dir) => `lqos_directory = "${dir}"\nstate_directory = "${join(dir, 'state')}"\n[bridge]\nto_internet = "lqt-none0"\nto_network = "lqt-none1"\n[queues]\n${override}`,
      devices: example('ShapedDevices.csv'),
      network: example('network.json'),
    });
    const r = await runCli(['--config', w.config, '--direct']);
    assert.equal(r.code, 2, `${override || 'no override'}: ${r.stderr.slice(-600)}`);
    assert.ok(r.logs.some((l) => l.level === 50 && l.msg === 'interface lqt-none1, lqt-none0 does not exist on this host; fix [bridge]/[single_interface] in the config'), r.stderr.slice(-600));
    assert.ok(!existsSync(join(w.dir, 'state', 'shaping', 'applied_plan.json')), 'nothing applied');
  }
  assert.equal(await kernelSnapshot(), before);
});

async function kernelSnapshot(): Promise<string> {
  const q = await execa('tc', ['-j', 'qdisc', 'show'], { reject: false });
  const l = await execa('ip', ['-j', 'link', 'show'], { reject: false });
  // Counters change with traffic; keep only structure.
  const qd = JSON.parse(String(q.stdout) || '[]').map((x: Record<string, unknown>) => `${x.dev} ${x.kind} ${x.handle} ${x.parent ?? 'root'}`);
  const links = JSON.parse(String(l.stdout) || '[]').map((x: Record<string, unknown>) => `${x.ifname} ${JSON.stringify(x.xdp ?? null)}`);
  return [...qd, ...links].sort().join('\n');
}

test('--debug on a dry run prints every planned command, writes the files and changes nothing in the kernel', async () => {
  // Use interfaces that really exist here, so a stray apply would be visible.
  const links = JSON.parse(String((await execa('ip', ['-j', 'link', 'show'])).stdout)) as Array<{ ifname: string }>;
  const real = links.map((l) => l.ifname);
  const dev = real.find((n) => n !== 'lo') ?? 'lo';
  const w = ws({ devices: example('ShapedDevices.csv'), network: example('network.json') });
  writeFileSync(
    w.config,
    `lqos_directory = "${w.dir}"\nstate_directory = "${w.stateDir}"\n[bridge]\nto_internet = "lo"\nto_network = "${dev}"\n[queues]\noverride_available_queues = 2\ndry_run = true\n`,
  );
  const before = await kernelSnapshot();
  const r = await runCli(['--config', w.config, '--debug']);
  const afterSnap = await kernelSnapshot();
  assert.equal(r.code, 0, r.stderr);
  assert.equal(afterSnap, before, 'kernel state changed during a dry run');
  const tcFile = read(join(w.stateDir, 'debug', 'linux_tc.txt')).split('\n').filter(Boolean);
  const printed = r.logs.filter((l) => l.msg.startsWith('tc ')).map((l) => l.msg.slice(3));
  assert.deepEqual(printed, tcFile);
  assert.ok(tcFile.length > 20);
  const maps = read(join(w.stateDir, 'debug', 'ip_mappings.txt')).split('\n').filter(Boolean);
  assert.equal(r.logs.filter((l) => l.msg.startsWith('map ')).length, maps.length);
  assert.ok(existsSync(join(w.stateDir, 'shaping', 'queuingStructure.json')));
  assert.ok(existsSync(join(w.stateDir, 'shaping', 'planner_state.json')));
  assert.ok(!existsSync(join(w.stateDir, 'shaping', 'lastGoodConfig.csv')), 'a dry run is not an apply');
});

test('invalid inputs (file-level: a row with an extra field) on a run → exit 1, no files written, planner state untouched', async () => {
  const w = ws({ devices: example('ShapedDevices.csv'), network: example('network.json') });
  const first = await runCli(['--config', w.config]);
  assert.equal(first.code, 0, first.stderr);
  const state = read(join(w.stateDir, 'shaping', 'planner_state.json'));
  const tcBefore = read(join(w.stateDir, 'debug', 'linux_tc.txt'));
  // (A bad address alone is row-level: that circuit would be skipped and the rest applied.)
  w.write('ShapedDevices.csv', example('ShapedDevices.csv').replace('100.64.1.2,', '100.64.1.2,extra,'));
  const r = await runCli(['--config', w.config]);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /ShapedDevices\.csv:3\b/);
  assert.equal(read(join(w.stateDir, 'shaping', 'planner_state.json')), state);
  assert.equal(read(join(w.stateDir, 'debug', 'linux_tc.txt')), tcBefore);
});

test('--planner-reset plans without the stored class ids; a dry run keeps them stored (test/cli/plannerReset.test.ts: the real runs)', async () => {
  const w = ws({ devices: example('ShapedDevices.csv'), network: example('network.json') });
  assert.equal((await runCli(['--config', w.config])).code, 0);
  const statePath = join(w.stateDir, 'shaping', 'planner_state.json');
  const st = JSON.parse(read(statePath));
  st.circuits['1001'].minor = 0x77; // pretend an old id
  writeFileSync(statePath, JSON.stringify(st));
  assert.equal((await runCli(['--config', w.config])).code, 0);
  assert.match(read(join(w.stateDir, 'debug', 'linux_tc.txt')), /classid 1:77 /);
  const stored = read(statePath);
  const r = await runCli(['--config', w.config, '--planner-reset']);
  assert.equal(r.code, 0);
  assert.ok(r.logs.some((l) => /^--planner-reset: planning with fresh class ids/.test(l.msg)), r.stderr);
  assert.doesNotMatch(read(join(w.stateDir, 'debug', 'linux_tc.txt')), /classid 1:77 /);
  assert.equal(read(statePath), stored, 'a dry run saves no planner state of a reset');
});

test('a second run while the lock is held → exit 5; a stale lock is replaced', async () => {
  const w = ws({ devices: example('ShapedDevices.csv'), network: example('network.json') });
  mkdirSync(w.runDir, { recursive: true });
  const sleeper = execa('sleep', ['30']);
  try {
    writeFileSync(join(w.runDir, 'libreqos.lock'), `${sleeper.pid}\n`);
    const held = await runCli(['--config', w.config], { LQOS_RUN_DIR: w.runDir });
    assert.equal(held.code, 5);
    assert.match(held.stderr, new RegExp(`PID ${sleeper.pid}`));
  } finally {
    sleeper.kill();
  }
  await sleeper.catch(() => undefined);
  const stale = await runCli(['--config', w.config], { LQOS_RUN_DIR: w.runDir });
  assert.equal(stale.code, 0, stale.stderr);
  assert.ok(stale.logs.some((l) => /stale lock/.test(l.msg)));
  assert.ok(!existsSync(join(w.runDir, 'libreqos.lock')), 'lock released after the run');
});

test('Python-compatible wrapper runs the same command', async () => {
  const w = ws({ devices: example('ShapedDevices.csv'), network: example('network.json') });
  const r = await execa('python3', [join(repoRoot, 'LibreQoS.py'), '--config', w.config, '--validate'], { reject: false, env: { LQOS_LOG_FORMAT: 'json' } });
  assert.equal(r.exitCode, 0, String(r.stderr));
  assert.match(String(r.stderr), /passed validation/);
});

test('LibreQoS.py --debug (the upstream runbook command) logs every planned tc command and IP mapping', async (t) => {
  const w = ws({ devices: example('ShapedDevices.csv'), network: example('network.json') });
  const runDir = testDir(t, 'lqos-py-run-');
  const r = await execa('python3', [join(repoRoot, 'LibreQoS.py'), '--config', w.config, '--debug'], {
    reject: false,
    env: { LQOS_LOG_FORMAT: 'json', LQOS_RUN_DIR: runDir },
  });
  assert.equal(r.exitCode, 0, String(r.stderr));
  const logs = String(r.stderr).split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as { level: number; msg: string });
  assert.ok(logs.some((l) => l.level === 20), 'no debug-level records: --debug did not reach the command');
  const tcFile = read(join(w.stateDir, 'debug', 'linux_tc.txt')).split('\n').filter(Boolean);
  assert.ok(tcFile.length > 20, `only ${tcFile.length} planned tc commands`);
  assert.deepEqual(logs.filter((l) => l.msg.startsWith('tc ')).map((l) => l.msg.slice(3)), tcFile, 'the debug output does not show every planned tc command');
  const maps = read(join(w.stateDir, 'debug', 'ip_mappings.txt')).split('\n').filter(Boolean);
  assert.ok(maps.length > 0, 'no IP mappings planned');
  assert.equal(logs.filter((l) => l.msg.startsWith('map ')).length, maps.length);
  assert.ok(logs.some((l) => /this run's tc commands are in .*linux_tc\.txt/.test(l.msg)), 'the debug output does not say where the files are');
});

test('./LibreQoS integration NAME runs one CRM integration (fake Netzur, --dry-run) and rejects unknown names', async () => {
  const { startFakeNetzur, NETZUR_KEY, NETZUR_PATH } = await import('../fixtures/crm/netzur.ts');
  const srv = await startFakeNetzur();
  try {
    const w = ws({ devices: example('ShapedDevices.csv'), network: example('network.json') });
    writeFileSync(w.config, `${readFileSync(w.config, 'utf8')}\n[netzur_integration]\nenable_netzur = true\napi_key = "${NETZUR_KEY}"\napi_url = "${srv.url}${NETZUR_PATH}"\n`);
    const before = read(join(w.dir, 'ShapedDevices.csv'));
    const r = await execa(join(repoRoot, 'LibreQoS'), ['integration', 'netzur', '--dry-run', '--config', w.config], { reject: false, all: true });
    assert.equal(r.exitCode, 0, String(r.all));
    assert.match(String(r.all), /circuit/i);
    assert.equal(read(join(w.dir, 'ShapedDevices.csv')), before, 'a dry run wrote the file');
    const bad = await execa(join(repoRoot, 'LibreQoS'), ['integration', 'nosuchcrm'], { reject: false, all: true });
    assert.equal(bad.exitCode, 2);
    assert.match(String(bad.all), /choose one of: uisp, splynx/);
  } finally {
    await srv.close();
  }
});
