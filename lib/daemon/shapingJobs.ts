/**
 * lqosd's shaping jobs: bus `refresh` (shape the configured input files with lqos_overrides.json
 * applied, lib/shaping/effectiveInputs.ts) and bus `submit_plan` (shape the submitted inputs as
 * given; LibreQoS and the scheduler submit the effective copies). Both run the shaping service one
 * at a time under the kernel lock (lib/shaping/lock.ts), record what is in force (applied plan,
 * last apply), and raise or resolve urgent issues (a refused mass removal: MASS_REMOVAL_REFUSED).
 * At start the kernel is first verified (and repaired) against the plan in force.
 */
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import type { ShapingStatus } from '../api/status.ts';
import type { UrgentIssueStore } from '../api/urgent.ts';
import type { ResolvedConfig } from '../config/resolve.ts';
import type { ShapingPlan } from '../model.ts';
import { compactPlan } from '../apply/compactPlan.ts';
import { BusError, type RequestOf } from '../bus/protocol.ts';
import { EXIT } from '../shaping/exitCodes.ts';
import { buildEffectiveInputs } from '../shaping/effectiveInputs.ts';
import { readInputFile, type ShapingInputs } from '../shaping/inputs.ts';
import { failedOutcome, type RepairOutcome, type ShapingOutcome, type ShapingRequest, type ShapingService } from '../shaping/service.ts';
import type { Lock } from '../shaping/lock.ts';
import { refusalMessage, sampleText } from '../shaping/massRemoval.ts';
import type { Log } from '../util/log.ts';
import { RecordingLog, recordLines, type LogRecord } from '../util/logRecords.ts';
import type { DataplaneHost } from './dataplaneHost.ts';
import type { JobRunner } from './jobs.ts';
import { noteInputsHealth } from './inputsHealth.ts';
import { loadLastGood } from '../shaping/lastGood.ts';
import { readOverridesApplied } from '../shaping/overridesApplied.ts';
import type { InputIssue } from '../model.ts';

const REFRESH_KEY = 'lqosd:refresh';
const FALLBACK_KEY = 'lqosd:qdisc-fallback';
const MASS_REMOVAL_KEY = 'lqosd:mass-removal';
const REPAIR_KEY = 'lqosd:start-repair';
/** Skipped rows a bus reply lists (the urgent issue and the log have all of them). */
const REPLY_SKIPPED = 200;

export interface ShapingJobsDeps {
  jobs: JobRunner;
  /** The shaping service; `repair` (verify the kernel at start) is optional for test doubles. */
  service: Pick<ShapingService, 'run'> & Partial<Pick<ShapingService, 'repair'>>;
  /** Takes the kernel lock for `what` (waits a bounded time); absent: no lock (tests). */
  lockKernel?: (what: string) => Promise<Pick<Lock, 'release'>>;
  host: DataplaneHost;
  config: () => ResolvedConfig;
  status: ShapingStatus;
  urgent: UrgentIssueStore;
  log: Log;
  now: () => Date;
  /** Called with the plan now in force (compact, lib/apply/compactPlan.ts) after each successful apply. */
  onApplied: (plan: ShapingPlan) => void;
  /** Called with a dry run's plan (compact): planned, not applied. */
  onPlanned?: (plan: ShapingPlan) => void;
}

export class ShapingJobs {
  /** The run at lqosd's start while it goes: bus runs wait for it rather than get `busy`. */
  private startup?: Promise<unknown>;

  constructor(private readonly d: ShapingJobsDeps) {}

  /**
   * lqosd's start: a normal run of the configured inputs (re-applies after a reboot, repairs drift);
   * when they are unusable (invalid at file level, a missing file, a bad lqos_overrides.json) the
   * last good inputs are applied instead. Not in a dry run or while degraded.
   */
  atStart(): Promise<ShapingOutcome | undefined> {
    const { status, config } = this.d;
    if (status.degraded || config().config.queues.dry_run) return Promise.resolve(undefined);
    const p = this.d.jobs.run('start-up run', () => this.runAtStart());
    this.startup = p.then(
      () => (this.startup = undefined),
      () => (this.startup = undefined),
    );
    return p;
  }

