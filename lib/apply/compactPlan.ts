/**
 * The plan in force as lqosd holds it between runs: the same ShapingPlan interface, a fraction of
 * the memory. The planner's output keeps one object per circuit, per direction, per device, per
 * prefix and per IP mapping, with strings that are slices of the whole ShapedDevices.csv text
 * (about 180 MB of heap at 100k circuits); here every text field lives in one packed string with
 * an offset table, numbers in typed arrays, leaf qdiscs interned, and circuits are small views
 * whose fields are getters. Devices, `download`/`upload` and the mapping list are rebuilt on
 * access (the mapping list is kept while someone still holds it, WeakRef).
 *
 * compactPlan(plan) is equivalent to plan: serializePlan gives the same JSON (views have toJSON),
 * diffPlans(plan, compactPlan(plan)) is 'none'.
 */
import type { Device, IpMapping, LeafQdisc, PlannedCircuit, ShapingPlan } from '../model.ts';

interface Store {
  /** Every text field, concatenated; field k is text[ends[k-1] .. ends[k]). */
  text: string;
  ends: Uint32Array;
  /** Circuits: text fields 2i (id) and 2i+1 (name). */
  parentPaths: string[];
  pathIdx: Int32Array;
  /** queue, minor, parentMinor per circuit. */
  slot: Int32Array;
  /** download rate, ceil, upload rate, ceil per circuit. */
  rates: Float64Array;
  /** download, upload per circuit: index into leaves (-1: none) and the leaf handle. */
  leafIdx: Int32Array;
  leafHandle: Int32Array;
  leaves: LeafQdisc[];
  circuitHash: BigUint64Array;
  /** Devices of circuit i: devStart[i] .. devStart[i+1]; text fields devBase + 4d (id, name, mac, comment). */
  devStart: Int32Array;
  devBase: number;
  devLine: Int32Array;
  devHash: BigUint64Array;
  /** Prefixes of device d: pStart[d] .. pStart[d+1], the first v4Count[d] IPv4; text fields pBase + p. */
  pStart: Int32Array;
  v4Count: Int32Array;
  pBase: number;
}

function field(s: Store, k: number): string {
  return s.text.slice(k === 0 ? 0 : s.ends[k - 1]!, s.ends[k]!);
}

function deviceAt(s: Store, d: number): Device {
  const b = s.devBase + 4 * d;
  const p0 = s.pStart[d]!;
  const p1 = s.pStart[d + 1]!;
  const v4 = p0 + s.v4Count[d]!;
  const prefixes = (a: number, z: number) => {
    const out: string[] = [];
    for (let p = a; p < z; p++) out.push(field(s, s.pBase + p));
    return out;
  };
  return { id: field(s, b), name: field(s, b + 1), mac: field(s, b + 2), ipv4: prefixes(p0, v4), ipv6: prefixes(v4, p1), comment: field(s, b + 3), line: s.devLine[d]! };
}

