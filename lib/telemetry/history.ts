/**
 * Long-term telemetry: per-minute aggregates in SQLite (better-sqlite3, WAL) at
 * `<state_directory>/telemetry.sqlite`.
 *
 * Tables (ts = unix seconds of the minute's start; rates in bits/s, drops/marks = packets):
 *   totals_minute(ts, samples, down_avg, down_max, up_avg, up_max, drops_down, drops_up, marks_down, marks_up)
 *   node_minute(node, ts, ...same...)      node = network.json path
 *   circuit_minute(circuit, ts, ...same...) circuit = Circuit ID
 * `samples` = 1 Hz samples aggregated into the row; averages count idle seconds as 0. Node and
 * circuit rows are written only for minutes with traffic or drops (idle circuits cost nothing).
 *
 * Samples are accumulated in memory (typed arrays, reused) and written once per minute in one
 * transaction, when the first sample of the next minute arrives (or on flush()/close()). Rows are
 * upserted, so a minute split by a plan change or a restart merges (weighted average, max, sum).
 * Retention: rows older than `retentionDays` (default 7) are pruned at open and then hourly.
 */
import { closeSync, openSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname } from 'node:path';
import { DATA_FILE_MODE, makeDir, narrowMode } from '../util/fileModes.ts';

// better-sqlite3 ships no types (and @types/better-sqlite3 is not installed): the part we use.
interface SqliteStatement {
  run(...params: unknown[]): { changes: number };
  get(...params: unknown[]): unknown;
  all(...params: unknown[]): unknown[];
}
export interface SqliteDatabase {
  prepare(sql: string): SqliteStatement;
  exec(sql: string): void;
  pragma(sql: string, opts?: { simple?: boolean }): unknown;
  transaction<F extends (...args: never[]) => unknown>(fn: F): F;
  close(): void;
}
const Database = createRequire(import.meta.url)('better-sqlite3') as new (path: string) => SqliteDatabase;

export interface HistoryOptions {
  /** SQLite file (`:memory:` works for tests). */
  path: string;
  retentionDays?: number;
  /** Shorter retention for the (large) per-circuit table; default = retentionDays. */
  circuitRetentionDays?: number;
  /** Wall clock, ms since the epoch (tests inject one). */
  now?: () => number;
  pruneEveryMs?: number;
}

/** One entity set's accumulators for the minute in progress. */
class MinuteAcc {
  /** Values by slot: slot k belongs to entry touched[k] (the k-th touched this minute). */
  sumDown = new Float64Array(0);
  maxDown = new Float64Array(0);
  sumUp = new Float64Array(0);
  maxUp = new Float64Array(0);
  dropsDown = new Float64Array(0);
  dropsUp = new Float64Array(0);
  marksDown = new Float64Array(0);
  marksUp = new Float64Array(0);
  touched: Int32Array;
  touchedCount = 0;
  /** Slot of each entry, -1 while untouched. Values grow with the entries touched in a minute, not with n. */
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
      if (k >= this.sumDown.length) this.grow(Math.min(this.n, Math.max(64, 2 * k)));
      this.slot[i] = k;
      this.touched[k] = i;
    }
    return k;
  }

  private grow(size: number): void {
    const more = (a: Float64Array) => {
      const b = new Float64Array(size);
      b.set(a);
      return b;
    };
    this.sumDown = more(this.sumDown);
    this.maxDown = more(this.maxDown);
    this.sumUp = more(this.sumUp);
    this.maxUp = more(this.maxUp);
    this.dropsDown = more(this.dropsDown);
    this.dropsUp = more(this.dropsUp);
    this.marksDown = more(this.marksDown);
    this.marksUp = more(this.marksUp);
  }

  rate(i: number, down: number, up: number): void {
    if (!(down > 0) && !(up > 0)) return;
    const k = this.touch(i);
    this.sumDown[k] += down;
    this.sumUp[k] += up;
    if (down > this.maxDown[k]!) this.maxDown[k] = down;
    if (up > this.maxUp[k]!) this.maxUp[k] = up;
  }

  drops(i: number, dDown: number, dUp: number, mDown: number, mUp: number): void {
    if (!(dDown > 0) && !(dUp > 0) && !(mDown > 0) && !(mUp > 0)) return;
    const k = this.touch(i);
    this.dropsDown[k] += dDown;
    this.dropsUp[k] += dUp;
    this.marksDown[k] += mDown;
    this.marksUp[k] += mUp;
  }

  reset(): void {
    for (let k = 0; k < this.touchedCount; k++) {
      this.slot[this.touched[k]!] = -1;
      this.sumDown[k] = this.maxDown[k] = this.sumUp[k] = this.maxUp[k] = 0;
      this.dropsDown[k] = this.dropsUp[k] = this.marksDown[k] = this.marksUp[k] = 0;
    }
    this.touchedCount = 0;
  }
}

