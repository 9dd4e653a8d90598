/**
 * The telemetry loop of lqosd:
 *  - every `intervalMs` (1 s): host counters from the dataplane → per-host rates → circuits → nodes
 *    → totals, top-N; live rings; Prometheus gauges; per-minute history; per-core CPU;
 *  - every `queueIntervalMs` (2 s): tc qdisc statistics of the shaping interfaces → per-circuit
 *    drops/backlog/marks (deltas) → history;
 *  - websocket channels `throughput`, `circuits`, `queues`, `cpu` (lib/web/channels.ts) and the
 *    bus `stats_hosts` reply (`statsHosts`).
 * Counters are skipped while the dataplane is not attached (dry run, degraded).
 *
 * Memory stays bounded: per-host records, per-circuit/per-node typed arrays and the rings are
 * allocated once (per plan) and reused; payloads are built only when a client asks.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import type { DaemonContext } from '../daemon/context.ts';
import type { ShapingPlan } from '../model.ts';
import { registerChannel } from '../web/channels.ts';
import { metrics } from '../web/metrics.ts';
import { CpuSampler, type CpuUsage } from './cpu.ts';
import { TelemetryHistory } from './history.ts';
import { HostRateTracker, type HostCounters, type HostRate } from './hostRates.ts';
import { QueueStatsCollector, type LeafStats } from './queueStats.ts';
import { MultiRing } from './ring.ts';
import { buildPlanIndex, rollUpNodes, Rollup, type CircuitRateView, type NodeRateView, type PlanIndex, type Totals } from './rollup.ts';

export interface TelemetryOptions {
  /** bpffs directory of the dataplane's pinned maps. */
  pinRoot: string;
  intervalMs?: number;
  queueIntervalMs?: number;
  /** Host counters reader (default: dataplane/loader.ts readHostCounters at pinRoot). */
  readCounters?: () => Promise<Map<string, HostCounters>> | Map<string, HostCounters>;
  /** Whether the dataplane is attached (counters and tc stats are skipped otherwise). Default: the pinned host_counters map exists (always true with an injected reader). */
  isAttached?: () => boolean;
  /** Command prefix for tc (tests: run it in a namespace). */
  wrap?: string[];
  /** Replaces running tc for queue stats (tests). */
  readQdiscs?: (iface: string) => Promise<string>;
  /** /proc/stat reader (tests). */
  readProcStat?: () => string;
  /** Wall clock in ms (tests). */
  now?: () => number;
  /** SQLite file; default `<state_directory>/telemetry.sqlite`; false = no history. */
  historyPath?: string | false;
  retentionDays?: number;
  circuitRetentionDays?: number;
  /** Samples kept for the live graphs (default 300 = 5 min at 1 Hz). */
  ringSize?: number;
  /** Circuits in the top lists (default 10). */
  topN?: number;
  /** At most this many circuits get a Prometheus gauge (the busiest; default 1000). */
  maxCircuitMetrics?: number;
  /** Active circuits listed in the `circuits` channel (default 1000). */
  maxChannelCircuits?: number;
  /** false: no timers (tests call tick()/pollQueues()). */
  autoStart?: boolean;
  /** false: do not register websocket channels / set Prometheus gauges. */
  channels?: boolean;
  metrics?: boolean;
}

export interface QueueCircuitView {
  id: string;
  name: string;
  down?: QueueSideView;
  up?: QueueSideView;
}

export interface QueueSideView {
  kind: string;
  drops: number;
  overlimits: number;
  requeues: number;
  ecnMarks: number;
  backlog: number;
  qlen: number;
  /** Deltas over the last poll interval. */
  dDrops: number;
  dOverlimits: number;
  dEcnMarks: number;
  dRequeues: number;
  dPackets: number;
}

export interface TelemetrySnapshot {
  /** ms since the epoch of the last counter tick (0 before the first). */
  at: number;
  intervalMs: number;
  /** Interval the rates were computed over. */
  dtMs: number;
  dataplane: boolean;
  totals: Totals;
  link?: { downloadMbps: number; uploadMbps: number };
  /** Every node of the plan (tree order of the plan). */
  nodes: NodeRateView[];
  topDownload: CircuitRateView[];
  topUpload: CircuitRateView[];
  activeCircuits: number;
  queues: { at: number; dtMs: number; totals: QueueTotals };
  cpu: CpuUsage;
  ticks: number;
  /** Wall ms of the last tick's own work (roll-ups, rings, gauges, history), and of its counter read. */
  lastTickMs: number;
  lastReadMs: number;
}

