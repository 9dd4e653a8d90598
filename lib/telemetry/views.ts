/**
 * What telemetry shows: the websocket channel payloads (throughput, circuits, queues, cpu), the bus
 * `stats_hosts` reply and the snapshot, built on demand from the service's current state.
 */
import type {
  CircuitRatesPayload,
  CpuPayload,
  QueueCircuitView,
  QueueSideView,
  QueueStatsPayload,
  ThroughputPayload,
  UnknownIpsSummary,
  UnknownIpRow,
  UnknownIpView,
} from '../api/telemetry.ts';
import type { CircuitHostCounter, CircuitTelemetry } from '../api/circuit.ts';
import type { ShapingPlan } from '../model.ts';
import type { CpuSampler } from './cpu.ts';
import type { HostRate, HostRateTracker } from './hostRates.ts';
import { cakeTinViews, type LeafStats, type QueueStatsCollector } from './queueStats.ts';
import type { MultiRing } from './ring.ts';
import { circuitName, type PlanIndex, type Rollup } from './rollup.ts';
import { UNKNOWN_SAMPLES, type UnmappedTracker } from './unmapped.ts';

export const TOTAL_FIELDS = ['down', 'up', 'shapedDown', 'shapedUp'] as const;
export const NODE_FIELDS = ['down', 'up'] as const;

/** The service's state the views read. */
export interface TelemetryState {
  plan: ShapingPlan | undefined;
  index: PlanIndex | undefined;
  rollup: Rollup;
  hosts: HostRateTracker;
  /** Unmapped traffic: the aggregate and the sampled unknown IPs. */
  unmapped: UnmappedTracker;
  /** Whether a sampled unmapped address is listed as an unknown IP (`[ip_ranges] unknown_ip_honors_*`). */
  unknownListed: (ip: string) => boolean;
  cpu: CpuSampler;
  queues: QueueStatsCollector;
  totalsRing: MultiRing<(typeof TOTAL_FIELDS)[number]>;
  nodeRings: Map<string, MultiRing<(typeof NODE_FIELDS)[number]>>;
  attached: boolean;
  lastAt: number;
  queueAt: number;
  queueDtMs: number;
}

export interface StatsHostsRequest {
  limit: number;
  sortBy: 'download' | 'upload' | 'total';
}

/** The roll-up was computed for the plan in force (not for one that has since been replaced). */
const current = (s: TelemetryState): s is TelemetryState & { index: PlanIndex } => s.index !== undefined && s.rollup.index === s.index;

export const topDownload = (s: TelemetryState) => (current(s) ? s.rollup.topDown.map((c) => s.rollup.circuitView(c)) : []);
export const topUpload = (s: TelemetryState) => (current(s) ? s.rollup.topUp.map((c) => s.rollup.circuitView(c)) : []);

export function throughputPayload(s: TelemetryState): ThroughputPayload {
  const rings: ThroughputPayload['ring']['nodes'] = {};
  for (const [path, ring] of s.nodeRings) rings[path] = ring.toJSON();
  return {
    at: s.lastAt,
    dataplane: s.attached,
    totals: { ...s.rollup.totals },
    link: s.plan?.link ?? null,
    nodes: current(s) ? s.index.topLevel.map((n) => s.rollup.nodeView(n)) : [],
    ring: { totals: s.totalsRing.toJSON(), nodes: rings },
  };
}

/** Sampled unmapped addresses with traffic this tick that the `[ip_ranges]` rules list. */
export function listedUnknown(s: TelemetryState): HostRate[] {
  if (!s.attached) return [];
  const out: HostRate[] = [];
  for (const h of s.unmapped.samples.hosts.values()) if ((h.downPps > 0 || h.upPps > 0) && s.unknownListed(h.ip)) out.push(h);
  return out;
}

/** The listed unknown IPs, busiest first (at most `max`). */
export function unknownIps(s: TelemetryState, max = 100): UnknownIpView[] {
  const out = listedUnknown(s);
  out.sort((a, b) => b.downBps + b.upBps - (a.downBps + a.upBps));
  return out.slice(0, max).map((h) => ({ ip: h.ip, downBps: Math.round(h.downBps), upBps: Math.round(h.upBps), downBytes: Number(h.downBytes), upBytes: Number(h.upBytes) }));
}

/** How long ago (ms) a counter saw its last packet; `nowBootNs`: the dataplane's clock (CLOCK_BOOTTIME) now. */
const lastSeenAgeMs = (h: HostRate, nowBootNs: bigint): number => Math.max(0, Number(nowBootNs - h.lastSeenNs) / 1e6);