  /**
   * The plan in force against the kernel: after a crash in the middle of an apply (or a reboot) the
   * tree is rebuilt and the IP map fixed now, before the start-up run plans anything. Never throws.
   */
  private async repairAtStart(): Promise<RepairOutcome | undefined> {
    const { service, host, log } = this.d;
    if (!service.repair) return undefined;
    const rc = this.d.config();
    try {
      const r = await service.repair({ config: rc.config, interfaces: rc.interfaces, queues: host.queues, sink: host.sink, log, lockKernel: this.lockFor('start-up repair') });
      if (r.state === 'intact') log.info(`start-up: the kernel matches the plan in force (${r.circuits} circuits; checked in ${r.seconds.toFixed(1)} s)`);
      else if (r.state === 'repaired') {
        log.warn(`start-up: the kernel did not match the plan in force; repaired it in ${r.seconds.toFixed(1)} s (${r.report!.mode}, ${r.report!.tcCommands} tc commands)`);
      } else if (r.state === 'skipped') log.warn(`start-up: not verifying the kernel: ${r.message}`);
      if (r.plan) this.d.onApplied(r.plan); // compact already (repair loads it with loadAppliedPlanCompact)
      this.d.urgent.resolveKey(REPAIR_KEY);
      return r;
    } catch (e) {
      const msg = `start-up: verifying the kernel against the plan in force failed: ${(e as Error).message}`;
      log.error(msg);
      this.d.urgent.submit({ source: 'lqosd', severity: 'error', code: 'START_REPAIR_FAILED', message: `${msg}\nThe start-up run below tries again; if it also fails, run LibreQoS and check lqosd's log.`, dedupeKey: REPAIR_KEY });
      return undefined;
    }
  }

  /** The kernel lock for a job of lqosd (undefined without one). */
  private lockFor(what: string): (() => Promise<Pick<Lock, 'release'>>) | undefined {
    const take = this.d.lockKernel;
    return take ? () => take(`lqosd: ${what}`) : undefined;
  }

  private async runAtStart(): Promise<ShapingOutcome> {
    await this.repairAtStart();
    const t0 = performance.now();
    const rc = this.d.config();
    this.d.log.info('start-up: shaping the configured inputs (the last good inputs if they are unusable)');
    const prep = this.prepLog('start-up');
    const eff = buildEffectiveInputs(rc, prep);
    if (eff.ok) return withRecords(prep.records, await this.apply({ inputs: eff.inputs, onInvalid: 'last-good' }));
    const file = eff.reason === 'overrides' ? rc.inputs.overrides : rc.inputs.devices;
    const invalid: InputIssue[] = [{ severity: 'error', code: eff.reason === 'overrides' ? 'overrides-invalid' : 'missing-input', file, message: eff.message }];
    const lg = loadLastGood(rc.state, prep);
    if (!lg) {
      const outcome = { ...failedOutcome(EXIT.invalidInput, prep.records, t0), invalid };
      noteInputsHealth(outcome, this.d);
      return outcome;
    }
    prep.warn(`applying the last good inputs of ${lg.meta.at} instead (${lg.inputs.devicesFile}, ${lg.inputs.networkFile})`);
    return withRecords(prep.records, await this.apply({ inputs: lg.inputs, fromLastGood: lg.meta }, invalid));
  }

  /** Bus `refresh`: shape ShapedDevices.csv and network.json in lqos_directory (`force`: past the mass-removal guard). */
  async refresh(force?: boolean): Promise<ShapingOutcome> {
    await this.startup;
    this.refuseWhileDegraded();
    return this.d.jobs.run('refresh', async () => {
      this.d.log.info('refresh: running the LibreQoS pipeline');
      const t0 = performance.now();
      // The same effective inputs (operator files + lqos_overrides.json) as every other run path.
      const prep = this.prepLog('refresh');
      const eff = buildEffectiveInputs(this.d.config(), prep);
      const outcome = eff.ok ? withRecords(prep.records, await this.apply({ inputs: eff.inputs, ...(force ? { force } : {}) })) : failedOutcome(EXIT.invalidInput, prep.records, t0);
      if (outcome.ok) {
        this.d.urgent.resolveKey(REFRESH_KEY);
        this.d.log.info(`refresh: finished in ${Math.round(outcome.seconds * 1000)} ms`);
      } else if (outcome.massRemoval?.refuse) {
        this.d.urgent.resolveKey(REFRESH_KEY); // MASS_REMOVAL_REFUSED says it all
        this.d.log.error(`refresh: refused (exit code ${outcome.exitCode}); see the MASS_REMOVAL_REFUSED urgent issue`);
      } else if (outcome.invalid?.length) {
        // INPUTS_INVALID (./inputsHealth.ts) already names the file and line; one issue, not two.
        this.d.urgent.resolveKey(REFRESH_KEY);
        this.d.log.error(`refresh: the inputs were refused (exit code ${outcome.exitCode}); see the INPUTS_INVALID urgent issue`);
      } else {
        this.d.log.error(`refresh: failed with exit code ${outcome.exitCode}`);
        const preview = recordLines(outcome.records, 10).join('\n');
        this.d.urgent.submit({ source: 'lqosd', severity: 'error', code: 'REFRESH_FAILED', message: `shaping refresh failed with exit code ${outcome.exitCode}:\n${preview}`, dedupeKey: REFRESH_KEY });
      }
      return forReply(outcome);
    });
  }

