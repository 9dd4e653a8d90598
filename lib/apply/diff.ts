/**
 * The incremental apply engine's brain (pure): compares the plan in force with a new plan and
 * returns the smallest set of operations that turns one into the other.
 *
 * Order of operations (so traffic never points at a class that does not exist):
 *   1. delete IP mappings that go away or change target;
 *   2. tc: delete removed circuit classes, change node rates, add/change circuit classes;
 *   3. write new/changed IP mappings (their classes exist now).
 * Anything structural (interfaces, queue count, link rates, default SQM, mode, the set of nodes
 * or where they sit) needs a full rebuild instead.
 */
import type { IpMapping, LeafQdisc, PlannedCircuit, PlannedNode, ShapingPlan } from '../model.ts';
import { compileMappings } from '../compile/mappings.ts';
import { compileCircuitLines, compileNodeLines, lazyOmits, sidesOf, type CompileOptions } from '../compile/tc.ts';
import { formatClassId } from '../util/classId.ts';

export interface ApplyOps {
  mode: 'full' | 'incremental' | 'none';
  /** Why a full rebuild is needed (mode 'full'). */
  reason?: string;
  mapDelete: string[];
  tc: string[];
  mapUpsert: IpMapping[];
  summary: {
    circuitsAdded: number;
    circuitsRemoved: number;
    circuitsChanged: number;
    nodesChanged: number;
    mappingsDeleted: number;
    mappingsWritten: number;
  };
}

function structuralDifference(a: ShapingPlan, b: ShapingPlan): string | undefined {
  if (a.interfaces.download !== b.interfaces.download || a.interfaces.upload !== b.interfaces.upload || a.interfaces.onAStick !== b.interfaces.onAStick)
    return 'shaping interfaces changed';
  if (a.queues !== b.queues || a.stickOffset !== b.stickOffset) return `queue count changed (${a.queues} → ${b.queues})`;
  if (a.link.downloadMbps !== b.link.downloadMbps || a.link.uploadMbps !== b.link.uploadMbps) return 'link capacity changed';
  if (a.mode !== b.mode) return `queue mode changed (${a.mode} → ${b.mode})`;
  if (!sameLeaf(a.defaultLeaf, b.defaultLeaf)) return 'default SQM changed';
  if (a.nodes.length !== b.nodes.length) return `node set changed (${a.nodes.length} → ${b.nodes.length} nodes)`;
  const old = new Map(a.nodes.map((n) => [n.path, n]));
  for (const n of b.nodes) {
    const o = old.get(n.path);
    if (!o) return `node ${n.path} added`;
    if (o.queue !== n.queue || o.minor !== n.minor || o.parentMinor !== n.parentMinor) return `node ${n.path} moved`;
  }
  return undefined;
}

function sameRates(a: PlannedNode | PlannedCircuit, b: PlannedNode | PlannedCircuit): boolean {
  return sameSide(a, b, 'download') && sameSide(a, b, 'upload');
}

function sameSide(a: PlannedNode | PlannedCircuit, b: PlannedNode | PlannedCircuit, dir: 'download' | 'upload'): boolean {
  return a[dir].rateMbps === b[dir].rateMbps && a[dir].ceilMbps === b[dir].ceilMbps;
}

/** Of per-side class lines [download, upload], keep the sides whose rates changed. */
function changedSides(lines: string[], a: PlannedNode | PlannedCircuit, b: PlannedNode | PlannedCircuit): string[] {
  return lines.filter((_, i) => !sameSide(a, b, i === 0 ? 'download' : 'upload'));
}

function sameLeaf(a: LeafQdisc | null, b: LeafQdisc | null): boolean {
  if (a === b) return true;
  if (!a || !b || a.kind !== b.kind || a.args.length !== b.args.length) return false;
  for (let i = 0; i < a.args.length; i++) if (a.args[i] !== b.args[i]) return false;
  return true;
}

function sameLeaves(a: PlannedCircuit, b: PlannedCircuit): boolean {
  return (
    a.download.leafHandle === b.download.leafHandle &&
    a.upload.leafHandle === b.upload.leafHandle &&
    sameLeaf(a.download.leaf, b.download.leaf) &&
    sameLeaf(a.upload.leaf, b.upload.leaf)
  );
}

function sameSlot(a: PlannedCircuit, b: PlannedCircuit): boolean {
  return a.queue === b.queue && a.minor === b.minor && a.parentMinor === b.parentMinor;
}

function sameTarget(a: IpMapping, b: IpMapping): boolean {
  return a.cpu === b.cpu && a.major === b.major && a.minor === b.minor && a.circuitHash === b.circuitHash && a.deviceHash === b.deviceHash;
}

/** The delete lines of a circuit's classes (leaf qdiscs go with their class); none for a lazy circuit without its class. */
function circuitDeleteLines(plan: ShapingPlan, c: PlannedCircuit, opts: CompileOptions): string[] {
  if (lazyOmits(opts, c) === 'class') return [];
  return sidesOf(plan).map((s) => `class del dev ${s.dev} classid ${formatClassId(c.queue + s.majorOffset, c.minor)}`);
}

