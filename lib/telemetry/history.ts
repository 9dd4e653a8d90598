/**
 * Long-term telemetry: per-minute aggregates in SQLite (better-sqlite3, WAL) at
 * `<state_directory>/telemetry.sqlite`.
 *
 * Tables (ts = unix seconds of the minute's start; rates in bits/s, drops/marks = packets):
 *   totals_minute(ts, samples, down_avg, down_max, up_avg, up_max, drops_down, drops_up, marks_down, marks_up)
 *   node_minute(node, ts, ...same...)      node = network.json path
 *   circuit_minute(circuit, ts, ...same...) circuit = Circuit ID
 * plus the TCP quality from flow tracking (./historyQuality.ts, captured every 10 s): rtt_p50 and
 * rtt_p90 (ms, the average of the minute's rtt_n captures; NULL without RTT samples), retrans_down/up
 * and tcp_down/up (TCP retransmits and packets, summed: the share is their ratio; only the ratio is
 * meaningful, as captures on demand overlap flow tracking's 10 s windows). Databases written
 * before these columns existed get them added at open (ALTER TABLE ADD COLUMN).
 * `samples` = 1 Hz samples aggregated into the row; averages count idle seconds as 0. Node and
 * circuit rows are written only for minutes with traffic, drops or TCP samples (idle circuits cost nothing).
 *
 * Samples are accumulated in memory (typed arrays, reused) and written once per minute in one
 * transaction, when the first sample of the next minute arrives (or on flush()/close()). Rows are
 * upserted, so a minute split by a plan change, a restart or a flush on demand merges (weighted
 * average, max, sum). Retention: rows older than `retentionDays` (default 7; lqosd: `[history]`
 * retention_days) are pruned at open and then hourly.
 */
import { closeSync, openSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname } from 'node:path';
import { DATA_FILE_MODE, makeDir, narrowMode } from '../util/fileModes.ts';
import type { HistoryPoint } from '../api/history.ts';
import { MinuteAcc, type QualityValues } from './historyAcc.ts';

export type { HistoryPoint, QualityValues };

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

