/**
 * Lazy queues (`[queues] lazy_queues`, `lazy_expire_seconds`, `lazy_threshold_bytes`).
 *
 * With `"Htb"` an apply builds every class but no circuit leaf qdisc; with `"Full"` it builds no
 * circuit class either (sites and APs are always built). IP mappings are written for every circuit,
 * so the dataplane counts a circuit's traffic from its first packet: until its class exists HTB
 * sends it through the default class `N:2`; until its leaf exists the class has HTB's own pfifo.
 * lqosd's telemetry tick (1 s) hands the bytes each circuit moved to the manager below, which adds
 * the class and/or leaf of every newly active circuit in one `tc -batch` and removes those idle for
 * `lazy_expire_seconds` (0: never). The dataplane also reports the first packet of a circuit that is
 * not built (./lazyFirstPackets.ts), so it is built within tens of milliseconds, not at the next tick.
 *
 * `decideLazy` is the pure decision; `LazyQueueManager` holds what is materialised, runs tc, and
 * hands the apply engine (../apply/engine.ts `LazyControl`) what to compile lazily. A circuit counts
 * as materialised when its class and leaf are in the kernel (in either mode).
 */
import type { LqosConfig, LazyQueueMode } from '../config/schema.ts';
import type { PlannedCircuit, ShapingPlan } from '../model.ts';
import { circuitLeafTokens, compileCircuitLines, sidesOf, type CompileOptions } from '../compile/tc.ts';
import type { LazyControl } from '../apply/engine.ts';
import { readClasses, readQdiscs } from '../apply/kernelState.ts';
import { runTcBatch } from '../apply/tcBatch.ts';
import { formatClassId, tcHex } from '../util/classId.ts';
import { circuitIdIndex, StringIndex, type CircuitIdIndex } from '../util/keyIndex.ts';
import type { Log } from '../util/log.ts';
import type { LazyQueuesStatus } from '../api/status.ts';
import { FirstPacketWatch, LAZY_POLL_MS, LazyMapsRecreatedError, type LazySignals } from './lazyFirstPackets.ts';

export interface LazyDecision {
  /** Circuits to materialise now (active, in the plan, not materialised). */
  create: string[];
  /** Materialised circuits idle for the expiry time. */
  expire: string[];
  /** Materialised circuits active this tick (their idle time restarts). */
  touch: string[];
}

export interface LazyDecisionInput {
  /** Materialised circuit → when it was last active (ms). */
  materialised: ReadonlyMap<string, number>;
  /** Circuit → bytes (both directions) moved since the last decision. */
  traffic: ReadonlyMap<string, number>;
  now: number;
  /** Activity is more than this many bytes since the last decision (default 0: any traffic). */
  thresholdBytes: number;
  /** Idle time after which a materialised circuit is removed; 0 = never. */
  expireMs: number;
  /** Whether the plan in force has this circuit. */
  inPlan(id: string): boolean;
}

/** Which circuits to materialise and which to expire (pure). */
export function decideLazy(input: LazyDecisionInput): LazyDecision {
  const { materialised, traffic, now, thresholdBytes, expireMs } = input;
  const create: string[] = [];
  const touch: string[] = [];
  const active = new Set<string>();
  for (const [id, bytes] of traffic) {
    if (!(bytes > thresholdBytes)) continue;
    active.add(id);
    if (materialised.has(id)) touch.push(id);
    else if (input.inPlan(id)) create.push(id);
  }
  const expire: string[] = [];
  if (expireMs > 0) {
    for (const [id, last] of materialised) if (!active.has(id) && now - last >= expireMs) expire.push(id);
  }
  return { create, expire, touch };
}

/** tc lines that materialise circuit `c` (replace: harmless when already there). */
export function materialiseLines(plan: ShapingPlan, c: PlannedCircuit, mode: 'Htb' | 'Full', substitute: CompileOptions['substitute']): string[] {
  const lines = compileCircuitLines(plan, c, { substitute }, 'replace');
  return mode === 'Full' ? lines : lines.filter((l) => l.startsWith('qdisc '));
}

