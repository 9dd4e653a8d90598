// test-gate: shared (CPU only; see test/support/gate.ts)
/**
 * The production build (issue 15): `npm run build` (scripts/build, esbuild) and bin/launch's choice
 * between the compiled commands and tsx. Everything runs in a scratch copy of the runtime tree
 * (launchers, bin/, lib/, dataplane/ sources, scripts/build, package.json, node_modules linked), so
 * the test never touches the checkout's own sources or build/. Which file node really ran is read
 * from a `node` shim placed first on PATH (bin/launch execs `node`), not guessed from the output.
 * Start-up speed is measured by bench/startup.bench.ts (`npm run bench:startup`), not here.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, realpathSync, rmSync, statSync, symlinkSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import { DEFAULT_BUS_WAIT_MS } from '../../lib/scheduler/scheduler.ts';
import { integrationNames } from '../../lib/integrations/registry.ts';
import { repoRoot } from '../support/paths.ts';
import { makeWorkspace } from '../support/workspace.ts';

const ENTRIES = ['LibreQoS', 'lqosd', 'scheduler', 'integration', 'lqusers', 'lqtop', 'supportBundle'];
let scratch = '';
let shimDir = '';
let nodeLog = '';

/** The runtime tree and sources, copied; node_modules linked (read only). */
function makeScratchTree(): string {
  // Physical path: bin/launch and the snapshot's key use the tree's physical location.
  const dir = realpathSync(mkdtempSync(join(tmpdir(), 'lqos-build-')));
  for (const f of ['LibreQoS', 'lqosd', 'scheduler', 'lqusers', 'lqtop', 'package.json', 'tsconfig.json']) cpSync(join(repoRoot, f), join(dir, f));
  for (const d of ['bin', 'lib', 'conf']) cpSync(join(repoRoot, d), join(dir, d), { recursive: true });
  // dataplane/ without its compiled object (not needed to plan or to build).
  cpSync(join(repoRoot, 'dataplane'), join(dir, 'dataplane'), { recursive: true, filter: (src) => !src.startsWith(join(repoRoot, 'dataplane', 'build')) });
  mkdirSync(join(dir, 'scripts'));
  for (const f of ['build', 'bundle.mjs', 'snapshot']) cpSync(join(repoRoot, 'scripts', f), join(dir, 'scripts', f));
  symlinkSync(join(repoRoot, 'node_modules'), join(dir, 'node_modules'));
  return dir;
}

before(async () => {
  scratch = makeScratchTree();
  shimDir = mkdtempSync(join(tmpdir(), 'lqos-node-shim-'));
  nodeLog = join(shimDir, 'node.log');
  // Records each command line bin/launch runs node with, then runs the real node.
  writeFileSync(join(shimDir, 'node'), `#!/bin/sh\nprintf '%s\\n' "$*" >> "${nodeLog}"\nexec "${process.execPath}" "$@"\n`);
  chmodSync(join(shimDir, 'node'), 0o755);
  const r = await execa('npm', ['run', 'build'], { cwd: scratch, reject: false, all: true });
  assert.equal(r.exitCode, 0, `npm run build failed in ${scratch}:\n${r.all}`);
});
after(() => {
  for (const d of [scratch, shimDir]) if (d) rmSync(d, { recursive: true, force: true });
});

interface Launched {
  code: number;
  stdout: string;
  stderr: string;
  /** The arguments node was started with (from the shim). */
  node: string;
}

async function launch(cmd: string, args: string[], env: Record<string, string> = {}): Promise<Launched> {
  rmSync(nodeLog, { force: true });
  const r = await execa(join(scratch, cmd), args, {
    reject: false,
    cwd: scratch,
    env: { PATH: `${shimDir}:${process.env.PATH}`, LQOS_LOG_FORMAT: 'json', LQOS_LAUNCH: '', NODE_OPTIONS: '', ...env },
  });
  const node = existsSync(nodeLog) ? readFileSync(nodeLog, 'utf8').trim() : '';
  return { code: r.exitCode ?? -1, stdout: String(r.stdout), stderr: String(r.stderr), node };
}

