/**
 * Fixed-size ring buffers for the live graphs (e.g. 300 samples at 1 Hz = the last 5 minutes).
 * Storage is allocated once; pushing never allocates.
 */

/** One numeric series. */
export class Ring {
  private readonly buf: Float64Array;
  private head = 0; // next write position
  private count = 0;

  constructor(readonly capacity: number) {
    if (!(capacity >= 1) || !Number.isInteger(capacity)) throw new Error(`ring capacity must be a positive integer, got ${capacity}`);
    this.buf = new Float64Array(capacity);
  }

  get size(): number {
    return this.count;
  }

  push(v: number): void {
    this.buf[this.head] = v;
    this.head = (this.head + 1) % this.capacity;
    if (this.count < this.capacity) this.count++;
  }

  /** i-th oldest value still held (0 = oldest). */
  at(i: number): number | undefined {
    if (i < 0 || i >= this.count) return undefined;
    return this.buf[(this.head - this.count + i + this.capacity) % this.capacity];
  }

  /** The newest value. */
  last(): number | undefined {
    return this.count ? this.buf[(this.head - 1 + this.capacity) % this.capacity] : undefined;
  }

  /** Oldest → newest (a fresh array: for payloads, not for the hot path). */
  toArray(): number[] {
    const out = new Array<number>(this.count);
    for (let i = 0; i < this.count; i++) out[i] = this.buf[(this.head - this.count + i + this.capacity) % this.capacity]!;
    return out;
  }

  clear(): void {
    this.head = 0;
    this.count = 0;
  }
}

/**
 * Several series sampled together (same timestamps): e.g. t, down, up. `push` takes the values in
 * field order.
 */
export class MultiRing<F extends string> {
  readonly series: Record<F, Ring>;
  readonly time: Ring;

  constructor(readonly capacity: number, readonly fields: readonly F[]) {
    this.time = new Ring(capacity);
    this.series = {} as Record<F, Ring>;
    for (const f of fields) this.series[f] = new Ring(capacity);
  }

  get size(): number {
    return this.time.size;
  }

  push(t: number, ...values: number[]): void {
    this.time.push(t);
    this.fields.forEach((f, i) => this.series[f].push(values[i] ?? 0));
  }

  /** `{t: [...], <field>: [...]}` oldest → newest. */
  toJSON(): { t: number[] } & Record<F, number[]> {
    const out = { t: this.time.toArray() } as { t: number[] } & Record<F, number[]>;
    for (const f of this.fields) (out as Record<string, number[]>)[f] = this.series[f].toArray();
    return out;
  }

  clear(): void {
    this.time.clear();
    for (const f of this.fields) this.series[f].clear();
  }
}
