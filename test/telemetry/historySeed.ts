/**
 * Seeds lqosd's history store (lib/telemetry/history.ts) with minute rows whose values follow
 * known formulas, so tests and the bench can compute every bucket's expected average and maximum.
 */
import type { SqliteDatabase } from '../../lib/telemetry/history.ts';

/** The row of entity `k` (0 = the totals) at minute index `i`. */
export function seedRow(i: number, k: number) {
  const downAvg = 1e6 * (1 + ((i * 7 + k * 13) % 50));
  const downMax = downAvg * 1.5 + (i % 11) * 1000;
  const p50 = 10 + ((i + k) % 30);
  return {
    samples: 60, downAvg, downMax, upAvg: downAvg / 10, upMax: downMax / 10,
    dropsDown: (i + k) % 3, dropsUp: 0, marksDown: 0, marksUp: 0,
    rttP50: p50, rttP90: p50 * 2, rttN: 6, retransDown: (i + k) % 4, retransUp: 0, tcpDown: 1000, tcpUp: 500,
  };
}

const COLS = 'ts, samples, down_avg, down_max, up_avg, up_max, drops_down, drops_up, marks_down, marks_up, rtt_p50, rtt_p90, rtt_n, retrans_down, retrans_up, tcp_down, tcp_up';
const values = (i: number, k: number, ts: number) => {
  const r = seedRow(i, k);
  return [ts, r.samples, r.downAvg, r.downMax, r.upAvg, r.upMax, r.dropsDown, r.dropsUp, r.marksDown, r.marksUp, r.rttP50, r.rttP90, r.rttN, r.retransDown, r.retransUp, r.tcpDown, r.tcpUp];
};

export interface SeedSpec {
  /** First minute (unix seconds, a multiple of 60). */
  startS: number;
  minutes: number;
  nodes?: string[];
  circuits?: string[];
  /** Minutes of rows per circuit counted back from the end (default all). */
  circuitMinutes?: number;
  /** false: no totals rows (a second call over minutes already seeded). */
  totals?: boolean;
}

/** Writes the totals row of every minute and the node / circuit rows (entity k = position + 1). Returns the rows written. */
export function seedHistory(db: SqliteDatabase, s: SeedSpec): number {
  const ph = Array(17).fill('?').join(', ');
  const total = db.prepare(`INSERT INTO totals_minute (${COLS}) VALUES (${ph})`);
  const node = db.prepare(`INSERT INTO node_minute (node, ${COLS}) VALUES (?, ${ph})`);
  const circuit = db.prepare(`INSERT INTO circuit_minute (circuit, ${COLS}) VALUES (?, ${ph})`);
  let rows = 0;
  db.transaction(() => {
    for (let i = 0; i < s.minutes; i++) {
      const ts = s.startS + i * 60;
      if (s.totals !== false) total.run(...values(i, 0, ts));
      (s.nodes ?? []).forEach((n, j) => node.run(n, ...values(i, j + 1, ts)));
      rows += (s.totals !== false ? 1 : 0) + (s.nodes?.length ?? 0);
    }
    (s.circuits ?? []).forEach((c, j) => {
      for (let i = Math.max(0, s.minutes - (s.circuitMinutes ?? s.minutes)); i < s.minutes; i++) {
        circuit.run(c, ...values(i, j + 1, s.startS + i * 60));
        rows++;
      }
    });
  })();
  return rows;
}
