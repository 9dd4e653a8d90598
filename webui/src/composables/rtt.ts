/**
 * The RTT colour thresholds of lqos.conf (`[rtt_thresholds] green_ms / yellow_ms / red_ms`), as
 * lqosd's status payload carries them; upstream's defaults until the status has loaded.
 */
import { computed } from 'vue';
import { DEFAULT_RTT_THRESHOLDS, rttColor, type RttThresholds } from '../lib/flows';
import { useLive } from '../stores/live';

export function useRttThresholds() {
  const live = useLive();
  return computed<RttThresholds>(() => live.status?.rttThresholds ?? DEFAULT_RTT_THRESHOLDS);
}

/** rttColor with the server's thresholds. */
export function useRttColor() {
  const t = useRttThresholds();
  return (ms: number | null) => rttColor(ms, t.value);
}
