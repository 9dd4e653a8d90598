/**
 * Persistent planner state: the class ids, queues and leaf handles handed out so far. Kept in
 * `<state>/shaping/planner_state.json` so that a circuit keeps its class id (and CPU queue)
 * across runs — adding one circuit renumbers nothing else. It also carries what the CPU-queue
 * rebalancing needs between runs (see rebalance.ts): the queue count, a run counter and when each
 * top-level site was last moved.
 */
import { z } from 'zod';

export const PLANNER_STATE_VERSION = 2;

const slot = z.object({ queue: z.number().int().min(1), minor: z.number().int().min(3).max(0xfffe) });
const queueNumber = z.number().int().min(1);
const leafPair = z.object({ down: z.number().int(), up: z.number().int() });

/** The keyed sections: each entry is checked on its own, so one bad entry costs only itself. */
const sections = {
  /** Top-level node name → queue (1-based). */
  topLevel: queueNumber,
  /** Unparented circuit id → generated parent node name. */
  generated: z.string(),
  /** Site path → class slot. */
  sites: slot,
  /** Circuit id → class slot. */
  circuits: slot,
  /** Circuit id → leaf qdisc handles (download, upload interface). */
  leafHandles: leafPair,
  /** Top-level node name → the run (counter below) in which rebalancing last moved it. */
  moves: z.number().int().min(0),
} as const;

/** Single values: an invalid one is dropped (as if absent). */
const scalars = {
  /** Queue count of the run that wrote the state. */
  queues: queueNumber,
  /** Planner runs so far (the clock of the rebalancing cool-down). */
  run: z.number().int().min(0),
  /** A rebalance is under way (queue count changed or load skewed) and continues next run. */
  rebalancing: z.boolean(),
} as const;

export const plannerStateSchema = z.object({
  version: z.literal(PLANNER_STATE_VERSION),
  topLevel: z.record(z.string(), sections.topLevel),
  generated: z.record(z.string(), sections.generated),
  sites: z.record(z.string(), sections.sites),
  circuits: z.record(z.string(), sections.circuits),
  leafHandles: z.record(z.string(), sections.leafHandles),
  moves: z.record(z.string(), sections.moves).optional(),
  queues: scalars.queues.optional(),
  run: scalars.run.optional(),
  rebalancing: scalars.rebalancing.optional(),
});

export type PlannerState = z.infer<typeof plannerStateSchema>;

export function emptyPlannerState(): PlannerState {
  return { version: PLANNER_STATE_VERSION, topLevel: {}, generated: {}, sites: {}, circuits: {}, leafHandles: {} };
}

export interface ParsedPlannerState {
  state: PlannerState;
  /** One line per problem: what was dropped (key and reason), or why the whole file was ignored. */
  notes: string[];
  /** Set when the whole file was ignored (not JSON, not an object, another version): why. */
  unreadable?: string;
}

/** An empty state because the whole file is unusable, with the note saying why. */
function fresh(note: string): ParsedPlannerState {
  return { state: emptyPlannerState(), notes: [note], unreadable: note.replace(/^planner state (is |has )?/, '').replace(/; starting fresh class ids$/, '') };
}

function reason(err: z.ZodError): string {
  const i = err.issues[0]!;
  return i.path.length > 0 ? `${i.path.join('.')}: ${i.message}` : i.message;
}

/**
 * Parses stored state. A file that is not JSON, not an object or of another version starts fresh
 * (one note saying so); otherwise every entry is checked on its own and only the invalid ones are
 * dropped, each with a note naming its key and what is wrong — the rest keep their ids.
 */
export function parsePlannerState(text: string | undefined): ParsedPlannerState {
  if (text === undefined) return { state: emptyPlannerState(), notes: [] };
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch {
    return fresh('planner state is not valid JSON; starting fresh class ids');
  }
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) {
    return fresh('planner state is not a JSON object; starting fresh class ids');
  }
  const obj = raw as Record<string, unknown>;
  if (obj.version !== PLANNER_STATE_VERSION) {
    return fresh(
      `planner state has an unknown layout (version ${JSON.stringify(obj.version ?? null)}, expected ${PLANNER_STATE_VERSION}); starting fresh class ids`,
    );
  }
  const state = emptyPlannerState() as PlannerState & Record<string, unknown>;
  const notes: string[] = [];
  for (const [name, schema] of Object.entries(sections)) {
    const value = obj[name];
    if (value === undefined) {
      if (name !== 'moves') notes.push(`planner state has no "${name}" section; its ids start fresh`);
      continue;
    }
    if (typeof value !== 'object' || value === null || Array.isArray(value)) {
      notes.push(`planner state "${name}" is not an object; dropped (its ids start fresh)`);
      continue;
    }
    const kept: Record<string, unknown> = {};
    for (const [key, entry] of Object.entries(value as Record<string, unknown>)) {
      const r = (schema as z.ZodType).safeParse(entry);
      if (r.success) kept[key] = r.data;
      else notes.push(`planner state ${name}[${JSON.stringify(key)}] dropped (${reason(r.error)}): ${JSON.stringify(entry)?.slice(0, 120)}; it is assigned afresh, every other entry is kept`);
    }
    state[name] = kept;
  }
  for (const [name, schema] of Object.entries(scalars)) {
    const value = obj[name];
    if (value === undefined) continue;
    const r = (schema as z.ZodType).safeParse(value);
    if (r.success) state[name] = r.data;
    else notes.push(`planner state "${name}" dropped (${reason(r.error)}): ${JSON.stringify(value)?.slice(0, 120)}`);
  }
  return { state, notes };
}

export function serializePlannerState(state: PlannerState): string {
  return JSON.stringify(state, null, 1) + '\n';
}
