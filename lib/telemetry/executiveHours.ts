/**
 * "Circuits at their ceiling" over long ranges without re-reading every minute row on each request:
 * per-circuit counts of each closed hour (minutes with traffic, minutes at the ceiling, peak) are
 * read once with a GROUP BY (circuit, hour) and kept; a request reads only the hours not kept yet
 * and the window's edges (before its first whole hour, and from the last closed hour to the minute
 * in progress), then adds up. Exact: the same result as one query over the window
 * (./executive.ts executiveCeilings). Kept hours belong to one set of ceilings (the plan's): new
 * ceilings start over. Circuits are read a few at a time over a few hours per statement (READ_PIECES),
 * yielding to the event loop in between.
 */
import type { ExecutiveRules } from '../api/executive.ts';
import { byCeilingShare, EXECUTIVE_RULES, READ_PIECES, readInPieces, timeSlices, type CeilingRow, type ExecutiveWindow, type PlanCircuitCeil, type ReadPieces } from './executive.ts';
import type { SqliteDatabase } from './history.ts';

const HOUR = 3600;
/** Kept hours reach back this far before a window's first hour (the longest range). */
const KEEP_S = 7 * 86_400;

/** Per circuit (by its index in the plan), 3 values: minutes with traffic, minutes at the ceiling, peak. */
type Counts = Float64Array;

const HOURS_SQL = `
WITH plan(i, circuit, ceil) AS MATERIALIZED (SELECT value->>0, value->>1, value->>2 FROM json_each(?))
SELECT p.i AS i, (m.ts / ${HOUR}) * ${HOUR} AS h, COUNT(*) AS active, SUM(m.down_max >= ? * p.ceil) AS atc, MAX(m.down_max) AS peak
FROM plan p CROSS JOIN circuit_minute m ON m.circuit = p.circuit AND m.ts >= ? AND m.ts < ?
WHERE m.down_max > 0 OR m.up_max > 0
GROUP BY p.i, h`;

interface HourRow {
  i: number;
  h: number;
  active: number;
  atc: number;
  peak: number;
}

/** Adds a row's counts into `c` (peaks: the maximum). */
function addInto(c: Counts, i: number, active: number, atc: number, peak: number): void {
  c[3 * i] += active;
  c[3 * i + 1] += atc;
  c[3 * i + 2] = Math.max(c[3 * i + 2]!, peak);
}

export class CeilingHours {
  private ceilings: readonly PlanCircuitCeil[] = [];
  private readonly hours = new Map<number, Counts>();

  /** `pieces.seconds` is rounded to whole hours (at least one): a piece never splits an hour's row. */
  constructor(private readonly pieces: ReadPieces = READ_PIECES) {}

  /** Rows of [from, to) per (circuit, hour), a few circuits over a few hours per statement. */
  private async read(db: SqliteDatabase, from: number, to: number, threshold: number, each: (r: HourRow) => void): Promise<void> {
    const cs = this.ceilings;
    const statement = db.prepare(HOURS_SQL);
    const seconds = Math.max(1, Math.round(this.pieces.seconds / HOUR)) * HOUR;
    // Cut at whole hours (from the hour `from` is in), so each (circuit, hour) row comes from one piece.
    const cuts = timeSlices(Math.floor(from / HOUR) * HOUR, to, seconds).map(([a, b]): [number, number] => [Math.max(a, from), b]);
    const indexed = cs.map((c, i) => ({ c, i })).filter(({ c }) => c.downMbps > 0);
    await readInPieces(indexed, this.pieces.entities, cuts, (group, a, b) => {
      const plan = group.map(({ c, i }) => [i, c.id, c.downMbps * 1e6]);
      for (const r of statement.all(JSON.stringify(plan), threshold, a, b) as HourRow[]) each(r);
    });
  }

  /** Reads and keeps the closed hours of [first, end) not kept yet. */
  private async keepHours(db: SqliteDatabase, first: number, end: number, threshold: number): Promise<void> {
    for (const h of this.hours.keys()) if (h < first - KEEP_S) this.hours.delete(h);
    let missing = first;
    while (missing < end && this.hours.has(missing)) missing += HOUR;
    if (missing >= end) return;
    const got = new Map<number, Counts>();
    const n = this.ceilings.length;
    await this.read(db, missing, end, threshold, (r) => {
      if (!got.has(r.h)) got.set(r.h, new Float64Array(3 * n));
      addInto(got.get(r.h)!, r.i, r.active, r.atc, r.peak);
    });
    for (let h = missing; h < end; h += HOUR) if (!this.hours.has(h)) this.hours.set(h, got.get(h) ?? new Float64Array(3 * n));
  }

  /** The top circuits of window `w` (it ends with the minute in progress); `ceilings`: the plan's (another array starts over). */
  async top(db: SqliteDatabase, w: ExecutiveWindow, ceilings: readonly PlanCircuitCeil[], rules: ExecutiveRules = EXECUTIVE_RULES): Promise<CeilingRow[]> {
    if (ceilings !== this.ceilings) {
      this.ceilings = ceilings;
      this.hours.clear();
    }
    const n = ceilings.length;
    const threshold = rules.ceilingPct / 100;
    // Whole hours of the window that no longer change: they end before the minute in progress.
    const first = Math.min(Math.ceil(w.from / HOUR) * HOUR, w.to);
    const closedEnd = Math.max(first, Math.floor((w.to - 60) / HOUR) * HOUR);
    await this.keepHours(db, first, closedEnd, threshold);
    if (this.ceilings !== ceilings) return this.top(db, w, this.ceilings, rules); // a newer plan came meanwhile
    const sum = new Float64Array(3 * n);
    for (const [from, to] of [[w.from, first], [closedEnd, w.to]] as const) {
      if (from < to) await this.read(db, from, to, threshold, (r) => addInto(sum, r.i, r.active, r.atc, r.peak));
    }
    for (let h = first; h < closedEnd; h += HOUR) {
      const c = this.hours.get(h)!;
      for (let i = 0; i < n; i++) addInto(sum, i, c[3 * i]!, c[3 * i + 1]!, c[3 * i + 2]!);
    }
    return rank(ceilings, sum, rules);
  }
}

/** The circuits with at least one minute at the ceiling and enough minutes with traffic, best first. */
function rank(ceilings: readonly PlanCircuitCeil[], sum: Counts, rules: ExecutiveRules): CeilingRow[] {
  const rows: CeilingRow[] = [];
  for (let i = 0; i < ceilings.length; i++) {
    const [active, atc, peak] = [sum[3 * i]!, sum[3 * i + 1]!, sum[3 * i + 2]!];
    if (atc === 0 || active < rules.minActiveMinutes) continue;
    const c = ceilings[i]!;
    rows.push({ id: c.id, ceilDownMbps: c.downMbps, activeMinutes: active, atCeilingMinutes: atc, sharePct: (100 * atc) / active, peakDownBps: Math.round(peak) });
  }
  return rows.sort(byCeilingShare).slice(0, rules.circuitLimit);
}