  /** Bus `submit_plan`: shape the inputs given inline or by path. */
  async submit(r: RequestOf<'submit_plan'>): Promise<ShapingOutcome> {
    await this.startup;
    this.refuseWhileDegraded();
    // Submitters retry while busy (every 2 s): answer before reading their files, not after.
    this.d.jobs.refuseWhileBusy();
    const inputs: ShapingInputs = {
      devicesText: readInput(r.devicesCsv, r.devicesPath, 'ShapedDevices file', this.d.log),
      networkText: readInput(r.networkJson, r.networkPath, 'network file', this.d.log),
      devicesFile: r.devicesLabel ?? r.devicesPath ?? 'ShapedDevices.csv',
      networkFile: r.networkLabel ?? r.networkPath ?? 'network.json',
    };
    // plannerReset: this job alone plans from an empty planner state; planner_state.json takes its
    // ids only when its apply commits (lib/shaping/run.ts). Jobs before and after use the file.
    const req: ShapingRequest = { inputs, updateonly: r.updateonly, verbose: r.verbose, ...(r.force ? { force: true } : {}), ...(r.plannerReset ? { plannerReset: true } : {}) };
    return forReply(await this.d.jobs.run(r.plannerReset ? 'plan apply (planner reset)' : 'plan apply', () => this.apply(req)));
  }

  /** Records what a job logs before its run (kept in the outcome); warnings and errors also go to lqosd's log, tagged. */
  private prepLog(tag: string): RecordingLog {
    return new RecordingLog((r) => {
      if (r.level === 'warn' || r.level === 'error') this.d.log[r.level](`${tag}: ${r.msg}`);
    });
  }

  private refuseWhileDegraded(): void {
    const { status, config } = this.d;
    if (status.degraded && !config().config.queues.dry_run) throw new BusError('unavailable', status.degraded);
  }

  /** One run; `invalid`: why the inputs were replaced by the last good ones before the run. */
  private async apply(req: ShapingRequest, invalid?: InputIssue[]): Promise<ShapingOutcome> {
    const { host, config, log } = this.d;
    const rc = config();
    const lockKernel = this.lockFor(this.d.jobs.current()?.kind ?? 'apply');
    if (host.removedSinceAttach) await this.reattach(rc);
    const run = await this.d.service.run(req, { config: rc.config, interfaces: rc.interfaces, queues: host.queues, sink: host.sink, log, lockKernel });
    const { plan, planned } = run;
    const outcome = invalid ? { ...run.outcome, invalid } : run.outcome;
    noteInputsHealth(outcome, this.d);
    this.noteMassRemoval(outcome, req);
    if (outcome.ok) {
      this.d.status.lastApply = { at: this.d.now().toISOString(), mode: outcome.mode, commands: outcome.commands, seconds: +outcome.seconds.toFixed(3) };
      // The last good inputs already carry the overrides of their day: the status keeps what it said.
      if (!req.fromLastGood && !outcome.lastGood) this.noteOverrides(rc.state.effectiveDir);
      // Held until the next apply: the compact form (lib/apply/compactPlan.ts), not the planner's objects.
      if (plan) this.d.onApplied(compactPlan(plan));
      if (planned) this.d.onPlanned?.(compactPlan(planned));
      collectSoon();
    }
    this.noteFallbacks(outcome.leafFallbacks);
    return outcome;
  }

  /**
   * What lqos_overrides.json changed in the inputs just applied: every run path builds the effective
   * inputs right before it applies them, and removes their record when no override is in effect.
   */
  private noteOverrides(effectiveDir: string): void {
    const o = readOverridesApplied(effectiveDir, (why) => this.d.log.warn(`status: ${why}`));
    if (o) this.d.status.overrides = o;
    else delete this.d.status.overrides;
  }

