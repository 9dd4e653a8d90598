/** Logger of the dataplane (load, attach, detach): the caller's, or a pino logger `lqos-dataplane` (level from LQOS_DATAPLANE_LOG). */
import { hostname } from 'node:os';
import pino from 'pino';

export interface DataplaneLogger {
  info(msg: string): void;
  warn(msg: string): void;
}

let defaultLogger: DataplaneLogger | undefined;

export function dataplaneLogger(l?: DataplaneLogger): DataplaneLogger {
  if (l) return l;
  if (!defaultLogger) {
    // pid and hostname given here: pino's defaults are read when pino loads, which LibreQoS's
    // start-up snapshot (bin/LibreQoS.snapshot.ts) would freeze at build time.
    const p = pino({ name: 'lqos-dataplane', level: process.env.LQOS_DATAPLANE_LOG ?? 'info', base: { pid: process.pid, hostname: hostname() } });
    defaultLogger = { info: (m) => p.info(m), warn: (m) => p.warn(m) };
  }
  return defaultLogger;
}
