/**
 * The core of a shaping run, shared by the LibreQoS command (direct apply) and lqosd (bus
 * `submit_plan`): validate + plan + compile the inputs, write the run's files, and apply the
 * difference to the kernel (or only report it, in a dry run). The caller owns locking.
 */
import type { LqosConfig } from '../config/schema.ts';
import { renderMappings } from '../compile/mappings.ts';
import { formatIssue } from '../inputs/validate.ts';
import type { InputIssue, LeafQdisc, ShapingPlan } from '../model.ts';
import { runPipeline } from '../pipeline.ts';
import { planConfigFromLqos } from '../plan/planConfig.ts';
import { parsePlannerState, serializePlannerState } from '../plan/plannerState.ts';
import type { MappingSink } from '../apply/direct.ts';
import { applyPlan, MemoryPreflightError, type ApplyReport } from '../apply/engine.ts';
import { diffPlans } from '../apply/diff.ts';
import { deserializePlan, serializePlan } from '../apply/appliedPlan.ts';
import type { Logger } from '../util/log.ts';
import { EXIT, type ExitCode } from './exitCodes.ts';
import { copyAtomic, readIfExists, removeIfExists, writeAtomic, type StatePaths } from './stateFiles.ts';

export interface ShapingInputsText {
  devicesFile: string;
  networkFile: string;
  devicesText: string;
  networkText: string;
}

export interface PlanAndApplyArgs {
  config: LqosConfig;
  ifaces: { download: string; upload: string; onAStick: boolean };
  queues: number;
  inputs: ShapingInputsText;
  paths: StatePaths;
  log: Logger;
  dryRun: boolean;
  updateonly: boolean;
  verbose: boolean;
  /** Replacement leaves for qdisc kinds this kernel lacks. */
  substitute?: Record<string, LeafQdisc>;
  /** Where IP mappings go (absent: tc only). Called once the plan is known. */
  sinkFor?: (plan: ShapingPlan, log: Logger) => Promise<MappingSink | undefined>;
}

export interface PlanAndApplyResult {
  code: ExitCode;
  plan?: ShapingPlan;
  report?: ApplyReport;
}

export function reportIssues(issues: InputIssue[], log: Logger, verbose: boolean): void {
  const errors = issues.filter((i) => i.severity === 'error');
  const warnings = issues.filter((i) => i.severity === 'warning');
  for (const e of errors) log.error(formatIssue(e));
  const shown = verbose ? warnings : warnings.slice(0, 20);
  for (const w of shown) log.warn(formatIssue(w));
  if (shown.length < warnings.length) log.warn(`… and ${warnings.length - shown.length} more warning(s); run with --verbose to see all`);
}


