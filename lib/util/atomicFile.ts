/**
 * Crash-safe file writes for state files, the operator's input files and the config:
 *
 *   1. the new content goes to a uniquely named temp file next to the target and is fsynced;
 *   2. (with backups) the older backups are shifted by renames and the current file is hard-linked
 *      as `<file>.bak` — no disk space needed, and nothing happens before step 1 succeeded;
 *   3. the temp file is renamed over the target and the directory is fsynced.
 *
 * A power cut leaves either the old or the new file, never an empty or half-written one (except
 * with `durable: false`, for files only people read: no fsyncs, still atomic for readers). A full
 * disk fails in step 1: the target and its backups are untouched, the temp file is removed and the
 * error (DiskFullError) names the file and the mount that is full.
 *
 * Backups: `<file>.bak` is the newest, then `<file>.bak.1` … `<file>.bak.<N-1>` (older).
 *
 * File system calls go through the `fs` module object so tests can spy on them (node:test mock).
 */
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import { pidAlive } from './processes.ts';

/** Backups kept when `backup: true`. */
export const DEFAULT_BACKUPS = 5;

export interface AtomicWriteOptions {
  /** File mode; default: the existing file's mode, else 0644. */
  mode?: number;
  /**
   * Keep rotated backups of the file being replaced: `true` keeps DEFAULT_BACKUPS, a number keeps
   * that many (`<file>.bak` newest, `<file>.bak.1` … older). Default: none.
   */
  backup?: boolean | number;
  /**
   * false: replaced atomically (readers see the old file or the new one, never a mix) but not
   * flushed to disk (no fsync of the file or its directory): after a power cut the file may be
   * the old one or empty. For files a run only writes for the operator to read (the debug
   * outputs), never for state read back. Default true.
   */
  durable?: boolean;
}

/**
 * What a file is written from: a string, bytes, or an iterable of string chunks (a large file —
 * e.g. queuingStructure.json, tens of MB at 50k circuits — streamed to the temp file without ever
 * being one string in memory). The chunks are concatenated as they are; the iterable is consumed once.
 */
export type AtomicData = string | Uint8Array | Iterable<string>;

/**
 * Small chunks are gathered up to this many UTF-16 units before each write: few syscalls, and every
 * string stays below V8's large-object size (128 KB), so it dies young instead of piling up in the
 * old generation until the next full GC.
 */
const CHUNK_UNITS = 1 << 16;

/** Writes `data` at the file position of `fd` (through fs.writeFileSync, which tests can spy on). */
function writeData(fd: number, data: AtomicData): void {
  if (typeof data === 'string' || data instanceof Uint8Array) {
    fs.writeFileSync(fd, data);
    return;
  }
  let pending = '';
  for (const chunk of data) {
    if (pending.length + chunk.length < CHUNK_UNITS) {
      pending += chunk;
      continue;
    }
    if (pending.length > 0) fs.writeFileSync(fd, pending);
    pending = '';
    if (chunk.length >= CHUNK_UNITS) fs.writeFileSync(fd, chunk);
    else pending = chunk;
  }
  if (pending.length > 0) fs.writeFileSync(fd, pending);
}

/** A write that failed; `path` and everything kept for it are unchanged. `code` is the errno code. */
export class AtomicWriteError extends Error {
  readonly code: string | undefined;
  constructor(
    readonly path: string,
    message: string,
    cause: unknown,
  ) {
    super(message, { cause });
    this.name = 'AtomicWriteError';
    this.code = (cause as NodeJS.ErrnoException | undefined)?.code;
  }
}

/** The disk (or the quota) holding `path` is full. */
export class DiskFullError extends AtomicWriteError {
  constructor(
    path: string,
    /** The mount point of the full file system. */
    readonly mount: string,
    message: string,
    cause: unknown,
  ) {
    super(path, message, cause);
    this.name = 'DiskFullError';
  }
}

const DISK_FULL = new Set(['ENOSPC', 'EDQUOT']);

/** True for "no space left on device" and "disk quota exceeded". */
export function isDiskFull(err: unknown): boolean {
  return DISK_FULL.has((err as NodeJS.ErrnoException | undefined)?.code ?? '');
}

