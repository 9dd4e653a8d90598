/**
 * The one shaping run, shared by lqosd (bus `submit_plan`, refresh) and `LibreQoS` (dry run,
 * --direct): validate + plan + compile the inputs, write the run's files, apply the difference to
 * the kernel (or only report it, in a dry run) and record what is now in force. On an apply failure
 * the last applied plan is restored. A run that would remove more than `[safety]
 * max_removed_percent` of the circuits in force is refused unless forced (./massRemoval.ts). The
 * caller owns the run lock; the kernel lock (./lock.ts) is taken through `lockKernel` around the
 * part that reads the plan in force, changes the kernel and records the result.
 */
import { existsSync, readFileSync } from 'node:fs';
import type { ShapingInterfaces } from '../config/load.ts';
import type { StatePaths } from '../config/paths.ts';
import type { LqosConfig } from '../config/schema.ts';
import { compileMappings, formatMapping, mappingTextChunks } from '../compile/mappings.ts';
import { compileTcBatch, tcBatchTextChunks } from '../compile/tc.ts';
import type { Circuit, InputIssue, LeafQdisc, ShapingPlan, ValidationResult } from '../model.ts';
import { validateInputs } from '../inputs/validate.ts';
import { planPipeline } from '../pipeline.ts';
import { capacityMeaningWarning, planConfigFromLqos } from '../plan/planConfig.ts';
import { emptyPlannerState, type PlannerState } from '../plan/plannerState.ts';
import { loadPlannerState, preparePlannerState, savePlannerState } from './plannerStateFile.ts';
import { loadAppliedPlanCompact, newestAppliedPlanBackup, prepareAppliedPlan, rememberAppliedPlan, saveAppliedPlan } from '../apply/appliedPlan.ts';
import { diffPlans, type ApplyOps } from '../apply/diff.ts';
import { applyPlan, MappingCapacityError, MemoryPreflightError, type ApplyReport, type LazyControl } from '../apply/engine.ts';
import { installedMappingCount, mappingCapacityVerdict } from '../apply/capacity.ts';
import { MAX_MAPPINGS } from '../../dataplane/abi.ts';
import type { MappingSink } from '../apply/mappingSink.ts';
import { AtomicWriteError, prepareFileAtomic, removeIfExists, writeFilesAtomic, type PreparedWrite } from '../util/atomicFile.ts';
import type { Log } from '../util/log.ts';
import { EXIT, type ExitCode } from './exitCodes.ts';
import { reportIssues, type ShapingInputs } from './inputs.ts';
import { LockHeldError, type Lock } from './lock.ts';
import { massRemovalVerdict, refusalMessage, type MassRemovalVerdict } from './massRemoval.ts';
import { clearApproval, readApproval } from './removalApproval.ts';
import { queuingStructureChunks } from './queuingStructure.ts';
import { loadLastGood, saveLastGood, type LastGood, type LastGoodMeta } from './lastGood.ts';
import type { SkippedRow } from './rowTriage.ts';
import { INVALID_CARRIED, refusalNote, triageInputs, unknownParentsAsErrors, type RunInputsState } from './runInputs.ts';
import { writeStatsFiles } from './statsFiles.ts';

