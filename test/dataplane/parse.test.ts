/**
 * Header parsing, direction logic and stick-mode offsets of both programs, checked with
 * BPF_PROG_TEST_RUN on hand-built frames (802.1Q, QinQ, PPPoE, MPLS, VPLS, IPv4, IPv6, ARP) — no traffic needed.
 * The programs are loaded with `lo` (ifindex 1) configured as the shaping interface, because
 * test runs take their ingress/egress device from the caller's namespace. Needs root and bpffs.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import type { IpMapping } from '../../lib/model.ts';
import { teardownAll } from '../../dataplane/attach.ts';
import { createPinnedMaps, loadPrograms } from '../../dataplane/object.ts';
import { configureCpus } from '../../dataplane/cpus.ts';
import { deleteMappings, hotCacheSize, readEpoch, readHostCounters, readStats, setBypass, updateMappings } from '../../dataplane/maps.ts';
import type { DataplaneLogger } from '../../dataplane/log.ts';
import { progTestRun, objGet, mapUpdateElem, closeFd } from '../../dataplane/libbpf.ts';
import { MODE_BRIDGE, MODE_STICK, CLASS_INFO_SIZE, encodeLpmKey, writeClassInfo } from '../../dataplane/abi.ts';
import { ipHeader, setTxqAll } from './frames.ts';
import { forwardingPlan, readForwarding, vlanSwapKey, writeForwarding } from '../../dataplane/forwarding.ts';

const ctx = { pinRoot: `/sys/fs/bpf/lqt-${randomBytes(3).toString('hex')}` };
const quiet: DataplaneLogger = { info: () => undefined, warn: () => undefined };
const XDP_PASS = 2, XDP_REDIRECT = 4, TC_ACT_OK = 0;
const LO = 1;
const STICK_OFFSET = 4;
const TXQ = 3; // txq_config of every CPU (test runs execute on whichever CPU the test is on)

const A = '100.64.0.10', B = '100.64.7.20', B24 = '100.64.7.0/24', C = '2001:db8:5::42', C48 = '2001:db8:5::/48', NOBODY = '198.51.100.9', INTERNET4 = '192.0.2.1', INTERNET6 = '2001:db8:ffff::1';

interface Tag { tpid: number; vid: number; pcp?: number }
/** MPLS label stack entries (label, TTL 64), the bottom-of-stack bit on the last one unless `noBottom`. */
function mplsStack(labels: number[], noBottom = false): Buffer {
  const b = Buffer.alloc(4 * labels.length);
  labels.forEach((label, i) => b.writeUInt32BE(((label << 12) | (i === labels.length - 1 && !noBottom ? 0x100 : 0) | 64) >>> 0, 4 * i));
  return b;
}

/** An Ethernet pseudowire (VPLS) under the labels: control word (unless false), then a whole Ethernet frame. */
interface Pseudowire { controlWord?: boolean; tags?: Tag[] }

const MACS = Buffer.from([2, 0, 0, 0, 0, 1, 2, 0, 0, 0, 0, 2]);
const ethertype = (v: number) => Buffer.from([v >> 8, v & 0xff]);
const tagBytes = (tags: Tag[]) =>
  tags.map((t) => {
    const b = Buffer.alloc(4);
    b.writeUInt16BE(t.tpid, 0);
    b.writeUInt16BE(((t.pcp ?? 0) << 13) | t.vid, 2);
    return b;
  });

