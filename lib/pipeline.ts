/**
 * The pure "compiler" pipeline: input texts → validation → plan → tc batch + mapping list.
 * No files, no kernel: callers (the LibreQoS command, lqosd, benchmarks, tests) do the I/O.
 */
import { compileMappings } from './compile/mappings.ts';
import { compileTcBatch, type CompileOptions } from './compile/tc.ts';
import { validateInputs } from './inputs/validate.ts';
import type { InputIssue, IpMapping, ShapingPlan, ValidationResult } from './model.ts';
import type { PlanConfig } from './plan/planConfig.ts';
import { planShaping } from './plan/planner.ts';
import type { PlannerState } from './plan/plannerState.ts';

export interface PipelineInput {
  devicesText: string;
  devicesFile: string;
  networkText: string;
  networkFile: string;
  config: PlanConfig;
  previousState?: PlannerState;
  compile?: CompileOptions;
  /** The validation of exactly these texts, when the caller has done it (it is not repeated). */
  validation?: ValidationResult;
}

/** What planPipeline returns: runPipeline's result without the compiled tc batch and mappings. */
export type PlannedPipeline =
  | { ok: false; stage: 'validate'; validation: ValidationResult }
  | { ok: false; stage: 'plan'; validation: ValidationResult; plan: ShapingPlan; errors: InputIssue[] }
  | {
      ok: true;
      validation: ValidationResult;
      plan: ShapingPlan;
      state: PlannerState;
      /** Validation warnings + planning warnings. */
      warnings: InputIssue[];
    };

export type PipelineResult =
  | Exclude<PlannedPipeline, { ok: true }>
  | (Extract<PlannedPipeline, { ok: true }> & { tcLines: string[]; mappings: IpMapping[] });

/** The whole pipeline: validate, plan, then compile the tc batch and the mapping list. */
export function runPipeline(input: PipelineInput): PipelineResult {
  const planned = planPipeline(input);
  if (!planned.ok) return planned;
  return { ...planned, tcLines: compileTcBatch(planned.plan, input.compile), mappings: compileMappings(planned.plan) };
}

/**
 * Validate and plan only (`input.compile` is not used): for a caller that compiles the plan itself,
 * e.g. writing the tc batch as it is compiled (compile/tc.ts tcBatchTextChunks).
 */
export function planPipeline(input: PipelineInput): PlannedPipeline {
  const validation = input.validation ?? validateInputs({
    devicesText: input.devicesText,
    devicesFile: input.devicesFile,
    networkText: input.networkText,
    networkFile: input.networkFile,
  });
  if (!validation.ok) return { ok: false, stage: 'validate', validation };
  const planned = planShaping({
    inputs: validation.inputs,
    config: input.config,
    previous: input.previousState,
    files: { devices: input.devicesFile, network: input.networkFile },
  });
  if (planned.errors.length > 0) return { ok: false, stage: 'plan', validation, plan: planned.plan, errors: planned.errors };
  return { ok: true, validation, plan: planned.plan, state: planned.state, warnings: mergedWarnings(validation, planned.plan) };
}

/** Validation + planning warnings; unknown-parent warnings are raised by both, one is kept. */
function mergedWarnings(validation: ValidationResult, plan: ShapingPlan): InputIssue[] {
  const seen = new Set<string>();
  const warnings: InputIssue[] = [];
  for (const w of [...validation.issues.filter((i) => i.severity === 'warning'), ...plan.warnings]) {
    const key = `${w.code}|${w.file}|${w.line}|${w.column}|${w.value}`;
    if (seen.has(key)) continue;
    seen.add(key);
    warnings.push(w);
  }
  return warnings;
}
