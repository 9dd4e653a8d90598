/**
 * Monotonic counters behind lqosd's Prometheus `_total` series (no I/O): bytes from every telemetry
 * tick's rates × its interval (network, top-level sites, circuits), and queue drops / ECN marks from
 * every queue-stats poll's deltas (network, top-level sites; a circuit's come straight from its leaf
 * qdisc's own counters). A counter only grows while lqosd runs: a new plan keeps the values of the
 * sites and circuits (by path / Circuit ID) that are still in it.
 */
import type { CircuitQueues } from './queueStats.ts';
import type { PlanIndex, Rollup } from './rollup.ts';

/** [download, upload] */
export type DownUp = [number, number];

export interface SiteCounters {
  bytes: DownUp;
  drops: DownUp;
  marks: DownUp;
  /** Bytes queued at the last poll (a gauge). */
  backlog: DownUp;
}

const zeroSite = (): SiteCounters => ({ bytes: [0, 0], drops: [0, 0], marks: [0, 0], backlog: [0, 0] });

/** The top-level node above every node (itself for a top-level node), -1 for none. */
export function topLevelOfNodes(ix: PlanIndex): Int32Array {
  const out = new Int32Array(ix.nodeCount).fill(-1);
  // nodeOrder is deepest first: backwards, a parent is always resolved before its children.
  for (let k = ix.nodeOrder.length - 1; k >= 0; k--) {
    const n = ix.nodeOrder[k]!;
    const p = ix.nodeParent[n]!;
    out[n] = p < 0 ? n : out[p]!;
  }
  return out;
}

export class PromCounters {
  index: PlanIndex | undefined;
  /** Node → its top-level node (site). */
  siteOfNode: Int32Array = new Int32Array(0);
  readonly network: SiteCounters = zeroSite();
  /** By top-level node path. */
  readonly sites = new Map<string, SiteCounters>();
  /** Bytes per circuit index, [2c] download, [2c + 1] upload. */
  circuitBytes = new Float64Array(0);
  /** The plan index the last queue poll was mapped with. */
  queuesIndex: PlanIndex | undefined;

  /** A new plan: per-node tables rebuilt, counters of the sites and circuits still in it carried over. */
  setPlan(ix: PlanIndex | undefined): void {
    if (ix === this.index) return;
    const old = this.index;
    const oldBytes = this.circuitBytes;
    this.index = ix;
    this.siteOfNode = ix ? topLevelOfNodes(ix) : new Int32Array(0);
    const keep = new Set(ix ? ix.topLevel.map((n) => ix.nodePaths[n]!) : []);
    for (const path of this.sites.keys()) if (!keep.has(path)) this.sites.delete(path);
    for (const path of keep) if (!this.sites.has(path)) this.sites.set(path, zeroSite());
    this.circuitBytes = new Float64Array(2 * (ix?.circuitCount ?? 0));
    if (!old || !ix) return;
    for (let c = 0; c < old.circuitCount; c++) {
      if (oldBytes[2 * c] === 0 && oldBytes[2 * c + 1] === 0) continue;
      const n = ix.circuitById.get(old.circuitIds[c]!);
      if (n === undefined) continue;
      this.circuitBytes[2 * n] = oldBytes[2 * c]!;
      this.circuitBytes[2 * n + 1] = oldBytes[2 * c + 1]!;
    }
  }

  /** One telemetry tick: its rates over `dtMs` into the byte counters. */
  addTick(rollup: Rollup, dtMs: number): void {
    if (!(dtMs > 0)) return;
    const k = dtMs / 8000; // bit/s × ms → bytes
    const t = rollup.totals;
    this.network.bytes[0] += t.downBps * k;
    this.network.bytes[1] += t.upBps * k;
    const ix = this.index;
    if (!ix || rollup.index !== ix) return;
    for (const n of ix.topLevel) {
      const s = this.sites.get(ix.nodePaths[n]!)!;
      s.bytes[0] += rollup.nodeDownBps[n]! * k;
      s.bytes[1] += rollup.nodeUpBps[n]! * k;
    }
    for (let j = 0; j < rollup.touchedCount; j++) {
      const c = rollup.touched[j]!;
      this.circuitBytes[2 * c] += rollup.circuitDownBps[c]! * k;
      this.circuitBytes[2 * c + 1] += rollup.circuitUpBps[c]! * k;
    }
  }

  /** The site (top-level node path) of a circuit, undefined when it hangs under no node. */
  siteOfCircuit(c: number): string | undefined {
    const ix = this.index;
    const n = ix ? ix.circuitNode[c]! : -1;
    const s = n >= 0 ? this.siteOfNode[n]! : -1;
    return s >= 0 ? ix!.nodePaths[s] : undefined;
  }

  /** One queue-stats poll (for the plan index it was mapped with): its deltas and backlogs. */
  addPoll(ix: PlanIndex, cq: CircuitQueues): void {
    this.setPlan(ix);
    this.queuesIndex = ix;
    const net = this.network;
    for (let d = 0; d < 2; d++) {
      const dir = d === 0 ? 'down' : 'up';
      net.drops[d] += cq.totals.drops[dir];
      net.marks[d] += cq.totals.marks[dir];
      net.backlog[d] = cq.totals.backlog[dir];
    }
    for (const s of this.sites.values()) s.backlog = [0, 0];
    for (const c of cq.circuits) {
      const path = this.siteOfCircuit(c);
      if (path === undefined) continue;
      const s = this.sites.get(path)!;
      const sides = [cq.down[c], cq.up[c]];
      for (let d = 0; d < 2; d++) {
        const l = sides[d];
        if (!l) continue;
        s.drops[d] += l.d.drops;
        s.marks[d] += l.d.ecnMarks;
        s.backlog[d] += l.backlog;
      }
    }
  }
}
