/**
 * One shaping run as the scheduler does it: read lqos_overrides.json, build the effective inputs, and
 * have them applied.
 *
 * - No overrides in effect (no file, or nothing that changes the inputs): bus `refresh` — lqosd runs
 *   `LibreQoS --config <its config>`, which reads `lqos_directory` directly.
 * - Overrides in effect: effective = source files in `lqos_directory` + overrides, written to
 *   `<state_directory>/shaping/effective/{ShapedDevices.csv,network.json}` (+ `overrides_applied.json`,
 *   what was changed). The operator's files are never rewritten. Then bus `submit_plan` with
 *   `devicesPath`/`networkPath` pointing at the effective files (bin/lqosd.ts has the apply service, so
 *   this is the normal path). If lqosd answers `not_implemented` (a daemon without an apply engine),
 *   the scheduler runs `<repo>/LibreQoS --config
 *   <effective>/lqos.conf` itself: a copy of lqos.conf whose `lqos_directory` is the effective directory
 *   (`state_directory` unchanged, so planner state and lastGood files are the usual ones). That run
 *   takes the same LibreQoS lock as every other run.
 * - A bad overrides file: nothing is applied this cycle (OverridesError, clear message).
 */
import { existsSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { parse as parseToml, stringify as stringifyToml } from 'smol-toml';
import { BusError } from '../bus/protocol.ts';
import { BusUnavailableError } from '../bus/client.ts';
import { REPO_ROOT, runRefresh, type RefreshResult } from '../daemon/refresh.ts';
import { applyOverrides } from '../overrides/apply.ts';
import { loadOverrides, OverridesError } from '../overrides/load.ts';
import { hasEffect } from '../overrides/schema.ts';
import { writeAtomic } from '../run/stateFiles.ts';
import type { Logger } from '../util/log.ts';
import type { SchedulerConfig } from './config.ts';
import type { StatusReporter } from './reporter.ts';

export const REFRESH_BUS_TIMEOUT_MS = 31 * 60_000;

export function effectiveDir(stateDirectory: string): string {
  return join(stateDirectory, 'shaping', 'effective');
}

export interface ShapeResult {
  ok: boolean;
  /** How it was applied. */
  via: 'refresh' | 'submit_plan' | 'direct' | 'none';
  message: string;
  /** Output worth showing (LibreQoS log tail, overrides problems). */
  output?: string;
  /** lqosd was unreachable or busy the whole time: nothing was tried, retry later. */
  transient?: boolean;
  /** The overrides file was invalid (nothing applied). */
  overridesError?: OverridesError;
  exitCode?: number;
}

export interface ShapeOptions {
  mode: 'full' | 'incremental';
  /** How long to keep retrying while lqosd answers `busy` (another refresh running). Default 60 s. */
  busyRetryMs?: number;
  busyRetryIntervalMs?: number;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Runs `fn`, retrying while lqosd says busy. */
async function whileBusy<T>(fn: () => Promise<T>, opts: ShapeOptions, log: Logger): Promise<T> {
  const until = Date.now() + (opts.busyRetryMs ?? 60_000);
  for (;;) {
    try {
      return await fn();
    } catch (e) {
      if (e instanceof BusError && e.code === 'busy' && Date.now() < until) {
        log.info(`lqosd is busy (${e.message}); retrying`);
        await sleep(opts.busyRetryIntervalMs ?? 2000);
        continue;
      }
      throw e;
    }
  }
}

function refreshOutcome(r: RefreshResult, via: ShapeResult['via']): ShapeResult {
  const output = r.lines.join('\n');
  if (r.ok) return { ok: true, via, message: `shaping refreshed in ${(r.durationMs / 1000).toFixed(1)} s`, exitCode: 0 };
  const why = r.exitCode === 1 ? 'the inputs are invalid (nothing applied; the shaping in force is unchanged)' : `LibreQoS exited with ${r.exitCode}`;
  return { ok: false, via, message: `shaping refresh failed: ${why}`, output, exitCode: r.exitCode };
}

/** The apply service's JSON log lines as `LEVEL message` text (last 40). */
function logLines(log: unknown): string[] {
  if (!Array.isArray(log)) return [];
  return log.slice(-40).map((l) => {
    try {
      const j = JSON.parse(String(l)) as { level?: number; msg?: string };
      const level = (j.level ?? 30) >= 50 ? 'ERROR' : (j.level ?? 30) >= 40 ? 'WARN' : 'INFO';
      return `${level} ${j.msg ?? ''}`;
    } catch {
      return String(l);
    }
  });
}

function transportFailure(e: unknown, what: string): ShapeResult {
  if (e instanceof BusUnavailableError) return { ok: false, via: 'none', transient: true, message: `${what}: ${e.message}` };
  if (e instanceof BusError && e.code === 'busy') return { ok: false, via: 'none', transient: true, message: `${what}: lqosd stayed busy: ${e.message}` };
  return { ok: false, via: 'none', message: `${what}: ${(e as Error).message}` };
}

/** The effective lqos.conf: the real one with lqos_directory pointing at the effective inputs. */
export function effectiveConfigText(sc: SchedulerConfig, dir: string): string {
  const raw = parseToml(sc.text) as Record<string, unknown>;
  raw.lqos_directory = dir;
  raw.state_directory = sc.config.state_directory;
  return `# Generated by the lqos-ts scheduler from ${sc.path} (lqos_overrides.json applied). Do not edit.\n${stringifyToml(raw)}\n`;
}

export async function shapeOnce(sc: SchedulerConfig, reporter: StatusReporter, log: Logger, opts: ShapeOptions): Promise<ShapeResult> {
  const { config } = sc;
  const dir = config.lqos_directory;
  const eff = effectiveDir(config.state_directory);

  let loaded;
  try {
    loaded = loadOverrides(dir);
  } catch (e) {
    if (e instanceof OverridesError) {
      return { ok: false, via: 'none', message: e.message, output: e.message, overridesError: e };
    }
    throw e;
  }

  if (!loaded.present || !hasEffect(loaded.overrides)) {
    // Stale effective files would only confuse: what is shaped now comes from lqos_directory.
    if (existsSync(eff)) rmSync(eff, { recursive: true, force: true });
    try {
      const r = await whileBusy(() => reporter.client.request<'refresh', RefreshResult>('refresh', {}, { timeoutMs: REFRESH_BUS_TIMEOUT_MS }), opts, log);
      return refreshOutcome(r, 'refresh');
    } catch (e) {
      return transportFailure(e, 'refresh');
    }
  }

  // Overrides in effect: build the effective inputs.
  const devicesFile = join(dir, 'ShapedDevices.csv');
  const networkFile = join(dir, 'network.json');
  for (const f of [devicesFile, networkFile]) {
    if (!existsSync(f)) return { ok: false, via: 'none', message: `${f} does not exist; nothing applied`, exitCode: 1 };
  }
  const source = { devicesText: readFileSync(devicesFile, 'utf8'), networkText: readFileSync(networkFile, 'utf8') };
  const e = applyOverrides(source, loaded.overrides, { devices: devicesFile, network: networkFile });
  for (const c of e.changes) log.info(`override: ${c}`);
  for (const w of e.warnings) log.warn(`override: ${w}`);
  const effDevices = join(eff, 'ShapedDevices.csv');
  const effNetwork = join(eff, 'network.json');
  writeAtomic(effDevices, e.devicesText);
  writeAtomic(effNetwork, e.networkText);
  writeAtomic(
    join(eff, 'overrides_applied.json'),
    JSON.stringify({ at: new Date().toISOString(), overrides: loaded.file, sources: { devices: devicesFile, network: networkFile }, changes: e.changes, warnings: e.warnings }, null, 2) + '\n',
  );
  log.info(`effective inputs (${e.changes.length} override change(s)) written to ${eff}`);

  try {
    const report = await whileBusy(
      () => reporter.client.request<'submit_plan', { ok: boolean; mode?: string; commands?: number; seconds?: number; [k: string]: unknown }>(
        'submit_plan',
        { mode: opts.mode, devicesPath: effDevices, networkPath: effNetwork },
        { timeoutMs: REFRESH_BUS_TIMEOUT_MS },
      ),
      opts,
      log,
    );
    if (report.ok) return { ok: true, via: 'submit_plan', message: `effective inputs applied by lqosd (${report.mode ?? '?'}, ${report.commands ?? 0} commands)`, exitCode: 0 };
    const exitCode = typeof report.exitCode === 'number' ? report.exitCode : 1;
    return refreshOutcome({ exitCode, ok: false, durationMs: Math.round((report.seconds ?? 0) * 1000), lines: logLines(report.log) }, 'submit_plan');
  } catch (err) {
    if (!(err instanceof BusError && err.code === 'not_implemented')) return transportFailure(err, 'submit_plan');
  }

  // This lqosd build cannot take a plan: run LibreQoS on the effective inputs ourselves.
  const effConf = join(eff, 'lqos.conf');
  writeAtomic(effConf, effectiveConfigText(sc, eff));
  log.info(`lqosd has no apply engine (submit_plan not implemented): running LibreQoS --config ${effConf}`);
  const r = await runRefresh({ file: join(REPO_ROOT, 'LibreQoS'), args: ['--config', effConf] });
  return refreshOutcome(r, 'direct');
}