export interface ShapingRunArgs {
  config: LqosConfig;
  ifaces: ShapingInterfaces;
  queues: number;
  inputs: ShapingInputs;
  paths: StatePaths;
  log: Log;
  dryRun: boolean;
  /**
   * `--updateonly`: every run applies only the difference; with this flag a run whose plan equals
   * the plan in force still reads the kernel back (classes and IP map) and repairs any drift (a full
   * rebuild of the tree, the map made to hold the plan's mappings), and says which of the two it did.
   */
  updateonly: boolean;
  verbose: boolean;
  /** Replacement leaves for qdisc kinds this kernel lacks. */
  substitute?: Record<string, LeafQdisc>;
  /** Where IP mappings go (absent: tc only). Called once, when there is something to apply. */
  sink?: (plan: ShapingPlan) => Promise<MappingSink | undefined>;
  /**
   * Inputs that do not validate at file level: `refuse` (default; the shaping in force stays) or
   * `last-good` (apply the stored last good inputs instead — lqosd at start).
   */
  onInvalid?: 'refuse' | 'last-good';
  /** These inputs are the stored last good copy (./lastGood.ts): they are not stored again. */
  fromLastGood?: LastGoodMeta;
  /** Apply even if more than `[safety] max_removed_percent` of the circuits in force go away. */
  force?: boolean;
  /**
   * Takes the kernel lock (./lock.ts) before the plan in force is read and the kernel changed;
   * absent: the caller holds it (or nothing else can touch this kernel). Not used in a dry run.
   */
  lockKernel?: () => Promise<Pick<Lock, 'release'>>;
  /** Lazy queues (lqosd: ./lazyQueues.ts); absent: every class and leaf is built. */
  lazy?: LazyControl;
  /**
   * The process ends after this run (the `LibreQoS` command): the applied plan is not kept in memory
   * for a next run to diff against (lqosd keeps it, compact: ../apply/appliedPlan.ts).
   */
  oneShot?: boolean;
  /**
   * `--planner-reset`: plan with fresh class ids and queues instead of the stored ones. The stored
   * planner_state.json is replaced only with the state of a plan that is applied (as every run's);
   * a dry run, a refused or a failed run leave it as it is.
   */
  plannerReset?: boolean;
}

export interface ShapingRunResult {
  code: ExitCode;
  /** The plan of this run (in force after a successful apply). */
  plan?: ShapingPlan;
  report?: ApplyReport;
  /** Rows skipped because of row-level errors (the rest was applied). */
  skipped?: SkippedRow[];
  /** The first errors that refused the inputs (file-level or planning errors). */
  invalid?: InputIssue[];
  /** The shaping in force comes from the last good inputs of `at` (`applied`: this run re-applied them). */
  lastGood?: { at: string; applied: boolean };
  /** The mass-removal guard's verdict when the run removes more than the limit (refused or let through). */
  massRemoval?: MassRemovalVerdict;
  /** A dry run: what a real run would have done (nothing was applied; `plan` is planned only). */
  dryRun?: DryRunPreview;
}

/** What a real run would do, as a dry run found it. */
export interface DryRunPreview {
  wouldDo: ApplyOps['mode'];
  summary: ApplyOps['summary'];
  /** Circuits in the planned plan. */
  circuits: number;
  /** Where the planned tc commands were written. */
  commandsFile: string;
}

interface Compiled {
  /** The inputs planned (after row triage): what is saved as the last good inputs. */
  inputs: ShapingInputs;
  plan: ShapingPlan;
  state: PlannerState;
  /** The validated input circuits (the stats files list every one). */
  circuits: Circuit[];
}

/** The inputs a run plans: validated, with row errors (and unknown parents) triaged away. */
interface CheckedInputs {
  inputs: ShapingInputs;
  validation: ValidationResult;
  /** Maps issues on rows restored from the last good inputs back to that file. */
  remap?: (issue: InputIssue) => InputIssue;
}

/**
 * Validate the inputs once; triage row-level errors and circuits with an unknown parent
 * (./runInputs.ts) unless these are the last good inputs. An exit code when they are refused.
 */
function checkInputs(args: ShapingRunArgs, st: RunInputsState): CheckedInputs | ExitCode {
  const { inputs, log, verbose } = args;
  const validation = validateInputs(inputs);
  if (!args.fromLastGood) {
    const rowIssues = unknownParentsAsErrors(validation.issues, inputs.devicesFile);
    if (rowIssues.some((i) => i.severity === 'error')) {
      const t = triageInputs(inputs, rowIssues, st, log);
      if (t) return t;
    }
  }
  if (validation.ok) return { inputs, validation };
  st.invalid = validation.issues.filter((i) => i.severity === 'error').slice(0, INVALID_CARRIED);
  reportIssues(validation.issues, log, verbose);
  log.error('validation failed; nothing was applied and the shaping in force is unchanged — fix the lines above and run again');
  return EXIT.invalidInput;
}