export async function planAndApply(args: PlanAndApplyArgs): Promise<PlanAndApplyResult> {
  const { config, ifaces, queues, inputs, paths, log, dryRun, updateonly, verbose, substitute, sinkFor } = args;
  let planOut: ShapingPlan | undefined;
  let applyReport: ApplyReport | undefined;
  const done = (code: ExitCode): PlanAndApplyResult => ({ code, plan: planOut, report: applyReport });
  const prev = parsePlannerState(readIfExists(paths.plannerState));
  if (prev.note) log.warn(prev.note);

  const t0 = performance.now();
  const result = runPipeline({
    ...inputs,
    config: planConfigFromLqos(config, ifaces, queues),
    previousState: prev.state,
    compile: { substitute },
  });
  const planSeconds = (performance.now() - t0) / 1000;
  if (!result.ok) {
    if (result.stage === 'validate') {
      reportIssues(result.validation.issues, log, verbose);
      log.error('validation failed; nothing was applied and the shaping in force is unchanged — fix the lines above and run again');
      return done(EXIT.invalidInput);
    }
    reportIssues(result.errors, log, true);
    log.error('planning failed; nothing was applied and the shaping in force is unchanged');
    return done(EXIT.plan);
  }
  reportIssues(result.warnings, log, verbose);
  const { plan, tcLines, mappings } = result;
  planOut = plan;
  log.info(
    { circuits: plan.circuits.length, nodes: plan.nodes.length, tcLines: tcLines.length, mappings: mappings.length, seconds: +planSeconds.toFixed(3) },
    `planned ${plan.circuits.length} circuits under ${plan.nodes.length} nodes on ${plan.queues} queue(s)`,
  );

  const tcText = tcLines.join('\n') + '\n';
  const mapText = renderMappings(mappings);
  writeAtomic(paths.linuxTc, tcText);
  writeAtomic(paths.mappings, mapText);
  writeAtomic(paths.queuingStructure, JSON.stringify(queuingStructure(plan), null, 1) + '\n');
  for (const line of tcLines) log.debug(`tc ${line}`);
  for (const line of mapText.split('\n').filter(Boolean)) log.debug(`map ${line}`);

  const applied = deserializePlan(readIfExists(paths.appliedPlan));
  if (updateonly && applied && diffPlans(applied, plan, { substitute }).mode === 'none') {
    log.info('no changes to the applied shaping; leaving queues as they are');
    writeAtomic(paths.plannerState, serializePlannerState(result.state));
    return done(EXIT.ok);
  }

  if (dryRun) {
    writeAtomic(paths.plannerState, serializePlannerState(result.state));
    const ops = diffPlans(applied, plan, { substitute });
    log.info({ ...ops.summary, mode: ops.mode }, `dry run: nothing applied (a real run would do a${ops.mode === 'incremental' ? 'n incremental update' : ops.mode === 'full' ? ' full rebuild' : 'nothing'}); planned commands are in ${paths.linuxTc} and mappings in ${paths.mappings}`);
    return done(EXIT.ok);
  }

  const sink = sinkFor ? await sinkFor(plan, log) : undefined;
  try {
    const report = await applyPlan({ applied, next: plan, compile: { substitute }, sink, log });
    applyReport = report;
    log.info(
      { mode: report.mode, tcCommands: report.tcCommands, ...report.summary, seconds: +report.seconds.toFixed(3) },
      report.mode === 'none'
        ? 'queues and mappings already match the plan; nothing to do'
        : `applied (${report.mode}): ${report.tcCommands} tc commands, ${report.mappingsWritten} mappings written, ${report.mappingsDeleted} removed`,
    );
  } catch (e) {
    if (e instanceof MemoryPreflightError) {
      // Refused before touching anything: the shaping in force stays as it is.
      log.error(e.message);
      return done(EXIT.plan);
    }
    log.error(`applying failed: ${(e as Error).message}`);
    removeIfExists(paths.appliedPlan);
    if (applied) {
      try {
        await applyPlan({ applied: undefined, next: applied, compile: { substitute }, sink, log });
        writeAtomic(paths.appliedPlan, serializePlan(applied));
        log.warn('restored the last applied shaping; fix the problem above and run again');
      } catch (e2) {
        log.error(`could not restore the last applied shaping: ${(e2 as Error).message}`);
      }
    }
    return done(EXIT.apply);
  }
  writeAtomic(paths.appliedPlan, serializePlan(plan));
  writeAtomic(paths.plannerState, serializePlannerState(result.state));
  writeAtomic(paths.lastAppliedTc, tcText);
  writeAtomic(paths.lastAppliedMappings, mapText);
  copyAtomic(inputs.devicesFile, paths.lastGoodCsv);
  copyAtomic(inputs.networkFile, paths.lastGoodJson);
  writeAtomic(paths.lastRun, new Date().toISOString() + '\n');
  return done(EXIT.ok);
}


/** Operator-facing JSON of the plan (the tree with class ids and circuits). */
export function queuingStructure(plan: ShapingPlan): unknown {
  const hex = (n: number) => n.toString(16);
  const cid = (q: number, m: number) => `${hex(q)}:${hex(m)}`;
  return {
    interfaces: plan.interfaces,
    queues: plan.queues,
    stickOffset: plan.stickOffset,
    mode: plan.mode,
    nodes: plan.nodes.map((n) => ({
      ...n,
      classid: cid(n.queue, n.minor),
      up_classid: cid(n.queue + plan.stickOffset, n.minor),
      parentClassId: cid(n.queue, n.parentMinor),
      cpu: n.queue - 1,
    })),
    circuits: plan.circuits.map((c) => ({
      ...c,
      circuitHash: c.circuitHash.toString(),
      classid: cid(c.queue, c.minor),
      up_classid: cid(c.queue + plan.stickOffset, c.minor),
      parentClassId: cid(c.queue, c.parentMinor),
      cpu: c.queue - 1,
    })),
  };
}

