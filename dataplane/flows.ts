/**
 * Flow telemetry: userspace side of the XDP flow table (`flows`, LRU hash), the RTT event ring
 * buffer (`flow_events`) and the switch (`flow_ctl`) defined in bpf/lqos_flows.h.
 *
 * Low level: encode/decode of the ABI, `readFlows` (batch dump), `deleteFlows` (batch delete),
 * `setFlowControl`, `openRttEvents` (ring_buffer__consume driven by the caller's timer).
 * High level: `FlowTracker.poll()` — reads the table, computes per-flow rates, expires idle and
 * finished flows (kept in a "recently finished" list for the UI), folds RTT events into per-flow and
 * per-circuit sample windows, and answers top flows / per-circuit RTT percentiles / retransmit rates.
 *
 * Everything is synchronous (short syscalls); pinned maps are opened from `pinRoot`.
 */
import { join } from 'node:path';
import * as bpf from './libbpf.ts';
import { ADDR_SIZE, decodeAddr, writeAddr } from './abi.ts';
import { DEFAULT_PIN_ROOT, type MapContext } from './loader.ts';

export const FLOW_KEY_SIZE = 40;
export const FLOW_VALUE_SIZE = 136;
export const FLOW_EVENT_SIZE = 72;
export const FLOW_CTL_SIZE = 8;
export const MAX_FLOWS = 131072;

export const PROTO_NAMES: Record<number, string> = { 1: 'ICMP', 6: 'TCP', 17: 'UDP', 58: 'ICMPv6' };
export type EndStatus = 'open' | 'fin' | 'rst';
const END: EndStatus[] = ['open', 'fin', 'rst'];

export interface FlowKey {
  proto: number;
  /** Customer-side address (IPv4 dotted / IPv6 RFC 5952). */
  localIp: string;
  localPort: number;
  remoteIp: string;
  remotePort: number;
}

/** One entry of the kernel flow table, decoded. Index down = toward the customer. */
export interface FlowEntry extends FlowKey {
  /** Stable text id: "proto/local/lport/remote/rport". */
  id: string;
  startNs: bigint;
  lastSeenNs: bigint;
  bytes: { down: number; up: number };
  packets: { down: number; up: number };
  retransmits: { down: number; up: number };
  /** Latest RTT sample per side in µs (0 = none): customer side / Internet side. */
  lastRttUs: { customer: number; internet: number };
  tcHandle: number;
  circuitHash: bigint;
  endStatus: EndStatus;
  tos: number;
}

export interface RttEvent extends FlowKey {
  id: string;
  timeNs: bigint;
  rttUs: number;
  side: 'customer' | 'internet';
  tcHandle: number;
  circuitHash: bigint;
}

// ---------------------------------------------------------------------------------------------
// ABI

export function flowId(k: FlowKey): string {
  return `${k.proto}/${k.localIp}/${k.localPort}/${k.remoteIp}/${k.remotePort}`;
}

export function writeFlowKey(k: FlowKey, out: Buffer, off = 0): void {
  out.fill(0, off, off + FLOW_KEY_SIZE);
  writeAddr(k.localIp, out, off);
  writeAddr(k.remoteIp, out, off + ADDR_SIZE);
  out.writeUInt16LE(k.localPort, off + 32);
  out.writeUInt16LE(k.remotePort, off + 34);
  out[off + 36] = k.proto;
}

export function encodeFlowKey(k: FlowKey): Buffer {
  const b = Buffer.alloc(FLOW_KEY_SIZE);
  writeFlowKey(k, b, 0);
  return b;
}

export function readFlowKey(b: Buffer, off = 0): FlowKey {
  return {
    localIp: decodeAddr(b, off),
    remoteIp: decodeAddr(b, off + ADDR_SIZE),
    localPort: b.readUInt16LE(off + 32),
    remotePort: b.readUInt16LE(off + 34),
    proto: b[off + 36]!,
  };
}

