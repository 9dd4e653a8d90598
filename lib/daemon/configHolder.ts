/**
 * The configuration lqosd runs with: loaded once at start (fatal if unusable), reloaded on SIGHUP,
 * bus `reload_config` and web edits. A reload that fails keeps the config in force.
 */
import { ConfigError } from '../config/load.ts';
import { loadResolvedConfig, type ResolvedConfig } from '../config/resolve.ts';
import { changedKeys, restartOnlyChanges } from '../config/restart.ts';
import type { LqosConfig } from '../config/schema.ts';
import { BusError } from '../bus/protocol.ts';
import type { Log } from '../util/log.ts';

export { changedKeys, restartOnlyChanges } from '../config/restart.ts';

export interface ConfigChange {
  previous: ResolvedConfig;
  changed: string[];
  interfacesChanged: boolean;
}

export class ConfigHolder {
  private resolved: ResolvedConfig;
  /** Absolute path of the config file. */
  readonly path: string;

  /** `path` default: $LQOS_CONFIG, else /etc/lqos.conf. Throws ConfigError when unusable. */
  constructor(
    path: string | undefined,
    private readonly log: Log,
  ) {
    this.resolved = loadResolvedConfig({ path });
    this.path = this.resolved.path;
    for (const w of this.resolved.warnings) log.warn(w);
  }

  get current(): ResolvedConfig {
    return this.resolved;
  }

  get config(): LqosConfig {
    return this.resolved.config;
  }

  /** Re-reads the file; throws BusError `config_error` (old config kept) when it is unusable. */
  reload(): ConfigChange {
    let next: ResolvedConfig;
    try {
      next = loadResolvedConfig({ path: this.path });
    } catch (e) {
      const msg = e instanceof ConfigError ? e.message : (e as Error).message;
      this.log.error(`config reload failed; keeping the config in force: ${msg}`);
      throw new BusError('config_error', msg);
    }
    for (const w of next.warnings) this.log.warn(w);
    const previous = this.resolved;
    this.resolved = next;
    const changed = changedKeys(previous.config, next.config);
    const interfacesChanged = JSON.stringify(previous.interfaces) !== JSON.stringify(next.interfaces);
    this.log.info({ changed }, changed.length ? `config reloaded from ${this.path}; changed: ${changed.join(', ')}` : `config reloaded from ${this.path}; nothing changed`);
    const needRestart = restartOnlyChanges(changed);
    if (needRestart.length > 0) {
      this.log.warn({ keys: needRestart }, `${needRestart.join(', ')} changed: lqosd reads these only at start — restart it (systemctl restart lqosd) for them to take effect`);
    }
    if (previous.config.state_directory !== next.config.state_directory) {
      this.log.warn('state_directory changed: urgent issues keep being stored in the old one until lqosd restarts');
    }
    return { previous, changed, interfacesChanged };
  }
}
