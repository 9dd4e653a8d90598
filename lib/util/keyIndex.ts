/**
 * Read-only key → index lookups in typed arrays, for the per-plan indexes that grow with circuits
 * (telemetry's plan index, lazy queues). A Map of 100k entries costs ~3.7 MB of heap (7.3 MB at 200k); these cost 12 bytes
 * an entry (SortedIndex) or 8 (StringIndex, whose keys are strings the caller already holds).
 * Both answer like Map#get. Pure.
 */

/** Keys sorted in a typed array, values beside them; binary search. Built by IndexBuilder. */
export class SortedIndex<K extends number | bigint> {
  private readonly keys: ArrayLike<K>;

  /** `keys`: sorted, unique (Float64Array for number keys, BigUint64Array for bigint keys). */
  constructor(
    keys: Float64Array | BigUint64Array,
    private readonly vals: Int32Array,
  ) {
    this.keys = keys as unknown as ArrayLike<K>;
  }

  get size(): number {
    return this.vals.length;
  }

  get(key: K): number | undefined {
    const keys = this.keys;
    let lo = 0;
    let hi = this.vals.length - 1;
    while (lo <= hi) {
      const mid = (lo + hi) >>> 1;
      const k = keys[mid]!;
      if (k < key) lo = mid + 1;
      else if (k > key) hi = mid - 1;
      else return this.vals[mid];
    }
    return undefined;
  }
}

/**
 * Collects (key, value) pairs, then builds a SortedIndex. Like successive Map#set (`last`: the last
 * value of a key wins) or set-if-absent (`first`). Number keys: any double (handles, IPv4 keys);
 * bigint keys: 0 … 2^64-1.
 */
export class IndexBuilder<K extends number | bigint> {
  private readonly keys: K[] = [];
  private readonly vals: number[] = [];

  constructor(private readonly wins: 'first' | 'last') {}

  add(key: K, value: number): void {
    this.keys.push(key);
    this.vals.push(value);
  }

  build(): SortedIndex<K> {
    const { keys, vals } = this;
    // Stable order by key, then by insertion: the first or last of each run of equal keys wins.
    const order = new Int32Array(keys.length).map((_, i) => i);
    order.sort((a, b) => (keys[a]! < keys[b]! ? -1 : keys[a]! > keys[b]! ? 1 : a - b));
    const outKeys: K[] = [];
    const outVals: number[] = [];
    for (let j = 0; j < order.length; j++) {
      const i = order[j]!;
      const k = keys[i]!;
      if (outKeys.length > 0 && outKeys[outKeys.length - 1] === k) {
        if (this.wins === 'last') outVals[outVals.length - 1] = vals[i]!;
        continue;
      }
      outKeys.push(k);
      outVals.push(vals[i]!);
    }
    const bigKeys = typeof keys[0] === 'bigint';
    const typedKeys = bigKeys ? BigUint64Array.from(outKeys as bigint[]) : Float64Array.from(outKeys as number[]);
    return new SortedIndex<K>(typedKeys, Int32Array.from(outVals));
  }
}

/** 32-bit FNV-1a of a string's UTF-16 code units. */
function hashString(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 0x01000193);
  return h >>> 0;
}

/**
 * Position of each string of `keys` (an open-addressing hash table of positions; the strings stay
 * the caller's). For duplicates the last position wins, like Map#set in order.
 */
export class StringIndex {
  private readonly table: Int32Array;
  private readonly mask: number;
  /** Distinct keys. */
  readonly size: number;

  constructor(private readonly keys: readonly string[]) {
    let cap = 8;
    while (cap < keys.length * 2) cap *= 2;
    this.table = new Int32Array(cap).fill(-1);
    this.mask = cap - 1;
    let size = 0;
    for (let i = 0; i < keys.length; i++) {
      const s = this.slot(keys[i]!);
      if (this.table[s]! < 0) size++;
      this.table[s] = i;
    }
    this.size = size;
  }

  get(key: string): number | undefined {
    const v = this.table[this.slot(key)]!;
    return v < 0 ? undefined : v;
  }

  /** The slot holding `key`, or the empty slot where it would go. */
  private slot(key: string): number {
    let s = hashString(key) & this.mask;
    for (;;) {
      const v = this.table[s]!;
      if (v < 0 || this.keys[v] === key) return s;
      s = (s + 1) & this.mask;
    }
  }
}

/** A plan's circuit ids in order and their positions. */
export interface CircuitIdIndex {
  ids: string[];
  byId: StringIndex;
}

const idIndexes = new WeakMap<readonly { id: string }[], CircuitIdIndex>();

/**
 * The CircuitIdIndex of a circuit list. A frozen list (lqosd's compact plan) gets one, kept as long
 * as the list: telemetry and lazy queues hold the same plan and share one array of id strings and
 * one table (at 100k circuits each copy was ~4 MB of strings and ~3.7 MB of Map). Other lists, which
 * may change, get a new one every call.
 */
export function circuitIdIndex(circuits: readonly { id: string }[]): CircuitIdIndex {
  let ix = idIndexes.get(circuits);
  if (!ix) {
    const ids = circuits.map((c) => c.id);
    ix = { ids, byId: new StringIndex(ids) };
    if (Object.isFrozen(circuits)) idIndexes.set(circuits, ix);
  }
  return ix;
}
