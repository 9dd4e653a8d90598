/**
 * pino records as journal lines: `<N>message key=value …`, one line per record.
 *
 * A service's stderr is a journald stream with level prefixes on: a leading `<N>` (syslog priority
 * 0–7) sets the entry's PRIORITY, so `journalctl -p err` finds errors, and the line stays readable
 * in `journalctl -u lqosd`. Structured fields follow the message as `key=value`; values with spaces,
 * quotes or control characters are JSON-quoted, so every record stays one journal entry.
 */

/** pino numeric level → syslog priority (debug 7, info 6, warn 4, error 3, fatal 2). */
export function syslogPriority(level: number): number {
  if (level >= 60) return 2;
  if (level >= 50) return 3;
  if (level >= 40) return 4;
  if (level >= 30) return 6;
  return 7;
}

/** Fields pino adds that the journal records by itself (time, pid, host, identifier). */
const DROPPED = new Set(['level', 'time', 'pid', 'hostname', 'name', 'msg', 'v']);
const MAX_VALUE = 4000;

function quote(s: string): string {
  const v = s.length > MAX_VALUE ? `${s.slice(0, MAX_VALUE)}…` : s;
  return v !== '' && /^[^\s"=\\\u0000-\u001f\u007f]+$/.test(v) ? v : JSON.stringify(v);
}

function valueText(v: unknown): string {
  if (typeof v === 'string') return quote(v);
  if (typeof v === 'number' || typeof v === 'boolean' || typeof v === 'bigint') return String(v);
  if (v === null || v === undefined) return String(v);
  return quote(JSON.stringify(v));
}

/** An error serialised by pino ({type, message, stack, …}) as `err="Type: message"` (+ its stack at error level). */
function errorFields(key: string, e: Record<string, unknown>, withStack: boolean): string[] {
  const type = typeof e.type === 'string' ? e.type : 'Error';
  const out = [`${key}=${quote(`${type}: ${String(e.message ?? '')}`)}`];
  if (typeof e.code === 'string' || typeof e.code === 'number') out.push(`${key}.code=${quote(String(e.code))}`);
  if (withStack && typeof e.stack === 'string') out.push(`${key}.stack=${quote(e.stack)}`);
  return out;
}

/** One pino record (parsed JSON) → one journal line without the trailing newline. */
export function journalLine(record: Record<string, unknown>): string {
  const level = typeof record.level === 'number' ? record.level : 30;
  const msg = typeof record.msg === 'string' ? record.msg : '';
  const parts: string[] = [];
  for (const [k, v] of Object.entries(record)) {
    if (DROPPED.has(k) || v === undefined) continue;
    if ((k === 'err' || k === 'error') && v && typeof v === 'object' && 'message' in v) {
      parts.push(...errorFields(k, v as Record<string, unknown>, level >= 50));
    } else {
      parts.push(`${k}=${valueText(v)}`);
    }
  }
  const text = (msg + (parts.length ? ` ${parts.join(' ')}` : '')).replace(/[\r\n]+/g, ' ');
  return `<${syslogPriority(level)}>${text}`;
}

/** A pino destination that writes journal lines to a file descriptor, synchronously. */
export function journalDestination(write: (line: string) => void): { write(chunk: string): void } {
  return {
    write(chunk: string) {
      for (const raw of chunk.split('\n')) {
        if (!raw) continue;
        let rec: Record<string, unknown>;
        try {
          rec = JSON.parse(raw) as Record<string, unknown>;
        } catch {
          write(`<6>${raw}\n`);
          continue;
        }
        write(`${journalLine(rec)}\n`);
      }
    },
  };
}

/**
 * Whether stderr is the journal stream systemd connected (JOURNAL_STREAM = "dev:inode" of it,
 * as systemd.exec(5) documents): a redirect to a file or pipe in the unit does not count.
 */
export function stderrIsJournal(env: NodeJS.ProcessEnv, fstat: () => { dev: number; ino: number } | undefined): boolean {
  const m = /^(\d+):(\d+)$/.exec(env.JOURNAL_STREAM ?? '');
  if (!m) return false;
  const st = fstat();
  return st !== undefined && String(st.dev) === m[1] && String(st.ino) === m[2];
}
