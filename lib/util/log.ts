/**
 * Structured logging (pino): human-readable on a terminal, JSON lines otherwise (systemd/journald).
 * `LQOS_LOG_FORMAT=json|pretty` forces a format. Both write synchronously to stderr so log lines
 * keep their order with the program's output and are never lost on exit.
 *
 * Library code that only logs takes a `Log` (what pino's Logger offers and what a RecordingLog
 * implements); processes create a pino `Logger` with createLogger().
 */
import { pino, type Logger, type LevelWithSilent } from 'pino';
import pretty from 'pino-pretty';

export type { Logger };

export interface LogFn {
  (msg: string): void;
  (fields: object, msg: string): void;
}

/** The logging a library function needs: pino's Logger satisfies it, so does a RecordingLog. */
export interface Log {
  debug: LogFn;
  info: LogFn;
  warn: LogFn;
  error: LogFn;
}

export function createLogger(name: string, level: LevelWithSilent = 'info'): Logger {
  const format = process.env.LQOS_LOG_FORMAT ?? (process.stderr.isTTY ? 'pretty' : 'json');
  if (format === 'pretty') {
    const stream = pretty({
      destination: 2,
      sync: true,
      colorize: process.stderr.isTTY,
      ignore: 'pid,hostname,name',
      translateTime: 'HH:MM:ss.l',
      singleLine: true,
    });
    return pino({ name, level }, stream);
  }
  return pino({ name, level, base: { name } }, pino.destination({ dest: 2, sync: true }));
}
