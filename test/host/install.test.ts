// test-gate: shared (files in temporary roots only; see test/support/gate.ts)
/**
 * scripts/install and scripts/uninstall into a throwaway root (`--root`, no systemctl): the files,
 * modes and units a production install leaves (units checked by `systemd-analyze verify`), a copy
 * with production dependencies only that still runs, an upgrade that keeps the config, web users,
 * state and inputs while replacing the code, a failed upgrade that leaves the old copy working, and
 * an uninstall that keeps the operator's files.
 *
 * The installs run from a copy of this checkout (node_modules hard-linked), so the "changed source"
 * of the upgrade never touches the real tree.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, realpathSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { execa } from 'execa';
import { ensureBuilt } from '../support/browser.ts';
import { repoRoot } from '../support/paths.ts';

const PREFIX = '/opt/lqos-ts';
const UNITS = ['lqosd.service', 'lqos_scheduler.service'];
let src: string; // copy of the checkout the installs run from
let root: string; // the staging root
const temps: string[] = [];

const mode = (p: string) => statSync(p).mode & 0o777;
const tmp = (tag: string) => {
  const d = mkdtempSync(join(tmpdir(), `lqos-install-${tag}-`));
  temps.push(d);
  return d;
};

before(async () => {
  // The browser tests run beside this file and rebuild webui/dist when it is older than its sources;
  // built fresh here first (under their build lock), it is not rebuilt while it is being copied.
  ensureBuilt();
  src = tmp('src');
  for (const f of ['LibreQoS', 'LibreQoS.py', 'lqosd', 'lqusers', 'lqtop', 'scheduler', 'scheduler.py', 'package.json', 'package-lock.json', 'README.md', 'tsconfig.json',
    'lib', 'bin', 'dataplane', 'webui', 'conf', 'systemd', 'docs', 'scripts', 'build']) {
    assert.ok(existsSync(join(repoRoot, f)), `${f} missing in the checkout (build/: npm run build; webui/dist: scripts/setup)`);
    cpSync(join(repoRoot, f), join(src, f), { recursive: true, preserveTimestamps: true, verbatimSymlinks: true });
  }
  const cp = await execa('cp', ['-al', join(repoRoot, 'node_modules'), join(src, 'node_modules')], { reject: false, all: true });
  assert.equal(cp.exitCode, 0, `hard-linking node_modules: ${cp.all}`);
  root = tmp('root');
});

after(() => {
  for (const d of temps) rmSync(d, { recursive: true, force: true });
});

async function install(args: string[] = [], from = src) {
  return execa(join(from, 'scripts/install'), ['--root', root, ...args], { reject: false, all: true, env: { LQOS_LAUNCH: '' } });
}
const inRoot = (p: string) => join(root, p);

/** Every file below dir (relative paths), skipping node_modules. */
function files(dir: string, rel = ''): string[] {
  const out: string[] = [];
  for (const e of readdirSync(join(dir, rel), { withFileTypes: true })) {
    const r = join(rel, e.name);
    if (e.isDirectory()) { if (e.name !== 'node_modules') out.push(...files(dir, r)); } else out.push(r);
  }
  return out;
}

/**
 * `systemd-analyze verify` on the installed units (with their drop-ins), the prefix rewritten to
 * where it lies below the staging root so that ExecStart= must name an executable that was really
 * installed. (`--root=` would also need the root to hold /bin/sh and systemd's own targets.)
 */
async function verifyUnits(prefix: string) {
  const v = tmp('verify');
  for (const u of UNITS) {
    const text = readFileSync(inRoot(`/etc/systemd/system/${u}`), 'utf8');
    writeFileSync(join(v, u), text.replaceAll(prefix, inRoot(prefix)));
    cpSync(inRoot(`/etc/systemd/system/${u}.d`), join(v, `${u}.d`), { recursive: true });
  }
  return execa('systemd-analyze', ['verify', ...UNITS.map((u) => join(v, u))], { reject: false, all: true, cwd: v });
}

