/** Logger of the dataplane (load, attach, detach): the caller's, or a pino logger `lqos-dataplane` (level from LQOS_DATAPLANE_LOG). */
import pino from 'pino';

export interface DataplaneLogger {
  info(msg: string): void;
  warn(msg: string): void;
}

let defaultLogger: DataplaneLogger | undefined;

export function dataplaneLogger(l?: DataplaneLogger): DataplaneLogger {
  if (l) return l;
  if (!defaultLogger) {
    const p = pino({ name: 'lqos-dataplane', level: process.env.LQOS_DATAPLANE_LOG ?? 'info' });
    defaultLogger = { info: (m) => p.info(m), warn: (m) => p.warn(m) };
  }
  return defaultLogger;
}
