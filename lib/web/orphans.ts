/**
 * A network.json save that removes (or renames) nodes circuits hang under would leave those
 * circuits without a parent, so they would stop being shaped from their rows. lqosd refuses such a
 * save until the admin says what happens to them: move each to the nearest node that remains above
 * its old parent (`reparent`), or save anyway (`keep`).
 */
import type { OrphanDecision, OrphanGroup, OrphanReport } from '../api/inputs.ts';
import type { Circuit, InputIssue, NetworkNode } from '../model.ts';

export type { OrphanDecision, OrphanGroup, OrphanReport };

/** Every name a circuit may use for a node (key, display name, id, attachment name) → the node's key, and each key's parent key. */
function index(nodes: readonly NetworkNode[]): { alias: Map<string, string>; parentOf: Map<string, string | null> } {
  const alias = new Map<string, string>();
  const parentOf = new Map<string, string | null>();
  const walk = (list: readonly NetworkNode[], parent: string | null) => {
    for (const n of list) {
      for (const a of [n.name, n.displayName, n.id, n.attachmentName]) if (a) alias.set(a, n.name);
      parentOf.set(n.name, parent);
      walk(n.children, n.name);
    }
  };
  walk(nodes, null);
  return { alias, parentOf };
}

/**
 * The circuits that had a parent in `before` and have none in `after` (the validator's
 * `unknown-parent` warnings of the save), grouped by the parent they name.
 */
export function orphansOf(circuits: readonly Circuit[], issues: readonly InputIssue[], devicesFile: string, before: readonly NetworkNode[], after: readonly NetworkNode[]): OrphanReport {
  const lines = new Set(issues.filter((i) => i.code === 'unknown-parent' && i.file === devicesFile && i.line !== undefined).map((i) => i.line!));
  const old = index(before);
  const now = index(after);
  const groups = new Map<string, OrphanGroup>();
  for (const c of circuits) {
    if (!lines.has(c.line)) continue;
    const named = c.parentNode !== '' ? c.parentNode : c.parentNodeId;
    const key = old.alias.get(named);
    if (key === undefined) continue; // Already without a parent before this save.
    let up = old.parentOf.get(key) ?? null;
    while (up !== null && !now.alias.has(up)) up = old.parentOf.get(up) ?? null;
    const g = groups.get(named) ?? { parent: named, moveTo: up ?? '', circuits: [] };
    g.circuits.push({ id: c.id, name: c.name });
    groups.set(named, g);
  }
  const list = [...groups.values()];
  return { count: list.reduce((n, g) => n + g.circuits.length, 0), groups: list };
}

/** The CSV edits that move every orphan to its group's `moveTo` (every row of the circuit). */
export function reparentEdits(circuits: readonly Circuit[], report: OrphanReport): Map<number, { parentNode: string; parentNodeId?: string }> {
  const target = new Map<string, string>();
  for (const g of report.groups) for (const c of g.circuits) target.set(c.id, g.moveTo);
  const edits = new Map<number, { parentNode: string; parentNodeId?: string }>();
  for (const c of circuits) {
    const to = target.get(c.id);
    if (to === undefined) continue;
    // The ID column, when the circuit used it, is cleared (the new parent is named instead).
    const fields = c.parentNodeId !== '' ? { parentNode: to, parentNodeId: '' } : { parentNode: to };
    for (const line of new Set([c.line, ...c.devices.map((d) => d.line)])) edits.set(line, fields);
  }
  return edits;
}