/** A quality capture (./historyQuality.ts): per node / circuit by index into the key arrays. */
export interface QualitySample {
  totals: QualityValues | undefined;
  nodeKeys: readonly string[];
  nodes: ReadonlyMap<number, QualityValues>;
  circuitKeys: readonly string[];
  circuits: ReadonlyMap<number, QualityValues>;
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

const COLS = 'samples, down_avg, down_max, up_avg, up_max, drops_down, drops_up, marks_down, marks_up, rtt_p50, rtt_p90, rtt_n, retrans_down, retrans_up, tcp_down, tcp_up';
/** Weighted average of a column over two merged parts of a minute (`w` = the weight column). */
const wavg = (c: string, w: string) => `${c} = (coalesce(${c}, 0) * ${w} + coalesce(excluded.${c}, 0) * excluded.${w}) / max(1, ${w} + excluded.${w})`;
const rttMerge = (c: string) => `${c} = CASE WHEN rtt_n + excluded.rtt_n = 0 THEN NULL ELSE (coalesce(${c}, 0) * rtt_n + coalesce(excluded.${c}, 0) * excluded.rtt_n) / (rtt_n + excluded.rtt_n) END`;
const sum = (c: string) => `${c} = ${c} + excluded.${c}`;
// Every SET expression reads the row as it was before the update (SQLite), so the order does not matter.
const MERGE = [
  wavg('down_avg', 'samples'), wavg('up_avg', 'samples'),
  'down_max = max(down_max, excluded.down_max)', 'up_max = max(up_max, excluded.up_max)',
  ...['drops_down', 'drops_up', 'marks_down', 'marks_up', 'retrans_down', 'retrans_up', 'tcp_down', 'tcp_up'].map(sum),
  rttMerge('rtt_p50'), rttMerge('rtt_p90'), sum('rtt_n'), sum('samples'),
].join(',\n  ');
const VALS = 'samples INTEGER NOT NULL, down_avg REAL NOT NULL, down_max REAL NOT NULL, up_avg REAL NOT NULL, up_max REAL NOT NULL, drops_down INTEGER NOT NULL, drops_up INTEGER NOT NULL, marks_down INTEGER NOT NULL, marks_up INTEGER NOT NULL';
/** Columns added after the first release: added to older databases at open. */
const ADDED_COLUMNS: [string, string][] = [
  ['rtt_p50', 'REAL'],
  ['rtt_p90', 'REAL'],
  ['rtt_n', 'INTEGER NOT NULL DEFAULT 0'],
  ['retrans_down', 'INTEGER NOT NULL DEFAULT 0'],
  ['retrans_up', 'INTEGER NOT NULL DEFAULT 0'],
  ['tcp_down', 'INTEGER NOT NULL DEFAULT 0'],
  ['tcp_up', 'INTEGER NOT NULL DEFAULT 0'],
];
const TABLES = ['totals_minute', 'node_minute', 'circuit_minute'] as const;

/** Adds the columns a table lacks (a database of an older lqosd). Returns the columns added. */
export function migrateHistory(db: SqliteDatabase): string[] {
  const added: string[] = [];
  for (const table of TABLES) {
    const have = new Set((db.prepare(`PRAGMA table_info(${table})`).all() as { name: string }[]).map((c) => c.name));
    for (const [col, type] of ADDED_COLUMNS) {
      if (have.has(col)) continue;
      db.exec(`ALTER TABLE ${table} ADD COLUMN ${col} ${type}`);
      added.push(`${table}.${col}`);
    }
  }
  return added;
}

/** Bucket sizes the history API uses (seconds); the first that keeps a span within MAX_POINTS. */
const NICE_STEPS = [60, 120, 180, 300, 600, 900, 1200, 1800, 3600, 4320, 7200, 10800, 21600, 43200, 86400];
export const MAX_POINTS = 600;

/** The bucket size for a span of `spanS` seconds: minute rows up to 10 h, then at most 600 buckets. */
export function historyStep(spanS: number): number {
  const fit = NICE_STEPS.find((s) => Math.ceil(spanS / s) <= MAX_POINTS);
  return fit ?? Math.ceil(spanS / MAX_POINTS / 60) * 60;
}

/** Creates the database file with mode 0640 (before SQLite does, with 0644) in a 0750 directory. */
function prepareDbFile(path: string): void {
  makeDir(dirname(path));
  closeSync(openSync(path, 'a', DATA_FILE_MODE));
  narrowMode(path, DATA_FILE_MODE);
}

const ENTITY = { node: { table: 'node_minute', col: 'node' }, circuit: { table: 'circuit_minute', col: 'circuit' } } as const;

/** One bucket of query(): sums and maxima of its minute rows. */
interface HistoryRow {
  t: number; dsum: number; dmax: number; usum: number; umax: number; dd: number; du: number; md: number; mu: number; n: number;
  r50: number | null; r90: number | null; rn: number; rd: number; ru: number; pd: number; pu: number;
}

const pct = (part: number, whole: number): number | null => (whole > 0 ? (100 * part) / whole : null);

/** A bucket lqosd recorded in which this site or circuit had no row: no traffic, no drops, no TCP sample. */
const idleRow = (t: number): HistoryRow => ({ t, dsum: 0, dmax: 0, usum: 0, umax: 0, dd: 0, du: 0, md: 0, mu: 0, n: 0, r50: null, r90: null, rn: 0, rd: 0, ru: 0, pd: 0, pu: 0 });

/** A bucket as the API serves it; `n` = the bucket's samples (idle seconds included). */
function historyPoint(r: HistoryRow, n: number): HistoryPoint {
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
    rttP50Ms: r.rn > 0 && r.r50 !== null ? r.r50 / r.rn : null,
    rttP90Ms: r.rn > 0 && r.r90 !== null ? r.r90 / r.rn : null,
    retransDownPct: pct(r.rd, r.pd),
    retransUpPct: pct(r.ru, r.pu),
  };
}