/** `<file>.bak`, `<file>.bak.1` … `<file>.bak.<n-1>`: newest first. */
export function backupPaths(path: string, n: number = DEFAULT_BACKUPS): string[] {
  return Array.from({ length: Math.max(0, n) }, (_, i) => (i === 0 ? `${path}.bak` : `${path}.bak.${i}`));
}

function backupCount(opts: AtomicWriteOptions): number {
  if (opts.backup === true) return DEFAULT_BACKUPS;
  if (typeof opts.backup === 'number') return Math.max(0, Math.floor(opts.backup));
  return 0;
}

const TEMP_MARK = '.tmp-';

function tempNameFor(path: string): string {
  return `${path}${TEMP_MARK}${process.pid}-${randomBytes(4).toString('hex')}`;
}

function errnoCode(e: unknown): string | undefined {
  return (e as NodeJS.ErrnoException | undefined)?.code;
}

/** Mount point holding `dir` (longest matching entry of /proc/self/mountinfo), else `dir`. */
export function mountOf(dir: string): string {
  let real = resolve(dir);
  try {
    real = fs.realpathSync(dir);
  } catch {
    // keep the resolved path
  }
  try {
    let best = '';
    for (const line of fs.readFileSync('/proc/self/mountinfo', 'utf8').split('\n')) {
      // Field 5 is the mount point, with spaces etc. written as octal escapes.
      const mp = line.split(' ')[4]?.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8)));
      if (!mp) continue;
      const under = mp === '/' || real === mp || real.startsWith(`${mp}/`);
      if (under && mp.length >= best.length) best = mp;
    }
    return best || real;
  } catch {
    return real;
  }
}

function freeText(dir: string): string {
  try {
    const s = fs.statfsSync(dir);
    return `${Math.floor((Number(s.bavail) * Number(s.bsize)) / 1024)} KiB free`;
  } catch {
    return 'free space unknown';
  }
}

type Step = 'preparing its directory' | 'writing a temp file next to it' | 'rotating its backups' | 'renaming the temp file over it';

/** The error to throw for a write of `path` that failed at `step` (`path` itself is unchanged). */
function writeError(path: string, cause: unknown, step: Step, backups: boolean): AtomicWriteError {
  const kept =
    backups && (step === 'rotating its backups' || step === 'renaming the temp file over it')
      ? `${path} is unchanged (its backups may have been shifted by one: ${path}.bak.1 is the previous ${path}.bak)`
      : `${path} and its backups are unchanged`;
  if (isDiskFull(cause)) {
    const dir = dirname(path);
    const mount = mountOf(dir);
    const why = errnoCode(cause) === 'EDQUOT' ? 'the disk quota' : 'the disk';
    return new DiskFullError(
      path,
      mount,
      `cannot write ${path}: ${why} holding ${dir} (mount ${mount}, ${freeText(dir)}) is full (${errnoCode(cause)}); ` +
        `${kept} — free space on ${mount} and try again`,
      cause,
    );
  }
  return new AtomicWriteError(path, `cannot write ${path} (${step}): ${(cause as Error)?.message ?? String(cause)}; ${kept}`, cause);
}

