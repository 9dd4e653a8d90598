/**
 * Reading a state file that may be damaged (truncated, empty, garbage): an unreadable file is moved
 * aside as `<file>.corrupt-<time>` (kept for inspection, never deleted) and, where the caller allows
 * it, the newest readable backup (`<file>.bak`, `<file>.bak.1` …, see ./atomicFile.ts) is restored
 * in its place. Every step is one warning naming the files. A missing file is not damage: it means
 * "nothing stored yet" (or deliberately removed) and is never replaced by a backup.
 */
import fs from 'node:fs';
import { backupPaths, DEFAULT_BACKUPS, writeFileAtomic } from './atomicFile.ts';
import type { Log } from './log.ts';

export interface RecoverOptions<T> {
  /** Parses the text; throws an Error whose message says what is wrong when it is not usable. */
  parse: (text: string) => T;
  /** What the file holds, for the warnings ("the urgent issue list"). */
  what: string;
  /** What happens when nothing readable is left ("starting with no urgent issues"). */
  onLoss: string;
  /** Restore the newest readable backup (default true). */
  fromBackups?: boolean;
  /** How many backups to look at (default DEFAULT_BACKUPS). */
  backups?: number;
  log?: Pick<Log, 'warn'>;
  now?: () => Date;
}

export interface Recovered<T> {
  /** The parsed content; undefined when the file is missing or nothing readable was found. */
  value?: T;
  /** The file the value came from (the file itself, or the backup restored). */
  source?: string;
  /** Where an unreadable file was moved. */
  setAside?: string;
}

/** The reason `text` of `path` cannot be used, or the parsed value. */
function tryParse<T>(parse: (text: string) => T, read: () => string | undefined): { ok: true; value: T; text: string } | { ok: false; reason: string } | undefined {
  let text: string | undefined;
  try {
    text = read();
  } catch (e) {
    return { ok: false, reason: `cannot be read: ${(e as Error).message}` };
  }
  if (text === undefined) return undefined;
  if (text.trim() === '') return { ok: false, reason: text.length === 0 ? 'the file is empty' : 'the file holds only blanks' };
  try {
    return { ok: true, value: parse(text), text };
  } catch (e) {
    return { ok: false, reason: (e as Error).message.split('\n')[0]! };
  }
}

function readIfExists(path: string): () => string | undefined {
  return () => {
    try {
      return fs.readFileSync(path, 'utf8');
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw e;
    }
  };
}

function setAside(path: string, now: Date, log?: Pick<Log, 'warn'>): string | undefined {
  const aside = `${path}.corrupt-${now.toISOString().replace(/[:.]/g, '-')}`;
  try {
    fs.renameSync(path, aside);
    return aside;
  } catch (e) {
    log?.warn(`${path} could not be moved aside to ${aside}: ${(e as Error).message}`);
    return undefined;
  }
}

/** The newest backup that parses, restored over `path` (a failed restore is only warned about). */
function restoreBackup<T>(path: string, opts: RecoverOptions<T>): { found?: { value: T; source: string }; skipped: string[] } {
  const skipped: string[] = [];
  for (const bak of backupPaths(path, opts.backups ?? DEFAULT_BACKUPS)) {
    const r = tryParse(opts.parse, readIfExists(bak));
    if (!r) continue;
    if (!r.ok) {
      skipped.push(`${bak} (${r.reason})`);
      continue;
    }
    try {
      writeFileAtomic(path, r.text, { mode: fs.statSync(bak).mode & 0o7777 });
    } catch (e) {
      opts.log?.warn(`restoring ${bak} over ${path} failed: ${(e as Error).message}; using its content for now`);
    }
    return { found: { value: r.value, source: bak }, skipped };
  }
  return { skipped };
}

/**
 * Reads and parses `path` (see the file comment). Never throws for a damaged file; the warnings
 * say what was wrong, where the file went and what is used instead.
 */
export function readRecovering<T>(path: string, opts: RecoverOptions<T>): Recovered<T> {
  const first = tryParse(opts.parse, readIfExists(path));
  if (!first) return {};
  if (first.ok) return { value: first.value, source: path };
  const aside = setAside(path, (opts.now ?? (() => new Date()))(), opts.log);
  const moved = aside ? `moved it to ${aside}` : 'left it in place';
  const head = `${path} is not a valid ${opts.what} (${first.reason}); ${moved}`;
  const restored = opts.fromBackups === false ? { skipped: [] } : restoreBackup(path, opts);
  const skipped = restored.skipped.length ? `; unreadable backups skipped: ${restored.skipped.join(', ')}` : '';
  if (restored.found) {
    opts.log?.warn(`${head} and restored the newest readable backup ${restored.found.source}${skipped}`);
    return { ...restored.found, setAside: aside };
  }
  opts.log?.warn(`${head}${opts.fromBackups === false ? '' : ' and found no readable backup'}${skipped}; ${opts.onLoss}`);
  return { setAside: aside };
}
