/**
 * A run's log as structured records (level, message, code, fields) instead of text: lqosd returns
 * them over the bus and the LibreQoS command, the scheduler and the daemon's own log replay or
 * summarise them without parsing log lines back.
 */
import type { Log, LogFn } from './log.ts';

export type LogLevel = 'debug' | 'info' | 'warn' | 'error';

export interface LogRecord {
  level: LogLevel;
  msg: string;
  /** Machine-readable code when the message has one (e.g. `qdisc-fallback`). */
  code?: string;
  /** Everything else the message carried (JSON-safe). */
  fields?: Record<string, unknown>;
}

const LEVEL_TEXT: Record<LogLevel, string> = { debug: 'DEBUG', info: 'INFO', warn: 'WARN', error: 'ERROR' };

/** Fields as plain JSON-safe data (errors become their message). */
function plainFields(fields: object): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(fields)) out[k] = v instanceof Error ? v.message : v;
  return out;
}

/** Collects every message as a LogRecord; `onRecord` sees each one as it is logged. */
export class RecordingLog implements Log {
  readonly records: LogRecord[] = [];
  readonly debug = this.method('debug');
  readonly info = this.method('info');
  readonly warn = this.method('warn');
  readonly error = this.method('error');

  constructor(private readonly onRecord?: (r: LogRecord) => void) {}

  private method(level: LogLevel): LogFn {
    return ((a: object | string, b?: string) => {
      const record = toRecord(level, a, b);
      this.records.push(record);
      this.onRecord?.(record);
    }) as LogFn;
  }
}

function toRecord(level: LogLevel, a: object | string, b?: string): LogRecord {
  if (typeof a === 'string') return { level, msg: a };
  const { code, ...rest } = plainFields(a);
  return {
    level,
    msg: b ?? '',
    ...(typeof code === 'string' ? { code } : {}),
    ...(Object.keys(rest).length ? { fields: rest } : {}),
  };
}

/** Logs the records again through `log` (e.g. lqosd's run records in the LibreQoS command's log). */
export function replayRecords(records: readonly LogRecord[], log: Log, extra: Record<string, unknown> = {}): void {
  for (const r of records) log[r.level]({ ...extra, ...(r.code ? { code: r.code } : {}), ...r.fields }, r.msg);
}

/** `LEVEL message` lines of the records (previews for urgent issues and the scheduler status). */
export function recordLines(records: readonly LogRecord[], last = 40, minLevel: LogLevel = 'info'): string[] {
  const order: LogLevel[] = ['debug', 'info', 'warn', 'error'];
  const min = order.indexOf(minLevel);
  return records
    .filter((r) => order.indexOf(r.level) >= min)
    .slice(-last)
    .map((r) => `${LEVEL_TEXT[r.level]} ${r.msg}`);
}
