/**
 * lqosd's shaping service: runs the one shaping run (./run.ts) on submitted inputs with the
 * daemon's config, queue count and IP-map sink, and returns an outcome the bus can carry: exit
 * code, what was applied, and the run's log as structured records (debug lines left out, the rest
 * capped; the full log goes to a file, ./runLog.ts). Warnings and errors are mirrored into the
 * daemon's own log. The daemon serialises calls and hands in the kernel lock.
 */
import type { ShapingInterfaces } from '../config/load.ts';
import { statePaths } from '../config/paths.ts';
import type { LqosConfig } from '../config/schema.ts';
import type { InputIssue, LeafQdisc, ShapingPlan } from '../model.ts';
import { loadAppliedPlanCompact } from '../apply/appliedPlan.ts';
import type { ApplyOps } from '../apply/diff.ts';
import { applyPlan, type ApplyReport, type LazyControl } from '../apply/engine.ts';
import type { MappingSink } from '../apply/mappingSink.ts';
import type { Log } from '../util/log.ts';
import type { LogRecord } from '../util/logRecords.ts';
import { EXIT, type ExitCode } from './exitCodes.ts';
import type { ShapingInputs } from './inputs.ts';
import type { LastGoodMeta } from './lastGood.ts';
import type { Lock } from './lock.ts';
import type { MassRemovalVerdict } from './massRemoval.ts';
import { capRecords, MAX_REPLY_RECORDS, RunLog, runLogFiles, writeRunLog, type RunLogFiles } from './runLog.ts';
import type { SkippedRow } from './rowTriage.ts';
import { hostQueueCount } from './queueCount.ts';
import { runShaping, type DryRunPreview } from './run.ts';

export interface ShapingRequest {
  inputs: ShapingInputs;
  updateonly?: boolean;
  verbose?: boolean;
  /** Inputs invalid at file level: refuse (default) or apply the last good inputs (lqosd at start). */
  onInvalid?: 'refuse' | 'last-good';
  /** `inputs` are the stored last good inputs (lib/shaping/lastGood.ts). */
  fromLastGood?: LastGoodMeta;
  /** Apply even if more than [safety] max_removed_percent of the circuits in force go away. */
  force?: boolean;
  /**
   * Plan with fresh class ids and queues (bus `submit_plan` of `LibreQoS --planner-reset`): the
   * stored planner state is replaced only if this run applies its plan (./run.ts plannerReset).
   */
  plannerReset?: boolean;
}

/** What lqosd has that a run needs: the config in force and, when attached, the dataplane. */
export interface ShapingEnvironment {
  config: LqosConfig;
  interfaces: ShapingInterfaces | null;
  /** Queues the dataplane was attached with; undefined when not attached (dry run). */
  queues?: number;
  /** The IP map; undefined in a dry run. */
  sink?: MappingSink;
  /** lqosd's log: the run's warnings and errors are mirrored there. */
  log: Log;
  /** Takes the kernel lock around the apply (lib/shaping/lock.ts); absent: none. */
  lockKernel?: () => Promise<Pick<Lock, 'release'>>;
}

/** The result of a run as the bus returns it. */
export interface ShapingOutcome {
  ok: boolean;
  exitCode: ExitCode;
  /** What was done: a rebuild, a live incremental update, or nothing. */
  mode: 'full' | 'incremental' | 'none';
  commands: number;
  seconds: number;
  summary?: ApplyOps['summary'];
  /** Planned qdisc kind → the leaf used instead on this kernel. */
  leafFallbacks: Record<string, string>;
  records: LogRecord[];
  /** Rows skipped for row-level errors (their circuits kept at the last good shaping or left out). */
  skipped?: SkippedRow[];
  /** How many rows were skipped when `skipped` lists only the first of them (bus replies). */
  skippedCount?: number;
  /** The first errors that refused the inputs. */
  invalid?: InputIssue[];
  /** The shaping in force comes from the last good inputs of `at` (`applied`: re-applied by this run). */
  lastGood?: { at: string; applied: boolean };
  /** Set when more than [safety] max_removed_percent of the circuits in force would go (refused or forced). */
  massRemoval?: MassRemovalVerdict;
  /** Where the run's full log and its debug output are (the reply's records are capped). */
  logFiles?: RunLogFiles;
  /** Lines of the run not in `records` (debug lines, and lines over the cap). */
  omitted?: { debug: number; lines: number };
  /** A dry run (`[queues] dry_run`): nothing was applied; what a real run would have done. */
  dryRun?: DryRunPreview;
}