  /** The dataplane was cleared under lqosd (LibreQoS --clearrules): attach it again, under the kernel lock. */
  private async reattach(rc: ResolvedConfig): Promise<void> {
    const lock = await this.lockFor('dataplane re-attach')?.();
    try {
      await this.d.host.reattachIfRemoved(rc);
    } finally {
      lock?.release();
    }
    this.refuseWhileDegraded();
  }

  /** A refused mass removal is an urgent issue (MASS_REMOVAL_REFUSED) until a run succeeds. */
  private noteMassRemoval(outcome: ShapingOutcome, req: ShapingRequest): void {
    const v = outcome.massRemoval;
    if (v?.refuse) {
      const what = req.fromLastGood ? 'the last good inputs' : `${req.inputs.devicesFile} / ${req.inputs.networkFile}`;
      this.d.urgent.submit({
        source: 'lqosd',
        severity: 'error',
        code: 'MASS_REMOVAL_REFUSED',
        message: `A shaping run of ${what} was ${refusalMessage(v)}`,
        context: { removed: v.removed, total: v.total, percent: +v.percent.toFixed(1), limitPercent: v.limitPercent, sample: v.sample, first: sampleText(v) },
        dedupeKey: MASS_REMOVAL_KEY,
      });
    } else if (outcome.ok) this.d.urgent.resolveKey(MASS_REMOVAL_KEY);
  }

  /** This kernel lacks cake/fq_codel: shown in the status and raised once as an urgent issue. */
  private noteFallbacks(fb: Record<string, string>): void {
    if (Object.keys(fb).length === 0) return;
    this.d.status.leafFallbacks = fb;
    this.d.urgent.submit({
      source: 'lqosd',
      severity: 'warning',
      code: 'QDISC_FALLBACK',
      message: `This kernel lacks ${Object.keys(fb).join(' and ')}; circuits use ${[...new Set(Object.values(fb))].join(', ')} instead (shaping works, with less fairness/AQM). Load sch_cake / sch_fq_codel to restore them.`,
      context: fb,
      dedupeKey: FALLBACK_KEY,
    });
  }
}

/** The outcome as a bus reply carries it: the skipped rows listed up to REPLY_SKIPPED (all are in the urgent issue). */
function forReply(o: ShapingOutcome): ShapingOutcome {
  if (!o.skipped || o.skipped.length <= REPLY_SKIPPED) return o;
  return { ...o, skipped: o.skipped.slice(0, REPLY_SKIPPED), skippedCount: o.skipped.length };
}

/** The outcome with the records of preparing its inputs in front of the run's own. */
function withRecords(records: LogRecord[], outcome: ShapingOutcome): ShapingOutcome {
  return { ...outcome, records: [...records, ...outcome.records] };
}

/** Inline text, or the file decoded like every input read (readInputText: BOMs, Windows-1252 with a warning). */
function readInput(text: string | undefined, path: string | undefined, what: string, log: Log): string {
  if (text !== undefined) return text;
  try {
    const r = readInputFile(path!, { log });
    if (!r) throw new Error('no such file');
    return r.text;
  } catch (e) {
    throw new BusError('failed', `cannot read ${what} ${path}: ${(e as Error).message}`);
  }
}

/** How long after an apply lqosd collects its garbage (telemetry has re-indexed the new plan by then). */
const COLLECT_AFTER_MS = 3000;
let collectTimer: NodeJS.Timeout | undefined;

/**
 * A full garbage collection shortly after an apply. An apply's transient objects (the parsed inputs,
 * the planner's objects, tc text, the kernel read-back: hundreds of MB at 100k circuits) are garbage
 * once it returns, but V8 left alone keeps the heap it grew to for a long time while lqosd's 1 s
 * telemetry keeps allocating (a 100k-circuit apply: 617 MB RSS held, 342 MB after two full GCs).
 * Collecting once, now, gives that memory back to the system. gc() is reached without a launcher
 * flag: V8's --expose-gc set at run time installs it in a new context.
 */
function collectSoon(): void {
  if (collectTimer) return;
  collectTimer = setTimeout(() => {
    collectTimer = undefined;
    try {
      setFlagsFromString('--expose-gc');
      const gc = runInNewContext('gc') as () => void;
      gc();
      // A second one once the first has swept: V8 then also hands back the pages the first freed.
      setTimeout(gc, 1000).unref();
    } catch {
      // No gc() in this runtime: V8 collects on its own schedule.
    }
  }, COLLECT_AFTER_MS);
  collectTimer.unref();
}