function frame(o: { tags?: Tag[]; pppoe?: boolean; mpls?: Buffer; mplsType?: number; pw?: Pseudowire; trailer?: number; udpLen?: number; src: string; dst: string; arp?: boolean }): Buffer {
  const v6 = o.src.includes(':');
  const udpLen = o.udpLen ?? 26;
  const udp = Buffer.from([0x30, 0x39, 0x00, 0x35, 0, udpLen, 0, 0, ...Buffer.alloc(udpLen - 8)]);
  const ip = ipHeader(o.src, o.dst, 17, udp.length);
  // EtherType and what follows it.
  let l3: Buffer[];
  if (o.arp) {
    l3 = [ethertype(0x0806), Buffer.alloc(28)];
  } else if (o.pppoe) {
    const ph = Buffer.alloc(8);
    ph[0] = 0x11;
    ph.writeUInt16BE(0x1234, 2);
    ph.writeUInt16BE(ip.length + udp.length + 2, 4);
    ph.writeUInt16BE(v6 ? 0x0057 : 0x0021, 6);
    l3 = [ethertype(0x8864), ph, ip, udp];
  } else {
    l3 = [ethertype(v6 ? 0x86dd : 0x0800), ip, udp];
  }
  if (o.mpls) {
    // IP right under the bottom label, or an Ethernet pseudowire: [control word], MACs, tags, EtherType…
    const payload = o.pw ? [...(o.pw.controlWord === false ? [] : [Buffer.alloc(4)]), MACS, ...tagBytes(o.pw.tags ?? []), ...l3] : [ip, udp];
    l3 = [ethertype(o.mplsType ?? 0x8847), o.mpls, ...payload];
  }
  // `trailer`: bytes after the packet that its IP length does not account for.
  return Buffer.concat([MACS, ...tagBytes(o.tags ?? []), ...l3, Buffer.alloc(o.trailer ?? 0)]);
}

function xdpRun(fd: number, f: Buffer): number {
  const md = Buffer.alloc(24); // struct xdp_md: data, data_end, data_meta, ingress_ifindex, rx_queue_index, egress_ifindex
  md.writeUInt32LE(f.length, 4);
  md.writeUInt32LE(LO, 12);
  return progTestRun(fd, f, md, 24).retval;
}

/** Returns [verdict, skb->priority after the classifier]. */
function tcRun(fd: number, f: Buffer): [number, number] {
  const skb = Buffer.alloc(192); // struct __sk_buff; ifindex @40 selects the device (1 = lo)
  skb.writeUInt32LE(LO, 40);
  const r = progTestRun(fd, f, skb, 192);
  return [r.retval, r.ctx!.readUInt32LE(32)];
}

function mapping(prefix: string, major: number, minor: number, n: number): IpMapping {
  return { prefix, cpu: major - 1, major, minor, circuitId: `c${n}`, deviceId: `d${n}`, circuitHash: BigInt(n), deviceHash: BigInt(n) };
}
const handle = (major: number, minor: number) => ((major << 16) | minor) >>> 0;

async function counters(ip: string) {
  return (await readHostCounters(ctx)).get(ip);
}

before(async () => {
  await createPinnedMaps({ ...ctx, logger: quiet });
  configureCpus(4, ctx);
  setTxqAll(ctx, TXQ);
  await updateMappings([
    mapping(`${A}/32`, 1, 0x10, 1),
    mapping('100.64.7.0/24', 2, 0x11, 2),
    mapping('2001:db8:5::/48', 3, 0x12, 3),
  ], ctx);
});

after(async () => {
  await teardownAll({ ...ctx, logger: quiet }).catch(() => undefined);
});

