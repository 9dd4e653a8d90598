/**
 * The `LibreQoS` command's work: load config and inputs, validate, plan, compile, write the
 * run's files and apply (or only write, in a dry run). Returns the process exit code.
 */
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { ConfigError, interfacesOf, loadConfig } from '../config/load.ts';
import type { LqosConfig } from '../config/schema.ts';
import { renderMappings } from '../compile/mappings.ts';
import type { CompileOptions } from '../compile/tc.ts';
import { formatIssue, validateInputs } from '../inputs/validate.ts';
import type { InputIssue, IpMapping, ShapingPlan } from '../model.ts';
import { runPipeline } from '../pipeline.ts';
import { planConfigFromLqos, resolveQueueCount } from '../plan/planConfig.ts';
import { parsePlannerState, serializePlannerState } from '../plan/plannerState.ts';
import { clearRootQdiscs, type MappingSink } from '../apply/direct.ts';
import { applyPlan } from '../apply/engine.ts';
import { diffPlans } from '../apply/diff.ts';
import { deserializePlan, serializePlan } from '../apply/appliedPlan.ts';
import type { Logger } from '../util/log.ts';
import { acquireLock, LockHeldError } from './lock.ts';
import { cpuCount, txQueueCount } from './queueCount.ts';
import { copyAtomic, readIfExists, removeIfExists, statePaths, writeAtomic } from './stateFiles.ts';

export const EXIT = {
  ok: 0,
  invalidInput: 1,
  config: 2,
  plan: 3,
  apply: 4,
  locked: 5,
} as const;

export interface LibreQoSOptions {
  config?: string;
  validate?: boolean;
  updateonly?: boolean;
  clearrules?: boolean;
  plannerReset?: boolean;
  /** Force a dry run regardless of `[queues] dry_run`. */
  dryRun?: boolean;
  verbose?: boolean;
}

export interface LibreQoSHooks {
  /** Dataplane access for publishing mappings; absent → tc only. Loaded lazily by the CLI. */
  mappingSink?: (plan: ShapingPlan, log: Logger) => Promise<MappingSink | undefined>;
  /** Kernel capability substitutions for missing qdiscs. */
  qdiscSubstitutes?: (log: Logger) => Promise<CompileOptions['substitute']>;
  /** Full dataplane teardown for --clearrules. */
  teardown?: (devs: string[], log: Logger) => Promise<void>;
}

export function lockPath(): string {
  return join(process.env.LQOS_RUN_DIR ?? '/run/lqos', 'libreqos.lock');
}

interface Inputs {
  devicesFile: string;
  networkFile: string;
  devicesText: string;
  networkText: string;
}

function readInputs(config: LqosConfig, log: Logger): Inputs | null {
  const dir = config.lqos_directory;
  const devicesFile = join(dir, 'ShapedDevices.csv');
  const networkFile = join(dir, 'network.json');
  for (const f of [devicesFile, networkFile]) {
    if (!existsSync(f)) {
      log.error(`${f} does not exist; create it (see the examples in the project's conf/example directory) or set lqos_directory in the config`);
      return null;
    }
  }
  return { devicesFile, networkFile, devicesText: readFileSync(devicesFile, 'utf8'), networkText: readFileSync(networkFile, 'utf8') };
}

function reportIssues(issues: InputIssue[], log: Logger, verbose: boolean): void {
  const errors = issues.filter((i) => i.severity === 'error');
  const warnings = issues.filter((i) => i.severity === 'warning');
  for (const e of errors) log.error(formatIssue(e));
  const shown = verbose ? warnings : warnings.slice(0, 20);
  for (const w of shown) log.warn(formatIssue(w));
  if (shown.length < warnings.length) log.warn(`… and ${warnings.length - shown.length} more warning(s); run with --verbose to see all`);
}

export async function runLibreQoS(opts: LibreQoSOptions, log: Logger, hooks: LibreQoSHooks = {}): Promise<number> {
  let config: LqosConfig;
  let configPath: string;
  try {
    const loaded = loadConfig({ path: opts.config, requireInterfaces: true });
    config = loaded.config;
    configPath = loaded.path;
    // Relative directories are relative to the config file (handy for bundled examples and tests).
    const base = dirname(resolve(configPath));
    config = { ...config, lqos_directory: resolve(base, config.lqos_directory), state_directory: resolve(base, config.state_directory) };
    for (const w of loaded.warnings) log.warn(w);
  } catch (e) {
    if (e instanceof ConfigError) {
      log.error(e.message);
      return EXIT.config;
    }
    throw e;
  }
  log.info({ config: configPath }, `configuration from ${configPath} is usable`);
  const ifaces = interfacesOf(config);
  if (!ifaces) {
    log.error(`${configPath} has neither [bridge] nor [single_interface]; configure the shaping interfaces`);
    return EXIT.config;
  }

  // --validate: read-only, no lock.
  if (opts.validate) {
    const inputs = readInputs(config, log);
    if (!inputs) return EXIT.invalidInput;
    const v = validateInputs(inputs);
    reportIssues(v.issues, log, opts.verbose ?? false);
    const devices = v.inputs.circuits.reduce((n, c) => n + c.devices.length, 0);
    if (!v.ok) {
      log.error(`validation failed: ${v.issues.filter((i) => i.severity === 'error').length} error(s); nothing was applied — fix the lines above and run again`);
      return EXIT.invalidInput;
    }
    log.info(`${inputs.devicesFile} and ${inputs.networkFile} passed validation: ${v.inputs.circuits.length} circuits, ${devices} devices`);
    return EXIT.ok;
  }

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
    return await runLocked(config, ifaces, opts, log, hooks);
  } finally {
    lock.release();
  }
}

