/**
 * Small id allocators used by the planner: lowest-free integer allocation from a range with
 * a set of reserved values, O(1) amortised per allocation when allocating upward.
 */
export class IdPool {
  private readonly used = new Set<number>();
  private cursor: number;

  constructor(
    private readonly first: number,
    private readonly last: number,
    reserved: Iterable<number> = [],
  ) {
    this.cursor = first;
    for (const r of reserved) this.used.add(r);
  }

  /** Claims a specific id; false if it is out of range or taken. */
  claim(id: number): boolean {
    if (id < this.first || id > this.last || this.used.has(id)) return false;
    this.used.add(id);
    return true;
  }

  /** Lowest free id at or above the cursor, or null when the range is exhausted. */
  next(): number | null {
    while (this.cursor <= this.last && this.used.has(this.cursor)) this.cursor++;
    if (this.cursor > this.last) return null;
    this.used.add(this.cursor);
    return this.cursor++;
  }
}
