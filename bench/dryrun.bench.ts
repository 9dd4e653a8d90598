/**
 * `npm run bench:dryrun`: the `LibreQoS` command as an operator (or the scheduler) runs it —
 * `./LibreQoS --config … --dry-run`, the whole process from the root launcher: start-up, reading
 * lqos.conf, validating and planning the inputs, compiling the tc batch and IP mappings, and
 * writing every file a dry run writes (debug/linux_tc.txt, debug/ip_mappings.txt,
 * shaping/queuingStructure.json, planner_state.json).
 *
 *   node --import tsx bench/dryrun.bench.ts [--sizes 10000,50000] [--rounds 5] [--seed 1]
 *   (BENCH_KEEP=1 keeps the generated networks and state in the temp directory it names, for profiling;
 *   LQOS_LAUNCH=esm times build/bin/LibreQoS.mjs instead of the start-up snapshot bin/launch picks)
 *
 * The bench builds first (`npm run build`; the launcher runs the compiled command only while no .ts
 * is newer than the build) and checks the build is fresh, then generates each network with
 * bench/dataset.ts (not timed) into a temp dir with an lqos.conf of conf/example's settings pointing
 * at it (its own state directory). One untimed run per size writes the planner state, so every
 * timed run is the steady state of a repeated run (the scheduler's case). Then `--rounds`
 * interleaved rounds (size order rotating each round; `LQOS_LAUNCH=esm ./LibreQoS --help` runs in the
 * same rounds as a reference for the machine's speed in those minutes, without a target; without the
 * snapshot, so it compares with figures from before it). Wall time is measured around
 * `/usr/bin/time` (Debian package `time`), peak RSS is its `%M`; median (min–max).
 * Each run must exit 0 and write its files. Targets (issue 15), judged on medians: 10k circuits ≤ 0.6 s;
 * 50k ≤ 2 s and ≤ 300 MB peak RSS (upstream's Python: 476 MB). Exits 1 when one is missed.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { REPO_ROOT } from '../lib/util/paths.ts';
import { generateDataset, writeDataset } from './dataset.ts';
import { fmtSpread, interleaved, machineLine, Targets } from './stats.ts';

const TIME = '/usr/bin/time';
/** Targets per size: whole-process wall time and peak RSS (medians). */
export const TARGETS: Record<number, { ms?: number; rssMB?: number }> = {
  10000: { ms: 600 },
  50000: { ms: 2000, rssMB: 300 },
};

const { values: args } = parseArgs({
  options: {
    sizes: { type: 'string', default: '10000,50000' },
    rounds: { type: 'string', default: process.env.BENCH_ROUNDS ?? '5' },
    seed: { type: 'string', default: '1' },
  },
});
const sizes = args.sizes!.split(',').map((s) => Number(s.replace(/k$/i, '000')));
const rounds = Number(args.rounds);
if (sizes.some((n) => !Number.isInteger(n) || n <= 0) || !Number.isInteger(rounds) || rounds < 1) {
  console.error(`bad --sizes ${args.sizes} or --rounds ${args.rounds}: positive integers expected (e.g. --sizes 10000,50000 --rounds 5)`);
  process.exit(2);
}
if (!existsSync(TIME)) {
  console.error(`${TIME} not found: install the Debian package \`time\` (scripts/setup does)`);
  process.exit(1);
}

/** The files every dry run writes, relative to its state directory. */
const OUTPUTS = ['debug/linux_tc.txt', 'debug/ip_mappings.txt', 'shaping/queuingStructure.json', 'shaping/planner_state.json'];

interface Case {
  size: number;
  conf: string;
  state: string;
}

/** conf/example/lqos.conf with its input and state directories moved to `dir`. */
function writeConf(dir: string, inputs: string, state: string): string {
  const example = readFileSync(join(REPO_ROOT, 'conf/example/lqos.conf'), 'utf8');
  let text = example.replace(/^lqos_directory = .*$/m, `lqos_directory = ${JSON.stringify(inputs)}`);
  text = text.replace(/^state_directory = .*$/m, `state_directory = ${JSON.stringify(state)}`);
  if (!text.includes(`lqos_directory = ${JSON.stringify(inputs)}`) || !text.includes(`state_directory = ${JSON.stringify(state)}`)) {
    throw new Error('conf/example/lqos.conf has no top-level lqos_directory/state_directory line to point at the bench network; update bench/dryrun.bench.ts');
  }
  const conf = join(dir, 'lqos.conf');
  writeFileSync(conf, text);
  return conf;
}

/**
 * How the timed runs start: `build` (bin/launch's own choice for a fresh build: the start-up snapshot
 * when it fits, as operators get) unless LQOS_LAUNCH=esm is set for the bench (build/bin/LibreQoS.mjs).
 */
const LAUNCH = process.env.LQOS_LAUNCH === 'esm' ? 'esm' : 'build';

/** `./LibreQoS <args>` (the compiled command) under `/usr/bin/time` into `timeFile`: wall ms; throws unless it exits 0. */
function timedLibreQoS(args: string[], timeFile: string, launch: string = LAUNCH): { ms: number; argv: string[] } {
  const argv = [join(REPO_ROOT, 'LibreQoS'), ...args];
  const t0 = performance.now();
  const r = spawnSync(TIME, ['-f', '%M', '-o', timeFile, ...argv], { cwd: REPO_ROOT, env: { ...process.env, LQOS_LAUNCH: launch }, encoding: 'utf8', maxBuffer: 64 << 20 });
  const ms = performance.now() - t0;
  if (r.status !== 0) throw new Error(`${argv.join(' ')} exited ${r.status}:\n${r.stderr.slice(-3000)}`);
  return { ms, argv };
}

