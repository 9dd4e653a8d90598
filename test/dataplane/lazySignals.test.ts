/**
 * Lazy queues' first-packet reports (bpf/lqos_lazy.h, dataplane/lazySignals.ts) with
 * BPF_PROG_TEST_RUN on hand-built frames: an armed circuit's first packet is reported once through
 * the ring buffer (both directions' addresses of the circuit count, IPv4 and IPv6), later packets
 * are not, a re-armed circuit is reported again, a disarmed or never armed one never, and nothing
 * is reported while the switch is off. Needs root and bpffs; own pin root.
 *
 * Loaded in bridge mode with `lo` (ifindex 1) as the customer-facing port: XDP ingress on lo is
 * upload (the customer is the source).
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import type { IpMapping } from '../../lib/model.ts';
import { teardownAll } from '../../dataplane/attach.ts';
import { createPinnedMaps, loadPrograms, type LoadedPrograms } from '../../dataplane/object.ts';
import { configureCpus } from '../../dataplane/cpus.ts';
import { updateMappings } from '../../dataplane/maps.ts';
import { armedLazy, armLazy, closeLazyMaps, disarmLazy, openLazyEvents, setLazyArmed } from '../../dataplane/lazySignals.ts';
import type { DataplaneLogger } from '../../dataplane/log.ts';
import type { RingBufferReader } from '../../dataplane/libbpf.ts';
import { MODE_BRIDGE } from '../../dataplane/abi.ts';
import { XDP_REDIRECT, setTxqAll, udpFrame, xdpRun } from './frames.ts';

const ctx = { pinRoot: `/sys/fs/bpf/lqt-${randomBytes(3).toString('hex')}` };
const quiet: DataplaneLogger = { info: () => undefined, warn: () => undefined };
const LO = 1;
const INTERNET = '192.0.2.1';
/** Circuit hashes: the top bit set too (a u64 read back as such, not as a signed number). */
const H1 = 0x8000_0000_0000_0011n, H2 = 0x22n, H3 = 0x33n;

function mapping(prefix: string, minor: number, circuitHash: bigint): IpMapping {
  return { prefix, cpu: 0, major: 1, minor, circuitId: `c${minor}`, deviceId: `d${minor}`, circuitHash, deviceHash: circuitHash + 1n };
}

let progs: LoadedPrograms;
let events: RingBufferReader;
const reported: bigint[] = [];

/** Reports since the last call. */
function drain(): bigint[] {
  events.consume();
  return reported.splice(0);
}

/** One upload packet from `src` (a customer address) through XDP; it must be shaped (redirected). */
function packetFrom(src: string): void {
  assert.equal(xdpRun(progs.xdpFd, udpFrame(src, src.includes(':') ? '2001:db8:ffff::1' : INTERNET), LO), XDP_REDIRECT, src);
}

before(async () => {
  await createPinnedMaps({ ...ctx, logger: quiet });
  configureCpus(2, ctx);
  setTxqAll(ctx, 3);
  // Circuit 1 has an IPv4 host and an IPv6 /56; circuits 2 and 3 one IPv4 host each.
  await updateMappings([mapping('100.64.0.1/32', 0x10, H1), mapping('2001:db8:1::/56', 0x10, H1), mapping('100.64.0.2/32', 0x11, H2), mapping('100.64.0.3/32', 0x12, H3)], ctx);
  progs = await loadPrograms({ mode: MODE_BRIDGE, internetIfindex: 0x7fffffff, ispIfindex: LO, stickOffset: 0, internetVlan: 0, ispVlan: 0, maxMajor: 1 }, { ...ctx, logger: quiet });
  events = openLazyEvents((h) => reported.push(h), ctx);
});

after(async () => {
  events?.close();
  progs?.close();
  closeLazyMaps(ctx);
  await teardownAll({ ...ctx, logger: quiet }).catch(() => undefined);
});

test('the first packet of an armed circuit is reported once; re-armed, once more; never for others or while switched off', () => {
  // Armed but switched off: the per-packet check is skipped.
  armLazy([H1, H2], ctx);
  assert.deepEqual(armedLazy(ctx).sort(), [H2, H1]);
  packetFrom('100.64.0.1');
  assert.deepEqual(drain(), [], 'nothing while lazy_ctl is 0');

  setLazyArmed(true, ctx);
  packetFrom('100.64.0.3'); // circuit 3: never armed
  assert.deepEqual(drain(), []);
  packetFrom('2001:db8:1::9'); // circuit 1 through its IPv6 prefix
  packetFrom('100.64.0.1'); // circuit 1 again through its IPv4 host
  packetFrom('2001:db8:1:0:ff::1');
  assert.deepEqual(drain(), [H1], 'circuit 1 reported once, by its first packet');
  packetFrom('100.64.0.2');
  packetFrom('100.64.0.2');
  assert.deepEqual(drain(), [H2]);
  assert.deepEqual(drain(), [], 'nothing more without packets');

  // lqosd built circuit 1 (disarmed), then removed it after its idle time (armed again).
  disarmLazy([H1], ctx);
  packetFrom('100.64.0.1');
  assert.deepEqual(drain(), [], 'a built circuit is not reported');
  armLazy([H1], ctx);
  packetFrom('100.64.0.1');
  assert.deepEqual(drain(), [H1], 're-armed: its next first packet is reported');
  disarmLazy([H1, H2, H3], ctx); // H3 was never armed: ignored
  assert.deepEqual(armedLazy(ctx), []);
  setLazyArmed(false, ctx);
});
