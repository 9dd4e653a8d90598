/**
 * The XDP/tc IP mapping set of a plan, and its text rendering (pure).
 * One line per prefix: `<prefix> cpu <n> class <major>:<minor> circuit <id> device <id>`.
 */
import type { IpMapping, ShapingPlan } from '../model.ts';
import { formatClassId } from '../util/classId.ts';

export function compileMappings(plan: ShapingPlan): IpMapping[] {
  return plan.mode === 'observe' ? [] : plan.mappings;
}

export function formatMapping(m: IpMapping): string {
  return `${m.prefix} cpu ${m.cpu} class ${formatClassId(m.major, m.minor)} circuit ${JSON.stringify(m.circuitId)} device ${JSON.stringify(m.deviceId)}`;
}

export function renderMappings(mappings: IpMapping[]): string {
  return mappings.map(formatMapping).join('\n') + (mappings.length ? '\n' : '');
}
