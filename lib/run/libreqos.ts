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
import { parsePlannerState, serializePlannerState } from '../plan/plannerState.ts';
import { clearRootQdiscs, type MappingSink } from '../apply/direct.ts';
import { applyPlan } from '../apply/engine.ts';
import { diffPlans } from '../apply/diff.ts';
import { deserializePlan, serializePlan } from '../apply/appliedPlan.ts';
import type { Logger } from '../util/log.ts';
import { acquireLock, LockHeldError } from './lock.ts';
import { planAndApply, reportIssues, type ShapingInputsText } from './shapingRun.ts';
import { hostQueueCount } from './queueCount.ts';
import { copyAtomic, readIfExists, removeIfExists, statePaths, writeAtomic } from './stateFiles.ts';

export { EXIT } from './exitCodes.ts';
import { EXIT } from './exitCodes.ts';

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

export function readInputs(config: LqosConfig, log: Logger): ShapingInputsText | null {
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

  // A real apply goes through lqosd, which owns the dataplane; --direct applies in-process.
  if (!dryRun && !opts.direct) return await applyViaLqosd(config, opts, log);

  const queues = hostQueueCount(config, ifaces, dryRun, log);
  if (queues === null) return EXIT.config;

  const inputs = readInputs(config, log);
  if (!inputs) return EXIT.invalidInput;
  const substitute = !dryRun && hooks.qdiscSubstitutes ? await hooks.qdiscSubstitutes(log) : undefined;
  const r = await planAndApply({
    config,
    ifaces,
    queues,
    inputs,
    paths,
    log,
    dryRun,
    updateonly: opts.updateonly ?? false,
    verbose: opts.verbose ?? false,
    substitute,
    sinkFor: hooks.mappingSink,
  });
  return r.code;
}

export type { IpMapping };

/**
 * Hands the run to lqosd (bus `submit_plan` with the input paths) and prints its log lines.
 * lqosd validates, plans and applies with the same code as the direct path.
 */
async function applyViaLqosd(config: LqosConfig, opts: LibreQoSOptions, log: Logger): Promise<number> {
  const { busRequest, BusUnavailableError } = await import('../bus/client.ts');
  const devicesPath = join(config.lqos_directory, 'ShapedDevices.csv');
  const networkPath = join(config.lqos_directory, 'network.json');
  let reply: { exitCode?: number; ok?: boolean; log?: string[] };
  try {
    await busRequest('ping', {}, { timeoutMs: 2000 });
  } catch (e) {
    if (!(e instanceof BusUnavailableError)) throw e;
    log.error(`${e.message} — a real apply needs lqosd; start it (systemctl start lqosd), or use --dry-run to only plan, or --direct to apply without lqosd`);
    return EXIT.lqosdDown;
  }
  try {
    reply = (await busRequest(
      'submit_plan',
      { mode: 'incremental', devicesPath, networkPath, updateonly: opts.updateonly ?? false, verbose: opts.verbose ?? false },
      { timeoutMs: 15 * 60_000 },
    )) as typeof reply;
  } catch (e) {
    log.error(`lqosd could not apply: ${(e as Error).message}`);
    return EXIT.apply;
  }
  for (const line of reply.log ?? []) {
    try {
      const j = JSON.parse(line) as { level: number; msg: string; [k: string]: unknown };
      const { level, msg, time: _t, pid: _p, hostname: _h, ...rest } = j;
      const fn = level >= 50 ? 'error' : level >= 40 ? 'warn' : level >= 30 ? 'info' : 'debug';
      log[fn]({ via: 'lqosd', ...rest }, msg);
    } catch {
      log.info(line);
    }
  }
  return reply.exitCode ?? (reply.ok ? EXIT.ok : EXIT.apply);
}
