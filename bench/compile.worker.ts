/**
 * One size of the compile benchmark, in its own process (so peak RSS is per size):
 *   node --import tsx bench/compile.worker.ts --dir DIR [--runs 3]
 *   node --import tsx bench/compile.worker.ts --circuits N [--seed 1] [--runs 3]
 * With --dir it reads DIR/network.json + DIR/ShapedDevices.csv (the driver writes them, so
 * generation never counts towards this process's RSS); with --circuits it generates in-process
 * (handy for `node --cpu-prof`). Prints one JSON line (WorkerResult) on stdout.
 *
 * Each run times the stages runPipeline does — validateInputs → planShaping → compileTcBatch +
 * compileMappings (+ the warning merge) — called directly so every stage is timed even when the
 * plan reports errors (e.g. `qdisc-handle-exhausted` above ~57k circuits on one interface, where
 * runPipeline itself stops after planning).
 */
import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { performance } from 'node:perf_hooks';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { compileMappings } from '../lib/compile/mappings.ts';
import { compileTcBatch } from '../lib/compile/tc.ts';
import { validateInputs } from '../lib/inputs/validate.ts';
import type { InputIssue } from '../lib/model.ts';
import { runPipeline } from '../lib/pipeline.ts';
import type { PlanConfig } from '../lib/plan/planConfig.ts';
import { planShaping } from '../lib/plan/planner.ts';
import { BENCH_PLAN_CONFIG } from '../test/support/plan.ts';
import { generateDataset } from './dataset.ts';

export interface StageTimes {
  validateMs: number;
  planMs: number;
  /** compileTcBatch + compileMappings. */
  compileMs: number;
  /** runPipeline's warning de-duplication (validation + plan warnings). */
  mergeMs: number;
  totalMs: number;
  /** user+system CPU of the whole process during the run (GC helper threads included), ms. */
  cpuMs: number;
}

export interface WorkerResult {
  circuits: number;
  devices: number;
  runs: StageTimes[];
  tcLines: number;
  mappings: number;
  validationErrors: number;
  validationWarnings: number;
  /** First few validation error codes (if any) with counts. */
  validationErrorCodes: Record<string, number>;
  planWarnings: number;
  planErrorCodes: string[];
  /** What runPipeline returns for this input: ok, or the stage that stopped it. */
  pipelineOutcome: string;
  /** One extra runPipeline() call, timed, as a cross-check of the stage sum (after maxRss was read). */
  pipelineMs: number;
  /** Peak RSS of this process after the timed runs, KB (process.resourceUsage().maxRSS). */
  maxRssKB: number;
  /** Peak RSS after the first (cold) run only, KB: what a one-shot `LibreQoS` run peaks at. */
  maxRssColdKB: number;
  /** RSS after modules were loaded and the input files read, before the first run, KB. */
  baselineRssKB: number;
  inputBytes: number;
}

function mergeWarnings(validationIssues: InputIssue[], planWarnings: InputIssue[]): InputIssue[] {
  // Same as lib/pipeline.ts.
  const seen = new Set<string>();
  const warnings: InputIssue[] = [];
  for (const w of [...validationIssues.filter((i) => i.severity === 'warning'), ...planWarnings]) {
    const key = `${w.code}|${w.file}|${w.line}|${w.column}|${w.value}`;
    if (seen.has(key)) continue;
    seen.add(key);
    warnings.push(w);
  }
  return warnings;
}

interface InputTexts {
  devicesText: string;
  devicesFile: string;
  networkText: string;
  networkFile: string;
}

type RunSummary = Omit<WorkerResult, 'runs' | 'maxRssKB' | 'maxRssColdKB' | 'baselineRssKB' | 'inputBytes' | 'pipelineMs' | 'pipelineOutcome'>;