/** What the repair at start found (ShapingService.repair). */
export interface RepairOutcome {
  /** nothing: no plan in force; intact: the kernel matched; repaired: it was rebuilt/fixed; skipped: see message. */
  state: 'nothing' | 'intact' | 'repaired' | 'skipped';
  report?: ApplyReport;
  circuits?: number;
  seconds: number;
  message?: string;
  plan?: ShapingPlan;
}

export interface ShapingServiceOptions {
  /** Fallback leaves for missing qdiscs (probed once, on the first real run). */
  substitutes?: () => Promise<Record<string, LeafQdisc>>;
  /** Lazy queues for a run with this config (lqosd's ./lazyQueues.ts manager); absent: none. */
  lazy?: (config: LqosConfig) => LazyControl;
}

export class ShapingService {
  private substitutes?: Promise<Record<string, LeafQdisc>>;

  constructor(private readonly opts: ShapingServiceOptions = {}) {}

  /**
   * One run; `plan` is the plan now in force (absent when nothing new is in force); `planned`, in a
   * dry run, the plan that a real run would have applied.
   */
  async run(req: ShapingRequest, env: ShapingEnvironment): Promise<{ outcome: ShapingOutcome; plan?: ShapingPlan; planned?: ShapingPlan }> {
    const t0 = performance.now();
    let mirrored = 0;
    const log = new RunLog((r) => {
      if (r.level !== 'warn' && r.level !== 'error') return;
      // The daemon's log gets the first warnings and errors; the run's log file has them all.
      if (++mirrored <= MAX_REPLY_RECORDS) env.log[r.level](`apply: ${r.msg}`);
      else if (mirrored === MAX_REPLY_RECORDS + 1) env.log.warn('apply: further warnings of this run are only in its log file (debug/lqosd_run.log)');
    });
    const dryRun = env.config.queues.dry_run;
    const fail = (exitCode: ExitCode, message: string) => {
      log.error(message);
      return { outcome: failedOutcome(exitCode, log.records, t0) };
    };
    if (!env.interfaces) return fail(EXIT.config, 'the configuration has neither [bridge] nor [single_interface]');
    const queues = this.queuesFor(env, env.interfaces, dryRun, log);
    if (queues === undefined) return fail(EXIT.config, 'cannot size the queues');
    const substitute = dryRun ? undefined : await this.leafSubstitutes(log);
    const paths = statePaths(env.config.state_directory);
    const r = await runShaping({
      config: env.config,
      ifaces: env.interfaces,
      queues,
      inputs: req.inputs,
      paths,
      log,
      dryRun,
      updateonly: req.updateonly ?? false,
      verbose: req.verbose ?? false,
      substitute,
      sink: env.sink ? async () => env.sink : undefined,
      onInvalid: req.onInvalid,
      fromLastGood: req.fromLastGood,
      force: req.force,
      plannerReset: req.plannerReset,
      lockKernel: dryRun ? undefined : env.lockKernel,
      lazy: dryRun ? undefined : this.opts.lazy?.(env.config),
    });
    const files = runLogFiles(paths);
    const unwritten = writeRunLog(files, log.records, new Date());
    if (unwritten) log.warn(unwritten);
    const capped = capRecords(log.records, files);
    const outcome: ShapingOutcome = {
      ok: r.code === EXIT.ok,
      exitCode: r.code,
      mode: r.report?.mode ?? 'none',
      commands: r.report?.tcCommands ?? 0,
      seconds: (performance.now() - t0) / 1000,
      summary: r.report?.summary,
      leafFallbacks: fallbackText(substitute),
      records: capped.records,
      logFiles: files,
      omitted: { debug: log.debugLines, lines: capped.omitted },
      ...(r.massRemoval ? { massRemoval: r.massRemoval } : {}),
      ...(r.skipped ? { skipped: r.skipped } : {}),
      ...(r.invalid ? { invalid: r.invalid } : {}),
      ...(r.lastGood ? { lastGood: r.lastGood } : {}),
      ...(r.dryRun ? { dryRun: r.dryRun } : {}),
    };
    if (outcome.ok && dryRun) return { outcome, planned: r.plan };
    return { outcome, plan: outcome.ok && !dryRun ? r.plan : undefined };
  }

