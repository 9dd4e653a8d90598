/** The operator-facing JSON of a plan (`shaping/queuingStructure.json`): the tree with class ids. */
import type { ShapingPlan } from '../model.ts';
import { formatClassId } from '../util/classId.ts';

interface ClassIds {
  classid: string;
  up_classid: string;
  parentClassId: string;
  cpu: number;
}

/** Adds the class ids of `x` (a node or circuit) to `o`, in the file's key order, and returns it. */
function withClassIds<T extends object>(o: T, x: { queue: number; minor: number; parentMinor: number }, stickOffset: number): T & ClassIds {
  const r = o as T & ClassIds;
  r.classid = formatClassId(x.queue, x.minor);
  r.up_classid = formatClassId(x.queue + stickOffset, x.minor);
  r.parentClassId = formatClassId(x.queue, x.parentMinor);
  r.cpu = x.queue - 1;
  return r;
}

function classIds(plan: ShapingPlan, x: { queue: number; minor: number; parentMinor: number }): ClassIds {
  return withClassIds({}, x, plan.stickOffset);
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

/** Elements per chunk: few chunks, and each (~40 kB) below V8's large-object size. */
const BATCH = 50;

/**
 * ` "key": [` then one element per line, compact (`  {"id":…}`), then ` ]`: a whole node or circuit
 * is one line an operator can grep, and the file is a third smaller than indented JSON.
 */
function* arrayChunks<T>(key: string, items: readonly T[], last: boolean, toJson: (x: T) => unknown): Generator<string> {
  const end = last ? '\n' : ',\n';
  const k = JSON.stringify(key);
  if (items.length === 0) {
    yield ` ${k}: []${end}`;
    return;
  }
  yield ` ${k}: [\n`;
  for (let i = 0; i < items.length; i += BATCH) {
    let text = '';
    const stop = Math.min(i + BATCH, items.length);
    for (let j = i; j < stop; j++) text += `  ${JSON.stringify(toJson(items[j]!))}${j + 1 < items.length ? ',' : ''}\n`;
    yield text;
  }
  yield ` ]${end}`;
}

/** A planned circuit's own keys, in the order the planner creates them (lib/plan/planner.ts emitCircuit). */
const CIRCUIT_KEYS = ['id', 'name', 'parentPath', 'queue', 'minor', 'parentMinor', 'download', 'upload', 'devices', 'circuitHash'];

/** `o` has exactly these own keys in this order (what a spread of it would copy). */
function hasKeys(o: object, keys: readonly string[]): boolean {
  let i = 0;
  for (const k in o) if (k !== keys[i++]) return false;
  return i === keys.length;
}

/**
 * The file's text as chunks (one per 50 nodes or circuits): `queuingStructure(plan)` as JSON, the
 * top-level keys indented by one space and each node and circuit compact on its own line. Written
 * with writeFilesAtomic it never exists as one string (37 MB at 50k circuits) nor as a
 * second copy of the plan.
 */
export function* queuingStructureChunks(plan: ShapingPlan): Generator<string> {
  const head = { interfaces: plan.interfaces, queues: plan.queues, stickOffset: plan.stickOffset, mode: plan.mode };
  const headText = JSON.stringify(head, null, 1);
  // `{\n "interfaces": …,\n "mode": "shape"` then the two arrays.
  yield `${headText.slice(0, -2)},\n`;
  // The same objects as queuingStructure() builds (same keys in the same order), without the
  // intermediate classIds object.
  const up = plan.stickOffset;
  yield* arrayChunks('nodes', plan.nodes, false, (n) => withClassIds({ ...n }, n, up));
  yield* arrayChunks('circuits', plan.circuits, true, (c) =>
    withClassIds(
      hasKeys(c, CIRCUIT_KEYS)
        ? // The planner's circuit as it is (checked above), built field by field: 10× cheaper than
          // a spread followed by more keys.
          {
            id: c.id,
            name: c.name,
            parentPath: c.parentPath,
            queue: c.queue,
            minor: c.minor,
            parentMinor: c.parentMinor,
            download: c.download,
            upload: c.upload,
            devices: c.devices,
            circuitHash: c.circuitHash.toString(),
          }
        : { ...c, circuitHash: c.circuitHash.toString() },
      c,
      up,
    ),
  );
  yield '}\n';
}
