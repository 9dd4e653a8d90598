/**
 * Compile-pipeline benchmark (npm run bench:compile):
 *   node --import tsx bench/compile.bench.ts [--sizes 1000,10000,50000,100000] [--runs 3]
 *        [--seed 1] [--json FILE] [--cpu-prof DIR] [--strict]
 *
 * For each size: generate a synthetic dataset (bench/dataset.ts; not timed) into a temp dir,
 * then run bench/compile.worker.ts in a FRESH node process, which times validate → plan →
 * compile `--runs` times and reports its peak RSS. Prints the figures, the per-stage split
 * and pass/fail against the targets. --strict: exit 1 when a target is missed.
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
import { repoRoot } from '../test/support/paths.ts';
import { makeWorkspace } from '../test/support/workspace.ts';

const here = dirname(fileURLToPath(import.meta.url));

/** Targets: wall time of validate+plan+compile (best of the runs), and peak RSS. */
export const TARGETS: Record<number, { ms?: number; rssMB?: number }> = {
  10000: { ms: 250 },
  50000: { ms: 1500 },
  100000: { ms: 3000, rssMB: 500 },
};

interface SizeResult {
  size: number;
  genMs: number;
  worker: WorkerResult;
  cold: StageTimes;
  best: StageTimes;
  /** Per-stage minimum over the runs (the stages' own best, not necessarily the same run). */
  stageMin: StageTimes;
  rssMB: number;
  verdicts: string[];
  pass: boolean;
}

function fmtMs(v: number): string {
  return v >= 100 ? v.toFixed(0) : v.toFixed(1);
}

function table(head: string[], rows: string[][]): string {
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]) => '| ' + cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join(' | ') + ' |';
  const sep = '|' + widths.map((w, i) => (i === 0 ? ':' + '-'.repeat(w + 1) : '-'.repeat(w + 1) + ':')).join('|') + '|';
  return [line(head), sep, ...rows.map(line)].join('\n');
}

function runSize(size: number, opts: { runs: number; seed: number; cpuProf?: string }): SizeResult {
  const g0 = performance.now();
  const ds = generateDataset({ circuits: size, seed: opts.seed });
  const genMs = performance.now() - g0;
  const ws = makeWorkspace({ prefix: `lqos-bench-${size}-`, devices: ds.shapedDevicesCsv, network: ds.networkJson });
  try {
    const nodeArgs = ['--import', 'tsx'];
    if (opts.cpuProf) nodeArgs.push('--cpu-prof', '--cpu-prof-dir', resolve(opts.cpuProf), '--cpu-prof-name', `compile-${size}.cpuprofile`);
    const child = spawnSync(process.execPath, [...nodeArgs, join(here, 'compile.worker.ts'), '--dir', ws.dir, '--runs', String(opts.runs)], {
      cwd: repoRoot,
      encoding: 'utf8',
      maxBuffer: 64 * 1024 * 1024,
    });
    if (child.status !== 0) {
      throw new Error(`worker for ${size} circuits failed (status ${child.status}, signal ${child.signal}):\n${child.stderr}`);
    }
    const lastLine = child.stdout.trim().split('\n').pop() ?? '';
    const worker = JSON.parse(lastLine) as WorkerResult;
    const cold = worker.runs[0]!;
    const best = worker.runs.reduce((a, b) => (b.totalMs < a.totalMs ? b : a));
    const stageMin: StageTimes = {
      validateMs: Math.min(...worker.runs.map((r) => r.validateMs)),
      planMs: Math.min(...worker.runs.map((r) => r.planMs)),
      compileMs: Math.min(...worker.runs.map((r) => r.compileMs)),
      mergeMs: Math.min(...worker.runs.map((r) => r.mergeMs)),
      totalMs: best.totalMs,
      cpuMs: Math.min(...worker.runs.map((r) => r.cpuMs)),
    };
    const rssMB = worker.maxRssKB / 1024;
    const verdicts: string[] = [];
    let pass = true;
    const t = TARGETS[size];
    if (t?.ms !== undefined) {
      const ok = best.totalMs <= t.ms;
      pass &&= ok;
      verdicts.push(`${ok ? 'PASS' : 'FAIL'} ≤ ${t.ms} ms${cold.totalMs > t.ms ? ' (cold over)' : ''}`);
    }
    if (t?.rssMB !== undefined) {
      const ok = rssMB <= t.rssMB;
      pass &&= ok;
      verdicts.push(`${ok ? 'PASS' : 'FAIL'} RSS ≤ ${t.rssMB} MB`);
    }
    if (verdicts.length === 0) verdicts.push('—');
    return { size, genMs, worker, cold, best, stageMin, rssMB, verdicts, pass };
  } finally {
    ws.cleanup();
  }
}