/** Per-tick input: the totals, and per node/circuit rates by index into `nodeKeys` / `circuitKeys`. */
export interface RateSample {
  downBps: number;
  upBps: number;
  nodeKeys: readonly string[];
  nodeDown: ArrayLike<number>;
  nodeUp: ArrayLike<number>;
  circuitKeys: readonly string[];
  circuitDown: ArrayLike<number>;
  circuitUp: ArrayLike<number>;
  /** Only these circuit indices (the first `touchedCount`) have traffic; default: all. */
  touched?: ArrayLike<number>;
  touchedCount?: number;
}

export interface DropSample {
  drops: { down: number; up: number };
  marks: { down: number; up: number };
  nodeKeys: readonly string[];
  /** Per node: [dropsDown, dropsUp, marksDown, marksUp] arrays. */
  nodeDrops?: [ArrayLike<number>, ArrayLike<number>, ArrayLike<number>, ArrayLike<number>];
  circuitKeys: readonly string[];
  circuits: { index: number; dropsDown: number; dropsUp: number; marksDown: number; marksUp: number }[];
}

export interface HistoryPoint {
  /** Bucket start, unix seconds. */
  t: number;
  downAvgBps: number;
  downMaxBps: number;
  upAvgBps: number;
  upMaxBps: number;
  dropsDown: number;
  dropsUp: number;
  marksDown: number;
  marksUp: number;
}

export interface HistoryQuery {
  scope: 'total' | 'node' | 'circuit';
  /** Node path or Circuit ID (not for `total`). */
  id?: string;
  /** Unix seconds; default: the last hour. */
  from?: number;
  to?: number;
  /** Bucket size in seconds (multiple of 60; default 60). */
  step?: number;
}

const COLS = 'samples, down_avg, down_max, up_avg, up_max, drops_down, drops_up, marks_down, marks_up';
const MERGE = `samples = samples + excluded.samples,
  down_avg = (down_avg * samples + excluded.down_avg * excluded.samples) / max(1, samples + excluded.samples),
  up_avg = (up_avg * samples + excluded.up_avg * excluded.samples) / max(1, samples + excluded.samples),
  down_max = max(down_max, excluded.down_max), up_max = max(up_max, excluded.up_max),
  drops_down = drops_down + excluded.drops_down, drops_up = drops_up + excluded.drops_up,
  marks_down = marks_down + excluded.marks_down, marks_up = marks_up + excluded.marks_up`;
const VALS = 'samples INTEGER NOT NULL, down_avg REAL NOT NULL, down_max REAL NOT NULL, up_avg REAL NOT NULL, up_max REAL NOT NULL, drops_down INTEGER NOT NULL, drops_up INTEGER NOT NULL, marks_down INTEGER NOT NULL, marks_up INTEGER NOT NULL';

/** Creates the database file with mode 0640 (before SQLite does, with 0644) in a 0750 directory. */
function prepareDbFile(path: string): void {
  makeDir(dirname(path));
  closeSync(openSync(path, 'a', DATA_FILE_MODE));
  narrowMode(path, DATA_FILE_MODE);
}

