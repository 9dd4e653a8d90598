/**
 * The infrastructure tree of one build (rules 1–3 and 5–7 in graph.ts): parents resolved by id or
 * name, cycles broken, rates clamped top-down, the strategy's projection onto exported nodes, unique
 * exported names and the network.json text.
 */
import type { BuildOptions, InfraKind, InfraNodeInput, Strategy } from './graphModel.ts';

/** A node placed in the tree, with its clamped rates. */
export interface Node extends InfraNodeInput {
  parent: Node | null;
  children: Node[];
  dl: number;
  ul: number;
}

/** An exported node: its source node, exported parent (null = top level) and final name. */
export interface OutNode {
  src: Node;
  parent: OutNode | null;
  children: OutNode[];
  name: string;
}

/** What a strategy exports, and where each circuit hangs. */
export interface Projection {
  top: OutNode[];
  exported: Map<Node, OutNode>;
  /** Circuit id → the exported node it hangs below (null = top level). */
  circuitParent: Map<string, OutNode | null>;
}

const ROOT_ID = '\u0000root';

/** The tree of the added nodes below an invisible root that carries the link rates. */
export class NodeTree {
  readonly root: Node;
  private readonly byId = new Map<string, Node>();
  private readonly byName = new Map<string, Node>();
  private readonly opts: BuildOptions;
  private readonly excluded: ReadonlyMap<string, string>;
  /** Excluded node name → how many nodes and circuits named it as parent (placed at the top level instead). */
  private readonly lifted = new Map<string, { node: number; circuit: number }>();
  private readonly warn: (msg: string) => void;

  /** `excluded`: id → name of the nodes left out by exclude_sites (see parentOf). */
  constructor(nodes: Iterable<InfraNodeInput>, opts: BuildOptions, excluded: ReadonlyMap<string, string>, warn: (msg: string) => void) {
    this.opts = opts;
    this.excluded = excluded;
    this.warn = warn;
    this.root = { id: ROOT_ID, name: '', kind: 'site', parent: null, children: [], dl: opts.linkMbps.download, ul: opts.linkMbps.upload };
    for (const n of nodes) {
      const node: Node = { ...n, parent: null, children: [], dl: 0, ul: 0 };
      this.byId.set(n.id, node);
      if (!this.byName.has(n.name)) this.byName.set(n.name, node);
    }
    this.placeNodes();
    this.breakCycles();
    for (const node of this.byId.values()) node.parent!.children.push(node);
  }

  /**
   * Where a node or circuit hangs: its parent (by id, else by name), else the parent its exception CPE
   * names, else the top level. An unknown parent → top level with a warning; a parent left out by
   * exclude_sites → top level, counted for one warning per such node (reportExcluded).
   */
  parentOf(what: 'node' | 'circuit', id: string, name: string, parentId: string | null | undefined): Node {
    let ref = parentId ?? '';
    if (ref === '') ref = this.exception(id, name) ?? '';
    if (ref === '') return this.root;
    const p = this.byId.get(ref) ?? this.byName.get(ref);
    if (p) return p;
    const excludedName = this.excluded.get(ref) ?? ([...this.excluded.values()].includes(ref) ? ref : undefined);
    if (excludedName === undefined) {
      this.warn(`${what} "${name}" (${id}) names parent "${ref}", which is unknown; placed at the top level`);
    } else {
      const n = this.lifted.get(excludedName) ?? { node: 0, circuit: 0 };
      n[what]++;
      this.lifted.set(excludedName, n);
    }
    return this.root;
  }

  /**
   * One warning per node left out by exclude_sites that others hung under: its child nodes and
   * circuits are at the top level now, without its rate limit (upstream lifts them silently).
   */
  reportExcluded(): void {
    const plural = (n: number, w: string) => `${n} ${w}${n === 1 ? '' : 's'}`;
    for (const [name, n] of this.lifted) {
      const what = [n.node ? plural(n.node, 'child node') : '', n.circuit ? plural(n.circuit, 'circuit') : ''].filter(Boolean).join(' and ');
      this.warn(
        `"${name}" is in uisp_integration.exclude_sites: its ${what} are placed at the top level instead, not limited by its rates; to leave them out too, list them in exclude_sites (or shape them under another node)`,
      );
    }
  }

  /** The node itself or its nearest ancestor of `kind`, or null. */
  nearest(n: Node, kind: InfraKind): Node | null {
    for (let p: Node | null = n; p && p !== this.root; p = p.parent) if (p.kind === kind) return p;
    return null;
  }

  /** Rule 5: a node without rates gets `defaultNodeMbps`; every node is capped by its parent (whole Mbps, at least 1). */
  clampRates(n: Node = this.root): void {
    const d = this.opts.defaultNodeMbps;
    for (const c of n.children) {
      const dl = c.downloadMbps && c.downloadMbps > 0 ? c.downloadMbps : d.download;
      const ul = c.uploadMbps && c.uploadMbps > 0 ? c.uploadMbps : d.upload;
      c.dl = Math.max(1, Math.floor(Math.min(dl, n.dl)));
      c.ul = Math.max(1, Math.floor(Math.min(ul, n.ul)));
      this.clampRates(c);
    }
  }

