/**
 * The planner (pure): validated inputs + plan config + previous planner state →
 * a ShapingPlan and the next planner state.
 *
 * Layout per direction and queue N (1-based; upload majors are N + stickOffset):
 *   mq 7fff: → HTB N: (default class N:2)
 *     N:1  link rate, parent of everything on the queue
 *       N:2  default class for traffic of unknown hosts (small assured rate, ceil = link)
 *       N:m  top-level nodes → nested nodes → circuit classes (+ leaf qdisc)
 * Class minors, queues and leaf handles are sticky (see plannerState.ts).
 */
import type {
  Circuit,
  DirectionRates,
  InputIssue,
  IpMapping,
  LeafQdisc,
  PlannedCircuit,
  PlannedNode,
  ShapingInputs,
  ShapingPlan,
} from '../model.ts';
import { hash64 } from '../util/hash.ts';
import { IdPool } from './allocator.ts';
import type { PlanConfig } from './planConfig.ts';
import { emptyPlannerState, type PlannerState } from './plannerState.ts';
import { chooseLeaf, parseSqmString } from './sqm.ts';
import { attachCircuits, buildPhysicalTree, type TreeNode } from './tree.ts';

export const ROOT_MINOR = 1;
export const DEFAULT_MINOR = 2;
export const FIRST_MINOR = 3;
export const LAST_MINOR = 0xfffe;
/** Leaf qdisc handles of circuits; 1..0x0fff are HTB majors, 0x1000+N the default-class leaves. */
export const FIRST_LEAF_HANDLE = 0x2000;
export const LAST_LEAF_HANDLE = 0xfffe;
export const MQ_HANDLE = 0x7fff;
/** Smallest rate HTB is given, Mbps (10 kbit/s). */
export const MIN_RATE_MBPS = 0.01;

export interface PlanArgs {
  inputs: ShapingInputs;
  config: PlanConfig;
  previous?: PlannerState;
  files?: { devices: string; network: string };
}

export interface PlanResult {
  plan: ShapingPlan;
  state: PlannerState;
  /** Planning problems that make the plan unsafe to apply (e.g. id space exhausted). */
  errors: InputIssue[];
}

export function generatedPnName(k: number): string {
  return `Generated_PN_${k}`;
}

export function defaultClassRate(linkMbps: number): number {
  return Math.max(MIN_RATE_MBPS, round3(linkMbps / 100));
}

function round3(v: number): number {
  return Math.round(v * 1000) / 1000;
}

/** What the planning stages share: config, file names for issues, previous and next state, issues found. */
interface PlanContext {
  config: PlanConfig;
  devicesFile: string;
  networkFile: string;
  prev: PlannerState;
  next: PlannerState;
  warnings: InputIssue[];
  errors: InputIssue[];
}

/** A node with the queue its top-level ancestor is on. */
interface QueuedNode {
  node: TreeNode;
  queue: number;
}

/** HTB class minor of each node and circuit. */
interface ClassMinors {
  site: Map<TreeNode, number>;
  circuit: Map<Circuit, number>;
}

/** One value per direction: rates or ceilings in Mbps, or leaf qdisc handles. */
interface DownUp {
  down: number;
  up: number;
}

/** Plans queues, class ids, leaf handles and rates for every node and circuit (stages 1–5 below). */
export function planShaping({ inputs, config, previous, files }: PlanArgs): PlanResult {
  const ctx: PlanContext = {
    config,
    devicesFile: files?.devices ?? 'ShapedDevices.csv',
    networkFile: files?.network ?? 'network.json',
    prev: previous ?? emptyPlannerState(),
    next: emptyPlannerState(),
    warnings: [],
    errors: [],
  };
  // 1–2. Physical tree with circuits attached, plus generated parents for unparented circuits.
  const top = buildTopLevel(ctx, inputs);
  // 3. Queue of each top-level node.
  const queueOf = assignQueues(ctx, top);
  // 4. Class minors (sticky per queue), then leaf handles.
  const ordered = nodesInQueueOrder(top, queueOf);
  const minors = assignClassMinors(ctx, ordered);
  const leafOf = assignLeafHandles(ctx, ordered, minors.circuit);
  // 5. Rates, top-down, fitting children's assured rates into the parent's.
  const defaultLeaf = parseSqmString(config.defaultSqm);
  const out = new PlanEmitter(ctx, minors, leafOf, fitTopLevelRates(config, top, queueOf), defaultLeaf);
  for (const n of top) out.emitNode(n, queueOf.get(n)!, ROOT_MINOR);

  const plan: ShapingPlan = {
    interfaces: { ...config.interfaces },
    queues: config.queues,
    stickOffset: config.interfaces.onAStick ? config.queues : 0,
    link: { ...config.link },
    defaultLeaf,
    mode: config.queueMode,
    nodes: out.nodes,
    circuits: out.circuits,
    mappings: out.mappings,
    warnings: ctx.warnings,
  };
  return { plan, state: ctx.next, errors: ctx.errors };
}