/** Validate (./checkInputs), plan and compile; write the debug files. An exit code when refused. */
function planRun(args: ShapingRunArgs, st: RunInputsState): Compiled | ExitCode {
  const { config, ifaces, queues, paths, log, verbose, substitute } = args;
  const prev = args.plannerReset ? { state: emptyPlannerState(), notes: [] } : loadPlannerState(paths.plannerState, log);
  if (args.plannerReset) {
    const kept = args.dryRun ? 'a dry run leaves it as it is' : 'it is replaced only if this run applies its plan';
    log.info({ code: 'planner-reset' }, `--planner-reset: planning with fresh class ids and queues, not those in ${paths.plannerState} (${kept})`);
  }
  for (const note of prev.notes.slice(0, 20)) log.warn(`${paths.plannerState}: ${note}`);
  if (prev.notes.length > 20) log.warn(`${paths.plannerState}: … and ${prev.notes.length - 20} more invalid entries dropped (their circuits and sites get new class ids)`);
  const t0 = performance.now();
  const checked = checkInputs(args, st);
  if (typeof checked === 'number') return checked;
  const { inputs, validation, remap = (i: InputIssue) => i } = checked;
  const planConfig = planConfigFromLqos(config, ifaces, queues);
  const result = planPipeline({ ...inputs, validation, config: planConfig, previousState: prev.state });
  if (!result.ok) {
    const errors = result.stage === 'plan' ? result.errors : result.validation.issues.filter((i) => i.severity === 'error');
    st.invalid = errors.slice(0, INVALID_CARRIED);
    reportIssues(errors, log, true);
    log.error('planning failed; nothing was applied and the shaping in force is unchanged');
    return EXIT.plan;
  }
  reportIssues(result.warnings.map(remap), log, verbose);
  const capacity = capacityMeaningWarning(planConfig.link, validation.inputs);
  if (capacity) log.warn(capacity);
  const { plan } = result;
  const mappings = compileMappings(plan);
  // The tc batch is compiled as it is written (its lines never all in memory); the file counts them.
  // The files are written as chunks, never one string, all three or none (a full disk leaves the
  // previous ones); a real run's applied copies are made from them.
  const tc = { lines: 0 };
  // For the operator to read (the applied copies of a real run are made durable on their own):
  // replaced atomically, not fsynced.
  const debugFile = { durable: false };
  writeFilesAtomic([
    { path: paths.linuxTc, data: tcBatchTextChunks(plan, { substitute }, tc), opts: debugFile },
    { path: paths.mappings, data: mappingTextChunks(mappings), opts: debugFile },
    { path: paths.queuingStructure, data: queuingStructureChunks(plan), opts: debugFile },
  ]);
  log.info(
    { circuits: plan.circuits.length, nodes: plan.nodes.length, tcLines: tc.lines, mappings: mappings.length, seconds: +((performance.now() - t0) / 1000).toFixed(3) },
    `planned ${plan.circuits.length} circuits under ${plan.nodes.length} nodes on ${plan.queues} queue(s)`,
  );
  // Every command at debug level (skipped when a logger says debug is off: 200k lines at 50k circuits).
  if (debugEnabled(log)) {
    for (const line of compileTcBatch(plan, { substitute })) log.debug(`tc ${line}`);
    for (const m of mappings) log.debug(`map ${formatMapping(m)}`);
  }
  return { inputs, plan, state: result.state, circuits: validation.inputs.circuits };
}

/** False only for a logger that says debug is off (pino); a RecordingLog keeps every record. */
function debugEnabled(log: Log): boolean {
  const l = log as { isLevelEnabled?: (level: string) => boolean };
  return typeof l.isLevelEnabled !== 'function' || l.isLevelEnabled('debug');
}