export interface QueueTotals {
  drops: { down: number; up: number };
  marks: { down: number; up: number };
  backlog: { down: number; up: number };
  overlimits: { down: number; up: number };
}

export interface StatsHostsRequest {
  limit: number;
  sortBy: 'download' | 'upload' | 'total';
}

export interface Telemetry {
  snapshot(): TelemetrySnapshot;
  history: TelemetryHistory | undefined;
  /** Current rates of one circuit (undefined when not in the plan). */
  circuit(id: string): CircuitRateView | undefined;
  /** Queue stats of one circuit. */
  circuitQueues(id: string): QueueCircuitView | undefined;
  /** The bus `stats_hosts` reply: top hosts by current rate. */
  statsHosts(req: StatsHostsRequest): unknown;
  /** Payloads of the websocket channels (also registered with lib/web/channels.ts). */
  payload(channel: 'throughput' | 'circuits' | 'queues' | 'cpu'): unknown;
  /** One counter tick now (tests; the timer calls it too). */
  tick(): Promise<void>;
  /** One queue-stats poll now. */
  pollQueues(): Promise<void>;
  stop(): Promise<void>;
}

const TOTAL_FIELDS = ['down', 'up', 'shapedDown', 'shapedUp'] as const;
const NODE_FIELDS = ['down', 'up'] as const;

function sideView(l: LeafStats | undefined): QueueSideView | undefined {
  if (!l) return undefined;
  return {
    kind: l.kind, drops: l.drops, overlimits: l.overlimits, requeues: l.requeues, ecnMarks: l.ecnMarks, backlog: l.backlog, qlen: l.qlen,
    dDrops: l.d.drops, dOverlimits: l.d.overlimits, dEcnMarks: l.d.ecnMarks, dRequeues: l.d.requeues, dPackets: l.d.packets,
  };
}

