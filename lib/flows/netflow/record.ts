/**
 * One direction of one flow, as the NetFlow/IPFIX encoders take it: addresses as raw bytes (4 for
 * IPv4, 16 for IPv6), times as Unix milliseconds. The tracker's flows are two-way; each direction
 * that carried packets becomes one record (lib/flows/netflow/fromFlows.ts).
 */
export interface ExportRecord {
  /** 4 or 16 bytes (network order); src and dst of the same family. */
  src: Uint8Array;
  dst: Uint8Array;
  srcPort: number;
  dstPort: number;
  /** IP protocol number (6 TCP, 17 UDP, 1/58 ICMP). */
  proto: number;
  /** OR of the TCP flags seen (0 for other protocols). */
  tcpFlags: number;
  bytes: number;
  packets: number;
  startMs: number;
  endMs: number;
  /** Smoothed TCP round-trip time in microseconds, when measured (IPFIX only). */
  rttUs?: number;
  /** The circuit the local address belongs to (IPFIX only). */
  circuitId?: string;
}

export type NetflowVersion = 5 | 9 | 10;

/** What an exporter sends packets as: one observation domain / source id, one clock. */
export interface ExportContext {
  /** Unix ms when this exporter started: NetFlow's sysUptime counts from it. */
  bootMs: number;
  /** Unix ms of the packet being written. */
  nowMs: number;
  /** v5: flows sent before; v9: packets sent before; IPFIX: data records sent before. */
  sequence: number;
  /** v9 source id / IPFIX observation domain id. */
  sourceId: number;
  /** Whether to put the templates in this packet (v9/IPFIX). */
  withTemplates: boolean;
}
