/**
 * The Executive summary's queries over the per-minute history (./history.ts), on the store's own
 * connection. Every ranking is defined as one GROUP BY in SQLite with a LIMIT: the plan in force is
 * passed in as JSON (json_each) and drives the join, so each node / circuit reads only its own rows of
 * the range through the (entity, ts) primary key. Results are bounded (rules.*Limit rows per table).
 * The API reads in pieces (a few nodes or circuits over at most a few hours per statement, yielding
 * to the event loop in between: a 7-day range is ~600 k node rows, one statement of it held lqosd's
 * event loop for ~0.4 s) and must give the one-query definitions' rows in the same order: nodes through
 * executiveNodesInPieces() ~ executiveNodes() (the figures equal up to the order of floating-point
 * additions, so two nodes tied to the last bit could swap), circuits through ./executiveHours.ts
 * (hours kept between requests) = executiveCeilings() (integer counts and maxima: exact).
 */
import type { ExecutiveCeilingRow, ExecutiveNodeLoad, ExecutiveRules, ExecutiveSiteRow, ExecutiveTotals } from '../api/executive.ts';
import type { SqliteDatabase } from './history.ts';

export const EXECUTIVE_RULES: ExecutiveRules = {
  siteLimit: 10,
  circuitLimit: 20,
  asnLimit: 10,
  minRttCaptures: 6,
  minTcpPackets: 1000,
  ceilingPct: 95,
  minActiveMinutes: 10,
};

/** [from, to): unix seconds of minute starts. */
export interface ExecutiveWindow {
  from: number;
  to: number;
}

/** A node of the plan in force: path and ceilings (Mbps). */
export interface PlanNodeCeil {
  path: string;
  downMbps: number;
  upMbps: number;
}

/** A circuit of the plan in force and its download ceil (Mbps). */
export interface PlanCircuitCeil {
  id: string;
  downMbps: number;
}

/** Totals over the window; null when it holds no totals row. */
export function executiveTotals(db: SqliteDatabase, w: ExecutiveWindow): ExecutiveTotals | null {
  const agg = db
    .prepare('SELECT COUNT(*) AS m, SUM(samples) AS n, SUM(down_avg * samples) AS ds, SUM(up_avg * samples) AS us FROM totals_minute WHERE ts >= ? AND ts < ?')
    .get(w.from, w.to) as { m: number; n: number | null; ds: number | null; us: number | null };
  if (agg.m === 0) return null;
  // SQLite: the bare column `ts` comes from the row holding the MAX().
  const peak = (col: 'down_max' | 'up_max') =>
    db.prepare(`SELECT MAX(${col}) AS v, ts FROM totals_minute WHERE ts >= ? AND ts < ?`).get(w.from, w.to) as { v: number; ts: number };
  const down = peak('down_max');
  const up = peak('up_max');
  const n = Math.max(1, agg.n ?? 0);
  return {
    minutes: agg.m,
    downAvgBps: Math.round((agg.ds ?? 0) / n),
    upAvgBps: Math.round((agg.us ?? 0) / n),
    downPeakBps: Math.round(down.v),
    downPeakAt: down.ts,
    upPeakBps: Math.round(up.v),
    upPeakAt: up.ts,
  };
}

interface NodeAgg {
  kind: 'rtt' | 'retrans' | 'load';
  node: string;
  dceil: number;
  uceil: number;
  r50: number | null;
  r90: number | null;
  rn: number;
  rd: number;
  ru: number;
  pd: number;
  pu: number;
  dmax: number;
  umax: number;
}