/** tc lines that take circuit `c` back to its lazy state: no class (Full), no leaf (Htb). */
export function expireLines(plan: ShapingPlan, c: PlannedCircuit, mode: 'Htb' | 'Full', substitute: CompileOptions['substitute']): string[] {
  const out: string[] = [];
  for (const s of sidesOf(plan)) {
    const classid = formatClassId(c.queue + s.majorOffset, c.minor);
    if (mode === 'Full') out.push(`class del dev ${s.dev} classid ${classid}`);
    else {
      const d = s.dir === 'download' ? c.download : c.upload;
      if (circuitLeafTokens(d, { substitute })) out.push(`qdisc del dev ${s.dev} parent ${classid}`);
    }
  }
  return out;
}

export interface LazyQueueManagerOptions {
  log: Log;
  config(): LqosConfig;
  /** Status sink (lqosd status `shaping.lazyQueues`). */
  publish?(status: LazyQueuesStatus | undefined): void;
  /** Takes the kernel lock without waiting (another process holds it: throws, the batch waits a tick). */
  tryLockKernel?(): { release(): void };
  /** The dataplane's first-packet reports while it is attached (./lazyFirstPackets.ts). */
  signals?(): LazySignals | undefined;
  /** Command prefix for tc (tests). */
  wrap?: string[];
  now?(): number;
}

/** A simple async mutex: applies and the manager's own tc batches never interleave. */
class Gate {
  private tail: Promise<void> = Promise.resolve();
  async take(): Promise<() => void> {
    let release!: () => void;
    const next = new Promise<void>((r) => (release = r));
    const prev = this.tail;
    this.tail = prev.then(() => next);
    await prev;
    return release;
  }
}

const NO_CIRCUITS: CircuitIdIndex = { ids: [], byId: new StringIndex([]) };

export class LazyQueueManager {
  private plan?: ShapingPlan;
  /** The plan's circuits by id (shared with telemetry: lib/util/keyIndex.ts). */
  private ids: CircuitIdIndex = NO_CIRCUITS;
  private circuits: readonly PlannedCircuit[] = [];
  private substitute: CompileOptions['substitute'];
  /** Mode the tree in the kernel was last built with (undefined: unknown, before the first apply). */
  private appliedMode?: LazyQueueMode;
  private readonly materialised = new Map<string, number>();
  private pending = new Map<string, number>();
  /** False until what is materialised was read from the kernel (after lqosd's start, after a failed batch). */
  private synced = false;
  private readonly gate = new Gate();
  private running?: Promise<void>;
  private lastError?: string;
  private created = 0;
  private expired = 0;
  /** Circuits whose first packet the dataplane reported. */
  private reported = 0;
  private readonly now: () => number;
  private readonly watch: FirstPacketWatch;
  private poll?: ReturnType<typeof setInterval>;
  /** First packets arrived while a batch was running: run another one after it. */
  private again = false;
  /** `lazy_threshold_bytes` when the first-packet reports were last armed or switched off. */
  private armedThreshold?: number;

  constructor(private readonly o: LazyQueueManagerOptions) {
    this.now = o.now ?? Date.now;
    this.watch = new FirstPacketWatch(() => o.signals?.());
  }

  /** The lazy mode the config asks for. */
  private mode(): LazyQueueMode {
    return this.o.config().queues.lazy_queues;
  }

  /** Held by every apply (lqosd wraps its kernel lock with it): no lazy batch runs meanwhile. */
  pause(): Promise<() => void> {
    return this.gate.take();
  }