/** The top-level nodes: the physical tree's (circuits attached), then generated parents of unparented circuits. */
function buildTopLevel(ctx: PlanContext, inputs: ShapingInputs): TreeNode[] {
  const { config } = ctx;
  const tree = buildPhysicalTree({
    network: inputs.network,
    linkDown: config.link.downloadMbps,
    linkUp: config.link.uploadMbps,
    file: ctx.networkFile,
  });
  ctx.warnings.push(...tree.issues);
  const attachment = attachCircuits(tree, inputs.circuits, ctx.devicesFile);
  ctx.warnings.push(...attachment.issues);
  for (const { circuit, node } of attachment.attached) node.circuits.push(circuit);

  const top: TreeNode[] = [...tree.top];
  if (attachment.unparented.length > 0) {
    const pns = generatedParents(ctx, tree.byName);
    if (pns.length > 0) assignUnparented(attachment.unparented, pns, ctx.prev, ctx.next, config.useBinpacking);
    top.push(...pns);
  }
  return top;
}

/** One generated parent node per queue, pinned to it; a name network.json already uses is an error. */
function generatedParents(ctx: PlanContext, byName: Map<string, TreeNode>): TreeNode[] {
  const { config } = ctx;
  const pns: TreeNode[] = [];
  for (let k = 1; k <= config.queues; k++) {
    const name = generatedPnName(k);
    if (byName.has(name)) {
      ctx.errors.push({
        severity: 'error',
        code: 'reserved-node-name',
        file: ctx.networkFile,
        column: name,
        message: `network.json uses the reserved name "${name}" while some circuits have no parent; rename the node`,
      });
      continue;
    }
    pns.push({
      name,
      path: name,
      generated: true,
      depth: 1,
      ceilDown: Math.min(config.generatedPn.downloadMbps, config.link.downloadMbps),
      ceilUp: Math.min(config.generatedPn.uploadMbps, config.link.uploadMbps),
      children: [],
      circuits: [],
    });
    ctx.next.topLevel[name] = k;
  }
  return pns;
}

/** Queue of each top-level real node: sticky, new ones to the least-loaded queue. */
function assignQueues(ctx: PlanContext, top: TreeNode[]): Map<TreeNode, number> {
  const { config, prev, next } = ctx;
  const Q = config.queues;
  const queueOf = new Map<TreeNode, number>();
  const load = new Array<number>(Q + 1).fill(0);
  const weightOf = (n: TreeNode) => (config.useBinpacking ? subtreeWeight(n) : 1);
  for (const n of top) {
    if (n.generated) {
      const q = next.topLevel[n.name]!;
      queueOf.set(n, q);
      load[q]! += weightOf(n);
    }
  }
  const fresh: TreeNode[] = [];
  for (const n of top) {
    if (n.generated) continue;
    const stored = prev.topLevel[n.name];
    if (stored !== undefined && stored <= Q) {
      queueOf.set(n, stored);
      load[stored]! += weightOf(n);
    } else fresh.push(n);
  }
  if (config.useBinpacking) fresh.sort((a, b) => weightOf(b) - weightOf(a) || cmp(a.name, b.name));
  for (const n of fresh) {
    let best = 1;
    for (let q = 2; q <= Q; q++) if (load[q]! < load[best]!) best = q;
    queueOf.set(n, best);
    load[best]! += weightOf(n);
  }
  for (const n of top) if (!n.generated) next.topLevel[n.name] = queueOf.get(n)!;
  return queueOf;
}

