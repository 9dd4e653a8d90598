/**
 * The tracker's compact flow store and the on-demand snapshot (issue 15, flows at scale). Synthetic
 * entries are written into the pinned flow table of our own pin root (no programs, no traffic),
 * changed between polls as the XDP program would change them, and read back through the tracker:
 * every decoded field equals the kernel's, rates and circuit retransmit deltas come from the counter
 * deltas, a new connection under a known key replaces the old one, vanished entries are retired as
 * evicted, `maxFlows` bounds the store, and the snapshot is built only when asked (once per poll)
 * with each remote enriched once per flow. Needs root and bpffs; run under `flock /tmp/lqos-kernel.lock`.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { teardownAll } from '../../dataplane/attach.ts';
import { createPinnedMaps } from '../../dataplane/object.ts';
import { bootTimeNs } from '../../dataplane/libbpf.ts';
import { FLOW_KEY_SIZE, FLOW_VALUE_SIZE, writeFlowKey, writeFlowValue, type FlowEntry, type FlowKey } from '../../dataplane/flowAbi.ts';
import { closeFlowMaps, deleteFlows, readFlows, writeFlows } from '../../dataplane/flows.ts';
import type { DataplaneLogger } from '../../dataplane/log.ts';
import { createEnricher, type Enricher } from '../../lib/flows/enrich.ts';
import { startFlowTracking } from '../../lib/flows/service.ts';
import { FlowTracker, type ActiveFlow } from '../../lib/flows/tracker.ts';

const ctx = { pinRoot: `/sys/fs/bpf/lqfs-${randomBytes(3).toString('hex')}` };
const quiet: DataplaneLogger = { info: () => undefined, warn: () => undefined };
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

before(async () => {
  await createPinnedMaps({ ...ctx, logger: quiet });
});

after(async () => {
  closeFlowMaps(ctx);
  await teardownAll({ ...ctx, logger: quiet }).catch(() => undefined);
});

type Value = Parameters<typeof writeFlowValue>[0];
const T0 = bootTimeNs() - 3_000_000_000n;

/** Writes (insert or overwrite) flows into the kernel table. */
function put(flows: { key: FlowKey; v: Value }[]): void {
  const keys = Buffer.alloc(flows.length * FLOW_KEY_SIZE);
  const vals = Buffer.alloc(flows.length * FLOW_VALUE_SIZE);
  flows.forEach((f, i) => {
    writeFlowKey(f.key, keys, i * FLOW_KEY_SIZE);
    writeFlowValue({ startNs: T0, lastSeenNs: bootTimeNs(), ...f.v }, vals, i * FLOW_VALUE_SIZE);
  });
  writeFlows(keys, vals, flows.length, ctx);
}

function clear(): void {
  deleteFlows(readFlows(ctx), ctx);
  assert.equal(readFlows(ctx).length, 0, 'kernel table emptied before the test');
}

const tcp1: FlowKey = { proto: 6, localIp: '100.64.1.1', localPort: 40001, remoteIp: '1.1.1.1', remotePort: 443 };
const udp2: FlowKey = { proto: 17, localIp: '100.64.1.2', localPort: 5353, remoteIp: '10.9.9.9', remotePort: 53 };
const tcp3: FlowKey = { proto: 6, localIp: '2001:db8:1::3', localPort: 40003, remoteIp: '2001:4860:4860::8888', remotePort: 443 };
const base1: Value = {
  bytes: { down: 1000, up: 100 }, packets: { down: 10, up: 5 }, retransmits: { down: 0, up: 0 }, nextSeq: { down: 77, up: null },
  synSeq: { down: null, up: 4242 }, lastRttUs: { customer: 3000, internet: 12000 }, tcHandle: 0x10010, circuitHash: 10n, tos: 0x10,
};

/** The tracker's view without the fields it adds on top of the kernel entry. */
function entryOnly(f: ActiveFlow): FlowEntry {
  const { rateBps: _r, rttMs: _t, durationMs: _d, idleMs: _i, ...e } = f;
  return e;
}

