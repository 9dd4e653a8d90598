/**
 * An admin's confirmed removal (a forced web save of ShapedDevices.csv / network.json): the circuit
 * ids the admin agreed to unshape, kept in `<state>/shaping/removal_approval.json` so that the run
 * which follows the save (the scheduler's refresh, lqosd, `LibreQoS`) is not refused by the
 * mass-removal guard (./massRemoval.ts). It is used up by the first real apply that needs it and
 * lapses after APPROVAL_TTL_MS.
 */
import { dirname, join } from 'node:path';
import type { StatePaths } from '../config/paths.ts';
import { readTextIfExists, removeIfExists, writeFileAtomic } from '../util/atomicFile.ts';

export const APPROVAL_TTL_MS = 24 * 3600_000;

export interface RemovalApproval {
  at: string;
  by: string;
  /** The circuit ids confirmed for removal. */
  circuits: string[];
}

export function approvalPath(paths: Pick<StatePaths, 'appliedPlan'>): string {
  return join(dirname(paths.appliedPlan), 'removal_approval.json');
}

export function writeApproval(paths: Pick<StatePaths, 'appliedPlan'>, a: RemovalApproval): void {
  writeFileAtomic(approvalPath(paths), JSON.stringify(a) + '\n', { mode: 0o600 });
}

/** The approved ids, or undefined (none, unreadable, or older than APPROVAL_TTL_MS). */
export function readApproval(paths: Pick<StatePaths, 'appliedPlan'>, now = Date.now()): ReadonlySet<string> | undefined {
  const text = readTextIfExists(approvalPath(paths));
  if (!text) return undefined;
  try {
    const a = JSON.parse(text) as Partial<RemovalApproval>;
    const at = Date.parse(String(a.at));
    if (!Array.isArray(a.circuits) || !Number.isFinite(at) || now - at > APPROVAL_TTL_MS) return undefined;
    return new Set(a.circuits.map(String));
  } catch {
    return undefined;
  }
}

export function clearApproval(paths: Pick<StatePaths, 'appliedPlan'>): void {
  removeIfExists(approvalPath(paths));
}
