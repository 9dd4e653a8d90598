// test-gate: shared (CPU only; see test/support/gate.ts)
/**
 * TCP sequence state of the XDP flow table (BPF_PROG_TEST_RUN on hand-built frames, xdpHarness.ts):
 * a new connection on a reused, still open tuple (SYN with another ISN) starts a fresh entry that
 * gets RTT samples and no false retransmits; a retransmitted SYN (same ISN) keeps the entry;
 * keepalives and zero-window probes are not retransmits, real (and partial, and wrapped) ones are.
 * Needs root and bpffs; own pin root.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { FlowTracker } from '../../lib/flows/tracker.ts';
import { ctx, down, find, sleep, startXdp, stopXdp, up } from './xdpHarness.ts';

before(startXdp);
after(stopXdp);

test('a SYN with a new ISN on an open tuple starts over: RTT sampled again, no false retransmits', async () => {
  const tracker = new FlowTracker({ ...ctx });
  try {
    const c = { sport: 40100, dport: 443 }, r = { sport: 443, dport: 40100 };
    // Connection A: handshake and 3 data segments up with large TSvals; its TSvals are never echoed,
    // so its pending slot stays taken and its highest TSval stays 1 000 xxx. Never closed.
    up({ proto: 6, ...c, seq: 1_000_000, flags: { syn: true }, ts: [1_000_000, 0] });
    down({ proto: 6, ...r, seq: 50_000, ack: 1_000_001, flags: { syn: true, ack: true }, ts: [9_000_000, 999] });
    for (let i = 0; i < 3; i++) up({ proto: 6, ...c, seq: 1_000_001 + i * 1000, ack: 50_001, flags: { ack: true }, ts: [1_000_010 + i, 1], payload: 1000 });
    const a = find(40100)!;
    assert.equal(a.endStatus, 'open');
    assert.deepEqual(a.retransmits, { down: 0, up: 0 });
    assert.equal(a.nextSeq.up, 1_003_001);
    assert.equal(a.synSeq.up, 1_000_000);
    assert.deepEqual(a.lastRttUs, { customer: 0, internet: 0 }, 'connection A has no RTT sample');
    tracker.poll();
    const eventsBefore = tracker.lastStats.events;

    // Connection B on the same tuple: lower ISN and lower TSvals (another timestamp offset).
    const bytesUp = up({ proto: 6, ...c, seq: 700, flags: { syn: true }, ts: [500, 0] });
    let b = find(40100)!;
    assert.ok(b.startNs > a.startNs, 'start time reset');
    assert.deepEqual(b.packets, { down: 0, up: 1 });
    assert.equal(b.bytes.up, bytesUp);
    assert.equal(b.synSeq.up, 700);
    assert.equal(b.nextSeq.up, null, 'sequence state cleared');
    await sleep(10);
    down({ proto: 6, ...r, seq: 20_000, ack: 701, flags: { syn: true, ack: true }, ts: [300, 500] });
    await sleep(4);
    up({ proto: 6, ...c, seq: 701, ack: 20_001, flags: { ack: true }, ts: [501, 300] });
    // Data both ways; echoes of already-answered TSvals only, so the handshake samples stay the latest.
    for (let i = 0; i < 3; i++) {
      up({ proto: 6, ...c, seq: 701 + i * 1000, ack: 20_001, flags: { ack: true }, ts: [502 + i, 300], payload: 1000 });
      down({ proto: 6, ...r, seq: 20_001 + i * 1400, ack: 1701 + i * 1000, flags: { ack: true }, ts: [301 + i, 501], payload: 1400 });
    }
    b = find(40100)!;
    assert.deepEqual(b.retransmits, { down: 0, up: 0 }, 'no false retransmits from the old sequence numbers');
    assert.deepEqual(b.packets, { down: 4, up: 5 });
    assert.ok(b.lastRttUs.internet >= 9_000, `Internet-side RTT sampled from the new TSvals: ${b.lastRttUs.internet} µs`);
    assert.ok(b.lastRttUs.customer >= 3_000, `customer-side RTT sampled: ${b.lastRttUs.customer} µs`);
    tracker.poll();
    const t = tracker.get(b.id)!;
    assert.ok(t.startNs === b.startNs && t.rttMs.internet !== null && t.rttMs.customer !== null, JSON.stringify(t.rttMs));
    assert.ok(tracker.lastStats.events >= 2 && eventsBefore === 0, `ring events: before ${eventsBefore}, after ${tracker.lastStats.events}`);
  } finally {
    tracker.close();
  }
});

test('a retransmitted SYN (same ISN) and a retransmitted SYN/ACK keep the entry', async () => {
  const c = { sport: 40200, dport: 80 }, r = { sport: 80, dport: 40200 };
  up({ proto: 6, ...c, seq: 7000, flags: { syn: true }, ts: [100, 0] });
  const first = find(40200)!;
  await sleep(2);
  up({ proto: 6, ...c, seq: 7000, flags: { syn: true }, ts: [1100, 0] });
  down({ proto: 6, ...r, seq: 3000, ack: 7001, flags: { syn: true, ack: true }, ts: [40, 1100] });
  down({ proto: 6, ...r, seq: 3000, ack: 7001, flags: { syn: true, ack: true }, ts: [41, 1100] });
  const f = find(40200)!;
  assert.equal(f.startNs, first.startNs, 'same entry');
  assert.deepEqual(f.packets, { down: 2, up: 2 });
  assert.equal(f.synSeq.up, 7000);
  assert.equal(f.synSeq.down, null, 'a SYN/ACK is not a connection start');
  assert.deepEqual(f.retransmits, { down: 0, up: 0 });
  // A server-side connection (the SYN comes from the Internet) records the ISN per direction.
  down({ proto: 6, sport: 5555, dport: 22, seq: 42, flags: { syn: true } });
  assert.equal(find(22)!.synSeq.down, 42);
});

test('keepalives and zero-window probes are not retransmits; real ones are, also across the sequence wrap', () => {
  const c = { sport: 40300, dport: 443 }, r = { sport: 443, dport: 40300 };
  up({ proto: 6, ...c, seq: 1000, flags: { syn: true } });
  down({ proto: 6, ...r, seq: 0xffff_f000, ack: 1001, flags: { syn: true, ack: true } });
  up({ proto: 6, ...c, seq: 1001, ack: 0xffff_f001, flags: { ack: true }, payload: 1000 });
  up({ proto: 6, ...c, seq: 2001, ack: 0xffff_f001, flags: { ack: true }, payload: 1000 });
  assert.equal(find(40300)!.nextSeq.up, 3001);
  // Keepalives (no payload, or one garbage byte, at next_seq - 1) and a zero-window probe of the same form.
  up({ proto: 6, ...c, seq: 3000, ack: 0xffff_f001, flags: { ack: true } });
  up({ proto: 6, ...c, seq: 3000, ack: 0xffff_f001, flags: { ack: true }, payload: 1 });
  up({ proto: 6, ...c, seq: 3000, ack: 0xffff_f001, flags: { ack: true }, payload: 1 });
  // A probe carrying one new byte, then the same probe repeated while the window stays closed.
  up({ proto: 6, ...c, seq: 3001, ack: 0xffff_f001, flags: { ack: true }, payload: 1 });
  up({ proto: 6, ...c, seq: 3001, ack: 0xffff_f001, flags: { ack: true }, payload: 1 });
  up({ proto: 6, ...c, seq: 3001, ack: 0xffff_f001, flags: { ack: true }, payload: 1 });
  let f = find(40300)!;
  assert.deepEqual(f.retransmits, { down: 0, up: 0 }, 'probes and keepalives not counted');
  assert.equal(f.nextSeq.up, 3002, 'probes at next_seq - 1 do not move next_seq');
  // Real retransmits: a whole segment, and a part of one.
  up({ proto: 6, ...c, seq: 1001, ack: 0xffff_f001, flags: { ack: true }, payload: 1000 });
  up({ proto: 6, ...c, seq: 2001, ack: 0xffff_f001, flags: { ack: true }, payload: 500 });
  // Download crosses 2^32: 0xfffff001 + 4096 wraps to 1; the next segment (seq 1) is new data.
  down({ proto: 6, ...r, seq: 0xffff_f001, ack: 3002, flags: { ack: true }, payload: 4096 });
  down({ proto: 6, ...r, seq: 1, ack: 3002, flags: { ack: true }, payload: 1000 });
  f = find(40300)!;
  assert.deepEqual(f.retransmits, { down: 0, up: 2 });
  assert.equal(f.nextSeq.down, 1001);
  down({ proto: 6, ...r, seq: 0xffff_f001, ack: 3002, flags: { ack: true }, payload: 4096 });
  f = find(40300)!;
  assert.deepEqual(f.retransmits, { down: 1, up: 2 }, 'the wrapped segment resent counts once');
  assert.equal(f.nextSeq.down, 1001);
});
