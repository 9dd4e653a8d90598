/**
 * The one way every program gets its configuration: load and validate lqos.conf, make its
 * directories absolute (relative ones are relative to the config file), and derive the shaping
 * interfaces and the paths of the input and state files.
 */
import { dirname, resolve } from 'node:path';
import { interfacesOf, loadConfig, type LoadOptions, type ShapingInterfaces } from './load.ts';
import { inputPaths, statePaths, type InputPaths, type StatePaths } from './paths.ts';
import type { LqosConfig } from './schema.ts';

export interface ResolvedConfig {
  /** The config with absolute `lqos_directory` and `state_directory`. */
  config: LqosConfig;
  /** Absolute path of the config file. */
  path: string;
  warnings: string[];
  /** null when neither [bridge] nor [single_interface] is configured. */
  interfaces: ShapingInterfaces | null;
  inputs: InputPaths;
  state: StatePaths;
}

/** Throws ConfigError (its message names the file and the key). */
export function loadResolvedConfig(opts: LoadOptions = {}): ResolvedConfig {
  const loaded = loadConfig(opts);
  const path = resolve(loaded.path);
  const base = dirname(path);
  const config: LqosConfig = {
    ...loaded.config,
    lqos_directory: resolve(base, loaded.config.lqos_directory),
    state_directory: resolve(base, loaded.config.state_directory),
  };
  return {
    config,
    path,
    warnings: loaded.warnings,
    interfaces: interfacesOf(config),
    inputs: inputPaths(config),
    state: statePaths(config.state_directory),
  };
}

/** VLAN ids of an on-a-stick setup (the dataplane tells direction by VLAN there). */
export function stickVlans(config: LqosConfig): { internet: number; network: number } | undefined {
  const s = config.single_interface;
  return s ? { internet: s.internet_vlan, network: s.network_vlan } : undefined;
}