/** Decode key + value (value layout: struct lqos_flow, see bpf/lqos_abi.h). */
export function readFlowEntry(keys: Buffer, koff: number, vals: Buffer, v: number): FlowEntry {
  const k = readFlowKey(keys, koff);
  return {
    ...k,
    id: flowId(k),
    startNs: vals.readBigUInt64LE(v),
    lastSeenNs: vals.readBigUInt64LE(v + 8),
    bytes: { down: Number(vals.readBigUInt64LE(v + 16)), up: Number(vals.readBigUInt64LE(v + 24)) },
    packets: { down: Number(vals.readBigUInt64LE(v + 32)), up: Number(vals.readBigUInt64LE(v + 40)) },
    retransmits: { down: vals.readUInt32LE(v + 48), up: vals.readUInt32LE(v + 52) },
    lastRttUs: { customer: vals.readUInt32LE(v + 112), internet: vals.readUInt32LE(v + 116) },
    tcHandle: vals.readUInt32LE(v + 120),
    endStatus: END[vals[v + 124]!] ?? 'open',
    tos: vals[v + 126]!,
    circuitHash: vals.readBigUInt64LE(v + 128),
  };
}

/** Encode a flow value (tests and the benchmark populate the table from userspace). */
export function writeFlowValue(f: Partial<Omit<FlowEntry, keyof FlowKey | 'id'>>, out: Buffer, v = 0): void {
  out.fill(0, v, v + FLOW_VALUE_SIZE);
  out.writeBigUInt64LE(f.startNs ?? 0n, v);
  out.writeBigUInt64LE(f.lastSeenNs ?? f.startNs ?? 0n, v + 8);
  out.writeBigUInt64LE(BigInt(f.bytes?.down ?? 0), v + 16);
  out.writeBigUInt64LE(BigInt(f.bytes?.up ?? 0), v + 24);
  out.writeBigUInt64LE(BigInt(f.packets?.down ?? 0), v + 32);
  out.writeBigUInt64LE(BigInt(f.packets?.up ?? 0), v + 40);
  out.writeUInt32LE(f.retransmits?.down ?? 0, v + 48);
  out.writeUInt32LE(f.retransmits?.up ?? 0, v + 52);
  out.writeUInt32LE(f.lastRttUs?.customer ?? 0, v + 112);
  out.writeUInt32LE(f.lastRttUs?.internet ?? 0, v + 116);
  out.writeUInt32LE(f.tcHandle ?? 0, v + 120);
  out[v + 124] = Math.max(0, END.indexOf(f.endStatus ?? 'open'));
  out[v + 126] = f.tos ?? 0;
  out.writeBigUInt64LE(BigInt.asUintN(64, f.circuitHash ?? 0n), v + 128);
}

export function readRttEvent(b: Buffer): RttEvent | null {
  if (b.length < FLOW_EVENT_SIZE || b[64] !== 1) return null;
  const k = readFlowKey(b, 0);
  return {
    ...k,
    id: flowId(k),
    timeNs: b.readBigUInt64LE(40),
    circuitHash: b.readBigUInt64LE(48),
    rttUs: b.readUInt32LE(56),
    tcHandle: b.readUInt32LE(60),
    side: b[65] === 0 ? 'customer' : 'internet',
  };
}

// ---------------------------------------------------------------------------------------------
// Map access

const fds = new Map<string, number>();
function fdOf(name: 'flows' | 'flow_events' | 'flow_ctl', ctx?: MapContext): number {
  const path = join(ctx?.pinRoot ?? DEFAULT_PIN_ROOT, name);
  let fd = fds.get(path);
  if (fd === undefined) {
    fd = bpf.objGet(path);
    fds.set(path, fd);
  }
  return fd;
}

/** Close cached map fds (after a teardown/re-pin, or in tests). */
export function closeFlowMaps(ctx?: MapContext): void {
  const root = ctx?.pinRoot ?? DEFAULT_PIN_ROOT;
  for (const [path, fd] of fds) {
    if (path.startsWith(root + '/')) {
      bpf.closeFd(fd);
      fds.delete(path);
    }
  }
}

/** Dump the flow table (BPF_MAP_LOOKUP_BATCH). Raw buffers, for callers that decode lazily. */
export function dumpFlowsRaw(ctx?: MapContext): { keys: Buffer; values: Buffer; count: number } {
  return bpf.mapDump(fdOf('flows', ctx), FLOW_KEY_SIZE, FLOW_VALUE_SIZE, 8192);
}

export function readFlows(ctx?: MapContext): FlowEntry[] {
  const d = dumpFlowsRaw(ctx);
  const out: FlowEntry[] = new Array(d.count);
  for (let i = 0; i < d.count; i++) out[i] = readFlowEntry(d.keys, i * FLOW_KEY_SIZE, d.values, i * FLOW_VALUE_SIZE);
  return out;
}

