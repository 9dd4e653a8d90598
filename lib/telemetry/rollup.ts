/**
 * Host rates → circuit rates → node rates (rolled up the network tree) → totals, plus top-N
 * circuits. Pure (no I/O).
 *
 * Host → circuit resolution, once per host per plan (cached in the host record). The dataplane
 * counts mapped traffic per matched mapping: a key is an address (a full-length mapping) or
 * `addr/len` (a shorter one: a /24, an IPv6 /56).
 *   1. `addr/len`: that exact prefix among the plan's mappings; else the longest plan prefix that
 *      covers it (no longer than `len`). A plain address: longest-prefix match (a host inside a
 *      mapped /24 belongs to it) — IPv4 by one Map per prefix length (numeric keys), IPv6 likewise
 *      with bigint keys; only the prefix lengths that occur are probed, longest first;
 *   2. else the counters' tc_handle (class of the host's last packet), which also covers mappings
 *      added at run time over the bus (map_ip_add) that are not in the plan.
 *   A host whose tc_handle changes is re-resolved.
 *
 * Memory: all per-circuit and per-node numbers live in typed arrays sized once per plan and reused
 * every tick; only circuits touched in a tick are visited for roll-up and top-N.
 */
import type { CircuitRateView, NodeRateView, Totals } from '../api/telemetry.ts';
import type { ShapingPlan } from '../model.ts';
import type { HostRate } from './hostRates.ts';
import { circuitIdIndex, IndexBuilder, type SortedIndex, type StringIndex } from '../util/keyIndex.ts';

// ---------------------------------------------------------------------------------------------
// Address parsing

/** IPv4 dotted text → unsigned 32-bit number, or -1. */
export function parseIPv4(s: string): number {
  let n = 0;
  let part = 0;
  let digits = 0;
  let dots = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c === 46) {
      if (digits === 0 || part > 255) return -1;
      n = n * 256 + part;
      part = 0;
      digits = 0;
      dots++;
    } else if (c >= 48 && c <= 57) {
      part = part * 10 + (c - 48);
      digits++;
      if (digits > 3) return -1;
    } else return -1;
  }
  if (dots !== 3 || digits === 0 || part > 255) return -1;
  return n * 256 + part;
}

/** IPv6 text (RFC 4291 forms, incl. `::` and a trailing dotted IPv4) → 128-bit bigint, or -1n. */
export function parseIPv6(s: string): bigint {
  const pct = s.indexOf('%');
  if (pct >= 0) s = s.slice(0, pct);
  const dbl = s.indexOf('::');
  if (dbl >= 0 && s.indexOf('::', dbl + 1) >= 0) return -1n;
  const parseGroups = (t: string): number[] | undefined => {
    if (t === '') return [];
    const out: number[] = [];
    const parts = t.split(':');
    for (let i = 0; i < parts.length; i++) {
      const p = parts[i]!;
      if (i === parts.length - 1 && p.includes('.')) {
        const v4 = parseIPv4(p);
        if (v4 < 0) return undefined;
        out.push(Math.floor(v4 / 65536), v4 % 65536);
      } else {
        if (!/^[0-9a-fA-F]{1,4}$/.test(p)) return undefined;
        out.push(parseInt(p, 16));
      }
    }
    return out;
  };
  let groups: number[];
  if (dbl >= 0) {
    const head = parseGroups(s.slice(0, dbl));
    const tail = parseGroups(s.slice(dbl + 2));
    if (!head || !tail || head.length + tail.length > 7) return -1n;
    groups = [...head, ...new Array<number>(8 - head.length - tail.length).fill(0), ...tail];
  } else {
    const g = parseGroups(s);
    if (!g || g.length !== 8) return -1n;
    groups = g;
  }
  let v = 0n;
  for (const g of groups) v = (v << 16n) | BigInt(g);
  return v;
}

const V4_MAPPED_PREFIX = 0xffffn << 32n;

/**
 * Map key of an IPv6 prefix: its network bits shifted down (not the masked address). V8 hashes a
 * bigint by its low 64 bits, so masked /64 (or shorter) prefixes would all collide into one bucket
 * (quadratic: minutes for 100k prefixes); shifted keys keep the varying bits low.
 */
