/**
 * Builds the physical shaping tree from network.json nodes (pure):
 * virtual nodes removed (children promoted), missing bandwidth inherited, ceilings clamped to
 * the parent, depth limited to what HTB can nest, and circuits attached to their parent node.
 */
import { GENERATED_PN_RE, nodesByAlias, unknownParentIdIssue } from '../inputs/network.ts';
import type { Circuit, InputIssue, NetworkNode } from '../model.ts';

/** HTB nests at most 8 class levels: N:1 root + 6 site levels + the circuit class. */
export const MAX_SITE_DEPTH = 6;

export interface TreeNode {
  name: string;
  path: string;
  id?: string;
  /** Line of the node's key in network.json (undefined for generated parents). */
  line?: number;
  generated: boolean;
  depth: number;
  ceilDown: number;
  ceilUp: number;
  /** Operator-requested assured rate (network.json `…Min`), if any. */
  minDown?: number;
  minUp?: number;
  children: TreeNode[];
  circuits: Circuit[];
}

export interface PhysicalTree {
  top: TreeNode[];
  /**
   * Every alias (key, name, id, active_attachment_name) of every node → the real node a circuit
   * naming it hangs under: the node itself, or for a virtual node its nearest real ancestor
   * (null = none, i.e. a top-level virtual node). The first claim wins (validation refuses conflicts).
   * Resolved as the validator resolves them (lib/inputs/network.ts nodesByAlias).
   */
  byAlias: Map<string, TreeNode | null>;
  issues: InputIssue[];
}

interface BuildArgs {
  network: NetworkNode[];
  linkDown: number;
  linkUp: number;
  file: string;
}

export function buildPhysicalTree({ network, linkDown, linkUp, file }: BuildArgs): PhysicalTree {
  const issues: InputIssue[] = [];
  /** Each real node of network.json → its node of the tree. */
  const treeNodeOf = new Map<NetworkNode, TreeNode>();
  let flattenedWarned = false;

  const visit = (
    nodes: NetworkNode[],
    parent: TreeNode | null,
    into: TreeNode[],
    depthAnchor: TreeNode | null,
  ): void => {
    for (const n of nodes) {
      if (n.virtual) {
        visit(n.children, parent, into, depthAnchor);
        continue;
      }
      const parentCeilDown = parent ? parent.ceilDown : linkDown;
      const parentCeilUp = parent ? parent.ceilUp : linkUp;
      const ownDown = n.downloadMbps > 0 ? n.downloadMbps : parentCeilDown;
      const ownUp = n.uploadMbps > 0 ? n.uploadMbps : parentCeilUp;
      if (ownDown > parentCeilDown || ownUp > parentCeilUp) {
        issues.push({
          severity: 'warning',
          code: 'node-ceil-clamped',
          file,
          column: n.name,
          value: `${n.downloadMbps}/${n.uploadMbps}`,
          message: `node "${n.name}" asks for ${ownDown}/${ownUp} Mbps but its parent allows ${parentCeilDown}/${parentCeilUp} Mbps; clamped to the parent`,
        });
      }
      // Nodes deeper than HTB allows hang directly under the deepest allowed ancestor.
      const realParent = parent && parent.depth >= MAX_SITE_DEPTH ? depthAnchor : parent;
      if (parent && parent.depth >= MAX_SITE_DEPTH && !flattenedWarned) {
        flattenedWarned = true;
        issues.push({
          severity: 'warning',
          code: 'tree-flattened',
          file,
          column: n.name,
          message: `network.json nests deeper than ${MAX_SITE_DEPTH} levels; nodes below level ${MAX_SITE_DEPTH} are shaped as direct children of their level-${MAX_SITE_DEPTH - 1} ancestor`,
        });
      }
      const depth = realParent ? realParent.depth + 1 : 1;
      const node: TreeNode = {
        name: n.name,
        path: realParent ? `${realParent.path}/${n.name}` : n.name,
        id: n.id,
        line: n.line,
        generated: false,
        depth,
        ceilDown: Math.min(ownDown, parentCeilDown),
        ceilUp: Math.min(ownUp, parentCeilUp),
        minDown: n.downloadMinMbps && n.downloadMinMbps > 0 ? n.downloadMinMbps : undefined,
        minUp: n.uploadMinMbps && n.uploadMinMbps > 0 ? n.uploadMinMbps : undefined,
        children: [],
        circuits: [],
      };
      treeNodeOf.set(n, node);
      (realParent ? realParent.children : into).push(node);
      const anchor = depth === MAX_SITE_DEPTH - 1 ? node : depthAnchor;
      visit(n.children, node, into, anchor);
    }
  };

  const top: TreeNode[] = [];
  visit(network, null, top, null);
  const byAlias = new Map<string, TreeNode | null>();
  for (const [alias, { attachTo }] of nodesByAlias(network)) byAlias.set(alias, attachTo && treeNodeOf.get(attachTo)!);
  return { top, byAlias, issues };
}

export interface Attachment {
  attached: Array<{ circuit: Circuit; node: TreeNode }>;
  /** Circuits for the generated parent nodes: no parent, or a parent that falls back to them. */
  unparented: Circuit[];
  /** Circuits whose Parent Node names a `Generated_PN_<n>` that network.json does not have. */
  toGenerated: Circuit[];
  issues: InputIssue[];
}

/**
 * Resolves each circuit's parent: `Parent Node ID`, then `Parent Node`, against every alias of a
 * node (key, name, id, active_attachment_name). Virtual parents resolve to the nearest real
 * ancestor. Falls back to the generated parents (as upstream does) for an unknown Parent Node ID
 * with an empty Parent Node (warned); a Parent Node naming a generated parent that network.json
 * lacks is left to the planner (`toGenerated`); any other unknown parent leaves the circuit unshaped (warned).
 */
export function attachCircuits(tree: PhysicalTree, circuits: Circuit[], devicesFile: string, networkFile?: string): Attachment {
  const flat = tree.top.length === 0;
  const out: Attachment = { attached: [], unparented: [], toGenerated: [], issues: [] };
  for (const c of circuits) {
    if (flat || (!c.parentNode && !c.parentNodeId)) {
      out.unparented.push(c);
      continue;
    }
    let node: TreeNode | null | undefined;
    if (c.parentNodeId) node = tree.byAlias.get(c.parentNodeId);
    if (node === undefined && c.parentNode) node = tree.byAlias.get(c.parentNode);
    if (node) out.attached.push({ circuit: c, node });
    else if (node === null) out.unparented.push(c);
    else if (!c.parentNode) {
      out.unparented.push(c);
      out.issues.push(unknownParentIdIssue(devicesFile, c, networkFile));
    } else if (GENERATED_PN_RE.test(c.parentNode)) out.toGenerated.push(c);
    else {
      out.issues.push({
        severity: 'warning',
        code: 'unknown-parent',
        file: devicesFile,
        line: c.line,
        column: c.parentNodeId ? 'Parent Node ID' : 'Parent Node',
        value: c.parentNodeId || c.parentNode,
        message: `circuit "${c.id}" (${c.name}) names parent "${c.parentNodeId || c.parentNode}", which is not a node in network.json; this circuit is not shaped until the parent exists or the row is fixed`,
      });
    }
  }
  return out;
}
