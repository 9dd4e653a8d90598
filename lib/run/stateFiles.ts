/**
 * Where a run's outputs live under the state directory, and atomic writes (temp + rename).
 */
import { copyFileSync, existsSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';

export interface StatePaths {
  root: string;
  plannerState: string;
  queuingStructure: string;
  lastGoodCsv: string;
  lastGoodJson: string;
  lastAppliedTc: string;
  appliedPlan: string;
  lastAppliedMappings: string;
  linuxTc: string;
  mappings: string;
  lastRun: string;
}

export function statePaths(stateDir: string): StatePaths {
  return {
    root: stateDir,
    plannerState: join(stateDir, 'shaping', 'planner_state.json'),
    queuingStructure: join(stateDir, 'shaping', 'queuingStructure.json'),
    lastGoodCsv: join(stateDir, 'shaping', 'lastGoodConfig.csv'),
    lastGoodJson: join(stateDir, 'shaping', 'lastGoodConfig.json'),
    lastAppliedTc: join(stateDir, 'shaping', 'applied_tc.txt'),
    appliedPlan: join(stateDir, 'shaping', 'applied_plan.json'),
    lastAppliedMappings: join(stateDir, 'shaping', 'applied_mappings.txt'),
    linuxTc: join(stateDir, 'debug', 'linux_tc.txt'),
    mappings: join(stateDir, 'debug', 'ip_mappings.txt'),
    lastRun: join(stateDir, 'stats', 'lastRun.txt'),
  };
}

export function writeAtomic(path: string, data: string): void {
  mkdirSync(dirname(path), { recursive: true });
  const tmp = `${path}.tmp-${process.pid}`;
  writeFileSync(tmp, data);
  renameSync(tmp, path);
}

export function copyAtomic(from: string, to: string): void {
  mkdirSync(dirname(to), { recursive: true });
  const tmp = `${to}.tmp-${process.pid}`;
  copyFileSync(from, tmp);
  renameSync(tmp, to);
}

export function readIfExists(path: string): string | undefined {
  return existsSync(path) ? readFileSync(path, 'utf8') : undefined;
}

export function removeIfExists(path: string): boolean {
  if (!existsSync(path)) return false;
  rmSync(path);
  return true;
}