const v6Key = (v6: bigint, len: number): bigint => (len === 0 ? 0n : v6 >> BigInt(128 - len));

// ---------------------------------------------------------------------------------------------
// Plan index

export interface PlanIndex {
  /** Increases with every index built (host resolution caches compare it). */
  version: number;
  plan: ShapingPlan;
  circuitCount: number;
  /** Circuit ids by index (names and parent paths: circuitName / circuitParentPath, read from the plan). Shared: do not change. */
  circuitIds: readonly string[];
  /** Index of the circuit's parent node, -1 when it hangs under no node. */
  circuitNode: Int32Array;
  ceilDownMbps: Float64Array;
  ceilUpMbps: Float64Array;
  circuitById: StringIndex;
  nodeCount: number;
  nodePaths: string[];
  nodeNames: string[];
  nodeParent: Int32Array;
  nodeDepth: Int32Array;
  nodeCeilDownMbps: Float64Array;
  nodeCeilUpMbps: Float64Array;
  /** Node indices, deepest first (children before parents): one pass rolls everything up. */
  nodeOrder: Int32Array;
  /** Indices of the top-level nodes. */
  topLevel: number[];
  nodeByPath: Map<string, number>;
  /** Download class handle (major<<16 | minor) → circuit; upload class handle (major incl. stick offset) → circuit. */
  byDownHandle: SortedIndex<number>;
  byUpHandle: SortedIndex<number>;
  /** Per prefix length: network key → circuit (typed arrays; a Map for IPv6 longer than /64, rare). */
  lpm4Lens: number[];
  lpm4: Map<number, SortedIndex<number>>;
  lpm6Lens: number[];
  lpm6: Map<number, SortedIndex<bigint> | Map<bigint, number>>;
}

/** A circuit's name, read from the plan (a compact plan's view slices it from its text). */
export const circuitName = (ix: PlanIndex, c: number): string => ix.plan.circuits[c]!.name;

/** A circuit's parent node path ('' at the top level), read from the plan. */
export const circuitParentPath = (ix: PlanIndex, c: number): string => ix.plan.circuits[c]!.parentPath;

let indexVersion = 0;

/** The prefix tables while an index is built: the first circuit given a prefix keeps it. */
interface PrefixTables {
  lpm4: Map<number, IndexBuilder<number>>;
  lpm6: Map<number, IndexBuilder<bigint> | Map<bigint, number>>;
}

function addPrefix(ix: PrefixTables, prefix: string, circuit: number): void {
  const slash = prefix.indexOf('/');
  const addr = slash < 0 ? prefix : prefix.slice(0, slash);
  const v4 = parseIPv4(addr);
  if (v4 >= 0) {
    const len = slash < 0 ? 32 : Number(prefix.slice(slash + 1));
    if (!(len >= 0 && len <= 32)) return;
    const key = len === 0 ? 0 : (v4 - (v4 % 2 ** (32 - len)));
    let m = ix.lpm4.get(len);
    if (!m) ix.lpm4.set(len, (m = new IndexBuilder<number>('first')));
    m.add(key, circuit);
    return;
  }
  const v6 = parseIPv6(addr);
  if (v6 < 0n) return;
  const len = slash < 0 ? 128 : Number(prefix.slice(slash + 1));
  if (!(len >= 0 && len <= 128)) return;
  // An IPv4-mapped IPv6 prefix is an IPv4 prefix (the dataplane treats them the same).
  if (len >= 96 && v6 >> 32n === 0xffffn) {
    addPrefix(ix, `${Number((v6 >> 24n) & 255n)}.${Number((v6 >> 16n) & 255n)}.${Number((v6 >> 8n) & 255n)}.${Number(v6 & 255n)}/${len - 96}`, circuit);
    return;
  }
  let m = ix.lpm6.get(len);
  // Keys of up to 64 bits go in a BigUint64Array; longer prefixes (rare) keep a Map.
  if (!m) ix.lpm6.set(len, (m = len <= 64 ? new IndexBuilder<bigint>('first') : new Map<bigint, number>()));
  const key = v6Key(v6, len);
  if (m instanceof Map) {
    if (!m.has(key)) m.set(key, circuit);
  } else m.add(key, circuit);
}