/** A circuit of a compact plan: fields read from the store. */
class CircuitView implements PlannedCircuit {
  readonly #s: Store;
  readonly #i: number;
  constructor(s: Store, i: number) {
    this.#s = s;
    this.#i = i;
  }
  get id(): string {
    return field(this.#s, 2 * this.#i);
  }
  get name(): string {
    return field(this.#s, 2 * this.#i + 1);
  }
  get parentPath(): string {
    return this.#s.parentPaths[this.#s.pathIdx[this.#i]!]!;
  }
  get queue(): number {
    return this.#s.slot[3 * this.#i]!;
  }
  get minor(): number {
    return this.#s.slot[3 * this.#i + 1]!;
  }
  get parentMinor(): number {
    return this.#s.slot[3 * this.#i + 2]!;
  }
  get download(): PlannedCircuit['download'] {
    return this.#side(0);
  }
  get upload(): PlannedCircuit['upload'] {
    return this.#side(1);
  }
  get devices(): Device[] {
    const s = this.#s;
    const out: Device[] = [];
    for (let d = s.devStart[this.#i]!; d < s.devStart[this.#i + 1]!; d++) out.push(deviceAt(s, d));
    return out;
  }
  get circuitHash(): bigint {
    return this.#s.circuitHash[this.#i]!;
  }
  #side(dir: 0 | 1): PlannedCircuit['download'] {
    const s = this.#s;
    const k = 2 * this.#i + dir;
    const leaf = s.leafIdx[k]!;
    return { rateMbps: s.rates[4 * this.#i + 2 * dir]!, ceilMbps: s.rates[4 * this.#i + 2 * dir + 1]!, leaf: leaf < 0 ? null : s.leaves[leaf]!, leafHandle: s.leafHandle[k]! };
  }
  /** The plain circuit (serializePlan, spreads of toJSON()). */
  toJSON(): PlannedCircuit {
    const { id, name, parentPath, queue, minor, parentMinor, download, upload, devices, circuitHash } = this;
    return { id, name, parentPath, queue, minor, parentMinor, download, upload, devices, circuitHash };
  }
}

/**
 * Mappings as indices into the store: each one's prefix (none when mapping m is prefix m, the
 * planner's order) and its cpu, major, minor in 16 bits (tc's handles are 16-bit). The circuit and
 * device follow from the prefix. Undefined when a mapping does not fit that (not one of its
 * device's prefixes, another hash for the same device, a number beyond 16 bits): the plan then
 * keeps its list as it is.
 */
interface PackedMappings {
  prefix?: Int32Array;
  /** cpu, major, minor of mapping m at 3m … 3m+2. */
  cls: Uint16Array;
}

const U16 = (n: number) => Number.isInteger(n) && n >= 0 && n <= 0xffff;

function packMappings(plan: ShapingPlan, s: Store): PackedMappings | undefined {
  const M = plan.mappings.length;
  const prefix = new Int32Array(M);
  const cls = new Uint16Array(3 * M);
  let inOrder = true;
  const byId = new Map<string, number>();
  plan.circuits.forEach((c, i) => byId.set(c.id, i));
  const seen = new Uint8Array(s.devLine.length);
  for (let m = 0; m < M; m++) {
    const x = plan.mappings[m]!;
    const ci = byId.get(x.circuitId);
    if (ci === undefined || !U16(x.cpu) || !U16(x.major) || !U16(x.minor)) return undefined;
    const c = plan.circuits[ci]!;
    let p = -1;
    let pBefore = s.pStart[s.devStart[ci]!]!;
    let dv = s.devStart[ci]!;
    for (const d of c.devices ?? []) {
      const prefixes = [...(d.ipv4 ?? []), ...(d.ipv6 ?? [])];
      if (d.id === x.deviceId) {
        const at = prefixes.indexOf(x.prefix);
        if (at >= 0) p = pBefore + at;
        break;
      }
      pBefore += prefixes.length;
      dv++;
    }
    if (p < 0) return undefined;
    // One hash per device (the planner's hash of its id); a plan saying otherwise keeps its list.
    if (seen[dv] && s.devHash[dv] !== x.deviceHash) return undefined;
    seen[dv] = 1;
    s.devHash[dv] = x.deviceHash;
    prefix[m] = p;
    inOrder &&= p === m;
    cls.set([x.cpu, x.major, x.minor], 3 * m);
  }
  return { prefix: inOrder ? undefined : prefix, cls };
}

/** The circuit whose devices include device d: the last i with devStart[i] <= d. */
function circuitOfDevice(s: Store, d: number): number {
  let lo = 0;
  let hi = s.devStart.length - 1; // devStart[C] = D > d
  while (hi - lo > 1) {
    const mid = (lo + hi) >>> 1;
    if (s.devStart[mid]! <= d) lo = mid;
    else hi = mid;
  }
  return lo;
}

/** The mapping list of a compact plan, rebuilt from the store (kept while someone holds it). */
function mappingsGetter(s: Store, packed: PackedMappings, devOfPrefix: Int32Array): () => IpMapping[] {
  let last: WeakRef<IpMapping[]> | undefined;
  return () => {
    const cached = last?.deref();
    if (cached) return cached;
    const { prefix, cls } = packed;
    const M = cls.length / 3;
    const out = new Array<IpMapping>(M);
    for (let m = 0; m < M; m++) {
      const p = prefix ? prefix[m]! : m;
      const d = devOfPrefix[p]!;
      const ci = circuitOfDevice(s, d);
      out[m] = {
        prefix: field(s, s.pBase + p), cpu: cls[3 * m]!, major: cls[3 * m + 1]!, minor: cls[3 * m + 2]!,
        circuitId: field(s, 2 * ci), deviceId: field(s, s.devBase + 4 * d), circuitHash: s.circuitHash[ci]!, deviceHash: s.devHash[d]!,
      };
    }
    last = new WeakRef(out);
    return out;
  };
}

/** Fills the store's columns and text from the plan's circuits. */
function buildStore(plan: ShapingPlan): Store {
  const C = plan.circuits.length;
  let D = 0;
  let P = 0;
  for (const c of plan.circuits) for (const d of c.devices ?? []) (D++, (P += (d.ipv4?.length ?? 0) + (d.ipv6?.length ?? 0)));
  const parts: string[] = new Array(2 * C + 4 * D + P);
  const s: Store = {
    text: '', ends: new Uint32Array(parts.length), parentPaths: [], pathIdx: new Int32Array(C), slot: new Int32Array(3 * C), rates: new Float64Array(4 * C),
    leafIdx: new Int32Array(2 * C), leafHandle: new Int32Array(2 * C), leaves: [], circuitHash: new BigUint64Array(C),
    devStart: new Int32Array(C + 1), devBase: 2 * C, devLine: new Int32Array(D), devHash: new BigUint64Array(D),
    pStart: new Int32Array(D + 1), v4Count: new Int32Array(D), pBase: 2 * C + 4 * D,
  };
  const paths = new Map<string, number>();
  const leaves = new Map<string, number>();
  const leafOf = (l: LeafQdisc | null): number => {
    if (!l) return -1;
    const key = [l.kind, ...l.args].join('\u0000');
    let k = leaves.get(key);
    if (k === undefined) leaves.set(key, (k = s.leaves.push({ kind: l.kind, args: [...l.args] }) - 1));
    return k;
  };
  let d = 0;
  let p = 0;
  plan.circuits.forEach((c, i) => {
    parts[2 * i] = c.id;
    parts[2 * i + 1] = c.name ?? '';
    let pi = paths.get(c.parentPath);
    if (pi === undefined) paths.set(c.parentPath, (pi = s.parentPaths.push(c.parentPath) - 1));
    s.pathIdx[i] = pi;
    s.slot.set([c.queue, c.minor, c.parentMinor], 3 * i);
    s.rates.set([c.download.rateMbps, c.download.ceilMbps, c.upload.rateMbps, c.upload.ceilMbps], 4 * i);
    s.leafIdx.set([leafOf(c.download.leaf), leafOf(c.upload.leaf)], 2 * i);
    s.leafHandle.set([c.download.leafHandle, c.upload.leafHandle], 2 * i);
    s.circuitHash[i] = c.circuitHash;
    s.devStart[i] = d;
    for (const dev of c.devices ?? []) {
      const b = s.devBase + 4 * d;
      // Hand-made plans (tests) may leave text fields out: read back as ''.
      parts[b] = dev.id ?? '';
      parts[b + 1] = dev.name ?? '';
      parts[b + 2] = dev.mac ?? '';
      parts[b + 3] = dev.comment ?? '';
      s.devLine[d] = dev.line ?? 0;
      s.pStart[d] = p;
      s.v4Count[d] = dev.ipv4?.length ?? 0;
      for (const x of dev.ipv4 ?? []) parts[s.pBase + p++] = x;
      for (const x of dev.ipv6 ?? []) parts[s.pBase + p++] = x;
      d++;
    }
  });
  s.devStart[C] = d;
  s.pStart[D] = p;
  let end = 0;
  parts.forEach((t, k) => (s.ends[k] = end += t.length));
  // One new flat string: nothing keeps the input texts the fields were sliced from alive.
  s.text = oneByte(parts.join(''));
  return s;
}

const NOT_LATIN1 = /[^\u0000-\u00ff]/;

/**
 * `text` stored one byte per character when every character allows it. V8 makes a joined string
 * two-byte as soon as one part is, whatever its characters (in lqosd the 100k plan's text came out
 * two-byte, 31 MB instead of 15 MB, though all ASCII); a latin1 round trip gives the one-byte form.
 */
function oneByte(text: string): string {
  return NOT_LATIN1.test(text) ? text : Buffer.from(text, 'latin1').toString('latin1');
}

/** Marks plans already compact (compactPlan of one returns it). */
const COMPACT = Symbol('compact plan');

export function isCompactPlan(plan: ShapingPlan): boolean {
  return (plan as { [COMPACT]?: boolean })[COMPACT] === true;
}

/** Compact forms already made, by plan (the run records it, lqosd holds it: one copy). */
const made = new WeakMap<ShapingPlan, ShapingPlan>();

/** The plan in the compact form lqosd holds (see the file comment). */
export function compactPlan(plan: ShapingPlan): ShapingPlan {
  if (isCompactPlan(plan)) return plan;
  let c = made.get(plan);
  if (!c) made.set(plan, (c = makeCompact(plan)));
  return c;
}

function makeCompact(plan: ShapingPlan): ShapingPlan {
  const u64 = (h: bigint) => h >= 0n && h < 1n << 64n;
  if (!plan.circuits.every((c) => u64(c.circuitHash)) || !plan.mappings.every((m) => u64(m.deviceHash))) return plan;
  const s = buildStore(plan);
  const circuits: PlannedCircuit[] = new Array(plan.circuits.length);
  for (let i = 0; i < circuits.length; i++) circuits[i] = new CircuitView(s, i);
  // Frozen: per-plan indexes of the ids (lib/util/keyIndex.ts circuitIdIndex) are made once.
  Object.freeze(circuits);
  // Device hashes come from the mappings (the planner's hash of the device id).
  const packed = packMappings(plan, s);
  // Warnings are few; copied so their strings (circuit ids, values) no longer point into the whole
  // ShapedDevices.csv text. Nodes (network.json is small) are kept as they are.
  const warnings = JSON.parse(JSON.stringify(plan.warnings)) as ShapingPlan['warnings'];
  const out: ShapingPlan = { ...plan, warnings, circuits, mappings: [] };
  if (packed) {
    const devOfPrefix = new Int32Array(s.pStart[s.pStart.length - 1]!);
    for (let dv = 0; dv + 1 < s.pStart.length; dv++) devOfPrefix.fill(dv, s.pStart[dv]!, s.pStart[dv + 1]!);
    Object.defineProperty(out, 'mappings', { get: mappingsGetter(s, packed, devOfPrefix), enumerable: true });
  } else out.mappings = plan.mappings;
  Object.defineProperty(out, COMPACT, { value: true });
  return out;
}
