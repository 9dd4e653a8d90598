// test-gate: shared (CPU only; see test/support/gate.ts)
/**
 * Disk full (needs root: a 256 KiB tmpfs holds the state and input directories; a filler file
 * leaves only a few KiB). Each writer must fail with an error naming the file and the full mount,
 * and leave every old file and backup byte-identical with no temp file behind:
 *   (a) writeFileAtomic of a big file;
 *   (b) ./LibreQoS --dry-run (its run files and the planner state);
 *   (c) web saves: PUT /api/config and PUT /api/shaped-devices;
 *   (d) an integration (bin/integration.ts against the fake Netzur CRM) writing ShapedDevices.csv
 *       and network.json;
 *   (e) a real (not dry) run: the records of the new plan are written before the kernel is
 *       touched, so a full disk ends the run with exit 8 and nothing applied.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execa } from 'execa';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { saveAppliedPlan } from '../../lib/apply/appliedPlan.ts';
import { interfacesOf, parseConfigText } from '../../lib/config/load.ts';
import { statePaths } from '../../lib/config/paths.ts';
import { EXIT } from '../../lib/shaping/exitCodes.ts';
import { runShaping } from '../../lib/shaping/run.ts';
import { capturingLogger } from '../support/log.ts';
import { DiskFullError, writeFileAtomic } from '../../lib/util/atomicFile.ts';
import { NETZUR_KEY, NETZUR_PATH, startFakeNetzur } from '../fixtures/crm/netzur.ts';
import { useFakeServer } from '../integrations/helpers.ts';
import { buildPlan } from '../support/plan.ts';
import { repoRoot } from '../support/paths.ts';
import { setupUsers } from '../support/users.ts';
import { runCli, testDir } from '../support/workspace.ts';
import { withHarness } from '../web/helpers.ts';
import { IS_ROOT, mountTmpfs, type Tmpfs } from './tmpfs.ts';

const skip = !IS_ROOT && 'needs root (mounts a tmpfs)';
const fs = IS_ROOT ? mountTmpfs(256) : (undefined as unknown as Tmpfs);
const netzur = useFakeServer(startFakeNetzur);

const HEADER = 'Circuit ID,Circuit Name,Device ID,Device Name,Parent Node,MAC,IPv4,IPv6,Download Min Mbps,Upload Min Mbps,Download Max Mbps,Upload Max Mbps,Comment';
const NETWORK = JSON.stringify({ AP_1: { downloadBandwidthMbps: 1000, uploadBandwidthMbps: 1000 } }) + '\n';
function devices(n: number): string {
  const rows = Array.from({ length: n }, (_, i) => `c${i},Customer ${i},d${i},Router ${i},AP_1,,100.64.${i >> 8}.${i & 255},,1,1,${10 + (i % 90)},5,`);
  return [HEADER, ...rows].join('\n') + '\n';
}

/** Asserts the tmpfs holds exactly `before` (every file byte-identical) and no temp file. */
function assertUnchanged(before: Map<string, Buffer>): void {
  const after = fs.snapshot();
  assert.deepEqual([...after.keys()].sort(), [...before.keys()].sort(), 'no file added or removed');
  for (const [p, bytes] of before) assert.ok(after.get(p)!.equals(bytes), `${p} is byte-identical`);
  assert.deepEqual(fs.temps(), [], 'no temp files left');
}

/** The full-disk message: names the file (or directory) and the tmpfs as the full mount. */
function diskFullText(what: string): RegExp {
  const esc = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  return new RegExp(`${esc(what)}.*\\(mount ${esc(fs.dir)}[,)].*is full \\((ENOSPC|EDQUOT)\\)`);
}

test('(a) writeFileAtomic of a big file on a full disk: clear error, file and all backups byte-identical, no temp file', { skip }, () => {
  const dir = join(fs.dir, 'a');
  const f = join(dir, 'planner_state.json');
  for (let v = 1; v <= 7; v++) writeFileAtomic(f, JSON.stringify({ v, pad: 'x'.repeat(500) }), { backup: true });
  const before = fs.snapshot();
  fs.fill(8);
  try {
    assert.ok(fs.freeKiB() <= 8, `free: ${fs.freeKiB()} KiB`);
    let err: unknown;
    try {
      writeFileAtomic(f, 'y'.repeat(64 * 1024), { backup: true });
    } catch (e) {
      err = e;
    }
    assert.ok(err instanceof DiskFullError, String(err));
    assert.equal(err.path, f);
    assert.equal(err.mount, fs.dir);
    assert.match(err.message, diskFullText(`cannot write ${f}: the disk holding ${dir}`));
    assert.match(err.message, new RegExp(`${f} and its backups are unchanged`));
    assertUnchanged(before);
    assert.equal(JSON.parse(readFileSync(`${f}.bak.4`, 'utf8')).v, 2, 'the oldest of the five backups is still there');
  } finally {
    fs.drain();
  }
});