/** Delete flows (missing ones ignored). `keys` are packed 40-byte keys or FlowKey objects. */
export function deleteFlows(keys: Buffer | FlowKey[], ctx?: MapContext): number {
  let buf: Buffer;
  if (Buffer.isBuffer(keys)) buf = keys;
  else {
    buf = Buffer.alloc(keys.length * FLOW_KEY_SIZE);
    keys.forEach((k, i) => writeFlowKey(k, buf, i * FLOW_KEY_SIZE));
  }
  const n = buf.length / FLOW_KEY_SIZE;
  bpf.mapDeleteBatch(fdOf('flows', ctx), buf, n, FLOW_KEY_SIZE);
  return n;
}

/** Insert flows from userspace (packed keys/values); tests and benchmarks. */
export function writeFlows(keys: Buffer, values: Buffer, count: number, ctx?: MapContext): 'batch' | 'loop' {
  return bpf.mapUpdateBatch(fdOf('flows', ctx), keys, values, count, FLOW_KEY_SIZE, FLOW_VALUE_SIZE);
}

export interface FlowControl {
  /** false: XDP does no flow work at all. Default true. */
  enabled: boolean;
  /** Minimum gap between ring-buffer RTT events per flow and side (ms); default 100. */
  rttGapMs: number;
}

export function setFlowControl(c: Partial<FlowControl>, ctx?: MapContext): void {
  const cur = getFlowControl(ctx);
  const v = Buffer.alloc(FLOW_CTL_SIZE);
  v.writeUInt32LE((c.enabled ?? cur.enabled) ? 0 : 1, 0);
  v.writeUInt32LE(Math.max(0, Math.round(c.rttGapMs ?? cur.rttGapMs)), 4);
  bpf.mapUpdateElem(fdOf('flow_ctl', ctx), Buffer.alloc(4), v);
}

export function getFlowControl(ctx?: MapContext): FlowControl {
  const v = Buffer.alloc(FLOW_CTL_SIZE);
  bpf.mapLookupElem(fdOf('flow_ctl', ctx), Buffer.alloc(4), v);
  return { enabled: v.readUInt32LE(0) === 0, rttGapMs: v.readUInt32LE(4) || 100 };
}

/** RTT event consumer. Call `consume()` from a timer; events arrive synchronously in `onEvent`. */
export function openRttEvents(onEvent: (e: RttEvent) => void, ctx?: MapContext): bpf.RingBufferReader {
  return bpf.ringBufferOpen(fdOf('flow_events', ctx), (rec) => {
    const e = readRttEvent(rec);
    if (e) onEvent(e);
  });
}

// ---------------------------------------------------------------------------------------------
// Statistics helpers

/** Nearest-rank percentile of an unsorted sample list (null when empty). */
export function percentile(values: number[], p: number): number | null {
  if (values.length === 0) return null;
  const s = Float64Array.from(values).sort();
  const idx = Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1));
  return s[idx]!;
}

export interface Percentiles { p50: number | null; p90: number | null; p99: number | null; samples: number }

function pct(values: number[]): Percentiles {
  if (values.length === 0) return { p50: null, p90: null, p99: null, samples: 0 };
  const s = Float64Array.from(values).sort();
  const at = (p: number) => s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))]!;
  return { p50: at(50), p90: at(90), p99: at(99), samples: s.length };
}

// ---------------------------------------------------------------------------------------------
// Tracker

export interface ActiveFlow extends FlowEntry {
  /** bits/s over the last poll interval. */
  rateBps: { down: number; up: number };
  /** Median of this flow's recent RTT samples (ms), falling back to the last kernel sample. */
  rttMs: { customer: number | null; internet: number | null };
  durationMs: number;
  /** ms since the last packet. */
  idleMs: number;
}

export interface FinishedFlow extends ActiveFlow {
  /** Wall-clock ms when userspace retired it. */
  endedAt: number;
  reason: 'fin' | 'rst' | 'idle' | 'evicted';
}

export interface CircuitFlowStats {
  circuitHash: bigint;
  tcHandle: number;
  activeFlows: number;
  bytes: { down: number; up: number };
  rateBps: { down: number; up: number };
  /** RTT percentiles (ms) over the sample window: per side and their per-flow sum. */
  rtt: { customer: Percentiles; internet: Percentiles };
  /** TCP retransmits / TCP packets over the retransmit window, per direction. */
  retransmits: { down: number; up: number; packetsDown: number; packetsUp: number; pctDown: number | null; pctUp: number | null };
}

