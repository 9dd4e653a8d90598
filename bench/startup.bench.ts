/**
 * `npm run bench:startup`: start-up cost of the commands as an operator runs them (`./LibreQoS
 * --help`, `./lqosd --help`: root launcher → bin/launch → node), wall time and peak RSS of the whole
 * process, before (LQOS_LAUNCH=tsx: TypeScript compiled by the tsx loader at every start) and after
 * (the compiled build, `npm run build`, which bin/launch picks on its own while it is fresh), with
 * `node -e 0` as the floor. The bench builds first, checks the build is fresh (no .ts newer than
 * build/.stamp), then runs 9 interleaved rounds (order rotating each round); median (min–max).
 * Peak RSS is /usr/bin/time's %M (Debian package `time`); wall time is measured around it.
 * Targets (issue 15): LibreQoS --help and lqosd --help ≤ 250 ms and ≤ 70 MB from the build.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { REPO_ROOT } from '../lib/util/paths.ts';
import { fmtSpread, interleaved, machineLine, spread, Targets } from './stats.ts';

const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 9);
const TIME = '/usr/bin/time';
const WALL_MS = 250;
const RSS_MB = 70;

if (!existsSync(TIME)) {
  console.error(`${TIME} not found: install the Debian package \`time\` (scripts/setup does)`);
  process.exit(1);
}

const tmp = mkdtempSync(join(tmpdir(), 'lqos-startup-'));
const timeFile = join(tmp, 'time');

/** One start: wall ms and peak RSS MB of `argv` (must exit 0 and print its usage). */
function measure(argv: string[], env: Record<string, string>, expect: RegExp): { ms: number; mb: number } {
  const t0 = performance.now();
  const r = spawnSync(TIME, ['-f', '%M', '-o', timeFile, ...argv], { cwd: REPO_ROOT, env: { ...process.env, ...env }, encoding: 'utf8' });
  const ms = performance.now() - t0;
  if (r.status !== 0 || !expect.test(r.stdout)) {
    throw new Error(`${argv.join(' ')} (${JSON.stringify(env)}) exited ${r.status} without its usage:\n${r.stdout}\n${r.stderr}`);
  }
  const kb = Number(readFileSync(timeFile, 'utf8').trim().split('\n').pop());
  if (!Number.isFinite(kb) || kb <= 0) throw new Error(`no peak RSS from ${TIME}: ${readFileSync(timeFile, 'utf8')}`);
  return { ms, mb: kb / 1024 };
}

console.log(`start-up: ${machineLine()}, ${ROUNDS} interleaved rounds`);
try {
  execFileSync('npm', ['run', '--silent', 'build'], { cwd: REPO_ROOT, stdio: 'inherit' });
  // bin/launch runs tsx instead of the build once a .ts is newer than the stamp: checked before and
  // after the runs, so a file saved meanwhile cannot pass tsx figures off as the build's.
  const checkFresh = (when: string) => {
    const stale = execFileSync('find', ['lib', 'bin', 'dataplane', '-name', '*.ts', '-newer', 'build/.stamp', '-print', '-quit'], { cwd: REPO_ROOT, encoding: 'utf8' }).trim();
    if (stale) throw new Error(`${stale} is newer than the build just made (saved ${when}; the launcher then runs tsx): run the bench again`);
  };
  checkFresh('during the build');

  const cases = {
    'LibreQoS --help': { argv: [join(REPO_ROOT, 'LibreQoS'), '--help'], usage: /^Usage: LibreQoS/ },
    'lqosd --help': { argv: [join(REPO_ROOT, 'lqosd'), '--help'], usage: /^Usage: lqosd/ },
  };
  const rss: Record<string, number[]> = {};
  const run = (key: string, argv: string[], env: Record<string, string>, usage: RegExp) => () => {
    const m = measure(argv, env, usage);
    (rss[key] ??= []).push(m.mb);
    return m.ms;
  };
  const variants: Record<string, () => number> = { 'node -e 0': run('node -e 0', [process.execPath, '-e', '0'], {}, /^$/) };
  for (const [name, c] of Object.entries(cases)) {
    variants[`${name} (tsx)`] = run(`${name} (tsx)`, c.argv, { LQOS_LAUNCH: 'tsx' }, c.usage);
    variants[`${name} (build)`] = run(`${name} (build)`, c.argv, { LQOS_LAUNCH: '' }, c.usage);
  }
  const wall = await interleaved(ROUNDS, variants);
  checkFresh('during the bench');
  const width = Math.max(...Object.keys(wall).map((k) => k.length));
  for (const [k, xs] of Object.entries(wall)) {
    console.log(`  ${k.padEnd(width)}  wall ${fmtSpread(xs, 'ms')}  peak RSS ${fmtSpread(rss[k]!, 'MB')}`);
  }
  const targets = new Targets();
  for (const name of Object.keys(cases)) {
    const before = spread(wall[`${name} (tsx)`]!);
    const after = spread(wall[`${name} (build)`]!);
    console.log(`  ${name}: ${(before.median / after.median).toFixed(1)}× faster than with tsx`);
    targets.atMost(`./${name} wall ≤ ${WALL_MS} ms (build)`, wall[`${name} (build)`]!, WALL_MS, 'ms');
    targets.atMost(`./${name} peak RSS ≤ ${RSS_MB} MB (build)`, rss[`${name} (build)`]!, RSS_MB, 'MB');
  }
  targets.report();
} finally {
  rmSync(tmp, { recursive: true, force: true });
}
