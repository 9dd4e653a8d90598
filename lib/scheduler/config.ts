/**
 * The scheduler's view of lqos.conf, re-read at every cycle: the parsed config with its directories
 * resolved against the config file (as lqosd and LibreQoS do), plus the raw text (for the effective
 * config, see ./shape.ts).
 */
import { readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { loadConfig } from '../config/load.ts';
import type { LqosConfig } from '../config/schema.ts';

export interface SchedulerConfig {
  config: LqosConfig;
  /** Absolute path of the config file. */
  path: string;
  text: string;
  warnings: string[];
}

/** Throws ConfigError (message names the file and the key). */
export function loadSchedulerConfig(path?: string): SchedulerConfig {
  const loaded = loadConfig({ path });
  const abs = resolve(loaded.path);
  const base = dirname(abs);
  return {
    config: {
      ...loaded.config,
      lqos_directory: resolve(base, loaded.config.lqos_directory),
      state_directory: resolve(base, loaded.config.state_directory),
    },
    path: abs,
    text: readFileSync(abs, 'utf8'),
    warnings: loaded.warnings,
  };
}
