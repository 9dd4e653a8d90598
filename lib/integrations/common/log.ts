/**
 * The logger shape the integrations use: pino's `Logger` fits, and so does a tiny test double.
 * Call styles: `log.info('text')` or `log.info({ key: value }, 'text')`.
 */
export interface LogFn {
  (msg: string): void;
  (obj: object, msg?: string): void;
}
export interface IntegrationLogger {
  debug: LogFn;
  info: LogFn;
  warn: LogFn;
  error: LogFn;
}

const noop: LogFn = () => {};
/** A logger that drops everything. */
export const silentLogger: IntegrationLogger = { debug: noop, info: noop, warn: noop, error: noop };
