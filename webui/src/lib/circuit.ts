/** Display helpers of the Circuit page's live detail (lib/api/circuit.ts). */
import type { CircuitAddressLive, CircuitQueueSide, LeafInUse } from '../../../lib/api/index.ts';
import { ago } from './format';

/** A per-interval delta as a rate per second ("—" before the second poll). */
export function perSecond(delta: number, dtMs: number): string {
  if (!(dtMs > 0)) return '—';
  const v = (delta * 1000) / dtMs;
  return `${v >= 100 || Number.isInteger(v) ? v.toFixed(0) : v.toFixed(1)}/s`;
}

/** What runs as the leaf of one direction: tc's kind at the last poll, and whether it replaces the planned kind. */
export function leafInUse(l: LeafInUse): string {
  if (!l.planned) return 'none';
  const kind = l.planned.split(' ')[0];
  const running = l.live ?? `${l.fallback ?? l.planned} (not read from tc yet)`;
  // tc's own answer wins: the planned kind running is no fallback, whatever the last run said.
  return l.fallback && l.live !== kind ? `${running} — fallback: this kernel has no ${kind}` : running;
}

/** Microseconds as ms with one decimal. */
export function delayMs(us: number): string {
  return `${(us / 1000).toFixed(1)} ms`;
}

export type QueueSide = CircuitQueueSide | null;

/** A device's share of the addresses: summed rates and bytes, the latest last seen. */
export interface DeviceLive {
  downBps: number;
  upBps: number;
  lastSeenMs: number | null;
}

export function deviceLive(addresses: CircuitAddressLive[]): Map<string, DeviceLive> {
  const out = new Map<string, DeviceLive>();
  for (const a of addresses) {
    if (!a.deviceId) continue;
    const d = out.get(a.deviceId) ?? { downBps: 0, upBps: 0, lastSeenMs: null };
    d.downBps += a.downBps;
    d.upBps += a.upBps;
    if (a.lastSeenMs !== null && (d.lastSeenMs === null || a.lastSeenMs > d.lastSeenMs)) d.lastSeenMs = a.lastSeenMs;
    out.set(a.deviceId, d);
  }
  return out;
}

/** "5s ago" from wall-clock ms; "never" without a time. */
export const seenAgo = (ms: number | null, now: number): string => (ms === null ? 'never' : ago(new Date(ms).toISOString(), now));