function dryRunSummary(args: ShapingRunArgs, applied: ShapingPlan | undefined, plan: ShapingPlan): DryRunPreview {
  // Nothing in force: what diffPlans says then (a full build writing every distinct prefix), without
  // building its per-prefix map and list of every mapping (150k at 50k circuits).
  const ops = applied ? diffPlans(applied, plan, { substitute: args.substitute }) : { mode: 'full' as const, summary: fullBuildSummary(plan) };
  const would = ops.mode === 'incremental' ? 'n incremental update' : ops.mode === 'full' ? ' full rebuild' : 'nothing';
  args.log.info(
    { ...ops.summary, mode: ops.mode },
    `dry run: nothing applied (a real run would do a${would}); planned commands are in ${args.paths.linuxTc} and mappings in ${args.paths.mappings}`,
  );
  return { wouldDo: ops.mode, summary: ops.summary, circuits: plan.circuits.length, commandsFile: args.paths.linuxTc };
}

/** diffPlans' summary when nothing is applied: every distinct prefix of the plan is written. */
function fullBuildSummary(plan: ShapingPlan): ApplyOps['summary'] {
  return { circuitsAdded: 0, circuitsRemoved: 0, circuitsChanged: 0, nodesChanged: 0, mappingsDeleted: 0, mappingsWritten: installedMappingCount(plan) };
}

function logApplied(log: Log, report: ApplyReport): void {
  log.info(
    { mode: report.mode, tcCommands: report.tcCommands, ...report.summary, seconds: +report.seconds.toFixed(3) },
    report.mode === 'none'
      ? 'queues and mappings already match the plan; nothing to do'
      : `applied (${report.mode}): ${report.tcCommands} tc commands, ${report.mappingsWritten} mappings written, ${report.mappingsDeleted} removed`,
  );
}

/**
 * The bytes of a file this run wrote (planRun): its applied copy is written from them instead of
 * generating the text again. A failure to read is told as a failure to write the copy.
 */
function writtenBytes(from: string, to: string): Buffer {
  try {
    return readFileSync(from);
  } catch (e) {
    throw new AtomicWriteError(to, `cannot copy ${from} to ${to}: ${(e as Error).message}; ${to} is unchanged`, e);
  }
}

/** The applied plan, planner state and applied tc/mapping texts of a run, written but not yet visible. */
function prepareRecords(args: ShapingRunArgs, c: Compiled): PreparedWrite[] {
  const { paths } = args;
  const steps = [
    () => prepareAppliedPlan(paths.appliedPlan, c.plan),
    () => preparePlannerState(paths.plannerState, c.state),
    () => prepareFileAtomic(paths.lastAppliedTc, writtenBytes(paths.linuxTc, paths.lastAppliedTc)),
    () => prepareFileAtomic(paths.lastAppliedMappings, writtenBytes(paths.mappings, paths.lastAppliedMappings)),
  ];
  const done: PreparedWrite[] = [];
  try {
    for (const step of steps) done.push(step());
  } catch (e) {
    for (const r of done) r.abort();
    throw e;
  }
  return done;
}

/** After a failed apply: put the last applied plan back (a full rebuild of it). */
async function restoreApplied(args: ShapingRunArgs, applied: ShapingPlan, sink: MappingSink | undefined): Promise<void> {
  const { log, paths, substitute } = args;
  try {
    await applyPlan({ applied: undefined, next: applied, compile: { substitute }, sink, log, lazy: args.lazy });
    saveAppliedPlan(paths.appliedPlan, applied);
    if (!args.oneShot) rememberAppliedPlan(paths.appliedPlan, applied);
    log.warn('restored the last applied shaping; fix the problem above and run again');
  } catch (e) {
    log.error(`could not restore the last applied shaping: ${(e as Error).message}`);
  }
}

