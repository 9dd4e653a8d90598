/**
 * The `LibreQoS` command: load the config, then validate only, clear the rules, or shape — through
 * lqosd (bus `submit_plan`, the normal case), or in this process (dry runs, `--direct`). Every path
 * shapes (and `--validate` also checks) the inputs with lqos_overrides.json applied
 * (lib/shaping/effectiveInputs.ts). Returns
 * the process exit code (README: "Exit codes of LibreQoS").
 */
import { join } from 'node:path';
import { ConfigError } from '../config/load.ts';
import { loadResolvedConfig, type ResolvedConfig } from '../config/resolve.ts';
import { validateInputs } from '../inputs/validate.ts';
import type { InputIssue } from '../model.ts';
import { appliedPlanFiles } from '../apply/appliedPlan.ts';
import { clearRootQdiscs } from '../apply/kernelState.ts';
import { buildEffectiveInputs, submittedFiles } from '../shaping/effectiveInputs.ts';
import { EXIT } from '../shaping/exitCodes.ts';
import { readShapingInputs, reportIssues } from '../shaping/inputs.ts';
import { acquireLock, acquireLockWaiting, kernelLockPath, LockHeldError } from '../shaping/lock.ts';
import { sampleText } from '../shaping/massRemoval.ts';
import { hostQueueCount, missingInterfacesError } from '../shaping/queueCount.ts';
import { isRowLevel } from '../shaping/rowTriage.ts';
import { runShaping } from '../shaping/run.ts';
import { runLogFiles } from '../shaping/runLog.ts';
import type { ShapingOutcome } from '../shaping/service.ts';
import { removeIfExists } from '../util/atomicFile.ts';
import type { Log } from '../util/log.ts';
import { replayRecords } from '../util/logRecords.ts';
import { pinRoot, runDir } from '../util/paths.ts';

// Loaded only by the paths that need them, so a dry run does not load the kernel, dataplane and bus
// modules it never uses: whole-process figures in bench/dryrun.bench.ts. (Modules the shaping run
// loads anyway, such as ../apply/kernelState.ts and ../shaping/rowTriage.ts, are imported above.)
const kernelModules = () => Promise.all([import('../shaping/kernel.ts'), import('../kernel/forwarding.ts'), import('../apply/mappingSink.ts')]);
const busClient = () => import('../bus/client.ts');

export interface LibreQoSOptions {
  config?: string;
  validate?: boolean;
  updateonly?: boolean;
  clearrules?: boolean;
  plannerReset?: boolean;
  /** Force a dry run regardless of `[queues] dry_run`. */
  dryRun?: boolean;
  verbose?: boolean;
  /** Apply in this process instead of through lqosd (labs, tests, recovery). */
  direct?: boolean;
  /** Apply even if more than [safety] max_removed_percent of the shaped circuits would go. */
  force?: boolean;
  /** --debug: also say where the run's full log and debug files are. */
  debug?: boolean;
  /** How long to wait while lqosd runs another shaping job (default 60 s: lib/shaping/busyRetry.ts). */
  busyWaitMs?: number;
}

/**
 * What `--clearrules` and `--direct` use of the kernel that a test replaces (lib/cli tests:
 * test/unit/plannerReset.test.ts): the clear itself and the wait for the kernel lock.
 */
export interface LibreQoSKernelSeams {
  /** Removes the shaping from `devs` (default: tc, dataplane teardown, applied-plan files); the exit code. */
  clearKernel?: (rc: ResolvedConfig, devs: string[], log: Log) => Promise<number>;
  /** How long to wait for the kernel lock (default KERNEL_LOCK_WAIT_MS, 60 s). */
  kernelLockWaitMs?: number;
}

/** How long a real apply through lqosd may take before the command gives up waiting. */
const SUBMIT_TIMEOUT_MS = 15 * 60_000;

export function lockPath(): string {
  return join(runDir(), 'libreqos.lock');
}

/**
 * The kernel lock (lib/shaping/lock.ts) lqosd also takes for its applies: --direct and
 * --clearrules hold it while they change the kernel. Waits up to 60 s for another holder.
 */
function takeKernelLock(what: string, log: Log, seams: LibreQoSKernelSeams) {
  return acquireLockWaiting(kernelLockPath(runDir()), { what: `LibreQoS ${what}`, log, waitMs: seams.kernelLockWaitMs });
}