test('stick mode: direction from the outer VLAN, upload classes offset', async () => {
  const progs = await loadPrograms({ mode: MODE_STICK, internetIfindex: LO, ispIfindex: LO, stickOffset: STICK_OFFSET, internetVlan: 100, ispVlan: 200 }, { ...ctx, logger: quiet });
  try {
    const q = (vid: number, pcp = 0): Tag => ({ tpid: 0x8100, vid, pcp });
    // XDP: arriving on the Internet VLAN = download (customer = destination).
    assert.equal(xdpRun(progs.xdpFd, frame({ tags: [q(100)], src: INTERNET4, dst: A })), XDP_REDIRECT, 'VLAN 100 download to A');
    assert.equal((await counters(A))?.downloadPackets, 1n);
    assert.equal((await counters(A))?.tcHandle, handle(1, 0x10));
    // Arriving on the customer VLAN = upload (customer = source), class major + offset.
    assert.equal(xdpRun(progs.xdpFd, frame({ tags: [q(200, 5)], src: A, dst: INTERNET4 })), XDP_REDIRECT, 'VLAN 200 (PCP 5) upload from A');
    const a = await counters(A);
    assert.equal(a?.uploadPackets, 1n);
    assert.equal(a?.tcHandle, handle(1 + STICK_OFFSET, 0x10));
    // QinQ: the outer (service) tag decides; IPv6 inside.
    assert.equal(xdpRun(progs.xdpFd, frame({ tags: [{ tpid: 0x88a8, vid: 100 }, q(55)], src: INTERNET6, dst: C })), XDP_REDIRECT, 'QinQ download to C');
    assert.equal((await counters(C48))?.downloadPackets, 1n, 'counted under the matched /48');
    assert.equal(await counters(C), undefined, 'no per-address entry inside a prefix');
    // A pseudowire's inner tag (here the customer VLAN's id) does not decide: the trunk tag does.
    const beforeDown = (await counters(A))!.downloadPackets;
    assert.equal(xdpRun(progs.xdpFd, frame({ tags: [q(100)], mpls: mplsStack([16]), pw: { tags: [q(200)] }, src: INTERNET4, dst: A })), XDP_REDIRECT, 'VPLS on VLAN 100 with inner tag 200');
    assert.equal((await counters(A))!.downloadPackets - beforeDown, 1n, 'counted as a download by the trunk tag');
    // PPPoE session inside the customer VLAN, IPv4 and IPv6.
    assert.equal(xdpRun(progs.xdpFd, frame({ tags: [q(200)], pppoe: true, src: B, dst: INTERNET4 })), XDP_REDIRECT, 'PPPoE IPv4 upload from B (/24)');
    assert.equal((await counters(B24))?.uploadPackets, 1n, 'counted under the matched /24');
    assert.equal(xdpRun(progs.xdpFd, frame({ tags: [q(200)], pppoe: true, src: C, dst: INTERNET6 })), XDP_REDIRECT, 'PPPoE IPv6 upload from C');
    assert.equal((await counters(C48))?.uploadPackets, 1n);
    // Unknown host: passed, counted only in the aggregate unmapped counters (no host entry).
    const st0 = await readStats(ctx);
    assert.equal(xdpRun(progs.xdpFd, frame({ tags: [q(100)], src: INTERNET4, dst: NOBODY })), XDP_PASS);
    assert.equal(await counters(NOBODY), undefined, 'no host counter for an address without a mapping');
    const st1 = await readStats(ctx);
    assert.equal(st1.unmappedPacketsDown - st0.unmappedPacketsDown, 1n);
    assert.ok(st1.unmappedBytesDown - st0.unmappedBytesDown > 40n);
    // Other VLANs, untagged frames and ARP are not ours.
    const before = await readStats(ctx);
    assert.equal(xdpRun(progs.xdpFd, frame({ tags: [q(300)], src: INTERNET4, dst: A })), XDP_PASS);
    assert.equal(xdpRun(progs.xdpFd, frame({ src: INTERNET4, dst: A })), XDP_PASS);
    assert.equal(xdpRun(progs.xdpFd, frame({ tags: [q(100)], src: INTERNET4, dst: A, arp: true })), XDP_PASS);
    assert.equal((await readStats(ctx)).xdpSeen, before.xdpSeen, 'ignored frames are not inspected');

    // tc egress: leaving on the customer VLAN = download, on the Internet VLAN = upload.
    assert.deepEqual(tcRun(progs.tcFd, frame({ tags: [q(200)], src: INTERNET4, dst: A })), [TC_ACT_OK, handle(1, 0x10)]);
    assert.deepEqual(tcRun(progs.tcFd, frame({ tags: [q(100)], src: A, dst: INTERNET4 })), [TC_ACT_OK, handle(1 + STICK_OFFSET, 0x10)]);
    assert.deepEqual(tcRun(progs.tcFd, frame({ tags: [q(200)], pppoe: true, src: INTERNET4, dst: B })), [TC_ACT_OK, handle(2, 0x11)]);
    assert.deepEqual(tcRun(progs.tcFd, frame({ tags: [q(200)], mpls: mplsStack([16]), pw: { tags: [q(100)] }, src: INTERNET4, dst: A })), [TC_ACT_OK, handle(1, 0x10)], 'VPLS leaving on VLAN 200 (inner tag 100): a download, no offset');
    assert.deepEqual(tcRun(progs.tcFd, frame({ tags: [{ tpid: 0x88a8, vid: 100 }, q(9)], src: C, dst: INTERNET6 })), [TC_ACT_OK, handle(3 + STICK_OFFSET, 0x12)]);
    assert.deepEqual(tcRun(progs.tcFd, frame({ tags: [q(200)], src: INTERNET4, dst: NOBODY })), [TC_ACT_OK, 0]);
    assert.deepEqual(tcRun(progs.tcFd, frame({ tags: [q(200)], src: INTERNET4, dst: A, arp: true })), [TC_ACT_OK, TXQ << 16], 'ARP: HTB direct queue');

    // Bypass: nothing is classified or counted.
    await setBypass(true, ctx);
    assert.deepEqual(tcRun(progs.tcFd, frame({ tags: [q(200)], src: INTERNET4, dst: A })), [TC_ACT_OK, 0]);
    assert.equal(xdpRun(progs.xdpFd, frame({ tags: [q(100)], src: INTERNET4, dst: A })), XDP_PASS);
    await setBypass(false, ctx);
  } finally {
    progs.close();
  }
});

