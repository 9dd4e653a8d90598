/**
 * XDP flow table, checked with BPF_PROG_TEST_RUN on hand-built TCP/UDP/ICMP frames (no traffic):
 * normalised keys, byte/packet counts per direction, RTT from timestamp echoes (ring buffer events),
 * retransmits, FIN/RST, the on/off switch, the tracker's expiry and an over-full table (LRU eviction).
 * Stick mode on `lo`: VLAN 100 = Internet side (download), VLAN 200 = customer side (upload).
 * Needs root and bpffs; own pin root, removed in after().
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import type { IpMapping } from '../../lib/model.ts';
import { teardownAll } from '../../dataplane/attach.ts';
import { createPinnedMaps, loadPrograms } from '../../dataplane/object.ts';
import { configureCpus } from '../../dataplane/cpus.ts';
import { updateMappings } from '../../dataplane/maps.ts';
import type { DataplaneLogger } from '../../dataplane/log.ts';
import { FLOW_KEY_SIZE, FLOW_VALUE_SIZE, MAX_FLOWS, writeFlowKey, writeFlowValue, type FlowEntry } from '../../dataplane/flowAbi.ts';
import { closeFlowMaps, deleteFlows, readFlows, setFlowControl, writeFlows } from '../../dataplane/flows.ts';
import { FlowTracker } from '../../lib/flows/tracker.ts';
import { progTestRun } from '../../dataplane/libbpf.ts';
import { MODE_STICK } from '../../dataplane/abi.ts';
import { ipHeader } from '../dataplane/frames.ts';

const ctx = { pinRoot: `/sys/fs/bpf/lqf-${randomBytes(3).toString('hex')}` };
const quiet: DataplaneLogger = { info: () => undefined, warn: () => undefined };
const LO = 1;
const CUST = '100.64.0.10', CUST6 = '2001:db8:5::42', REMOTE = '192.0.2.1', REMOTE6 = '2001:db8:ffff::1';
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface Pkt {
  vlan: number;
  src: string;
  dst: string;
  proto: 6 | 17 | 1;
  sport?: number;
  dport?: number;
  seq?: number;
  ack?: number;
  flags?: { syn?: boolean; ack?: boolean; fin?: boolean; rst?: boolean };
  ts?: [number, number];
  payload?: number;
}
const FIN = 1, SYN = 2, RST = 4, ACK = 16;

function frame(p: Pkt): Buffer {
  const eth = Buffer.from([2, 0, 0, 0, 0, 1, 2, 0, 0, 0, 0, 2, 0x81, 0x00, (p.vlan >> 8) & 0x0f, p.vlan & 0xff, 0, 0]);
  const v6 = p.src.includes(':');
  eth.writeUInt16BE(v6 ? 0x86dd : 0x0800, 16);
  let l4: Buffer;
  if (p.proto === 6) {
    const opts = p.ts ? Buffer.from([1, 1, 8, 10, 0, 0, 0, 0, 0, 0, 0, 0]) : Buffer.alloc(0);
    if (p.ts) { opts.writeUInt32BE(p.ts[0] >>> 0, 4); opts.writeUInt32BE(p.ts[1] >>> 0, 8); }
    const h = Buffer.alloc(20);
    h.writeUInt16BE(p.sport!, 0);
    h.writeUInt16BE(p.dport!, 2);
    h.writeUInt32BE((p.seq ?? 0) >>> 0, 4);
    h.writeUInt32BE((p.ack ?? 0) >>> 0, 8);
    h[12] = ((20 + opts.length) / 4) << 4;
    const f = p.flags ?? {};
    h[13] = (f.fin ? FIN : 0) | (f.syn ? SYN : 0) | (f.rst ? RST : 0) | (f.ack ? ACK : 0);
    h.writeUInt16BE(65535, 14);
    l4 = Buffer.concat([h, opts, Buffer.alloc(p.payload ?? 0, 0x61)]);
  } else if (p.proto === 17) {
    l4 = Buffer.alloc(8 + (p.payload ?? 0));
    l4.writeUInt16BE(p.sport!, 0);
    l4.writeUInt16BE(p.dport!, 2);
    l4.writeUInt16BE(l4.length, 4);
  } else {
    l4 = Buffer.from([8, 0, 0, 0, 0, 1, 0, 1, ...Buffer.alloc(p.payload ?? 0)]);
  }
  const ip = ipHeader(p.src, p.dst, p.proto, l4.length);
  return Buffer.concat([eth, ip, l4]);
}

let xdpFd = -1;
let close: () => void = () => undefined;
function xdp(p: Pkt): number {
  const f = frame(p);
  const md = Buffer.alloc(24);
  md.writeUInt32LE(f.length, 4);
  md.writeUInt32LE(LO, 12);
  progTestRun(xdpFd, f, md, 24);
  return f.length;
}
const down = (p: Omit<Pkt, 'vlan' | 'src' | 'dst'> & { src?: string; dst?: string }) => xdp({ vlan: 100, src: REMOTE, dst: CUST, ...p });
const up = (p: Omit<Pkt, 'vlan' | 'src' | 'dst'> & { src?: string; dst?: string }) => xdp({ vlan: 200, src: CUST, dst: REMOTE, ...p });

function find(localPort: number, proto = 6, localIp = CUST): FlowEntry | undefined {
  return readFlows(ctx).find((f) => f.localPort === localPort && f.proto === proto && f.localIp === localIp);
}

function mapping(prefix: string, major: number, minor: number, n: number): IpMapping {
  return { prefix, cpu: major - 1, major, minor, circuitId: `c${n}`, deviceId: `d${n}`, circuitHash: BigInt(n) * 1111n, deviceHash: BigInt(n) };
}

before(async () => {
  await createPinnedMaps({ ...ctx, logger: quiet });
  configureCpus(4, ctx);
  await updateMappings([mapping(`${CUST}/32`, 1, 0x10, 1), mapping('2001:db8:5::/48', 2, 0x11, 2)], ctx);
  const progs = await loadPrograms({ mode: MODE_STICK, internetIfindex: LO, ispIfindex: LO, stickOffset: 0, internetVlan: 100, ispVlan: 200 }, { ...ctx, logger: quiet });
  xdpFd = progs.xdpFd;
  close = progs.close;
});

after(async () => {
  close();
  closeFlowMaps(ctx);
  await teardownAll({ ...ctx, logger: quiet }).catch(() => undefined);
});

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

test('UDP, ICMP and IPv6 flows; unmapped customers are tracked with circuit 0; switch off', () => {
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
  assert.equal(find(1, 17, '100.64.99.99')!.circuitHash, 0n);

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