export async function runLibreQoS(opts: LibreQoSOptions, log: Log, seams: LibreQoSKernelSeams = {}): Promise<number> {
  let rc: ResolvedConfig;
  try {
    rc = loadResolvedConfig({ path: opts.config, requireInterfaces: true });
    for (const w of rc.warnings) log.warn(w);
  } catch (e) {
    if (e instanceof ConfigError) {
      log.error(e.message);
      return EXIT.config;
    }
    throw e;
  }
  log.info({ config: rc.path }, `configuration from ${rc.path} is usable`);
  if (opts.validate) return await validateOnly(rc, opts, log); // read-only: no lock

  let lock;
  try {
    lock = acquireLock(lockPath());
  } catch (e) {
    if (e instanceof LockHeldError) {
      log.error(e.message);
      return EXIT.locked;
    }
    throw e;
  }
  if (lock.staleReplaced !== undefined) log.warn(`replaced a stale lock left by PID ${lock.staleReplaced}`);
  try {
    return await runLocked(rc, opts, log, seams);
  } finally {
    lock.release();
  }
}

async function validateOnly(rc: ResolvedConfig, opts: LibreQoSOptions, log: Log): Promise<number> {
  const inputs = readShapingInputs(rc.inputs, log);
  if (!inputs) return EXIT.invalidInput;
  const v = validateInputs(inputs);
  reportIssues(v.issues, log, opts.verbose ?? false);
  if (!v.ok) {
    log.error(`validation failed: ${whatARunWouldDo(v.issues, inputs.devicesFile)}; nothing was applied — fix the lines above and run again`);
    return EXIT.invalidInput;
  }
  const devices = v.inputs.circuits.reduce((n, c) => n + c.devices.length, 0);
  log.info(`${inputs.devicesFile} and ${inputs.networkFile} passed validation: ${v.inputs.circuits.length} circuits, ${devices} devices`);
  // What a run would shape: the same files with lqos_overrides.json applied (built in memory only).
  const eff = buildEffectiveInputs(rc, log, { write: false, source: inputs });
  if (!eff.ok) return EXIT.invalidInput;
  if (!eff.overridden) return EXIT.ok;
  const ev = validateInputs(eff.inputs);
  reportIssues(ev.issues.filter((i) => i.severity === 'error'), log, opts.verbose ?? false);
  if (!ev.ok) {
    log.error(`the inputs with ${rc.inputs.overrides} applied fail validation (errors above): ${whatARunWouldDo(ev.issues, eff.inputs.devicesFile)} — fix the overrides or the inputs`);
    return EXIT.invalidInput;
  }
  log.info(`the inputs with ${rc.inputs.overrides} applied (${eff.changes.length} change(s)) passed validation: ${ev.inputs.circuits.length} circuits`);
  return EXIT.ok;
}

/** What a real run would do with inputs that fail validation (lib/shaping/rowTriage.ts). */
function whatARunWouldDo(issues: InputIssue[], devicesFile: string): string {
  const errors = issues.filter((i) => i.severity === 'error');
  if (errors.every((i) => isRowLevel(i, devicesFile))) {
    const rows = new Set(errors.map((i) => i.line)).size;
    return `${errors.length} error(s), all in single rows: a run would skip the circuits of those ${rows} row(s) (keeping each at its last good shaping, or leaving it out if new) and apply everything else`;
  }
  return `${errors.length} error(s); a run would refuse these inputs and keep the shaping in force`;
}

/**
 * `--planner-reset` never touches planner_state.json up front: each path resets only as part of an
 * apply that goes ahead (a dry run plans fresh ids and saves nothing; --direct and lqosd replace the
 * file with the applied plan's state; --clearrules forgets it once the shaping is removed).
 */
async function runLocked(rc: ResolvedConfig, opts: LibreQoSOptions, log: Log, seams: LibreQoSKernelSeams): Promise<number> {
  const dryRun = opts.dryRun || rc.config.queues.dry_run;
  if (opts.clearrules) return clearRules(rc, dryRun, opts.plannerReset ?? false, log, seams);
  // A real apply goes through lqosd, which owns the dataplane; --direct applies in-process.
  if (!dryRun && !opts.direct) return submitToLqosd(rc, opts, log);
  return shapeHere(rc, opts, dryRun, log, seams);
}