test('bridge mode: ifindex decides; hot cache never serves a stale class', async () => {
  // lo plays the Internet-facing port: XDP ingress there = download, tc egress there = upload.
  const progs = await loadPrograms({ mode: MODE_BRIDGE, internetIfindex: LO, ispIfindex: 0x7fffffff, stickOffset: 0, internetVlan: 0, ispVlan: 0 }, { ...ctx, logger: quiet });
  try {
    assert.equal(xdpRun(progs.xdpFd, frame({ src: INTERNET4, dst: B })), XDP_REDIRECT);
    assert.equal((await counters(B24))?.tcHandle, handle(2, 0x11));
    assert.deepEqual(tcRun(progs.tcFd, frame({ src: B, dst: INTERNET4 })), [TC_ACT_OK, handle(2, 0x11)], 'upload keyed by source, no offset');
    assert.ok(hotCacheSize(ctx) > 0, 'hot cache populated');

    // Negative entry for a new host, then map it: must be picked up immediately.
    const D = '100.64.9.9';
    assert.equal(xdpRun(progs.xdpFd, frame({ src: INTERNET4, dst: D })), XDP_PASS);
    await updateMappings([mapping(`${D}/32`, 4, 0x30, 4)], ctx);
    assert.equal(xdpRun(progs.xdpFd, frame({ src: INTERNET4, dst: D })), XDP_REDIRECT, 'new mapping visible through the cache');
    assert.equal((await counters(D))?.tcHandle, handle(4, 0x30));
    // Move B's /24 to another class; the cached positive entry must not survive.
    await updateMappings([mapping('100.64.7.0/24', 1, 0x40, 2)], ctx);
    assert.deepEqual(tcRun(progs.tcFd, frame({ src: B, dst: INTERNET4 })), [TC_ACT_OK, handle(1, 0x40)]);
    // Epoch semantics on their own: change the LPM behind the cache's back (no invalidation) -
    // the cached class is still served; bump only the epoch (no wipe) - the new class is served.
    assert.equal(xdpRun(progs.xdpFd, frame({ src: INTERNET4, dst: B })), XDP_REDIRECT);
    assert.equal((await counters(B24))?.tcHandle, handle(1, 0x40));
    const lpm = objGet(`${ctx.pinRoot}/ip_to_class`);
    const epochFd = objGet(`${ctx.pinRoot}/mapping_epoch`);
    try {
      const v = Buffer.alloc(CLASS_INFO_SIZE);
      writeClassInfo({ cpu: 2, tcHandle: handle(3, 0x50), circuitHash: 2n, deviceHash: 2n }, v, 0, 24 + 96);
      mapUpdateElem(lpm, encodeLpmKey('100.64.7.0/24'), v);
      assert.equal(xdpRun(progs.xdpFd, frame({ src: INTERNET4, dst: B })), XDP_REDIRECT);
      assert.equal((await counters(B24))?.tcHandle, handle(1, 0x40), 'cache hit while the epoch is unchanged');
      const zero = Buffer.alloc(4);
      const ep = Buffer.alloc(4);
      ep.writeUInt32LE(readEpoch(ctx) + 1);
      mapUpdateElem(epochFd, zero, ep);
      assert.equal(xdpRun(progs.xdpFd, frame({ src: INTERNET4, dst: B })), XDP_REDIRECT);
      assert.equal((await counters(B24))?.tcHandle, handle(3, 0x50), 'entry from an older epoch is a miss');
    } finally {
      closeFd(lpm);
      closeFd(epochFd);
    }
    await deleteMappings(['100.64.7.0/24'], ctx);
    assert.equal(xdpRun(progs.xdpFd, frame({ src: INTERNET4, dst: B })), XDP_PASS, 'deleted mapping no longer served');
  } finally {
    progs.close();
  }
});

