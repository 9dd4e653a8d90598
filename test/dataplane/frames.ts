/** Pieces of hand-built frames for the BPF_PROG_TEST_RUN tests (dataplane and flow table). */
import { encodeAddr } from '../../dataplane/abi.ts';

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