async function clearRules(rc: ResolvedConfig, dryRun: boolean, plannerReset: boolean, log: Log, seams: LibreQoSKernelSeams): Promise<number> {
  const ifaces = rc.interfaces!;
  const devs = [...new Set([ifaces.download, ifaces.upload])];
  if (dryRun) {
    log.info(`dry run: would remove shaping from ${devs.join(', ')}${plannerReset ? ` and forget the planner state ${rc.state.plannerState}` : ''}`);
    return EXIT.ok;
  }
  let lock;
  try {
    lock = await takeKernelLock('--clearrules', log, seams);
  } catch (e) {
    if (!(e instanceof LockHeldError)) throw e;
    log.error(`${e.message}; nothing was removed${plannerReset ? ' and the planner state is kept' : ''}`);
    return EXIT.locked;
  }
  try {
    const code = await (seams.clearKernel ?? clearKernel)(rc, devs, log);
    // Nothing is in force now: the next run builds the tree in full, with fresh ids.
    if (code === EXIT.ok && plannerReset) forgetPlannerState(rc.state.plannerState, log);
    return code;
  } finally {
    lock.release();
  }
}

function forgetPlannerState(file: string, log: Log): void {
  if (removeIfExists(file)) log.info(`removed planner state ${file}; class ids will be assigned afresh`);
  else log.info(`no planner state at ${file}`);
}

async function clearKernel(rc: ResolvedConfig, devs: string[], log: Log): Promise<number> {
  const [{ teardownDataplane }] = await kernelModules();
  const cleared = await clearRootQdiscs(devs, log);
  await teardownDataplane(pinRoot(), log);
  for (const f of [rc.state.lastAppliedTc, rc.state.lastAppliedMappings, ...appliedPlanFiles(rc.state.appliedPlan)]) removeIfExists(f);
  log.info(`removed shaping queues from ${cleared.length ? cleared.join(', ') : '(none present)'}; IP mappings and dataplane cleared`);
  return EXIT.ok;
}

/** Shapes in this process: a dry run, or `--direct` (attaches the dataplane itself). */
async function shapeHere(rc: ResolvedConfig, opts: LibreQoSOptions, dryRun: boolean, log: Log, seams: LibreQoSKernelSeams): Promise<number> {
  const ifaces = rc.interfaces!;
  // --direct attaches to the interfaces: they must exist, whatever override_available_queues says.
  const missing = dryRun ? undefined : missingInterfacesError(ifaces);
  const q = missing ? { error: missing } : hostQueueCount(rc.config, ifaces, dryRun);
  if ('error' in q) {
    log.error(q.error);
    return EXIT.config;
  }
  log.info(`using ${q.queues} queue(s) per direction (${q.reason})`);
  if (!dryRun) {
    // --direct attaches the dataplane itself: this kernel and libbpf must do (as lqosd's preflight).
    const [{ checkDataplanePlatform }, { checkForwarding }] = await kernelModules();
    const platform = await checkDataplanePlatform(rc.config);
    // ...and the forwarding mode must fit the wiring (the XDP bridge refuses bridged NICs).
    const fwd = await checkForwarding(ifaces, rc.path);
    for (const w of [...platform.warnings, ...fwd.warnings]) log.warn(w);
    if (platform.errors.length || fwd.errors.length) {
      for (const e of [...platform.errors, ...fwd.errors]) log.error(e);
      log.error('nothing was applied');
      return EXIT.apply;
    }
  }
  const eff = buildEffectiveInputs(rc, log);
  if (!eff.ok) return EXIT.invalidInput;
  const inputs = eff.inputs;
  let r: Awaited<ReturnType<typeof runShaping>>;
  try {
    r = await shapeWithDataplane(rc, opts, dryRun, log, inputs, q, seams);
  } catch (e) {
    // Only a real run attaches the dataplane (a dry run never loads it).
    if (dryRun || !(await kernelModules())[0].isAttachRefusal(e)) throw e;
    // The host or an interface is unfit (VLAN stripping, native XDP, traffic classes): say the fix.
    log.error(`${e.message}; nothing was applied`);
    return EXIT.apply;
  }
  if (r.massRemoval?.refuse) log.error(`to apply it anyway, run again with --force (it would remove ${sampleText(r.massRemoval)})`);
  if (opts.debug) log.info(`this run's tc commands are in ${rc.state.linuxTc} and its IP mappings in ${rc.state.mappings}`);
  return r.code;
}

