/**
 * The XDP/tc IP mapping set of a plan, and its text rendering (pure).
 * One line per prefix: `<prefix> cpu <n> class <major>:<minor> circuit <id> device <id>`.
 */
import type { IpMapping, ShapingPlan } from '../model.ts';
import { formatClassId } from '../util/classId.ts';

/**
 * The mappings a plan installs in the dataplane. Shaping: the plan's mappings. Observe mode: the
 * same prefixes with class 0 (cpu 0, major 0, minor 0 = tc_handle 0): the dataplane counts and
 * tracks these addresses per circuit (unmapped traffic has no per-address state) but never
 * shapes or redirects them.
 */
export function compileMappings(plan: ShapingPlan): IpMapping[] {
  return plan.mode === 'observe' ? plan.mappings.map((m) => ({ ...m, cpu: 0, major: 0, minor: 0 })) : plan.mappings;
}

export function formatMapping(m: IpMapping): string {
  return `${m.prefix} cpu ${m.cpu} class ${formatClassId(m.major, m.minor)} circuit ${JSON.stringify(m.circuitId)} device ${JSON.stringify(m.deviceId)}`;
}

/** The whole mapping list as one string (tests and small lists; files are written from mappingTextChunks). */
export function renderMappings(mappings: IpMapping[]): string {
  return [...mappingTextChunks(mappings)].join('');
}

/** Mappings per chunk of mappingTextChunks (each chunk under V8's large-object size). */
const MAPPING_CHUNK = 500;

/** The mapping list's text as chunks, for writing it without one string (11 MB at 50k circuits). */
export function* mappingTextChunks(mappings: readonly IpMapping[]): Generator<string> {
  for (let i = 0; i < mappings.length; i += MAPPING_CHUNK) {
    const end = Math.min(mappings.length, i + MAPPING_CHUNK);
    let s = '';
    for (let k = i; k < end; k++) s += formatMapping(mappings[k]!) + '\n';
    yield s;
  }
}
