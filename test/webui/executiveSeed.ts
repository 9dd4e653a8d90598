/**
 * Minute rows for the Executive summary's tests (lib/telemetry/history.ts tables), written with
 * chosen values so every ranking's order and figures are known exactly.
 */
import type { SqliteDatabase } from '../../lib/telemetry/history.ts';

export interface MinuteValues {
  samples?: number;
  downAvg?: number;
  downMax?: number;
  upAvg?: number;
  upMax?: number;
  rttP50?: number | null;
  rttP90?: number | null;
  rttN?: number;
  retransDown?: number;
  retransUp?: number;
  tcpDown?: number;
  tcpUp?: number;
  dropsDown?: number;
}

const COLS = 'ts, samples, down_avg, down_max, up_avg, up_max, drops_down, drops_up, marks_down, marks_up, rtt_p50, rtt_p90, rtt_n, retrans_down, retrans_up, tcp_down, tcp_up';
const vals = (ts: number, v: MinuteValues) => [
  ts, v.samples ?? 60, v.downAvg ?? 0, v.downMax ?? 0, v.upAvg ?? 0, v.upMax ?? 0, v.dropsDown ?? 0, 0, 0, 0,
  v.rttP50 ?? null, v.rttP90 ?? null, v.rttN ?? 0, v.retransDown ?? 0, v.retransUp ?? 0, v.tcpDown ?? 0, v.tcpUp ?? 0,
];

/** Inserts (or replaces) one minute row: `entity` = node path / Circuit ID (ignored for totals). */
export function putMinute(db: SqliteDatabase, table: 'totals' | 'node' | 'circuit', entity: string, ts: number, v: MinuteValues): void {
  const ph = Array(17).fill('?').join(', ');
  if (table === 'totals') db.prepare(`INSERT OR REPLACE INTO totals_minute (${COLS}) VALUES (${ph})`).run(...vals(ts, v));
  else db.prepare(`INSERT OR REPLACE INTO ${table}_minute (${table}, ${COLS}) VALUES (?, ${ph})`).run(entity, ...vals(ts, v));
}
