/**
 * The accumulators of the history's minute in progress (./history.ts): per entity (the totals, each
 * node, each circuit) rate sums and maxima, drop/mark sums, and the TCP quality captures (RTT
 * percentiles summed for an average, retransmits and TCP packets summed). Typed arrays, reused from
 * minute to minute; they grow with the entities touched in a minute, not with the entity count.
 */

/** The TCP quality of one entity in one capture (see ./historyQuality.ts). */
export interface QualityValues {
  /** Internet-side RTT percentiles, ms (null: no RTT sample in the tracker's window). */
  rttP50: number | null;
  rttP90: number | null;
  /** TCP retransmits and TCP packets over the tracker's retransmit window, per direction. */
  retransDown: number;
  retransUp: number;
  tcpDown: number;
  tcpUp: number;
}

const FIELDS = [
  'sumDown', 'maxDown', 'sumUp', 'maxUp', 'dropsDown', 'dropsUp', 'marksDown', 'marksUp',
  'rttP50', 'rttP90', 'rttN', 'retransDown', 'retransUp', 'tcpDown', 'tcpUp',
] as const;
type Field = (typeof FIELDS)[number];

export class MinuteAcc {
  /** Values by slot: slot k belongs to entry touched[k] (the k-th touched this minute). */
  readonly v = Object.fromEntries(FIELDS.map((f) => [f, new Float64Array(0)])) as Record<Field, Float64Array>;
  touched: Int32Array;
  touchedCount = 0;
  /** Slot of each entry, -1 while untouched. */
  private slot: Int32Array;

  constructor(readonly n: number) {
    this.touched = new Int32Array(n);
    this.slot = new Int32Array(n).fill(-1);
  }

  /** The slot of entry i, given one (zeroed) on its first touch this minute. */
  private touch(i: number): number {
    let k = this.slot[i]!;
    if (k < 0) {
      k = this.touchedCount++;
      if (k >= this.v.sumDown.length) this.grow(Math.min(this.n, Math.max(64, 2 * k)));
      this.slot[i] = k;
      this.touched[k] = i;
    }
    return k;
  }

  private grow(size: number): void {
    for (const f of FIELDS) {
      const b = new Float64Array(size);
      b.set(this.v[f]);
      this.v[f] = b;
    }
  }

  rate(i: number, down: number, up: number): void {
    if (!(down > 0) && !(up > 0)) return;
    const k = this.touch(i);
    const v = this.v;
    v.sumDown[k] += down;
    v.sumUp[k] += up;
    if (down > v.maxDown[k]!) v.maxDown[k] = down;
    if (up > v.maxUp[k]!) v.maxUp[k] = up;
  }

  drops(i: number, dDown: number, dUp: number, mDown: number, mUp: number): void {
    if (!(dDown > 0) && !(dUp > 0) && !(mDown > 0) && !(mUp > 0)) return;
    const k = this.touch(i);
    const v = this.v;
    v.dropsDown[k] += dDown;
    v.dropsUp[k] += dUp;
    v.marksDown[k] += mDown;
    v.marksUp[k] += mUp;
  }

  /** One quality capture: RTT percentiles into their averages, retransmits and packets summed. */
  quality(i: number, q: QualityValues): void {
    if (q.rttP50 === null && !(q.tcpDown > 0) && !(q.tcpUp > 0)) return;
    const k = this.touch(i);
    const v = this.v;
    if (q.rttP50 !== null) {
      v.rttP50[k] += q.rttP50;
      v.rttP90[k] += q.rttP90 ?? q.rttP50;
      v.rttN[k]++;
    }
    v.retransDown[k] += q.retransDown;
    v.retransUp[k] += q.retransUp;
    v.tcpDown[k] += q.tcpDown;
    v.tcpUp[k] += q.tcpUp;
  }

  /**
   * The row values of slot k for a minute of `samples` samples, in the order of ./history.ts's
   * columns (samples, rates, drops/marks, RTT averages and their capture count, retransmits, packets).
   */
  row(k: number, samples: number): (number | null)[] {
    const v = this.v;
    const n = Math.max(1, samples);
    const rttN = v.rttN[k]!;
    return [
      samples, v.sumDown[k]! / n, v.maxDown[k]!, v.sumUp[k]! / n, v.maxUp[k]!,
      Math.round(v.dropsDown[k]!), Math.round(v.dropsUp[k]!), Math.round(v.marksDown[k]!), Math.round(v.marksUp[k]!),
      rttN ? v.rttP50[k]! / rttN : null, rttN ? v.rttP90[k]! / rttN : null, rttN,
      Math.round(v.retransDown[k]!), Math.round(v.retransUp[k]!), Math.round(v.tcpDown[k]!), Math.round(v.tcpUp[k]!),
    ];
  }

  reset(): void {
    for (let k = 0; k < this.touchedCount; k++) {
      this.slot[this.touched[k]!] = -1;
      for (const f of FIELDS) this.v[f][k] = 0;
    }
    this.touchedCount = 0;
  }
}