/** Records what is in force now: the plan, its ids, its text, and the inputs as applied (last good). */
function persistApplied(args: ShapingRunArgs, c: Compiled, st: RunInputsState, records: PreparedWrite[]): void {
  const { paths } = args;
  for (const r of records) r.commit();
  if (!args.oneShot) rememberAppliedPlan(paths.appliedPlan, c.plan);
  // The kernel has the plan now: a failure below (disk full, ...) is told, not thrown.
  const attempt = (what: string, write: () => void) => {
    try {
      write();
    } catch (e) {
      args.log.warn(`the shaping is applied, but ${what} could not be written: ${(e as Error).message} — free space in ${paths.root} and run again`);
    }
  };
  if (!args.fromLastGood) attempt('the last good copy of the inputs', () => saveLastGood(paths, c.inputs, { skippedRows: st.skipped.length }));
  attempt('the stats files (lastRun.txt, statsByCircuit.json, statsByParentNode.json)', () => writeStatsFiles(paths, c.plan, c.circuits));
}

/**
 * One run (see the file comment). Row-level errors skip their circuits (./rowTriage.ts); file-level
 * errors refuse the inputs and, with `onInvalid: 'last-good'`, the last good inputs are applied.
 */
export async function runShaping(args: ShapingRunArgs): Promise<ShapingRunResult> {
  // The last good copy is only read when the inputs do not validate.
  let lastGood: LastGood | undefined | null = args.fromLastGood ? undefined : null;
  const st: RunInputsState = { lastGood: () => (lastGood === null ? (lastGood = loadLastGood(args.paths, args.log)) : lastGood), skipped: [] };
  const compiled = planRun(args, st);
  if (typeof compiled === 'number') return refused(args, st, compiled);
  const r = await runCompiled(args, compiled, st);
  const extra: Partial<ShapingRunResult> = st.skipped.length > 0 ? { skipped: st.skipped } : {};
  if (args.fromLastGood) extra.lastGood = { at: args.fromLastGood.at, applied: r.code === EXIT.ok && !args.dryRun };
  return { ...r, ...extra };
}

/** Inputs refused: say what is in force; at lqosd's start, apply the last good inputs instead. */
async function refused(args: ShapingRunArgs, st: RunInputsState, code: ExitCode): Promise<ShapingRunResult> {
  const { log, paths } = args;
  const lg = st.lastGood();
  const inForce = existsSync(paths.appliedPlan);
  const base: ShapingRunResult = { code, invalid: st.invalid, ...(st.skipped.length > 0 ? { skipped: st.skipped } : {}) };
  if (lg && args.onInvalid === 'last-good') {
    log.warn({ code: 'last-good-fallback', at: lg.meta.at }, `applying the last good inputs of ${lg.meta.at} instead (${lg.inputs.devicesFile}, ${lg.inputs.networkFile})`);
    const r = await runShaping({ ...args, inputs: lg.inputs, fromLastGood: lg.meta, onInvalid: 'refuse' });
    return { ...r, invalid: st.invalid };
  }
  log.warn(refusalNote(st, inForce));
  return lg && inForce ? { ...base, lastGood: { at: lg.meta.at, applied: false } } : base;
}

/**
 * The mass-removal guard (./massRemoval.ts) against the plan in force; logs a refusal (code
 * `mass-removal`) or a forced removal. Undefined when the removal is within the limit.
 */
function guardRemoval(args: ShapingRunArgs, applied: ShapingPlan | undefined, plan: ShapingPlan): MassRemovalVerdict | undefined {
  // The plan in force; while it is missing or was set aside as damaged, its newest backup (a failed
  // apply whose restore failed, a damaged file) — counting only, so the guard never switches off
  // by accident. `--clearrules` removes the backups too: then nothing is in force to guard.
  const baseline = applied ?? newestAppliedPlanBackup(args.paths.appliedPlan);
  if (!baseline) return undefined;
  const v = massRemovalVerdict(baseline.circuits, plan.circuits.map((c) => c.id), {
    maxRemovedPercent: args.config.safety.max_removed_percent,
    force: args.force,
    approved: readApproval(args.paths),
  });
  if (!v.refuse && !v.allowedBy) return undefined;
  const fields = { removed: v.removed, total: v.total, sample: v.sample.map((c) => c.id) };
  if (v.refuse) args.log.error({ code: 'mass-removal', ...fields }, `${args.dryRun ? 'dry run: a real run would be ' : ''}${refusalMessage(v)}`);
  else {
    const by = v.allowedBy === 'force' ? 'forced (--force or [safety] scheduler_allow_mass_removal)' : "confirmed by an admin in the web UI";
    args.log.warn({ code: 'mass-removal-forced', ...fields }, `removing ${v.removed} of the ${v.total} shaped circuits (${v.percent.toFixed(1)} %, over [safety] max_removed_percent = ${v.limitPercent}): ${by}`);
  }
  return v;
}

