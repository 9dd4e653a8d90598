/**
 * A tiny tmpfs for disk-full tests (needs root): mounted in a fresh temp directory, unmounted and
 * removed after the test file. `fill` leaves only a few KiB free with a filler file.
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import { join } from 'node:path';
import { after } from 'node:test';
import { tempDir } from '../support/workspace.ts';

export const IS_ROOT = process.getuid?.() === 0;

export interface Tmpfs {
  dir: string;
  /** Fills the file system so that at most `leaveKiB` KiB stay free (0: full). */
  fill(leaveKiB: number): void;
  /** Removes the filler. */
  drain(): void;
  freeKiB(): number;
  /** Every file under the tmpfs except the filler, with its bytes (for "unchanged" checks). */
  snapshot(): Map<string, Buffer>;
  /** Temp files of atomic writes left anywhere under the tmpfs. */
  temps(): string[];
}

const FILLER = '.filler';

function walk(dir: string, out: string[] = []): string[] {
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) walk(p, out);
    else out.push(p);
  }
  return out;
}

/** Mounts a tmpfs of `sizeKiB` for this test file (unmounted in after()). */
export function mountTmpfs(sizeKiB = 256): Tmpfs {
  const dir = tempDir('lqos-diskfull-');
  execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${sizeKiB}k,mode=0755`, 'tmpfs', dir]);
  after(() => {
    try {
      execFileSync('umount', [dir]);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
  const filler = join(dir, FILLER);
  const freeKiB = () => {
    const s = fs.statfsSync(dir);
    return Math.floor((Number(s.bavail) * Number(s.bsize)) / 1024);
  };
  return {
    dir,
    freeKiB,
    fill(leaveKiB) {
      const fd = fs.openSync(filler, 'a');
      const chunk = Buffer.alloc(4096, 0x2e);
      try {
        for (;;) fs.writeSync(fd, chunk);
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'ENOSPC') throw e;
      } finally {
        fs.closeSync(fd);
      }
      if (leaveKiB > 0) {
        const size = fs.statSync(filler).size;
        fs.truncateSync(filler, Math.max(0, size - leaveKiB * 1024));
      }
    },
    drain: () => fs.rmSync(filler, { force: true }),
    snapshot: () => new Map(walk(dir).filter((p) => p !== filler).map((p) => [p, fs.readFileSync(p)])),
    temps: () => walk(dir).filter((p) => /\.tmp-\d+-[0-9a-f]{8}$|\.tmp(\.prev)?$/.test(p)),
  };
}