/** The prefix tables of a plan: its mappings' prefixes (or, without mappings, its devices'). */
function prefixTables(plan: ShapingPlan, circuitById: StringIndex): Pick<PlanIndex, 'lpm4' | 'lpm4Lens' | 'lpm6' | 'lpm6Lens'> {
  const t: PrefixTables = { lpm4: new Map(), lpm6: new Map() };
  if (plan.mappings.length > 0) {
    for (const m of plan.mappings) {
      const ci = circuitById.get(m.circuitId);
      if (ci !== undefined) addPrefix(t, m.prefix, ci);
    }
  } else {
    // A plan without mappings (hand-made): the devices' prefixes still say who is who.
    plan.circuits.forEach((c, i) => {
      for (const d of c.devices) for (const p of [...d.ipv4, ...d.ipv6]) addPrefix(t, p, i);
    });
  }
  const lpm4 = new Map([...t.lpm4].map(([len, b]) => [len, b.build()] as const));
  const lpm6 = new Map([...t.lpm6].map(([len, b]) => [len, b instanceof Map ? b : b.build()] as const));
  return { lpm4, lpm4Lens: [...lpm4.keys()].sort((a, b) => b - a), lpm6, lpm6Lens: [...lpm6.keys()].sort((a, b) => b - a) };
}

/** Builds the lookup structures of one plan (once per applied plan). */
export function buildPlanIndex(plan: ShapingPlan): PlanIndex {
  const C = plan.circuits.length;
  const N = plan.nodes.length;
  const { ids: circuitIds, byId: circuitById } = circuitIdIndex(plan.circuits);
  const circuitNode = new Int32Array(C);
  const ceilDownMbps = new Float64Array(C);
  const ceilUpMbps = new Float64Array(C);
  const byDown = new IndexBuilder<number>('last');
  const byUp = new IndexBuilder<number>('last');
  const nodes = nodeTables(plan);
  const off = plan.stickOffset ?? 0;
  plan.circuits.forEach((c, i) => {
    circuitNode[i] = c.parentPath ? (nodes.nodeByPath.get(c.parentPath) ?? -1) : -1;
    ceilDownMbps[i] = c.download.ceilMbps;
    ceilUpMbps[i] = c.upload.ceilMbps;
    byDown.add(c.queue * 65536 + c.minor, i);
    byUp.add((c.queue + off) * 65536 + c.minor, i);
  });
  return {
    version: ++indexVersion,
    plan,
    circuitCount: C,
    circuitIds,
    circuitNode,
    ceilDownMbps,
    ceilUpMbps,
    circuitById,
    nodeCount: N,
    ...nodes,
    byDownHandle: byDown.build(),
    byUpHandle: byUp.build(),
    ...prefixTables(plan, circuitById),
  };
}

type NodeTables = Pick<PlanIndex, 'nodePaths' | 'nodeNames' | 'nodeParent' | 'nodeDepth' | 'nodeCeilDownMbps' | 'nodeCeilUpMbps' | 'nodeOrder' | 'topLevel' | 'nodeByPath'>;

/** The node part of a plan index. */
function nodeTables(plan: ShapingPlan): NodeTables {
  const N = plan.nodes.length;
  const ix: NodeTables = {
    nodePaths: new Array<string>(N),
    nodeNames: new Array<string>(N),
    nodeParent: new Int32Array(N),
    nodeDepth: new Int32Array(N),
    nodeCeilDownMbps: new Float64Array(N),
    nodeCeilUpMbps: new Float64Array(N),
    nodeOrder: new Int32Array(N),
    topLevel: [],
    nodeByPath: new Map(),
  };
  // Nodes: parent = the node on the same queue whose minor is our parentMinor (1 = top level).
  const byQueueMinor = new Map<number, number>();
  plan.nodes.forEach((n, i) => {
    ix.nodePaths[i] = n.path;
    ix.nodeNames[i] = n.name;
    ix.nodeDepth[i] = n.depth;
    ix.nodeCeilDownMbps[i] = n.download.ceilMbps;
    ix.nodeCeilUpMbps[i] = n.upload.ceilMbps;
    ix.nodeByPath.set(n.path, i);
    byQueueMinor.set(n.queue * 65536 + n.minor, i);
  });
  plan.nodes.forEach((n, i) => {
    const p = n.parentMinor === 1 ? -1 : (byQueueMinor.get(n.queue * 65536 + n.parentMinor) ?? -1);
    ix.nodeParent[i] = p;
    if (p < 0) ix.topLevel.push(i);
  });
  const order = [...ix.nodeDepth.keys()].sort((a, b) => ix.nodeDepth[b]! - ix.nodeDepth[a]!);
  ix.nodeOrder.set(order);
  return ix;
}