/** One `./LibreQoS --dry-run`: wall ms and peak RSS MB; throws unless it exits 0 and wrote its files. */
function runOnce(c: Case, timeFile: string): { ms: number; mb: number } {
  for (const f of OUTPUTS.slice(0, 3)) rmSync(join(c.state, f), { force: true });
  const { ms, argv } = timedLibreQoS(['--config', c.conf, '--dry-run'], timeFile);
  for (const f of OUTPUTS) {
    const p = join(c.state, f);
    if (!existsSync(p) || statSync(p).size === 0) throw new Error(`${argv.join(' ')} exited 0 but did not write ${p}`);
  }
  const kb = Number(readFileSync(timeFile, 'utf8').trim().split('\n').pop());
  if (!Number.isFinite(kb) || kb <= 0) throw new Error(`no peak RSS from ${TIME}: ${readFileSync(timeFile, 'utf8')}`);
  return { ms, mb: kb / 1024 };
}

const REFERENCE = 'LQOS_LAUNCH=esm ./LibreQoS --help';

const tmp = mkdtempSync(join(tmpdir(), 'lqos-dryrun-'));
if (process.env.BENCH_KEEP) console.log(`  BENCH_KEEP: networks and state kept in ${tmp}`);
console.log(`dry run (whole process): ${machineLine()}, sizes ${sizes.join(', ')}, ${rounds} interleaved rounds`);
try {
  execFileSync('npm', ['run', '--silent', 'build'], { cwd: REPO_ROOT, stdio: 'inherit' });
  const stale = execFileSync('find', ['lib', 'bin', 'dataplane', '-name', '*.ts', '-newer', 'build/.stamp', '-print', '-quit'], { cwd: REPO_ROOT, encoding: 'utf8' }).trim();
  if (stale) throw new Error(`${stale} is newer than the build just made (edited during the bench?): run it again`);
  // How the timed runs start (bin/launch says it with LQOS_LAUNCH_SHOW): the snapshot or build/bin.
  const shown = spawnSync(join(REPO_ROOT, 'LibreQoS'), ['--help'], { env: { ...process.env, LQOS_LAUNCH: LAUNCH, LQOS_LAUNCH_SHOW: '1' }, encoding: 'utf8' });
  const how = /^launch: node (.*)$/m.exec(shown.stderr)?.[1] ?? `? (${shown.stderr.trim()})`;
  console.log(`LibreQoS starts as: node ${how.replace(/ --help$/, ' …')}`);

  const cases: Case[] = sizes.map((size) => {
    const dir = join(tmp, String(size));
    const inputs = join(dir, 'inputs');
    const state = join(dir, 'state');
    mkdirSync(inputs, { recursive: true });
    const ds = generateDataset({ circuits: size, seed: Number(args.seed) });
    writeDataset(inputs, ds);
    console.log(`  ${size} circuits: ${ds.stats.devices} devices, ${(ds.stats.csvBytes / 1e6).toFixed(1)} MB of CSV`);
    return { size, conf: writeConf(dir, inputs, state), state };
  });
  const timeFile = join(tmp, 'time');
  for (const c of cases) runOnce(c, timeFile); // writes the planner state: every timed run is a repeat run
  const rss: Record<string, number[]> = {};
  const variants: Record<string, () => number> = {};
  for (const c of cases) {
    const key = `${c.size} circuits`;
    variants[key] = () => {
      const m = runOnce(c, timeFile);
      (rss[key] ??= []).push(m.mb);
      return m.ms;
    };
  }
  // How fast the machine is in these minutes (a VM's speed moves by ±20 % between minutes): the
  // launcher's `--help`, in the same rounds. No target; it lets figures from different days be compared.
  // Always without the snapshot, so that the reference means the same as before it existed.
  variants[REFERENCE] = () => timedLibreQoS(['--help'], timeFile, 'esm').ms;
  const wall = await interleaved(rounds, variants);
  const width = Math.max(...Object.keys(wall).map((k) => k.length));
  for (const [k, xs] of Object.entries(wall)) {
    console.log(`  ${k.padEnd(width)}  wall ${fmtSpread(xs, 'ms')}${rss[k] ? `  peak RSS ${fmtSpread(rss[k], 'MB')}` : '  (reference: no target)'}`);
  }
  const targets = new Targets();
  for (const c of cases) {
    const t = TARGETS[c.size];
    const key = `${c.size} circuits`;
    if (t?.ms !== undefined) targets.atMost(`./LibreQoS --dry-run, ${key}: wall ≤ ${t.ms} ms`, wall[key]!, t.ms, 'ms');
    if (t?.rssMB !== undefined) targets.atMost(`./LibreQoS --dry-run, ${key}: peak RSS ≤ ${t.rssMB} MB`, rss[key]!, t.rssMB, 'MB');
  }
  targets.report();
  console.log(`(load at the end: ${machineLine()})`);
} finally {
  if (!process.env.BENCH_KEEP) rmSync(tmp, { recursive: true, force: true });
}
