/**
 * Recently finished flows (retired by the tracker: FIN/RST, idle, evicted) in a ring of fixed
 * capacity: each retired flow's slot is copied into typed arrays (a FlowStore used as plain
 * storage), with when and why it ended, its RTT medians and idle time; views are decoded only when
 * asked for. Oldest first; entries older than the window are dropped.
 */
import { FlowStore, type FinishedFlow } from './flowStore.ts';

const REASONS: FinishedFlow['reason'][] = ['fin', 'rst', 'idle', 'evicted'];

export class RecentFlows {
  readonly store: FlowStore;
  private readonly endedAt: Float64Array;
  private readonly reason: Uint8Array;
  private readonly rttCust: Float64Array;
  private readonly rttInt: Float64Array;
  private readonly idleMs: Float64Array;
  /** Ring position of the oldest entry, and how many there are. */
  private head = 0;
  count = 0;

  constructor(readonly cap: number) {
    this.store = new FlowStore(cap);
    this.endedAt = new Float64Array(cap);
    this.reason = new Uint8Array(cap);
    this.rttCust = new Float64Array(cap);
    this.rttInt = new Float64Array(cap);
    this.idleMs = new Float64Array(cap);
  }

  /** Retire slot `s` of `src` (the oldest entry makes room when full). RTTs: null = unknown. */
  push(src: FlowStore, s: number, endedAt: number, reason: FinishedFlow['reason'], rtt: { customer: number | null; internet: number | null }, idleMs: number): void {
    if (this.count === this.cap) this.drop(1);
    const d = (this.head + this.count++) % this.cap;
    this.store.copyFrom(src, s, d);
    this.endedAt[d] = endedAt;
    this.reason[d] = REASONS.indexOf(reason);
    this.rttCust[d] = rtt.customer ?? NaN;
    this.rttInt[d] = rtt.internet ?? NaN;
    this.idleMs[d] = idleMs;
  }

  private drop(n: number): void {
    this.head = (this.head + n) % this.cap;
    this.count -= n;
  }

  /** Drop entries that ended before `cut` (wall ms). */
  prune(cut: number): void {
    while (this.count && this.endedAt[this.head]! < cut) this.drop(1);
  }

  /** Ring slot of the i-th entry (0 = oldest). */
  at(i: number): number {
    return (this.head + i) % this.cap;
  }

  rttOf(d: number): { customer: number | null; internet: number | null } {
    const c = this.rttCust[d]!, i = this.rttInt[d]!;
    return { customer: Number.isNaN(c) ? null : c, internet: Number.isNaN(i) ? null : i };
  }

  view(d: number): FinishedFlow {
    const e = this.store.entry(d);
    return Object.assign(e, {
      rttMs: this.rttOf(d), durationMs: Number(e.lastSeenNs - e.startNs) / 1e6, idleMs: this.idleMs[d]!,
      endedAt: this.endedAt[d]!, reason: REASONS[this.reason[d]!]!,
    });
  }

  /** Views, oldest first; the newest `n` only when given. */
  views(n = this.count): FinishedFlow[] {
    const out: FinishedFlow[] = [];
    for (let i = Math.max(0, this.count - n); i < this.count; i++) out.push(this.view(this.at(i)));
    return out;
  }
}