test('poll reads the dump in place: decoded fields equal the kernel, rates and retransmit deltas, replaced and evicted flows', async () => {
  clear();
  put([
    { key: tcp1, v: base1 },
    { key: udp2, v: { bytes: { down: 500, up: 500 }, packets: { down: 5, up: 5 }, circuitHash: 10n, tcHandle: 0x10010 } },
    { key: tcp3, v: { bytes: { down: 9000, up: 900 }, packets: { down: 9, up: 9 }, retransmits: { down: 1, up: 0 }, circuitHash: 20n, tcHandle: 0x10020, endStatus: 'fin' } },
  ]);
  const tracker = new FlowTracker({ ...ctx, noEvents: true, idleTimeoutMs: 3_600_000, finishedGraceMs: 3_600_000 });
  try {
    const before1 = performance.now();
    tracker.poll();
    const after1 = performance.now();
    assert.equal(tracker.activeCount, 3);
    const kernel = readFlows(ctx);
    assert.equal(kernel.length, 3);
    for (const k of kernel) {
      const t = tracker.get(k.id);
      assert.ok(t, `tracker.get(${k.id}) finds the flow`);
      assert.deepEqual(entryOnly(t), k, `every field of ${k.id} equals the kernel entry`);
    }
    assert.deepEqual(tracker.get(`6/${tcp3.localIp}/40003/${tcp3.remoteIp}/443`)?.endStatus, 'fin', 'IPv6 ids resolve');
    assert.equal(tracker.get('6/100.64.1.1/1/1.1.1.1/443'), undefined, 'unknown id');

    // Between polls: flow 1 moves 125 000 bytes down, 100 packets and 3 retransmits; flow 3 is a
    // new connection under its key (another start time); flow 2 vanishes (the kernel LRU evicted it).
    await sleep(150);
    put([{ key: tcp1, v: { ...base1, bytes: { down: 126_000, up: 100 }, packets: { down: 110, up: 5 }, retransmits: { down: 3, up: 0 } } }]);
    put([{ key: tcp3, v: { startNs: T0 + 1_000_000n, bytes: { down: 50, up: 50 }, packets: { down: 1, up: 1 }, circuitHash: 20n, tcHandle: 0x10020 } }]);
    deleteFlows([udp2], ctx);
    const before2 = performance.now();
    const st = tracker.poll();
    const after2 = performance.now();

    const f1 = tracker.get(kernel.find((k) => k.localPort === 40001)!.id)!;
    const lo = (125_000 * 8) / ((after2 - before1) / 1000), hi = (125_000 * 8) / ((before2 - after1) / 1000);
    assert.ok(f1.rateBps.down >= lo * 0.999 && f1.rateBps.down <= hi * 1.001, `rate down ${f1.rateBps.down} b/s within [${lo.toFixed(0)}, ${hi.toFixed(0)}] (125 000 B over the poll interval)`);
    assert.equal(f1.rateBps.up, 0, 'no upload bytes moved');
    assert.deepEqual(f1.bytes, { down: 126_000, up: 100 });
    const c10 = tracker.circuitStats().find((c) => c.circuitHash === 10n)!;
    assert.ok(c10, 'circuit 10 has stats');
    assert.equal(c10.activeFlows, 1, 'the evicted UDP flow no longer counts');
    assert.deepEqual([c10.retransmits.down, c10.retransmits.packetsDown], [3, 110], 'TCP retransmit and packet deltas of both polls (the UDP flow is not TCP)');
    assert.equal(st.evicted, 1);
    assert.deepEqual(tracker.recent().map((f) => [f.localPort, f.reason]), [[5353, 'evicted']], 'the replaced connection is not "finished", the vanished one is');
    const f3 = tracker.active().find((f) => f.localPort === 40003)!;
    assert.equal(f3.startNs, T0 + 1_000_000n, 'the new connection under the same key replaced the old one');
    assert.deepEqual([f3.bytes.down, f3.endStatus], [50, 'open']);
    assert.deepEqual(tracker.top(1).map((f) => f.localPort), [40001], 'top by rate');
    assert.deepEqual(tracker.top(2, 'bytes').map((f) => f.localPort), [40001, 40003], 'top by bytes');
    assert.deepEqual(tracker.circuitFlows(20n).map((f) => f.localPort), [40003]);
  } finally {
    tracker.close();
  }
});

test('maxFlows bounds the store: flows beyond it wait for a free slot', () => {
  clear();
  const keys = [1, 2, 3].map((i): FlowKey => ({ proto: 17, localIp: `100.64.2.${i}`, localPort: 1000 + i, remoteIp: '9.9.9.9', remotePort: 53 }));
  put(keys.map((key) => ({ key, v: { bytes: { down: 1, up: 1 }, packets: { down: 1, up: 1 }, circuitHash: 30n } })));
  const tracker = new FlowTracker({ ...ctx, noEvents: true, maxFlows: 2 });
  try {
    let st = tracker.poll();
    assert.deepEqual([st.entries, st.skipped], [2, 1], 'two tracked, one skipped');
    const tracked = tracker.active().map((f) => f.localPort);
    deleteFlows([keys.find((k) => k.localPort === tracked[0])!], ctx);
    st = tracker.poll();
    assert.deepEqual([st.entries, st.skipped, st.evicted], [1, 1, 1], 'the vanished flow frees its slot at the end of the poll');
    st = tracker.poll();
    assert.deepEqual([st.entries, st.skipped, st.evicted], [2, 0, 0], 'the next poll gives the freed slot to the waiting flow');
    assert.deepEqual(tracker.active().map((f) => f.localPort).sort(), keys.map((k) => k.localPort).filter((p) => p !== tracked[0]).sort());
  } finally {
    tracker.close();
  }
});