/**
 * The Unknown IPs page: every sampled unmapped address that the `[ip_ranges]` rules list and whose
 * last packet is within `windowMs` (traffic now or not), most bytes first. `nowBootNs` is the
 * dataplane's clock (CLOCK_BOOTTIME) at `nowMs`, to turn its last-seen stamps into wall time.
 */
export function unknownIpRows(s: TelemetryState, nowMs: number, nowBootNs: bigint, windowMs: number): UnknownIpRow[] {
  if (!s.attached) return [];
  const rows: UnknownIpRow[] = [];
  for (const h of s.unmapped.samples.hosts.values()) {
    const ageMs = lastSeenAgeMs(h, nowBootNs);
    if (ageMs > windowMs || !s.unknownListed(h.ip)) continue;
    rows.push({ ip: h.ip, lastSeenMs: Math.round(nowMs - ageMs), downBps: Math.round(h.downBps), upBps: Math.round(h.upBps), downBytes: Number(h.downBytes), upBytes: Number(h.upBytes) });
  }
  return rows.sort((a, b) => b.downBytes + b.upBytes - (a.downBytes + a.upBytes) || (a.ip < b.ip ? -1 : 1));
}

/** What the unknown-IP list is a sample of (the UI shows it beside the list). */
export function unknownSummary(s: TelemetryState): UnknownIpsSummary {
  const u = s.unmapped;
  return {
    sampled: true,
    note:
      `Sampled: per-address counters are kept for at most ${UNKNOWN_SAMPLES} addresses without a mapping (at most about 100 new addresses a second are admitted), ` +
      'so this list shows some of them, not all; the unmapped rate counts all of their traffic.',
    sampledAddresses: s.attached ? u.tableSize : 0,
    capacity: UNKNOWN_SAMPLES,
    sampledTotal: s.attached ? u.sampledTotal : 0,
    listed: s.rollup.totals.unknownActiveHosts,
    unmappedDownBps: Math.round(s.rollup.totals.unmappedDownBps),
    unmappedUpBps: Math.round(s.rollup.totals.unmappedUpBps),
  };
}

export function circuitRatesPayload(s: TelemetryState, max: number): CircuitRatesPayload {
  const active = current(s) ? s.rollup.activeCircuits(max) : [];
  return {
    at: s.lastAt,
    topDownload: topDownload(s),
    topUpload: topUpload(s),
    activeCount: s.rollup.touchedCount,
    active: active.map((c) => s.rollup.circuitView(c)),
    unknownIps: unknownIps(s),
    unknown: unknownSummary(s),
  };
}

function sideView(l: LeafStats | undefined, withTins: boolean): QueueSideView | undefined {
  if (!l) return undefined;
  return {
    kind: l.kind, drops: l.drops, overlimits: l.overlimits, requeues: l.requeues, ecnMarks: l.ecnMarks, backlog: l.backlog, qlen: l.qlen,
    dDrops: l.d.drops, dOverlimits: l.d.overlimits, dEcnMarks: l.d.ecnMarks, dRequeues: l.d.requeues, dPackets: l.d.packets,
    ...(withTins && l.tinList ? { tins: cakeTinViews(l.tinList) } : {}),
  };
}

/** Queue stats of circuit `c`; `withTins`: CAKE's tins too (the Circuit page; the `queues` channel leaves them out). */
export function queueView(s: TelemetryState & { index: PlanIndex }, c: number, withTins = false): QueueCircuitView {
  return {
    id: s.index.circuitIds[c]!,
    name: circuitName(s.index, c),
    down: sideView(s.queues.circuits.down[c], withTins),
    up: sideView(s.queues.circuits.up[c], withTins),
  };
}

/** The host counters of circuit `c` (mappings that saw traffic), with the wall time of their last packet. */
export function circuitHostRows(s: TelemetryState, c: number, nowMs: number, nowBootNs: bigint): CircuitHostCounter[] {
  if (!s.attached || !current(s)) return [];
  const rows: CircuitHostCounter[] = [];
  for (const h of s.hosts.hosts.values()) {
    if (h.resolvedVersion !== s.index.version || h.circuit !== c) continue;
    const ageMs = lastSeenAgeMs(h, nowBootNs);
    rows.push({
      key: h.ip, downBps: Math.round(h.downBps), upBps: Math.round(h.upBps), downBytes: Number(h.downBytes), upBytes: Number(h.upBytes),
      lastSeenMs: h.lastSeenNs > 0n ? Math.round(nowMs - ageMs) : null,
    });
  }
  return rows;
}