export class TelemetryHistory {
  readonly db: SqliteDatabase;
  readonly retentionDays: number;
  readonly circuitRetentionDays: number;
  private readonly now: () => number;
  private readonly pruneEveryMs: number;
  private lastPrune = 0;
  /** Minute in progress (unix seconds of its start), undefined before the first sample. */
  private minute: number | undefined;
  private samples = 0;
  private totals = new MinuteAcc(1);
  private nodes = new MinuteAcc(0);
  private circuits = new MinuteAcc(0);
  private nodeKeys: readonly string[] = [];
  private circuitKeys: readonly string[] = [];
  private readonly upsertTotal: SqliteStatement;
  private readonly upsertNode: SqliteStatement;
  private readonly upsertCircuit: SqliteStatement;
  private closed = false;
  /** Rows written by the last flush (for tests/benchmarks). */
  lastFlush = { minute: 0, rows: 0, ms: 0 };

  constructor(opts: HistoryOptions) {
    this.retentionDays = opts.retentionDays ?? 7;
    this.circuitRetentionDays = opts.circuitRetentionDays ?? this.retentionDays;
    this.now = opts.now ?? Date.now;
    this.pruneEveryMs = opts.pruneEveryMs ?? 3_600_000;
    if (opts.path !== ':memory:') prepareDbFile(opts.path);
    this.db = new Database(opts.path);
    if (opts.path !== ':memory:') {
      this.db.pragma('journal_mode = WAL');
      // Subscriber data: SQLite gives -wal/-shm the database's mode; narrow any older ones too.
      for (const f of [opts.path, `${opts.path}-wal`, `${opts.path}-shm`]) narrowMode(f, DATA_FILE_MODE);
    }
    this.db.pragma('synchronous = NORMAL');
    this.db.exec(`
      CREATE TABLE IF NOT EXISTS totals_minute (ts INTEGER PRIMARY KEY, ${VALS});
      CREATE TABLE IF NOT EXISTS node_minute (node TEXT NOT NULL, ts INTEGER NOT NULL, ${VALS}, PRIMARY KEY (node, ts)) WITHOUT ROWID;
      CREATE INDEX IF NOT EXISTS node_minute_ts ON node_minute (ts);
      CREATE TABLE IF NOT EXISTS circuit_minute (circuit TEXT NOT NULL, ts INTEGER NOT NULL, ${VALS}, PRIMARY KEY (circuit, ts)) WITHOUT ROWID;
      CREATE INDEX IF NOT EXISTS circuit_minute_ts ON circuit_minute (ts);
    `);
    const ph = '?, ?, ?, ?, ?, ?, ?, ?, ?';
    this.upsertTotal = this.db.prepare(`INSERT INTO totals_minute (ts, ${COLS}) VALUES (?, ${ph}) ON CONFLICT (ts) DO UPDATE SET ${MERGE}`);
    this.upsertNode = this.db.prepare(`INSERT INTO node_minute (node, ts, ${COLS}) VALUES (?, ?, ${ph}) ON CONFLICT (node, ts) DO UPDATE SET ${MERGE}`);
    this.upsertCircuit = this.db.prepare(`INSERT INTO circuit_minute (circuit, ts, ${COLS}) VALUES (?, ?, ${ph}) ON CONFLICT (circuit, ts) DO UPDATE SET ${MERGE}`);
    this.prune();
  }

  /** Moves to the minute of `tMs`, writing the previous one if it changed. */
  private roll(tMs: number): void {
    const m = Math.floor(tMs / 60_000) * 60;
    if (this.minute === undefined) this.minute = m;
    else if (m !== this.minute) {
      this.flush();
      this.minute = m;
    }
  }

  /** Entity sets (node/circuit keys) follow the plan: a new set flushes the partial minute first. */
  private keys(nodeKeys: readonly string[], circuitKeys: readonly string[]): void {
    if (nodeKeys !== this.nodeKeys) {
      if (this.nodes.touchedCount) this.flush();
      this.nodeKeys = nodeKeys;
      if (this.nodes.n !== nodeKeys.length) this.nodes = new MinuteAcc(nodeKeys.length);
    }
    if (circuitKeys !== this.circuitKeys) {
      if (this.circuits.touchedCount) this.flush();
      this.circuitKeys = circuitKeys;
      if (this.circuits.n !== circuitKeys.length) this.circuits = new MinuteAcc(circuitKeys.length);
    }
  }