/** One validate → plan → compile pass; returns only numbers so nothing of the run stays reachable. */
function timedRun(texts: InputTexts, config: PlanConfig): { times: StageTimes; summary: RunSummary } {
  const { devicesFile, networkFile } = texts;
  const c0 = process.cpuUsage();
  const t0 = performance.now();
  const validation = validateInputs(texts);
  const t1 = performance.now();
  const planned = planShaping({
    inputs: validation.inputs,
    config,
    files: { devices: devicesFile, network: networkFile },
  });
  const t2 = performance.now();
  const tcLines = compileTcBatch(planned.plan);
  const mappings = compileMappings(planned.plan);
  const t3 = performance.now();
  const warnings = mergeWarnings(validation.issues, planned.plan.warnings);
  const t4 = performance.now();
  const cpu = process.cpuUsage(c0);

  const codes: Record<string, number> = {};
  let vErrors = 0;
  for (const issue of validation.issues) {
    if (issue.severity !== 'error') continue;
    vErrors++;
    codes[issue.code] = (codes[issue.code] ?? 0) + 1;
  }
  return {
    times: { validateMs: t1 - t0, planMs: t2 - t1, compileMs: t3 - t2, mergeMs: t4 - t3, totalMs: t4 - t0, cpuMs: (cpu.user + cpu.system) / 1000 },
    summary: {
      circuits: validation.inputs.circuits.length,
      devices: validation.inputs.circuits.reduce((s, c) => s + c.devices.length, 0),
      tcLines: tcLines.length,
      mappings: mappings.length,
      validationErrors: vErrors,
      validationWarnings: validation.issues.length - vErrors,
      validationErrorCodes: codes,
      planWarnings: warnings.length,
      planErrorCodes: [...new Set(planned.errors.map((e) => e.code))],
    },
  };
}

function main(): void {
  const { values } = parseArgs({
    options: {
      dir: { type: 'string' },
      circuits: { type: 'string' },
      seed: { type: 'string', default: '1' },
      runs: { type: 'string', default: '3' },
    },
    strict: true,
  });
  let devicesText: string;
  let networkText: string;
  if (values.dir) {
    devicesText = readFileSync(join(values.dir, 'ShapedDevices.csv'), 'utf8');
    networkText = readFileSync(join(values.dir, 'network.json'), 'utf8');
  } else if (values.circuits) {
    const ds = generateDataset({ circuits: Number(values.circuits), seed: Number(values.seed) });
    devicesText = ds.shapedDevicesCsv;
    networkText = ds.networkJson;
  } else {
    throw new Error('compile.worker: --dir DIR or --circuits N is required');
  }
  const runs = Math.max(1, Number(values.runs));
  const devicesFile = 'ShapedDevices.csv';
  const networkFile = 'network.json';
  const config = BENCH_PLAN_CONFIG;
  const baselineRssKB = Math.round(process.memoryUsage.rss() / 1024);

  const texts: InputTexts = { devicesText, devicesFile, networkText, networkFile };
  const times: StageTimes[] = [];
  let maxRssColdKB = 0;
  let last: RunSummary | undefined;
  for (let i = 0; i < runs; i++) {
    // One function call per run: the previous run's results are unreachable while the next runs.
    const r = timedRun(texts, config);
    times.push(r.times);
    last = r.summary;
    if (i === 0) maxRssColdKB = process.resourceUsage().maxRSS;
  }
  const maxRssKB = process.resourceUsage().maxRSS;

  const p0 = performance.now();
  const outcome = runPipeline({ devicesText, devicesFile, networkText, networkFile, config });
  const pipelineMs = performance.now() - p0;

  const result: WorkerResult = {
    ...last!,
    runs: times,
    pipelineOutcome: outcome.ok ? 'ok' : `stopped at ${outcome.stage}`,
    pipelineMs,
    maxRssKB,
    maxRssColdKB,
    baselineRssKB,
    inputBytes: Buffer.byteLength(devicesText) + Buffer.byteLength(networkText),
  };
  process.stdout.write(JSON.stringify(result) + '\n');
}

if (process.argv[1] && import.meta.url === pathToFileURL(resolve(process.argv[1])).href) main();
