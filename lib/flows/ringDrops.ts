/**
 * Warning for RTT records the kernel dropped because the flow_events ring buffer was full
 * (dp_stats RING_DROP, read by the tracker each poll). Pure: feed each poll's delta, get the text
 * of a warning when one is due — at most one per `minGapMs`, summing the drops in between.
 */
export class RingDropWarning {
  private pending = 0;
  private since = 0;
  private lastWarn = Number.NEGATIVE_INFINITY;

  constructor(private readonly minGapMs = 60_000) {}

  /** One poll: `delta` records lost since the previous poll, `total` since the maps were created. */
  observe(delta: number, total: number, nowMs: number): string | null {
    if (delta > 0) {
      if (this.pending === 0) this.since = nowMs;
      this.pending += delta;
    }
    if (this.pending === 0 || nowMs - this.lastWarn < this.minGapMs) return null;
    const lost = this.pending;
    const overS = Math.max(1, Math.round((nowMs - this.since) / 1000));
    this.pending = 0;
    this.lastWarn = nowMs;
    return `RTT samples lost: ring buffer full — ${lost} RTT record(s) dropped over ${overS} s (${total} since the dataplane maps were created). `
      + 'Flow RTTs and circuit RTT percentiles come from fewer samples; if this keeps happening lqosd is not draining the ring fast '
      + 'enough (check its CPU use) or more flows send RTT samples than the ring can buffer between drains.';
  }
}