export interface FlowTrackerOptions extends MapContext {
  /** Idle time after which an open flow is retired (ms). Default 30 000. */
  idleTimeoutMs?: number;
  /** Idle time after FIN/RST before a flow is retired (ms). Default 2 000. */
  finishedGraceMs?: number;
  /** How long retired flows stay in `recent()` (ms). Default 60 000; at most `recentMax` entries. */
  recentWindowMs?: number;
  recentMax?: number;
  /** Window for per-circuit RTT samples (ms). Default 30 000, at most 2 048 samples per side. */
  rttWindowMs?: number;
  /** Window for per-circuit retransmit rates (ms). Default 10 000. */
  retransWindowMs?: number;
  /** Do not open the ring buffer (tests of the table only). */
  noEvents?: boolean;
}

interface Tracked {
  entry: FlowEntry;
  prevBytes: { down: number; up: number };
  prevPackets: { down: number; up: number };
  prevRetrans: { down: number; up: number };
  rateBps: { down: number; up: number };
  rtt: { customer: number[]; internet: number[] };
}

interface CircuitAcc {
  tcHandle: number;
  rtt: { customer: Array<[number, number]>; internet: Array<[number, number]> }; // [wall ms, rtt ms]
  retrans: Array<{ t: number; rd: number; ru: number; pd: number; pu: number }>;
}

const RTT_PER_FLOW = 32;
const RTT_PER_CIRCUIT = 2048;

export interface PollStats {
  entries: number;
  expired: number;
  evicted: number;
  events: number;
  pollMs: number;
}

export class FlowTracker {
  readonly ctx: MapContext;
  private readonly o: Required<Omit<FlowTrackerOptions, 'pinRoot' | 'noEvents'>>;
  private readonly flows = new Map<string, Tracked>();
  private readonly circuits = new Map<bigint, CircuitAcc>();
  private recentList: FinishedFlow[] = [];
  private events: bpf.RingBufferReader | null = null;
  private lastPollBoot = 0n;
  private lastPollWall = 0;
  private eventCount = 0;
  lastStats: PollStats = { entries: 0, expired: 0, evicted: 0, events: 0, pollMs: 0 };

  constructor(opts: FlowTrackerOptions = {}) {
    this.ctx = { pinRoot: opts.pinRoot ?? DEFAULT_PIN_ROOT };
    this.o = {
      idleTimeoutMs: opts.idleTimeoutMs ?? 30_000,
      finishedGraceMs: opts.finishedGraceMs ?? 2_000,
      recentWindowMs: opts.recentWindowMs ?? 60_000,
      recentMax: opts.recentMax ?? 20_000,
      rttWindowMs: opts.rttWindowMs ?? 30_000,
      retransWindowMs: opts.retransWindowMs ?? 10_000,
    };
    if (!opts.noEvents) this.events = openRttEvents((e) => this.onRtt(e), this.ctx);
  }

  close(): void {
    this.events?.close();
    this.events = null;
  }

  private circuit(hash: bigint, tcHandle: number): CircuitAcc {
    let c = this.circuits.get(hash);
    if (!c) {
      c = { tcHandle, rtt: { customer: [], internet: [] }, retrans: [] };
      this.circuits.set(hash, c);
    }
    if (tcHandle) c.tcHandle = tcHandle;
    return c;
  }

  private onRtt(e: RttEvent): void {
    this.eventCount++;
    const ms = e.rttUs / 1000;
    const t = this.flows.get(e.id);
    if (t) {
      const arr = t.rtt[e.side];
      arr.push(ms);
      if (arr.length > RTT_PER_FLOW) arr.shift();
    }
    const c = this.circuit(e.circuitHash, e.tcHandle);
    const arr = c.rtt[e.side];
    arr.push([Date.now(), ms]);
    if (arr.length > RTT_PER_CIRCUIT) arr.splice(0, arr.length - RTT_PER_CIRCUIT);
  }

  /** Drain pending RTT events only (cheap; poll() does it too). */
  drainEvents(): number {
    return this.events ? this.events.consume() : 0;
  }