  /** One 1 Hz rate sample. */
  addRates(tMs: number, s: RateSample): void {
    if (this.closed) return;
    this.roll(tMs);
    this.keys(s.nodeKeys, s.circuitKeys);
    this.samples++;
    this.totals.rate(0, s.downBps, s.upBps);
    for (let i = 0; i < s.nodeKeys.length; i++) this.nodes.rate(i, s.nodeDown[i]!, s.nodeUp[i]!);
    if (s.touched) {
      const n = s.touchedCount ?? s.touched.length;
      for (let k = 0; k < n; k++) {
        const i = s.touched[k]!;
        this.circuits.rate(i, s.circuitDown[i]!, s.circuitUp[i]!);
      }
    } else {
      for (let i = 0; i < s.circuitKeys.length; i++) this.circuits.rate(i, s.circuitDown[i]!, s.circuitUp[i]!);
    }
  }

  /** Queue drop/mark deltas of one queue poll. */
  addDrops(tMs: number, s: DropSample): void {
    if (this.closed) return;
    this.roll(tMs);
    this.keys(s.nodeKeys, s.circuitKeys);
    this.totals.drops(0, s.drops.down, s.drops.up, s.marks.down, s.marks.up);
    if (s.nodeDrops) {
      const [dd, du, md, mu] = s.nodeDrops;
      for (let i = 0; i < s.nodeKeys.length; i++) this.nodes.drops(i, dd[i]!, du[i]!, md[i]!, mu[i]!);
    }
    for (const c of s.circuits) this.circuits.drops(c.index, c.dropsDown, c.dropsUp, c.marksDown, c.marksUp);
  }

  /** Writes the minute in progress (one transaction) and starts it over. */
  flush(): void {
    if (this.closed || this.minute === undefined) return;
    const ts = this.minute;
    const n = Math.max(1, this.samples);
    const t0 = performance.now();
    let rows = 0;
    const write = (acc: MinuteAcc, stmt: SqliteStatement, key: ((i: number) => string) | undefined) => {
      for (let k = 0; k < acc.touchedCount; k++) {
        const i = acc.touched[k]!;
        const vals = [
          this.samples, acc.sumDown[k]! / n, acc.maxDown[k]!, acc.sumUp[k]! / n, acc.maxUp[k]!,
          Math.round(acc.dropsDown[k]!), Math.round(acc.dropsUp[k]!), Math.round(acc.marksDown[k]!), Math.round(acc.marksUp[k]!),
        ];
        if (key) stmt.run(key(i), ts, ...vals);
        else stmt.run(ts, ...vals);
        rows++;
      }
    };
    if (this.samples > 0 || this.totals.touchedCount > 0) {
      // The totals row is written for every minute with samples, idle or not (it carries `samples`).
      const tx = this.db.transaction(() => {
        if (this.totals.touchedCount === 0) {
          this.upsertTotal.run(ts, this.samples, 0, 0, 0, 0, 0, 0, 0, 0);
          rows++;
        }
        write(this.totals, this.upsertTotal, undefined);
        write(this.nodes, this.upsertNode, (i) => this.nodeKeys[i]!);
        write(this.circuits, this.upsertCircuit, (i) => this.circuitKeys[i]!);
      });
      tx();
    }
    this.totals.reset();
    this.nodes.reset();
    this.circuits.reset();
    this.samples = 0;
    this.lastFlush = { minute: ts, rows, ms: performance.now() - t0 };
    if (this.now() - this.lastPrune >= this.pruneEveryMs) this.prune();
  }

  /** Deletes rows past retention. Returns the rows removed. */
  prune(): number {
    if (this.closed) return 0;
    const nowS = Math.floor(this.now() / 1000);
    const cut = nowS - Math.round(this.retentionDays * 86400);
    const cutC = nowS - Math.round(this.circuitRetentionDays * 86400);
    let removed = 0;
    this.db.transaction(() => {
      removed += this.db.prepare('DELETE FROM totals_minute WHERE ts < ?').run(cut).changes;
      removed += this.db.prepare('DELETE FROM node_minute WHERE ts < ?').run(cut).changes;
      removed += this.db.prepare('DELETE FROM circuit_minute WHERE ts < ?').run(cutC).changes;
    })();
    this.lastPrune = this.now();
    return removed;
  }