/** Every node, depth-first from each top-level node, with its queue. */
function nodesInQueueOrder(top: TreeNode[], queueOf: Map<TreeNode, number>): QueuedNode[] {
  const ordered: QueuedNode[] = [];
  const collect = (n: TreeNode, q: number) => {
    ordered.push({ node: n, queue: q });
    for (const c of n.children) collect(c, q);
  };
  for (const n of top) collect(n, queueOf.get(n)!);
  return ordered;
}

/** HTB class-id pools, one per queue; an exhausted queue is reported once. */
class MinorPools {
  private readonly pools = new Map<number, IdPool>();
  private readonly exhausted = new Set<number>();

  constructor(private readonly ctx: PlanContext) {}

  pool(queue: number): IdPool {
    let p = this.pools.get(queue);
    if (!p) this.pools.set(queue, (p = new IdPool(FIRST_MINOR, LAST_MINOR)));
    return p;
  }

  allocate(queue: number): number | null {
    const m = this.pool(queue).next();
    if (m === null && !this.exhausted.has(queue)) {
      this.exhausted.add(queue);
      this.ctx.errors.push({
        severity: 'error',
        code: 'class-id-exhausted',
        file: this.ctx.devicesFile,
        message: `queue ${queue} has run out of HTB class ids (65,532 per queue); add queues (override_available_queues) or spread sites over more queues`,
      });
    }
    return m;
  }
}

/** Class minors of nodes and circuits: stored ones kept when still on the same queue, new ones allocated. */
function assignClassMinors(ctx: PlanContext, ordered: QueuedNode[]): ClassMinors {
  // Maps: far faster than 100k-key objects for the lookups below.
  const prevSites = new Map(Object.entries(ctx.prev.sites));
  const prevCircuits = new Map(Object.entries(ctx.prev.circuits));
  const pools = new MinorPools(ctx);
  const site = new Map<TreeNode, number>();
  const circuit = new Map<Circuit, number>();
  // First claim stored ids, then allocate new ones — so new items never steal a kept id.
  for (const { node, queue } of ordered) {
    const s = prevSites.get(node.path);
    if (s && s.queue === queue && pools.pool(queue).claim(s.minor)) site.set(node, s.minor);
    for (const c of node.circuits) {
      const sc = prevCircuits.get(c.id);
      if (sc && sc.queue === queue && pools.pool(queue).claim(sc.minor)) circuit.set(c, sc.minor);
    }
  }
  for (const { node, queue } of ordered) {
    if (!site.has(node)) {
      const m = pools.allocate(queue);
      if (m !== null) site.set(node, m);
    }
    for (const c of node.circuits) {
      if (!circuit.has(c)) {
        const m = pools.allocate(queue);
        if (m !== null) circuit.set(c, m);
      }
    }
  }
  return { site, circuit };
}

/**
 * Leaf handles: one per circuit and interface (bridge: the same number on both interfaces;
 * on a stick both directions share one interface, so two handles). Stored ones are kept.
 */