  /** One tick: events, table dump, rates, expiry. */
  poll(): PollStats {
    const t0 = performance.now();
    const ev0 = this.eventCount;
    // Table first so that events of brand new flows find their entry.
    const nowBoot = bpf.bootTimeNs();
    const nowWall = Date.now();
    const dtS = this.lastPollBoot ? Number(nowBoot - this.lastPollBoot) / 1e9 : 0;
    const d = dumpFlowsRaw(this.ctx);
    const seen = new Set<string>();
    const expireKeys: Buffer[] = [];
    let expired = 0;
    const circuitDelta = new Map<bigint, { rd: number; ru: number; pd: number; pu: number }>();

    for (let i = 0; i < d.count; i++) {
      const e = readFlowEntry(d.keys, i * FLOW_KEY_SIZE, d.values, i * FLOW_VALUE_SIZE);
      seen.add(e.id);
      let t = this.flows.get(e.id);
      if (!t || e.startNs !== t.entry.startNs) {
        t = {
          entry: e, prevBytes: { ...e.bytes }, prevPackets: { ...e.packets }, prevRetrans: { ...e.retransmits },
          rateBps: { down: 0, up: 0 }, rtt: { customer: [], internet: [] },
        };
        // A flow seen for the first time: its whole history counts as this interval's delta.
        t.prevBytes = { down: 0, up: 0 };
        t.prevPackets = { down: 0, up: 0 };
        t.prevRetrans = { down: 0, up: 0 };
        this.flows.set(e.id, t);
      }
      const db = e.bytes.down - t.prevBytes.down, du = e.bytes.up - t.prevBytes.up;
      if (dtS > 0) t.rateBps = { down: (Math.max(0, db) * 8) / dtS, up: (Math.max(0, du) * 8) / dtS };
      if (e.proto === 6) {
        const acc = circuitDelta.get(e.circuitHash) ?? { rd: 0, ru: 0, pd: 0, pu: 0 };
        acc.rd += Math.max(0, e.retransmits.down - t.prevRetrans.down);
        acc.ru += Math.max(0, e.retransmits.up - t.prevRetrans.up);
        acc.pd += Math.max(0, e.packets.down - t.prevPackets.down);
        acc.pu += Math.max(0, e.packets.up - t.prevPackets.up);
        circuitDelta.set(e.circuitHash, acc);
        this.circuit(e.circuitHash, e.tcHandle);
      }
      t.prevBytes = { ...e.bytes };
      t.prevPackets = { ...e.packets };
      t.prevRetrans = { ...e.retransmits };
      t.entry = e;

      const idleMs = Number(nowBoot - e.lastSeenNs) / 1e6;
      const done = e.endStatus !== 'open' && idleMs >= this.o.finishedGraceMs;
      if (done || idleMs >= this.o.idleTimeoutMs) {
        expireKeys.push(d.keys.subarray(i * FLOW_KEY_SIZE, (i + 1) * FLOW_KEY_SIZE));
        this.retire(t, nowBoot, nowWall, done ? (e.endStatus as 'fin' | 'rst') : 'idle');
        seen.delete(e.id);
        expired++;
      }
    }
    if (expireKeys.length) deleteFlows(Buffer.concat(expireKeys), this.ctx);

    // Entries that vanished without us deleting them were evicted by the LRU (table full).
    let evicted = 0;
    for (const [id, t] of this.flows) {
      if (seen.has(id)) continue;
      this.retire(t, nowBoot, nowWall, 'evicted');
      evicted++;
    }
    for (const [hash, acc] of circuitDelta) {
      const c = this.circuit(hash, 0);
      c.retrans.push({ t: nowWall, ...acc });
    }
    this.drainEvents();
    this.prune(nowWall);
    this.lastPollBoot = nowBoot;
    this.lastPollWall = nowWall;
    this.lastStats = { entries: this.flows.size, expired, evicted, events: this.eventCount - ev0, pollMs: performance.now() - t0 };
    return this.lastStats;
  }

  private retire(t: Tracked, nowBoot: bigint, nowWall: number, reason: FinishedFlow['reason']): void {
    this.flows.delete(t.entry.id);
    this.recentList.push({ ...this.view(t, nowBoot), endedAt: nowWall, reason });
  }

  private prune(nowWall: number): void {
    const cutRecent = nowWall - this.o.recentWindowMs;
    if (this.recentList.length > this.o.recentMax) this.recentList.splice(0, this.recentList.length - this.o.recentMax);
    let i = 0;
    while (i < this.recentList.length && this.recentList[i]!.endedAt < cutRecent) i++;
    if (i) this.recentList.splice(0, i);
    const cutRtt = nowWall - this.o.rttWindowMs;
    const cutRe = nowWall - this.o.retransWindowMs;
    for (const [hash, c] of this.circuits) {
      for (const side of ['customer', 'internet'] as const) {
        const a = c.rtt[side];
        let j = 0;
        while (j < a.length && a[j]![0] < cutRtt) j++;
        if (j) a.splice(0, j);
      }
      let j = 0;
      while (j < c.retrans.length && c.retrans[j]!.t < cutRe) j++;
      if (j) c.retrans.splice(0, j);
      if (!c.rtt.customer.length && !c.rtt.internet.length && !c.retrans.length) this.circuits.delete(hash);
    }
  }

