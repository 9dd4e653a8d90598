/** Display helpers of the flow pages (the data is lib/api/flows.ts `FlowSnapshot`). */

/** RTT colour scale (ms): green → yellow → orange → red; grey when unknown. */
export function rttColor(ms: number | null): string {
  if (ms === null) return '#8b949e';
  if (ms < 30) return '#3fb950';
  if (ms < 60) return '#a3d13f';
  if (ms < 100) return '#d29922';
  if (ms < 150) return '#f0883e';
  return '#f85149';
}