/**
 * The circuit of an address (text) or of a prefix (`addr/len`) against the plan; -1 when no plan
 * prefix covers it. An address: longest-prefix match. A prefix: the same prefix if the plan maps
 * it, else the longest plan prefix of at most `len` bits that contains it.
 */
export function lookupPrefix(ix: PlanIndex, key: string): number {
  const slash = key.indexOf('/');
  const ip = slash < 0 ? key : key.slice(0, slash);
  const v4 = parseIPv4(ip);
  const len = slash < 0 ? (v4 >= 0 ? 32 : 128) : Number(key.slice(slash + 1));
  if (!(len >= 0 && len <= (v4 >= 0 ? 32 : 128))) return -1;
  if (v4 >= 0) return lookup4(ix, v4, len);
  const v6 = parseIPv6(ip);
  if (v6 < 0n) return -1;
  if (v6 >> 32n === 0xffffn && (v6 & ~((1n << 32n) - 1n)) === V4_MAPPED_PREFIX) return len >= 96 ? lookup4(ix, Number(v6 & 0xffffffffn), len - 96) : -1;
  for (const l of ix.lpm6Lens) {
    if (l > len) continue;
    const c = ix.lpm6.get(l)!.get(v6Key(v6, l));
    if (c !== undefined) return c;
  }
  return -1;
}

/** Longest plan prefix (at most `maxLen` bits) containing the IPv4 address. */
function lookup4(ix: PlanIndex, v4: number, maxLen: number): number {
  for (const len of ix.lpm4Lens) {
    if (len > maxLen) continue;
    const key = len === 0 ? 0 : v4 - (v4 % 2 ** (32 - len));
    const c = ix.lpm4.get(len)!.get(key);
    if (c !== undefined) return c;
  }
  return -1;
}

/** The circuit of a host: cached prefix match, else its tc_handle. */
export function resolveHost(ix: PlanIndex, h: HostRate): number {
  if (h.resolvedVersion === ix.version) return h.circuit;
  let c = lookupPrefix(ix, h.ip);
  if (c < 0 && h.tcHandle !== 0) c = ix.byDownHandle.get(h.tcHandle) ?? ix.byUpHandle.get(h.tcHandle) ?? -1;
  h.circuit = c;
  h.resolvedVersion = ix.version;
  return c;
}

// ---------------------------------------------------------------------------------------------
// Roll-up

const pct = (bps: number, mbps: number) => (mbps > 0 ? Math.round((bps / (mbps * 1e4)) * 10) / 10 : 0);

/** Reusable roll-up state for one plan index. */
export class Rollup {
  circuitDownBps = new Float64Array(0);
  circuitUpBps = new Float64Array(0);
  circuitDownPps = new Float64Array(0);
  circuitUpPps = new Float64Array(0);
  nodeDownBps = new Float64Array(0);
  nodeUpBps = new Float64Array(0);
  nodeDownPps = new Float64Array(0);
  nodeUpPps = new Float64Array(0);
  /** Circuits with traffic in the last run (first `touchedCount` entries). */
  touched = new Int32Array(0);
  touchedCount = 0;
  private touchedMark = new Uint8Array(0);
  /** Top-N circuit indices by download / upload bps, best first. */
  topDown: number[] = [];
  topUp: number[] = [];
  /** Host-counter totals; the unmapped fields are the service's (./unmapped.ts), added after each run. */
  totals: Totals = {
    downBps: 0, upBps: 0, downPps: 0, upPps: 0, shapedDownBps: 0, shapedUpBps: 0,
    unmappedDownBps: 0, unmappedUpBps: 0, unmappedDownPps: 0, unmappedUpPps: 0, hosts: 0, activeHosts: 0, unknownActiveHosts: 0,
  };
  index: PlanIndex | undefined;

