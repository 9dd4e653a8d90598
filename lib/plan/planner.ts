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
import { leastLoaded, rebalanceTopLevel } from './rebalance.ts';
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
  // 5. Rates: each node's floor (its children's minimums) bottom-up, then top-down fitting into the parent's.
  const defaultLeaf = parseSqmString(config.defaultSqm);
  const floors = nodeFloors(top);
  const out = new PlanEmitter(ctx, minors, leafOf, fitTopLevelRates(ctx, top, queueOf, floors), floors, defaultLeaf);
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

/**
 * The top-level nodes: the physical tree's (circuits attached), then the generated parents when some
 * circuits need them (no parent, an unknown Parent Node ID, or a Parent Node naming a generated parent).
 */
function buildTopLevel(ctx: PlanContext, inputs: ShapingInputs): TreeNode[] {
  const { config } = ctx;
  const tree = buildPhysicalTree({
    network: inputs.network,
    linkDown: config.link.downloadMbps,
    linkUp: config.link.uploadMbps,
    file: ctx.networkFile,
  });
  ctx.warnings.push(...tree.issues);
  const attachment = attachCircuits(tree, inputs.circuits, ctx.devicesFile, ctx.networkFile);
  ctx.warnings.push(...attachment.issues);
  for (const { circuit, node } of attachment.attached) node.circuits.push(circuit);

  const top: TreeNode[] = [...tree.top];
  if (attachment.unparented.length > 0 || attachment.toGenerated.length > 0) {
    const pns = generatedParents(ctx, tree.byAlias);
    const unparented = [...attachment.unparented, ...attachGenerated(ctx, attachment.toGenerated, pns)];
    assignUnparented(unparented, pns, ctx.prev, ctx.next, config.useBinpacking);
    // Circuits keep their input order inside each generated node.
    const order = new Map(inputs.circuits.map((c, i) => [c, i]));
    for (const p of pns) p.circuits.sort((a, b) => order.get(a)! - order.get(b)!);
    top.push(...pns);
  }
  return top;
}

/**
 * Circuits whose Parent Node names a generated parent that network.json does not have: under that
 * generated parent; the ones naming a generated parent that does not exist (more than one per queue)
 * are returned, to be placed like unparented circuits (warned).
 */
function attachGenerated(ctx: PlanContext, circuits: Circuit[], pns: TreeNode[]): Circuit[] {
  const byName = new Map(pns.map((p) => [p.name, p]));
  const rest: Circuit[] = [];
  for (const c of circuits) {
    const pn = byName.get(c.parentNode);
    if (pn) {
      pn.circuits.push(c);
      continue;
    }
    rest.push(c);
    ctx.warnings.push({
      severity: 'warning',
      code: 'unknown-generated-parent',
      file: ctx.devicesFile,
      line: c.line,
      column: 'Parent Node',
      value: c.parentNode,
      message: `circuit "${c.id}" names the generated parent "${c.parentNode}", which neither ${ctx.networkFile} nor this plan has (generated parents: ${pns.map((p) => p.name).join(', ')}, one per queue); it is shaped under the least-loaded generated parent instead — leave Parent Node empty or name an existing node`,
    });
  }
  return rest;
}

/**
 * One generated parent node per queue, pinned to it, named with the first free names
 * `Generated_PN_1`, `Generated_PN_2`, …: a network.json node already called that (upstream
 * integrations publish such nodes) is an ordinary node and keeps its name.
 */