function assignLeafHandles(ctx: PlanContext, ordered: QueuedNode[], circuitMinor: Map<Circuit, number>): Map<Circuit, DownUp> {
  const onAStick = ctx.config.interfaces.onAStick;
  const prevLeaves = new Map(Object.entries(ctx.prev.leafHandles));
  const leafPool = new IdPool(FIRST_LEAF_HANDLE, LAST_LEAF_HANDLE, [MQ_HANDLE]);
  const leafOf = new Map<Circuit, DownUp>();
  const allCircuits: Circuit[] = [];
  // Circuits with `sqm none` in both directions have no leaf qdisc and need no handle.
  const needsLeaf = (c: Circuit) => !(c.sqm?.download === 'none' && c.sqm?.upload === 'none');
  for (const { node } of ordered) for (const c of node.circuits) if (circuitMinor.has(c) && needsLeaf(c)) allCircuits.push(c);
  for (const c of allCircuits) {
    const s = prevLeaves.get(c.id);
    if (!s) continue;
    const ok = onAStick ? s.down !== s.up && leafPool.claim(s.down) && leafPool.claim(s.up) : s.down === s.up && leafPool.claim(s.down);
    if (ok) leafOf.set(c, s);
  }
  let leafExhausted = 0;
  for (const c of allCircuits) {
    if (leafOf.has(c)) continue;
    const down = leafPool.next();
    const up = onAStick ? leafPool.next() : down;
    if (down === null || up === null) {
      leafExhausted++;
      continue;
    }
    leafOf.set(c, { down, up });
  }
  if (leafExhausted > 0) {
    ctx.errors.push({
      severity: 'error',
      code: 'qdisc-handle-exhausted',
      file: ctx.devicesFile,
      message: `${leafExhausted} circuit(s) cannot get a leaf qdisc: the kernel allows about ${LAST_LEAF_HANDLE - FIRST_LEAF_HANDLE} qdisc handles per interface${onAStick ? ' (halved on a stick)' : ''}; set their sqm to "none" or split the load over more shaping interfaces`,
    });
  }
  return leafOf;
}

/** Assured rates of the top-level nodes: per queue, fitted into the link minus the default class. */
function fitTopLevelRates(config: PlanConfig, top: TreeNode[], queueOf: Map<TreeNode, number>): Map<TreeNode, DownUp> {
  const nodeRate = new Map<TreeNode, DownUp>();
  for (let q = 1; q <= config.queues; q++) {
    const onQueue = top.filter((n) => queueOf.get(n) === q);
    const availDown = config.link.downloadMbps - defaultClassRate(config.link.downloadMbps);
    const availUp = config.link.uploadMbps - defaultClassRate(config.link.uploadMbps);
    fitRates(
      onQueue.map((n) => nodeRateChild(n)),
      availDown,
      availUp,
      (n, down, up) => nodeRate.set(n, { down, up }),
    );
  }
  return nodeRate;
}

/**
 * Writes the plan top-down: each node, then its circuits (with their IP mappings), then its
 * sub-nodes, fitting the children's assured rates into the node's. Records the ids in the next state.
 */
class PlanEmitter {
  readonly nodes: PlannedNode[] = [];
  readonly circuits: PlannedCircuit[] = [];
  readonly mappings: IpMapping[] = [];

  constructor(
    private readonly ctx: PlanContext,
    private readonly minors: ClassMinors,
    private readonly leafOf: Map<Circuit, DownUp>,
    /** Assured rate per node: the top level's given, the others filled in as their parent is emitted. */
    private readonly nodeRate: Map<TreeNode, DownUp>,
    private readonly defaultLeaf: LeafQdisc,
  ) {}

  emitNode(n: TreeNode, queue: number, parentMinor: number): void {
    const minor = this.minors.site.get(n);
    if (minor === undefined) return;
    const r = this.nodeRate.get(n)!;
    this.nodes.push({
      name: n.name,
      path: n.path,
      id: n.id,
      generated: n.generated,
      queue,
      minor,
      parentMinor,
      depth: n.depth,
      download: { rateMbps: r.down, ceilMbps: n.ceilDown },
      upload: { rateMbps: r.up, ceilMbps: n.ceilUp },
    });
    this.ctx.next.sites[n.path] = { queue, minor };
    const { ceil, rate } = this.fitChildRates(n, r);
    for (const c of n.circuits) {
      const cm = this.minors.circuit.get(c);
      if (cm !== undefined) this.emitCircuit(c, n, queue, cm, minor, ceil.get(c)!, rate.get(c)!);
    }
    for (const c of n.children) this.emitNode(c, queue, minor);
  }

