/**
 * The logger shape the integrations use: pino's `Logger` fits, and so does a tiny test double.
 * Call styles: `log.info('text')` or `log.info({ key: value }, 'text')`.
 */
import { hideSecrets } from '../../config/secrets.ts';
import { stripAnsi } from '../../util/text.ts';

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

/** The limits of the warnings a run reports in its summary (contract with the scheduler). */
export const MAX_SUMMARY_WARNINGS = 50;
export const MAX_WARNING_CHARS = 300;

/** A logger that also keeps the text of every `warn` call, in order, without duplicates. */
export interface CollectingLogger extends IntegrationLogger {
  readonly warnings: string[];
}

function messageOf(a: unknown, b: unknown): string {
  if (typeof a === 'string') return a;
  if (typeof b === 'string') return b;
  try {
    return JSON.stringify(a) ?? '';
  } catch {
    return String(a);
  }
}

/**
 * Wraps `inner`: every call is passed on unchanged, and warnings are also kept (the run's non-fatal
 * findings, reported in the run summary). The integrations warn through `log.warn` or
 * `TopologyBuilder.warn` (which calls it), so everything they report lands here.
 */
export function collectWarnings(inner: IntegrationLogger): CollectingLogger {
  const warnings: string[] = [];
  const seen = new Set<string>();
  const warn = ((a: unknown, b?: string) => {
    const text = messageOf(a, b);
    if (text !== '' && !seen.has(text)) {
      seen.add(text);
      warnings.push(text);
    }
    (inner.warn as (a: unknown, b?: string) => void)(a, b);
  }) as LogFn;
  return { debug: inner.debug.bind(inner), info: inner.info.bind(inner), warn, error: inner.error.bind(inner), warnings };
}

/**
 * Warnings as the run summary carries them: every secret value replaced by `***`, control characters
 * and colour codes removed, each at most MAX_WARNING_CHARS, at most MAX_SUMMARY_WARNINGS (the last one
 * then says how many more the log has).
 */
export function summaryWarnings(warnings: readonly string[], secrets: readonly string[] = []): string[] {
  const clean = warnings.map((w) => {
    const t = stripAnsi(hideSecrets(w, secrets)).replace(/\s+/g, ' ').trim();
    return t.length > MAX_WARNING_CHARS ? `${t.slice(0, MAX_WARNING_CHARS - 1)}…` : t;
  });
  if (clean.length <= MAX_SUMMARY_WARNINGS) return clean;
  const kept = clean.slice(0, MAX_SUMMARY_WARNINGS - 1);
  kept.push(`… and ${clean.length - kept.length} more warnings (./LibreQoS integration <name> --dry-run prints them all)`);
  return kept;
}
