/**
 * Builds the physical shaping tree from network.json nodes (pure):
 * virtual nodes removed (children promoted), missing bandwidth inherited, ceilings clamped to
 * the parent, depth limited to what HTB can nest, and circuits attached to their parent node.
 */
import type { Circuit, InputIssue, NetworkNode } from '../model.ts';

/** HTB nests at most 8 class levels: N:1 root + 6 site levels + the circuit class. */
export const MAX_SITE_DEPTH = 6;

export interface TreeNode {
  name: string;
  path: string;
  id?: string;
  displayName?: string;
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
  /** Every real node by key name. */
  byName: Map<string, TreeNode>;
  /** Virtual node name → nearest real ancestor (null = top level, i.e. no real ancestor). */
  virtualToReal: Map<string, TreeNode | null>;
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
  const byName = new Map<string, TreeNode>();
  const virtualToReal = new Map<string, TreeNode | null>();
  let flattenedWarned = false;

  const visit = (
    nodes: NetworkNode[],
    parent: TreeNode | null,
    into: TreeNode[],
    depthAnchor: TreeNode | null,
  ): void => {
    for (const n of nodes) {
      if (n.virtual) {
        virtualToReal.set(n.name, parent);
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
        displayName: n.displayName,
        generated: false,
        depth,
        ceilDown: Math.min(ownDown, parentCeilDown),
        ceilUp: Math.min(ownUp, parentCeilUp),
        minDown: n.downloadMinMbps && n.downloadMinMbps > 0 ? n.downloadMinMbps : undefined,
        minUp: n.uploadMinMbps && n.uploadMinMbps > 0 ? n.uploadMinMbps : undefined,
        children: [],
        circuits: [],
      };
      byName.set(n.name, node);
      (realParent ? realParent.children : into).push(node);
      const anchor = depth === MAX_SITE_DEPTH - 1 ? node : depthAnchor;
      visit(n.children, node, into, anchor);
    }
  };

  const top: TreeNode[] = [];
  visit(network, null, top, null);
  return { top, byName, virtualToReal, issues };
}

export interface Attachment {
  attached: Array<{ circuit: Circuit; node: TreeNode }>;
  unparented: Circuit[];
  unattached: Circuit[];
  issues: InputIssue[];
}

/**
 * Resolves each circuit's parent: `Parent Node ID` against node ids first, then `Parent Node`
 * against node keys and display names. Virtual parents resolve to the nearest real ancestor.
 */
export function attachCircuits(tree: PhysicalTree, circuits: Circuit[], devicesFile: string): Attachment {
  const byId = new Map<string, TreeNode>();
  const byAlias = new Map<string, TreeNode>();
  const walk = (nodes: TreeNode[]) => {
    for (const n of nodes) {
      if (n.id && !byId.has(n.id)) byId.set(n.id, n);
      if (n.displayName && !byAlias.has(n.displayName)) byAlias.set(n.displayName, n);
      walk(n.children);
    }
  };
  walk(tree.top);

  const flat = tree.top.length === 0;
  const out: Attachment = { attached: [], unparented: [], unattached: [], issues: [] };
  for (const c of circuits) {
    if (flat || (!c.parentNode && !c.parentNodeId)) {
      out.unparented.push(c);
      continue;
    }
    let node: TreeNode | null | undefined;
    if (c.parentNodeId) node = byId.get(c.parentNodeId);
    if (!node && c.parentNode) {
      node = tree.byName.get(c.parentNode) ?? byAlias.get(c.parentNode);
      if (!node && tree.virtualToReal.has(c.parentNode)) {
        const real = tree.virtualToReal.get(c.parentNode)!;
        if (real) node = real;
        else {
          out.unparented.push(c);
          continue;
        }
      }
    }
    if (!node) {
      out.unattached.push(c);
      out.issues.push({
        severity: 'warning',
        code: 'unknown-parent',
        file: devicesFile,
        line: c.line,
        column: c.parentNodeId ? 'Parent Node ID' : 'Parent Node',
        value: c.parentNodeId || c.parentNode,
        message: `circuit "${c.id}" (${c.name}) names parent "${c.parentNodeId || c.parentNode}", which is not a node in network.json; this circuit is not shaped until the parent exists or the row is fixed`,
      });
      continue;
    }
    out.attached.push({ circuit: c, node });
  }
  return out;
}
