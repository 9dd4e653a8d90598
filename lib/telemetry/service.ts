/**
 * The telemetry loop of lqosd:
 *  - every `intervalMs` (1 s): host counters from the dataplane (mapped traffic, per matched mapping)
 *    → per-host rates → circuits → nodes → totals, top-N; unmapped traffic (an aggregate and the
 *    sampled unknown IPs, ./unmapped.ts); live rings; Prometheus gauges; per-minute history; per-core CPU;
 *  - every `queueIntervalMs` (2 s): tc qdisc statistics of the shaping interfaces → per-circuit
 *    drops/backlog/marks (deltas) → history;
 *  - the channels `throughput`, `circuits`, `queues`, `cpu` (published to whatever `publish` the
 *    daemon hands in: the web server's channel registry) and the bus `stats_hosts` reply.
 * Counters are skipped while the dataplane is not attached (dry run, degraded).
 *
 * Memory stays bounded: per-host records, per-circuit/per-node typed arrays and the rings are
 * allocated once (per plan) and reused; payloads are built only when a client asks.
 */
import { existsSync } from 'node:fs';
import type { CircuitTelemetry } from '../api/circuit.ts';
import type { FlowSnapshot } from '../api/flows.ts';
import type { CircuitRateView, NodeRateView, QueueCircuitView, QueueTotals, Totals, UnknownIpsSummary, UnknownIpsTable, UnknownIpView } from '../api/telemetry.ts';
import { statePaths } from '../config/paths.ts';
import type { LqosConfig } from '../config/schema.ts';
import type { ShapingPlan } from '../model.ts';
import type { Log } from '../util/log.ts';
import { CpuSampler, type CpuUsage } from './cpu.ts';
import { TelemetryHistory } from './history.ts';
import { qualitySample } from './historyQuality.ts';
import { HostRateTracker, type HostCounters } from './hostRates.ts';
import { RateGauges, type ShapingMetrics } from './metrics.ts';
import { QueueStatsCollector } from './queueStats.ts';
import { MultiRing } from './ring.ts';
import { buildPlanIndex, rollUpNodes, Rollup, type PlanIndex } from './rollup.ts';
import { UnknownIpFilter, unknownIpRulesOf, type UnknownIpRules } from './unknownIps.ts';
import { UnmappedTracker, type UnmappedSnapshot } from './unmapped.ts';
import {
  circuitRatesPayload,
  circuitTelemetry,
  cpuPayload,
  NODE_FIELDS,
  queueStatsPayload,
  queueView,
  statsHostsReply,
  throughputPayload,
  topDownload,
  topUpload,
  TOTAL_FIELDS,
  listedUnknown,
  unknownIpRows,
  unknownIps,
  unknownSummary,
  type StatsHostsRequest,
  type TelemetryState,
} from './views.ts';

export type { StatsHostsRequest };

/** What telemetry reads from lqosd. */
export interface TelemetryContext {
  log: Log;
  config(): { state_directory: string };
  /** The plan in force (circuits, nodes and their prefixes to attribute traffic to). */
  appliedPlan(): ShapingPlan | undefined;
}

/** Publishes a named live channel; returns a function that withdraws it. */
export type ChannelPublisher = (name: string, producer: () => unknown) => () => void;

export type TelemetryChannel = 'throughput' | 'circuits' | 'queues' | 'cpu';

