/**
 * File helpers for the web API: atomic writes that keep the file mode and a `.bak` of the previous
 * version, and where the shaping input files live.
 */
import { chmodSync, copyFileSync, existsSync, mkdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { dirname, join } from 'node:path';
import type { LqosConfig } from '../config/schema.ts';

export interface AtomicWriteOptions {
  /** File mode; default: the existing file's mode, else 0644. */
  mode?: number;
  /** Copy the current file to `<path>.bak` first. */
  backup?: boolean;
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
  const tmp = `${path}.tmp-${process.pid}-${randomBytes(4).toString('hex')}`;
  try {
    writeFileSync(tmp, data, { mode, flag: 'wx' });
    chmodSync(tmp, mode); // the umask may have narrowed it
    renameSync(tmp, path);
  } catch (err) {
    rmSync(tmp, { force: true });
    throw err;
  }
}

export function readTextIfExists(path: string): string | undefined {
  try {
    return readFileSync(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
}

export function inputPaths(config: LqosConfig): { devices: string; network: string } {
  return {
    devices: join(config.lqos_directory, 'ShapedDevices.csv'),
    network: join(config.lqos_directory, 'network.json'),
  };
}

/**
 * The enabled CRM integration that owns ShapedDevices.csv / network.json, if any: the first
 * `*_integration` section with an `enable_*` key set to true.
 */
export function owningIntegration(config: LqosConfig): { section: string; key: string } | undefined {
  for (const [section, value] of Object.entries(config as Record<string, unknown>)) {
    if (!section.endsWith('_integration') || typeof value !== 'object' || value === null) continue;
    for (const [key, v] of Object.entries(value as Record<string, unknown>)) {
      if (key.startsWith('enable_') && v === true) return { section, key };
    }
  }
  return undefined;
}
