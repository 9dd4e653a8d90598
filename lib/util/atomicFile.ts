/**
 * File writes that never leave a half-written file behind: write a temporary file next to the
 * target, then rename it over the target. Used for state files, the operator's input files and
 * the config.
 */
import { randomBytes } from 'node:crypto';
import { chmodSync, copyFileSync, existsSync, mkdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';

export interface AtomicWriteOptions {
  /** File mode; default: the existing file's mode, else 0644. */
  mode?: number;
  /** Copy the current file to `<path>.bak` first. */
  backup?: boolean;
}

function tempNameFor(path: string): string {
  return `${path}.tmp-${process.pid}-${randomBytes(4).toString('hex')}`;
}

export function writeFileAtomic(path: string, data: string, opts: AtomicWriteOptions = {}): void {
  mkdirSync(dirname(path), { recursive: true });
  const exists = existsSync(path);
  const mode = opts.mode ?? (exists ? statSync(path).mode & 0o7777 : 0o644);
  if (opts.backup && exists) {
    const bak = `${path}.bak`;
    copyFileSync(path, bak);
    chmodSync(bak, mode);
  }
  const tmp = tempNameFor(path);
  try {
    writeFileSync(tmp, data, { mode, flag: 'wx' });
    chmodSync(tmp, mode); // the umask may have narrowed it
    renameSync(tmp, path);
  } catch (err) {
    rmSync(tmp, { force: true });
    throw err;
  }
}

export function copyFileAtomic(from: string, to: string): void {
  mkdirSync(dirname(to), { recursive: true });
  const tmp = tempNameFor(to);
  try {
    copyFileSync(from, tmp);
    renameSync(tmp, to);
  } catch (err) {
    rmSync(tmp, { force: true });
    throw err;
  }
}

/** The file's text, or undefined when it does not exist. */
export function readTextIfExists(path: string): string | undefined {
  try {
    return readFileSync(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
}

/** Removes the file; false when there was none. */
export function removeIfExists(path: string): boolean {
  if (!existsSync(path)) return false;
  rmSync(path);
  return true;
}