  /** What the next apply compiles (called per apply, with the config of that run). */
  control(config: LqosConfig): LazyControl {
    const mode = config.queues.lazy_queues;
    const changed = this.appliedMode !== undefined && this.appliedMode !== mode;
    return {
      compile: mode === 'No' ? undefined : { mode, isMaterialised: (id) => this.materialised.has(id) },
      ...(changed ? { rebuild: `lazy_queues changed (${this.appliedMode} → ${mode})` } : {}),
      applied: (plan, full, compile) => this.applied(plan, mode, full, compile),
    };
  }

  /** An apply succeeded: the plan in force; removed circuits are forgotten. */
  private applied(plan: ShapingPlan, mode: LazyQueueMode, full: boolean, compile: CompileOptions): void {
    this.appliedMode = mode;
    this.plan = plan;
    this.substitute = compile.substitute;
    this.ids = NO_CIRCUITS;
    this.circuits = [];
    if (mode === 'No' || plan.mode !== 'shape') {
      this.materialised.clear();
      this.synced = true;
    } else {
      this.ids = circuitIdIndex(plan.circuits);
      this.circuits = plan.circuits;
      for (const id of this.materialised.keys()) if (this.ids.byId.get(id) === undefined) this.materialised.delete(id);
      // A full rebuild built exactly what is materialised; the first apply after lqosd's start
      // verified a tree whose lazy state is unknown: read it back before the next batch.
      if (full) this.synced = true;
    }
    this.rearm();
    this.o.log.debug({ full, mode, materialised: this.materialised.size }, 'lazy queues: plan applied');
    this.publish();
  }

  /**
   * Arms the dataplane's first-packet reports for every circuit not built (./lazyFirstPackets.ts)
   * and reads them every LAZY_POLL_MS; off without a dataplane, with a byte threshold, or not lazy.
   */
  private rearm(): void {
    this.armedThreshold = this.o.config().queues.lazy_threshold_bytes ?? 0;
    const mode = this.appliedMode;
    const enabled = !!this.plan && this.plan.mode === 'shape' && (mode === 'Htb' || mode === 'Full') && this.armedThreshold === 0;
    let watching = false;
    try {
      watching = this.watch.rearm(this.plan, this.materialised, enabled) && enabled;
    } catch (e) {
      const msg = `lazy queues: the dataplane's first-packet reports are off (${(e as Error).message})`;
      if (enabled) this.o.log.warn(`${msg}; circuits are built at the 1 s telemetry tick until the next apply`);
      else this.o.log.debug(msg);
    }
    if (watching && !this.poll) {
      this.poll = setInterval(() => this.firstPackets(), LAZY_POLL_MS);
      this.poll.unref?.();
    } else if (!watching && this.poll) {
      clearInterval(this.poll);
      this.poll = undefined;
    }
  }

  /** Circuits whose first packet the dataplane reported: built now (as by a tick that saw their traffic). */
  private firstPackets(): void {
    let ids: string[];
    try {
      ids = this.watch.reported();
    } catch (e) {
      if (e instanceof LazyMapsRecreatedError) {
        this.o.log.info(`lazy queues: ${e.message}; arming the circuits that are not built again`);
        this.rearm();
      } else this.o.log.debug(`lazy queues: reading first-packet reports failed: ${(e as Error).message}`);
      return;
    }
    // After a failed batch the next tick reads the kernel back and retries: reports would only
    // repeat that (read back, re-arm, report, fail) every 25 ms.
    if (ids.length === 0 || !this.plan || this.lastError !== undefined) return;
    this.reported += ids.length;
    for (const id of ids) this.pending.set(id, Math.max(this.pending.get(id) ?? 0, (this.o.config().queues.lazy_threshold_bytes ?? 0) + 1));
    this.o.log.debug({ circuits: ids.slice(0, 50) }, `lazy queues: first packets of ${ids.length} circuit(s) reported by the dataplane`);
    this.kick();
  }

  /** Starts a batch, or another one right after the one running. */
  private kick(): void {
    if (this.running) {
      this.again = true;
      return;
    }
    this.running = this.reconcile().finally(() => {
      this.running = undefined;
      if (this.again) {
        this.again = false;
        this.kick();
      }
    });
  }