  constructor(readonly topN = 10) {}

  private size(ix: PlanIndex): void {
    if (this.index === ix) return;
    this.index = ix;
    const C = ix.circuitCount;
    const N = ix.nodeCount;
    if (this.circuitDownBps.length !== C) {
      this.circuitDownBps = new Float64Array(C);
      this.circuitUpBps = new Float64Array(C);
      this.circuitDownPps = new Float64Array(C);
      this.circuitUpPps = new Float64Array(C);
      this.touched = new Int32Array(C);
      this.touchedMark = new Uint8Array(C);
    }
    if (this.nodeDownBps.length !== N) {
      this.nodeDownBps = new Float64Array(N);
      this.nodeUpBps = new Float64Array(N);
      this.nodeDownPps = new Float64Array(N);
      this.nodeUpPps = new Float64Array(N);
    }
    this.touchedCount = 0;
    this.touchedMark.fill(0);
    this.circuitDownBps.fill(0);
    this.circuitUpBps.fill(0);
    this.circuitDownPps.fill(0);
    this.circuitUpPps.fill(0);
  }

  /** One tick: hosts (with current rates) → circuits → nodes → totals, top-N. */
  run(ix: PlanIndex | undefined, hosts: Iterable<HostRate>): void {
    const t = this.totals;
    t.downBps = t.upBps = t.downPps = t.upPps = t.shapedDownBps = t.shapedUpBps = 0;
    t.unmappedDownBps = t.unmappedUpBps = t.unmappedDownPps = t.unmappedUpPps = 0;
    t.hosts = t.activeHosts = t.unknownActiveHosts = 0;
    if (ix) {
      this.size(ix);
      // Clear only what the previous tick touched.
      for (let k = 0; k < this.touchedCount; k++) {
        const c = this.touched[k]!;
        this.circuitDownBps[c] = this.circuitUpBps[c] = this.circuitDownPps[c] = this.circuitUpPps[c] = 0;
        this.touchedMark[c] = 0;
      }
      this.touchedCount = 0;
      this.nodeDownBps.fill(0);
      this.nodeUpBps.fill(0);
      this.nodeDownPps.fill(0);
      this.nodeUpPps.fill(0);
    }
    for (const h of hosts) {
      t.hosts++;
      t.downBps += h.downBps;
      t.upBps += h.upBps;
      t.downPps += h.downPps;
      t.upPps += h.upPps;
      const active = h.downPps > 0 || h.upPps > 0;
      if (active) t.activeHosts++;
      // A mapped entry the plan does not know (a bus map_ip_add): in the totals, in no circuit.
      const c = ix ? resolveHost(ix, h) : -1;
      if (c < 0) continue;
      t.shapedDownBps += h.downBps;
      t.shapedUpBps += h.upBps;
      if (!active) continue;
      this.circuitDownBps[c] += h.downBps;
      this.circuitUpBps[c] += h.upBps;
      this.circuitDownPps[c] += h.downPps;
      this.circuitUpPps[c] += h.upPps;
      if (this.touchedMark[c] === 0) {
        this.touchedMark[c] = 1;
        this.touched[this.touchedCount++] = c;
      }
    }
    if (!ix) {
      this.topDown = [];
      this.topUp = [];
      return;
    }
    // Circuits → their parent node, then children → parents (deepest first).
    for (let k = 0; k < this.touchedCount; k++) {
      const c = this.touched[k]!;
      const n = ix.circuitNode[c]!;
      if (n < 0) continue;
      this.nodeDownBps[n] += this.circuitDownBps[c]!;
      this.nodeUpBps[n] += this.circuitUpBps[c]!;
      this.nodeDownPps[n] += this.circuitDownPps[c]!;
      this.nodeUpPps[n] += this.circuitUpPps[c]!;
    }
    rollUpNodes(ix, this.nodeDownBps, this.nodeUpBps, this.nodeDownPps, this.nodeUpPps);
    this.topDown = topIndices(this.touched, this.touchedCount, this.circuitDownBps, this.topN, this.topDown);
    this.topUp = topIndices(this.touched, this.touchedCount, this.circuitUpBps, this.topN, this.topUp);
  }