export interface TelemetryOptions {
  /** bpffs directory of the dataplane's pinned maps. */
  pinRoot: string;
  intervalMs?: number;
  /** Period of the queue-stats (`tc -s qdisc`) poll; lqosd: `queue_check_period_ms`. Default 2000. */
  queueIntervalMs?: number;
  /**
   * Which unmapped addresses are unknown IPs (`[ip_ranges]`); default: all of them. A function is
   * asked each time (lqosd: liveUnknownIpRules, so a reload applies); a new object rebuilds the filter.
   */
  unknownIps?: UnknownIpRules | (() => UnknownIpRules);
  /** Host counters reader (default: dataplane/maps.ts readHostCounters at pinRoot). */
  readCounters?: () => Promise<Map<string, HostCounters>> | Map<string, HostCounters>;
  /**
   * Unmapped traffic reader: the aggregate (readStats) and the sampled unknown IPs (readUnknownIps).
   * Default: the dataplane's maps at pinRoot — unless `readCounters` is injected, then none.
   */
  readUnmapped?: () => Promise<UnmappedSnapshot> | UnmappedSnapshot;
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
  /** How often the history captures the TCP quality (RTT, retransmits) of `flows` (default 10 s). */
  qualityEveryMs?: number;
  /** Samples kept for the live graphs (default 300 = 5 min at 1 Hz). */
  ringSize?: number;
  /** Circuits in the top lists (default 10). */
  topN?: number;
  /** At most this many circuits get Prometheus series (the busiest; default 1000; Infinity: every circuit with traffic). */
  maxCircuitMetrics?: number;
  /** Flow tracking's snapshot, for the Prometheus RTT and retransmit series and the history's TCP quality. */
  flows?: () => FlowSnapshot | undefined;
  /** Active circuits listed in the `circuits` channel (default 1000). */
  maxChannelCircuits?: number;
  /** false: no timers (tests call tick()/pollQueues()). */
  autoStart?: boolean;
  /** Where the live channels go (absent: not published). */
  publish?: ChannelPublisher;
  /** Prometheus gauges to keep current (absent: none). */
  metrics?: ShapingMetrics;
  /**
   * Called every counter tick with the bytes (both directions) each circuit with traffic moved since
   * the previous tick (lqosd's lazy queues, lib/shaping/lazyQueues.ts). Empty while not attached.
   * Read it during the call (it is computed as it is iterated, from this tick's roll-up).
   */
  onCircuitBytes?: (traffic: Iterable<[string, number]>) => void;
}