async function runLocked(
  config: LqosConfig,
  ifaces: { download: string; upload: string; onAStick: boolean },
  opts: LibreQoSOptions,
  log: Logger,
  hooks: LibreQoSHooks,
): Promise<number> {
  const paths = statePaths(config.state_directory);
  const dryRun = opts.dryRun || config.queues.dry_run;

  if (opts.plannerReset) {
    if (removeIfExists(paths.plannerState)) log.info(`removed planner state ${paths.plannerState}; class ids will be assigned afresh`);
    else log.info(`no planner state at ${paths.plannerState}`);
  }

  if (opts.clearrules) {
    const devs = [...new Set([ifaces.download, ifaces.upload])];
    if (dryRun) {
      log.info(`dry run: would remove shaping from ${devs.join(', ')}`);
      return EXIT.ok;
    }
    const cleared = await clearRootQdiscs(devs, log);
    if (hooks.teardown) await hooks.teardown(devs, log);
    removeIfExists(paths.lastAppliedTc);
    removeIfExists(paths.lastAppliedMappings);
    removeIfExists(paths.appliedPlan);
    log.info(`removed shaping queues from ${cleared.length ? cleared.join(', ') : '(none present)'}; IP mappings and dataplane cleared`);
    return EXIT.ok;
  }

  // Queue count.
  const override = config.queues.override_available_queues ?? 0;
  const tx = [ifaces.download, ifaces.upload].map((i) => txQueueCount(i));
  if (!dryRun && override <= 0) {
    const missing = [ifaces.download, ifaces.upload].filter((_, i) => tx[i] === undefined);
    if (missing.length) {
      log.error(`interface ${missing.join(', ')} does not exist on this host; fix [bridge]/[single_interface] in the config`);
      return EXIT.config;
    }
  }
  const known = tx.filter((t): t is number => t !== undefined);
  const { queues, reason } = resolveQueueCount({
    override,
    txQueues: known.length ? known : [cpuCount()],
    cpus: cpuCount(),
    onAStick: ifaces.onAStick,
  });
  log.info(`using ${queues} queue(s) per direction (${reason})`);

  const inputs = readInputs(config, log);
  if (!inputs) return EXIT.invalidInput;
  const substitute = !dryRun && hooks.qdiscSubstitutes ? await hooks.qdiscSubstitutes(log) : undefined;
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
      reportIssues(result.validation.issues, log, opts.verbose ?? false);
      log.error('validation failed; nothing was applied and the shaping in force is unchanged — fix the lines above and run again');
      return EXIT.invalidInput;
    }
    reportIssues(result.errors, log, true);
    log.error('planning failed; nothing was applied and the shaping in force is unchanged');
    return EXIT.plan;
  }
  reportIssues(result.warnings, log, opts.verbose ?? false);
  const { plan, tcLines, mappings } = result;
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
  if (opts.updateonly && applied && diffPlans(applied, plan, { substitute }).mode === 'none') {
    log.info('no changes to the applied shaping; leaving queues as they are');
    writeAtomic(paths.plannerState, serializePlannerState(result.state));
    return EXIT.ok;
  }

  if (dryRun) {
    writeAtomic(paths.plannerState, serializePlannerState(result.state));
    const ops = diffPlans(applied, plan, { substitute });
    log.info({ ...ops.summary, mode: ops.mode }, `dry run: nothing applied (a real run would do a${ops.mode === 'incremental' ? 'n incremental update' : ops.mode === 'full' ? ' full rebuild' : 'nothing'}); planned commands are in ${paths.linuxTc} and mappings in ${paths.mappings}`);
    return EXIT.ok;
  }

  const sink = hooks.mappingSink ? await hooks.mappingSink(plan, log) : undefined;
  try {
    const report = await applyPlan({ applied, next: plan, compile: { substitute }, sink, log });
    log.info(
      { mode: report.mode, tcCommands: report.tcCommands, ...report.summary, seconds: +report.seconds.toFixed(3) },
      report.mode === 'none'
        ? 'queues and mappings already match the plan; nothing to do'
        : `applied (${report.mode}): ${report.tcCommands} tc commands, ${report.mappingsWritten} mappings written, ${report.mappingsDeleted} removed`,
    );
  } catch (e) {
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
    return EXIT.apply;
  }
  writeAtomic(paths.appliedPlan, serializePlan(plan));
  writeAtomic(paths.plannerState, serializePlannerState(result.state));
  writeAtomic(paths.lastAppliedTc, tcText);
  writeAtomic(paths.lastAppliedMappings, mapText);
  copyAtomic(inputs.devicesFile, paths.lastGoodCsv);
  copyAtomic(inputs.networkFile, paths.lastGoodJson);
  writeAtomic(paths.lastRun, new Date().toISOString() + '\n');
  return EXIT.ok;
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

export type { IpMapping };