/** An entity's rows with an idle row for every bucket of the totals it has none in, by time. */
function withIdleBuckets(rows: HistoryRow[], totals: readonly { t: number }[]): HistoryRow[] {
  const byT = new Map(rows.map((r) => [r.t, r]));
  const ts = new Set([...totals.map((r) => r.t), ...byT.keys()]);
  return [...ts].sort((a, b) => a - b).map((t) => byT.get(t) ?? idleRow(t));
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
    migrateHistory(this.db);
    const ph = Array(16).fill('?').join(', ');
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

  /** One TCP quality capture (./historyQuality.ts) into the minute of `tMs`. */
  addQuality(tMs: number, s: QualitySample): void {
    if (this.closed) return;
    this.roll(tMs);
    this.keys(s.nodeKeys, s.circuitKeys);
    if (s.totals) this.totals.quality(0, s.totals);
    for (const [i, q] of s.nodes) this.nodes.quality(i, q);
    for (const [i, q] of s.circuits) this.circuits.quality(i, q);
  }

  /** Writes the minute in progress (one transaction) and starts it over. */
  flush(): void {
    if (this.closed || this.minute === undefined) return;
    const ts = this.minute;
    const t0 = performance.now();
    let rows = 0;
    const write = (acc: MinuteAcc, stmt: SqliteStatement, key: ((i: number) => string) | undefined) => {
      for (let k = 0; k < acc.touchedCount; k++) {
        const vals = acc.row(k, this.samples);
        if (key) stmt.run(key(acc.touched[k]!), ts, ...vals);
        else stmt.run(ts, ...vals);
        rows++;
      }
    };
    if (this.samples > 0 || this.totals.touchedCount + this.nodes.touchedCount + this.circuits.touchedCount > 0) {
      // The totals row is written for every minute with samples, idle or not (it carries `samples`).
      const tx = this.db.transaction(() => {
        if (this.totals.touchedCount === 0) {
          this.upsertTotal.run(ts, this.samples, 0, 0, 0, 0, 0, 0, 0, 0, null, null, 0, 0, 0, 0, 0);
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
   * minutes count as 0); maxima are maxima; drops/marks are sums. Buckets in which lqosd recorded
   * nothing (it was not running) are omitted; a site or circuit without a row in a bucket lqosd
   * recorded gets a zero point there (no traffic, RTT and retransmits unknown), so charts do not draw
   * a line across idle hours — unless it has no row in the range at all (then: no points).
   */
  query(q: HistoryQuery): HistoryPoint[] {
    const to = q.to ?? Math.floor(this.now() / 1000);
    const from = q.from ?? to - 3600;
    const step = Math.max(60, Math.round((q.step ?? 60) / 60) * 60);
    const agg = `(ts / ${step}) * ${step} AS t, SUM(down_avg * samples) AS dsum, MAX(down_max) AS dmax, SUM(up_avg * samples) AS usum, MAX(up_max) AS umax,
      SUM(drops_down) AS dd, SUM(drops_up) AS du, SUM(marks_down) AS md, SUM(marks_up) AS mu, SUM(samples) AS n,
      SUM(rtt_p50 * rtt_n) AS r50, SUM(rtt_p90 * rtt_n) AS r90, SUM(rtt_n) AS rn,
      SUM(retrans_down) AS rd, SUM(retrans_up) AS ru, SUM(tcp_down) AS pd, SUM(tcp_up) AS pu`;
    // A site or circuit needs of the totals only each bucket's time and samples (a third of the work
    // of aggregating every column: one circuit's 30 days went from 75 to 50 ms).
    const totalsCols = q.scope === 'total' ? agg : `(ts / ${step}) * ${step} AS t, SUM(samples) AS n`;
    const totals = this.db.prepare(`SELECT ${totalsCols} FROM totals_minute WHERE ts >= ? AND ts < ? GROUP BY t ORDER BY t`).all(from, to) as Pick<HistoryRow, 't' | 'n'>[];
    let rows: HistoryRow[];
    if (q.scope === 'total') rows = totals as HistoryRow[];
    else {
      if (!q.id) throw new Error(`history query for a ${q.scope} needs an id`);
      const { table, col } = ENTITY[q.scope];
      rows = this.db.prepare(`SELECT ${agg} FROM ${table} WHERE ${col} = ? AND ts >= ? AND ts < ? GROUP BY t ORDER BY t`).all(q.id, from, to) as HistoryRow[];
    }
    // Bucket sample counts come from the totals (written every minute), so idle minutes average in as 0.
    const samplesAt = new Map(totals.map((r) => [r.t, r.n]));
    // A site or circuit with no row in the range at all stays empty ("no history yet").
    if (q.scope !== 'total' && rows.length > 0) rows = withIdleBuckets(rows, totals);
    return rows.map((r) => historyPoint(r, Math.max(samplesAt.get(r.t) ?? 0, r.n, 1)));
  }

  /** Whether the store holds any row of this node path or Circuit ID. */
  has(scope: 'node' | 'circuit', id: string): boolean {
    const { table, col } = ENTITY[scope];
    return this.db.prepare(`SELECT 1 FROM ${table} WHERE ${col} = ? LIMIT 1`).get(id) !== undefined;
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
