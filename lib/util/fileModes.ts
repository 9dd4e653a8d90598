/**
 * File and directory modes of what lqos-ts keeps on disk (docs/OPERATIONS.md, "what each file holds
 * and its mode"): lqos.conf and the users file 0600, subscriber data (ShapedDevices.csv,
 * network.json, telemetry, the state files) 0640 at most, the state directory 0750 at most. These
 * helpers only ever narrow: an operator who chose a tighter mode keeps it; and a directory is
 * narrowed only when it is lqos-ts's own (ensureStateDir), never a shared one such as /etc.
 */
import { chmodSync, mkdirSync, readdirSync, statSync } from 'node:fs';

/** Subscriber data: the operator's input files, their effective copies, the telemetry database. */
export const DATA_FILE_MODE = 0o640;
/** The state directory (`state_directory`) and the directories lqos-ts creates in it. */
export const STATE_DIR_MODE = 0o750;

function modeOf(path: string): number | undefined {
  try {
    return statSync(path).mode & 0o7777;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw e;
  }
}

/** The mode to write `path` with: its current mode narrowed to `max`, or `max` for a new file. */
export function modeAtMost(path: string, max: number): number {
  const cur = modeOf(path);
  return cur === undefined ? max : cur & max;
}

/**
 * Whether the permission bits of `cur` grant more than `max`. Only the rwx bits count: setuid, setgid
 * and sticky (0o7000) grant no access, so a setgid 2750 directory is not wider than 0750.
 */
export function widerThan(cur: number, max: number): boolean {
  return (cur & 0o777 & ~max) !== 0;
}

/** `cur` with its permission bits narrowed to `max`; its setuid, setgid and sticky bits kept. */
export function narrowedMode(cur: number, max: number): number {
  return (cur & 0o7000) | (cur & 0o777 & max);
}

/** Narrows an existing file or directory to at most `max` (no-op when absent or already tighter). */
export function narrowMode(path: string, max: number): void {
  const cur = modeOf(path);
  if (cur !== undefined && widerThan(cur, max)) chmodSync(path, narrowedMode(cur, max));
}

/**
 * What lqos-ts keeps directly in the state directory (lib/config/paths.ts statePaths, the users and
 * sessions files of lib/web, the VISP token cache), with the `.bak*` backups and `.tmp-*` temp files
 * of lib/util/atomicFile.ts, the `.corrupt-<time>` copies of lib/util/recoverFile.ts, and the
 * `lost+found` of a filesystem of its own.
 */
const STATE_ENTRIES = new Set([
  'shaping',
  'debug',
  'stats',
  'cache',
  'urgent_issues.json',
  'lqusers.toml',
  'web_sessions.json',
  'first-run.token',
  'telemetry.sqlite',
  'telemetry.sqlite-wal',
  'telemetry.sqlite-shm',
  'telemetry.sqlite-journal',
  'lost+found',
]);

/**
 * The suffix lib/util/recoverFile.ts gives a damaged file it sets aside: `.corrupt-` and the time as
 * `Date.toISOString()` with `:` and `.` made `-` (`.corrupt-2026-01-02T03-04-05-678Z`).
 */
const CORRUPT_SUFFIX = /\.corrupt-[+-]?\d{4,6}-\d{2}-\d{2}T\d{2}-\d{2}-\d{2}-\d{3}Z$/;

/** An entry lqos-ts itself keeps in the state directory (or a backup / temp file / set-aside copy of one). */
export function isStateEntry(name: string): boolean {
  return STATE_ENTRIES.has(name.replace(/\.tmp-.*$/, '').replace(/\.bak(\.\d+)?$/, '').replace(CORRUPT_SUFFIX, ''));
}

/** The entries of `dir` that are not lqos-ts state (sorted). */
export function foreignEntries(dir: string): string[] {
  return readdirSync(dir)
    .filter((n) => !isStateEntry(n))
    .sort();
}

export type StateDirOutcome =
  | { action: 'created' | 'unchanged' }
  | { action: 'narrowed'; from: number }
  /** Wider than `max`, but not lqos-ts's alone (sticky, or holding other files): left as it is. */
  | { action: 'left'; mode: number; sticky: boolean; foreign: string[] };

/**
 * What ensureStateDir would do to `dir`, without doing it. The rule: lqosd narrows only a state
 * directory of its own, i.e. one it creates, or one that holds nothing but lqos-ts state
 * (isStateEntry: empty, or only `lqusers.toml`, `shaping/`, …). A shared directory (sticky, like
 * /tmp, or holding anything else, like /etc or /opt) is never chmodded.
 */
export function inspectStateDir(dir: string, max: number = STATE_DIR_MODE): StateDirOutcome {
  const cur = modeOf(dir);
  if (cur === undefined) return { action: 'created' };
  if (!widerThan(cur, max)) return { action: 'unchanged' };
  const sticky = (cur & 0o1000) !== 0;
  const foreign = foreignEntries(dir);
  if (sticky || foreign.length > 0) return { action: 'left', mode: cur, sticky, foreign };
  return { action: 'narrowed', from: cur };
}

/** Why a directory was `left` wider, e.g. "is mode 0755 and holds files that are not lqos state (a, b)". */
export function leftReason(o: Extract<StateDirOutcome, { action: 'left' }>): string {
  const list = `${o.foreign.slice(0, 5).join(', ')}${o.foreign.length > 5 ? ', …' : ''}`;
  return `is mode 0${o.mode.toString(8)} and ${o.sticky ? 'is a shared (sticky) directory' : `holds files that are not lqos state (${list})`}`;
}

/**
 * The state directory: created (and parents) with mode `max` when absent; an existing one narrowed
 * to at most `max` only when it is lqos-ts's own (inspectStateDir); else left as it is. Returns what
 * was done, so the caller can warn about a directory left wider than `max`.
 */
export function ensureStateDir(dir: string, max: number = STATE_DIR_MODE): StateDirOutcome {
  const outcome = inspectStateDir(dir, max);
  if (outcome.action === 'created') makeDir(dir, max);
  else if (outcome.action === 'narrowed') chmodSync(dir, narrowedMode(outcome.from, max)); // a setgid directory stays setgid
  return outcome;
}

/** Creates `dir` (and parents) with mode `max` when absent; an existing directory is left as it is. */
export function makeDir(dir: string, max: number = STATE_DIR_MODE): void {
  mkdirSync(dir, { recursive: true, mode: max }); // the umask may narrow it further, never widen it
}
