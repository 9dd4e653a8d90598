/** The operator-facing JSON of a plan (`shaping/queuingStructure.json`): the tree with class ids. */
import type { ShapingPlan } from '../model.ts';
import { formatClassId } from '../util/classId.ts';

function classIds(plan: ShapingPlan, x: { queue: number; minor: number; parentMinor: number }) {
  return {
    classid: formatClassId(x.queue, x.minor),
    up_classid: formatClassId(x.queue + plan.stickOffset, x.minor),
    parentClassId: formatClassId(x.queue, x.parentMinor),
    cpu: x.queue - 1,
  };
}

export function queuingStructure(plan: ShapingPlan): unknown {
  return {
    interfaces: plan.interfaces,
    queues: plan.queues,
    stickOffset: plan.stickOffset,
    mode: plan.mode,
    nodes: plan.nodes.map((n) => ({ ...n, ...classIds(plan, n) })),
    circuits: plan.circuits.map((c) => ({ ...c, circuitHash: c.circuitHash.toString(), ...classIds(plan, c) })),
  };
}
