/**
 * Circuits (ShapedDevices.csv rows) against the edited tree: how many hang under each node, and
 * which ones an unsaved edit would leave without their parent. A circuit names its parent by
 * `Parent Node` (else `Parent Node ID`), matched against every node's key, `name`, `id` and
 * `active_attachment_name` — as lqosd matches them (lib/web/orphans.ts).
 *
 * PUT /api/network can move such circuits only to the nearest node that remains ABOVE their old
 * parent; it cannot follow a rename (a rename is a removal plus an addition to it). The editor
 * therefore tracks renames itself, to say so before the save.
 */
import { aliasesOf, allNodes, type NetworkObject, pathKey } from './networkTree.ts';

/** What the editor needs of a circuit. */
export interface CircuitRef {
  parentNode: string;
  parentNodeId?: string;
}

/** The name a circuit uses for its parent ('' = none). */
const parentName = (c: CircuitRef) => (c.parentNode !== '' ? c.parentNode : (c.parentNodeId ?? ''));

/** The node a circuit hangs under: its Parent Node ID when that names a node, else its Parent Node (as lib/inputs/validate.ts). */
function parentPath(c: CircuitRef, index: Map<string, string[]>): string[] | undefined {
  return (c.parentNodeId ? index.get(c.parentNodeId) : undefined) ?? (c.parentNode !== '' ? index.get(c.parentNode) : undefined);
}

/** Alias → the path of the node it identifies (the first claim wins, as in lqosd). */
function aliasIndex(net: NetworkObject): Map<string, string[]> {
  const m = new Map<string, string[]>();
  for (const e of allNodes(net)) for (const a of aliasesOf(e.key, e.node)) if (!m.has(a)) m.set(a, e.path);
  return m;
}

export interface CircuitCount {
  /** Circuits naming this node as their parent. */
  direct: number;
  /** Circuits under this node or any node below it. */
  total: number;
}

/** Circuits per node, by pathKey. Nodes without circuits are absent. */
export function circuitCounts(net: NetworkObject, circuits: readonly CircuitRef[]): Map<string, CircuitCount> {
  const index = aliasIndex(net);
  const out = new Map<string, CircuitCount>();
  for (const c of circuits) {
    const path = parentPath(c, index);
    if (!path) continue;
    for (let i = 1; i <= path.length; i++) {
      const k = pathKey(path.slice(0, i));
      const n = out.get(k) ?? { direct: 0, total: 0 };
      n.total++;
      if (i === path.length) n.direct++;
      out.set(k, n);
    }
  }
  return out;
}

/** Renames made in the editor: the original name → the current one. */
export type Renames = ReadonlyMap<string, string>;

/** `renames` after renaming `from` to `to` (a node renamed twice keeps its original name as the key). */
export function recordRename(renames: Renames, from: string, to: string): Map<string, string> {
  const out = new Map(renames);
  const original = [...out].find(([, now]) => now === from)?.[0] ?? from;
  if (original === to) out.delete(original);
  else out.set(original, to);
  return out;
}

export interface PendingOrphans {
  /** The parent name the circuits use, gone from the edited tree. */
  parent: string;
  count: number;
  /** The node's current name when it was renamed rather than deleted. */
  renamedTo?: string;
}

/** Circuits whose parent exists in `saved` but not in `edited`, by the parent they name. */
export function pendingOrphans(saved: NetworkObject, edited: NetworkObject, circuits: readonly CircuitRef[], renames: Renames): PendingOrphans[] {
  const before = aliasIndex(saved);
  const after = aliasIndex(edited);
  const groups = new Map<string, PendingOrphans>();
  for (const c of circuits) {
    const was = parentPath(c, before);
    if (!was || parentPath(c, after)) continue;
    const name = parentName(c);
    const g = groups.get(name) ?? { parent: name, count: 0, ...renamedTo(was, renames, after) };
    g.count++;
    groups.set(name, g);
  }
  return [...groups.values()];
}

/** The current name of the node at `path` (in the saved tree) when it was renamed and is still there. */
function renamedTo(path: readonly string[], renames: Renames, after: Map<string, string[]>): { renamedTo?: string } {
  const to = renames.get(path[path.length - 1]!);
  return to !== undefined && after.has(to) ? { renamedTo: to } : {};
}
