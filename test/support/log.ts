/** The tests' logger: silent unless LQOS_TEST_LOG is set. */
import { Writable } from 'node:stream';
import pino from 'pino';
import { createLogger, type Logger } from '../../lib/util/log.ts';

export const quiet = createLogger('test', process.env.LQOS_TEST_LOG ? 'debug' : 'silent');

/** A pino logger whose JSON records are kept, for asserting what was logged (level 40 = warn). */
export function capturingLogger(level = 'info'): { log: Logger; records: { level: number; msg: string; [k: string]: unknown }[] } {
  const records: { level: number; msg: string; [k: string]: unknown }[] = [];
  const sink = new Writable({
    write(chunk, _enc, done) {
      for (const line of String(chunk).split('\n').filter(Boolean)) records.push(JSON.parse(line));
      done();
    },
  });
  return { log: pino({ level }, sink) as unknown as Logger, records };
}
