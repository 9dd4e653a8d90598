/**
 * A retired flow as NetFlow/IPFIX records: one per direction that carried packets — download
 * (remote → customer) and upload (customer → remote) — with the flow's start and last-packet times
 * on the wall clock. TCP flags are what the tracker knows: SYN when a SYN was seen, ACK when both
 * directions carried packets, FIN or RST as the flow ended (the kernel keeps no flag history).
 */
import ipaddr from 'ipaddr.js';
import type { FlowEntry } from '../../../dataplane/flowAbi.ts';
import type { ExportRecord } from './record.ts';

const FIN = 0x01, SYN = 0x02, RST = 0x04, ACK = 0x10;

/** Network-order bytes of an address (IPv4 dotted or IPv6 text). */
export function addressBytes(ip: string): Uint8Array {
  return Uint8Array.from(ipaddr.parse(ip).toByteArray());
}

function tcpFlags(f: FlowEntry): number {
  if (f.proto !== 6) return 0;
  let flags = 0;
  if (f.synSeq.down !== null || f.synSeq.up !== null) flags |= SYN;
  if (f.packets.down > 0 && f.packets.up > 0) flags |= ACK;
  if (f.endStatus === 'fin') flags |= FIN;
  if (f.endStatus === 'rst') flags |= RST;
  return flags;
}

/**
 * The records of a retired flow. `wallOfBoot` turns the kernel's boot-clock nanoseconds into wall
 * milliseconds; `rttUs` (the flow's Internet-side RTT) and `circuitId` go into IPFIX only.
 */
export function flowRecords(f: FlowEntry, wallOfBoot: (ns: bigint) => number, circuitId?: string, rttUs?: number): ExportRecord[] {
  const local = addressBytes(f.localIp);
  const remote = addressBytes(f.remoteIp);
  const startMs = wallOfBoot(f.startNs);
  const endMs = Math.max(startMs, wallOfBoot(f.lastSeenNs));
  const common = { proto: f.proto, tcpFlags: tcpFlags(f), startMs, endMs, ...(circuitId ? { circuitId } : {}), ...(rttUs ? { rttUs } : {}) };
  const out: ExportRecord[] = [];
  if (f.packets.down > 0) out.push({ ...common, src: remote, dst: local, srcPort: f.remotePort, dstPort: f.localPort, bytes: f.bytes.down, packets: f.packets.down });
  if (f.packets.up > 0) out.push({ ...common, src: local, dst: remote, srcPort: f.localPort, dstPort: f.remotePort, bytes: f.bytes.up, packets: f.packets.up });
  return out;
}