async function runsFromCopy(prefix: string) {
  const copy = inRoot(prefix);
  for (const c of ['LibreQoS', 'lqosd', 'scheduler', 'lqusers', 'lqtop']) {
    const r = await execa(join(copy, c), ['--help'], { reject: false, all: true, cwd: '/', env: { LQOS_LAUNCH: '' } });
    assert.equal(r.exitCode, 0, `${c} --help from the installed copy: ${r.all}`);
    assert.match(String(r.all), new RegExp(`Usage: ${c}`), `${c} --help printed no usage`);
  }
  // LibreQoS starts from the start-up snapshot scripts/install made in the copy (its JavaScript
  // dependencies are in the blob; koffi & co. load from the pruned node_modules).
  const key = readFileSync(join(copy, 'build/snapshot/LibreQoS.key'), 'utf8').split('\n')[0];
  assert.equal(key, realpathSync(copy), 'the snapshot was made where the copy lies');
  const shown = await execa(join(copy, 'LibreQoS'), ['--help'], { reject: false, all: true, cwd: '/', env: { LQOS_LAUNCH: '', LQOS_LAUNCH_SHOW: '1', NODE_OPTIONS: '' } });
  assert.equal(shown.exitCode, 0, shown.all);
  assert.match(String(shown.stderr), new RegExp(`^launch: node --initial-old-space-size=128 --snapshot-blob ${realpathSync(copy)}/build/snapshot/LibreQoS\\.blob -- --help$`, 'm'), String(shown.all));
  assert.match(String(shown.stdout), /^Usage: LibreQoS/);
  // The native modules load and work from the pruned copy.
  const n = await execa('node', ['-e', `
    const Db = require('better-sqlite3'); const row = new Db(':memory:').prepare('select 41 + 1 as x').get();
    const koffi = require('koffi'); const strlen = koffi.load('libc.so.6').func('size_t strlen(const char *)');
    const argon2 = require('argon2');
    argon2.hash('pw').then((h) => argon2.verify(h, 'pw')).then((ok) => console.log(row.x, strlen('abcd'), ok));`],
  { reject: false, all: true, cwd: copy });
  assert.equal(n.exitCode, 0, `native modules in ${copy}: ${n.all}`);
  assert.equal(String(n.stdout).trim(), '42 4 true', `better-sqlite3 / koffi / argon2 results from the copy: ${n.all}`);
}

