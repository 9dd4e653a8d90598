/**
 * Traffic of addresses without a mapping (pure: no I/O). The dataplane keeps no per-address state
 * for them (issue 20: a scan or a random-source flood must not create any); it counts them in two
 * places that this module turns into rates:
 *  - an aggregate (dp_stats: unmapped bytes/packets per direction) → `downBps`/`upBps`/… of all
 *    unmapped traffic;
 *  - a small sampled table (unknown_ips, ≤ 4096 addresses; a new address enters at most once per
 *    ms per CPU) → per-address rates of the addresses that happen to be in it: the "unknown IPs".
 * Rates come from deltas between successive reads; a counter that went down (dataplane reloaded,
 * sampled entry evicted and re-inserted) counts from 0, the first read is the baseline.
 */
import type { UnknownIp } from '../../dataplane/abi.ts';
import { HostRateTracker, type HostCounters } from './hostRates.ts';

/** One sampled address (dataplane/maps.ts readUnknownIps): the dataplane's own record. */
export type UnknownIpCounters = UnknownIp;

/** The aggregate of all unmapped traffic (dataplane/maps.ts readStats). */
export interface UnmappedCounters {
  unmappedBytesDown: bigint;
  unmappedBytesUp: bigint;
  unmappedPacketsDown: bigint;
  unmappedPacketsUp: bigint;
  /** Addresses ever inserted into the sampled table. */
  unknownSampled: bigint;
}

export interface UnmappedSnapshot {
  stats: UnmappedCounters;
  unknownIps: UnknownIpCounters[];
}

/** Capacity of the sampled table (LQOS_UNKNOWN_SAMPLES). */
export const UNKNOWN_SAMPLES = 4096;

const delta = (cur: number, prev: number): number => (cur >= prev ? cur - prev : cur);

export class UnmappedTracker {
  /** Per sampled address (reuses the host tracker: same delta and eviction rules). */
  readonly samples = new HostRateTracker();
  downBps = 0;
  upBps = 0;
  downPps = 0;
  upPps = 0;
  /** Addresses in the sampled table at the last read. */
  tableSize = 0;
  /** Addresses inserted into the table since the dataplane started (dp_stats). */
  sampledTotal = 0;
  private prev: number[] | undefined;
  private prevT = 0;

  update(snap: UnmappedSnapshot, tMs: number): void {
    const s = snap.stats;
    const cur = [Number(s.unmappedBytesDown), Number(s.unmappedBytesUp), Number(s.unmappedPacketsDown), Number(s.unmappedPacketsUp)];
    const dt = this.prev ? tMs - this.prevT : 0;
    if (this.prev && dt > 0) {
      const p = this.prev;
      const perSec = 1000 / dt;
      this.downBps = delta(cur[0]!, p[0]!) * 8 * perSec;
      this.upBps = delta(cur[1]!, p[1]!) * 8 * perSec;
      this.downPps = delta(cur[2]!, p[2]!) * perSec;
      this.upPps = delta(cur[3]!, p[3]!) * perSec;
    } else this.downBps = this.upBps = this.downPps = this.upPps = 0;
    this.prev = cur;
    this.prevT = tMs;
    this.sampledTotal = Number(s.unknownSampled);
    this.tableSize = snap.unknownIps.length;
    const m = new Map<string, HostCounters>();
    for (const u of snap.unknownIps) {
      m.set(u.ip, {
        downloadBytes: u.downloadBytes, uploadBytes: u.uploadBytes, downloadPackets: u.downloadPackets, uploadPackets: u.uploadPackets,
        lastSeenNs: u.lastSeenNs, tcHandle: 0, circuitHash: 0n, deviceHash: 0n,
      });
    }
    this.samples.update(m, tMs);
  }

  /** Forget everything (not attached): the next read is a new baseline. */
  reset(): void {
    this.samples.reset();
    this.prev = undefined;
    this.downBps = this.upBps = this.downPps = this.upPps = 0;
    this.tableSize = 0;
    this.sampledTotal = 0;
  }
}
