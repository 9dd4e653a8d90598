/**
 * Rate assertions of the kernel tests: a shaped rate is judged on the wire (the Ethernet frames HTB
 * counts, lab/labEnv.ts wireRate()) against the plan, within ±3 %. The wire rate is measured within
 * about 0.1 % of plan in the lab, so ±3 % still catches a Mbit/Mibit mix-up (4.9 %) or a 5 % error.
 * A noisy run is fixed by measuring longer, never by widening the band.
 */
import assert from 'node:assert/strict';
import { spread } from '../../bench/stats.ts';

/** Allowed relative error of a wire rate (or of telemetry against iperf3) from its reference. */
export const WIRE_RATE_TOLERANCE = 0.03;

/** Relative error of `measured` against `plan` (0.01 = 1 %). */
export function rateError(measured: number, plan: number): number {
  return Math.abs(measured - plan) / plan;
}

/** True when `measured` is under `plan` by more than the tolerance (a miss a busy machine can explain; test/support/machineLoad.ts). */
export function shortOfPlan(measured: number, plan: number): boolean {
  return measured < plan && rateError(measured, plan) > WIRE_RATE_TOLERANCE;
}

/** What a rate is checked against: the plan (default) or another measurement (e.g. `iperf3`). */
export interface RateCheck {
  /** Allowed relative error (default ±3 %). */
  tol?: number;
  /** Name of the reference in messages (default `plan`). */
  ref?: string;
}

const num = (v: number) => (Number.isInteger(v) ? String(v) : v.toFixed(2));

/** One line on a rate check: `<what>: wire 9.98 Mbit/s vs plan 10 Mbit/s (-0.20 %)`. */
export function describeRate(measured: number, plan: number, what: string, ref = 'plan'): string {
  const pct = ((measured - plan) / plan) * 100;
  return `${what}: ${measured.toFixed(2)} Mbit/s vs ${ref} ${num(plan)} Mbit/s (${pct >= 0 ? '+' : ''}${pct.toFixed(2)} %)`;
}

/**
 * The failure text when `measured` is more than ±3 % from `plan`, else undefined (for tests that
 * collect every circuit's errors before asserting).
 */
export function wireRateProblem(measured: number, plan: number, what: string, opts: RateCheck = {}): string | undefined {
  const { tol = WIRE_RATE_TOLERANCE, ref = 'plan' } = opts;
  assert.ok(plan > 0, `${what}: the ${ref} rate must be > 0 (got ${plan})`);
  if (Number.isFinite(measured) && rateError(measured, plan) <= tol) return undefined;
  const hint = ref === 'plan'
    ? 'check the class rate in the kernel (tc -s class show) against the compiled plan, and the per-frame overhead in wireRate()'
    : `the two measure the same traffic over the same span: check how the counter is read and converted`;
  return `${describeRate(measured, plan, what, ref)} is outside ±${(tol * 100).toFixed(0)} %: ${hint}`;
}

/** Asserts `measured` (Mbit/s on the wire) is within ±3 % of `plan` (or of `opts.ref`). */
export function assertWireRate(measured: number, plan: number, what: string, opts: RateCheck = {}): void {
  const problem = wireRateProblem(measured, plan, what, opts);
  assert.ok(problem === undefined, problem);
}

/** Mean of a non-empty list (asserts it is non-empty; `what` names it in the message). */
export function mean(values: number[], what: string): number {
  assert.ok(values.length > 0, `no samples for ${what}`);
  return values.reduce((a, b) => a + b, 0) / values.length;
}

/** Median of a non-empty list (the benches' median: bench/stats.ts). */
export function median(values: number[]): number {
  assert.ok(values.length > 0, 'median of no values');
  return spread(values).median;
}
