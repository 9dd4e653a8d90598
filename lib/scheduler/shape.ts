/**
 * One shaping run as the scheduler does it: build the effective inputs (lib/shaping/effectiveInputs.ts,
 * the same function every run path uses) and have lqosd apply them. The scheduler talks to lqosd
 * only over the bus:
 *
 * - No overrides in effect (no file, or nothing that changes the inputs): bus `refresh` — lqosd
 *   shapes ShapedDevices.csv and network.json in `lqos_directory`.
 * - Overrides in effect: effective = source files + overrides, written to
 *   `<state_directory>/shaping/effective/{ShapedDevices.csv,network.json}` (+ `overrides_applied.json`,
 *   what was changed); the operator's files are never rewritten. Then bus `submit_plan` with
 *   `devicesPath`/`networkPath` pointing at the effective files, and the names messages give them
 *   (`devicesLabel`/`networkLabel`: the operator's files, whose line numbers they keep).
 * - A bad overrides file: nothing is applied this cycle (OverridesError, clear message).
 *
 * Both carry `force` when `[safety] scheduler_allow_mass_removal = true`: otherwise lqosd refuses a
 * run that would remove more than `[safety] max_removed_percent` of the shaped circuits (an empty
 * CRM export) and raises MASS_REMOVAL_REFUSED.
 */
import type { ResolvedConfig } from '../config/resolve.ts';
import { BusError } from '../bus/protocol.ts';
import { BusUnavailableError } from '../bus/client.ts';
import type { OverridesError } from '../overrides/load.ts';
import { BUSY_RETRY_INTERVAL_MS, BUSY_WAIT_MS, retryWhileBusy } from '../shaping/busyRetry.ts';
import { buildEffectiveInputs, submittedFiles } from '../shaping/effectiveInputs.ts';
import { EXIT } from '../shaping/exitCodes.ts';
import type { ShapingOutcome } from '../shaping/service.ts';
import type { Log } from '../util/log.ts';
import { recordLines } from '../util/logRecords.ts';
import type { StatusReporter } from './reporter.ts';

export const REFRESH_BUS_TIMEOUT_MS = 31 * 60_000;

export interface ShapeResult {
  ok: boolean;
  /** How it was applied. */
  via: 'refresh' | 'submit_plan' | 'none';
  message: string;
  /** Output worth showing (the run's log tail, overrides problems). */
  output?: string;
  /** lqosd was unreachable, busy the whole time or unavailable: nothing was tried, retry later (./retry.ts). */
  transient?: boolean;
  /** With `transient`: a short phrase for the status (`lqosd unreachable`, `lqosd busy`, …). */
  transientReason?: string;
  /** The overrides file was invalid (nothing applied). */
  overridesError?: OverridesError;
  exitCode?: number;
}

export interface ShapeOptions {
  mode: 'full' | 'incremental';
  /** How long to keep retrying while lqosd answers `busy` (another refresh running). Default 60 s. */
  busyRetryMs?: number;
  /** Pause between two tries while busy. Default 2 s. */
  busyRetryIntervalMs?: number;
  /** Progress (./progress.ts): overrides, then validate (with the effective inputs), then apply. */
  onStep?: (step: 'overrides' | 'validate' | 'apply') => void;
}

/** Runs `fn`, retrying while lqosd says busy (the same wait as LibreQoS's: lib/shaping/busyRetry.ts). */
function whileBusy<T>(fn: () => Promise<T>, opts: ShapeOptions, log: Log): Promise<T> {
  return retryWhileBusy(fn, {
    waitMs: opts.busyRetryMs ?? BUSY_WAIT_MS,
    intervalMs: opts.busyRetryIntervalMs ?? BUSY_RETRY_INTERVAL_MS,
    onBusy: (e) => log.info(`lqosd is busy (${e.message}); retrying`),
  });
}

function outcomeResult(o: ShapingOutcome, via: 'refresh' | 'submit_plan'): ShapeResult {
  if (o.ok) {
    const message =
      via === 'refresh' ? `shaping refreshed in ${o.seconds.toFixed(1)} s` : `effective inputs applied by lqosd (${o.mode}, ${o.commands} commands)`;
    return { ok: true, via, message, exitCode: 0 };
  }
  const why =
    o.exitCode === EXIT.invalidInput
      ? 'the inputs are invalid (nothing applied; the shaping in force is unchanged)'
      : o.exitCode === EXIT.massRemoval
        ? `lqosd refused it: it would remove ${o.massRemoval?.removed ?? 'too many'} of ${o.massRemoval?.total ?? 'the'} shaped circuits (nothing applied; see the MASS_REMOVAL_REFUSED urgent issue, or set [safety] scheduler_allow_mass_removal = true)`
        : `the run ended with exit code ${o.exitCode}`;
  return { ok: false, via, message: `shaping refresh failed: ${why}`, output: recordLines(o.records).join('\n'), exitCode: o.exitCode };
}

function transportFailure(e: unknown, what: string): ShapeResult {
  const transient = (transientReason: string, message: string): ShapeResult => ({ ok: false, via: 'none', transient: true, transientReason, message: `${what}: ${message}` });
  if (e instanceof BusUnavailableError) return transient(/did not answer/.test(e.message) ? 'lqosd did not answer in time' : 'lqosd unreachable', e.message);
  if (e instanceof BusError && e.code === 'busy') return transient('lqosd busy', `lqosd stayed busy: ${e.message}`);
  // lqosd cannot shape right now (e.g. degraded: no dataplane); retried with backoff (./retry.ts).
  if (e instanceof BusError && e.code === 'unavailable') return transient('lqosd unavailable', `lqosd unavailable: ${e.message}`);
  return { ok: false, via: 'none', message: `${what}: ${(e as Error).message}` };
}

export async function shapeOnce(rc: ResolvedConfig, reporter: StatusReporter, log: Log, opts: ShapeOptions): Promise<ShapeResult> {
  opts.onStep?.('overrides');
  const eff = buildEffectiveInputs(rc, log);
  if (!eff.ok) {
    if (eff.overridesError) return { ok: false, via: 'none', message: eff.message, output: eff.message, overridesError: eff.overridesError };
    return { ok: false, via: 'none', message: `${eff.message}; nothing applied`, exitCode: 1 };
  }
  const request = <T extends 'refresh' | 'submit_plan'>(type: T, payload: Parameters<typeof reporter.client.request<T>>[1]) =>
    whileBusy(() => reporter.client.request<T, ShapingOutcome>(type, payload, { timeoutMs: REFRESH_BUS_TIMEOUT_MS }), opts, log);

  opts.onStep?.('validate');
  opts.onStep?.('apply');
  const force = rc.config.safety.scheduler_allow_mass_removal ? { force: true } : {};
  if (!eff.overridden) {
    // lqosd shapes lqos_directory itself (and would apply overrides the same way).
    try {
      return outcomeResult(await request('refresh', force), 'refresh');
    } catch (e) {
      return transportFailure(e, 'refresh');
    }
  }
  try {
    return outcomeResult(await request('submit_plan', { mode: opts.mode, ...submittedFiles(eff), ...force }), 'submit_plan');
  } catch (e) {
    return transportFailure(e, 'submit_plan');
  }
}
