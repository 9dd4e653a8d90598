/**
 * Recently finished flows (retired by the tracker: FIN/RST, idle, evicted) in a ring of fixed
 * capacity: each retired flow's slot is copied into typed arrays (a FlowStore used as plain
 * storage), with when and why it ended, its RTT medians and idle time; views are decoded only when
 * asked for. Oldest first; entries older than the window are dropped. The ring starts small and
 * doubles while it is full, up to `cap` entries.
 */
import { FlowStore, widen, type FinishedFlow } from './flowStore.ts';

const REASONS: FinishedFlow['reason'][] = ['fin', 'rst', 'idle', 'evicted'];

export class RecentFlows {
  readonly store: FlowStore;
  private endedAt = new Float64Array(0);
  private reason = new Uint8Array(0);
  private rttCust = new Float64Array(0);
  private rttInt = new Float64Array(0);
  private idleMs = new Float64Array(0);
  /** Ring size now (≤ cap), ring position of the oldest entry, and how many there are. */
  private size = 0;
  private head = 0;
  count = 0;

  constructor(readonly cap: number) {
    this.store = new FlowStore(cap, Math.min(cap, 256));
    this.resize(this.store.cap);
  }

  /** Ring arrays for `n` entries; the entries past the wrap (head > 0) move up behind the old end. */
  private resize(n: number): void {
    const old = this.size, wrapped = this.head > 0 ? this.head : 0;
    this.store.grow(n);
    this.endedAt = widen(this.endedAt, new Float64Array(n));
    this.reason = widen(this.reason, new Uint8Array(n));
    this.rttCust = widen(this.rttCust, new Float64Array(n));
    this.rttInt = widen(this.rttInt, new Float64Array(n));
    this.idleMs = widen(this.idleMs, new Float64Array(n));
    for (let i = 0; i < wrapped; i++) this.move(i, old + i);
    this.size = n;
  }

  private move(from: number, to: number): void {
    this.store.copyFrom(this.store, from, to);
    this.endedAt[to] = this.endedAt[from]!;
    this.reason[to] = this.reason[from]!;
    this.rttCust[to] = this.rttCust[from]!;
    this.rttInt[to] = this.rttInt[from]!;
    this.idleMs[to] = this.idleMs[from]!;
  }

  /** Retire slot `s` of `src` (when full, the ring grows up to `cap`, then the oldest entry makes room). RTTs: null = unknown. */
  push(src: FlowStore, s: number, endedAt: number, reason: FinishedFlow['reason'], rtt: { customer: number | null; internet: number | null }, idleMs: number): void {
    if (this.count === this.size) {
      if (this.size < this.cap) this.resize(Math.min(this.cap, this.size * 2));
      else this.drop(1);
    }
    const d = (this.head + this.count++) % this.size;
    this.store.copyFrom(src, s, d);
    this.endedAt[d] = endedAt;
    this.reason[d] = REASONS.indexOf(reason);
    this.rttCust[d] = rtt.customer ?? NaN;
    this.rttInt[d] = rtt.internet ?? NaN;
    this.idleMs[d] = idleMs;
  }

  private drop(n: number): void {
    this.head = (this.head + n) % this.size;
    this.count -= n;
  }

  /** Drop entries that ended before `cut` (wall ms). */
  prune(cut: number): void {
    while (this.count && this.endedAt[this.head]! < cut) this.drop(1);
  }

  /** Ring slot of the i-th entry (0 = oldest). */
  at(i: number): number {
    return (this.head + i) % this.size;
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

  /** Ring slots of the newest `n` entries (all when not given), oldest first. */
  lastSlots(n = this.count): number[] {
    const out: number[] = [];
    for (let i = Math.max(0, this.count - n); i < this.count; i++) out.push(this.at(i));
    return out;
  }

  /** Views, oldest first; the newest `n` only when given. */
  views(n = this.count): FinishedFlow[] {
    return this.lastSlots(n).map((d) => this.view(d));
  }
}