let firstOut = '';
test('install: runtime tree with production dependencies only, config 0600, state directories, units verified', async () => {
  const r = await install();
  firstOut = String(r.all);
  assert.equal(r.exitCode, 0, firstOut);
  const copy = inRoot(PREFIX);
  for (const f of ['LibreQoS', 'lqosd', 'scheduler', 'lqusers', 'bin/launch', 'build/.stamp', 'build/bin/LibreQoS.mjs', 'build/bin/lqosd.mjs',
    'build/bin/scheduler.mjs', 'build/bin/integration.mjs', 'build/bin/lqusers.mjs', 'build/bin/lqtop.mjs', 'build/bin/supportBundle.mjs', 'dataplane/build/lqos_kern.o', 'dataplane/build/lqos_flow_scan.o', 'dataplane/build.sh', 'webui/dist/index.html',
    'package.json', 'package-lock.json', 'scripts/uninstall', 'scripts/config-dirs.mjs', '.lqos-install']) {
    assert.ok(existsSync(join(copy, f)), `${f} missing from the installed copy ${copy}`);
  }
  const ts = files(copy).filter((f) => f.endsWith('.ts'));
  assert.deepEqual(ts, [], 'the copy holds compiled code only (no TypeScript sources)');
  assert.ok(!existsSync(join(copy, 'lib')) && !existsSync(join(copy, 'test')), 'no lib/ or test/ in the copy');
  const nm = readdirSync(join(copy, 'node_modules'));
  const types = existsSync(join(copy, 'node_modules/@types')) ? readdirSync(join(copy, 'node_modules/@types')).map((t) => `@types/${t}`) : [];
  for (const dev of ['tsx', 'vite', 'typescript', 'esbuild', 'fast-check', 'vue', 'vue-tsc', 'playwright-core', ...types]) {
    assert.ok(!nm.includes(dev) && !types.includes(dev), `development package ${dev} was installed into the copy`);
  }
  for (const dep of ['fastify', 'better-sqlite3', 'koffi', 'argon2', 'pino', 'zod', 'smol-toml']) {
    assert.ok(nm.includes(dep), `runtime dependency ${dep} missing from the copy`);
  }
  const writable = await execa('find', [copy, '-perm', '/022', '!', '-type', 'l', '-print', '-quit']);
  assert.equal(writable.stdout, '', 'nothing in the copy is group- or world-writable');

  // Config from the example, root-only; state directories from its defaults.
  assert.equal(readFileSync(inRoot('/etc/lqos.conf'), 'utf8'), readFileSync(join(src, 'conf/lqos.conf.example'), 'utf8'));
  assert.equal(mode(inRoot('/etc/lqos.conf')), 0o600);
  for (const d of ['/opt/libreqos/src', '/opt/libreqos/state']) assert.equal(mode(inRoot(d)), 0o750, `${d} mode`);

  // Units with the prefix written in (never the checkout's path), drop-ins for the directories.
  for (const u of UNITS) {
    const text = readFileSync(inRoot(`/etc/systemd/system/${u}`), 'utf8');
    assert.equal(mode(inRoot(`/etc/systemd/system/${u}`)), 0o644);
    assert.ok(!text.includes(src), `${u} names the source checkout ${src}`);
    const dropin = readFileSync(inRoot(`/etc/systemd/system/${u}.d/10-lqos-paths.conf`), 'utf8');
    assert.match(dropin, /^ReadWritePaths=-\/opt\/libreqos\/src -\/opt\/libreqos\/state$/m);
  }
  assert.match(readFileSync(inRoot('/etc/systemd/system/lqosd.service'), 'utf8'), /^ExecStart=\/opt\/lqos-ts\/lqosd$/m);
  assert.match(readFileSync(inRoot('/etc/systemd/system/lqos_scheduler.service'), 'utf8'), /^ExecStart=\/opt\/lqos-ts\/scheduler$/m);
  const v = await verifyUnits(PREFIX);
  assert.equal(v.exitCode, 0, `systemd-analyze verify: ${v.all}`);
  assert.equal(String(v.all).trim(), '', 'systemd-analyze verify printed no warning');

  await runsFromCopy(PREFIX);
  assert.match(firstOut, /Web UI: http:\/\/\S+:9123\//);
  assert.match(firstOut, /sudo cat \/opt\/libreqos\/state\/first-run\.token/);
  assert.match(firstOut, /staged below .*systemctl not called/);
});

const CANARY = 'Validate (upgrade canary 7f3a) ShapedDevices.csv';
test('upgrade: new code in place; config, web users, state and inputs kept; no leftovers', async () => {
  const conf = inRoot('/etc/lqos.conf');
  const edited = readFileSync(conf, 'utf8').replace(/^port = 9123/m, 'port = 9124') + '\n# operator edit kept\n';
  assert.ok(edited.includes('port = 9124'), 'the example config sets [web] port = 9123');
  writeFileSync(conf, edited);
  const users = inRoot('/opt/libreqos/state/lqusers.toml');
  const state = inRoot('/opt/libreqos/state/shaping/planner_state.json');
  const input = inRoot('/opt/libreqos/src/ShapedDevices.csv');
  mkdirSync(dirname(state), { recursive: true });
  writeFileSync(users, '[[users]]\nusername = "admin"\n', { mode: 0o600 });
  writeFileSync(state, '{"kept":true}\n');
  writeFileSync(input, 'Circuit ID,Device ID\n');
  writeFileSync(inRoot(`${PREFIX}/stray-file`), 'left by the old copy\n');
  const argsFile = join(src, 'lib/cli/libreqosArgs.ts');
  const argsText = readFileSync(argsFile, 'utf8');
  assert.ok(argsText.includes("'Validate ShapedDevices.csv"), `${argsFile} no longer holds LibreQoS's description: move the canary`);
  writeFileSync(argsFile, argsText.replace("'Validate ShapedDevices.csv", `'${CANARY}`));

  const r = await install();
  assert.equal(r.exitCode, 0, r.all);
  assert.match(String(r.all), /upgraded .*opt\/lqos-ts/);
  const help = await execa(inRoot(`${PREFIX}/LibreQoS`), ['--help'], { reject: false, all: true, env: { LQOS_LAUNCH: '' } });
  assert.match(String(help.all), /upgrade canary 7f3a/, `the upgraded copy runs the changed source: ${help.all}`);
  assert.ok(!existsSync(inRoot(`${PREFIX}/stray-file`)), 'the old tree is replaced, not merged');
  assert.ok(readFileSync(conf, 'utf8') === edited, '/etc/lqos.conf was rewritten by the upgrade: the operator\'s edits (port 9124, "# operator edit kept") are gone');
  assert.equal(mode(conf), 0o600);
  assert.equal(readFileSync(users, 'utf8'), '[[users]]\nusername = "admin"\n');
  assert.equal(readFileSync(state, 'utf8'), '{"kept":true}\n');
  assert.equal(readFileSync(input, 'utf8'), 'Circuit ID,Device ID\n');
  assert.match(String(r.all), /Web UI: http:\/\/\S+:9124\//, 'the address comes from the edited config');
  assert.match(String(r.all), /web users exist/);
  assert.deepEqual(readdirSync(inRoot('/opt')).sort(), ['libreqos', 'lqos-ts'], 'no .new/.old trees left beside the prefix');
  await runsFromCopy(PREFIX);
});

test('a failed upgrade (the new copy does not run) leaves the installed copy untouched and working', async () => {
  const lqosFile = join(src, 'bin/LibreQoS.ts');
  const good = readFileSync(lqosFile, 'utf8');
  const anchor = "import { parseLibreQoSArgs } from '../lib/cli/libreqosArgs.ts';";
  assert.ok(good.includes(anchor), `${lqosFile} no longer imports parseLibreQoSArgs: move the breakage`);
  writeFileSync(lqosFile, good.replace(anchor, `${anchor}\nif (process.argv.includes('--help')) { console.error('broken on purpose'); process.exit(9); }`));
  try {
    const r = await install();
    assert.equal(r.exitCode, 1, `install must refuse a new copy whose LibreQoS --help fails (exit ${r.exitCode}): ${r.all}`);
    assert.match(String(r.all), /LibreQoS --help failed in the new copy .*broken on purpose.*installed copy is unchanged/s);
  } finally {
    writeFileSync(lqosFile, good);
  }
  const help = await execa(inRoot(`${PREFIX}/LibreQoS`), ['--help'], { reject: false, all: true, env: { LQOS_LAUNCH: '' } });
  assert.equal(help.exitCode, 0, help.all);
  assert.match(String(help.all), /upgrade canary 7f3a/, 'the previous (upgraded) copy still runs');
  assert.deepEqual(readdirSync(inRoot('/opt')).sort(), ['libreqos', 'lqos-ts'], 'the half-built copy was removed');
});

test('install refuses to replace what it did not install, and the checkout itself', async () => {
  const foreign = inRoot('/srv/other');
  mkdirSync(foreign, { recursive: true });
  writeFileSync(join(foreign, 'keep.txt'), 'x');
  const r = await install(['--prefix', '/srv/other']);
  assert.equal(r.exitCode, 1, r.all);
  assert.match(String(r.all), /exists and was not installed by scripts\/install/);
  assert.deepEqual(readdirSync(foreign), ['keep.txt']);
  const u = await execa(join(src, 'scripts/uninstall'), ['--root', root, '--prefix', '/srv/other'], { reject: false, all: true });
  assert.equal(u.exitCode, 1, u.all);
  assert.match(String(u.all), /not installed by scripts\/install .*not removing it/);
  assert.deepEqual(readdirSync(foreign), ['keep.txt']);
  const self = await execa(join(src, 'scripts/install'), ['--prefix', src], { reject: false, all: true });
  assert.notEqual(self.exitCode, 0);
  assert.match(String(self.all), /is this checkout or inside it/);
});

test('uninstall (run from the installed copy) removes the code and units, keeps config, inputs and state', async () => {
  const r = await execa(inRoot(`${PREFIX}/scripts/uninstall`), ['--root', root], { reject: false, all: true });
  assert.equal(r.exitCode, 0, r.all);
  assert.ok(!existsSync(inRoot(PREFIX)), `${PREFIX} removed`);
  for (const u of UNITS) {
    assert.ok(!existsSync(inRoot(`/etc/systemd/system/${u}`)), `${u} removed`);
    assert.ok(!existsSync(inRoot(`/etc/systemd/system/${u}.d`)), `${u}.d removed`);
  }
  assert.ok(existsSync(inRoot('/etc/lqos.conf')), 'lqos.conf kept');
  assert.ok(existsSync(inRoot('/opt/libreqos/src/ShapedDevices.csv')), 'uninstall removed the input file ShapedDevices.csv in lqos_directory');
  assert.equal(readFileSync(inRoot('/opt/libreqos/src/ShapedDevices.csv'), 'utf8'), 'Circuit ID,Device ID\n');
  assert.ok(existsSync(inRoot('/opt/libreqos/state/lqusers.toml')), 'state kept without --purge-state');
  assert.match(String(r.all), /kept:\n.*lqos\.conf.*\n.*libreqos\/src.*your input files.*\n.*libreqos\/state.*--purge-state/);
});

test('install with --prefix, then uninstall --purge-state: state removed, config and inputs kept', async () => {
  const r = await install(['--prefix', '/srv/lqos-ts']);
  assert.equal(r.exitCode, 0, r.all);
  assert.match(String(r.all), /Config: .*lqos\.conf \(kept as it was\)/);
  assert.match(readFileSync(inRoot('/etc/systemd/system/lqosd.service'), 'utf8'), /^ExecStart=\/srv\/lqos-ts\/lqosd$/m);
  assert.ok(!readFileSync(inRoot('/etc/systemd/system/lqosd.service'), 'utf8').includes('/opt/lqos-ts'), 'every /opt/lqos-ts path replaced by the prefix');
  const v = await verifyUnits('/srv/lqos-ts');
  assert.equal(v.exitCode, 0, `systemd-analyze verify: ${v.all}`);
  await runsFromCopy('/srv/lqos-ts');

  const u = await execa(inRoot('/srv/lqos-ts/scripts/uninstall'), ['--root', root, '--purge-state'], { reject: false, all: true });
  assert.equal(u.exitCode, 0, u.all);
  assert.ok(!existsSync(inRoot('/srv/lqos-ts')));
  assert.ok(!existsSync(inRoot('/opt/libreqos/state')), 'state removed with --purge-state');
  assert.ok(existsSync(inRoot('/opt/libreqos/src/ShapedDevices.csv')), 'uninstall --purge-state removed the input file ShapedDevices.csv');
  assert.equal(readFileSync(inRoot('/opt/libreqos/src/ShapedDevices.csv'), 'utf8'), 'Circuit ID,Device ID\n', 'inputs are never removed');
  assert.ok(existsSync(inRoot('/etc/lqos.conf')));
});