test('MPLS: the label stack is walked to its bottom entry and the IP packet (or VPLS frame) inside is classified', async () => {
  // Bridge mode, lo = Internet-facing port: XDP = download (customer = destination), tc egress = upload.
  // (B's /24 was deleted by the test before; A and C are mapped.)
  const progs = await loadPrograms({ mode: MODE_BRIDGE, internetIfindex: LO, ispIfindex: 0x7fffffff, stickOffset: 0, internetVlan: 0, ispVlan: 0 }, { ...ctx, logger: quiet });
  try {
    const before = (await counters(A))?.downloadPackets ?? 0n;
    // Label 16 (not the bottom) has bit 8 of its little-endian word set — the bit upstream tests by
    // mistake — so an endianness slip would stop at the first label and read label 17 as the IP header.
    assert.equal(xdpRun(progs.xdpFd, frame({ mpls: mplsStack([16, 17]), src: INTERNET4, dst: A })), XDP_REDIRECT, 'two labels, IPv4 download to A');
    assert.equal((await counters(A))!.downloadPackets - before, 1n, 'counted for A');
    assert.equal((await counters(A))!.tcHandle, handle(1, 0x10));
    assert.equal(xdpRun(progs.xdpFd, frame({ mpls: mplsStack([1000]), src: INTERNET6, dst: C })), XDP_REDIRECT, 'one label, IPv6 download to C');
    assert.equal(xdpRun(progs.xdpFd, frame({ mpls: mplsStack([16, 17]), mplsType: 0x8848, src: INTERNET4, dst: A })), XDP_REDIRECT, 'multicast MPLS EtherType');
    assert.equal(xdpRun(progs.xdpFd, frame({ tags: [{ tpid: 0x8100, vid: 30 }], mpls: mplsStack([16, 300, 7]), src: INTERNET4, dst: A })), XDP_REDIRECT, 'VLAN tag, then three labels');
    // tc egress: upload keyed by the inner source address.
    assert.deepEqual(tcRun(progs.tcFd, frame({ mpls: mplsStack([16, 17]), src: A, dst: INTERNET4 })), [TC_ACT_OK, handle(1, 0x10)]);
    assert.deepEqual(tcRun(progs.tcFd, frame({ mpls: mplsStack([5, 6, 7, 8, 9, 10]), src: C, dst: INTERNET6 })), [TC_ACT_OK, handle(3, 0x12)], 'six labels: the deepest stack walked');

    // A minimum-size frame: padding after the IP packet, up to 60 bytes + 4 per VLAN tag (+ 4).
    assert.equal(xdpRun(progs.xdpFd, frame({ mpls: mplsStack([16]), udpLen: 8, trailer: 14, src: INTERNET4, dst: A })), XDP_REDIRECT, 'padded to 60 bytes');
    assert.equal(xdpRun(progs.xdpFd, frame({ tags: [{ tpid: 0x88a8, vid: 5 }, { tpid: 0x8100, vid: 6 }], mpls: mplsStack([16]), udpLen: 8, trailer: 14, src: INTERNET4, dst: A })), XDP_REDIRECT, 'padded to 60, then two tags (68 bytes)');
    assert.equal(xdpRun(progs.xdpFd, frame({ mpls: mplsStack([16]), udpLen: 8, trailer: 30, src: INTERNET4, dst: A })), XDP_PASS, '76 bytes with 30 of them after the packet: not padding');

    // Ethernet pseudowire (VPLS) with a control word: the inner frame's VLAN tags, PPPoE and IP.
    const beforePw = (await counters(A))!.downloadPackets;
    assert.equal(xdpRun(progs.xdpFd, frame({ mpls: mplsStack([16, 17]), pw: {}, src: INTERNET4, dst: A })), XDP_REDIRECT, 'VPLS, IPv4 inside');
    assert.equal(xdpRun(progs.xdpFd, frame({ mpls: mplsStack([900]), pw: { tags: [{ tpid: 0x8100, vid: 55 }, { tpid: 0x8100, vid: 56 }] }, src: INTERNET4, dst: A })), XDP_REDIRECT, 'VPLS, two inner VLAN tags');
    assert.equal(xdpRun(progs.xdpFd, frame({ mpls: mplsStack([900]), pw: { tags: [{ tpid: 0x8100, vid: 55 }] }, pppoe: true, src: INTERNET6, dst: C })), XDP_REDIRECT, 'VPLS, inner VLAN, PPPoE, IPv6');
    assert.equal((await counters(A))!.downloadPackets - beforePw, 2n, 'both VPLS frames counted for A');
    assert.deepEqual(tcRun(progs.tcFd, frame({ tags: [{ tpid: 0x8100, vid: 30 }], mpls: mplsStack([16, 17]), pw: { tags: [{ tpid: 0x88a8, vid: 7 }] }, src: A, dst: INTERNET4 })), [TC_ACT_OK, handle(1, 0x10)], 'tc: VLAN, labels, VPLS with an inner S-tag');

    // Padding in a pseudowire counts from the inner Ethernet header: 64 bytes (+ 4 per inner tag) at most.
    const q100 = { tpid: 0x8100, vid: 100 };
    assert.equal(xdpRun(progs.xdpFd, frame({ mpls: mplsStack([16]), pw: {}, udpLen: 8, trailer: 18, src: INTERNET4, dst: A })), XDP_REDIRECT, 'inner frame padded to 60');
    assert.equal(xdpRun(progs.xdpFd, frame({ mpls: mplsStack([16]), pw: {}, udpLen: 8, trailer: 22, src: INTERNET4, dst: A })), XDP_REDIRECT, 'inner frame of 64 with padding');
    assert.equal(xdpRun(progs.xdpFd, frame({ mpls: mplsStack([16]), pw: {}, udpLen: 8, trailer: 23, src: INTERNET4, dst: A })), XDP_PASS, 'inner frame of 65 with padding: too long for padding');
    assert.equal(xdpRun(progs.xdpFd, frame({ mpls: mplsStack([16]), pw: { tags: [q100] }, udpLen: 8, trailer: 22, src: INTERNET4, dst: A })), XDP_REDIRECT, 'tagged inner frame of 68 with padding');
    assert.equal(xdpRun(progs.xdpFd, frame({ mpls: mplsStack([16]), pw: { tags: [q100] }, udpLen: 8, trailer: 23, src: INTERNET4, dst: A })), XDP_PASS, 'tagged inner frame of 69 with padding');

    // Not IP inside, or more than can be walked: passed untouched, not inspected as traffic of anybody.
    const seen = (await readStats(ctx)).xdpSeen;
    assert.equal(xdpRun(progs.xdpFd, frame({ mpls: mplsStack([16, 17]), pw: {}, arp: true, src: INTERNET4, dst: A })), XDP_PASS, 'VPLS carrying ARP');
    assert.equal(xdpRun(progs.xdpFd, frame({ mpls: mplsStack([16, 17]), pw: { controlWord: false }, src: INTERNET4, dst: A })), XDP_PASS, 'VPLS without a control word: MAC 02:… is no control word');
    // With an inner tag, reading it 4 bytes off would land on the real IP header (EtherType 0x0800 where the TCI ends).
    assert.equal(xdpRun(progs.xdpFd, frame({ mpls: mplsStack([16, 17]), pw: { controlWord: false, tags: [{ tpid: 0x8100, vid: 100 }] }, src: INTERNET4, dst: A })), XDP_PASS, 'VPLS without a control word, MAC 02:…, inner tag: no control word');
    const cisco = Buffer.concat([MACS, ethertype(0x8847), mplsStack([16]), Buffer.from([0, 0, 0x0c, 1, 2, 3]), MACS.subarray(6), frame({ src: INTERNET4, dst: A }).subarray(12)]);
    assert.equal(xdpRun(progs.xdpFd, cisco), XDP_PASS, 'VPLS without a control word, MAC 00:00:0c… (read as one, 4 bytes off): not IP');
    // A MAC starting with nibble 4 (MikroTik's 48:8f:5a) looks like IPv4 under the labels. Here the
    // inner packet's length and id bytes (64 40 00 0a) sit where that misread header has its
    // destination, which is A: only the length check (0x5a01 bytes of "IP" in a short frame) stops it.
    const lookalike = Buffer.concat([
      MACS, ethertype(0x8847), mplsStack([16, 17]),
      Buffer.from([0x48, 0x8f, 0x5a, 0x01, 0x02, 0x03, 0x48, 0xd1, 0x54, 0x04, 0x05, 0x06]), ethertype(0x0800),
      Buffer.from([0x45, 0x00, 0x64, 0x40, 0x00, 0x0a]), Buffer.alloc(40),
    ]);
    assert.equal(xdpRun(progs.xdpFd, lookalike), XDP_PASS, 'VPLS without a control word, MAC 48:…, misread destination = A');
    assert.equal(xdpRun(progs.xdpFd, frame({ mpls: mplsStack([16, 17]), trailer: 8, src: INTERNET4, dst: A })), XDP_PASS, 'IPv4 under labels that does not fill its (full-size) frame');
    assert.equal(xdpRun(progs.xdpFd, frame({ mpls: mplsStack([16]), trailer: 4, src: INTERNET6, dst: C })), XDP_PASS, 'IPv6 under a label that does not fill its frame');
    assert.equal(xdpRun(progs.xdpFd, frame({ mpls: mplsStack([16, 17]), pw: {}, trailer: 40, src: INTERNET4, dst: A })), XDP_PASS, 'IPv4 in a pseudowire that does not fill its frame');
    assert.equal(xdpRun(progs.xdpFd, frame({ mpls: mplsStack([1, 2, 3, 4, 5, 6, 7]), src: INTERNET4, dst: A })), XDP_PASS, 'seven labels');
    assert.equal(xdpRun(progs.xdpFd, frame({ mpls: mplsStack([16, 17], true), src: INTERNET4, dst: A })), XDP_PASS, 'no bottom-of-stack entry');
    assert.equal((await readStats(ctx)).xdpSeen, seen, 'none of them was classified');
    assert.deepEqual(tcRun(progs.tcFd, frame({ mpls: mplsStack([1, 2, 3, 4, 5, 6, 7]), src: A, dst: INTERNET4 })), [TC_ACT_OK, 0], 'tc: default class, not the HTB direct queue');
  } finally {
    progs.close();
  }
});

