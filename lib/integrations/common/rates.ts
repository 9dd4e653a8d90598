/**
 * Rate rules shared by the integrations (spec §2.1, §2.5).
 */

/**
 * Round to 2 decimals like Python's `round(x, 2)`: the exact binary value decides, exact ties go to
 * the even neighbour (`round2(2.675) = 2.67`, `round2(0.125) = 0.12`, `round2(0.375) = 0.38`).
 */
export function round2(x: number): number {
  if (!Number.isFinite(x)) return x;
  // toFixed rounds the exact binary value correctly except on exact ties, where it picks the larger
  // magnitude. An exact tie needs x*100 = n + 1/2 exactly, which only happens for multiples of 1/8.
  const y = x * 100;
  if (Number.isInteger(x * 8) && Math.abs(y - Math.trunc(y)) === 0.5) {
    const lo = Math.floor(y);
    return (lo % 2 === 0 ? lo : lo + 1) / 100;
  }
  return Number(x.toFixed(2));
}

export interface ClientRateFactors {
  /** `[uisp_integration] bandwidth_overhead_factor` (the shared Python code reads it for every CRM). */
  overheadFactor: number;
  /** `[integration_common] client_bandwidth_multiplier`. */
  clientMultiplier: number;
}

/**
 * The shared client plan rule (`apply_client_bandwidth_multiplier`): a plan rate r ≤ 0 (or missing /
 * not a number) gives 0; otherwise max(r × overhead, r × client multiplier).
 */
export function clientRate(plan: unknown, f: ClientRateFactors): number {
  const r = typeof plan === 'number' ? plan : typeof plan === 'string' && plan.trim() !== '' ? Number(plan) : 0;
  if (!Number.isFinite(r) || r <= 0) return 0;
  return Math.max(r * f.overheadFactor, r * f.clientMultiplier);
}

export interface CircuitRates {
  downloadMinMbps: number;
  uploadMinMbps: number;
  downloadMaxMbps: number;
  uploadMaxMbps: number;
}

/**
 * Final ShapedDevices rates: max = max(floor, round2(max)); min = max(floor, round2(min)), where a
 * missing min is max × commitRatio; then min is capped at max.
 */
export function finalRates(
  r: { downloadMaxMbps: number; uploadMaxMbps: number; downloadMinMbps?: number; uploadMinMbps?: number },
  opts: { floorMbps: number; commitRatio: number },
): CircuitRates {
  const fix = (x: number) => Math.max(opts.floorMbps, round2(Number.isFinite(x) ? x : 0));
  const dMax = fix(r.downloadMaxMbps);
  const uMax = fix(r.uploadMaxMbps);
  const dMin = Math.min(dMax, fix(r.downloadMinMbps ?? r.downloadMaxMbps * opts.commitRatio));
  const uMin = Math.min(uMax, fix(r.uploadMinMbps ?? r.uploadMaxMbps * opts.commitRatio));
  return { downloadMinMbps: dMin, uploadMinMbps: uMin, downloadMaxMbps: dMax, uploadMaxMbps: uMax };
}