export function startTelemetry(ctx: DaemonContext, opts: TelemetryOptions): Telemetry {
  const log = ctx.log;
  const intervalMs = opts.intervalMs ?? 1000;
  const queueIntervalMs = opts.queueIntervalMs ?? 2000;
  const now = opts.now ?? Date.now;
  const ringSize = opts.ringSize ?? 300;
  const maxCircuitMetrics = opts.maxCircuitMetrics ?? 1000;
  const maxChannelCircuits = opts.maxChannelCircuits ?? 1000;
  const useMetrics = opts.metrics !== false;

  let readCounters = opts.readCounters;
  const isAttached = opts.isAttached ?? (opts.readCounters ? () => true : () => existsSync(join(opts.pinRoot, 'host_counters')));
  const defaultReader = async (): Promise<Map<string, HostCounters>> => {
    const { readHostCounters } = await import('../../dataplane/loader.ts');
    readCounters = () => readHostCounters({ pinRoot: opts.pinRoot });
    return readCounters();
  };

  const hosts = new HostRateTracker();
  const rollup = new Rollup(opts.topN ?? 10);
  const cpu = new CpuSampler(opts.readProcStat);
  const queues = new QueueStatsCollector({ wrap: opts.wrap, log, now, readQdiscs: opts.readQdiscs });
  const totalsRing = new MultiRing(ringSize, TOTAL_FIELDS);
  const nodeRings = new Map<string, MultiRing<(typeof NODE_FIELDS)[number]>>();

  let history: TelemetryHistory | undefined;
  if (opts.historyPath !== false) {
    const path = opts.historyPath ?? join(ctx.config().state_directory, 'telemetry.sqlite');
    try {
      history = new TelemetryHistory({ path, now, retentionDays: opts.retentionDays, circuitRetentionDays: opts.circuitRetentionDays });
    } catch (e) {
      log.warn(`telemetry history disabled: cannot open ${path}: ${(e as Error).message}`);
    }
  }

  let plan: ShapingPlan | undefined;
  let index: PlanIndex | undefined;
  let attached = false;
  let lastAt = 0;
  let ticks = 0;
  let lastTickMs = 0;
  let lastReadMs = 0;
  let queueAt = 0;
  let queueDtMs = 0;
  let nodeDropArrays: Float64Array[] = [];
  const metricCircuits = new Set<number>();
  let nextMetricCircuits = new Set<number>();
  let readErr: string | undefined;

  const refreshPlan = (): void => {
    const p = ctx.appliedPlan();
    if (p === plan) return;
    plan = p;
    index = p ? buildPlanIndex(p) : undefined;
    const N = index?.nodeCount ?? 0;
    nodeDropArrays = [0, 1, 2, 3].map(() => new Float64Array(N));
    const keep = new Set(index ? index.topLevel.map((n) => index!.nodePaths[n]!) : []);
    for (const k of nodeRings.keys()) if (!keep.has(k)) nodeRings.delete(k);
    for (const k of keep) if (!nodeRings.has(k)) nodeRings.set(k, new MultiRing(ringSize, NODE_FIELDS));
    if (useMetrics) {
      metrics.nodeThroughputBps.reset();
      metrics.circuitThroughputBps.reset();
    }
    metricCircuits.clear();
    log.debug({ circuits: index?.circuitCount ?? 0, nodes: N }, 'telemetry: plan index rebuilt');
  };

  const setMetrics = (): void => {
    const t = rollup.totals;
    metrics.totalThroughputBps.set({ direction: 'download' }, t.downBps);
    metrics.totalThroughputBps.set({ direction: 'upload' }, t.upBps);
    if (!index) return;
    for (let n = 0; n < index.nodeCount; n++) {
      const node = index.nodePaths[n]!;
      metrics.nodeThroughputBps.set({ node, direction: 'download' }, rollup.nodeDownBps[n]!);
      metrics.nodeThroughputBps.set({ node, direction: 'upload' }, rollup.nodeUpBps[n]!);
    }
    // The busiest circuits get gauges; circuits that went idle (or fell out) lose theirs.
    const active = rollup.touchedCount <= maxCircuitMetrics ? null : rollup.activeCircuits(maxCircuitMetrics);
    nextMetricCircuits.clear();
    const setOne = (c: number) => {
      const circuit = index!.circuitIds[c]!;
      metrics.circuitThroughputBps.set({ circuit, direction: 'download' }, rollup.circuitDownBps[c]!);
      metrics.circuitThroughputBps.set({ circuit, direction: 'upload' }, rollup.circuitUpBps[c]!);
      nextMetricCircuits.add(c);
    };
    if (active) for (const c of active) setOne(c);
    else for (let k = 0; k < rollup.touchedCount; k++) setOne(rollup.touched[k]!);
    for (const c of metricCircuits) {
      if (nextMetricCircuits.has(c)) continue;
      const circuit = index.circuitIds[c]!;
      metrics.circuitThroughputBps.remove({ circuit, direction: 'download' });
      metrics.circuitThroughputBps.remove({ circuit, direction: 'upload' });
    }
    metricCircuits.clear();
    for (const c of nextMetricCircuits) metricCircuits.add(c);
  };

  let tickRunning: Promise<void> | undefined;
  const doTick = async (): Promise<void> => {
    const t = now();
    const t0 = performance.now();
    cpu.sample();
    refreshPlan();
    attached = isAttached();
    const tr0 = performance.now();
    if (attached) {
      let counters: Map<string, HostCounters> | undefined;
      try {
        counters = await (readCounters ?? defaultReader)();
        if (readErr) log.info('telemetry: reading host counters works again');
        readErr = undefined;
      } catch (e) {
        const msg = (e as Error).message;
        if (msg !== readErr) log.warn(`telemetry: reading host counters failed: ${msg}`);
        readErr = msg;
      }
      if (counters) hosts.update(counters, t);
      lastReadMs = performance.now() - tr0;
    } else if (hosts.hosts.size > 0) hosts.reset();
    const t1 = performance.now();
    rollup.run(index, hosts.hosts.values());
    const r = rollup.totals;
    totalsRing.push(t, r.downBps, r.upBps, r.shapedDownBps, r.shapedUpBps);
    if (index) {
      for (const n of index.topLevel) nodeRings.get(index.nodePaths[n]!)?.push(t, rollup.nodeDownBps[n]!, rollup.nodeUpBps[n]!);
    }
    if (useMetrics) setMetrics();
    if (history && index) {
      history.addRates(t, {
        downBps: r.downBps,
        upBps: r.upBps,
        nodeKeys: index.nodePaths,
        nodeDown: rollup.nodeDownBps,
        nodeUp: rollup.nodeUpBps,
        circuitKeys: index.circuitIds,
        circuitDown: rollup.circuitDownBps,
        circuitUp: rollup.circuitUpBps,
        touched: rollup.touched,
        touchedCount: rollup.touchedCount,
      });
    } else if (history) {
      history.addRates(t, { downBps: r.downBps, upBps: r.upBps, nodeKeys: [], nodeDown: [], nodeUp: [], circuitKeys: [], circuitDown: [], circuitUp: [] });
    }
    lastAt = t;
    ticks++;
    // Time spent in our own code (the counter read itself is the dataplane's: lastReadMs).
    lastTickMs = performance.now() - t1 + (tr0 - t0);
  };
  const tick = (): Promise<void> => {
    if (tickRunning) return tickRunning;
    tickRunning = doTick()
      .catch((e: unknown) => log.warn({ err: e }, `telemetry tick failed: ${(e as Error).message}`))
      .finally(() => (tickRunning = undefined));
    return tickRunning;
  };

  let pollRunning: Promise<void> | undefined;
  const doPoll = async (): Promise<void> => {
    refreshPlan();
    if (!index || index.plan.mode !== 'shape' || !(isAttached() || opts.readQdiscs)) return;
    const ix = index;
    await queues.poll(ix);
    if (ix !== index) return; // the plan changed meanwhile
    const t = now();
    queueDtMs = queueAt ? t - queueAt : 0;
    queueAt = t;
    if (history) {
      const cq = queues.circuits;
      const [dd, du, md, mu] = nodeDropArrays as [Float64Array, Float64Array, Float64Array, Float64Array];
      for (const a of nodeDropArrays) a.fill(0);
      const circuits: { index: number; dropsDown: number; dropsUp: number; marksDown: number; marksUp: number }[] = [];
      for (const c of cq.circuits) {
        const d = cq.down[c]?.d;
        const u = cq.up[c]?.d;
        const row = { index: c, dropsDown: d?.drops ?? 0, dropsUp: u?.drops ?? 0, marksDown: d?.ecnMarks ?? 0, marksUp: u?.ecnMarks ?? 0 };
        if (!(row.dropsDown || row.dropsUp || row.marksDown || row.marksUp)) continue;
        circuits.push(row);
        const n = ix.circuitNode[c]!;
        if (n >= 0) {
          dd[n] += row.dropsDown;
          du[n] += row.dropsUp;
          md[n] += row.marksDown;
          mu[n] += row.marksUp;
        }
      }
      rollUpNodes(ix, dd, du, md, mu);
      history.addDrops(t, {
        drops: cq.totals.drops,
        marks: cq.totals.marks,
        nodeKeys: ix.nodePaths,
        nodeDrops: [dd, du, md, mu],
        circuitKeys: ix.circuitIds,
        circuits,
      });
    }
  };
  const pollQueues = (): Promise<void> => {
    if (pollRunning) return pollRunning;
    pollRunning = doPoll()
      .catch((e: unknown) => log.warn({ err: e }, `telemetry queue stats failed: ${(e as Error).message}`))
      .finally(() => (pollRunning = undefined));
    return pollRunning;
  };

  // -------------------------------------------------------------------------------------------
  // Views

  const queueView = (c: number): QueueCircuitView => ({
    id: index!.circuitIds[c]!,
    name: index!.circuitNames[c]!,
    down: sideView(queues.circuits.down[c]),
    up: sideView(queues.circuits.up[c]),
  });

  const snapshot = (): TelemetrySnapshot => ({
    at: lastAt,
    intervalMs,
    dtMs: hosts.lastDtMs,
    dataplane: attached,
    totals: { ...rollup.totals },
    link: plan?.link ? { ...plan.link } : undefined,
    nodes: index ? [...Array(index.nodeCount).keys()].map((n) => rollup.nodeView(n)) : [],
    topDownload: rollup.index === index && index ? rollup.topDown.map((c) => rollup.circuitView(c)) : [],
    topUpload: rollup.index === index && index ? rollup.topUp.map((c) => rollup.circuitView(c)) : [],
    activeCircuits: rollup.touchedCount,
    queues: { at: queueAt, dtMs: queueDtMs, totals: structuredClone(queues.circuits.totals) },
    cpu: { total: cpu.latest.total, perCore: [...cpu.latest.perCore] },
    ticks,
    lastTickMs: Math.round(lastTickMs * 1000) / 1000,
    lastReadMs: Math.round(lastReadMs * 1000) / 1000,
  });

  const payload = (channel: 'throughput' | 'circuits' | 'queues' | 'cpu'): unknown => {
    const ok = index !== undefined && rollup.index === index;
    switch (channel) {
      case 'throughput': {
        const rings: Record<string, unknown> = {};
        for (const [path, ring] of nodeRings) rings[path] = ring.toJSON();
        return {
          at: lastAt,
          dataplane: attached,
          totals: { ...rollup.totals },
          link: plan?.link ?? null,
          nodes: ok ? index!.topLevel.map((n) => rollup.nodeView(n)) : [],
          ring: { totals: totalsRing.toJSON(), nodes: rings },
        };
      }
      case 'circuits': {
        const active = ok ? rollup.activeCircuits(maxChannelCircuits) : [];
        return {
          at: lastAt,
          topDownload: ok ? rollup.topDown.map((c) => rollup.circuitView(c)) : [],
          topUpload: ok ? rollup.topUp.map((c) => rollup.circuitView(c)) : [],
          activeCount: rollup.touchedCount,
          active: active.map((c) => rollup.circuitView(c)),
        };
      }
      case 'queues': {
        const cq = queues.circuits;
        const interesting = ok
          ? cq.circuits.filter((c) => {
              const d = cq.down[c];
              const u = cq.up[c];
              return (d && (d.d.drops || d.backlog || d.d.ecnMarks)) || (u && (u.d.drops || u.backlog || u.d.ecnMarks));
            })
          : [];
        const score = (c: number) => (cq.down[c]?.d.drops ?? 0) + (cq.up[c]?.d.drops ?? 0) + ((cq.down[c]?.backlog ?? 0) + (cq.up[c]?.backlog ?? 0)) / 1e6;
        interesting.sort((a, b) => score(b) - score(a));
        return {
          at: queueAt,
          dtMs: queueDtMs,
          totals: cq.totals,
          queuedCircuits: cq.circuits.length,
          circuits: interesting.slice(0, maxChannelCircuits).map(queueView),
        };
      }
      case 'cpu':
        return { at: lastAt, total: cpu.latest.total, perCore: cpu.latest.perCore };
    }
  };

  const statsHosts = (req: StatsHostsRequest): unknown => {
    if (!attached) return { hosts: [], note: 'no dataplane attached (dry run or degraded): no host counters' };
    const key =
      req.sortBy === 'download' ? (h: HostRate) => h.downBps : req.sortBy === 'upload' ? (h: HostRate) => h.upBps : (h: HostRate) => h.downBps + h.upBps;
    const bytes =
      req.sortBy === 'download' ? (h: HostRate) => h.downBytes : req.sortBy === 'upload' ? (h: HostRate) => h.upBytes : (h: HostRate) => h.downBytes + h.upBytes;
    const list = [...hosts.hosts.values()].sort((a, b) => key(b) - key(a) || (bytes(b) > bytes(a) ? 1 : bytes(b) < bytes(a) ? -1 : 0)).slice(0, req.limit);
    const ok = index !== undefined && rollup.index === index;
    return {
      at: lastAt,
      dtMs: hosts.lastDtMs,
      totals: { ...rollup.totals },
      hosts: list.map((h) => {
        const c = ok && h.resolvedVersion === index!.version ? h.circuit : -1;
        return {
          ip: h.ip,
          circuitId: c >= 0 ? index!.circuitIds[c] : null,
          circuitName: c >= 0 ? index!.circuitNames[c] : null,
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
      topCircuits: {
        download: ok ? rollup.topDown.map((c) => rollup.circuitView(c)) : [],
        upload: ok ? rollup.topUp.map((c) => rollup.circuitView(c)) : [],
      },
    };
  };

  // -------------------------------------------------------------------------------------------
  // Wiring

  const unregister: (() => void)[] = [];
  if (opts.channels !== false) {
    for (const ch of ['throughput', 'circuits', 'queues', 'cpu'] as const) unregister.push(registerChannel(ch, () => payload(ch)));
  }
  const timers: NodeJS.Timeout[] = [];
  if (opts.autoStart !== false) {
    void tick();
    const a = setInterval(() => void tick(), intervalMs);
    const b = setInterval(() => void pollQueues(), queueIntervalMs);
    a.unref();
    b.unref();
    timers.push(a, b);
  }

  let stopped: Promise<void> | undefined;
  return {
    snapshot,
    history,
    circuit: (id) => {
      const c = index?.circuitById.get(id);
      return c === undefined || rollup.index !== index ? undefined : rollup.circuitView(c);
    },
    circuitQueues: (id) => {
      const c = index?.circuitById.get(id);
      return c === undefined ? undefined : queueView(c);
    },
    statsHosts,
    payload,
    tick,
    pollQueues,
    stop: () => {
      stopped ??= (async () => {
        for (const t of timers) clearInterval(t);
        for (const u of unregister) u();
        await Promise.all([tickRunning, pollRunning]);
        try {
          history?.close();
        } catch (e) {
          log.warn(`telemetry history close failed: ${(e as Error).message}`);
        }
        if (useMetrics) {
          metrics.totalThroughputBps.reset();
          metrics.nodeThroughputBps.reset();
          metrics.circuitThroughputBps.reset();
        }
      })();
      return stopped;
    },
  };
}