/** Leaf changes of a circuit whose class stays: replace or delete the leaf qdisc per side. */
function leafChangeLines(plan: ShapingPlan, before: PlannedCircuit, after: PlannedCircuit, opts: CompileOptions): string[] {
  const lines: string[] = [];
  for (const s of sidesOf(plan)) {
    const b = s.dir === 'download' ? before.download : before.upload;
    const a = s.dir === 'download' ? after.download : after.upload;
    if (sameLeaf(b.leaf, a.leaf) && b.leafHandle === a.leafHandle) continue;
    const classid = formatClassId(after.queue + s.majorOffset, after.minor);
    if (b.leaf && b.leafHandle && !lazyOmits(opts, after)) lines.push(`qdisc del dev ${s.dev} parent ${classid}`);
    if (a.leaf && a.leafHandle) {
      const all = compileCircuitLines(plan, after, opts, 'add').filter((l) => l.startsWith(`qdisc add dev ${s.dev} parent ${classid} `));
      lines.push(...all);
    }
  }
  return lines;
}

/** The mappings the plan installs, by prefix (observe mode: class 0, counted but unshaped). */
function byPrefix(plan: ShapingPlan): Map<string, IpMapping> {
  const m = new Map<string, IpMapping>();
  for (const x of compileMappings(plan)) m.set(x.prefix, x);
  return m;
}

function byId<T extends { id: string }>(items: T[]): Map<string, T> {
  const m = new Map<string, T>();
  for (const x of items) m.set(x.id, x);
  return m;
}

export function diffPlans(applied: ShapingPlan | undefined, next: ShapingPlan, opts: CompileOptions = {}): ApplyOps {
  const summary = { circuitsAdded: 0, circuitsRemoved: 0, circuitsChanged: 0, nodesChanged: 0, mappingsDeleted: 0, mappingsWritten: 0 };
  const nextMaps = byPrefix(next);
  if (!applied) {
    return { mode: 'full', reason: 'nothing applied yet', mapDelete: [], tc: [], mapUpsert: [...nextMaps.values()], summary: { ...summary, mappingsWritten: nextMaps.size } };
  }
  const structural = structuralDifference(applied, next);
  const oldMaps = byPrefix(applied);
  if (structural) {
    const mapDelete = [...oldMaps.keys()].filter((p) => !nextMaps.has(p));
    return { mode: 'full', reason: structural, mapDelete, tc: [], mapUpsert: [...nextMaps.values()], summary: { ...summary, mappingsDeleted: mapDelete.length, mappingsWritten: nextMaps.size } };
  }

  const tcRemove: string[] = [];
  const tcChange: string[] = [];
  const tcAdd: string[] = [];
  if (next.mode === 'shape') {
    const oldNodes = new Map(applied.nodes.map((n) => [n.path, n]));
    for (const n of next.nodes) {
      const o = oldNodes.get(n.path)!;
      if (!sameRates(o, n)) {
        tcChange.push(...changedSides(compileNodeLines(next, n, 'change'), o, n));
        summary.nodesChanged++;
      }
    }
    const oldCircuits = byId(applied.circuits);
    const newCircuits = byId(next.circuits);
    for (const [id, c] of oldCircuits) {
      const n = newCircuits.get(id);
      if (!n || !sameSlot(c, n)) {
        tcRemove.push(...circuitDeleteLines(applied, c, opts));
        summary.circuitsRemoved++;
      }
    }
    for (const c of next.circuits) {
      const o = oldCircuits.get(c.id);
      if (!o || !sameSlot(o, c)) {
        tcAdd.push(...compileCircuitLines(next, c, opts, 'add'));
        summary.circuitsAdded++;
        continue;
      }
      const rates = sameRates(o, c);
      const leaves = sameLeaves(o, c);
      if (rates && leaves) continue;
      summary.circuitsChanged++;
      if (!rates) tcChange.push(...changedSides(compileCircuitLines(next, c, opts, 'change').filter((l) => l.startsWith('class ')), o, c));
      if (!leaves) tcChange.push(...leafChangeLines(next, o, c, opts));
    }
  }

  const mapDelete: string[] = [];
  for (const prefix of oldMaps.keys()) if (!nextMaps.has(prefix)) mapDelete.push(prefix);
  // A changed target is rewritten in place (one map update, no window without a mapping), but
  // when its old class is being deleted the old entry must go first: delete it too.
  const removedClasses = new Set(tcRemove.map((l) => l.split(' classid ')[1]));
  const mapUpsert: IpMapping[] = [];
  for (const [prefix, m] of nextMaps) {
    const o = oldMaps.get(prefix);
    if (o && sameTarget(o, m)) continue;
    if (o && removedClasses.has(formatClassId(o.major, o.minor))) mapDelete.push(prefix);
    mapUpsert.push(m);
  }
  summary.mappingsDeleted = mapDelete.length;
  summary.mappingsWritten = mapUpsert.length;
  const tc = [...tcRemove, ...tcChange, ...tcAdd];
  const mode = tc.length || mapDelete.length || mapUpsert.length ? 'incremental' : 'none';
  return { mode, mapDelete, tc, mapUpsert, summary };
}
