/**
 * Structured logging (pino): human-readable on a terminal, journal lines (`<N>message key=value`,
 * journalFormat.ts) when stderr is systemd's journal stream, JSON lines otherwise.
 * `LQOS_LOG_FORMAT=json|pretty|journal` forces a format. All write synchronously to stderr so log
 * lines keep their order with the program's output and are never lost on exit.
 *
 * Library code that only logs takes a `Log` (what pino's Logger offers and what a RecordingLog
 * implements); processes create a pino `Logger` with createLogger().
 */
import { pino, type Logger, type LevelWithSilent } from 'pino';
import { fstatSync, writeSync } from 'node:fs';
import { journalDestination, stderrIsJournal } from './journalFormat.ts';
import { loadOnDemand } from './onDemand.ts';

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

const LOG_FORMATS = ['pretty', 'json', 'journal'] as const;
type LogFormat = (typeof LOG_FORMATS)[number];

function stderrStat(): { dev: number; ino: number } | undefined {
  try {
    return fstatSync(2);
  } catch {
    return undefined;
  }
}

/** LQOS_LOG_FORMAT when set (an unknown value is reported once, on the log itself), else by where stderr goes. */
export function logFormat(env: NodeJS.ProcessEnv = process.env): { format: LogFormat; unknown?: string } {
  const asked = env.LQOS_LOG_FORMAT;
  if (asked && (LOG_FORMATS as readonly string[]).includes(asked)) return { format: asked as LogFormat };
  const format: LogFormat = process.stderr.isTTY ? 'pretty' : stderrIsJournal(env, stderrStat) ? 'journal' : 'json';
  return asked ? { format, unknown: asked } : { format };
}

export function createLogger(name: string, level: LevelWithSilent = 'info'): Logger {
  const { format, unknown } = logFormat();
  const log = createLoggerAs(format, name, level);
  if (unknown) log.warn(`LQOS_LOG_FORMAT="${unknown}" is not one of ${LOG_FORMATS.join(', ')}; logging as ${format}`);
  return log;
}

function createLoggerAs(format: LogFormat, name: string, level: LevelWithSilent): Logger {
  if (format === 'journal') {
    return pino({ name, level }, journalDestination((line) => writeSync(2, line)));
  }
  if (format === 'pretty') {
    // Loaded only for a terminal: pino-pretty costs ~20 ms of every start.
    const pretty = loadOnDemand<typeof import('pino-pretty')>('pino-pretty');
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