// One scan of node_minute (plan-driven, CROSS JOIN keeps the plan as the outer loop), three rankings.
const NODE_SQL = `
WITH plan(node, dceil, uceil) AS MATERIALIZED (SELECT value->>0, value->>1, value->>2 FROM json_each(?)),
agg AS MATERIALIZED (
  SELECT p.node AS node, p.dceil AS dceil, p.uceil AS uceil,
    SUM(m.rtt_p50 * m.rtt_n) AS r50, SUM(m.rtt_p90 * m.rtt_n) AS r90, SUM(m.rtt_n) AS rn,
    SUM(m.retrans_down) AS rd, SUM(m.retrans_up) AS ru, SUM(m.tcp_down) AS pd, SUM(m.tcp_up) AS pu,
    MAX(m.down_max) AS dmax, MAX(m.up_max) AS umax
  FROM plan p CROSS JOIN node_minute m ON m.node = p.node AND m.ts >= ? AND m.ts < ?
  GROUP BY p.node)
SELECT * FROM (SELECT 'rtt' AS kind, 1 AS k, row_number() OVER (ORDER BY r50 / rn DESC, node) AS rk, * FROM agg WHERE rn >= ? AND r50 IS NOT NULL ORDER BY rk LIMIT ?)
UNION ALL
SELECT * FROM (SELECT 'retrans' AS kind, 2 AS k, row_number() OVER (ORDER BY (rd + ru) * 1.0 / (pd + pu) DESC, node) AS rk, * FROM agg WHERE pd + pu >= ? AND rd + ru > 0 ORDER BY rk LIMIT ?)
UNION ALL
SELECT * FROM (SELECT 'load' AS kind, 3 AS k, row_number() OVER (ORDER BY max(dmax / dceil, umax / uceil) DESC, node) AS rk, * FROM agg WHERE dceil > 0 AND uceil > 0 AND dmax + umax > 0 ORDER BY rk LIMIT ?)
ORDER BY k, rk`;

const share = (part: number, whole: number): number | null => (whole > 0 ? (100 * part) / whole : null);

function siteRow(r: NodeAgg, name: string): ExecutiveSiteRow {
  return {
    path: r.node,
    name,
    rttP50Ms: r.rn > 0 && r.r50 !== null ? r.r50 / r.rn : null,
    rttP90Ms: r.rn > 0 && r.r90 !== null ? r.r90 / r.rn : null,
    rttCaptures: r.rn,
    retransPct: share(r.rd + r.ru, r.pd + r.pu),
    retransDownPct: share(r.rd, r.pd),
    retransUpPct: share(r.ru, r.pu),
    tcpPackets: r.pd + r.pu,
  };
}

function loadRow(r: NodeAgg, name: string): ExecutiveNodeLoad {
  return {
    path: r.node,
    name,
    planDownMbps: r.dceil / 1e6,
    planUpMbps: r.uceil / 1e6,
    peakDownBps: Math.round(r.dmax),
    peakUpBps: Math.round(r.umax),
    downPct: (100 * r.dmax) / r.dceil,
    upPct: (100 * r.umax) / r.uceil,
  };
}

/**
 * Worst sites by RTT and by retransmits, and the nodes whose peak is the largest share of their plan,
 * in one statement over the window (the definition; the API reads executiveNodesInPieces()).
 */
export function executiveNodes(
  db: SqliteDatabase,
  w: ExecutiveWindow,
  nodes: readonly PlanNodeCeil[],
  nameOf: (path: string) => string,
  rules: ExecutiveRules = EXECUTIVE_RULES,
): { worstRtt: ExecutiveSiteRow[]; worstRetransmits: ExecutiveSiteRow[]; oversubscribed: ExecutiveNodeLoad[] } {
  const plan = JSON.stringify(nodes.map((n) => [n.path, n.downMbps * 1e6, n.upMbps * 1e6]));
  const lim = rules.siteLimit;
  const rows = db.prepare(NODE_SQL).all(plan, w.from, w.to, rules.minRttCaptures, lim, rules.minTcpPackets, lim, lim) as NodeAgg[];
  return nodeTables(rows, nameOf);
}

// The same aggregates as NODE_SQL's `agg`, for some nodes over part of the window (no ranking).
const NODE_PIECE_SQL = `
WITH plan(node) AS MATERIALIZED (SELECT value FROM json_each(?))
SELECT p.node AS node,
  SUM(m.rtt_p50 * m.rtt_n) AS r50, SUM(m.rtt_p90 * m.rtt_n) AS r90, SUM(m.rtt_n) AS rn,
  SUM(m.retrans_down) AS rd, SUM(m.retrans_up) AS ru, SUM(m.tcp_down) AS pd, SUM(m.tcp_up) AS pu,
  MAX(m.down_max) AS dmax, MAX(m.up_max) AS umax
FROM plan p CROSS JOIN node_minute m ON m.node = p.node AND m.ts >= ? AND m.ts < ?
GROUP BY p.node`;

