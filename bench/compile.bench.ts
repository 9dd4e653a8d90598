/**
 * Compile-pipeline benchmark (npm run bench:compile):
 *   node --import tsx bench/compile.bench.ts [--sizes 1000,10000,50000,100000] [--rounds 3] [--runs 3]
 *        [--seed 1] [--json FILE] [--cpu-prof DIR]
 *
 * For each size: generate a synthetic dataset (bench/dataset.ts; not timed) into a temp dir once.
 * Then `--rounds` rounds; in each round every size runs bench/compile.worker.ts in a FRESH node
 * process (sizes in a rotating order, so load drift hits every size alike), which times
 * validate → plan → compile `--runs` times and reports its peak RSS. Reported per size: the median
 * and min–max over all timed runs, the cold (first-in-process) runs separately, the per-stage
 * medians, and the peak RSS of one compile in a fresh process (median over the rounds).
 * Ends with the target table (bench/stats.ts) and exits 1 when a target is missed.
 */
import { spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import type { StageTimes, WorkerResult } from './compile.worker.ts';
import { generateDataset } from './dataset.ts';
import { fmtSpread, interleaved, machineLine, spread, Targets } from './stats.ts';
import { repoRoot } from '../test/support/paths.ts';
import { makeWorkspace, type Workspace } from '../test/support/workspace.ts';

const here = dirname(fileURLToPath(import.meta.url));

/**
 * Targets, judged on medians: wall time of validate+plan+compile (median over every timed run of
 * every round), and the peak RSS of one compile in a fresh process (median over the rounds).
 */
export const TARGETS: Record<number, { ms?: number; rssMB?: number }> = {
  10000: { ms: 250 },
  50000: { ms: 1500 },
  100000: { ms: 3000, rssMB: 500 },
};

interface SizeData {
  size: number;
  genMs: number;
  ws: Workspace;
  workers: WorkerResult[];
}

function table(head: string[], rows: string[][]): string {
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]) => '| ' + cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join(' | ') + ' |';
  const sep = '|' + widths.map((w, i) => (i === 0 ? ':' + '-'.repeat(w + 1) : '-'.repeat(w + 1) + ':')).join('|') + '|';
  return [line(head), sep, ...rows.map(line)].join('\n');
}

function runWorker(d: SizeData, runs: number, cpuProf: string | undefined, round: number): WorkerResult {
  const nodeArgs = ['--import', 'tsx'];
  if (cpuProf) nodeArgs.push('--cpu-prof', '--cpu-prof-dir', resolve(cpuProf), '--cpu-prof-name', `compile-${d.size}-r${round}.cpuprofile`);
  const child = spawnSync(process.execPath, [...nodeArgs, join(here, 'compile.worker.ts'), '--dir', d.ws.dir, '--runs', String(runs)], {
    cwd: repoRoot,
    encoding: 'utf8',
    maxBuffer: 64 * 1024 * 1024,
  });
  if (child.status !== 0) {
    throw new Error(`worker for ${d.size} circuits failed (status ${child.status}, signal ${child.signal}):\n${child.stderr}`);
  }
  const w = JSON.parse(child.stdout.trim().split('\n').pop() ?? '') as WorkerResult;
  if (w.runs.length !== runs) throw new Error(`worker for ${d.size} circuits reported ${w.runs.length} runs, expected ${runs}`);
  return w;
}

const all = (d: SizeData) => d.workers.flatMap((w) => w.runs);
const stage = (d: SizeData, k: keyof StageTimes) => all(d).map((r) => r[k]);

