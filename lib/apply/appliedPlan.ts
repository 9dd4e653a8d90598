/**
 * The plan in force, persisted next to the planner state so the next run (or lqosd after a
 * restart) can apply only the difference.
 */
import type { ShapingPlan } from '../model.ts';

export function serializePlan(plan: ShapingPlan): string {
  return JSON.stringify(plan, (_k, v) => (typeof v === 'bigint' ? { $bigint: v.toString() } : v));
}

export function deserializePlan(text: string | undefined): ShapingPlan | undefined {
  if (!text) return undefined;
  try {
    const plan = JSON.parse(text, (_k, v) =>
      v && typeof v === 'object' && typeof (v as { $bigint?: unknown }).$bigint === 'string' ? BigInt((v as { $bigint: string }).$bigint) : v,
    ) as ShapingPlan;
    if (!plan || !Array.isArray(plan.nodes) || !Array.isArray(plan.circuits) || !Array.isArray(plan.mappings)) return undefined;
    return plan;
  } catch {
    return undefined;
  }
}