  /**
   * Time series for the UI: buckets of `step` seconds between `from` and `to` (unix seconds,
   * minute rows whose start is in [from, to)). Averages are over all samples of the bucket (idle
   * minutes count as 0); maxima are maxima; drops/marks are sums. Empty buckets are omitted.
   */
  query(q: HistoryQuery): HistoryPoint[] {
    const to = q.to ?? Math.floor(this.now() / 1000);
    const from = q.from ?? to - 3600;
    const step = Math.max(60, Math.round((q.step ?? 60) / 60) * 60);
    const agg = `(ts / ${step}) * ${step} AS t, SUM(down_avg * samples) AS dsum, MAX(down_max) AS dmax, SUM(up_avg * samples) AS usum, MAX(up_max) AS umax,
      SUM(drops_down) AS dd, SUM(drops_up) AS du, SUM(marks_down) AS md, SUM(marks_up) AS mu, SUM(samples) AS n`;
    type Row = { t: number; dsum: number; dmax: number; usum: number; umax: number; dd: number; du: number; md: number; mu: number; n: number };
    const totals = this.db.prepare(`SELECT ${agg} FROM totals_minute WHERE ts >= ? AND ts < ? GROUP BY t ORDER BY t`).all(from, to) as Row[];
    let rows: Row[];
    if (q.scope === 'total') rows = totals;
    else {
      if (!q.id) throw new Error(`history query for a ${q.scope} needs an id`);
      const table = q.scope === 'node' ? 'node_minute' : 'circuit_minute';
      const col = q.scope === 'node' ? 'node' : 'circuit';
      rows = this.db.prepare(`SELECT ${agg} FROM ${table} WHERE ${col} = ? AND ts >= ? AND ts < ? GROUP BY t ORDER BY t`).all(q.id, from, to) as Row[];
    }
    // Bucket sample counts come from the totals (written every minute), so idle minutes average in as 0.
    const samplesAt = new Map(totals.map((r) => [r.t, r.n]));
    return rows.map((r) => {
      const n = Math.max(samplesAt.get(r.t) ?? 0, r.n, 1);
      return {
        t: r.t,
        downAvgBps: Math.round(r.dsum / n),
        downMaxBps: Math.round(r.dmax),
        upAvgBps: Math.round(r.usum / n),
        upMaxBps: Math.round(r.umax),
        dropsDown: r.dd,
        dropsUp: r.du,
        marksDown: r.md,
        marksUp: r.mu,
      };
    });
  }

  /** Circuits with the highest average rate over [from, to) (unix seconds). */
  topCircuits(opts: { from?: number; to?: number; by?: 'download' | 'upload'; limit?: number } = {}): { circuit: string; avgBps: number; maxBps: number; drops: number }[] {
    const to = opts.to ?? Math.floor(this.now() / 1000);
    const from = opts.from ?? to - 3600;
    const d = opts.by === 'upload' ? 'up' : 'down';
    const n = (this.db.prepare('SELECT SUM(samples) AS n FROM totals_minute WHERE ts >= ? AND ts < ?').get(from, to) as { n: number | null }).n ?? 0;
    const rows = this.db
      .prepare(`SELECT circuit, SUM(${d}_avg * samples) AS s, MAX(${d}_max) AS m, SUM(drops_${d}) AS dr FROM circuit_minute WHERE ts >= ? AND ts < ? GROUP BY circuit ORDER BY s DESC LIMIT ?`)
      .all(from, to, opts.limit ?? 10) as { circuit: string; s: number; m: number; dr: number }[];
    return rows.map((r) => ({ circuit: r.circuit, avgBps: Math.round(r.s / Math.max(1, n)), maxBps: Math.round(r.m), drops: r.dr }));
  }

  /** Flushes the minute in progress and closes the database. */
  close(): void {
    if (this.closed) return;
    this.flush();
    this.closed = true;
    this.db.close();
  }
}
