/**
 * Watches the shaping inputs in `lqos_directory` (network.json, ShapedDevices.csv, lqos_overrides.json)
 * and calls `onChange` once per burst of saves: chokidar waits until a file stops growing
 * (awaitWriteFinish), then a debounce timer collapses the burst. Atomic saves (write temp + rename)
 * are seen as changes. Whether a change is real (content differs from what was last shaped) is the
 * scheduler's business (content hashes), so the scheduler's own writes never cause a second refresh.
 */
import { watch, type FSWatcher } from 'chokidar';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { basename, join, resolve } from 'node:path';

export const WATCHED_FILES = ['network.json', 'ShapedDevices.csv', 'lqos_overrides.json'] as const;
export const DEFAULT_DEBOUNCE_MS = 300;

/** sha256 of each watched file ('' when absent/unreadable). */
export function hashInputs(dir: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const f of WATCHED_FILES) {
    try {
      out[f] = createHash('sha256').update(readFileSync(join(dir, f))).digest('hex');
    } catch {
      out[f] = '';
    }
  }
  return out;
}

export function sameHashes(a: Record<string, string> | undefined, b: Record<string, string>): boolean {
  return !!a && WATCHED_FILES.every((f) => a[f] === b[f]);
}

export interface InputWatcherOptions {
  dir: string;
  debounceMs?: number;
  /** awaitWriteFinish stability threshold (default 100 ms). */
  stabilityMs?: number;
  /** File names watched in `dir` (default WATCHED_FILES). */
  names?: readonly string[];
  onChange: (files: string[]) => void;
  onError?: (e: Error) => void;
}

export class InputWatcher {
  private watcher?: FSWatcher;
  private timer?: NodeJS.Timeout;
  private changed = new Set<string>();
  readonly dir: string;

  constructor(private readonly opts: InputWatcherOptions) {
    this.dir = resolve(opts.dir);
  }

  /** Resolves once the initial scan is done (events after that are real changes). */
  start(): Promise<void> {
    const names = new Set<string>(this.opts.names ?? WATCHED_FILES);
    const w = watch(this.dir, {
      depth: 0,
      ignoreInitial: true,
      atomic: true,
      awaitWriteFinish: { stabilityThreshold: this.opts.stabilityMs ?? 100, pollInterval: 25 },
      ignored: (p: string) => resolve(p) !== this.dir && !names.has(basename(p)),
    });
    this.watcher = w;
    const on = (p: string) => this.bump(basename(p));
    w.on('add', on).on('change', on).on('unlink', on);
    w.on('error', (e) => this.opts.onError?.(e as Error));
    return new Promise((res) => w.once('ready', () => res()));
  }

  private bump(name: string): void {
    this.changed.add(name);
    clearTimeout(this.timer);
    this.timer = setTimeout(() => {
      const files = [...this.changed];
      this.changed.clear();
      this.opts.onChange(files);
    }, this.opts.debounceMs ?? DEFAULT_DEBOUNCE_MS);
  }

  async close(): Promise<void> {
    clearTimeout(this.timer);
    await this.watcher?.close();
    this.watcher = undefined;
  }
}
