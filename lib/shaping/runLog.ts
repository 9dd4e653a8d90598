/**
 * lqosd's record of one shaping run, kept small for the bus: a `submit_plan` reply at ~40k
 * circuits with every debug line would pass the bus's reply cap. Debug lines are not kept (the
 * planned commands and mappings are in the debug files, `debug/linux_tc.txt` and
 * `debug/ip_mappings.txt`); the rest goes to `debug/lqosd_run.log` in full, and the reply carries
 * at most MAX_REPLY_RECORDS of it (the first ones and the last ones, with a note in between).
 */
import { dirname, join } from 'node:path';
import type { StatePaths } from '../config/paths.ts';
import { writeFileAtomic } from '../util/atomicFile.ts';
import type { Log, LogFn } from '../util/log.ts';
import { RecordingLog, type LogLevel, type LogRecord } from '../util/logRecords.ts';

/** Records a reply carries at most (plus the note about the rest). */
export const MAX_REPLY_RECORDS = 400;
/** Of those, the last ones (the run's outcome) are always kept. */
const TAIL_RECORDS = 40;

/** Where a run's full log and its debug output are. */
export interface RunLogFiles {
  /** Every info/warning/error line of the run. */
  log: string;
  /** The planned `tc -batch` commands. */
  tc: string;
  /** The planned IP mappings. */
  mappings: string;
}

export function runLogFiles(paths: Pick<StatePaths, 'linuxTc' | 'mappings'>): RunLogFiles {
  return { log: join(dirname(paths.linuxTc), 'lqosd_run.log'), tc: paths.linuxTc, mappings: paths.mappings };
}

/** A Log that keeps every record but debug ones (only counted); `onRecord` sees the kept ones. */
export class RunLog implements Log {
  private readonly rec: RecordingLog;
  debugLines = 0;
  readonly debug: LogFn = (() => void this.debugLines++) as LogFn;
  readonly info: LogFn;
  readonly warn: LogFn;
  readonly error: LogFn;

  constructor(onRecord?: (r: LogRecord) => void) {
    this.rec = new RecordingLog(onRecord);
    this.info = this.rec.info;
    this.warn = this.rec.warn;
    this.error = this.rec.error;
  }

  get records(): LogRecord[] {
    return this.rec.records;
  }
}

const TEXT: Record<LogLevel, string> = { debug: 'DEBUG', info: 'INFO ', warn: 'WARN ', error: 'ERROR' };

/** The records as text lines (with their code and fields), for the full log file. */
export function recordsText(records: readonly LogRecord[], at: Date): string {
  const head = `# lqosd shaping run of ${at.toISOString()}: ${records.length} line(s)\n`;
  return head + records.map((r) => `${TEXT[r.level]} ${r.code ? `[${r.code}] ` : ''}${r.msg}${r.fields ? ` ${JSON.stringify(r.fields)}` : ''}`).join('\n') + '\n';
}

/**
 * At most `max` records in their order: the first ones and the last TAIL_RECORDS, with a warning
 * in between saying how many (and how many warnings/errors) were left out and where they are.
 */
export function capRecords(records: readonly LogRecord[], files: RunLogFiles, max = MAX_REPLY_RECORDS): { records: LogRecord[]; omitted: number } {
  if (records.length <= max) return { records: [...records], omitted: 0 };
  const tail = Math.min(TAIL_RECORDS, max);
  const head = records.slice(0, max - tail);
  const left = records.slice(max - tail, records.length - tail);
  const count = (l: LogLevel) => left.filter((r) => r.level === l).length;
  const note: LogRecord = {
    level: 'warn',
    code: 'records-omitted',
    msg: `${left.length} more line(s) of this run (${count('warn')} warning(s), ${count('error')} error(s)) are not in this reply; the full log is in ${files.log}`,
    fields: { omitted: left.length, logFile: files.log },
  };
  return { records: [...head, note, ...records.slice(records.length - tail)], omitted: left.length };
}

/** Writes the full log; a failure is returned as a message, never thrown (the run's result stands). */
export function writeRunLog(files: RunLogFiles, records: readonly LogRecord[], at: Date): string | undefined {
  try {
    writeFileAtomic(files.log, recordsText(records, at), { mode: 0o640 });
    return undefined;
  } catch (e) {
    return `the run's log could not be written to ${files.log}: ${(e as Error).message}`;
  }
}
