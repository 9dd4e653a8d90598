/**
 * Persistent planner state: the class ids, queues and leaf handles handed out so far. Kept in
 * `<state>/shaping/planner_state.json` so that a circuit keeps its class id (and CPU queue)
 * across runs — adding one circuit renumbers nothing else. It also carries what the CPU-queue
 * rebalancing needs between runs (see rebalance.ts): the queue count, a run counter and when each
 * top-level site was last moved.
 */
import { z } from 'zod';

export const PLANNER_STATE_VERSION = 2;

/** A range of whole numbers (bounds inclusive; absent: any safe integer). */
interface IntRange {
  min?: number;
  max?: number;
}

/** The ranges of the stored numbers: one source for the zod schemas and the fast checks below. */
const RANGE = {
  /** A CPU queue, 1-based. */
  queue: { min: 1 },
  /** An HTB class minor of a site or circuit (1 and 2 are each queue's root and default class). */
  minor: { min: 3, max: 0xfffe },
  /** A leaf qdisc handle. */
  handle: {},
  /** A run counter. */
  count: { min: 0 },
} as const satisfies Record<string, IntRange>;

/** The zod schema of a range (zod's `int()` accepts safe integers only, as isInt below). */
function zInt(r: IntRange) {
  let s = z.number().int();
  if (r.min !== undefined) s = s.min(r.min);
  if (r.max !== undefined) s = s.max(r.max);
  return s;
}

const slot = z.object({ queue: zInt(RANGE.queue), minor: zInt(RANGE.minor) });
const queueNumber = zInt(RANGE.queue);
const leafPair = z.object({ down: zInt(RANGE.handle), up: zInt(RANGE.handle) });

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
  moves: zInt(RANGE.count),
} as const;

/** Single values: an invalid one is dropped (as if absent). */
const scalars = {
  /** Queue count of the run that wrote the state. */
  queues: queueNumber,
  /** Planner runs so far (the clock of the rebalancing cool-down). */
  run: zInt(RANGE.count),
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

/** A whole number in the range (what zInt(r) accepts). */
function isInt(v: unknown, r: IntRange): v is number {
  return typeof v === 'number' && Number.isSafeInteger(v) && (r.min === undefined || v >= r.min) && (r.max === undefined || v <= r.max);
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/**
 * Hand-written checks of the section schemas for the common case (a valid entry), returning the value
 * the schema would (the entry itself, or rebuilt with its known keys only when it has others, as zod
 * strips unknown ones), or `undefined` when the entry is not valid: zod then checks it again for the
 * note's reason. Parsing
 * 50k entries through zod cost ~40 ms of every run at 10k circuits.
 */
const fastSections: Record<keyof typeof sections, (v: unknown) => unknown> = {
  topLevel: (v) => (isInt(v, RANGE.queue) ? v : undefined),
  generated: (v) => (typeof v === 'string' ? v : undefined),
  sites: fastSlot,
  circuits: fastSlot,
  leafHandles: (v) => {
    if (!isPlainObject(v) || !isInt(v.down, RANGE.handle) || !isInt(v.up, RANGE.handle)) return undefined;
    return keyCount(v) === 2 ? v : { down: v.down, up: v.up };
  },
  moves: (v) => (isInt(v, RANGE.count) ? v : undefined),
};

/** Number of enumerable keys of a parsed JSON object (no allocation). */
function keyCount(v: object): number {
  let n = 0;
  for (const _ in v) n++;
  return n;
}

function fastSlot(v: unknown): unknown {
  if (!isPlainObject(v) || !isInt(v.queue, RANGE.queue) || !isInt(v.minor, RANGE.minor)) return undefined;
  return keyCount(v) === 2 ? v : { queue: v.queue, minor: v.minor };
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
    // The parsed section is kept as it is (no copy of 10k+ entries); an entry zod would change
    // (unknown keys stripped) is replaced, an invalid one deleted.
    const kept = value as Record<string, unknown>;
    const fast = fastSections[name as keyof typeof sections];
    for (const key of Object.keys(kept)) {
      const entry = kept[key];
      const ok = fast(entry);
      if (ok !== undefined) {
        if (ok !== entry) kept[key] = ok;
        continue;
      }
      const r = (schema as z.ZodType).safeParse(entry);
      if (r.success) kept[key] = r.data;
      else {
        delete kept[key];
        notes.push(`planner state ${name}[${JSON.stringify(key)}] dropped (${reason(r.error)}): ${JSON.stringify(entry)?.slice(0, 120)}; it is assigned afresh, every other entry is kept`);
      }
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
