/**
 * Lazy queues' fast path: which circuits the dataplane watches for a first packet.
 *
 * Without it a lazy circuit is built at the first 1 s telemetry tick after its traffic starts
 * (240–950 ms measured): in `Full` mode its traffic runs unshaped through the default class `N:2`
 * meanwhile, and TCP then stalls and bursts when the class takes over. With it the XDP program
 * reports the first packet of every circuit that is not built (dataplane/lazySignals.ts, armed
 * here by circuit hash) and lqosd reads the reports every LAZY_POLL_MS, so the circuit is built
 * tens of milliseconds after its first packet.
 *
 * Armed: every circuit of the plan in force that is not materialised, while the mode is lazy and
 * `lazy_threshold_bytes` is 0 (a first packet says nothing about a byte threshold; with one, the
 * 1 s tick decides). The watch follows the manager (./lazyQueues.ts): a new plan or a kernel read
 * back re-arms from scratch, a built circuit is disarmed, an expired one armed again.
 */
import { join } from 'node:path';
import type { ShapingPlan } from '../model.ts';
import { armedLazy, armLazy, disarmLazy, openLazyEvents, setLazyArmed } from '../../dataplane/lazySignals.ts';
import type { RingBufferReader } from '../../dataplane/libbpf.ts';
import { pinInode } from '../../dataplane/pinned.ts';

/** How often lqosd reads the reports (ms). */
export const LAZY_POLL_MS = 25;

/** The dataplane side (dataplane/lazySignals.ts on the pinned maps); absent while not attached. */
export interface LazySignals {
  /** Forgets every armed circuit and switches the per-packet check off. */
  clear(): void;
  arm(hashes: bigint[]): void;
  disarm(hashes: bigint[]): void;
  /** The per-packet check on (some circuit is armed) or off. */
  setArmed(on: boolean): void;
  /** Circuit hashes reported since the last call. */
  drain(): bigint[];
}

export class FirstPacketWatch {
  private byHash = new Map<bigint, string>();
  private hashOf = new Map<string, bigint>();
  /** Circuit ids armed in the dataplane. */
  private readonly armed = new Set<string>();
  private signals?: LazySignals;
  /** Something may be armed in the dataplane (set since the last clear), also by an lqosd before us. */
  private used = true;

  constructor(private readonly source: () => LazySignals | undefined) {}

  /**
   * Arms every circuit of `plan` not in `materialised` (none when `enabled` is false), forgetting
   * what was armed before. Returns false when the dataplane is not there (nothing armed).
   */
  rearm(plan: ShapingPlan | undefined, materialised: ReadonlyMap<string, number>, enabled: boolean): boolean {
    this.byHash = new Map();
    this.hashOf = new Map();
    this.armed.clear();
    const wasUsed = this.used;
    const signals = this.source();
    this.signals = undefined; // set again only once the dataplane holds what this watch believes
    if (!signals) return false;
    // Lazy queues off and never on since lqosd started: the dataplane is not touched at all.
    if (!enabled && !wasUsed) return true;
    signals.clear();
    this.used = enabled;
    if (!plan || !enabled) return true;
    const armed: string[] = [];
    const hashes: bigint[] = [];
    for (const c of plan.circuits) {
      this.byHash.set(c.circuitHash, c.id);
      this.hashOf.set(c.id, c.circuitHash);
      if (materialised.has(c.id)) continue;
      armed.push(c.id);
      hashes.push(c.circuitHash);
    }
    signals.arm(hashes);
    signals.setArmed(hashes.length > 0);
    for (const id of armed) this.armed.add(id);
    this.signals = signals;
    return true;
  }

  /** These circuits were built: no longer watched. */
  built(ids: readonly string[]): void {
    const done = ids.filter((id) => this.armed.has(id));
    if (!this.signals || done.length === 0) return;
    this.signals.disarm(done.map((id) => this.hashOf.get(id)!));
    for (const id of done) this.armed.delete(id);
    if (this.armed.size === 0) this.signals.setArmed(false);
  }

  /** These circuits were removed (idle): watched again. */
  removed(ids: readonly string[]): void {
    const fresh = ids.filter((id) => this.hashOf.has(id) && !this.armed.has(id));
    if (!this.signals || fresh.length === 0) return;
    this.signals.arm(fresh.map((id) => this.hashOf.get(id)!));
    const wasEmpty = this.armed.size === 0;
    for (const id of fresh) this.armed.add(id);
    if (wasEmpty) this.signals.setArmed(true);
  }

  /** Armed circuits whose first packet was reported since the last call (each once per call). */
  reported(): string[] {
    if (!this.signals) return [];
    const out = new Set<string>();
    for (const h of this.signals.drain()) {
      const id = this.byHash.get(h);
      if (id !== undefined && this.armed.has(id)) out.add(id);
    }
    return [...out];
  }
}

/** The maps were recreated (a re-attach) since they were armed: arm again (LazyQueueManager does). */
export class LazyMapsRecreatedError extends Error {
  constructor() {
    super('the first-packet maps were recreated (dataplane re-attached)');
    this.name = 'LazyMapsRecreatedError';
  }
}

/**
 * LazySignals on the pinned maps under `pinRoot`. The ring is opened on the first read and again
 * after each clear(); a read finds out when the maps were recreated since the last clear() (the
 * ring's pin is another file) and throws LazyMapsRecreatedError: what was armed is gone.
 */
export function dataplaneLazySignals(pinRoot: string): LazySignals {
  const ctx = { pinRoot };
  const ringPin = join(pinRoot, 'lazy_events');
  let reports: bigint[] = [];
  let reader: RingBufferReader | undefined;
  let armedIno: number | undefined;
  return {
    clear() {
      reader?.close();
      reader = undefined;
      setLazyArmed(false, ctx);
      disarmLazy(armedLazy(ctx), ctx);
      armedIno = pinInode(ringPin);
    },
    arm: (hashes) => armLazy(hashes, ctx),
    disarm: (hashes) => disarmLazy(hashes, ctx),
    setArmed: (on) => setLazyArmed(on, ctx),
    drain() {
      if (pinInode(ringPin) !== armedIno) throw new LazyMapsRecreatedError();
      reader ??= openLazyEvents((h) => reports.push(h), ctx);
      reader.consume();
      const out = reports;
      reports = [];
      return out;
    },
  };
}