async function runCompiled(args: ShapingRunArgs, compiled: Compiled, st: RunInputsState): Promise<ShapingRunResult> {
  if (args.dryRun) return dryRunCompiled(args, compiled);
  let lock: Pick<Lock, 'release'> | undefined;
  try {
    lock = await args.lockKernel?.();
  } catch (e) {
    if (!(e instanceof LockHeldError)) throw e;
    args.log.error({ code: 'kernel-locked' }, `${e.message}; nothing was applied`);
    return { code: EXIT.locked, plan: compiled.plan };
  }
  try {
    return await applyCompiled(args, compiled, st);
  } finally {
    lock?.release();
  }
}

/**
 * The new plan against the plan in force: a finished result (a refused mass removal), or the plan
 * in force and the removal verdict to go on with.
 */
function checkAgainstApplied(
  args: ShapingRunArgs,
  compiled: Compiled,
): { done: ShapingRunResult } | { applied: ShapingPlan | undefined; guard: MassRemovalVerdict | undefined } {
  const { plan } = compiled;
  // Compact (the diff runs against it; no second full copy of a plan stays alive), and not parsed
  // again while the file is the one this process recorded.
  const applied = loadAppliedPlanCompact(args.paths.appliedPlan, args.log);
  const guard = guardRemoval(args, applied, plan);
  if (guard?.refuse) return { done: { code: EXIT.massRemoval, plan, massRemoval: guard } };
  return { applied, guard };
}

/**
 * A plan with more IP mappings than the dataplane holds (../apply/capacity.ts) is refused before the
 * dataplane is even attached; the engine checks again against the attached map's own size.
 */
function refuseOverCapacity(args: ShapingRunArgs, plan: ShapingPlan): ShapingRunResult | undefined {
  // No more mappings than slots: the distinct prefixes fit too (counting them costs ~70 ms at 50k).
  if (plan.mappings.length <= MAX_MAPPINGS) return undefined;
  const v = mappingCapacityVerdict(plan, MAX_MAPPINGS);
  if (v.ok) return undefined;
  args.log.error({ code: 'mapping-capacity', mappings: v.mappings, capacity: v.capacity }, `${args.dryRun ? 'dry run: a real run would be refused: ' : ''}${v.message}`);
  return { code: EXIT.plan, plan };
}

function dryRunCompiled(args: ShapingRunArgs, compiled: Compiled): ShapingRunResult {
  const { paths, log } = args;
  const { plan } = compiled;
  const checked = checkAgainstApplied(args, compiled);
  if ('done' in checked) return checked.done;
  const { applied, guard } = checked;
  const overCapacity = refuseOverCapacity(args, plan);
  if (overCapacity) return overCapacity;
  // A dry run previews CPU-queue moves; saving them would let previews spend the move budget
  // and hide the moves from the real run that makes them (lib/plan/rebalance.ts). A preview of
  // --planner-reset is not saved either: only an applied plan's state replaces the stored ids.
  const moves = plan.warnings.filter((w) => w.code === 'site-queue-moved').length;
  if (args.plannerReset) log.info(`dry run: planned with the fresh class ids a real run with --planner-reset would assign (in ${paths.linuxTc}); ${paths.plannerState} is left as it is`);
  else if (moves === 0) savePlannerState(paths.plannerState, compiled.state);
  else log.info(`dry run: ${moves} site move(s) above are what a real run would do; ${paths.plannerState} is left as it is so the real run makes and reports them`);
  const dryRun = dryRunSummary(args, applied, plan);
  return { code: EXIT.ok, plan, dryRun, ...(guard ? { massRemoval: guard } : {}) };
}

