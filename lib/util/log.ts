/**
 * Structured logging (pino): human-readable on a terminal, JSON lines otherwise (systemd/journald).
 * `LQOS_LOG_FORMAT=json|pretty` forces a format. Both write synchronously to stderr so log lines
 * keep their order with the program's output and are never lost on exit.
 */
import { pino, type Logger, type LevelWithSilent } from 'pino';
import pretty from 'pino-pretty';

export type { Logger };

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
