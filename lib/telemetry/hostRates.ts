/**
 * Per-host rates from successive host-counter snapshots (dataplane `host_counters`, summed over
 * CPUs). Pure: no I/O. Index 0 of the dataplane counters is download, 1 upload.
 *
 * Counter semantics: the map is an LRU, so a host can be evicted and come back with counters that
 * restart from zero. A counter that went down is therefore treated as a new host (rate from 0: the
 * delta is the new value itself). A host that appears between two snapshots also counts from 0.
 * On the very first snapshot there is no baseline and every rate is 0.
 *
 * Memory: the tracker keeps one mutable record per host and reuses it every tick (no per-tick
 * allocation besides records for newly seen hosts).
 */
import type { HostCounters } from '../../dataplane/abi.ts';

export type { HostCounters };

export interface HostRate {
  ip: string;
  downBps: number;
  upBps: number;
  downPps: number;
  upPps: number;
  /** Cumulative counters of the latest snapshot (exact, as the dataplane reports them). */
  downBytes: bigint;
  upBytes: bigint;
  downPackets: bigint;
  upPackets: bigint;
  tcHandle: number;
  circuitHash: bigint;
  lastSeenNs: bigint;
  /** Resolved by the roll-up: circuit index in the plan index (-1 = none), and the index version it was resolved against. */
  circuit: number;
  resolvedVersion: number;
  /** Tick of the last snapshot this host was present in. */
  seenTick: number;
  /** Previous counters as doubles (exact up to 2^53, i.e. 9 PB per host) for cheap deltas. */
  pDownBytes: number;
  pUpBytes: number;
  pDownPackets: number;
  pUpPackets: number;
}

const ZERO = 0n;

/** A counter that went down: the entry was evicted and recreated → count from 0. */
const delta = (cur: number, prev: number): number => (cur >= prev ? cur - prev : cur);

/** Keeps the previous counters of every host and turns each new snapshot into rates. */
export class HostRateTracker {
  readonly hosts = new Map<string, HostRate>();
  private tick = 0;
  private lastT: number | undefined;
  /** Wall time (ms) of the latest snapshot. */
  lastAt: number | undefined;
  /** Interval (ms) the latest rates were computed over (0 on the first snapshot). */
  lastDtMs = 0;

  /** Feeds one snapshot taken at `tMs` (ms, any monotonic clock). Hosts missing from it are dropped. */
  update(cur: Map<string, HostCounters>, tMs: number): void {
    const first = this.lastT === undefined;
    const dtMs = first ? 0 : tMs - this.lastT!;
    const perSec = dtMs > 0 ? 1000 / dtMs : 0;
    const bitsPerSec = perSec * 8;
    this.tick++;
    const tick = this.tick;
    for (const [ip, c] of cur) {
      const db = Number(c.downloadBytes);
      const ub = Number(c.uploadBytes);
      const dp = Number(c.downloadPackets);
      const up = Number(c.uploadPackets);
      let h = this.hosts.get(ip);
      if (!h) {
        h = {
          ip, downBps: 0, upBps: 0, downPps: 0, upPps: 0,
          downBytes: ZERO, upBytes: ZERO, downPackets: ZERO, upPackets: ZERO,
          tcHandle: 0, circuitHash: ZERO, lastSeenNs: ZERO, circuit: -1, resolvedVersion: -1, seenTick: 0,
          // No baseline on the first snapshot (rates stay 0); a host new since then counts from 0.
          pDownBytes: first ? db : 0, pUpBytes: first ? ub : 0, pDownPackets: first ? dp : 0, pUpPackets: first ? up : 0,
        };
        this.hosts.set(ip, h);
      }
      if (perSec > 0) {
        h.downBps = delta(db, h.pDownBytes) * bitsPerSec;
        h.upBps = delta(ub, h.pUpBytes) * bitsPerSec;
        h.downPps = delta(dp, h.pDownPackets) * perSec;
        h.upPps = delta(up, h.pUpPackets) * perSec;
      } else {
        h.downBps = h.upBps = h.downPps = h.upPps = 0;
      }
      h.pDownBytes = db;
      h.pUpBytes = ub;
      h.pDownPackets = dp;
      h.pUpPackets = up;
      h.downBytes = c.downloadBytes;
      h.upBytes = c.uploadBytes;
      h.downPackets = c.downloadPackets;
      h.upPackets = c.uploadPackets;
      if (h.tcHandle !== c.tcHandle) {
        h.tcHandle = c.tcHandle;
        h.resolvedVersion = -1; // re-resolve the circuit
      }
      h.circuitHash = c.circuitHash;
      h.lastSeenNs = c.lastSeenNs;
      h.seenTick = tick;
    }
    if (this.hosts.size !== cur.size) {
      for (const [ip, h] of this.hosts) if (h.seenTick !== tick) this.hosts.delete(ip);
    }
    this.lastT = tMs;
    this.lastAt = tMs;
    this.lastDtMs = dtMs;
  }

  /** Forget everything (next snapshot becomes the baseline). */
  reset(): void {
    this.hosts.clear();
    this.lastT = undefined;
    this.lastDtMs = 0;
  }
}

export interface HostRateResult {
  ip: string;
  downBps: number;
  upBps: number;
  downPps: number;
  upPps: number;
}

/**
 * Rates between two snapshots (convenience wrapper around HostRateTracker). Hosts only in `cur`
 * count from 0; counters that went down count from 0.
 */
export function computeHostRates(
  prev: Map<string, HostCounters>,
  prevAtMs: number,
  cur: Map<string, HostCounters>,
  curAtMs: number,
): Map<string, HostRateResult> {
  const t = new HostRateTracker();
  t.update(prev, prevAtMs);
  t.update(cur, curAtMs);
  const out = new Map<string, HostRateResult>();
  for (const [ip, h] of t.hosts) out.set(ip, { ip, downBps: h.downBps, upBps: h.upBps, downPps: h.downPps, upPps: h.upPps });
  return out;
}