  /**
   * Verifies the kernel against the plan in force (applied_plan.json) and repairs it — a full
   * rebuild when classes are missing or wrong (a crash in the middle of an apply, a reboot), the IP
   * map made to hold exactly the plan's mappings. Under the kernel lock. lqosd runs it at start.
   */
  async repair(env: ShapingEnvironment): Promise<RepairOutcome> {
    const t0 = performance.now();
    const paths = statePaths(env.config.state_directory);
    const lock = await env.lockKernel?.();
    try {
      // lqosd loaded it at start: the same compact plan, not a second parse and copy.
      const plan = loadAppliedPlanCompact(paths.appliedPlan, env.log);
      if (!plan) return { state: 'nothing', seconds: 0 };
      const ifs = env.interfaces;
      if (!ifs || plan.interfaces.download !== ifs.download || plan.interfaces.upload !== ifs.upload || plan.interfaces.onAStick !== ifs.onAStick) {
        return { state: 'skipped', seconds: 0, message: `the applied plan shapes ${plan.interfaces.download}/${plan.interfaces.upload}, the config names other interfaces; the next run shapes those` };
      }
      if (env.queues !== undefined && plan.queues !== env.queues) {
        return { state: 'skipped', seconds: 0, message: `the applied plan uses ${plan.queues} queue(s), the dataplane ${env.queues}; the next run rebuilds the tree` };
      }
      const substitute = await this.leafSubstitutes(env.log);
      const report = await applyPlan({ applied: plan, next: plan, compile: { substitute }, sink: env.sink, log: env.log, lazy: this.opts.lazy?.(env.config) });
      return { state: report.mode === 'none' ? 'intact' : 'repaired', report, circuits: plan.circuits.length, seconds: (performance.now() - t0) / 1000, plan };
    } finally {
      lock?.release();
    }
  }

  /** The dataplane's queue count when attached (plan and CPU redirect must agree), else the host's. */
  private queuesFor(env: ShapingEnvironment, ifaces: ShapingInterfaces, dryRun: boolean, log: Log): number | undefined {
    if (env.queues !== undefined) {
      log.info(`using ${env.queues} queue(s) per direction (as the dataplane was attached)`);
      return env.queues;
    }
    const q = hostQueueCount(env.config, ifaces, dryRun);
    if ('error' in q) {
      log.error(q.error);
      return undefined;
    }
    log.info(`using ${q.queues} queue(s) per direction (${q.reason})`);
    return q.queues;
  }

  private async leafSubstitutes(log: Log): Promise<Record<string, LeafQdisc> | undefined> {
    if (!this.opts.substitutes) return undefined;
    this.substitutes ??= this.opts.substitutes();
    const subs = await this.substitutes;
    for (const [kind, using] of Object.entries(fallbackText(subs))) {
      log.warn({ code: 'qdisc-fallback', planned: kind, using }, `${kind} is not available in this kernel; circuits planned with ${kind} use ${using}`);
    }
    return subs;
  }
}

/** A run that stopped before applying anything (`t0`: its start, from performance.now()). */
export function failedOutcome(exitCode: ExitCode, records: LogRecord[], t0: number): ShapingOutcome {
  return { ok: false, exitCode, mode: 'none', commands: 0, seconds: (performance.now() - t0) / 1000, leafFallbacks: {}, records };
}

function fallbackText(subs: Record<string, LeafQdisc> | undefined): Record<string, string> {
  return Object.fromEntries(Object.entries(subs ?? {}).map(([kind, leaf]) => [kind, [leaf.kind, ...leaf.args].join(' ')]));
}