  /**
   * The config was reloaded: `lazy_threshold_bytes` may have been set (first-packet reports off) or
   * cleared (on again). `lazy_queues` itself takes effect with the next apply (a rebuild).
   */
  configChanged(): void {
    const threshold = this.o.config().queues.lazy_threshold_bytes ?? 0;
    if (!this.plan || threshold === this.armedThreshold) return;
    this.rearm();
    this.publish();
  }

  /** Stops reading first-packet reports (lqosd stops). */
  stop(): void {
    if (this.poll) clearInterval(this.poll);
    this.poll = undefined;
  }

  /** One telemetry tick: bytes per circuit since the last one. Starts a batch when something is to do. */
  observe(traffic: Iterable<[string, number]>): void {
    if (!this.plan || this.appliedMode === 'No' || this.appliedMode === undefined) return;
    for (const [id, bytes] of traffic) this.pending.set(id, (this.pending.get(id) ?? 0) + bytes);
    this.kick();
  }

  /** Waits for the batch in flight (tests, stop). */
  async idle(): Promise<void> {
    // A batch may start another one as it ends (first packets that arrived meanwhile).
    while (this.running) await this.running;
  }

  counts(): LazyQueuesStatus | undefined {
    const mode = this.appliedMode;
    if (!mode || mode === 'No' || !this.plan) return undefined;
    const circuits = this.ids.byId.size;
    return {
      mode,
      circuits,
      materialised: this.materialised.size,
      lazy: circuits - this.materialised.size,
      created: this.created,
      expired: this.expired,
      firstPacketReports: this.poll !== undefined,
      reported: this.reported,
    };
  }

  /** The dry_run warning was logged (once per stretch of dry_run). */
  private dryRunSaid = false;

  private publish(): void {
    this.o.publish?.(this.counts());
  }

  private async reconcile(): Promise<void> {
    const release = await this.gate.take();
    let lock: { release(): void } | undefined;
    try {
      const plan = this.plan;
      const mode = this.appliedMode;
      if (!plan || !mode || mode === 'No' || mode !== this.mode()) return;
      if (this.o.config().queues.dry_run) {
        // dry_run set by a reload after a real apply: never touch the kernel. Traffic waits in
        // `pending` (one entry per circuit) for the first tick after it is cleared.
        if (!this.dryRunSaid) this.o.log.warn('lazy queues: [queues] dry_run is set, so no circuit is built or removed until it is cleared');
        this.dryRunSaid = true;
        return;
      }
      this.dryRunSaid = false;
      const traffic = this.pending;
      let d = this.synced ? this.decide(traffic) : undefined;
      if (d && d.create.length === 0 && d.expire.length === 0) {
        // Nothing for the kernel this tick: the idle times only, without the kernel lock.
        this.pending = new Map();
        for (const id of d.touch) this.materialised.set(id, d.now);
        return;
      }
      try {
        lock = this.o.tryLockKernel?.();
      } catch (e) {
        this.o.log.debug(`lazy queues: kernel lock busy (${(e as Error).message}); next tick`);
        return;
      }
      if (!d) {
        await this.sync(plan, mode);
        d = this.decide(traffic);
      }
      this.pending = new Map();
      await this.step(plan, mode, d);
    } catch (e) {
      const msg = (e as Error).message;
      if (msg !== this.lastError) this.o.log.warn(`lazy queues: ${msg.split('\n')[0]}; reading the kernel back before the next change`);
      this.lastError = msg;
      this.synced = false;
    } finally {
      lock?.release();
      release();
    }
  }

  /** decideLazy on what is materialised now and the traffic since the last batch. */
  private decide(traffic: Map<string, number>): LazyDecision & { now: number } {
    const q = this.o.config().queues;
    const now = this.now();
    const d = decideLazy({ materialised: this.materialised, traffic, now, thresholdBytes: q.lazy_threshold_bytes ?? 0, expireMs: q.lazy_expire_seconds * 1000, inPlan: (id) => this.ids.byId.get(id) !== undefined });
    return { ...d, now };
  }

