/** Display helpers of the flow pages (the data is lib/api/flows.ts `FlowSnapshot`). */
import { rttScale, SCALE_PALETTE } from './heatmap.ts';

/** `[rtt_thresholds]` of lqos.conf in ms (StatusPayload.rttThresholds). */
export interface RttThresholds {
  greenMs: number;
  yellowMs: number;
  redMs: number;
}

/** Upstream's defaults (shown until lqosd's status says otherwise). */
export const DEFAULT_RTT_THRESHOLDS: RttThresholds = { greenMs: 0, yellowMs: 100, redMs: 200 };

const rgb = (hex: string) => [1, 3, 5].map((i) => parseInt(hex.slice(i, i + 2), 16));
const [GREEN, YELLOW, RED] = SCALE_PALETTE.map(rgb) as [number[], number[], number[]];
const mix = (a: number[], b: number[], f: number) => `rgb(${a.map((v, i) => Math.round(v + (b[i]! - v) * f)).join(', ')})`;

/**
 * RTT colour (ms) on the configured scale: green at or below greenMs, shading to yellow at
 * yellowMs and to red at redMs (red above); grey when unknown.
 */
export function rttColor(ms: number | null, t: RttThresholds = DEFAULT_RTT_THRESHOLDS): string {
  if (ms === null) return '#8b949e';
  const f = rttScale(ms, t);
  return f < 0.5 ? mix(GREEN, YELLOW, 2 * f) : mix(YELLOW, RED, 2 * f - 1);
}
