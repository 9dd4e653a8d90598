/**
 * XDP flow table, checked with BPF_PROG_TEST_RUN on hand-built TCP/UDP/ICMP frames (no traffic):
 * normalised keys, byte/packet counts per direction, RTT from timestamp echoes (ring buffer events),
 * retransmits, FIN/RST, the on/off switch, the tracker's expiry and an over-full table (LRU eviction).
 * Harness (stick mode on `lo`, mapped customers, own pin root): xdpHarness.ts. Needs root and bpffs.
 * Sequence/SYN details and ring drops: tcpseq.test.ts, ringdrops.test.ts.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { FLOW_KEY_SIZE, FLOW_VALUE_SIZE, MAX_FLOWS, writeFlowKey, writeFlowValue } from '../../dataplane/flowAbi.ts';
import { deleteFlows, readFlows, setFlowControl, writeFlows } from '../../dataplane/flows.ts';
import { FlowTracker } from '../../lib/flows/tracker.ts';
import { CUST, CUST6, REMOTE, REMOTE6, ctx, down, find, sleep, startXdp, stopXdp, up } from './xdpHarness.ts';

before(startXdp);
after(stopXdp);

test('both directions of a TCP connection share one normalised entry; RTT per side from TS echoes', async () => {
  const tracker = new FlowTracker({ ...ctx });
  try {
    const c = { sport: 40000, dport: 443 }, r = { sport: 443, dport: 40000 };
    let bytesUp = 0, bytesDown = 0;
    // Handshake: SYN (TSval 1000) -> 15 ms -> SYN/ACK echoes 1000 (Internet side),
    // SYN/ACK TSval 5000 -> 5 ms -> ACK echoes 5000 (customer side).
    bytesUp += up({ proto: 6, ...c, seq: 100, flags: { syn: true }, ts: [1000, 0] });
    await sleep(15);
    bytesDown += down({ proto: 6, ...r, seq: 9000, ack: 101, flags: { syn: true, ack: true }, ts: [5000, 1000] });
    await sleep(5);
    bytesUp += up({ proto: 6, ...c, seq: 101, ack: 9001, flags: { ack: true }, ts: [1001, 5000] });
    // Data down (3 segments) and an ACK up; a retransmission of segment 2.
    bytesDown += down({ proto: 6, ...r, seq: 9001, ack: 101, flags: { ack: true }, ts: [5010, 1001], payload: 1000 });
    bytesDown += down({ proto: 6, ...r, seq: 10001, ack: 101, flags: { ack: true }, ts: [5010, 1001], payload: 1000 });
    bytesDown += down({ proto: 6, ...r, seq: 11001, ack: 101, flags: { ack: true }, ts: [5011, 1001], payload: 1000 });
    bytesDown += down({ proto: 6, ...r, seq: 10001, ack: 101, flags: { ack: true }, ts: [5012, 1001], payload: 1000 });
    await sleep(5);
    bytesUp += up({ proto: 6, ...c, seq: 101, ack: 12001, flags: { ack: true }, ts: [1002, 5010] });

    const f = find(40000)!;
    assert.ok(f, 'flow present');
    assert.equal(f.remoteIp, REMOTE);
    assert.equal(f.remotePort, 443);
    assert.equal(f.bytes.up, bytesUp);
    assert.equal(f.bytes.down, bytesDown);
    assert.deepEqual(f.packets, { down: 5, up: 3 });
    assert.deepEqual(f.retransmits, { down: 1, up: 0 });
    assert.equal(f.tcHandle, (1 << 16) | 0x10);
    assert.equal(f.circuitHash, 1111n);
    assert.equal(f.endStatus, 'open');
    assert.ok(f.lastRttUs.internet >= 14_000 && f.lastRttUs.internet < 200_000, `internet-side RTT ${f.lastRttUs.internet} µs`);
    assert.ok(f.lastRttUs.customer >= 4_000 && f.lastRttUs.customer < 200_000, `customer-side RTT ${f.lastRttUs.customer} µs`);

    tracker.poll();
    const a = tracker.get(f.id)!;
    assert.ok(a.rttMs.internet! >= 14 && a.rttMs.customer! >= 4, JSON.stringify(a.rttMs));
    const circ = tracker.circuitStats().find((s) => s.circuitHash === 1111n)!;
    assert.ok(circ.rtt.internet.samples >= 1 && circ.rtt.customer.samples >= 1, 'ring buffer events reached the circuit');
    assert.equal(circ.retransmits.down, 1);
    assert.equal(circ.retransmits.packetsDown, 5);

    // FIN, then RST on another connection.
    up({ proto: 6, ...c, seq: 101, ack: 12001, flags: { fin: true, ack: true }, ts: [1003, 5012] });
    assert.equal(find(40000)!.endStatus, 'fin');
    up({ proto: 6, sport: 40001, dport: 443, seq: 1, flags: { syn: true }, ts: [2000, 0] });
    down({ proto: 6, sport: 443, dport: 40001, seq: 0, flags: { rst: true, ack: true } });
    assert.equal(find(40001)!.endStatus, 'rst');
    // A new SYN on a finished 5-tuple starts over.
    up({ proto: 6, ...c, seq: 5000, flags: { syn: true }, ts: [3000, 0] });
    const again = find(40000)!;
    assert.equal(again.endStatus, 'open');
    assert.deepEqual(again.packets, { down: 0, up: 1 });
  } finally {
    tracker.close();
  }
});

test('UDP, ICMP and IPv6 flows; addresses without a mapping are not tracked; switch off', () => {
  const n = up({ proto: 17, sport: 5353, dport: 53, payload: 100 });
  down({ proto: 17, sport: 53, dport: 5353, payload: 300 });
  const u = find(5353, 17)!;
  assert.equal(u.bytes.up, n);
  assert.equal(u.packets.down, 1);
  up({ proto: 1 });
  down({ proto: 1 });
  assert.deepEqual(find(0, 1)!.packets, { down: 1, up: 1 });
  up({ proto: 6, src: CUST6, dst: REMOTE6, sport: 50000, dport: 80, seq: 1, flags: { syn: true } });
  const v6 = find(50000, 6, CUST6)!;
  assert.equal(v6.remoteIp, REMOTE6);
  assert.equal(v6.circuitHash, 2222n);
  up({ proto: 17, src: '100.64.99.99', sport: 1, dport: 2 });
  down({ proto: 17, dst: '100.64.99.99', sport: 2, dport: 1 });
  assert.equal(find(1, 17, '100.64.99.99'), undefined, 'no flow entry for an unmapped customer');

  setFlowControl({ enabled: false }, ctx);
  try {
    up({ proto: 17, sport: 6000, dport: 53 });
    assert.equal(find(6000, 17), undefined, 'no tracking while disabled');
  } finally {
    setFlowControl({ enabled: true }, ctx);
  }
  up({ proto: 17, sport: 6000, dport: 53 });
  assert.ok(find(6000, 17));
});

test('RTT events drained before the flow\'s first table read still belong to the flow (not just to its circuit)', async () => {
  const tracker = new FlowTracker({ ...ctx });
  try {
    const c = { sport: 40500, dport: 443 }, r = { sport: 443, dport: 40500 };
    // Three Internet-side samples more than the 100 ms event gap apart: ~30, ~30, ~3 ms.
    up({ proto: 6, ...c, seq: 100, flags: { syn: true }, ts: [1000, 0] });
    await sleep(30);
    down({ proto: 6, ...r, seq: 9000, ack: 101, flags: { syn: true, ack: true }, ts: [5000, 1000] });
    for (const [i, wait] of [[1, 30], [2, 3]] as const) {
      await sleep(110);
      up({ proto: 6, ...c, seq: 101 + (i - 1) * 1000, ack: 9001, flags: { ack: true }, ts: [1000 + i, 5000], payload: 1000 });
      await sleep(wait);
      down({ proto: 6, ...r, seq: 9001, ack: 101 + i * 1000, flags: { ack: true }, ts: [5000 + i, 1000 + i] });
    }
    const f = find(40500)!;
    assert.ok(f.lastRttUs.internet < 25_000, `the kernel's last sample is the short one: ${f.lastRttUs.internet} µs`);
    // The events are read (as lqosd's 250 ms drain does) while the tracker has not read the table yet.
    const drained = tracker.drainEvents();
    assert.ok(drained >= 3, `events drained before the poll: ${drained}`);
    tracker.poll();
    const a = tracker.get(f.id)!;
    assert.ok(a.rttMs.internet !== null && a.rttMs.internet >= 25, `the flow's median over its 3 samples (~30, ~30, ~3 ms): ${JSON.stringify(a.rttMs)}`);
    const circ = tracker.circuitStats().find((s) => s.circuitHash === f.circuitHash)!;
    assert.ok(circ.rtt.internet.samples >= 3, `circuit samples: ${circ.rtt.internet.samples}`);
  } finally {
    tracker.close();
  }
});

test('tracker retires finished and idle flows into the recent list', async () => {
  const tracker = new FlowTracker({ ...ctx, finishedGraceMs: 50, idleTimeoutMs: 400 });
  try {
    up({ proto: 6, sport: 41000, dport: 80, seq: 1, flags: { syn: true } });
    up({ proto: 6, sport: 41000, dport: 80, seq: 2, flags: { fin: true, ack: true } });
    up({ proto: 17, sport: 41001, dport: 80, payload: 10 });
    tracker.poll();
    assert.ok(tracker.active().some((f) => f.localPort === 41000));
    await sleep(100);
    tracker.poll();
    assert.equal(find(41000), undefined, 'finished flow deleted from the kernel table');
    assert.equal(tracker.recent().find((f) => f.localPort === 41000)?.reason, 'fin');
    assert.ok(find(41001, 17), 'open UDP flow still there');
    await sleep(450);
    tracker.poll();
    assert.equal(find(41001, 17), undefined);
    assert.equal(tracker.recent().find((f) => f.localPort === 41001)?.reason, 'idle');
  } finally {
    tracker.close();
  }
});

test('a full table evicts the least recently used entries and keeps working', () => {
  deleteFlows(readFlows(ctx), ctx);
  const N = MAX_FLOWS;
  const keys = Buffer.alloc(N * FLOW_KEY_SIZE);
  const vals = Buffer.alloc(N * FLOW_VALUE_SIZE);
  for (let i = 0; i < N; i++) {
    writeFlowKey({ proto: 17, localIp: `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`, localPort: 1000, remoteIp: '192.0.2.200', remotePort: 53 }, keys, i * FLOW_KEY_SIZE);
    writeFlowValue({ startNs: 1n, lastSeenNs: 1n, bytes: { down: 1, up: 1 }, packets: { down: 1, up: 1 } }, vals, i * FLOW_VALUE_SIZE);
  }
  writeFlows(keys, vals, N, ctx);
  assert.ok(readFlows(ctx).length > N * 0.95, 'table (nearly) full');
  // New traffic still gets tracked: the oldest entries make room.
  for (let p = 0; p < 300; p++) up({ proto: 17, sport: 20000 + p, dport: 53 });
  const all = readFlows(ctx);
  assert.ok(all.length <= N, `never above max_entries (${all.length})`);
  const fresh = all.filter((f) => f.localIp === CUST && f.localPort >= 20000 && f.localPort < 20300);
  assert.equal(fresh.length, 300, 'all new flows present');
  const ids = new Set(all.map((f) => f.localIp));
  assert.ok(!ids.has('10.0.0.0'), 'the first inserted entry was evicted');
  assert.ok(ids.has(`10.1.255.255`), 'the last inserted entry survived');
  deleteFlows(all, ctx);
  assert.equal(readFlows(ctx).length, 0);
});