test('(b) LibreQoS --dry-run on a full disk: exits non-zero with a clear error; applied plan, planner state and backups intact', { skip }, async (t) => {
  const inputs = join(fs.dir, 'b');
  const state = join(inputs, 'state');
  mkdirSync(inputs);
  const confDir = testDir(t, 'lqos-diskfull-conf-');
  const conf = join(confDir, 'lqos.conf');
  writeFileSync(
    conf,
    `lqos_directory = "${inputs}"\nstate_directory = "${state}"\n[bridge]\nto_internet = "lqt-none0"\nto_network = "lqt-none1"\n[queues]\noverride_available_queues = 2\ndry_run = true\n`,
  );
  writeFileSync(join(inputs, 'network.json'), NETWORK);
  writeFileSync(join(inputs, 'ShapedDevices.csv'), devices(5));
  for (let i = 0; i < 2; i++) {
    const ok = await runCli(['--dry-run', '--config', conf]);
    assert.equal(ok.code, 0, ok.stderr);
  }
  const paths = statePaths(state);
  const plan = buildPlan({ devices: devices(5), network: NETWORK }).plan;
  saveAppliedPlan(paths.appliedPlan, plan);
  saveAppliedPlan(paths.appliedPlan, plan);
  for (const f of [paths.appliedPlan, `${paths.appliedPlan}.bak`, paths.plannerState, `${paths.plannerState}.bak`]) {
    assert.ok(fs.snapshot().has(f), `${f} exists before the full-disk run`);
  }
  // A bigger network: its run files do not fit in what is left.
  writeFileSync(join(inputs, 'ShapedDevices.csv'), devices(300));
  const before = fs.snapshot();
  fs.fill(8);
  try {
    const r = await runCli(['--dry-run', '--config', conf]);
    if (process.env.LQOS_TEST_LOG) console.log(r.code, r.stderr);
    assert.equal(r.code, 8, 'exit 8: a file could not be written (README exit codes)');
    const errors = r.logs.filter((l) => l.level >= 50).map((l) => l.msg);
    assert.ok(!errors.some((m) => /unexpected failure/.test(m)), errors.join('\n'));
    assert.ok(
      errors.some((m) => diskFullText(`cannot write ${paths.root}`).test(m) && /and its backups are unchanged/.test(m)),
      `an error names the file and the full mount:\n${errors.join('\n')}`,
    );
    assertUnchanged(before);
  } finally {
    fs.drain();
  }
});

test('(c) web saves on a full disk: PUT /api/config and PUT /api/shaped-devices answer with an error naming the disk; files and backups intact', { skip }, async () => {
  const webTmp = join(fs.dir, 'c');
  mkdirSync(webTmp);
  const oldTmp = process.env.TMPDIR;
  const restoreTmp = () => (oldTmp === undefined ? delete process.env.TMPDIR : (process.env.TMPDIR = oldTmp));
  process.env.TMPDIR = webTmp; // the harness makes its directory (config, inputs, state) under os.tmpdir()
  try {
    await withHarness(async (h) => {
      restoreTmp();
      assert.ok(h.configPath.startsWith(webTmp), h.configPath);
      const { admin } = await setupUsers(h);
      assert.equal((await admin.put('/api/config', { node_name: 'edge-1' })).status, 200);
      const got = await admin.get('/api/shaped-devices');
      assert.equal((await admin.put('/api/shaped-devices', { circuits: got.json.circuits })).status, 200);
      assert.ok(fs.snapshot().has(`${h.configPath}.bak`) && fs.snapshot().has(`${h.devicesPath}.bak`));
      const before = fs.snapshot();

      // Both saves first (each must leave everything as it was), then their answers.
      fs.fill(0);
      let config;
      try {
        config = await admin.put('/api/config', { node_name: 'edge-2' });
        assertUnchanged(before);
      } finally {
        fs.drain();
      }
      fs.fill(4);
      let inputs;
      try {
        const many = Array.from({ length: 200 }, (_, i) => ({
          ...got.json.circuits[0],
          id: `big${i}`,
          name: `Big customer ${i}`,
          devices: [{ id: `bigd${i}`, name: `Big CPE ${i}`, ipv4: [`100.65.${i >> 8}.${i & 255}`] }],
        }));
        inputs = await admin.put('/api/shaped-devices', { circuits: [...got.json.circuits, ...many] });
        assertUnchanged(before);
      } finally {
        fs.drain();
      }
      for (const [r, file] of [[config, h.configPath], [inputs, h.devicesPath]] as const) {
        assert.equal(r.status, 507, `${r.status} ${r.text}`);
        assert.equal(r.json.error, 'disk_full');
        assert.match(r.json.message, diskFullText(file), r.text);
        assert.match(r.json.message, /disk/);
      }
    });
  } finally {
    restoreTmp();
  }
});