  /**
   * Children of a node (sub-nodes and circuits) share its assured rate `r`: sets the sub-nodes'
   * rates in nodeRate and returns each circuit's ceiling and rate.
   */
  private fitChildRates(n: TreeNode, r: DownUp): { ceil: Map<Circuit, DownUp>; rate: Map<Circuit, DownUp> } {
    const kids: Array<RateChild<TreeNode | Circuit>> = [];
    for (const c of n.children) kids.push(nodeRateChild(c));
    const ceil = new Map<Circuit, DownUp>();
    for (const c of n.circuits) {
      const cc = this.circuitCeil(c, n);
      ceil.set(c, cc);
      kids.push({
        key: c,
        down: Math.min(c.downloadMinMbps, cc.down),
        up: Math.min(c.uploadMinMbps, cc.up),
        ceilDown: cc.down,
        ceilUp: cc.up,
        explicitDown: true,
        explicitUp: true,
      });
    }
    const rate = new Map<Circuit, DownUp>();
    const scaled = fitRates(kids, r.down, r.up, (k, down, up) => {
      if ('children' in k) this.nodeRate.set(k, { down, up });
      else rate.set(k, { down, up });
    });
    if (scaled) {
      this.ctx.warnings.push({
        severity: 'warning',
        code: 'rates-scaled',
        file: this.ctx.networkFile,
        column: n.name,
        message: `the minimum rates of the circuits/nodes under "${n.name}" add up to more than its own assured rate; they were scaled down proportionally (raise the node's rate or lower the minimums)`,
      });
    }
    return { ceil, rate };
  }

  /** A circuit's ceilings: its maximums, clamped (with a warning) to its parent node's. */
  private circuitCeil(c: Circuit, n: TreeNode): DownUp {
    const down = Math.min(c.downloadMaxMbps, n.ceilDown);
    const up = Math.min(c.uploadMaxMbps, n.ceilUp);
    if (down < c.downloadMaxMbps || up < c.uploadMaxMbps) {
      this.ctx.warnings.push({
        severity: 'warning',
        code: 'circuit-ceil-clamped',
        file: this.ctx.devicesFile,
        line: c.line,
        column: down < c.downloadMaxMbps ? 'Download Max Mbps' : 'Upload Max Mbps',
        value: `${c.downloadMaxMbps}/${c.uploadMaxMbps}`,
        message: `circuit "${c.id}" plan ${c.downloadMaxMbps}/${c.uploadMaxMbps} Mbps exceeds its parent "${n.name}" (${n.ceilDown}/${n.ceilUp} Mbps); shaped at the parent's limit`,
      });
    }
    return { down, up };
  }

  /** One circuit class (minor `cm` under `parentMinor`) and the IP mappings of its devices. */
  private emitCircuit(c: Circuit, n: TreeNode, queue: number, cm: number, parentMinor: number, ceil: DownUp, rate: DownUp): void {
    const { config, next } = this.ctx;
    const leaf = this.leafOf.get(c);
    const hash = hash64(c.id);
    const downLeaf = chooseLeaf(c.sqm?.download, ceil.down, this.defaultLeaf, config.fastQueuesFqCodelMbps);
    const upLeaf = chooseLeaf(c.sqm?.upload, ceil.up, this.defaultLeaf, config.fastQueuesFqCodelMbps);
    this.circuits.push({
      id: c.id,
      name: c.name,
      parentPath: n.path,
      queue,
      minor: cm,
      parentMinor,
      download: { rateMbps: rate.down, ceilMbps: ceil.down, leaf: leaf ? downLeaf : null, leafHandle: leaf?.down ?? 0 },
      upload: { rateMbps: rate.up, ceilMbps: ceil.up, leaf: leaf ? upLeaf : null, leafHandle: leaf?.up ?? 0 },
      devices: c.devices,
      circuitHash: hash,
    });
    next.circuits[c.id] = { queue, minor: cm };
    if (leaf) next.leafHandles[c.id] = leaf;
    for (const d of c.devices) {
      const deviceHash = hash64(d.id);
      for (const list of [d.ipv4, d.ipv6]) {
        for (const prefix of list) {
          this.mappings.push({ prefix, cpu: queue - 1, major: queue, minor: cm, circuitId: c.id, deviceId: d.id, circuitHash: hash, deviceHash });
        }
      }
    }
  }
}