  /** A circuit of the plan in force, by id. */
  private circuit(id: string): PlannedCircuit {
    return this.circuits[this.ids.byId.get(id)!]!;
  }

  /** Runs one decision's batch (expiries, then creations) and records the outcome. */
  private async step(plan: ShapingPlan, mode: 'Htb' | 'Full', d: LazyDecision & { now: number }): Promise<void> {
    const now = d.now;
    for (const id of d.touch) this.materialised.set(id, now);
    if (d.create.length === 0 && d.expire.length === 0) return;
    const lines: string[] = [];
    for (const id of d.expire) lines.push(...expireLines(plan, this.circuit(id), mode, this.substitute));
    for (const id of d.create) lines.push(...materialiseLines(plan, this.circuit(id), mode, this.substitute));
    if (lines.length) await runTcBatch(lines, { log: this.o.log, wrap: this.o.wrap });
    for (const id of d.expire) this.materialised.delete(id);
    for (const id of d.create) this.materialised.set(id, now);
    this.followWatch(d);
    this.created += d.create.length;
    this.expired += d.expire.length;
    this.lastError = undefined;
    const what = mode === 'Full' ? 'class and leaf qdisc' : 'leaf qdisc';
    if (d.create.length) this.o.log.debug({ circuits: d.create.slice(0, 50) }, `lazy queues: created the ${what} of ${d.create.join(', ').slice(0, 400)}`);
    if (d.expire.length) this.o.log.debug({ circuits: d.expire.slice(0, 50) }, `lazy queues: removed the ${what} of ${d.expire.join(', ').slice(0, 400)}`);
    this.o.log.info(
      { created: d.create.length, expired: d.expire.length, materialised: this.materialised.size, circuits: this.ids.byId.size },
      `lazy queues: ${d.create.length} created, ${d.expire.length} expired (${this.materialised.size} of ${this.ids.byId.size} circuits materialised)`,
    );
    this.publish();
  }

  /** The first-packet watch after a batch: built circuits no longer watched, removed ones again. */
  private followWatch(d: LazyDecision): void {
    try {
      this.watch.built(d.create);
      this.watch.removed(d.expire);
    } catch (e) {
      this.o.log.debug(`lazy queues: updating first-packet reports failed (${(e as Error).message}); re-armed at the next plan`);
    }
  }

  /**
   * What is materialised, from the kernel (after lqosd's start: a tree built before): a circuit
   * counts when its download leaf qdisc is there (its class, for a circuit without a leaf in Full
   * mode). Each starts its idle time now.
   */
  private async sync(plan: ShapingPlan, mode: 'Htb' | 'Full'): Promise<void> {
    const side = sidesOf(plan)[0]!;
    const [qdiscs, classes] = await Promise.all([readQdiscs(side.dev, { wrap: this.o.wrap }), mode === 'Full' ? readClasses(side.dev, { wrap: this.o.wrap }) : Promise.resolve(undefined)]);
    const leaves = new Set(qdiscs.map((q) => `${q.parent} ${q.handle}`));
    const now = this.now();
    this.materialised.clear();
    for (const c of plan.circuits) {
      const classid = formatClassId(c.queue + side.majorOffset, c.minor);
      const hasLeaf = circuitLeafTokens(c.download, { substitute: this.substitute }) !== null;
      const present = hasLeaf ? leaves.has(`${classid} ${tcHex(c.download.leafHandle!)}:`) : mode === 'Htb' || classes!.has(classid);
      if (present) this.materialised.set(c.id, now);
    }
    this.synced = true;
    this.rearm();
    this.o.log.info(`lazy queues: ${this.materialised.size} of ${plan.circuits.length} circuits found materialised in the kernel`);
    this.publish();
  }
}