type NodePiece = Omit<NodeAgg, 'kind' | 'dceil' | 'uceil'>;

/** How the API reads the window: nodes and circuits per statement, seconds of the window per statement. */
export interface ReadPieces {
  entities: number;
  seconds: number;
}

export const READ_PIECES: ReadPieces = { entities: 8, seconds: 6 * 3600 };

/** [from, to) cut into pieces of at most `seconds`. Pure. */
export function timeSlices(from: number, to: number, seconds: number): [number, number][] {
  if (!(seconds > 0)) throw new RangeError(`timeSlices: seconds must be positive, not ${seconds}`);
  const out: [number, number][] = [];
  for (let a = from; a < to; a += seconds) out.push([a, Math.min(to, a + seconds)]);
  return out;
}

/**
 * Calls `read(group, from, to)` for every group of `entities` items (at least one) and every slice,
 * letting the event loop run (timers, the bus, other requests) between two calls.
 */
export async function readInPieces<T>(
  items: readonly T[],
  entities: number,
  slices: readonly [number, number][],
  read: (group: readonly T[], from: number, to: number) => void,
): Promise<void> {
  const step = Math.max(1, Math.floor(entities));
  let first = true;
  for (let s = 0; s < items.length; s += step) {
    const group = items.slice(s, s + step);
    for (const [from, to] of slices) {
      if (!first) await new Promise((resolve) => setImmediate(resolve));
      first = false;
      read(group, from, to);
    }
  }
}

/** SQL's SUM over pieces: NULL (no value in any row) stays null. */
const addNullable = (a: number | null, b: number | null): number | null => (a === null ? b : b === null ? a : a + b);

/** SQLite's BINARY order of two texts (their UTF-8 bytes). */
function binaryOrder(a: string, b: string): number {
  return a === b ? 0 : Buffer.compare(Buffer.from(a), Buffer.from(b));
}

/** NODE_SQL's three rankings over the aggregates of the whole window. Pure. */
export function rankNodes(aggs: readonly NodeAgg[], rules: ExecutiveRules): NodeAgg[] {
  const top = (kind: NodeAgg['kind'], keep: (r: NodeAgg) => boolean, key: (r: NodeAgg) => number): NodeAgg[] =>
    aggs
      .filter(keep)
      .map((r) => ({ r, k: key(r) }))
      .sort((a, b) => (a.k === b.k ? binaryOrder(a.r.node, b.r.node) : b.k - a.k))
      .slice(0, rules.siteLimit)
      .map(({ r }) => ({ ...r, kind }));
  return [
    ...top('rtt', (r) => r.rn >= rules.minRttCaptures && r.r50 !== null, (r) => r.r50! / r.rn),
    ...top('retrans', (r) => r.pd + r.pu >= rules.minTcpPackets && r.rd + r.ru > 0, (r) => (r.rd + r.ru) / (r.pd + r.pu)),
    ...top('load', (r) => r.dceil > 0 && r.uceil > 0 && r.dmax + r.umax > 0, (r) => Math.max(r.dmax / r.dceil, r.umax / r.uceil)),
  ];
}

/**
 * executiveNodes() read in pieces (READ_PIECES: a few nodes over a few hours per statement, the
 * event loop free in between), added up and ranked here: the same tables.
 */
