/**
 * Lazy queues' first-packet reports (bpf/lqos_lazy.h): lqosd arms the circuits whose class or leaf
 * it has not built (`lazy_pending`, keyed by circuit hash), the XDP program reports the first packet
 * of an armed circuit once through the `lazy_events` ring buffer, and lqosd reads the ring on a short
 * timer (lib/shaping/lazyQueues.ts). `lazy_ctl` switches the per-packet check off while nothing is armed.
 *
 * Everything is synchronous (short syscalls); pinned maps are opened from `pinRoot`.
 */
import * as bpf from './libbpf.ts';
import { PinnedFds, pinRootOf, type MapContext } from './pinned.ts';

const lazyFds = new PinnedFds<'lazy_ctl' | 'lazy_pending' | 'lazy_events'>();

const HASH_SIZE = 8;
const STATE_SIZE = 4;

/** Close cached map fds (after a teardown/re-pin, or in tests). */
export function closeLazyMaps(ctx?: MapContext): void {
  lazyFds.forget(pinRootOf(ctx));
}

function hashKeys(hashes: readonly bigint[]): Buffer {
  const keys = Buffer.alloc(hashes.length * HASH_SIZE);
  hashes.forEach((h, i) => keys.writeBigUInt64LE(h, i * HASH_SIZE));
  return keys;
}

/** Waits for the first packet of these circuits (again: a reported circuit is re-armed). */
export function armLazy(hashes: readonly bigint[], ctx?: MapContext): void {
  if (hashes.length === 0) return;
  bpf.mapUpdateBatch(lazyFds.fd('lazy_pending', ctx), hashKeys(hashes), Buffer.alloc(hashes.length * STATE_SIZE), hashes.length, HASH_SIZE, STATE_SIZE);
}

/** No longer waits for these circuits (built, or gone from the plan); unknown ones are ignored. */
export function disarmLazy(hashes: readonly bigint[], ctx?: MapContext): void {
  bpf.mapDeleteBatch(lazyFds.fd('lazy_pending', ctx), hashKeys(hashes), hashes.length, HASH_SIZE);
}

/** The circuits armed now (the map's keys). */
export function armedLazy(ctx?: MapContext): bigint[] {
  const { keys, count } = bpf.mapDump(lazyFds.fd('lazy_pending', ctx), HASH_SIZE, STATE_SIZE);
  return Array.from({ length: count }, (_, i) => keys.readBigUInt64LE(i * HASH_SIZE));
}

/** Per-packet check on (some circuit may be armed) or off. */
export function setLazyArmed(on: boolean, ctx?: MapContext): void {
  const v = Buffer.alloc(4);
  v.writeUInt32LE(on ? 1 : 0);
  bpf.mapUpdateElem(lazyFds.fd('lazy_ctl', ctx), Buffer.alloc(4), v);
}

/** The report consumer: `onHash` gets each reported circuit hash; call `consume()` from a timer. */
export function openLazyEvents(onHash: (hash: bigint) => void, ctx?: MapContext): bpf.RingBufferReader {
  return bpf.ringBufferOpen(lazyFds.fd('lazy_events', ctx), (rec) => {
    if (rec.length >= HASH_SIZE) onHash(rec.readBigUInt64LE(0));
  });
}