function report(data: SizeData[], rounds: number, runs: number, targets: Targets): string[] {
  const out: string[] = [''];
  out.push(`validate+plan+compile, wall ms (in-process; dataset generation not timed): ${rounds} rounds × ${runs} runs per size; median (min–max)`);
  out.push(
    table(
      ['circuits', 'devices', `all ${rounds * runs} runs ms`, `cold runs ms (${rounds})`, 'tc lines', 'mappings', 'peak RSS MB, one compile', `peak RSS MB after ${runs} runs`],
      data.map((d) => {
        const w = d.workers[0]!;
        return [
          d.size.toLocaleString('en-US'),
          w.devices.toLocaleString('en-US'),
          fmtSpread(stage(d, 'totalMs'), ''),
          fmtSpread(d.workers.map((x) => x.runs[0]!.totalMs), ''),
          w.tcLines.toLocaleString('en-US'),
          w.mappings.toLocaleString('en-US'),
          fmtSpread(d.workers.map((x) => x.maxRssColdKB / 1024), '', 0),
          fmtSpread(d.workers.map((x) => x.maxRssKB / 1024), '', 0),
        ];
      }),
    ),
  );
  out.push('');
  out.push('stage split, ms — median (min–max) over all runs:');
  out.push(
    table(
      ['circuits', 'validate', 'plan', 'compile (tc+map)', 'warning merge', 'CPU ms (process)', 'runPipeline() x-check'],
      data.map((d) => [
        d.size.toLocaleString('en-US'),
        fmtSpread(stage(d, 'validateMs'), ''),
        fmtSpread(stage(d, 'planMs'), ''),
        fmtSpread(stage(d, 'compileMs'), ''),
        fmtSpread(stage(d, 'mergeMs'), ''),
        fmtSpread(stage(d, 'cpuMs'), ''),
        `${fmtSpread(d.workers.map((w) => w.pipelineMs), '')} (${d.workers[0]!.pipelineOutcome})`,
      ]),
    ),
  );
  for (const d of data) {
    const t = TARGETS[d.size];
    const label = d.size.toLocaleString('en-US');
    if (t?.ms !== undefined) targets.atMost(`${label} circuits: validate+plan+compile ≤ ${t.ms} ms`, stage(d, 'totalMs'), t.ms);
    if (t?.rssMB !== undefined) {
      targets.atMost(`${label} circuits: peak RSS of one compile in a fresh process ≤ ${t.rssMB} MB`, d.workers.map((w) => w.maxRssColdKB / 1024), t.rssMB, 'MB');
    }
  }
  const w0 = (d: SizeData) => d.workers[0]!;
  out.push('');
  out.push(`baseline RSS before the first run (node + tsx + modules + input text): ${data.map((d) => `${d.size}: ${(w0(d).baselineRssKB / 1024).toFixed(0)} MB`).join(', ')}`);
  out.push(`dataset generation (not timed above): ${data.map((d) => `${d.size}: ${d.genMs.toFixed(0)} ms`).join(', ')}`);
  for (const d of data) {
    const w = w0(d);
    if (w.validationErrors > 0) out.push(`note: ${d.size}: ${w.validationErrors} validation error(s): ${Object.entries(w.validationErrorCodes).map(([c, n]) => `${c}×${n}`).join(', ')}`);
    if (w.planErrorCodes.length > 0) out.push(`note: ${d.size}: plan errors: ${w.planErrorCodes.join(', ')} (runPipeline ${w.pipelineOutcome}; all stages still timed)`);
    if (w.circuits !== d.size) out.push(`note: ${d.size}: validator produced ${w.circuits} circuits`);
  }
  return out;
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      sizes: { type: 'string', default: '1000,10000,50000,100000' },
      rounds: { type: 'string', default: '3' },
      runs: { type: 'string', default: '3' },
      seed: { type: 'string', default: '1' },
      json: { type: 'string' },
      'cpu-prof': { type: 'string' },
      strict: { type: 'boolean', default: true }, // kept for old command lines: a missed target always exits 1
    },
    strict: true,
  });
  const sizes = values.sizes
    .split(',')
    .map((s) => Number(s.trim().replace(/k$/i, '000')))
    .filter((n) => Number.isInteger(n) && n > 0);
  if (sizes.length === 0) throw new Error(`--sizes: no valid size in "${values.sizes}"`);
  const runs = Math.max(1, Number(values.runs) || 3);
  const rounds = Math.max(1, Number(values.rounds) || 3);
  const seed = Number(values.seed) || 1;

  const load0 = loadavg()[0]!;
  process.stderr.write(`compile benchmark: sizes ${sizes.join(', ')}; ${rounds} rounds × ${runs} runs, a fresh process per size and round; ${machineLine()}\n`);
  const data: SizeData[] = sizes.map((size) => {
    const g0 = performance.now();
    const ds = generateDataset({ circuits: size, seed });
    const genMs = performance.now() - g0;
    return { size, genMs, ws: makeWorkspace({ prefix: `lqos-bench-${size}-`, devices: ds.shapedDevicesCsv, network: ds.networkJson }), workers: [] };
  });
  const targets = new Targets();
  try {
    const variants = Object.fromEntries(
      data.map((d) => [
        String(d.size),
        (round: number) => {
          const w = runWorker(d, runs, values['cpu-prof'], round);
          d.workers.push(w);
          process.stderr.write(`    ${d.size}: ${w.runs.map((r) => r.totalMs.toFixed(0)).join(' / ')} ms, peak RSS ${(w.maxRssColdKB / 1024).toFixed(0)} MB\n`);
          return w.runs.map((r) => r.totalMs);
        },
      ]),
    );
    await interleaved(rounds, variants, (r, order) => process.stderr.write(`  round ${r + 1}/${rounds}: ${order.join(', ')}\n`));
    const out = report(data, rounds, runs, targets);
    out.push(`load average (1 min) at start / end: ${load0.toFixed(2)} / ${loadavg()[0]!.toFixed(2)}`);
    process.stdout.write(out.join('\n') + '\n');
    targets.report();
    if (values.json) {
      const results = data.map((d) => ({ size: d.size, genMs: d.genMs, totalMs: spread(stage(d, 'totalMs')), workers: d.workers }));
      writeFileSync(values.json, JSON.stringify({ node: process.version, date: new Date().toISOString(), rounds, runs, seed, targets: targets.rows, results }, null, 2) + '\n');
    }
  } finally {
    for (const d of data) d.ws.cleanup();
  }
}

await main();
