/**
 * Shared by the benchmarks: median and min–max of repeated measurements, interleaved rounds for
 * comparisons (A/B/A/B with the order rotating each round, so drift in the machine's load hits
 * every variant alike), and the final target table — the process exits non-zero when a target it
 * prints is missed, so a bench never calls a target met that its own figures do not meet.
 */
import { loadavg } from 'node:os';

export interface Spread {
  median: number;
  min: number;
  max: number;
  n: number;
}

/** Median (mean of the two middle values for an even count), min and max. Throws on an empty list. */
export function spread(xs: readonly number[]): Spread {
  if (xs.length === 0) throw new Error('spread(): no measurements (the bench produced an empty list)');
  const s = [...xs].sort((a, b) => a - b);
  const mid = s.length >> 1;
  const median = s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
  return { median, min: s[0]!, max: s[s.length - 1]!, n: s.length };
}

export function median(xs: readonly number[]): number {
  return spread(xs).median;
}

/** 100 → "100", 12.345 → "12.3" (≥ 100 without decimals). */
export function num(v: number, digits?: number): string {
  if (digits !== undefined) return v.toFixed(digits);
  return Math.abs(v) >= 100 ? v.toFixed(0) : v.toFixed(1);
}

/** "86.9 (76.1–131) ms": median, then min–max. */
export function fmtSpread(xs: readonly number[] | Spread, unit = 'ms', digits?: number): string {
  const s = Array.isArray(xs) ? spread(xs as number[]) : (xs as Spread);
  const u = unit ? ` ${unit}` : '';
  return s.n === 1 ? `${num(s.median, digits)}${u} (1 run)` : `${num(s.median, digits)} (${num(s.min, digits)}–${num(s.max, digits)})${u}`;
}

/**
 * Runs `rounds` rounds of every variant; round r starts with variant r mod k (A B C, B C A, C A B, …).
 * Each variant returns one measurement (or several) per call. Returns the measurements per variant.
 */
export async function interleaved<K extends string>(
  rounds: number,
  variants: Record<K, (round: number) => number | number[] | Promise<number | number[]>>,
  onRound?: (round: number, order: K[]) => void,
): Promise<Record<K, number[]>> {
  const names = Object.keys(variants) as K[];
  if (names.length === 0 || rounds < 1) throw new Error('interleaved(): need at least one variant and one round');
  const out = Object.fromEntries(names.map((n) => [n, [] as number[]])) as Record<K, number[]>;
  for (let r = 0; r < rounds; r++) {
    const order = names.map((_, i) => names[(i + r) % names.length]!);
    onRound?.(r, order);
    for (const name of order) {
      const v = await variants[name](r);
      out[name].push(...(Array.isArray(v) ? v : [v]));
    }
  }
  return out;
}

export interface TargetRow {
  target: string;
  measured: string;
  met: boolean;
}

/**
 * The target table every bench ends with. `check` records one target; `report` prints
 * target / measured median (spread) / met|MISSED and sets a non-zero exit code on any MISSED.
 */
export class Targets {
  readonly rows: TargetRow[] = [];

  check(target: string, measured: string, met: boolean): boolean {
    this.rows.push({ target, measured, met });
    return met;
  }

  /** Median of `xs` against `limit` (`≤` by default): records and returns whether it is met. */
  atMost(target: string, xs: readonly number[], limit: number, unit = 'ms'): boolean {
    const s = spread(xs);
    return this.check(target, `median ${fmtSpread(s, unit)}`, s.median <= limit);
  }

  atLeast(target: string, xs: readonly number[], limit: number, unit = ''): boolean {
    const s = spread(xs);
    return this.check(target, `median ${fmtSpread(s, unit, 2)}`, s.median >= limit);
  }

  get missed(): TargetRow[] {
    return this.rows.filter((r) => !r.met);
  }

  /** Markdown table (also readable as plain text). */
  table(): string {
    if (this.rows.length === 0) return '(this bench sets no targets)';
    const head = ['target', 'measured: median (min–max)', 'status'];
    const rows = this.rows.map((r) => [r.target, r.measured, r.met ? 'met' : 'MISSED']);
    const w = head.map((h, i) => Math.max(h.length, ...rows.map((row) => row[i]!.length)));
    const line = (cells: string[]) => '| ' + cells.map((c, i) => c.padEnd(w[i]!)).join(' | ') + ' |';
    return [line(head), '|' + w.map((x) => '-'.repeat(x + 2)).join('|') + '|', ...rows.map(line)].join('\n');
  }

  /** Prints the table and sets process.exitCode = 1 when a target is missed. */
  report(out: (s: string) => void = (s) => process.stdout.write(s + '\n')): void {
    out('');
    out('targets:');
    out(this.table());
    const m = this.missed;
    if (m.length) {
      out(`${m.length} target(s) MISSED: ${m.map((r) => r.target).join('; ')} — exit code 1`);
      process.exitCode = 1;
    } else if (this.rows.length) {
      out('all targets met');
    }
  }
}

/** One line describing where and when the figures were taken (for the docs). */
export function machineLine(): string {
  const l = loadavg();
  return `node ${process.version}, ${new Date().toISOString()}, load average ${l[0]!.toFixed(2)} / ${l[1]!.toFixed(2)} / ${l[2]!.toFixed(2)}`;
}