  private view(t: Tracked, nowBoot: bigint): ActiveFlow {
    const e = t.entry;
    const med = (a: number[], lastUs: number) => (a.length ? percentile(a, 50) : lastUs ? lastUs / 1000 : null);
    return {
      ...e,
      rateBps: { ...t.rateBps },
      rttMs: { customer: med(t.rtt.customer, e.lastRttUs.customer), internet: med(t.rtt.internet, e.lastRttUs.internet) },
      durationMs: Number(e.lastSeenNs - e.startNs) / 1e6,
      idleMs: Math.max(0, Number(nowBoot - e.lastSeenNs) / 1e6),
    };
  }

  /** Active flows (as of the last poll). */
  active(): ActiveFlow[] {
    const now = this.lastPollBoot || bpf.bootTimeNs();
    return [...this.flows.values()].map((t) => this.view(t, now));
  }

  get activeCount(): number {
    return this.flows.size;
  }

  /** Flow by id (as of the last poll). */
  get(id: string): ActiveFlow | undefined {
    const t = this.flows.get(id);
    return t ? this.view(t, this.lastPollBoot || bpf.bootTimeNs()) : undefined;
  }

  /** Top `n` active flows by current rate (default) or total bytes. */
  top(n = 10, by: 'rate' | 'bytes' = 'rate'): ActiveFlow[] {
    const score = (t: Tracked) => (by === 'rate' ? t.rateBps.down + t.rateBps.up : t.entry.bytes.down + t.entry.bytes.up);
    const all = [...this.flows.values()];
    all.sort((a, b) => score(b) - score(a));
    const now = this.lastPollBoot || bpf.bootTimeNs();
    return all.slice(0, n).map((t) => this.view(t, now));
  }

  /** Recently finished flows (oldest first). */
  recent(): FinishedFlow[] {
    return this.recentList.slice();
  }

  /** Per-circuit aggregates (circuit hash 0 = unshaped/unknown hosts). */
  circuitStats(): CircuitFlowStats[] {
    const out = new Map<bigint, CircuitFlowStats>();
    const get = (hash: bigint, tc: number): CircuitFlowStats => {
      let s = out.get(hash);
      if (!s) {
        const c = this.circuits.get(hash);
        const re = { down: 0, up: 0, packetsDown: 0, packetsUp: 0, pctDown: null as number | null, pctUp: null as number | null };
        for (const r of c?.retrans ?? []) { re.down += r.rd; re.up += r.ru; re.packetsDown += r.pd; re.packetsUp += r.pu; }
        re.pctDown = re.packetsDown ? (100 * re.down) / re.packetsDown : null;
        re.pctUp = re.packetsUp ? (100 * re.up) / re.packetsUp : null;
        s = {
          circuitHash: hash, tcHandle: tc || c?.tcHandle || 0, activeFlows: 0, bytes: { down: 0, up: 0 }, rateBps: { down: 0, up: 0 },
          rtt: { customer: pct((c?.rtt.customer ?? []).map((x) => x[1])), internet: pct((c?.rtt.internet ?? []).map((x) => x[1])) },
          retransmits: re,
        };
        out.set(hash, s);
      }
      return s;
    };
    for (const t of this.flows.values()) {
      const s = get(t.entry.circuitHash, t.entry.tcHandle);
      s.activeFlows++;
      s.bytes.down += t.entry.bytes.down;
      s.bytes.up += t.entry.bytes.up;
      s.rateBps.down += t.rateBps.down;
      s.rateBps.up += t.rateBps.up;
    }
    for (const [hash, c] of this.circuits) get(hash, c.tcHandle);
    return [...out.values()];
  }

  /** Active flows of one circuit, by rate. */
  circuitFlows(circuitHash: bigint): ActiveFlow[] {
    const now = this.lastPollBoot || bpf.bootTimeNs();
    return [...this.flows.values()].filter((t) => t.entry.circuitHash === circuitHash)
      .sort((a, b) => b.rateBps.down + b.rateBps.up - (a.rateBps.down + a.rateBps.up))
      .map((t) => this.view(t, now));
  }

  get lastPollAt(): number {
    return this.lastPollWall;
  }
}
