/**
 * Dataplane capacity check (pure): the IP mappings a plan installs must fit the dataplane's
 * ip_to_class LPM map (max_entries). A plan that does not fit is refused before anything is
 * changed — a partial batch would leave every later prefix unmapped (those subscribers fall into
 * the default class) with nothing telling the operator.
 */
import type { ShapingPlan } from '../model.ts';
import { compileMappings } from '../compile/mappings.ts';

/** Thrown by the apply engine before any tc command or map write. */
export class MappingCapacityError extends Error {
  constructor(
    message: string,
    readonly mappings: number,
    readonly capacity: number,
  ) {
    super(message);
  }
}

/** Distinct prefixes the plan installs (what the LPM map would hold). */
export function installedMappingCount(plan: ShapingPlan): number {
  const m = compileMappings(plan);
  const seen = new Set<string>();
  for (const x of m) seen.add(x.prefix);
  return seen.size;
}

export interface CapacityVerdict {
  ok: boolean;
  mappings: number;
  capacity: number;
  message: string;
}

const n = (x: number) => x.toLocaleString('en-US');

/** Whether the plan's mappings fit `capacity` entries; the refusal says what to do. */
export function mappingCapacityVerdict(plan: ShapingPlan, capacity: number): CapacityVerdict {
  const mappings = installedMappingCount(plan);
  if (mappings <= capacity) return { ok: true, mappings, capacity, message: `${n(mappings)} of ${n(capacity)} IP mapping slots used` };
  return {
    ok: false,
    mappings,
    capacity,
    message:
      `the plan has ${n(mappings)} IP mappings (distinct prefixes in ShapedDevices.csv) but the dataplane holds at most ${n(capacity)} ` +
      `(ip_to_class map), ${n(mappings - capacity)} too many; nothing was changed and the shaping in force stays. ` +
      'Split the network over more shapers (each with its own share of ShapedDevices.csv), or list subscribers by ' +
      'aggregate prefixes (one /24 or IPv6 /56 per circuit instead of one entry per address), then run again.',
  };
}