/** What the Circuit page reads of circuit `c`: rates, queue stats with CAKE tins, host counters. */
export function circuitTelemetry(s: TelemetryState, c: number, nowMs: number, nowBootNs: bigint): CircuitTelemetry {
  return {
    at: s.lastAt,
    dataplane: s.attached,
    rates: current(s) ? s.rollup.circuitView(c) : undefined,
    queues: { at: s.queueAt, dtMs: s.queueDtMs, view: s.index ? queueView(s as TelemetryState & { index: PlanIndex }, c, true) : undefined },
    hosts: circuitHostRows(s, c, nowMs, nowBootNs),
  };
}

/** Circuits with drops, backlog or ECN marks, worst first. */
export function queueStatsPayload(s: TelemetryState, max: number): QueueStatsPayload {
  const cq = s.queues.circuits;
  const busy = (l: LeafStats | undefined) => l !== undefined && (l.d.drops || l.backlog || l.d.ecnMarks);
  const interesting = current(s) ? cq.circuits.filter((c) => busy(cq.down[c]) || busy(cq.up[c])) : [];
  const score = (c: number) => (cq.down[c]?.d.drops ?? 0) + (cq.up[c]?.d.drops ?? 0) + ((cq.down[c]?.backlog ?? 0) + (cq.up[c]?.backlog ?? 0)) / 1e6;
  interesting.sort((a, b) => score(b) - score(a));
  return {
    at: s.queueAt,
    dtMs: s.queueDtMs,
    totals: cq.totals,
    queuedCircuits: cq.circuits.length,
    circuits: current(s) ? interesting.slice(0, max).map((c) => queueView(s, c)) : [],
  };
}

export function cpuPayload(s: TelemetryState): CpuPayload {
  return { at: s.lastAt, total: s.cpu.latest.total, perCore: s.cpu.latest.perCore };
}

/** The bus `stats_hosts` reply: top hosts by current rate, with their circuits. */
export function statsHostsReply(s: TelemetryState, req: StatsHostsRequest): unknown {
  if (!s.attached) return { hosts: [], note: 'no dataplane attached (dry run or degraded): no host counters' };
  const pick = <T>(down: (h: HostRate) => T, up: (h: HostRate) => T, total: (h: HostRate) => T) =>
    req.sortBy === 'download' ? down : req.sortBy === 'upload' ? up : total;
  const key = pick((h) => h.downBps, (h) => h.upBps, (h) => h.downBps + h.upBps);
  const bytes = pick((h) => h.downBytes, (h) => h.upBytes, (h) => h.downBytes + h.upBytes);
  const list = [...s.hosts.hosts.values()].sort((a, b) => key(b) - key(a) || (bytes(b) > bytes(a) ? 1 : bytes(b) < bytes(a) ? -1 : 0)).slice(0, req.limit);
  const circuitOf = (h: HostRate) => (current(s) && h.resolvedVersion === s.index.version ? h.circuit : -1);
  return {
    at: s.lastAt,
    dtMs: s.hosts.lastDtMs,
    totals: { ...s.rollup.totals },
    hosts: list.map((h) => {
      const c = circuitOf(h);
      // A counter belongs to a mapping: `prefix` is always "addr/len", `ip` its address (a bare address
      // for /32 and /128 mappings, the network address of a /24 or an IPv6 /56).
      const slash = h.ip.indexOf('/');
      return {
        ip: slash < 0 ? h.ip : h.ip.slice(0, slash),
        prefix: slash < 0 ? `${h.ip}/${h.ip.includes(':') ? 128 : 32}` : h.ip,
        circuitId: c >= 0 ? s.index!.circuitIds[c] : null,
        circuitName: c >= 0 ? circuitName(s.index!, c) : null,
        downloadBps: Math.round(h.downBps),
        uploadBps: Math.round(h.upBps),
        downloadPps: Math.round(h.downPps),
        uploadPps: Math.round(h.upPps),
        downloadBytes: h.downBytes,
        uploadBytes: h.upBytes,
        downloadPackets: h.downPackets,
        uploadPackets: h.upPackets,
        tcHandle: h.tcHandle,
        lastSeenNs: h.lastSeenNs,
      };
    }),
    topCircuits: { download: topDownload(s), upload: topUpload(s) },
    // Unmapped traffic has no host entry: the sampled unknown IPs and what they are a sample of.
    unknownIps: unknownIps(s, Math.min(req.limit, 100)),
    unknown: unknownSummary(s),
  };
}
