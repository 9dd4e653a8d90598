/**
 * The plan in force, persisted next to the planner state so the next run (or lqosd after a
 * restart) can apply only the difference.
 *
 * A damaged file (empty, truncated, garbage) is moved aside with a warning and treated as "nothing
 * known applied": the next run then rebuilds the queues in full and verifies them against the
 * kernel. Its backups are not restored: an older plan is not what the kernel holds.
 */
import { statSync } from 'node:fs';
import type { ShapingPlan } from '../model.ts';
import { compactPlan } from './compactPlan.ts';
import { backupPaths, prepareFileAtomic, readTextIfExists, type PreparedWrite } from '../util/atomicFile.ts';
import type { Log } from '../util/log.ts';
import { readRecovering } from '../util/recoverFile.ts';

export function serializePlan(plan: ShapingPlan): string {
  return JSON.stringify(plan, (_k, v) => (typeof v === 'bigint' ? { $bigint: v.toString() } : v));
}

/** Parses a stored plan; throws saying what is wrong. */
export function parsePlan(text: string): ShapingPlan {
  let plan: ShapingPlan;
  try {
    plan = JSON.parse(text, (_k, v) =>
      v && typeof v === 'object' && typeof (v as { $bigint?: unknown }).$bigint === 'string' ? BigInt((v as { $bigint: string }).$bigint) : v,
    ) as ShapingPlan;
  } catch (e) {
    throw new Error(`not valid JSON: ${(e as Error).message}`);
  }
  if (!plan || typeof plan !== 'object') throw new Error('not a JSON object');
  for (const k of ['nodes', 'circuits', 'mappings'] as const) {
    if (!Array.isArray(plan[k])) throw new Error(`no "${k}" list`);
  }
  return plan;
}

export function deserializePlan(text: string | undefined): ShapingPlan | undefined {
  if (!text) return undefined;
  try {
    return parsePlan(text);
  } catch {
    return undefined;
  }
}

/**
 * The plan in force from `path`; undefined when there is none or the file is damaged (then moved
 * aside with a warning, see the file comment).
 */
export function loadAppliedPlan(path: string, log?: Pick<Log, 'warn'>, now?: () => Date): ShapingPlan | undefined {
  return readRecovering(path, {
    parse: parsePlan,
    what: 'applied plan',
    onLoss: 'treating it as "nothing known applied": the next run rebuilds every queue in full and verifies the kernel against the plan',
    fromBackups: false,
    log,
    now,
  }).value;
}

/**
 * Backups kept of the applied plan: fewer than the default, as the file is large (about 7 MB per
 * 10,000 circuits) and its backups are only for inspection, never restored automatically.
 */
export const APPLIED_PLAN_BACKUPS = 2;

/** Records the plan in force (crash-safe, keeping APPLIED_PLAN_BACKUPS rotated backups). */
export function saveAppliedPlan(path: string, plan: ShapingPlan): void {
  prepareAppliedPlan(path, plan).commit();
}

/** saveAppliedPlan in two steps: written now (a full disk fails here), visible on commit(). */
export function prepareAppliedPlan(path: string, plan: ShapingPlan): PreparedWrite {
  return prepareFileAtomic(path, serializePlan(plan), { backup: APPLIED_PLAN_BACKUPS });
}

/**
 * The newest readable backup of the applied plan, for counting only (the mass-removal guard while
 * the plan itself is missing or was set aside as damaged): never used to diff against the kernel.
 */
export function newestAppliedPlanBackup(path: string): ShapingPlan | undefined {
  for (const b of backupPaths(path, APPLIED_PLAN_BACKUPS)) {
    const plan = deserializePlan(readTextIfExists(b));
    if (plan) return plan;
  }
  return undefined;
}

/** The applied plan and its backups: what `--clearrules` removes (nothing is in force afterwards). */
export function appliedPlanFiles(path: string): string[] {
  return [path, ...backupPaths(path, APPLIED_PLAN_BACKUPS)];
}

/** The file's identity: a rewrite (temp file renamed over it) changes the inode and the mtime. */
function fileStamp(path: string): string | undefined {
  try {
    const st = statSync(path, { bigint: true });
    return `${st.dev}:${st.ino}:${st.size}:${st.mtimeNs}`;
  } catch {
    return undefined;
  }
}

/** The last plan in force this process recorded or loaded, compact, with the file it matches. */
let inForce: { path: string; stamp: string; plan: ShapingPlan } | undefined;

/**
 * loadAppliedPlan, compact (./compactPlan.ts), without parsing the file again while it is the one
 * this process last wrote or read: a file rewritten by another process (`LibreQoS --direct`,
 * `--clearrules`) has another identity and is read afresh. lqosd's runs diff against this.
 */
export function loadAppliedPlanCompact(path: string, log?: Pick<Log, 'warn'>, now?: () => Date): ShapingPlan | undefined {
  const stamp = fileStamp(path);
  if (stamp && inForce && inForce.path === path && inForce.stamp === stamp) return inForce.plan;
  const loaded = loadAppliedPlan(path, log, now);
  const plan = loaded && compactPlan(loaded);
  const after = fileStamp(path);
  inForce = plan && after ? { path, stamp: after, plan } : undefined;
  return plan;
}

/** After `path` was committed with `plan`: the next loadAppliedPlanCompact returns it without reading the file. */
export function rememberAppliedPlan(path: string, plan: ShapingPlan): void {
  const stamp = fileStamp(path);
  inForce = stamp ? { path, stamp, plan: compactPlan(plan) } : undefined;
}
