/**
 * The scheduler's lqos.conf: read at every cycle and whenever the file changes (watched like the
 * shaping inputs: chokidar on its directory, atomic saves count, debounced).
 *
 * - A valid file becomes the configuration in use and resolves `SCHEDULER_CONFIG_INVALID`
 *   (key `scheduler:config`) — also one left by an earlier scheduler process, since the first good
 *   read of a process always resolves it.
 * - A broken file (syntax error, wrong type, missing field) is reported once per distinct problem:
 *   `scheduler_error` with the message (file, line or field) and the urgent issue. The last good
 *   configuration stays in use (interval, watched directory, shaping of file changes).
 */
import { basename, dirname, resolve } from 'node:path';
import { ConfigError, resolveConfigPath } from '../config/load.ts';
import { loadResolvedConfig, type ResolvedConfig } from '../config/resolve.ts';
import type { Logger } from '../util/log.ts';
import type { StatusReporter } from './reporter.ts';
import { InputWatcher } from './watcher.ts';

export const CONFIG_KEY = 'scheduler:config';
export const CONFIG_INVALID_CODE = 'SCHEDULER_CONFIG_INVALID';

export type ConfigRead = { ok: true; sc: ResolvedConfig; recovered: boolean } | { ok: false; error: ConfigError; last?: ResolvedConfig };

export class ConfigTracker {
  readonly path: string;
  /** The last configuration that loaded. */
  last?: ResolvedConfig;
  /** The problem of the file as last read (undefined: it was valid). */
  broken?: ConfigError;
  /** false until the first good read (which resolves a stale issue of an earlier process). */
  private seenGood = false;
  /** The file is being watched (long-running scheduler): a fix is picked up at once. */
  watched = false;
  private reported?: string;

  constructor(
    private readonly reporter: StatusReporter,
    private readonly log: Logger,
    explicitPath?: string,
  ) {
    this.explicit = explicitPath;
    this.path = resolve(resolveConfigPath(explicitPath));
  }

  private readonly explicit?: string;

  /** Reads lqos.conf now. `logWarnings`: false for a check whose warnings a following run logs. */
  async read(logWarnings = true): Promise<ConfigRead> {
    let sc: ResolvedConfig;
    try {
      sc = loadResolvedConfig({ path: this.explicit });
    } catch (e) {
      if (!(e instanceof ConfigError)) throw e;
      await this.reportBroken(e);
      return { ok: false, error: e, last: this.last };
    }
    if (logWarnings) for (const w of sc.warnings) this.log.warn(w);
    const recovered = this.broken !== undefined;
    if (recovered) this.log.info(`${this.path} is valid again; using it`);
    if (recovered || !this.seenGood) await this.reporter.resolve(CONFIG_KEY);
    this.broken = undefined;
    this.reported = undefined;
    this.seenGood = true;
    this.last = sc;
    return { ok: true, sc, recovered };
  }

  private async reportBroken(e: ConfigError): Promise<void> {
    this.broken = e;
    const keeping = this.last
      ? 'the scheduler keeps using the last good configuration until the file is fixed'
      : `nothing runs until the file is fixed${this.watched ? '; the file is watched, so saving a fix starts the scheduler within seconds' : ''}`;
    const message = `cannot use the configuration: ${e.message}\n(${keeping})`;
    if (this.reported === message) return;
    this.reported = message;
    this.log.error(message);
    await this.reporter.error({ message });
    await this.reporter.urgent(CONFIG_INVALID_CODE, message, CONFIG_KEY, { file: this.path, problems: e.details });
  }

  /** A watcher on the file (its directory, filtered by name); `onChange` after each burst of saves. */
  watcher(onChange: () => void, onError: (e: Error) => void, debounceMs?: number): InputWatcher {
    return new InputWatcher({ dir: dirname(this.path), names: [basename(this.path)], debounceMs, onChange, onError });
  }
}