/** The node arguments after the memory flag (bin/launch gives lqosd `--max-semi-space-size=1`, LibreQoS `--initial-old-space-size=128`). */
const args = (l: Launched) => l.node.replace(/^--(max-semi-space-size=1|initial-old-space-size=128) /, '');
const ranBuild = (l: Launched, name: string) =>
  assert.equal(args(l).split(' ').slice(0, 2).join(' '), `--enable-source-maps ${join(scratch, 'build', 'bin', `${name}.mjs`)}`, `expected the compiled ${name}; node ran: ${l.node || '(nothing)'}\n${l.stderr}`);
const ranTsx = (l: Launched, name: string) =>
  assert.match(args(l), new RegExp(`^--import \\S*tsx/dist/loader\\.mjs ${join(scratch, 'bin', `${name}.ts`).replace(/[.]/g, '\\.')}( |$)`), `expected tsx with bin/${name}.ts; node ran: ${l.node || '(nothing)'}\n${l.stderr}`);

test('npm run build writes the four entry points with source maps naming the .ts sources, and the stamp', () => {
  const out = join(scratch, 'build', 'bin');
  for (const name of ENTRIES) {
    assert.ok(existsSync(join(out, `${name}.mjs`)), `${name}.mjs missing in ${out}: ${readdirSync(out).join(' ')}`);
    const map = JSON.parse(readFileSync(join(out, `${name}.mjs.map`), 'utf8')) as { version: number; sources: string[] };
    assert.equal(map.version, 3);
    assert.ok(map.sources.includes(`../../bin/${name}.ts`), `${name}.mjs.map sources: ${map.sources.join(' ')}`);
  }
  for (const name of ENTRIES) {
    // The built file is run by node; a `--import tsx` hashbang would load tsx, which a production
    // install does not have. In the .ts source it also made tsx's import scanner fail on
    // bin/scheduler.ts (it read `import tsx` on the hashbang line as an import).
    const first = readFileSync(join(out, `${name}.mjs`), 'utf8').split('\n', 1)[0]!;
    assert.ok(!first.startsWith('#!') || first === '#!/usr/bin/env node', `${name}.mjs starts with ${first}`);
  }
  assert.ok(statSync(join(scratch, 'build', '.stamp')).isFile(), 'build/.stamp missing');
  assert.deepEqual(readdirSync(scratch).filter((f) => f.startsWith('build.')), [], 'build.tmp.* / build.old left behind');
});

/** The packages a bundled module loads before its code runs: its static imports, followed through the chunks. */
function staticPackages(dir: string, file: string, seen = new Set<string>()): Set<string> {
  const packages = new Set<string>();
  if (seen.has(file)) return packages;
  seen.add(file);
  const text = readFileSync(join(dir, file), 'utf8');
  // `import … from "x"` and `import "x"` at the start of a line; `import("x")` (on demand) is not one.
  for (const m of text.matchAll(/^(?:import|export)\b[^;(]*?(?:from\s*)?"([^"]+)";?$/gm)) {
    const spec = m[1]!;
    if (spec.startsWith('./')) for (const p of staticPackages(dir, spec.slice(2), seen)) packages.add(p);
    else packages.add(spec);
  }
  return packages;
}