function cmp(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

function nodeRateChild(n: TreeNode): RateChild<TreeNode> {
  return {
    key: n,
    down: n.minDown ?? n.ceilDown,
    up: n.minUp ?? n.ceilUp,
    ceilDown: n.ceilDown,
    ceilUp: n.ceilUp,
    explicitDown: n.minDown !== undefined,
    explicitUp: n.minUp !== undefined,
  };
}

function subtreeWeight(n: TreeNode): number {
  let w = 0;
  for (const c of n.circuits) w += c.downloadMaxMbps + c.uploadMaxMbps;
  for (const ch of n.children) w += subtreeWeight(ch);
  return Math.max(1, w);
}

/**
 * Assigns unparented circuits to generated parent nodes: stored assignment kept, new circuits
 * go to the least-loaded node (by count, or by plan size when bin-packing).
 */
function assignUnparented(
  circuits: Circuit[],
  pns: TreeNode[],
  prev: PlannerState,
  next: PlannerState,
  byWeight: boolean,
): void {
  const byName = new Map(pns.map((p) => [p.name, p]));
  const load = new Map<TreeNode, number>(pns.map((p) => [p, 0]));
  const weight = (c: Circuit) => (byWeight ? c.downloadMaxMbps + c.uploadMaxMbps : 1);
  const fresh: Circuit[] = [];
  for (const c of circuits) {
    const stored = prev.generated[c.id];
    const pn = stored ? byName.get(stored) : undefined;
    if (pn) {
      pn.circuits.push(c);
      load.set(pn, load.get(pn)! + weight(c));
      next.generated[c.id] = pn.name;
    } else fresh.push(c);
  }
  if (byWeight) fresh.sort((a, b) => weight(b) - weight(a));
  for (const c of fresh) {
    let best = pns[0]!;
    for (const p of pns) if (load.get(p)! < load.get(best)!) best = p;
    best.circuits.push(c);
    load.set(best, load.get(best)! + weight(c));
    next.generated[c.id] = best.name;
  }
  // Keep circuits in input order inside each generated node.
  const order = new Map(circuits.map((c, i) => [c, i]));
  for (const p of pns) p.circuits.sort((a, b) => order.get(a)! - order.get(b)!);
}

/** One child for fitRates: its requested rates and ceilings; explicit = an operator-set minimum. */
interface RateChild<K> {
  key: K;
  down: number;
  up: number;
  ceilDown: number;
  ceilUp: number;
  explicitDown: boolean;
  explicitUp: boolean;
}

/**
 * Gives each child an assured rate that fits inside the parent's (HTB lets a class under its rate
 * send regardless of its parent, so children's rates must add up to at most the parent's).
 * Explicit rates (circuit mins, node `…Min`) are served first — scaled down proportionally only if
 * they alone exceed the parent (returns true then). Implicit rates (nodes without a min ask for
 * their ceil) share what is left, proportionally to their ceilings.
 */
function fitRates<K>(
  children: Array<RateChild<K>>,
  parentDown: number,
  parentUp: number,
  set: (key: K, down: number, up: number) => void,
): boolean {
  const factors = (dir: 'down' | 'up', parent: number) => {
    let explicit = 0;
    let implicit = 0;
    for (const c of children) {
      const v = dir === 'down' ? c.down : c.up;
      if (dir === 'down' ? c.explicitDown : c.explicitUp) explicit += v;
      else implicit += v;
    }
    const fExplicit = explicit > parent ? parent / explicit : 1;
    const left = Math.max(0, parent - explicit * fExplicit);
    const fImplicit = implicit > left ? left / implicit : 1;
    return { fExplicit, fImplicit };
  };
  const d = factors('down', parentDown);
  const u = factors('up', parentUp);
  for (const c of children) {
    const down = clampRate(c.down * (c.explicitDown ? d.fExplicit : d.fImplicit), c.ceilDown);
    const up = clampRate(c.up * (c.explicitUp ? u.fExplicit : u.fImplicit), c.ceilUp);
    set(c.key, down, up);
  }
  return d.fExplicit < 1 || u.fExplicit < 1;
}

function clampRate(v: number, ceil: number): number {
  const r = Math.floor(v * 1000) / 1000;
  return Math.min(Math.max(MIN_RATE_MBPS, r), ceil);
}

export type { DirectionRates, LeafQdisc };
