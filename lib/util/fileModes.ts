/**
 * File and directory modes of what lqos-ts keeps on disk (docs/OPERATIONS.md, "what each file holds
 * and its mode"): lqos.conf and the users file 0600, subscriber data (ShapedDevices.csv,
 * network.json, telemetry, the state files) 0640 at most, the state directory 0750 at most. These
 * helpers only ever narrow: an operator who chose a tighter mode keeps it.
 */
import { chmodSync, mkdirSync, statSync } from 'node:fs';

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

/** Narrows an existing file or directory to at most `max` (no-op when absent or already tighter). */
export function narrowMode(path: string, max: number): void {
  const cur = modeOf(path);
  if (cur !== undefined && (cur & ~max) !== 0) chmodSync(path, cur & max);
}

/**
 * Creates `dir` (and parents) with mode `max`, or narrows an existing one to at most `max`. A sticky
 * directory (a shared one like /tmp) is never ours to narrow and is left as it is.
 */
export function ensureDirAtMost(dir: string, max: number = STATE_DIR_MODE): void {
  const cur = modeOf(dir);
  if (cur === undefined) makeDir(dir, max);
  else if ((cur & 0o1000) === 0) narrowMode(dir, max);
}

/** Creates `dir` (and parents) with mode `max` when absent; an existing directory is left as it is. */
export function makeDir(dir: string, max: number = STATE_DIR_MODE): void {
  mkdirSync(dir, { recursive: true, mode: max }); // the umask may narrow it further, never widen it
}