test('forwarding: on a stick XDP swaps the VLAN in the frame (PCP kept, direction from the arrival VLAN); tc ingress redirects per redirect_if', async () => {
  const progs = await loadPrograms({ mode: MODE_STICK, internetIfindex: LO, ispIfindex: LO, stickOffset: STICK_OFFSET, internetVlan: 100, ispVlan: 200 }, { ...ctx, logger: quiet });
  const q = (vid: number, pcp = 0): Tag => ({ tpid: 0x8100, vid, pcp });
  const md = (f: Buffer) => {
    const m = Buffer.alloc(24);
    m.writeUInt32LE(f.length, 4);
    m.writeUInt32LE(LO, 12);
    return m;
  };
  // (The output of a redirected frame starts with the 8 bytes of XDP metadata the program added.)
  const tciOut = (f: Buffer) => {
    const out = progTestRun(progs.xdpFd, f, md(f), 24).data;
    return out.readUInt16BE(out.length - f.length + 14);
  };
  try {
    writeForwarding(forwardingPlan('stick', LO, LO, { internet: 100, network: 200 }), ctx);
    assert.deepEqual(readForwarding(ctx).redirects, [{ ifindex: LO, redirectTo: LO, scanVlans: true }]);
    // Internet VLAN 100 → customer VLAN 200 and back; PCP bits untouched; other VLANs and untagged unchanged.
    assert.equal(tciOut(frame({ tags: [q(100, 5)], src: INTERNET4, dst: A })), (5 << 13) | 200);
    assert.equal(tciOut(frame({ tags: [q(200)], src: A, dst: INTERNET4 })), 100);
    assert.equal(tciOut(frame({ tags: [q(300)], src: INTERNET4, dst: A })), 300, 'a VLAN of neither side is left alone');
    assert.equal(tciOut(frame({ tags: [q(100)], src: INTERNET4, dst: A, arp: true })), 200, 'ARP changes sides too');
    // The direction still comes from the arrival VLAN: download to A on VLAN 100 (class A), upload offset on 200.
    const before = await counters(A);
    assert.equal(xdpRun(progs.xdpFd, frame({ tags: [q(100)], src: INTERNET4, dst: A })), XDP_REDIRECT);
    assert.equal((await counters(A))!.downloadPackets - before!.downloadPackets, 1n);
    assert.equal((await counters(A))!.tcHandle, handle(1, 0x10));
    // Bypass stops classification, not forwarding.
    await setBypass(true, ctx);
    assert.equal(tciOut(frame({ tags: [q(100)], src: INTERNET4, dst: A })), 200, 'swapped while bypassed');
    await setBypass(false, ctx);

    // tc ingress: a stick entry hairpins only tagged frames (a test-run skb carries no hardware tag: not redirected).
    const TC_ACT_UNSPEC = 0xffffffff, TC_ACT_REDIRECT = 7; // (retval is read unsigned)
    assert.equal(tcRun(progs.ingressFd, frame({ src: INTERNET4, dst: A }))[0], TC_ACT_UNSPEC, 'untagged: local stack');
    // XDP-bridge entry: everything arriving on lo goes to the egress of redirect_to.
    writeForwarding(forwardingPlan('xdp-bridge', LO, 0x7ffffffe), ctx);
    assert.equal(tcRun(progs.ingressFd, frame({ src: INTERNET4, dst: A }))[0], TC_ACT_REDIRECT);
    assert.equal(tcRun(progs.ingressFd, frame({ src: INTERNET4, dst: A, arp: true }))[0], TC_ACT_REDIRECT, 'control frames are forwarded too');
    // No entry for the interface (Linux bridge mode): untouched.
    writeForwarding(forwardingPlan('linux-bridge', LO, 2), ctx);
    assert.deepEqual(readForwarding(ctx), { redirects: [], swaps: [] });
    assert.equal(tcRun(progs.ingressFd, frame({ src: INTERNET4, dst: A }))[0], TC_ACT_UNSPEC);
  } finally {
    progs.close();
  }
});

test('forwarding plan: the XDP bridge needs two interfaces, a stick two different VLAN ids in 1..4094', () => {
  assert.throws(() => forwardingPlan('xdp-bridge', 3, 3), /two different interfaces/);
  assert.throws(() => forwardingPlan('stick', 3, 3), /both VLAN ids/);
  assert.throws(() => forwardingPlan('stick', 3, 3, { internet: 7, network: 7 }), /two different ids/);
  assert.throws(() => forwardingPlan('stick', 3, 3, { internet: 0, network: 7 }), /two different ids/);
  assert.equal(vlanSwapKey(3, 7), 0x30007);
  assert.deepEqual(forwardingPlan('stick', 3, 3, { internet: 2, network: 3 }).swaps, [{ ifindex: 3, from: 2, to: 3 }, { ifindex: 3, from: 3, to: 2 }]);
});
