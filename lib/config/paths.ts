/**
 * Every file path derived from the config: the operator's input files in `lqos_directory` and the
 * run's files under `state_directory`. Nothing else builds these paths by hand.
 */
import { join } from 'node:path';
import type { LqosConfig } from './schema.ts';

export interface InputPaths {
  devices: string;
  network: string;
  /** The scheduler's overrides (lqos_overrides.json). */
  overrides: string;
}

export function inputPaths(config: Pick<LqosConfig, 'lqos_directory'>): InputPaths {
  return {
    devices: join(config.lqos_directory, 'ShapedDevices.csv'),
    network: join(config.lqos_directory, 'network.json'),
    overrides: join(config.lqos_directory, 'lqos_overrides.json'),
  };
}

export interface StatePaths {
  root: string;
  plannerState: string;
  queuingStructure: string;
  lastGoodCsv: string;
  lastGoodJson: string;
  /** When and from what the last good copies were saved, with their hashes (lib/shaping/lastGood.ts). */
  lastGoodMeta: string;
  lastAppliedTc: string;
  appliedPlan: string;
  lastAppliedMappings: string;
  linuxTc: string;
  mappings: string;
  /** Upstream-compatible run outputs monitoring scripts read (docs/OUTPUTS.md). */
  lastRun: string;
  statsByCircuit: string;
  statsByParentNode: string;
  /** Effective inputs (operator files + lqos_overrides.json) every run path shapes. */
  effectiveDir: string;
  urgentIssues: string;
  users: string;
  telemetry: string;
}

export function statePaths(stateDir: string): StatePaths {
  const shaping = (f: string) => join(stateDir, 'shaping', f);
  return {
    root: stateDir,
    plannerState: shaping('planner_state.json'),
    queuingStructure: shaping('queuingStructure.json'),
    lastGoodCsv: shaping('lastGoodConfig.csv'),
    lastGoodJson: shaping('lastGoodConfig.json'),
    lastGoodMeta: shaping('lastGoodConfig.meta.json'),
    lastAppliedTc: shaping('applied_tc.txt'),
    appliedPlan: shaping('applied_plan.json'),
    lastAppliedMappings: shaping('applied_mappings.txt'),
    linuxTc: join(stateDir, 'debug', 'linux_tc.txt'),
    mappings: join(stateDir, 'debug', 'ip_mappings.txt'),
    lastRun: join(stateDir, 'stats', 'lastRun.txt'),
    statsByCircuit: join(stateDir, 'stats', 'statsByCircuit.json'),
    statsByParentNode: join(stateDir, 'stats', 'statsByParentNode.json'),
    effectiveDir: shaping('effective'),
    urgentIssues: join(stateDir, 'urgent_issues.json'),
    users: join(stateDir, 'lqusers.toml'),
    telemetry: join(stateDir, 'telemetry.sqlite'),
  };
}