/** runShaping with the dataplane attached (unless a dry run) right before the first kernel change. */
async function shapeWithDataplane(
  rc: ResolvedConfig,
  opts: LibreQoSOptions,
  dryRun: boolean,
  log: Log,
  inputs: Parameters<typeof runShaping>[0]['inputs'],
  q: { queues: number; cpus?: number[] },
  seams: LibreQoSKernelSeams,
) {
  const ifaces = rc.interfaces!;
  const kernel = dryRun ? undefined : await kernelModules();
  return runShaping({
    config: rc.config,
    ifaces,
    queues: q.queues,
    inputs,
    paths: rc.state,
    log,
    dryRun,
    updateonly: opts.updateonly ?? false,
    verbose: opts.verbose ?? false,
    force: opts.force ?? false,
    oneShot: true,
    plannerReset: opts.plannerReset ?? false,
    lockKernel: () => takeKernelLock('--direct', log, seams),
    substitute: kernel ? await kernel[0].leafSubstitutes(log) : undefined,
    sink: async (plan) => {
      const [{ attachForConfig }, , { dataplaneMappingSink }] = kernel ?? (await kernelModules());
      await attachForConfig({ config: rc.config, interfaces: ifaces, queues: plan.queues, cpus: q.cpus, pinRoot: pinRoot(), log });
      return dataplaneMappingSink(pinRoot());
    },
  });
}

/**
 * Hands the run to lqosd (bus `submit_plan` with the input paths) and logs its records. While lqosd
 * runs another shaping job (`busy`) the submit is retried for `busyWaitMs`, then exit 5.
 */
async function submitToLqosd(rc: ResolvedConfig, opts: LibreQoSOptions, log: Log): Promise<number> {
  const [{ BusUnavailableError, busRequest }, { BUSY_WAIT_MS }] = await Promise.all([busClient(), busyRetry()]);
  try {
    await busRequest('ping', {}, { timeoutMs: 2000 });
  } catch (e) {
    if (!(e instanceof BusUnavailableError)) throw e;
    log.error(`${e.message}${LQOSD_NEEDED}${keptNote(opts)}`);
    return EXIT.lqosdDown;
  }
  // lqosd shapes what it is given: the operator's files with lqos_overrides.json applied.
  const eff = buildEffectiveInputs(rc, log);
  if (!eff.ok) return EXIT.invalidInput;
  const waitMs = opts.busyWaitMs ?? BUSY_WAIT_MS;
  let outcome: ShapingOutcome;
  try {
    outcome = await submitWhileBusy(opts, log, submittedFiles(eff), waitMs);
  } catch (e) {
    return submitFailed(e, rc, opts, log, waitMs);
  }
  replayRecords(outcome.records, log, { via: 'lqosd' });
  if (opts.plannerReset) log.info(resetNote(outcome));
  if (outcome.massRemoval?.refuse) log.error(`to apply it anyway, run again with --force (it would remove ${sampleText(outcome.massRemoval)})`);
  const files = outcome.logFiles;
  if (files && (opts.debug || (outcome.omitted?.lines ?? 0) > 0)) {
    log.info(
      { logFile: files.log, tcFile: files.tc, mappingsFile: files.mappings },
      `lqosd keeps this run's full log in ${files.log}; the tc commands it planned are in ${files.tc} and the IP mappings in ${files.mappings}`,
    );
  }
  return outcome.exitCode;
}

const busyRetry = () => import('../shaping/busyRetry.ts');
const seconds = (ms: number) => Math.round(ms / 100) / 10;
const keptNote = (opts: LibreQoSOptions) => (opts.plannerReset ? '; the planner state is kept (--planner-reset not done)' : '');
const LQOSD_NEEDED = ' — a real apply needs lqosd; start it (systemctl start lqosd), or use --dry-run to only plan, or --direct to apply without lqosd';

/**
 * The submit to lqosd failed: says why and what to do; the exit code. Nothing was applied unless
 * lqosd had the job when its answer was lost (exit 4 saying it may still apply it).
 */
