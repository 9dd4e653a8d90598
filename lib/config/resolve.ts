/**
 * The one way every program gets its configuration: load and validate lqos.conf, make its
 * directories absolute (relative ones are relative to the config file), and derive the shaping
 * interfaces and the paths of the input and state files.
 */
import { dirname, resolve } from 'node:path';
import { ConfigError, interfacesOf, loadConfig, type LoadOptions, type ShapingInterfaces } from './load.ts';
import { inputPaths, statePaths, type InputPaths, type StatePaths } from './paths.ts';
import { systemStateDirectoryProblem, type LqosConfig } from './schema.ts';

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

/**
 * Throws ConfigError (its message names the file and the key), also for a relative `state_directory`
 * that resolves to a system directory (`state_directory = "."` in /etc/lqos.conf is /etc): the schema
 * refuses absolute ones, and a relative one can be judged only here, against the config file.
 */
export function loadResolvedConfig(opts: LoadOptions = {}): ResolvedConfig {
  const loaded = loadConfig(opts);
  const path = resolve(loaded.path);
  const base = dirname(path);
  const config: LqosConfig = {
    ...loaded.config,
    lqos_directory: resolve(base, loaded.config.lqos_directory),
    state_directory: resolve(base, loaded.config.state_directory),
  };
  const system = systemStateDirectoryProblem(config.state_directory);
  if (system) {
    const given = loaded.config.state_directory;
    const detail = `state_directory: ${given === config.state_directory ? '' : `${JSON.stringify(given)} (relative to ${base}) resolves to ${config.state_directory}; `}${system}`;
    throw new ConfigError(`${loaded.path}: invalid configuration:\n  ${detail}`, loaded.path, [detail]);
  }
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
