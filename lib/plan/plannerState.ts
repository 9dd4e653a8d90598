/**
 * Persistent planner state: the class ids, queues and leaf handles handed out so far. Kept in
 * `<state>/shaping/planner_state.json` so that a circuit keeps its class id (and CPU queue)
 * across runs — adding one circuit renumbers nothing else.
 */
import { z } from 'zod';

export const PLANNER_STATE_VERSION = 2;

const slot = z.object({ queue: z.number().int().min(1), minor: z.number().int().min(3).max(0xfffe) });

export const plannerStateSchema = z.object({
  version: z.literal(PLANNER_STATE_VERSION),
  /** Top-level node name → queue (1-based). */
  topLevel: z.record(z.string(), z.number().int().min(1)),
  /** Unparented circuit id → generated parent node name. */
  generated: z.record(z.string(), z.string()),
  /** Site path → class slot. */
  sites: z.record(z.string(), slot),
  /** Circuit id → class slot. */
  circuits: z.record(z.string(), slot),
  /** Circuit id → leaf qdisc handles (download, upload interface). */
  leafHandles: z.record(z.string(), z.object({ down: z.number().int(), up: z.number().int() })),
});

export type PlannerState = z.infer<typeof plannerStateSchema>;

export function emptyPlannerState(): PlannerState {
  return { version: PLANNER_STATE_VERSION, topLevel: {}, generated: {}, sites: {}, circuits: {}, leafHandles: {} };
}

/** Parses stored state; anything unreadable or from another version starts fresh (with a reason). */
export function parsePlannerState(text: string | undefined): { state: PlannerState; note?: string } {
  if (text === undefined) return { state: emptyPlannerState() };
  try {
    const parsed = plannerStateSchema.safeParse(JSON.parse(text));
    if (parsed.success) return { state: parsed.data };
    return { state: emptyPlannerState(), note: 'planner state has an unknown layout; starting fresh class ids' };
  } catch {
    return { state: emptyPlannerState(), note: 'planner state is not valid JSON; starting fresh class ids' };
  }
}

export function serializePlannerState(state: PlannerState): string {
  return JSON.stringify(state, null, 1) + '\n';
}