async function submitFailed(e: unknown, rc: ResolvedConfig, opts: LibreQoSOptions, log: Log, waitMs: number): Promise<number> {
  const [{ BusUnavailableError }, { isBusy }] = await Promise.all([busClient(), busyRetry()]);
  if (isBusy(e)) {
    log.error(
      `lqosd is still running another shaping job after ${seconds(waitMs)} s (${e.message}); nothing was applied${keptNote(opts)} — ` +
        `run LibreQoS again when that job has finished (journalctl -u lqosd -f shows it), or wait longer with LQOS_BUSY_WAIT_SECS=<seconds>`,
    );
    return EXIT.locked;
  }
  if (e instanceof BusUnavailableError && !reachedLqosd(e)) {
    // It answered the ping, then stopped or is restarting (e.g. while this run waited for its
    // running job): the submit never reached it, as when it is down from the start (exit 6).
    log.error(`lqosd went away before it took this run's job (stopped or restarting since it answered): ${e.message}; nothing was applied${LQOSD_NEEDED}${keptNote(opts)}`);
    return EXIT.lqosdDown;
  }
  if (e instanceof BusUnavailableError) {
    // lqosd had the job: no answer in SUBMIT_TIMEOUT_MS, or its connection closed (lqosd stopping
    // lets a running job finish). Whether it applied is for lqosd's log to say.
    const reset = opts.plannerReset ? ' and the --planner-reset with it (its planner_state.json then holds fresh class ids)' : '';
    log.error(
      `lqosd took the job but its answer was lost (${e.message}): lqosd may still apply the plan${reset}, or it stopped before it did — ` +
        `see which in ${runLogFiles(rc.state).log} (lqosd writes it when a job ends) or in journalctl -u lqosd -b before running LibreQoS again`,
    );
    return EXIT.apply;
  }
  if (opts.plannerReset && refusesPlannerReset(e)) {
    log.error(
      `lqosd does not know --planner-reset (${(e as Error).message}): it runs an older lqos-ts than this LibreQoS; ` +
        `restart it (systemctl restart lqosd) and run again; nothing was applied${keptNote(opts)}`,
    );
    return EXIT.apply;
  }
  // lqosd refused the job (a BusError: degraded, unreadable input): nothing was applied.
  log.error(`lqosd could not apply: ${(e as Error).message}${keptNote(opts)}`);
  return EXIT.apply;
}

/**
 * A bus failure after lqosd had the request: its connection closed or failed mid-request (no errno)
 * or no answer in time (ETIMEDOUT). A failed connect (ENOENT, ECONNREFUSED…) never sent it.
 */
function reachedLqosd(e: { errno?: string }): boolean {
  return e.errno === undefined || e.errno === 'ETIMEDOUT';
}

/**
 * Bus `submit_plan`, tried again while lqosd answers `busy` (saying so). With --planner-reset the
 * request carries `plannerReset`: lqosd plans that job alone from an empty planner state and saves
 * the fresh one only when the job's apply commits (lib/shaping/run.ts); planner_state.json is
 * never touched from here.
 */
async function submitWhileBusy(
  opts: LibreQoSOptions,
  log: Log,
  files: ReturnType<typeof submittedFiles>,
  waitMs: number,
): Promise<ShapingOutcome> {
  const [{ busRequest }, { retryWhileBusy }] = await Promise.all([busClient(), busyRetry()]);
  const submit = () =>
    busRequest<'submit_plan', ShapingOutcome>(
      'submit_plan',
      {
        mode: 'incremental',
        ...files,
        updateonly: opts.updateonly ?? false,
        verbose: opts.verbose ?? false,
        ...(opts.force ? { force: true } : {}),
        // Only when asked: an lqosd older than the field refuses a request that has it.
        ...(opts.plannerReset ? { plannerReset: true } : {}),
      },
      { timeoutMs: SUBMIT_TIMEOUT_MS },
    );
  let told: number | undefined;
  return retryWhileBusy(submit, {
    waitMs,
    onBusy: (e, waited) => {
      if (told === undefined) log.info(`lqosd is running another shaping job (${e.message}); waiting up to ${seconds(waitMs)} s for it to finish`);
      else if (waited - told >= 15_000) log.info(`still waiting for lqosd's running job (${seconds(waited)} s of ${seconds(waitMs)} s)`);
      else return;
      told = waited;
    },
  });
}

/** lqosd's `invalid` answer to a request field it does not know: an lqosd older than `plannerReset`. */
function refusesPlannerReset(e: unknown): boolean {
  return (e as { code?: unknown }).code === 'invalid' && /plannerReset/.test((e as Error).message);
}

/** --planner-reset through lqosd: done when lqosd applied the plan (its state is saved then), else not. */
function resetNote(outcome: ShapingOutcome): string {
  if (outcome.ok && !outcome.dryRun) return "--planner-reset: lqosd applied the plan with fresh class ids and queues; its planner_state.json now holds them";
  const why = outcome.dryRun ? 'lqosd runs as a dry run ([queues] dry_run in its configuration)' : 'lqosd did not apply the plan';
  return `--planner-reset not done: ${why}; its planner_state.json is left as it was`;
}