  circuitView(c: number): CircuitRateView {
    const ix = this.index!;
    return {
      id: ix.circuitIds[c]!,
      name: circuitName(ix, c),
      parentPath: circuitParentPath(ix, c),
      downBps: Math.round(this.circuitDownBps[c]!),
      upBps: Math.round(this.circuitUpBps[c]!),
      downPps: Math.round(this.circuitDownPps[c]!),
      upPps: Math.round(this.circuitUpPps[c]!),
      ceilDownMbps: ix.ceilDownMbps[c]!,
      ceilUpMbps: ix.ceilUpMbps[c]!,
      utilDownPct: pct(this.circuitDownBps[c]!, ix.ceilDownMbps[c]!),
      utilUpPct: pct(this.circuitUpBps[c]!, ix.ceilUpMbps[c]!),
    };
  }

  nodeView(n: number): NodeRateView {
    const ix = this.index!;
    return {
      path: ix.nodePaths[n]!,
      name: ix.nodeNames[n]!,
      depth: ix.nodeDepth[n]!,
      downBps: Math.round(this.nodeDownBps[n]!),
      upBps: Math.round(this.nodeUpBps[n]!),
      downPps: Math.round(this.nodeDownPps[n]!),
      upPps: Math.round(this.nodeUpPps[n]!),
      ceilDownMbps: ix.nodeCeilDownMbps[n]!,
      ceilUpMbps: ix.nodeCeilUpMbps[n]!,
      utilDownPct: pct(this.nodeDownBps[n]!, ix.nodeCeilDownMbps[n]!),
      utilUpPct: pct(this.nodeUpBps[n]!, ix.nodeCeilUpMbps[n]!),
    };
  }

  private scratch = new Float64Array(0);

  /** Circuits with traffic, highest total first (at most `limit`). */
  activeCircuits(limit: number): number[] {
    const total = (c: number) => this.circuitDownBps[c]! + this.circuitUpBps[c]!;
    const n = this.touchedCount;
    const out: number[] = [];
    if (n <= limit) {
      for (let k = 0; k < n; k++) out.push(this.touched[k]!);
    } else {
      // Threshold by a native numeric sort of the totals, then only `limit` entries are sorted.
      if (this.scratch.length < n) this.scratch = new Float64Array(this.touched.length);
      const s = this.scratch.subarray(0, n);
      for (let k = 0; k < n; k++) s[k] = total(this.touched[k]!);
      s.sort();
      const threshold = s[n - limit]!;
      for (let k = 0; k < n; k++) {
        const c = this.touched[k]!;
        if (total(c) > threshold) out.push(c);
      }
      for (let k = 0; k < n && out.length < limit; k++) {
        const c = this.touched[k]!;
        if (total(c) === threshold) out.push(c);
      }
    }
    return out.sort((a, b) => total(b) - total(a));
  }
}

/** Adds every node's values into its parent, deepest nodes first (in place). */
export function rollUpNodes(ix: PlanIndex, ...arrays: Float64Array[]): void {
  for (let k = 0; k < ix.nodeOrder.length; k++) {
    const n = ix.nodeOrder[k]!;
    const p = ix.nodeParent[n]!;
    if (p < 0) continue;
    for (const a of arrays) a[p] += a[n]!;
  }
}

/** The `n` indices (among the first `count` of `candidates`) with the highest values (> 0), best first. */
export function topIndices(candidates: Int32Array | number[], count: number, values: Float64Array, n: number, out: number[] = []): number[] {
  out.length = 0;
  for (let k = 0; k < count; k++) {
    const c = candidates[k]!;
    const v = values[c]!;
    if (!(v > 0)) continue;
    if (out.length === n && v <= values[out[n - 1]!]!) continue;
    let i = out.length < n ? out.length : n - 1;
    while (i > 0 && values[out[i - 1]!]! < v) {
      if (i < n) out[i] = out[i - 1]!;
      i--;
    }
    out[i] = c;
  }
  return out;
}