/**
 * --updateonly whose plan equals the plan in force: the engine read the kernel back either way; say
 * whether it matched (no tc commands run) or had drifted and was repaired.
 */
function noteUpdateonly(log: Log, report: ApplyReport): void {
  if (report.mode === 'none') log.info({ code: 'updateonly-unchanged' }, '--updateonly: nothing changed; the kernel was read back and matches the applied plan, no tc commands run');
  else log.warn({ code: 'updateonly-drift-repaired', mode: report.mode, tcCommands: report.tcCommands }, `--updateonly: nothing changed in the inputs, but the kernel had drifted from the applied plan; repaired it (${report.escalated ? `full rebuild, ${report.tcCommands} tc commands` : 'IP mappings rewritten'})`);
}

/** The real apply, under the kernel lock: the plan in force is read here, not before the lock. */
async function applyCompiled(args: ShapingRunArgs, compiled: Compiled, st: RunInputsState): Promise<ShapingRunResult> {
  const { log } = args;
  const { plan } = compiled;
  const checked = checkAgainstApplied(args, compiled);
  if ('done' in checked) return checked.done;
  const { applied, guard } = checked;
  // The records of the new plan are written before the kernel changes, so a full disk fails here
  // with nothing applied, not after the kernel took a plan the files do not describe.
  let records: PreparedWrite[];
  try {
    records = prepareRecords(args, compiled);
  } catch (e) {
    if (!(e instanceof AtomicWriteError)) throw e;
    log.error(`${e.message}; nothing was applied`);
    return { code: EXIT.write, plan };
  }
  try {
    return await applyAndRecord(args, compiled, st, { applied, guard, records });
  } finally {
    for (const r of records) r.abort(); // no-op for the committed ones
  }
}

/** The apply itself, then the records committed; on failure the last applied plan is restored. */
async function applyAndRecord(
  args: ShapingRunArgs,
  compiled: Compiled,
  st: RunInputsState,
  { applied, guard, records }: { applied: ShapingPlan | undefined; guard: MassRemovalVerdict | undefined; records: PreparedWrite[] },
): Promise<ShapingRunResult> {
  const { paths, log, substitute } = args;
  const { plan } = compiled;
  const overCapacity = refuseOverCapacity(args, plan);
  if (overCapacity) return overCapacity;
  const sink = args.sink ? await args.sink(plan) : undefined;
  const unchangedPlan = args.updateonly && applied !== undefined && diffPlans(applied, plan, { substitute }).mode === 'none';
  let report: ApplyReport;
  try {
    report = await applyPlan({ applied, next: plan, compile: { substitute }, sink, log, lazy: args.lazy });
    logApplied(log, report);
    if (unchangedPlan) noteUpdateonly(log, report);
  } catch (e) {
    if (e instanceof MemoryPreflightError || e instanceof MappingCapacityError) {
      // Refused before touching anything: the shaping in force stays as it is.
      if (e instanceof MappingCapacityError) log.error({ code: 'mapping-capacity', mappings: e.mappings, capacity: e.capacity }, e.message);
      else log.error(e.message);
      return { code: EXIT.plan, plan };
    }
    log.error(`applying failed: ${(e as Error).message}`);
    removeIfExists(paths.appliedPlan);
    if (applied) await restoreApplied(args, applied, sink);
    return { code: EXIT.apply, plan };
  }
  persistApplied(args, compiled, st, records);
  // An admin's confirmed removal is for the next apply only, whatever let this one through.
  clearApproval(paths);
  return { code: EXIT.ok, plan, report, ...(guard ? { massRemoval: guard } : {}) };
}
