/**
 * The one shaping run, shared by lqosd (bus `submit_plan`, refresh) and `LibreQoS` (dry run,
 * --direct): validate + plan + compile the inputs, write the run's files, apply the difference to
 * the kernel (or only report it, in a dry run) and record what is now in force. On an apply failure
 * the last applied plan is restored. The caller owns locking.
 */
import type { ShapingInterfaces } from '../config/load.ts';
import type { StatePaths } from '../config/paths.ts';
import type { LqosConfig } from '../config/schema.ts';
import { renderMappings } from '../compile/mappings.ts';
import type { LeafQdisc, ShapingPlan } from '../model.ts';
import { runPipeline } from '../pipeline.ts';
import { planConfigFromLqos } from '../plan/planConfig.ts';
import { parsePlannerState, serializePlannerState, type PlannerState } from '../plan/plannerState.ts';
import { deserializePlan, serializePlan } from '../apply/appliedPlan.ts';
import { diffPlans } from '../apply/diff.ts';
import { applyPlan, MemoryPreflightError, type ApplyReport } from '../apply/engine.ts';
import type { MappingSink } from '../apply/mappingSink.ts';
import { copyFileAtomic, readTextIfExists, removeIfExists, writeFileAtomic } from '../util/atomicFile.ts';
import type { Log } from '../util/log.ts';
import { EXIT, type ExitCode } from './exitCodes.ts';
import { reportIssues, type ShapingInputs } from './inputs.ts';
import { queuingStructure } from './queuingStructure.ts';

export interface ShapingRunArgs {
  config: LqosConfig;
  ifaces: ShapingInterfaces;
  queues: number;
  inputs: ShapingInputs;
  paths: StatePaths;
  log: Log;
  dryRun: boolean;
  updateonly: boolean;
  verbose: boolean;
  /** Replacement leaves for qdisc kinds this kernel lacks. */
  substitute?: Record<string, LeafQdisc>;
  /** Where IP mappings go (absent: tc only). Called once, when there is something to apply. */
  sink?: (plan: ShapingPlan) => Promise<MappingSink | undefined>;
}

export interface ShapingRunResult {
  code: ExitCode;
  /** The plan of this run (in force after a successful apply). */
  plan?: ShapingPlan;
  report?: ApplyReport;
}

interface Compiled {
  plan: ShapingPlan;
  state: PlannerState;
  tcText: string;
  mapText: string;
}

/** Validate, plan and compile; write the debug files. An exit code when the inputs are unusable. */
function planRun(args: ShapingRunArgs): Compiled | ExitCode {
  const { config, ifaces, queues, inputs, paths, log, verbose, substitute } = args;
  const prev = parsePlannerState(readTextIfExists(paths.plannerState));
  if (prev.note) log.warn(prev.note);
  const t0 = performance.now();
  const result = runPipeline({ ...inputs, config: planConfigFromLqos(config, ifaces, queues), previousState: prev.state, compile: { substitute } });
  const planSeconds = (performance.now() - t0) / 1000;
  if (!result.ok) {
    if (result.stage === 'validate') {
      reportIssues(result.validation.issues, log, verbose);
      log.error('validation failed; nothing was applied and the shaping in force is unchanged — fix the lines above and run again');
      return EXIT.invalidInput;
    }
    reportIssues(result.errors, log, true);
    log.error('planning failed; nothing was applied and the shaping in force is unchanged');
    return EXIT.plan;
  }
  reportIssues(result.warnings, log, verbose);
  const { plan, tcLines, mappings } = result;
  log.info(
    { circuits: plan.circuits.length, nodes: plan.nodes.length, tcLines: tcLines.length, mappings: mappings.length, seconds: +planSeconds.toFixed(3) },
    `planned ${plan.circuits.length} circuits under ${plan.nodes.length} nodes on ${plan.queues} queue(s)`,
  );
  const compiled = { plan, state: result.state, tcText: tcLines.join('\n') + '\n', mapText: renderMappings(mappings) };
  writeFileAtomic(paths.linuxTc, compiled.tcText);
  writeFileAtomic(paths.mappings, compiled.mapText);
  writeFileAtomic(paths.queuingStructure, JSON.stringify(queuingStructure(plan), null, 1) + '\n');
  for (const line of tcLines) log.debug(`tc ${line}`);
  for (const line of compiled.mapText.split('\n').filter(Boolean)) log.debug(`map ${line}`);
  return compiled;
}