/** Writes all of `data` to a new file `tmp` (exclusive create) and fsyncs it (unless not `durable`). */
function writeTemp(tmp: string, data: AtomicData, mode: number, owner: { uid: number; gid: number } | undefined, durable: boolean): void {
  const fd = fs.openSync(tmp, 'wx', mode);
  try {
    writeData(fd, data);
    fs.fchmodSync(fd, mode); // the umask may have narrowed it
    if (owner) {
      try {
        fs.fchownSync(fd, owner.uid, owner.gid);
      } catch {
        // keep our own ownership
      }
    }
    if (durable) fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
}

/** Flushes the directory entries (the rename) to disk; file systems without it are skipped. */
export function fsyncDirectory(dir: string): void {
  let fd: number;
  try {
    fd = fs.openSync(dir, 'r');
  } catch {
    return;
  }
  try {
    fs.fsyncSync(fd);
  } catch (e) {
    if (!['EINVAL', 'ENOTSUP', 'EOPNOTSUPP', 'EISDIR', 'EBADF'].includes(errnoCode(e) ?? '')) throw e;
  } finally {
    fs.closeSync(fd);
  }
}

/** Never widens: each backup keeps at most the bits of `mode`. */
function narrowMode(path: string, mode: number): void {
  try {
    const cur = fs.statSync(path).mode & 0o7777;
    if ((cur & ~mode) !== 0) fs.chmodSync(path, cur & mode);
  } catch (e) {
    if (errnoCode(e) !== 'ENOENT') throw e;
  }
}

/**
 * Makes the current file the newest backup `<file>.bak`, shifting `<file>.bak.i` → `<file>.bak.i+1`
 * (the oldest falls off). The new backup is made first under a temp name (a hard link, which needs
 * no data blocks; a copy where links are not supported), so a failure there leaves every backup as
 * it was; the shifts and the final rename need no space.
 */
function rotateBackups(path: string, n: number, explicitMode: number | undefined): void {
  const names = backupPaths(path, n);
  const fresh = `${names[0]!}${TEMP_MARK}${process.pid}-${randomBytes(4).toString('hex')}`;
  try {
    fs.linkSync(path, fresh);
  } catch (e) {
    if (!['EPERM', 'ENOTSUP', 'EOPNOTSUPP', 'EXDEV', 'EMLINK'].includes(errnoCode(e) ?? '')) throw e;
    try {
      fs.copyFileSync(path, fresh);
    } catch (copyErr) {
      fs.rmSync(fresh, { force: true });
      throw copyErr;
    }
  }
  try {
    for (let i = names.length - 2; i >= 0; i--) {
      try {
        fs.renameSync(names[i]!, names[i + 1]!);
      } catch (e) {
        if (errnoCode(e) !== 'ENOENT') throw e;
      }
    }
    fs.renameSync(fresh, names[0]!); // with n = 1 this replaces the single backup
  } catch (e) {
    fs.rmSync(fresh, { force: true });
    throw e;
  }
  if (explicitMode !== undefined) for (const b of names) narrowMode(b, explicitMode);
}

/** Removes temp files of this target left by processes that no longer exist (a crash mid-write). */
function removeStaleTemps(path: string): void {
  const prefix = `${basename(path)}${TEMP_MARK}`;
  let names: string[];
  try {
    names = fs.readdirSync(dirname(path)).filter((n) => n.startsWith(prefix));
  } catch {
    return;
  }
  for (const name of names) {
    const pid = Number(/^(\d+)-[0-9a-f]{8}$/.exec(name.slice(prefix.length))?.[1]);
    if (!Number.isSafeInteger(pid) || pid === process.pid || pidAlive(pid)) continue;
    fs.rmSync(join(dirname(path), name), { force: true });
  }
}


function currentFile(path: string): fs.Stats | undefined {
  try {
    return fs.statSync(path);
  } catch (e) {
    if (errnoCode(e) === 'ENOENT') return undefined;
    throw e;
  }
}

/** A temp file written in full and fsynced, waiting to be renamed over its target. */
interface Prepared {
  path: string;
  tmp: string;
  /** Backups to keep (0: none, or no current file to keep). */
  backups: number;
  explicitMode?: number;
  /** Flushed to disk (the temp file was fsynced; the directory is, after the rename). */
  durable: boolean;
}

/** Writes the temp file of one target (steps 1 of the file comment); nothing visible changes. */
function prepare(path: string, data: AtomicData, opts: AtomicWriteOptions): Prepared {
  let tmp: string | undefined;
  let step: Step = 'preparing its directory';
  try {
    fs.mkdirSync(dirname(path), { recursive: true });
    removeStaleTemps(path);
    const cur = currentFile(path);
    const mode = opts.mode ?? (cur ? cur.mode & 0o7777 : 0o644);
    const owner = cur && process.getuid?.() === 0 ? { uid: cur.uid, gid: cur.gid } : undefined;
    step = 'writing a temp file next to it';
    tmp = tempNameFor(path);
    const durable = opts.durable !== false;
    writeTemp(tmp, data, mode, owner, durable);
    return { path, tmp, backups: cur ? backupCount(opts) : 0, explicitMode: opts.mode, durable };
  } catch (e) {
    if (tmp) fs.rmSync(tmp, { force: true });
    throw writeError(path, e, step, false);
  }
}

/** Rotates the backups and renames the temp file over the target (steps 2 and 3, without the fsync). */
function commit(p: Prepared): void {
  let step: Step = 'rotating its backups';
  try {
    if (p.backups > 0) rotateBackups(p.path, p.backups, p.explicitMode);
    step = 'renaming the temp file over it';
    fs.renameSync(p.tmp, p.path);
  } catch (e) {
    fs.rmSync(p.tmp, { force: true });
    throw writeError(p.path, e, step, p.backups > 0);
  }
}

function flushDirectory(path: string): void {
  try {
    fsyncDirectory(dirname(path));
  } catch (e) {
    throw new AtomicWriteError(path, `${path} was replaced but its directory could not be flushed to disk: ${(e as Error).message}`, e);
  }
}

/**
 * Replaces `path` with `data` (see the file comment). Throws DiskFullError when the disk is full
 * and AtomicWriteError on any other failure; in both cases `path` and its backups are unchanged
 * and no temp file is left.
 */
export function writeFileAtomic(path: string, data: AtomicData, opts: AtomicWriteOptions = {}): void {
  const p = prepare(path, data, opts);
  commit(p);
  if (p.durable) flushDirectory(path);
}

/** A write whose temp file is on disk (fsynced): commit() makes it visible, abort() drops it. */
export interface PreparedWrite {
  commit(): void;
  abort(): void;
}

/**
 * The first half of writeFileAtomic: the data is written and fsynced to a temp file now (so a full
 * disk fails here, before the caller changes anything else, e.g. the kernel); commit() later only
 * renames, which needs no data blocks. Throws as writeFileAtomic does.
 */
export function prepareFileAtomic(path: string, data: AtomicData, opts: AtomicWriteOptions = {}): PreparedWrite {
  const p = prepare(path, data, opts);
  let open = true;
  return {
    commit: () => {
      if (!open) return;
      open = false;
      commit(p);
      if (p.durable) flushDirectory(path);
    },
    abort: () => {
      if (!open) return;
      open = false;
      fs.rmSync(p.tmp, { force: true });
    },
  };
}

/**
 * Replaces several files that belong together: every temp file is written and fsynced before the
 * first rename, so a full disk (or any write error) leaves all of them as they were. The renames
 * follow in the order given; a crash between two renames can still mix old and new, so readers of a
 * set should check it (e.g. hashes, lib/shaping/lastGood.ts).
 */
export function writeFilesAtomic(files: { path: string; data: AtomicData; opts?: AtomicWriteOptions }[]): void {
  const prepared: Prepared[] = [];
  try {
    for (const f of files) prepared.push(prepare(f.path, f.data, f.opts ?? {}));
  } catch (e) {
    for (const p of prepared) fs.rmSync(p.tmp, { force: true });
    if (e instanceof AtomicWriteError && files.length > 1) e.message += ` (none of ${files.map((f) => f.path).join(', ')} was changed)`;
    throw e;
  }
  for (let i = 0; i < prepared.length; i++) {
    try {
      commit(prepared[i]!);
    } catch (e) {
      for (const p of prepared.slice(i + 1)) fs.rmSync(p.tmp, { force: true });
      throw e;
    }
  }
  const onePerDir = new Map(prepared.filter((p) => p.durable).map((p) => [dirname(p.path), p.path]));
  for (const path of onePerDir.values()) flushDirectory(path);
}

/** Copies `from` over `to` with the same guarantees as writeFileAtomic (mode: `from`'s, unless given). */
export function copyFileAtomic(from: string, to: string, opts: AtomicWriteOptions = {}): void {
  let data: Buffer;
  let mode: number;
  try {
    data = fs.readFileSync(from);
    mode = opts.mode ?? fs.statSync(from).mode & 0o7777;
  } catch (e) {
    throw new AtomicWriteError(to, `cannot copy ${from} to ${to}: ${(e as Error).message}; ${to} is unchanged`, e);
  }
  writeFileAtomic(to, data, { ...opts, mode });
}

/** The file's text, or undefined when it does not exist. */
export function readTextIfExists(path: string): string | undefined {
  try {
    return fs.readFileSync(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
}

/** Removes the file; false when there was none. */
export function removeIfExists(path: string): boolean {
  if (!fs.existsSync(path)) return false;
  fs.rmSync(path);
  return true;
}