export async function executiveNodesInPieces(
  db: SqliteDatabase,
  w: ExecutiveWindow,
  nodes: readonly PlanNodeCeil[],
  nameOf: (path: string) => string,
  rules: ExecutiveRules = EXECUTIVE_RULES,
  pieces: ReadPieces = READ_PIECES,
): Promise<{ worstRtt: ExecutiveSiteRow[]; worstRetransmits: ExecutiveSiteRow[]; oversubscribed: ExecutiveNodeLoad[] }> {
  const sum = new Map<string, NodeAgg>();
  const statement = db.prepare(NODE_PIECE_SQL);
  await readInPieces(nodes, pieces.entities, timeSlices(w.from, w.to, pieces.seconds), (some, from, to) => {
    for (const p of statement.all(JSON.stringify(some.map((n) => n.path)), from, to) as NodePiece[]) {
      const a = sum.get(p.node);
      if (!a) {
        const n = some.find((x) => x.path === p.node)!;
        sum.set(p.node, { ...p, kind: 'load', dceil: n.downMbps * 1e6, uceil: n.upMbps * 1e6 });
        continue;
      }
      a.r50 = addNullable(a.r50, p.r50);
      a.r90 = addNullable(a.r90, p.r90);
      a.rn += p.rn;
      a.rd += p.rd;
      a.ru += p.ru;
      a.pd += p.pd;
      a.pu += p.pu;
      a.dmax = Math.max(a.dmax, p.dmax);
      a.umax = Math.max(a.umax, p.umax);
    }
  });
  return nodeTables(rankNodes([...sum.values()], rules), nameOf);
}

/** The three tables of ranked node rows. */
function nodeTables(rows: readonly NodeAgg[], nameOf: (path: string) => string): { worstRtt: ExecutiveSiteRow[]; worstRetransmits: ExecutiveSiteRow[]; oversubscribed: ExecutiveNodeLoad[] } {
  const of = (k: NodeAgg['kind']) => rows.filter((r) => r.kind === k);
  return {
    worstRtt: of('rtt').map((r) => siteRow(r, nameOf(r.node))),
    worstRetransmits: of('retrans').map((r) => siteRow(r, nameOf(r.node))),
    oversubscribed: of('load').map((r) => loadRow(r, nameOf(r.node))),
  };
}

const CIRCUIT_SQL = `
WITH plan(circuit, ceil) AS MATERIALIZED (SELECT key, value FROM json_each(?))
SELECT p.circuit AS circuit, p.ceil AS ceil, COUNT(*) AS active, SUM(m.down_max >= ? * p.ceil) AS atc, MAX(m.down_max) AS peak
FROM plan p CROSS JOIN circuit_minute m ON m.circuit = p.circuit AND m.ts >= ? AND m.ts < ?
WHERE m.down_max > 0 OR m.up_max > 0
GROUP BY p.circuit
HAVING atc > 0 AND active >= ?
ORDER BY atc * 1.0 / active DESC, atc DESC, p.circuit
LIMIT ?`;

/**
 * Circuits by the share of their minutes with traffic whose peak download reached rules.ceilingPct
 * of the download ceil, in one query over the window: the definition ./executiveHours.ts (what the
 * API uses, hours kept between requests) must equal. `name` / `parent` come from the caller (the plan).
 */
export function executiveCeilings(
  db: SqliteDatabase,
  w: ExecutiveWindow,
  circuits: readonly PlanCircuitCeil[],
  rules: ExecutiveRules = EXECUTIVE_RULES,
): Omit<ExecutiveCeilingRow, 'name' | 'parent'>[] {
  const plan: Record<string, number> = {};
  for (const c of circuits) if (c.downMbps > 0) plan[c.id] = c.downMbps * 1e6;
  const rows = db
    .prepare(CIRCUIT_SQL)
    .all(JSON.stringify(plan), rules.ceilingPct / 100, w.from, w.to, rules.minActiveMinutes, rules.circuitLimit) as { circuit: string; ceil: number; active: number; atc: number; peak: number }[];
  return rows.map((r) => ({
    id: r.circuit,
    ceilDownMbps: r.ceil / 1e6,
    activeMinutes: r.active,
    atCeilingMinutes: r.atc,
    sharePct: (100 * r.atc) / r.active,
    peakDownBps: Math.round(r.peak),
  }));
}

export type CeilingRow = Omit<ExecutiveCeilingRow, 'name' | 'parent'>;

/** CIRCUIT_SQL's order: share of minutes at the ceiling, then those minutes, then the Circuit ID. */
export function byCeilingShare(a: CeilingRow, b: CeilingRow): number {
  const share = (r: CeilingRow) => r.atCeilingMinutes / r.activeMinutes;
  return share(b) - share(a) || b.atCeilingMinutes - a.atCeilingMinutes || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0);
}