test('all four commands load only commander before their arguments are parsed (the rest on demand)', () => {
  const out = join(scratch, 'build', 'bin');
  for (const name of ENTRIES) {
    const loaded = [...staticPackages(out, `${name}.mjs`)].filter((p) => !p.startsWith('node:')).sort();
    assert.deepEqual(loaded, ['commander'], `${name}.mjs loads ${loaded.join(', ')} at start: import the implementation after program.parse() (await import(...)) so --help stays fast`);
    assert.match(readFileSync(join(out, `${name}.mjs`), 'utf8'), /await (?:Promise\.all\(\[\s*)?import\("\.\/[\w-]+\.mjs"\)/, `${name}.mjs imports nothing on demand`);
  }
});

test('zod, smol-toml and the csv libraries are bundled in (no module of the build imports them), the other dependencies are not', () => {
  const out = join(scratch, 'build', 'bin');
  const imported = new Set<string>();
  for (const f of readdirSync(out).filter((x) => x.endsWith('.mjs'))) {
    for (const m of readFileSync(join(out, f), 'utf8').matchAll(/(?:from\s*|import\(|import\s+)"([^".][^"]*)"/g)) imported.add(m[1]!.split('/')[0]!.startsWith('@') ? m[1]!.split('/').slice(0, 2).join('/') : m[1]!.split('/')[0]!);
  }
  for (const lib of ['zod', 'smol-toml', 'csv-parse', 'csv-stringify']) assert.ok(!imported.has(lib), `${lib} is imported from node_modules by the build: scripts/build bundles it (a run's start pays a module load per file otherwise)`);
  for (const lib of ['commander', 'pino', 'koffi', 'fastify']) assert.ok(imported.has(lib), `${lib} should stay external (imported from node_modules); imports seen: ${[...imported].sort().join(', ')}`);
  // zod's messages: English only (scripts/bundle.mjs; the other ~50 languages are half of zod's size).
  const locales = new Set<string>();
  for (const f of readdirSync(out).filter((x) => x.endsWith('.mjs'))) {
    for (const m of readFileSync(join(out, f), 'utf8').matchAll(/^\/\/ [^\s:]*node_modules\/zod\/v4\/locales\/([\w-]+)\.js$/gm)) locales.add(m[1]!);
  }
  assert.deepEqual([...locales], ['en'], 'zod locales bundled');
});

test('scheduler and integration --help (compiled): the usage, with the defaults and names of the modules they no longer load for it', async () => {
  const sched = await launch('scheduler', ['--help']);
  ranBuild(sched, 'scheduler');
  assert.equal(sched.code, 0, sched.stderr);
  assert.match(sched.stdout, /^Usage: scheduler \[options\]/);
  assert.ok(sched.stdout.includes(`(default ${DEFAULT_BUS_WAIT_MS / 1000})`), `scheduler --help must name DEFAULT_BUS_WAIT_MS (${DEFAULT_BUS_WAIT_MS / 1000} s) as the --bus-wait default:\n${sched.stdout}`);
  const integ = await launch('LibreQoS', ['integration', '--help']);
  ranBuild(integ, 'integration');
  assert.equal(integ.code, 0, integ.stderr);
  assert.match(integ.stdout, /^Usage: integration \[options\] <name>/);
  const names = integrationNames().join(', ');
  assert.ok(integ.stdout.replace(/\s+/g, ' ').includes(`integration to run: ${names}`), `integration --help must list the registry's integrations (${names}); bin/integration.ts must print lib/integrations/names.ts:\n${integ.stdout}`);
  const unknown = await launch('LibreQoS', ['integration', 'nosuchcrm']);
  assert.equal(unknown.code, 2);
  assert.match(unknown.stderr, new RegExp(`unknown integration "nosuchcrm"; choose one of: ${names}`));
});

test('no bundled module resolves a path from its own location except the known ones, which sit at the same depth', () => {
  // A bundle runs from build/bin/: `import.meta` there is not the source file's location. The ones
  // allowed: REPO_ROOT and the web root (two levels up, the same from lib/util, lib/web and build/bin)
  // and createRequire (package resolution walks up to node_modules from either place).
  // (esbuild may rename an import: resolve → resolve2.)
  const allowed = [/^resolve\d*\(import\.meta\.dirname, "\.\.\/\.\."\)$/, /^resolve\d*\(import\.meta\.dirname, "\.\.\/\.\.\/webui\/dist"\)$/, /^createRequire\d*\(import\.meta\.url\)$/];
  const out = join(scratch, 'build', 'bin');
  const uses: string[] = [];
  for (const f of readdirSync(out).filter((x) => x.endsWith('.mjs'))) {
    for (const m of readFileSync(join(out, f), 'utf8').matchAll(/[\w.]*\([^()]*import\.meta[^()]*\)|import\.meta\.\w+/g)) uses.push(`${f}: ${m[0]}`);
  }
  assert.ok(uses.length >= 3, `expected the REPO_ROOT, web root and createRequire uses, found: ${uses.join('; ')}`);
  const bad = uses.filter((u) => !allowed.some((re) => re.test(u.slice(u.indexOf(': ') + 2))));
  assert.deepEqual(bad, [], 'import.meta used relative to a bundled file: resolve it from REPO_ROOT (lib/util/paths.ts) instead');
});

test('bin/launch runs the build when it is fresh, tsx when a .ts is newer, and obeys LQOS_LAUNCH', async () => {
  ranBuild(await launch('LibreQoS', ['--help']), 'LibreQoS');
  const lqosd = await launch('lqosd', ['--help']);
  ranBuild(lqosd, 'lqosd');
  assert.match(lqosd.node, /^--max-semi-space-size=1 /, 'lqosd runs with a small V8 young generation');
  assert.match((await launch('LibreQoS', ['--help'])).node, /^--initial-old-space-size=128 --enable-source-maps /, 'LibreQoS starts with a larger old generation');
  const scheduler = await launch('scheduler', ['--help']);
  ranBuild(scheduler, 'scheduler');
  assert.match(scheduler.node, /^--enable-source-maps /, 'the scheduler gets no memory flag');
  const integration = await launch('LibreQoS', ['integration', '--help']);
  ranBuild(integration, 'integration');
  assert.match(integration.node, /^--enable-source-maps /, 'an integration run gets no memory flag');
  const users = await launch('lqusers', ['--help']);
  ranBuild(users, 'lqusers');
  assert.match(users.stdout, /^Usage: lqusers \[options\] \[command\]/);
  const top = await launch('lqtop', ['--help']);
  ranBuild(top, 'lqtop');
  assert.match(top.stdout, /^Usage: lqtop \[options\]/);
  ranTsx(await launch('LibreQoS', ['--help'], { LQOS_LAUNCH: 'tsx' }), 'LibreQoS');

  // A source saved after the build (in the scratch copy): back to tsx until the next build.
  const src = join(scratch, 'dataplane', 'abi.ts');
  const { atime, mtime } = statSync(src);
  const stamp = statSync(join(scratch, 'build', '.stamp')).mtime;
  utimesSync(src, atime, new Date(stamp.getTime() + 2000));
  try {
    ranTsx(await launch('lqosd', ['--help']), 'lqosd');
    ranBuild(await launch('lqosd', ['--help'], { LQOS_LAUNCH: 'build' }), 'lqosd');
  } finally {
    utimesSync(src, atime, mtime);
  }
  ranBuild(await launch('lqosd', ['--help']), 'lqosd');

  const bad = await launch('LibreQoS', ['--help'], { LQOS_LAUNCH: 'bundle' });
  assert.equal(bad.code, 64);
  assert.match(bad.stderr, /LQOS_LAUNCH must be build, esm or tsx, not 'bundle'/);
  assert.equal(bad.node, '', 'node must not start on a bad LQOS_LAUNCH');
});

/** conf/example's inputs, for a workspace. */
const exampleInputs = () => ({ devices: readFileSync(join(repoRoot, 'conf', 'example', 'ShapedDevices.csv'), 'utf8'), network: readFileSync(join(repoRoot, 'conf', 'example', 'network.json'), 'utf8') });

/** A fatal log line's stack: its first file frame (path, line) must be a .ts line under lib/ calling mkdirSync. */
function assertMappedStack(stderr: string): string {
  const fatal = stderr.split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as { level: number; err?: { stack?: string } }).find((l) => l.level === 60);
  assert.ok(fatal?.err?.stack, `no fatal log line with a stack:\n${stderr}`);
  const frame = /\((?:file:\/\/)?(\/\S+?\.(?:ts|mjs|cjs)):(\d+):\d+\)/.exec(fatal.err.stack);
  assert.ok(frame, `no file frame in the stack:\n${fatal.err.stack}`);
  const [, file, line] = frame;
  assert.ok(file!.startsWith(join(scratch, 'lib') + '/') && file!.endsWith('.ts'), `the first frame names ${file}, not a .ts under lib/ (source maps off?)\n${fatal.err.stack}`);
  const text = readFileSync(file!, 'utf8').split('\n')[Number(line) - 1];
  assert.match(text ?? '', /mkdirSync\(/, `${file}:${line} is "${text}", not the mkdirSync that failed`);
  return fatal.err.stack;
}

test('a stack trace from the compiled LibreQoS names the .ts file and the line of the failing call', async () => {
  // An unexpected failure (the run directory cannot be created: its parent is a file) is logged
  // fatal with the error's stack.
  const w = makeWorkspace(exampleInputs());
  try {
    const r = await launch('LibreQoS', ['--config', w.config], { LQOS_RUN_DIR: join(w.config, 'run') });
    ranBuild(r, 'LibreQoS');
    assert.equal(r.code, 70, r.stderr);
    assert.match(assertMappedStack(r.stderr), new RegExp(`\\(${join(scratch, 'bin', 'LibreQoS.ts')}:\\d+:\\d+\\)`), 'the entry frame names bin/LibreQoS.ts');
  } finally {
    w.cleanup();
  }
});

test('a dry run writes the same tc commands, mappings and queue structure compiled as with tsx', async () => {
  const inputs = exampleInputs();
  const runs: Record<string, { w: ReturnType<typeof makeWorkspace>; r: Launched }> = {};
  try {
    for (const mode of ['build', 'tsx']) {
      const w = makeWorkspace(inputs);
      const run = join(w.dir, 'run');
      mkdirSync(run);
      runs[mode] = { w, r: await launch('LibreQoS', ['--config', w.config, '--dry-run'], { LQOS_LAUNCH: mode, LQOS_RUN_DIR: run }) };
    }
    ranBuild(runs.build!.r, 'LibreQoS');
    ranTsx(runs.tsx!.r, 'LibreQoS');
    for (const mode of ['build', 'tsx']) assert.equal(runs[mode]!.r.code, 0, `${mode}: ${runs[mode]!.r.stderr}`);
    const file = (mode: string, f: string) => readFileSync(join(runs[mode]!.w.stateDir, f), 'utf8');
    const tc = file('build', 'debug/linux_tc.txt');
    assert.ok(tc.split('\n').filter((l) => l.startsWith('qdisc') || l.startsWith('class')).length > 20, `too few tc commands to compare:\n${tc}`);
    assert.equal(tc, file('tsx', 'debug/linux_tc.txt'), 'linux_tc.txt differs between the compiled and the tsx run');
    assert.equal(file('build', 'debug/ip_mappings.txt'), file('tsx', 'debug/ip_mappings.txt'));
    assert.equal(file('build', 'shaping/queuingStructure.json'), file('tsx', 'shaping/queuingStructure.json'));
  } finally {
    for (const x of Object.values(runs)) x.w.cleanup();
  }
});

test('every other command answers --help the same compiled and through tsx (a checkout after an edit runs tsx)', async () => {
  const commands: [string, string[], RegExp][] = [
    ['scheduler', ['--help'], /^Usage: scheduler \[options\]/],
    ['lqusers', ['--help'], /^Usage: lqusers /],
    ['lqtop', ['--help'], /^Usage: lqtop /],
    ['LibreQoS', ['integration', '--help'], /^Usage: integration \[options\] <name>/],
    ['LibreQoS', ['support-bundle', '--help'], /^Usage: LibreQoS support-bundle /],
  ];
  for (const [cmd, argv, usage] of commands) {
    const built = await launch(cmd, argv, { LQOS_LAUNCH: 'build' });
    const tsx = await launch(cmd, argv, { LQOS_LAUNCH: 'tsx' });
    const what = `${cmd} ${argv.join(' ')}`;
    assert.equal(built.code, 0, `${what} (build): ${built.stderr}`);
    assert.equal(tsx.code, 0, `${what} (tsx): ${tsx.stderr}`);
    assert.match(built.stdout, usage, what);
    assert.equal(tsx.stdout, built.stdout, what);
  }
});

test('LibreQoS starts from its start-up snapshot where and with the node it was built; otherwise from build/bin', async () => {
  const snap = join(scratch, 'build', 'snapshot');
  for (const f of ['LibreQoS.cjs', 'LibreQoS.cjs.map', 'LibreQoS.blob', 'LibreQoS.key']) assert.ok(existsSync(join(snap, f)), `npm run build did not write build/snapshot/${f}`);
  assert.equal(readFileSync(join(snap, 'LibreQoS.key'), 'utf8').split('\n')[0], scratch, 'the key names the tree it was built in');
  // Built with the node found on PATH then; the shim first on PATH is another node binary: build/bin,
  // and the launcher says why and what to run.
  const other = await launch('LibreQoS', ['--help']);
  ranBuild(other, 'LibreQoS');
  assert.match(other.stderr, /launch: the start-up snapshot \S+LibreQoS\.blob was made for another location, node binary or flags .*run \S+\/scripts\/snapshot to make it again/);
  // Rebuilt with the shim as `node`: now the snapshot fits.
  const made = await execa(join(scratch, 'scripts', 'snapshot'), [], { env: { PATH: `${shimDir}:${process.env.PATH}` }, reject: false, all: true });
  assert.equal(made.exitCode, 0, made.all);
  const blob = join(snap, 'LibreQoS.blob');
  const fromSnapshot = (l: Launched, rest: string) => assert.equal(args(l), `--snapshot-blob ${blob} -- ${rest}`, `expected the snapshot; node ran: ${l.node || '(nothing)'}\n${l.stderr}`);
  const help = await launch('LibreQoS', ['--help']);
  fromSnapshot(help, '--help');
  assert.match(help.node, /^--initial-old-space-size=128 --snapshot-blob /, 'the V8 flag the blob was built with');
  const esmHelp = await launch('LibreQoS', ['--help'], { LQOS_LAUNCH: 'esm' });
  ranBuild(esmHelp, 'LibreQoS');
  assert.equal(help.code, 0, help.stderr);
  assert.equal(help.stdout, esmHelp.stdout, '--help from the snapshot and from build/bin');
  const usage = await launch('LibreQoS', ['--no-such-flag']);
  fromSnapshot(usage, '--no-such-flag');
  assert.equal(usage.code, 2, 'bad usage exits 2 from the snapshot too');
  // The operator's own `--` reaches commander as it does from build/bin (node drops only the launcher's).
  const dashes = await launch('LibreQoS', ['--', '--help']);
  fromSnapshot(dashes, '-- --help');
  const esmDashes = await launch('LibreQoS', ['--', '--help'], { LQOS_LAUNCH: 'esm' });
  assert.deepEqual([dashes.code, dashes.stderr], [esmDashes.code, esmDashes.stderr]);
  assert.equal(dashes.code, 2, dashes.stderr);

  // A dry run from the snapshot writes what build/bin/LibreQoS.mjs writes, and LQOS_* is read at run time.
  const inputs = exampleInputs();
  const ws = { snapshot: makeWorkspace(inputs), esm: makeWorkspace(inputs) };
  try {
    const runs: Record<string, Launched> = {};
    for (const [mode, w] of Object.entries(ws)) {
      const run = join(w.dir, 'run');
      mkdirSync(run);
      runs[mode] = await launch('LibreQoS', ['--config', w.config, '--dry-run'], { LQOS_LAUNCH: mode === 'esm' ? 'esm' : '', LQOS_RUN_DIR: run });
      assert.equal(runs[mode]!.code, 0, `${mode}: ${runs[mode]!.stderr}`);
    }
    fromSnapshot(runs.snapshot!, `--config ${ws.snapshot.config} --dry-run`);
    ranBuild(runs.esm!, 'LibreQoS');
    for (const f of ['debug/linux_tc.txt', 'debug/ip_mappings.txt', 'shaping/queuingStructure.json']) {
      assert.equal(readFileSync(join(ws.snapshot.stateDir, f), 'utf8'), readFileSync(join(ws.esm.stateDir, f), 'utf8'), `${f} differs between the snapshot and build/bin`);
    }
    // A stack trace from the snapshot names the .ts line (lib/util/bundleStackTraces.ts); the
    // failure also shows LQOS_RUN_DIR is read at run time, not frozen into the blob.
    const failed = await launch('LibreQoS', ['--config', ws.snapshot.config], { LQOS_RUN_DIR: join(ws.snapshot.config, 'run') });
    fromSnapshot(failed, `--config ${ws.snapshot.config}`);
    assert.equal(failed.code, 70, failed.stderr);
    assert.match(assertMappedStack(failed.stderr), new RegExp(`(?:\\(|at )${join(scratch, 'bin', 'LibreQoS.snapshot.ts')}:\\d+:\\d+`), 'the entry frame names bin/LibreQoS.snapshot.ts');
  } finally {
    for (const w of Object.values(ws)) w.cleanup();
  }

  // Readable logs on demand (pino-pretty, required after the restore through the bundle's require).
  const pretty = await launch('LibreQoS', ['--config', '/nonexistent/lqos.conf'], { LQOS_LOG_FORMAT: 'pretty' });
  fromSnapshot(pretty, '--config /nonexistent/lqos.conf');
  assert.equal(pretty.code, 2, pretty.stderr);
  assert.match(pretty.stderr, /^\[\d\d:\d\d:\d\d\.\d{3}\] ERROR: configuration file \/nonexistent\/lqos\.conf not found/m, pretty.stderr);

  // NODE_OPTIONS (its V8 flags would not match the blob's), or a key for another tree or node: build/bin.
  ranBuild(await launch('LibreQoS', ['--help'], { NODE_OPTIONS: '--max-old-space-size=512' }), 'LibreQoS');
  const keyFile = join(snap, 'LibreQoS.key');
  const key = readFileSync(keyFile, 'utf8');
  const [kroot, knode] = key.split('\n') as [string, string];
  // node's path, inode, size, mtime, ctime, then the V8 flags.
  const f = knode.split(' ');
  assert.equal(f.length, 6, `key line 2: ${knode}`);
  assert.equal(f[5], '--initial-old-space-size=128');
  try {
    for (const other of [
      `/opt/lqos-ts\n${knode}\n`, // the tree moved
      `${kroot}\n${[...f.slice(0, 1), '1', ...f.slice(2)].join(' ')}\n`, // another node binary at the same path
      `${kroot}\n${[...f.slice(0, 5), '--initial-old-space-size=64'].join(' ')}\n`, // other flags: node would refuse the blob
    ]) {
      writeFileSync(keyFile, other);
      const l = await launch('LibreQoS', ['--help']);
      ranBuild(l, 'LibreQoS');
      assert.equal(l.code, 0, l.stderr);
    }
  } finally {
    writeFileSync(keyFile, key);
  }
  fromSnapshot(await launch('LibreQoS', ['--help']), '--help');
});

test('--help of LibreQoS and lqosd: exit 0 with the usage, the same compiled and with tsx; LQOS_LAUNCH=build without a build says npm run build', async () => {
  for (const [cmd, usage] of [['LibreQoS', /^Usage: LibreQoS \[options\]\n[\s\S]*--dry-run/], ['lqosd', /^Usage: lqosd \[options\]\n[\s\S]*--no-web/]] as const) {
    const built = await launch(cmd, ['--help'], { LQOS_LAUNCH: 'build' });
    const tsx = await launch(cmd, ['--help'], { LQOS_LAUNCH: 'tsx' });
    assert.equal(built.code, 0, built.stderr);
    assert.match(built.stdout, usage);
    assert.equal(tsx.code, 0, tsx.stderr);
    assert.equal(built.stdout, tsx.stdout);
    // And the checkout's own root launchers (whichever they pick).
    const own = await execa(join(repoRoot, cmd), ['--help'], { reject: false });
    assert.equal(own.exitCode, 0, String(own.stderr));
    assert.match(String(own.stdout), usage);
  }
  rmSync(join(scratch, 'build'), { recursive: true });
  const missing = await launch('lqosd', ['--help'], { LQOS_LAUNCH: 'build' });
  assert.equal(missing.code, 69);
  assert.match(missing.stderr, /LQOS_LAUNCH=build but \S+build\/bin\/lqosd\.mjs is missing: run `npm run build`/);
  ranTsx(await launch('lqosd', ['--help']), 'lqosd');
});
