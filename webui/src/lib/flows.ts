/** Display helpers of the flow pages (the data is lib/api/flows.ts `FlowSnapshot`). */

/** `[rtt_thresholds]` of lqos.conf in ms (StatusPayload.rttThresholds). */
export interface RttThresholds {
  greenMs: number;
  yellowMs: number;
  redMs: number;
}

/** Upstream's defaults (shown until lqosd's status says otherwise). */
export const DEFAULT_RTT_THRESHOLDS: RttThresholds = { greenMs: 0, yellowMs: 100, redMs: 200 };

const GREEN = [0x3f, 0xb9, 0x50];
const YELLOW = [0xd2, 0x99, 0x22];
const RED = [0xf8, 0x51, 0x49];
const mix = (a: number[], b: number[], f: number) => `rgb(${a.map((v, i) => Math.round(v + (b[i]! - v) * f)).join(', ')})`;

/**
 * RTT colour (ms) on the configured scale: green at or below greenMs, shading to yellow at
 * yellowMs and to red at redMs (red above); grey when unknown.
 */
export function rttColor(ms: number | null, t: RttThresholds = DEFAULT_RTT_THRESHOLDS): string {
  if (ms === null) return '#8b949e';
  if (ms <= t.greenMs) return mix(GREEN, GREEN, 0);
  if (ms < t.yellowMs) return mix(GREEN, YELLOW, (ms - t.greenMs) / (t.yellowMs - t.greenMs));
  if (ms < t.redMs) return mix(YELLOW, RED, (ms - t.yellowMs) / (t.redMs - t.yellowMs));
  return mix(RED, RED, 0);
}