function dryRunSummary(args: ShapingRunArgs, applied: ShapingPlan | undefined, plan: ShapingPlan): void {
  const ops = diffPlans(applied, plan, { substitute: args.substitute });
  const would = ops.mode === 'incremental' ? 'n incremental update' : ops.mode === 'full' ? ' full rebuild' : 'nothing';
  args.log.info(
    { ...ops.summary, mode: ops.mode },
    `dry run: nothing applied (a real run would do a${would}); planned commands are in ${args.paths.linuxTc} and mappings in ${args.paths.mappings}`,
  );
}

function logApplied(log: Log, report: ApplyReport): void {
  log.info(
    { mode: report.mode, tcCommands: report.tcCommands, ...report.summary, seconds: +report.seconds.toFixed(3) },
    report.mode === 'none'
      ? 'queues and mappings already match the plan; nothing to do'
      : `applied (${report.mode}): ${report.tcCommands} tc commands, ${report.mappingsWritten} mappings written, ${report.mappingsDeleted} removed`,
  );
}

/** After a failed apply: put the last applied plan back (a full rebuild of it). */
async function restoreApplied(args: ShapingRunArgs, applied: ShapingPlan, sink: MappingSink | undefined): Promise<void> {
  const { log, paths, substitute } = args;
  try {
    await applyPlan({ applied: undefined, next: applied, compile: { substitute }, sink, log });
    writeFileAtomic(paths.appliedPlan, serializePlan(applied));
    log.warn('restored the last applied shaping; fix the problem above and run again');
  } catch (e) {
    log.error(`could not restore the last applied shaping: ${(e as Error).message}`);
  }
}

/** Records what is in force now: the plan, its ids, its text, and copies of the inputs. */
function persistApplied(args: ShapingRunArgs, c: Compiled): void {
  const { paths, inputs } = args;
  writeFileAtomic(paths.appliedPlan, serializePlan(c.plan));
  writeFileAtomic(paths.plannerState, serializePlannerState(c.state));
  writeFileAtomic(paths.lastAppliedTc, c.tcText);
  writeFileAtomic(paths.lastAppliedMappings, c.mapText);
  copyFileAtomic(inputs.devicesFile, paths.lastGoodCsv);
  copyFileAtomic(inputs.networkFile, paths.lastGoodJson);
  writeFileAtomic(paths.lastRun, new Date().toISOString() + '\n');
}

export async function runShaping(args: ShapingRunArgs): Promise<ShapingRunResult> {
  const { paths, log, dryRun, updateonly, substitute } = args;
  const compiled = planRun(args);
  if (typeof compiled === 'number') return { code: compiled };
  const { plan } = compiled;
  const applied = deserializePlan(readTextIfExists(paths.appliedPlan));
  if (updateonly && applied && diffPlans(applied, plan, { substitute }).mode === 'none') {
    log.info('no changes to the applied shaping; leaving queues as they are');
    writeFileAtomic(paths.plannerState, serializePlannerState(compiled.state));
    return { code: EXIT.ok, plan };
  }
  if (dryRun) {
    writeFileAtomic(paths.plannerState, serializePlannerState(compiled.state));
    dryRunSummary(args, applied, plan);
    return { code: EXIT.ok, plan };
  }

  const sink = args.sink ? await args.sink(plan) : undefined;
  let report: ApplyReport;
  try {
    report = await applyPlan({ applied, next: plan, compile: { substitute }, sink, log });
    logApplied(log, report);
  } catch (e) {
    if (e instanceof MemoryPreflightError) {
      // Refused before touching anything: the shaping in force stays as it is.
      log.error(e.message);
      return { code: EXIT.plan, plan };
    }
    log.error(`applying failed: ${(e as Error).message}`);
    removeIfExists(paths.appliedPlan);
    if (applied) await restoreApplied(args, applied, sink);
    return { code: EXIT.apply, plan };
  }
  persistApplied(args, compiled);
  return { code: EXIT.ok, plan, report };
}
