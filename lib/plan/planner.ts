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

export function planShaping({ inputs, config, previous, files }: PlanArgs): PlanResult {
  const devicesFile = files?.devices ?? 'ShapedDevices.csv';
  const networkFile = files?.network ?? 'network.json';
  const prev = previous ?? emptyPlannerState();
  // Maps: far faster than 100k-key objects for the lookups below.
  const prevSites = new Map(Object.entries(prev.sites));
  const prevCircuits = new Map(Object.entries(prev.circuits));
  const prevLeaves = new Map(Object.entries(prev.leafHandles));
  const next = emptyPlannerState();
  const warnings: InputIssue[] = [];
  const errors: InputIssue[] = [];
  const Q = config.queues;
  const stickOffset = config.interfaces.onAStick ? Q : 0;

  // 1. Physical tree + attachment.
  const tree = buildPhysicalTree({
    network: inputs.network,
    linkDown: config.link.downloadMbps,
    linkUp: config.link.uploadMbps,
    file: networkFile,
  });
  warnings.push(...tree.issues);
  const attachment = attachCircuits(tree, inputs.circuits, devicesFile);
  warnings.push(...attachment.issues);
  for (const { circuit, node } of attachment.attached) node.circuits.push(circuit);

  // 2. Generated parent nodes for unparented circuits (one per queue, pinned to it).
  const top: TreeNode[] = [...tree.top];
  if (attachment.unparented.length > 0) {
    const pns: TreeNode[] = [];
    for (let k = 1; k <= Q; k++) {
      const name = generatedPnName(k);
      if (tree.byName.has(name)) {
        errors.push({
          severity: 'error',
          code: 'reserved-node-name',
          file: networkFile,
          column: name,
          message: `network.json uses the reserved name "${name}" while some circuits have no parent; rename the node`,
        });
        continue;
      }
      const pn: TreeNode = {
        name,
        path: name,
        generated: true,
        depth: 1,
        ceilDown: Math.min(config.generatedPn.downloadMbps, config.link.downloadMbps),
        ceilUp: Math.min(config.generatedPn.uploadMbps, config.link.uploadMbps),
        children: [],
        circuits: [],
      };
      pns.push(pn);
      next.topLevel[name] = k;
    }
    if (pns.length > 0) assignUnparented(attachment.unparented, pns, prev, next, config.useBinpacking);
    top.push(...pns);
  }

  // 3. Queue of each top-level real node: sticky, new ones to the least-loaded queue.
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

  // 4. Class minors (sticky per queue), then leaf handles.
  const pools = new Map<number, IdPool>();
  const poolFor = (q: number) => {
    let p = pools.get(q);
    if (!p) pools.set(q, (p = new IdPool(FIRST_MINOR, LAST_MINOR)));
    return p;
  };
  const siteMinor = new Map<TreeNode, number>();
  const circuitMinor = new Map<Circuit, number>();
  const ordered: Array<{ node: TreeNode; queue: number }> = [];
  const collect = (n: TreeNode, q: number) => {
    ordered.push({ node: n, queue: q });
    for (const c of n.children) collect(c, q);
  };
  for (const n of top) collect(n, queueOf.get(n)!);

  // First claim stored ids, then allocate new ones — so new items never steal a kept id.
  for (const { node, queue } of ordered) {
    const s = prevSites.get(node.path);
    if (s && s.queue === queue && poolFor(queue).claim(s.minor)) siteMinor.set(node, s.minor);
    for (const c of node.circuits) {
      const sc = prevCircuits.get(c.id);
      if (sc && sc.queue === queue && poolFor(queue).claim(sc.minor)) circuitMinor.set(c, sc.minor);
    }
  }
  const exhausted = new Set<number>();
  const allocate = (queue: number): number | null => {
    const m = poolFor(queue).next();
    if (m === null && !exhausted.has(queue)) {
      exhausted.add(queue);
      errors.push({
        severity: 'error',
        code: 'class-id-exhausted',
        file: devicesFile,
        message: `queue ${queue} has run out of HTB class ids (65,532 per queue); add queues (override_available_queues) or spread sites over more queues`,
      });
    }
    return m;
  };
  for (const { node, queue } of ordered) {
    if (!siteMinor.has(node)) {
      const m = allocate(queue);
      if (m !== null) siteMinor.set(node, m);
    }
    for (const c of node.circuits) {
      if (!circuitMinor.has(c)) {
        const m = allocate(queue);
        if (m !== null) circuitMinor.set(c, m);
      }
    }
  }

  // Leaf handles: one per circuit and interface (bridge: the same number on both interfaces;
  // on a stick both directions share one interface, so two handles).
  const reservedHandles = [MQ_HANDLE];
  const leafPool = new IdPool(FIRST_LEAF_HANDLE, LAST_LEAF_HANDLE, reservedHandles);
  const leafOf = new Map<Circuit, { down: number; up: number }>();
  const allCircuits: Circuit[] = [];
  // Circuits with `sqm none` in both directions have no leaf qdisc and need no handle.
  const needsLeaf = (c: Circuit) => !(c.sqm?.download === 'none' && c.sqm?.upload === 'none');
  for (const { node } of ordered) for (const c of node.circuits) if (circuitMinor.has(c) && needsLeaf(c)) allCircuits.push(c);
  for (const c of allCircuits) {
    const s = prevLeaves.get(c.id);
    if (!s) continue;
    const ok = config.interfaces.onAStick
      ? s.down !== s.up && leafPool.claim(s.down) && leafPool.claim(s.up)
      : s.down === s.up && leafPool.claim(s.down);
    if (ok) leafOf.set(c, s);
  }
  let leafExhausted = 0;
  for (const c of allCircuits) {
    if (leafOf.has(c)) continue;
    const down = leafPool.next();
    const up = config.interfaces.onAStick ? leafPool.next() : down;
    if (down === null || up === null) {
      leafExhausted++;
      continue;
    }
    leafOf.set(c, { down, up });
  }
  if (leafExhausted > 0) {
    errors.push({
      severity: 'error',
      code: 'qdisc-handle-exhausted',
      file: devicesFile,
      message: `${leafExhausted} circuit(s) cannot get a leaf qdisc: the kernel allows about ${LAST_LEAF_HANDLE - FIRST_LEAF_HANDLE} qdisc handles per interface${config.interfaces.onAStick ? ' (halved on a stick)' : ''}; set their sqm to "none" or split the load over more shaping interfaces`,
    });
  }

  // 5. Rates, top-down, fitting children's assured rates into the parent's.
  const defaultLeaf = parseSqmString(config.defaultSqm);
  const nodes: PlannedNode[] = [];
  const circuits: PlannedCircuit[] = [];
  const mappings: IpMapping[] = [];
  const nodeRate = new Map<TreeNode, { down: number; up: number }>();

  for (let q = 1; q <= Q; q++) {
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

  const emit = (n: TreeNode, queue: number, parentMinor: number) => {
    const minor = siteMinor.get(n);
    if (minor === undefined) return;
    const r = nodeRate.get(n)!;
    nodes.push({
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
    next.sites[n.path] = { queue, minor };

    // Children of this node: sub-nodes and circuits share its assured rate.
    const kids: Array<RateChild<TreeNode | Circuit>> = [];
    for (const c of n.children) kids.push(nodeRateChild(c));
    const circuitCeil = new Map<Circuit, { down: number; up: number }>();
    for (const c of n.circuits) {
      const ceilDown = Math.min(c.downloadMaxMbps, n.ceilDown);
      const ceilUp = Math.min(c.uploadMaxMbps, n.ceilUp);
      if (ceilDown < c.downloadMaxMbps || ceilUp < c.uploadMaxMbps) {
        warnings.push({
          severity: 'warning',
          code: 'circuit-ceil-clamped',
          file: devicesFile,
          line: c.line,
          column: ceilDown < c.downloadMaxMbps ? 'Download Max Mbps' : 'Upload Max Mbps',
          value: `${c.downloadMaxMbps}/${c.uploadMaxMbps}`,
          message: `circuit "${c.id}" plan ${c.downloadMaxMbps}/${c.uploadMaxMbps} Mbps exceeds its parent "${n.name}" (${n.ceilDown}/${n.ceilUp} Mbps); shaped at the parent's limit`,
        });
      }
      circuitCeil.set(c, { down: ceilDown, up: ceilUp });
      kids.push({
        key: c,
        down: Math.min(c.downloadMinMbps, ceilDown),
        up: Math.min(c.uploadMinMbps, ceilUp),
        ceilDown,
        ceilUp,
        explicitDown: true,
        explicitUp: true,
      });
    }
    const circuitRate = new Map<Circuit, { down: number; up: number }>();
    const scaled = fitRates(kids, r.down, r.up, (k, down, up) => {
      if ('children' in k) nodeRate.set(k, { down, up });
      else circuitRate.set(k, { down, up });
    });
    if (scaled) {
      warnings.push({
        severity: 'warning',
        code: 'rates-scaled',
        file: networkFile,
        column: n.name,
        message: `the minimum rates of the circuits/nodes under "${n.name}" add up to more than its own assured rate; they were scaled down proportionally (raise the node's rate or lower the minimums)`,
      });
    }

    for (const c of n.circuits) {
      const cm = circuitMinor.get(c);
      const leaf = leafOf.get(c);
      if (cm === undefined) continue;
      const ceil = circuitCeil.get(c)!;
      const rate = circuitRate.get(c)!;
      const hash = hash64(c.id);
      const downLeaf = chooseLeaf(c.sqm?.download, ceil.down, defaultLeaf, config.fastQueuesFqCodelMbps);
      const upLeaf = chooseLeaf(c.sqm?.upload, ceil.up, defaultLeaf, config.fastQueuesFqCodelMbps);
      circuits.push({
        id: c.id,
        name: c.name,
        parentPath: n.path,
        queue,
        minor: cm,
        parentMinor: minor,
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
            mappings.push({ prefix, cpu: queue - 1, major: queue, minor: cm, circuitId: c.id, deviceId: d.id, circuitHash: hash, deviceHash });
          }
        }
      }
    }
    for (const c of n.children) emit(c, queue, minor);
  };
  for (const n of top) emit(n, queueOf.get(n)!, ROOT_MINOR);

  const plan: ShapingPlan = {
    interfaces: { ...config.interfaces },
    queues: Q,
    stickOffset,
    link: { ...config.link },
    defaultLeaf,
    mode: config.queueMode,
    nodes,
    circuits,
    mappings,
    warnings,
  };
  return { plan, state: next, errors };
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

/**
 * Gives each child an assured rate that fits inside the parent's (HTB lets a class under its rate
 * send regardless of its parent, so children's rates must add up to at most the parent's).
 * Explicit rates (circuit mins, node `…Min`) are served first — scaled down proportionally only if
 * they alone exceed the parent (returns true then). Implicit rates (nodes without a min ask for
 * their ceil) share what is left, proportionally to their ceilings.
 */
interface RateChild<K> {
  key: K;
  down: number;
  up: number;
  ceilDown: number;
  ceilUp: number;
  explicitDown: boolean;
  explicitUp: boolean;
}

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