test('(d) an integration on a full disk: exits 1 naming the directory and the full mount; ShapedDevices.csv and network.json intact', { skip }, async (t) => {
  const out = join(fs.dir, 'd');
  mkdirSync(out);
  const confDir = testDir(t, 'lqos-diskfull-conf-');
  const conf = join(confDir, 'lqos.conf');
  writeFileSync(
    conf,
    `lqos_directory = "${out}"\n[bridge]\nto_internet = "eth0"\nto_network = "eth1"\n[netzur_integration]\nenable_netzur = true\napi_key = "${NETZUR_KEY}"\napi_url = "${netzur.url}${NETZUR_PATH}"\n`,
  );
  const integration = () =>
    execa(join(repoRoot, 'LibreQoS'), ['integration', 'netzur', '--config', conf], { reject: false, cwd: repoRoot, env: { LQOS_LOG_FORMAT: 'json' } });
  const first = await integration();
  assert.equal(first.exitCode, 0, first.stderr);
  assert.ok(fs.snapshot().has(join(out, 'ShapedDevices.csv')) && fs.snapshot().has(join(out, 'network.json')));
  const before = fs.snapshot();
  fs.fill(0);
  try {
    const r = await integration();
    assert.equal(r.exitCode, 1, `${r.stdout}\n${r.stderr}`);
    assert.match(r.stderr, diskFullText(`Netzur: cannot write ${out}: the disk holding it`));
    assert.match(r.stderr, /the previous files are unchanged/);
    assertUnchanged(before);
  } finally {
    fs.drain();
  }
});

test('(e) a real run on a full disk: exit 8 before the kernel is touched (no tc, no map), every file intact', { skip }, async () => {
  const state = join(fs.dir, 'e');
  const paths = statePaths(state);
  // Interfaces that do not exist: were the kernel touched, tc would fail (exit 4), not exit 8.
  const config = parseConfigText('[bridge]\nto_internet = "lqt-none0"\nto_network = "lqt-none1"\n', 'lqos.conf').config;
  saveAppliedPlan(paths.appliedPlan, buildPlan({ devices: devices(5), network: NETWORK }).plan);
  const before = fs.snapshot();
  // 120 circuits: room for the run's own files written before the apply (debug/linux_tc.txt,
  // ip_mappings.txt, shaping/queuingStructure.json: ~145 KiB), not also for the records of the
  // new plan (applied plan, planner state, applied tc and mappings: another ~140 KiB).
  fs.fill(175);
  try {
    const { log, records } = capturingLogger();
    let sinkCalled = false;
    const r = await runShaping({
      config,
      ifaces: interfacesOf(config)!,
      queues: 2,
      inputs: { devicesFile: 'ShapedDevices.csv', networkFile: 'network.json', devicesText: devices(120), networkText: NETWORK },
      paths,
      log,
      dryRun: false,
      updateonly: false,
      verbose: false,
      sink: async () => {
        sinkCalled = true;
        return undefined;
      },
    });
    assert.equal(r.code, EXIT.write, JSON.stringify(records.filter((x) => x.level >= 50)));
    assert.equal(sinkCalled, false, 'the IP map was not touched');
    const err = records.find((x) => x.level >= 50 && /nothing was applied/.test(x.msg));
    assert.ok(err, JSON.stringify(records.filter((x) => x.level >= 40)));
    assert.match(err.msg, diskFullText(`cannot write ${paths.appliedPlan}`));
    assert.ok(!records.some((x) => /tc failed|applying failed/.test(x.msg)), 'no tc ran');
    const after = fs.snapshot();
    for (const [p, bytes] of before) assert.ok(after.get(p)?.equals(bytes), `${p} is byte-identical`);
    assert.deepEqual(fs.temps(), [], 'no temp files left');
  } finally {
    fs.drain();
  }
});