  private exception(id: string, name: string): string | undefined {
    const cpes = this.opts.exceptionCpes;
    return cpes.find((e) => e.cpe === id)?.parent ?? cpes.find((e) => e.cpe === name)?.parent;
  }

  private placeNodes(): void {
    for (const node of this.byId.values()) {
      node.parent = this.opts.promoteToRoot.includes(node.name) ? this.root : this.parentOf('node', node.id, node.name, node.parentId);
      if (node.parent === node) node.parent = this.root;
    }
  }

  /** A node whose parent chain does not reach the root goes to the top level. */
  private breakCycles(): void {
    for (const node of this.byId.values()) {
      const seen = new Set<Node>();
      let p: Node | null = node;
      while (p && p !== this.root && !seen.has(p)) {
        seen.add(p);
        p = p.parent;
      }
      if (p !== this.root) {
        this.warn(`node "${node.name}" (${node.id}) is part of a parent cycle; placed at the top level`);
        node.parent = this.root;
      }
    }
  }
}

/** Rule 6: the nodes the strategy exports, and each circuit's exported parent. */
export function project(tree: NodeTree, strategy: Strategy, circuits: ReadonlyArray<{ id: string; attach: Node }>): Projection {
  const p: Projection = { top: [], exported: new Map(), circuitParent: new Map() };
  const exportNode = (src: Node, parent: OutNode | null): OutNode => {
    let e = p.exported.get(src);
    if (e) return e;
    e = { src, parent, children: [], name: src.name };
    p.exported.set(src, e);
    (parent ? parent.children : p.top).push(e);
    return e;
  };
  switch (strategy) {
    case 'full': {
      const walk = (n: Node, parent: OutNode | null) => {
        for (const c of [...n.children].sort(byName)) walk(c, exportNode(c, parent));
      };
      walk(tree.root, null);
      for (const c of circuits) p.circuitParent.set(c.id, c.attach === tree.root ? null : p.exported.get(c.attach)!);
      break;
    }
    case 'flat':
      for (const c of circuits) p.circuitParent.set(c.id, null);
      break;
    case 'ap_only':
      for (const c of circuits) {
        const ap = tree.nearest(c.attach, 'ap');
        p.circuitParent.set(c.id, ap ? exportNode(ap, null) : null);
      }
      break;
    case 'ap_site':
      for (const c of circuits) {
        const ap = tree.nearest(c.attach, 'ap');
        const site = tree.nearest(ap ?? c.attach, 'site');
        const siteOut = site ? exportNode(site, null) : null;
        p.circuitParent.set(c.id, ap ? exportNode(ap, siteOut) : siteOut);
      }
      break;
  }
  return p;
}

/**
 * Rule 7: sorts every level by name and makes the exported names unique — sites before APs, shallower
 * before deeper, then by name keep the plain name; the others get ` (<id>)` (and a number if needed).
 */
export function uniqueNames(top: OutNode[], warn: (msg: string) => void): void {
  const bfs: OutNode[] = [];
  for (let level = sortLevel(top); level.length > 0; ) {
    bfs.push(...level);
    level = level.flatMap((e) => sortLevel(e.children));
  }
  const used = new Set<string>();
  for (const e of [...bfs.filter((x) => x.src.kind === 'site'), ...bfs.filter((x) => x.src.kind !== 'site')]) {
    let name = e.src.name.trim() === '' ? e.src.id : e.src.name;
    if (used.has(name)) {
      const base = `${name} (${e.src.networkJsonId || e.src.id})`;
      name = base;
      for (let k = 2; used.has(name); k++) name = `${base} ${k}`;
      warn(`node name "${e.src.name}" is used more than once; ${e.src.id} is exported as "${name}"`);
    }
    used.add(name);
    e.name = name;
  }
}

/** network.json text of the exported nodes. */
export function renderNetworkJson(top: OutNode[]): string {
  return `${JSON.stringify(renderLevel(top), null, 2)}\n`;
}

function renderLevel(list: OutNode[]): Record<string, unknown> {
  const obj: Record<string, unknown> = {};
  for (const e of list) {
    const n = e.src;
    const v: Record<string, unknown> = { downloadBandwidthMbps: n.dl, uploadBandwidthMbps: n.ul, type: n.kind };
    if (n.networkJsonId) v.id = n.networkJsonId;
    if (Number.isFinite(n.latitude) && Number.isFinite(n.longitude)) {
      v.latitude = n.latitude;
      v.longitude = n.longitude;
    }
    if (e.children.length > 0) v.children = renderLevel(e.children);
    obj[e.name] = v;
  }
  return obj;
}

/** Sorts a level in place (network.json keeps this order) and returns it. */
function sortLevel(list: OutNode[]): OutNode[] {
  return list.sort((a, b) => byName(a.src, b.src));
}

/** Children order in network.json: by name, then id (independent of the CRM's list order). */
function byName(a: InfraNodeInput, b: InfraNodeInput): number {
  return a.name < b.name ? -1 : a.name > b.name ? 1 : a.id < b.id ? -1 : a.id > b.id ? 1 : 0;
}