function generatedParents(ctx: PlanContext, taken: Map<string, unknown>): TreeNode[] {
  const { config } = ctx;
  const pns: TreeNode[] = [];
  let n = 0;
  for (let k = 1; k <= config.queues; k++) {
    let name = generatedPnName(++n);
    while (taken.has(name)) name = generatedPnName(++n);
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

/** Queue of each top-level real node: sticky, new ones to the least-loaded queue, then rebalanced if needed. */
function assignQueues(ctx: PlanContext, top: TreeNode[]): Map<TreeNode, number> {
  const { config, prev, next } = ctx;
  const Q = config.queues;
  const queueOf = new Map<TreeNode, number>();
  const load = new Array<number>(Q + 1).fill(0);
  const weights = new Map(top.map((n) => [n, subtreeWeight(n)]));
  const weightOf = (n: TreeNode) => (config.useBinpacking ? weights.get(n)! : 1);
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
    const best = leastLoaded(load);
    queueOf.set(n, best);
    load[best]! += weightOf(n);
  }
  // Sticky queues never fill new ones: move a bounded number of sites when needed (rebalance.ts).
  const sites = top.map((n) => ({ name: n.name, pinned: n.generated, weight: weights.get(n)!, queue: queueOf.get(n)!, previousQueue: prev.topLevel[n.name] }));
  const moved = rebalanceTopLevel({ queues: Q, sites, prev, next, file: ctx.networkFile, warnings: ctx.warnings });
  for (const n of top) if (moved.has(n.name)) queueOf.set(n, moved.get(n.name)!);
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

/**
 * The planner state's entry for `key`: own keys only (a site named `constructor` has no stored
 * slot in Object.prototype), looked up in the parsed section itself rather than a copy of it.
 */
function storedEntry<T>(section: Record<string, T>, key: string): T | undefined {
  return Object.hasOwn(section, key) ? section[key] : undefined;
}

/** Class minors of nodes and circuits: stored ones kept when still on the same queue, new ones allocated. */
function assignClassMinors(ctx: PlanContext, ordered: QueuedNode[]): ClassMinors {
  const prevSites = ctx.prev.sites;
  const prevCircuits = ctx.prev.circuits;
  const pools = new MinorPools(ctx);
  const site = new Map<TreeNode, number>();
  const circuit = new Map<Circuit, number>();
  // First claim stored ids, then allocate new ones — so new items never steal a kept id.
  for (const { node, queue } of ordered) {
    const s = storedEntry(prevSites, node.path);
    if (s && s.queue === queue && pools.pool(queue).claim(s.minor)) site.set(node, s.minor);
    for (const c of node.circuits) {
      const sc = storedEntry(prevCircuits, c.id);
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
  const prevLeaves = ctx.prev.leafHandles;
  const leafPool = new IdPool(FIRST_LEAF_HANDLE, LAST_LEAF_HANDLE, [MQ_HANDLE]);
  const leafOf = new Map<Circuit, DownUp>();
  const allCircuits: Circuit[] = [];
  // Circuits with `sqm none` in both directions have no leaf qdisc and need no handle.
  const needsLeaf = (c: Circuit) => !(c.sqm?.download === 'none' && c.sqm?.upload === 'none');
  for (const { node } of ordered) for (const c of node.circuits) if (circuitMinor.has(c) && needsLeaf(c)) allCircuits.push(c);
  for (const c of allCircuits) {
    const s = storedEntry(prevLeaves, c.id);
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

/**
 * Assured rates of the top-level nodes: per queue, fitted into the link minus the default class.
 * Only when the minimums on a queue do not fit the link are they scaled down (warned).
 */
function fitTopLevelRates(ctx: PlanContext, top: TreeNode[], queueOf: Map<TreeNode, number>, floors: Map<TreeNode, Floor>): Map<TreeNode, DownUp> {
  const { config } = ctx;
  const link = config.link;
  const nodeRate = new Map<TreeNode, DownUp>();
  const availDown = link.downloadMbps - defaultClassRate(link.downloadMbps);
  const availUp = link.uploadMbps - defaultClassRate(link.uploadMbps);
  const total = { down: 0, up: 0 };
  let warned = false;
  for (let q = 1; q <= config.queues; q++) {
    const onQueue = top.filter((n) => queueOf.get(n) === q);
    const fit = fitRates(
      onQueue.map((n) => nodeRateChild(n, floors)),
      availDown,
      availUp,
      (n, down, up) => nodeRate.set(n, { down, up }),
    );
    total.down += fit.down.need;
    total.up += fit.up.need;
    if (fit.down.scale >= 1 && fit.up.scale >= 1) continue;
    warned = true;
    ctx.warnings.push({
      severity: 'warning',
      code: 'link-oversubscribed',
      file: ctx.devicesFile,
      column: `queue ${q}`,
      value: `${mbps(fit.down.need)}/${mbps(fit.up.need)}`,
      message: `the minimum rates of the circuits (and nodes' …Min) on queue ${q} add up to ${mbps(fit.down.need)}/${mbps(fit.up.need)} Mbps download/upload, more than the link's ${mbps(availDown)}/${mbps(availUp)} Mbps (downlink_bandwidth_mbps/uplink_bandwidth_mbps in lqos.conf, less the default class); every assured rate on this queue was scaled down to ${pct(fit.down.scale)}/${pct(fit.up.scale)} of its minimum — lower Download/Upload Min Mbps or raise the link rates`,
    });
  }
  // Each queue has the whole link rate, so minimums can fit every queue and still exceed the link.
  if (!warned && (total.down > link.downloadMbps + RATE_TOLERANCE || total.up > link.uploadMbps + RATE_TOLERANCE)) {
    ctx.warnings.push({
      severity: 'warning',
      code: 'link-oversubscribed',
      file: ctx.devicesFile,
      column: 'all queues',
      value: `${mbps(total.down)}/${mbps(total.up)}`,
      message: `the minimum rates of all circuits add up to ${mbps(total.down)}/${mbps(total.up)} Mbps download/upload, more than the link's ${mbps(link.downloadMbps)}/${mbps(link.uploadMbps)} Mbps; each queue honours them (every queue may use the whole link) but they cannot all be met at once when the link is full — lower Download/Upload Min Mbps or raise the link rates in lqos.conf`,
    });
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
    private readonly floors: Map<TreeNode, Floor>,
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
   * rates in nodeRate and returns each circuit's ceiling and rate. Their minimums only have to be
   * scaled down when they exceed the node's capacity (warned here) or when an ancestor's had to be
   * (warned there).
   */
  private fitChildRates(n: TreeNode, r: DownUp): { ceil: Map<Circuit, DownUp>; rate: Map<Circuit, DownUp> } {
    const kids: Array<RateChild<TreeNode | Circuit>> = [];
    for (const c of n.children) kids.push(nodeRateChild(c, this.floors));
    const ceil = new Map<Circuit, DownUp>();
    for (const c of n.circuits) {
      const cc = this.circuitCeil(c, n);
      ceil.set(c, cc);
      kids.push({
        key: c,
        floorDown: Math.min(c.downloadMinMbps, cc.down),
        floorUp: Math.min(c.uploadMinMbps, cc.up),
        ceilDown: cc.down,
        ceilUp: cc.up,
        shareDown: false,
        shareUp: false,
      });
    }
    const rate = new Map<Circuit, DownUp>();
    const fit = fitRates(kids, r.down, r.up, (k, down, up) => {
      if ('children' in k) this.nodeRate.set(k, { down, up });
      else rate.set(k, { down, up });
    });
    const over = (need: number, cap: number) => need > cap + RATE_TOLERANCE;
    if (over(fit.down.need, n.ceilDown) || over(fit.up.need, n.ceilUp)) {
      const what = n.generated ? 'generated_pn_download_mbps/generated_pn_upload_mbps in lqos.conf' : `its downloadBandwidthMbps/uploadBandwidthMbps in ${this.ctx.networkFile}`;
      this.ctx.warnings.push({
        severity: 'warning',
        code: 'rates-scaled',
        file: this.ctx.networkFile,
        line: n.line,
        column: n.name,
        value: `${mbps(fit.down.need)}/${mbps(fit.up.need)}`,
        message: `the minimum rates of the circuits/nodes under "${n.name}" add up to ${mbps(fit.down.need)}/${mbps(fit.up.need)} Mbps download/upload, more than its capacity of ${mbps(n.ceilDown)}/${mbps(n.ceilUp)} Mbps; they were scaled down to ${pct(fit.down.scale)}/${pct(fit.up.scale)} — lower those minimums or raise ${what}`,
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
      for (const prefix of d.ipv4) this.mappings.push({ prefix, cpu: queue - 1, major: queue, minor: cm, circuitId: c.id, deviceId: d.id, circuitHash: hash, deviceHash });
      for (const prefix of d.ipv6) this.mappings.push({ prefix, cpu: queue - 1, major: queue, minor: cm, circuitId: c.id, deviceId: d.id, circuitHash: hash, deviceHash });
    }
  }
}

function cmp(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/** A sub-node for fitRates: its floor; without its own `…Min` it also shares the parent's spare rate. */
function nodeRateChild(n: TreeNode, floors: Map<TreeNode, Floor>): RateChild<TreeNode> {
  const f = floors.get(n)!;
  return {
    key: n,
    floorDown: f.down,
    floorUp: f.up,
    ceilDown: n.ceilDown,
    ceilUp: n.ceilUp,
    shareDown: n.minDown === undefined,
    shareUp: n.minUp === undefined,
  };
}

/** A node's assured-rate floor per direction (see nodeFloors). */
type Floor = DownUp;

/**
 * Assured-rate floor of every node: the sum of its circuits' minimums and its sub-nodes' floors,
 * raised to its own `…Min` if that is higher, capped at its ceiling. Like upstream, a node is
 * given at least what the minimums under it need (rather than squashing the minimums).
 */
function nodeFloors(top: TreeNode[]): Map<TreeNode, Floor> {
  const floors = new Map<TreeNode, Floor>();
  const visit = (n: TreeNode): Floor => {
    let down = 0;
    let up = 0;
    for (const c of n.circuits) {
      down += Math.min(c.downloadMinMbps, c.downloadMaxMbps, n.ceilDown);
      up += Math.min(c.uploadMinMbps, c.uploadMaxMbps, n.ceilUp);
    }
    for (const ch of n.children) {
      const f = visit(ch);
      down += f.down;
      up += f.up;
    }
    const f = { down: Math.min(Math.max(down, n.minDown ?? 0), n.ceilDown), up: Math.min(Math.max(up, n.minUp ?? 0), n.ceilUp) };
    floors.set(n, f);
    return f;
  };
  for (const n of top) visit(n);
  return floors;
}

/** Rounding slack when comparing sums of rates (1 kbit/s). */
const RATE_TOLERANCE = 0.001;

function mbps(v: number): string {
  return String(round3(v));
}

function pct(scale: number): string {
  return `${Math.floor(Math.min(1, scale) * 1000) / 10}%`;
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
  const weight = (c: Circuit) => (byWeight ? c.downloadMaxMbps + c.uploadMaxMbps : 1);
  // Circuits that named their generated parent are already placed: they count towards its load.
  const load = new Map<TreeNode, number>(pns.map((p) => [p, p.circuits.reduce((w, c) => w + weight(c), 0)]));
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
}

/**
 * One child for fitRates: its floor (circuit minimum, node floor) and ceilings per direction;
 * `share` = it also takes a share of the parent's spare rate (nodes without their own `…Min`).
 */
interface RateChild<K> {
  key: K;
  floorDown: number;
  floorUp: number;
  ceilDown: number;
  ceilUp: number;
  shareDown: boolean;
  shareUp: boolean;
}

/** One direction of a fit: the children's floors added up, and the factor they were scaled by (1 = not scaled). */
interface DirectionFit {
  need: number;
  scale: number;
}

/**
 * Gives each child an assured rate that fits inside the parent's (HTB lets a class under its rate
 * send regardless of its parent, so children's rates must add up to at most the parent's). Every
 * child gets its floor — all floors are scaled down proportionally only when they alone exceed the
 * parent. The rest of the parent's rate goes to the sharing children in proportion to their
 * ceilings, none getting less than its floor or more than its ceiling.
 */
function fitRates<K>(
  children: Array<RateChild<K>>,
  parentDown: number,
  parentUp: number,
  set: (key: K, down: number, up: number) => void,
): { down: DirectionFit; up: DirectionFit } {
  const down = fitDirection(
    children.map((c) => ({ floor: c.floorDown, ceil: c.ceilDown, share: c.shareDown })),
    parentDown,
  );
  const up = fitDirection(
    children.map((c) => ({ floor: c.floorUp, ceil: c.ceilUp, share: c.shareUp })),
    parentUp,
  );
  children.forEach((c, i) => set(c.key, clampRate(down.rates[i]!, c.ceilDown), clampRate(up.rates[i]!, c.ceilUp)));
  return { down: down.fit, up: up.fit };
}

/** fitRates for one direction (see there). */
function fitDirection(kids: Array<{ floor: number; ceil: number; share: boolean }>, parent: number): { rates: number[]; fit: DirectionFit } {
  let need = 0;
  for (const k of kids) need += k.floor;
  if (need > parent + RATE_TOLERANCE) {
    const scale = parent / need;
    return { rates: kids.map((k) => k.floor * scale), fit: { need, scale } };
  }
  const rates = new Array<number>(kids.length);
  const sharers: number[] = [];
  let fixed = 0;
  let weight = 0;
  kids.forEach((k, i) => {
    if (k.share) {
      sharers.push(i);
      weight += k.ceil;
    } else {
      rates[i] = k.floor;
      fixed += k.floor;
    }
  });
  let left = Math.max(0, parent - fixed);
  const shareOf = () => (weight > 0 && weight > left ? left / weight : 1);
  // Sharers whose floor is above their proportional share keep their floor: most constrained first.
  sharers.sort((a, b) => kids[b]!.floor / kids[b]!.ceil - kids[a]!.floor / kids[a]!.ceil);
  let x = shareOf();
  let pinned = 0;
  for (; pinned < sharers.length; pinned++) {
    const k = kids[sharers[pinned]!]!;
    if (k.floor <= k.ceil * x) break;
    rates[sharers[pinned]!] = k.floor;
    left = Math.max(0, left - k.floor);
    weight -= k.ceil;
    x = shareOf();
  }
  for (let j = pinned; j < sharers.length; j++) rates[sharers[j]!] = kids[sharers[j]!]!.ceil * x;
  return { rates, fit: { need, scale: 1 } };
}

function clampRate(v: number, ceil: number): number {
  // Down to whole kbit/s; the epsilon keeps 1.005 (1004.9999… kbit) at 1.005.
  const r = Math.floor(v * 1000 + 1e-6) / 1000;
  return Math.min(Math.max(MIN_RATE_MBPS, r), ceil);
}

export type { DirectionRates, LeafQdisc };