function main(): void {
  const { values } = parseArgs({
    options: {
      sizes: { type: 'string', default: '1000,10000,50000,100000' },
      runs: { type: 'string', default: '3' },
      seed: { type: 'string', default: '1' },
      json: { type: 'string' },
      'cpu-prof': { type: 'string' },
      strict: { type: 'boolean', default: false },
    },
    strict: true,
  });
  const sizes = values.sizes
    .split(',')
    .map((s) => Number(s.trim().replace(/k$/i, '000')))
    .filter((n) => Number.isInteger(n) && n > 0);
  if (sizes.length === 0) throw new Error(`--sizes: no valid size in "${values.sizes}"`);
  const runs = Math.max(1, Number(values.runs) || 3);
  const seed = Number(values.seed) || 1;

  const load0 = loadavg()[0]!;
  process.stderr.write(`compile benchmark: sizes ${sizes.join(', ')}; ${runs} runs each, fresh process per size; node ${process.version}\n`);
  const results: SizeResult[] = [];
  for (const size of sizes) {
    process.stderr.write(`  ${size} circuits … `);
    const r = runSize(size, { runs, seed, cpuProf: values['cpu-prof'] });
    process.stderr.write(`${fmtMs(r.best.totalMs)} ms best, ${r.rssMB.toFixed(0)} MB\n`);
    results.push(r);
  }

  const out: string[] = [];
  out.push('');
  out.push('validate+plan+compile (wall ms, in-process; dataset generation not timed):');
  out.push(
    table(
      ['circuits', 'devices', 'cold ms', `best of ${runs} ms`, 'tc lines', 'mappings', 'peak RSS MB (cold / end)', 'target'],
      results.map((r) => [
        r.size.toLocaleString('en-US'),
        r.worker.devices.toLocaleString('en-US'),
        fmtMs(r.cold.totalMs),
        fmtMs(r.best.totalMs),
        r.worker.tcLines.toLocaleString('en-US'),
        r.worker.mappings.toLocaleString('en-US'),
        `${(r.worker.maxRssColdKB / 1024).toFixed(0)} / ${r.rssMB.toFixed(0)}`,
        r.verdicts.join('; '),
      ]),
    ),
  );
  out.push('');
  out.push('stage split, ms — cold run / per-stage best:');
  out.push(
    table(
      ['circuits', 'validate', 'plan', 'compile (tc+map)', 'warning merge', 'CPU ms (cold / best)', 'runPipeline() x-check'],
      results.map((r) => [
        r.size.toLocaleString('en-US'),
        `${fmtMs(r.cold.validateMs)} / ${fmtMs(r.stageMin.validateMs)}`,
        `${fmtMs(r.cold.planMs)} / ${fmtMs(r.stageMin.planMs)}`,
        `${fmtMs(r.cold.compileMs)} / ${fmtMs(r.stageMin.compileMs)}`,
        `${fmtMs(r.cold.mergeMs)} / ${fmtMs(r.stageMin.mergeMs)}`,
        `${fmtMs(r.cold.cpuMs)} / ${fmtMs(r.best.cpuMs)}`,
        `${fmtMs(r.worker.pipelineMs)} (${r.worker.pipelineOutcome})`,
      ]),
    ),
  );
  const notes: string[] = [];
  for (const r of results) {
    const w = r.worker;
    if (w.validationErrors > 0) {
      notes.push(`${r.size}: ${w.validationErrors} validation error(s): ${Object.entries(w.validationErrorCodes).map(([c, n]) => `${c}×${n}`).join(', ')}`);
    }
    if (w.planErrorCodes.length > 0) notes.push(`${r.size}: plan errors: ${w.planErrorCodes.join(', ')} (runPipeline ${w.pipelineOutcome}; all stages still timed)`);
    if (w.circuits !== r.size) notes.push(`${r.size}: validator produced ${w.circuits} circuits`);
  }
  out.push('');
  out.push(`baseline RSS before the first run (node + tsx + modules + input text): ${results.map((r) => `${r.size}: ${(r.worker.baselineRssKB / 1024).toFixed(0)} MB`).join(', ')}`);
  out.push(`dataset generation (not timed above): ${results.map((r) => `${r.size}: ${fmtMs(r.genMs)} ms`).join(', ')}`);
  out.push(`load average (1 min) at start / end: ${load0.toFixed(2)} / ${loadavg()[0]!.toFixed(2)} — wall times are only comparable on an otherwise idle machine`);
  for (const n of notes) out.push(`note: ${n}`);
  const failed = results.filter((r) => !r.pass);
  out.push(failed.length ? `targets missed: ${failed.map((r) => r.size).join(', ')}` : 'all targets met');
  process.stdout.write(out.join('\n') + '\n');

  if (values.json) {
    writeFileSync(
      values.json,
      JSON.stringify(
        {
          node: process.version,
          date: new Date().toISOString(),
          runs,
          seed,
          results: results.map((r) => ({ size: r.size, genMs: r.genMs, rssMB: r.rssMB, pass: r.pass, verdicts: r.verdicts, ...r.worker })),
        },
        null,
        2,
      ) + '\n',
    );
  }
  if (values.strict && failed.length) process.exitCode = 1;
}

main();
