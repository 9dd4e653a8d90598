/** Pieces of hand-built frames for the BPF_PROG_TEST_RUN tests (dataplane and flow table). */
import { MAX_CPUS, encodeAddr } from '../../dataplane/abi.ts';
import { mapUpdateBatch, progTestRun } from '../../dataplane/libbpf.ts';
import { shapingFds, type MapContext } from '../../dataplane/pinned.ts';

/** txq_config = `txq` for every CPU slot, so a test run's result does not depend on the CPU it ran on. */
export function setTxqAll(ctx: MapContext, txq: number): void {
  const keys = Buffer.alloc(MAX_CPUS * 4);
  const vals = Buffer.alloc(MAX_CPUS * 4);
  for (let i = 0; i < MAX_CPUS; i++) {
    keys.writeUInt32LE(i, i * 4);
    vals.writeUInt32LE(txq, i * 4);
  }
  mapUpdateBatch(shapingFds.fd('txq_config', ctx), keys, vals, MAX_CPUS, 4, 4);
}

/**
 * The IP header in front of `l4Length` bytes of L4: IPv6 (40 B) when `src` is IPv6 text, else IPv4
 * (20 B, no options), TTL 64, checksums left 0. `proto` is the IPv4 protocol number; ICMP (1) is
 * ICMPv6 (58) over IPv6.
 */
export function ipHeader(src: string, dst: string, proto: number, l4Length: number): Buffer {
  let ip: Buffer;
  if (src.includes(':')) {
    ip = Buffer.alloc(40);
    ip[0] = 0x60;
    ip.writeUInt16BE(l4Length, 4);
    ip[6] = proto === 1 ? 58 : proto;
    ip[7] = 64;
    encodeAddr(src).copy(ip, 8);
    encodeAddr(dst).copy(ip, 24);
  } else {
    ip = Buffer.alloc(20);
    ip[0] = 0x45;
    ip.writeUInt16BE(20 + l4Length, 2);
    ip[8] = 64;
    ip[9] = proto;
    encodeAddr(src).copy(ip, 12, 12, 16);
    encodeAddr(dst).copy(ip, 16, 12, 16);
  }
  return ip;
}

const MAC_A = [2, 0, 0, 0, 0, 1], MAC_B = [2, 0, 0, 0, 0, 2];

/** Ethernet frame: destination MAC (default unicast), EtherType (or 802.3 length), payload. */
export function ethernet(typeOrLength: number, payload: Buffer, dst: number[] = MAC_A): Buffer {
  const h = Buffer.from([...dst, ...MAC_B, 0, 0]);
  h.writeUInt16BE(typeOrLength, 12);
  return Buffer.concat([h, payload]);
}

/** Untagged IPv4/IPv6 UDP frame (ports 12345 -> 53, 18 bytes of payload). */
export function udpFrame(src: string, dst: string): Buffer {
  const udp = Buffer.from([0x30, 0x39, 0x00, 0x35, 0, 26, 0, 0, ...Buffer.alloc(18)]);
  return ethernet(src.includes(':') ? 0x86dd : 0x0800, Buffer.concat([ipHeader(src, dst, 17, udp.length), udp]));
}

/** Untagged TCP frame (20-byte header, no options, `payload` bytes of data). */
export function tcpFrame(src: string, dst: string, sport: number, dport: number, o: { seq?: number; flags?: number; payload?: number } = {}): Buffer {
  const tcp = Buffer.alloc(20 + (o.payload ?? 0));
  tcp.writeUInt16BE(sport, 0);
  tcp.writeUInt16BE(dport, 2);
  tcp.writeUInt32BE((o.seq ?? 1000) >>> 0, 4);
  tcp[12] = 5 << 4;
  tcp[13] = o.flags ?? 0x10; // ACK
  tcp.writeUInt16BE(65535, 14);
  return ethernet(src.includes(':') ? 0x86dd : 0x0800, Buffer.concat([ipHeader(src, dst, 6, tcp.length), tcp]));
}

/**
 * ICMPv6 message of `type` (133 RS, 134 RA, 135 NS, 136 NA, 137 redirect, 128 echo request). Hop limit
 * 255 by default, as neighbour discovery requires; `payload` sets the ICMPv6 length.
 */
export function icmp6Frame(src: string, dst: string, type: number, o: { hopLimit?: number; payload?: number } = {}): Buffer {
  const icmp = Buffer.alloc(o.payload ?? 24);
  icmp[0] = type;
  const ip = ipHeader(src, dst, 58, icmp.length);
  ip[7] = o.hopLimit ?? 255;
  return ethernet(0x86dd, Buffer.concat([ip, icmp]), [0x33, 0x33, 0xff, 0, 0, 1]);
}

export const XDP_PASS = 2, XDP_REDIRECT = 4, TC_ACT_OK = 0;

/** BPF_PROG_TEST_RUN of the XDP program as if the frame arrived on `ifindex`; returns the verdict. */
export function xdpRun(fd: number, frame: Buffer, ifindex: number): number {
  const md = Buffer.alloc(24); // struct xdp_md: data, data_end, data_meta, ingress_ifindex, rx_queue_index, egress_ifindex
  md.writeUInt32LE(frame.length, 4);
  md.writeUInt32LE(ifindex, 12);
  return progTestRun(fd, frame, md, 24).retval;
}

/**
 * BPF_PROG_TEST_RUN of the tc program leaving on `ifindex`: [verdict, skb->priority]. (The test run
 * does not copy queue_mapping back out.)
 */
export function tcRun(fd: number, frame: Buffer, ifindex: number): [number, number] {
  const skb = Buffer.alloc(192); // struct __sk_buff; ifindex @40, priority @32
  skb.writeUInt32LE(ifindex, 40);
  const r = progTestRun(fd, frame, skb, 192);
  return [r.retval, r.ctx!.readUInt32LE(32)];
}