/** The telemetry options lqos.conf sets: queue_check_period_ms, the `[ip_ranges]` unknown-IP rules, history retention, `[web] metrics_*`. */
export function telemetryOptionsOf(config: LqosConfig): Pick<TelemetryOptions, 'queueIntervalMs' | 'unknownIps' | 'retentionDays' | 'circuitRetentionDays' | 'maxCircuitMetrics'> {
  return {
    maxCircuitMetrics: config.web.metrics_per_circuit ? Infinity : config.web.metrics_top_circuits,
    queueIntervalMs: config.queue_check_period_ms,
    unknownIps: unknownIpRulesOf(config),
    retentionDays: config.history.retention_days,
    circuitRetentionDays: config.history.circuit_retention_days,
  };
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

export interface Telemetry {
  snapshot(): TelemetrySnapshot;
  history: TelemetryHistory | undefined;
  /** Current rates of one circuit (undefined when not in the plan). */
  circuit(id: string): CircuitRateView | undefined;
  /** Queue stats of one circuit. */
  circuitQueues(id: string): QueueCircuitView | undefined;
  /** The Circuit page's live detail of one circuit (undefined when not in the plan); `nowBootNs`: the dataplane's clock now. */
  circuitDetail(id: string, nowBootNs: bigint): CircuitTelemetry | undefined;
  /** The bus `stats_hosts` reply: top hosts by current rate. */
  statsHosts(req: StatsHostsRequest): unknown;
  /** Unknown IPs with traffic (as in the `circuits` channel): a sample, see unknownSummary(). */
  unknownIps(): UnknownIpView[];
  /** What the unknown IPs are a sample of, and the unmapped rates. */
  unknownSummary(): UnknownIpsSummary;
  /** The Unknown IPs page: listed sampled addresses seen in the last `windowMs` (`nowBootNs`: the dataplane's clock now). */
  unknownIpTable(nowBootNs: bigint, windowMs: number): UnknownIpsTable;
  /** Payloads of the live channels (also published, when a publisher is given). */
  payload(channel: TelemetryChannel): unknown;
  /** Writes the history's minute in progress now (with a fresh TCP quality capture): the History page shows up to the current second. */
  flushHistory(): void;
  /** One counter tick now (tests; the timer calls it too). */
  tick(): Promise<void>;
  /** One queue-stats poll now. */
  pollQueues(): Promise<void>;
  stop(): Promise<void>;
}

/** Runs `fn` unless a run is still going (then that run's promise); failures are logged. */
class SingleFlight {
  running?: Promise<void>;
  constructor(
    private readonly what: string,
    private readonly log: Log,
  ) {}
  run(fn: () => Promise<void>): Promise<void> {
    this.running ??= fn()
      .catch((e: unknown) => this.log.warn({ err: e }, `${this.what} failed: ${(e as Error).message}`))
      .finally(() => (this.running = undefined));
    return this.running;
  }
}

class TelemetryService implements Telemetry {
  readonly history: TelemetryHistory | undefined;
  private readonly state: TelemetryState;
  private readonly log: Log;
  private readonly now: () => number;
  private readonly intervalMs: number;
  private readonly gauges?: RateGauges;
  private readonly isAttached: () => boolean;
  private readCounters?: () => Promise<Map<string, HostCounters>> | Map<string, HostCounters>;
  private readUnmapped?: () => Promise<UnmappedSnapshot> | UnmappedSnapshot;
  private readErr?: string;
  private unmappedErr?: string;
  private nodeDropArrays: Float64Array[] = [];
  private lastQualityAt = 0;
  private ticks = 0;
  private lastTickMs = 0;
  private lastReadMs = 0;
  private readonly ticking: SingleFlight;
  private readonly polling: SingleFlight;
  private readonly timers: NodeJS.Timeout[] = [];
  private readonly unpublish: (() => void)[] = [];
  private stopped?: Promise<void>;

  constructor(
    private readonly ctx: TelemetryContext,
    private readonly opts: TelemetryOptions,
  ) {
    this.log = ctx.log;
    this.now = opts.now ?? Date.now;
    this.intervalMs = opts.intervalMs ?? 1000;
    this.readCounters = opts.readCounters;
    this.readUnmapped = opts.readUnmapped;
    this.isAttached = opts.isAttached ?? (opts.readCounters ? () => true : () => existsSync(`${opts.pinRoot}/host_counters`));
    this.ticking = new SingleFlight('telemetry tick', this.log);
    this.polling = new SingleFlight('telemetry queue stats', this.log);
    if (opts.metrics) this.gauges = new RateGauges(opts.metrics, opts.maxCircuitMetrics ?? 1000, { log: ctx.log, flows: opts.flows, queues: () => this.state.queues.circuits });
    const given = opts.unknownIps;
    const rulesOf = typeof given === 'function' ? given : () => given;
    let rules = rulesOf();
    let unknownIpFilter = new UnknownIpFilter(rules);
    this.state = {
      plan: undefined,
      index: undefined,
      rollup: new Rollup(opts.topN ?? 10),
      hosts: new HostRateTracker(),
      unmapped: new UnmappedTracker(),
      unknownListed: (ip) => {
        const now = rulesOf();
        if (now !== rules) {
          rules = now;
          unknownIpFilter = new UnknownIpFilter(now);
        }
        return unknownIpFilter.listed(ip);
      },
      cpu: new CpuSampler(opts.readProcStat),
      queues: new QueueStatsCollector({ wrap: opts.wrap, log: ctx.log, now: this.now, readQdiscs: opts.readQdiscs }),
      totalsRing: new MultiRing(opts.ringSize ?? 300, TOTAL_FIELDS),
      nodeRings: new Map(),
      attached: false,
      lastAt: 0,
      queueAt: 0,
      queueDtMs: 0,
    };
    this.history = this.openHistory();
  }

  private openHistory(): TelemetryHistory | undefined {
    if (this.opts.historyPath === false) return undefined;
    const path = this.opts.historyPath ?? statePaths(this.ctx.config().state_directory).telemetry;
    try {
      return new TelemetryHistory({ path, now: this.now, retentionDays: this.opts.retentionDays, circuitRetentionDays: this.opts.circuitRetentionDays });
    } catch (e) {
      this.log.warn(`telemetry history disabled: cannot open ${path}: ${(e as Error).message}`);
      return undefined;
    }
  }

  /** Publishes the channels and starts the timers. */
  start(): void {
    const { publish } = this.opts;
    if (publish) for (const ch of ['throughput', 'circuits', 'queues', 'cpu'] as const) this.unpublish.push(publish(ch, () => this.payload(ch)));
    if (this.opts.autoStart === false) return;
    void this.tick();
    this.timers.push(setInterval(() => void this.tick(), this.intervalMs), setInterval(() => void this.pollQueues(), this.opts.queueIntervalMs ?? 2000));
    for (const t of this.timers) t.unref();
  }

  /** A new plan in force: rebuild the index, the per-node arrays and rings, and the gauges. */
  private refreshPlan(): void {
    const s = this.state;
    const p = this.ctx.appliedPlan();
    if (p === s.plan) return;
    s.plan = p;
    const index = p ? buildPlanIndex(p) : undefined;
    s.index = index;
    const N = index?.nodeCount ?? 0;
    this.nodeDropArrays = [0, 1, 2, 3].map(() => new Float64Array(N));
    const keep = new Set(index ? index.topLevel.map((n) => index.nodePaths[n]!) : []);
    for (const k of s.nodeRings.keys()) if (!keep.has(k)) s.nodeRings.delete(k);
    for (const k of keep) if (!s.nodeRings.has(k)) s.nodeRings.set(k, new MultiRing(this.opts.ringSize ?? 300, NODE_FIELDS));
    this.gauges?.resetPlan(index);
    this.log.debug({ circuits: index?.circuitCount ?? 0, nodes: N }, 'telemetry: plan index rebuilt');
  }

  tick(): Promise<void> {
    return this.ticking.run(() => this.doTick());
  }

  private async doTick(): Promise<void> {
    const s = this.state;
    const t = this.now();
    const t0 = performance.now();
    s.cpu.sample();
    this.refreshPlan();
    s.attached = this.isAttached();
    const tr0 = performance.now();
    if (s.attached) {
      await Promise.all([this.readHosts(t), this.readUnmappedTraffic(t)]);
      this.lastReadMs = performance.now() - tr0;
    } else if (s.hosts.hosts.size > 0 || s.unmapped.tableSize > 0) {
      s.hosts.reset();
      s.unmapped.reset();
    }
    const t1 = performance.now();
    this.recordRates(t);
    if (this.opts.onCircuitBytes) this.opts.onCircuitBytes(circuitBytes(s));
    s.lastAt = t;
    this.ticks++;
    // Time spent in our own code (the counter read itself is the dataplane's: lastReadMs).
    this.lastTickMs = performance.now() - t1 + (tr0 - t0);
  }

  private async readHosts(t: number): Promise<void> {
    let counters: Map<string, HostCounters> | undefined;
    try {
      counters = await (this.readCounters ?? (await this.defaultReader()))();
      if (this.readErr) this.log.info('telemetry: reading host counters works again');
      this.readErr = undefined;
    } catch (e) {
      const msg = (e as Error).message;
      if (msg !== this.readErr) this.log.warn(`telemetry: reading host counters failed: ${msg}`);
      this.readErr = msg;
    }
    if (counters) this.state.hosts.update(counters, t);
  }

  private async readUnmappedTraffic(t: number): Promise<void> {
    if (!this.readUnmapped && this.opts.readCounters) return; // injected counters, no unmapped reader
    try {
      const snap = await (this.readUnmapped ?? (await this.defaultUnmappedReader()))();
      if (this.unmappedErr) this.log.info('telemetry: reading unmapped traffic works again');
      this.unmappedErr = undefined;
      this.state.unmapped.update(snap, t);
    } catch (e) {
      const msg = (e as Error).message;
      if (msg !== this.unmappedErr) this.log.warn(`telemetry: reading unmapped traffic (dp_stats, unknown_ips) failed: ${msg}`);
      this.unmappedErr = msg;
    }
  }

  private async defaultUnmappedReader(): Promise<() => Promise<UnmappedSnapshot>> {
    const { readStats, readUnknownIps } = await import('../../dataplane/maps.ts');
    const ctx = { pinRoot: this.opts.pinRoot };
    const reader = async (): Promise<UnmappedSnapshot> => {
      const [stats, unknownIps] = await Promise.all([readStats(ctx), readUnknownIps(ctx)]);
      return { stats, unknownIps };
    };
    this.readUnmapped = reader;
    return reader;
  }

  private async defaultReader(): Promise<() => Promise<Map<string, HostCounters>>> {
    const { readHostCounters } = await import('../../dataplane/maps.ts');
    const reader = () => readHostCounters({ pinRoot: this.opts.pinRoot });
    this.readCounters = reader;
    return reader;
  }

  /** Roll-up, rings, gauges and the per-minute history of this tick. */
  private recordRates(t: number): void {
    const { rollup, index, hosts, totalsRing, nodeRings } = this.state;
    rollup.run(index, hosts.hosts.values());
    addUnmapped(this.state);
    const r = rollup.totals;
    totalsRing.push(t, r.downBps, r.upBps, r.shapedDownBps, r.shapedUpBps);
    if (index) for (const n of index.topLevel) nodeRings.get(index.nodePaths[n]!)?.push(t, rollup.nodeDownBps[n]!, rollup.nodeUpBps[n]!);
    this.gauges?.update(rollup, index, hosts.lastDtMs);
    if (!this.history) return;
    if (!index) {
      this.history.addRates(t, { downBps: r.downBps, upBps: r.upBps, nodeKeys: [], nodeDown: [], nodeUp: [], circuitKeys: [], circuitDown: [], circuitUp: [] });
      return;
    }
    this.history.addRates(t, {
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
    if (t - this.lastQualityAt >= (this.opts.qualityEveryMs ?? 10_000)) this.captureQuality(t);
  }

  /** Flow tracking's TCP quality of this moment into the history (nothing without flow tracking or a plan). */
  private captureQuality(t: number): void {
    const { index } = this.state;
    this.lastQualityAt = t;
    const snap = this.opts.flows?.();
    if (!this.history || !index || !snap) return;
    this.history.addQuality(t, qualitySample(index, snap));
  }

  flushHistory(): void {
    if (!this.history) return;
    // A fresh capture, unless the last one read the same flow snapshot (flow tracking polls every 2 s).
    const t = this.now();
    if (t - this.lastQualityAt >= 2000) this.captureQuality(t);
    this.history.flush();
  }

  pollQueues(): Promise<void> {
    return this.polling.run(() => this.doPoll());
  }

  private async doPoll(): Promise<void> {
    const s = this.state;
    this.refreshPlan();
    if (!s.index || s.index.plan.mode !== 'shape' || !(this.isAttached() || this.opts.readQdiscs)) return;
    const ix = s.index;
    await s.queues.poll(ix);
    if (ix !== s.index) return; // the plan changed meanwhile
    const t = this.now();
    s.queueDtMs = s.queueAt ? t - s.queueAt : 0;
    s.queueAt = t;
    this.gauges?.queuePoll(ix, s.queues.circuits);
    if (this.history) this.recordDrops(ix, t, this.history);
  }

  /** Per-circuit and per-node drops and ECN marks of this poll into the history. */
  private recordDrops(ix: PlanIndex, t: number, history: TelemetryHistory): void {
    const cq = this.state.queues.circuits;
    const [dd, du, md, mu] = this.nodeDropArrays as [Float64Array, Float64Array, Float64Array, Float64Array];
    for (const a of this.nodeDropArrays) a.fill(0);
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
    history.addDrops(t, { drops: cq.totals.drops, marks: cq.totals.marks, nodeKeys: ix.nodePaths, nodeDrops: [dd, du, md, mu], circuitKeys: ix.circuitIds, circuits });
  }

  snapshot(): TelemetrySnapshot {
    const s = this.state;
    return {
      at: s.lastAt,
      intervalMs: this.intervalMs,
      dtMs: s.hosts.lastDtMs,
      dataplane: s.attached,
      totals: { ...s.rollup.totals },
      link: s.plan?.link ? { ...s.plan.link } : undefined,
      nodes: s.index ? [...Array(s.index.nodeCount).keys()].map((n) => s.rollup.nodeView(n)) : [],
      topDownload: topDownload(s),
      topUpload: topUpload(s),
      activeCircuits: s.rollup.touchedCount,
      queues: { at: s.queueAt, dtMs: s.queueDtMs, totals: structuredClone(s.queues.circuits.totals) },
      cpu: { total: s.cpu.latest.total, perCore: [...s.cpu.latest.perCore] },
      ticks: this.ticks,
      lastTickMs: Math.round(this.lastTickMs * 1000) / 1000,
      lastReadMs: Math.round(this.lastReadMs * 1000) / 1000,
    };
  }

  payload(channel: TelemetryChannel): unknown {
    const max = this.opts.maxChannelCircuits ?? 1000;
    switch (channel) {
      case 'throughput':
        return throughputPayload(this.state);
      case 'circuits':
        return circuitRatesPayload(this.state, max);
      case 'queues':
        return queueStatsPayload(this.state, max);
      case 'cpu':
        return cpuPayload(this.state);
    }
  }

  circuit(id: string): CircuitRateView | undefined {
    const { index, rollup } = this.state;
    const c = index?.circuitById.get(id);
    return c === undefined || rollup.index !== index ? undefined : rollup.circuitView(c);
  }

  circuitQueues(id: string): QueueCircuitView | undefined {
    const s = this.state;
    const c = s.index?.circuitById.get(id);
    return c === undefined ? undefined : queueView(s as TelemetryState & { index: PlanIndex }, c);
  }

  circuitDetail(id: string, nowBootNs: bigint): CircuitTelemetry | undefined {
    const c = this.state.index?.circuitById.get(id);
    return c === undefined ? undefined : circuitTelemetry(this.state, c, this.now(), nowBootNs);
  }

  statsHosts(req: StatsHostsRequest): unknown {
    return statsHostsReply(this.state, req);
  }

  unknownIps(): UnknownIpView[] {
    return unknownIps(this.state);
  }

  unknownIpTable(nowBootNs: bigint, windowMs: number): UnknownIpsTable {
    const now = this.now();
    return { at: now, available: true, windowSeconds: Math.round(windowMs / 1000), rows: unknownIpRows(this.state, now, nowBootNs, windowMs), summary: unknownSummary(this.state) };
  }

  unknownSummary(): UnknownIpsSummary {
    return unknownSummary(this.state);
  }

  stop(): Promise<void> {
    this.stopped ??= (async () => {
      for (const t of this.timers) clearInterval(t);
      for (const u of this.unpublish) u();
      await Promise.all([this.ticking.running, this.polling.running]);
      try {
        this.flushHistory();
        this.history?.close();
      } catch (e) {
        this.log.warn(`telemetry history close failed: ${(e as Error).message}`);
      }
      this.gauges?.clear();
    })();
    return this.stopped;
  }
}

/** Bytes per circuit with traffic in this tick (rates × the tick's interval), computed as iterated. */
function* circuitBytes(s: TelemetryState): Generator<[string, number]> {
  const { rollup, index, hosts } = s;
  if (!index || !s.attached || rollup.index !== index) return;
  const seconds = hosts.lastDtMs / 1000;
  for (let k = 0; k < rollup.touchedCount; k++) {
    const c = rollup.touched[k]!;
    yield [index.circuitIds[c]!, ((rollup.circuitDownBps[c]! + rollup.circuitUpBps[c]!) * seconds) / 8];
  }
}

/** Unmapped traffic into the totals of this tick (all traffic = mapped hosts + unmapped). */
function addUnmapped(s: TelemetryState): void {
  const t = s.rollup.totals;
  const u = s.unmapped;
  const on = s.attached;
  t.unmappedDownBps = on ? u.downBps : 0;
  t.unmappedUpBps = on ? u.upBps : 0;
  t.unmappedDownPps = on ? u.downPps : 0;
  t.unmappedUpPps = on ? u.upPps : 0;
  t.downBps += t.unmappedDownBps;
  t.upBps += t.unmappedUpBps;
  t.downPps += t.unmappedDownPps;
  t.upPps += t.unmappedUpPps;
  t.unknownActiveHosts = listedUnknown(s).length;
}

export function startTelemetry(ctx: TelemetryContext, opts: TelemetryOptions): Telemetry {
  const service = new TelemetryService(ctx, opts);
  service.start();
  return service;
}
