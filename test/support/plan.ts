/**
 * Plans for tests and benchmarks: the one PlanConfig they start from, and the pipeline run on input
 * texts under their usual file names.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { CompileOptions } from '../../lib/compile/tc.ts';
import { runPipeline, type PipelineResult } from '../../lib/pipeline.ts';
import type { PlanConfig } from '../../lib/plan/planConfig.ts';
import type { PlannerState } from '../../lib/plan/plannerState.ts';

/** Changes to the base PlanConfig; `interfaces` may name only some of its fields. */
export type PlanConfigChanges = Partial<Omit<PlanConfig, 'interfaces'>> & { interfaces?: Partial<PlanConfig['interfaces']> };

/** The tests' plan configuration — a 1G bridge (eth1 download, eth0 upload), 2 queues, cake diffserv4 — with `changes` applied. */
export function planConfig(changes: PlanConfigChanges = {}): PlanConfig {
  const base: PlanConfig = {
    interfaces: { download: 'eth1', upload: 'eth0', onAStick: false },
    queues: 2,
    link: { downloadMbps: 1000, uploadMbps: 1000 },
    generatedPn: { downloadMbps: 1000, uploadMbps: 1000 },
    defaultSqm: 'cake diffserv4',
    fastQueuesFqCodelMbps: 1000,
    useBinpacking: false,
    queueMode: 'shape',
  };
  return { ...base, ...changes, interfaces: { ...base.interfaces, ...changes.interfaces } };
}

/** The benchmarks' plan configuration: a 10G bridge, 16 queues. */
export const BENCH_PLAN_CONFIG: PlanConfig = planConfig({
  queues: 16,
  link: { downloadMbps: 10000, uploadMbps: 10000 },
  generatedPn: { downloadMbps: 10000, uploadMbps: 10000 },
});

/** Compile options for a kernel without cake and fq_codel: pfifo leaves, the substitution lqosd would make. */
export const PFIFO_LEAVES: CompileOptions = {
  substitute: { cake: { kind: 'pfifo', args: ['limit', '1000'] }, fq_codel: { kind: 'pfifo', args: ['limit', '1000'] } },
};

/** The two input texts. */
export interface InputTexts {
  devices: string;
  network: string;
}

export interface PipelineOptions {
  /** Default planConfig(). */
  config?: PlanConfig;
  previousState?: PlannerState;
  compile?: CompileOptions;
}

/** ShapedDevices.csv and network.json of a directory. */
export function readInputs(dir: string): InputTexts {
  return { devices: readFileSync(join(dir, 'ShapedDevices.csv'), 'utf8'), network: readFileSync(join(dir, 'network.json'), 'utf8') };
}

/** runPipeline on the texts, as ShapedDevices.csv and network.json. */
export function pipeline(texts: InputTexts, opts: PipelineOptions = {}): PipelineResult {
  return runPipeline({
    devicesText: texts.devices,
    devicesFile: 'ShapedDevices.csv',
    networkText: texts.network,
    networkFile: 'network.json',
    config: opts.config ?? planConfig(),
    previousState: opts.previousState,
    compile: opts.compile,
  });
}

/** The pipeline's result when it succeeds; throws naming the stage and its issues otherwise. */
export function buildPlan(texts: InputTexts, opts: PipelineOptions = {}): Extract<PipelineResult, { ok: true }> {
  const r = pipeline(texts, opts);
  if (!r.ok) {
    const issues = r.stage === 'validate' ? r.validation.issues : r.errors;
    throw new Error(`pipeline failed at ${r.stage}: ${JSON.stringify(issues).slice(0, 500)}`);
  }
  return r;
}