test('the store starts small and grows with the flows: 3 000 flows, every field as the kernel has it', () => {
  clear();
  const flows = Array.from({ length: 3000 }, (_, i) => ({
    key: { proto: i % 3 ? 6 : 17, localIp: `100.64.${20 + (i >> 8)}.${i & 255}`, localPort: 2000 + i, remoteIp: `8.${i % 7}.${i % 11}.${1 + (i % 200)}`, remotePort: 443 },
    v: { bytes: { down: 1000 + i, up: i }, packets: { down: 10 + i, up: 1 }, retransmits: { down: i % 5, up: 0 }, circuitHash: BigInt(1 + (i % 40)), tcHandle: 0x10010 + (i % 40) },
  }));
  put(flows);
  const tracker = new FlowTracker({ ...ctx, noEvents: true, idleTimeoutMs: 3_600_000 });
  try {
    assert.ok(tracker.store.cap <= 1024, `no flows yet: ${tracker.store.cap} slots (at most 1024)`);
    const st = tracker.poll();
    assert.deepEqual([st.entries, st.skipped], [3000, 0], 'every flow tracked');
    assert.ok(tracker.store.cap >= 3000 && tracker.store.cap < 4096, `grown to ${tracker.store.cap} slots for 3 000 flows`);
    const kernel = readFlows(ctx);
    assert.equal(kernel.length, 3000);
    for (const k of kernel) {
      const t = tracker.get(k.id);
      assert.ok(t, `tracker.get(${k.id}) finds the flow`);
      assert.deepEqual(entryOnly(t), k, `every field of ${k.id} equals the kernel entry`);
    }
    assert.equal(tracker.circuitStats().filter((c) => c.activeFlows > 0).length, 40, 'flows of 40 circuits');
  } finally {
    tracker.close();
  }
});

test('the snapshot is built on demand, once per poll, enriching each flow\'s remote once', async () => {
  clear();
  put([
    { key: tcp1, v: base1 },
    { key: udp2, v: { bytes: { down: 500, up: 500 }, packets: { down: 5, up: 5 }, circuitHash: 10n, tcHandle: 0x10010 } },
    { key: tcp3, v: { bytes: { down: 9000, up: 900 }, packets: { down: 9, up: 9 }, circuitHash: 20n, tcHandle: 0x10020 } },
  ]);
  const real = createEnricher({ cacheSize: 100 });
  const asked: string[] = [];
  const enricher: Enricher = { lookup: (ip) => (asked.push(ip), real.lookup(ip)), info: real.info, get cacheSize() { return real.cacheSize; } };
  const ft = startFlowTracking({ ...ctx, noEvents: true, intervalMs: 3_600_000, drainIntervalMs: 3_600_000, enricher, resolveCircuit: (h) => (h === 10n ? { id: 'c10', name: 'Ten' } : undefined) });
  try {
    ft.poll();
    ft.poll();
    assert.deepEqual(asked, [], 'polls alone enrich nothing (no snapshot was asked for)');
    const s1 = ft.snapshot();
    assert.equal(ft.snapshot(), s1, 'asked twice after one poll: the same snapshot');
    assert.deepEqual([...asked].sort(), ['1.1.1.1', '10.9.9.9', '2001:4860:4860::8888'], 'each flow\'s remote enriched once');
    assert.equal(s1.activeFlows, 3);
    const asn = (n: number) => s1.asns.find((a) => a.asn === n);
    assert.deepEqual([asn(13335)?.flows, asn(13335)?.bytes.down, asn(13335)?.tcpPackets], [1, 1000, 15], 'AS13335 (1.1.1.1): one TCP flow');
    assert.deepEqual([asn(15169)?.flows, asn(15169)?.bytes.down], [1, 9000], 'AS15169 (Google IPv6)');
    assert.equal(s1.asns.find((a) => a.name === 'Private/local')?.flows, 1, '10.9.9.9 is private');
    assert.equal(s1.countries.reduce((n, c) => n + c.flows, 0), 3, 'every flow in one country row');
    const c10 = s1.circuits.find((c) => c.circuitHash === '10')!;
    assert.deepEqual([c10.circuitId, c10.circuitName, c10.activeFlows, c10.flows.length], ['c10', 'Ten', 2, 2]);
    assert.deepEqual(s1.topFlows.map((f) => f.localPort).sort((a, b) => a - b), [5353, 40001, 40003], 'top flows: all three (no rate yet)');
    assert.equal(s1.topFlows.find((f) => f.localPort === 40001)?.asn, 13335, 'views carry the enrichment');
    assert.ok(s1.globe.length >= 1, 'public remotes with coordinates are on the globe');

    await sleep(20);
    put([{ key: tcp1, v: { ...base1, bytes: { down: 50_000, up: 100 } } }]);
    ft.poll();
    const s2 = ft.snapshot();
    assert.notEqual(s2, s1, 'a poll makes the next ask build a new snapshot');
    assert.equal(asked.length, 3, 'known flows are not enriched again');
    assert.equal(s2.topFlows[0]!.localPort, 40001, 'the flow that moved is the busiest');
    assert.equal(s2.asns.find((a) => a.asn === 13335)?.bytes.down, 50_000, 'ASN bytes follow the counters');
  } finally {
    ft.stop();
  }
});
