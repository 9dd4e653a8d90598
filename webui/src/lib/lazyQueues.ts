/** Lazy queues in force (lqosd's shapingStatus.lazyQueues) in operator words. */
import type { LazyQueuesStatus } from '../../../lib/api/status.ts';

const n = (x: number) => x.toLocaleString('en-US');

export function lazyQueuesText(l: LazyQueuesStatus): string {
  return `${l.mode} — ${n(l.materialised)} of ${n(l.circuits)} circuits built now; ${n(l.created)} built, ${n(l.expired)} removed since lqosd started`;
}

/** What the others get and when: on the dataplane's first-packet report, or at the 1 s telemetry tick. */
export function lazyTriggerText(l: LazyQueuesStatus): string {
  const what = l.mode === 'Full' ? 'class and SQM leaf' : 'SQM leaf';
  return l.firstPacketReports
    ? `The others get their ${what} on their first packet (reported by the dataplane: ${n(l.reported)} so far).`
    : `The others get their ${what} at the 1 s telemetry tick after their traffic starts (no first-packet reports: lazy_threshold_bytes is set, or no dataplane is attached).`;
}
