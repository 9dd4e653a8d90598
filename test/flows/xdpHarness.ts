/**
 * BPF_PROG_TEST_RUN harness of the flow tests: pinned maps under an own pin root, the programs
 * loaded in stick mode on `lo` (VLAN 100 = Internet side → download, VLAN 200 = customer side →
 * upload), the customer addresses mapped (flows are tracked for mapped addresses only), and
 * hand-built TCP/UDP/ICMP frames run through XDP. Needs root and bpffs; `stopXdp()` removes it all.
 */
import { randomBytes } from 'node:crypto';
import type { IpMapping } from '../../lib/model.ts';
import { teardownAll } from '../../dataplane/attach.ts';
import { createPinnedMaps, loadPrograms } from '../../dataplane/object.ts';
import { configureCpus } from '../../dataplane/cpus.ts';
import { updateMappings } from '../../dataplane/maps.ts';
import type { DataplaneLogger } from '../../dataplane/log.ts';
import type { FlowEntry } from '../../dataplane/flowAbi.ts';
import { closeFlowMaps, readFlows } from '../../dataplane/flows.ts';
import { progTestRun } from '../../dataplane/libbpf.ts';
import { MODE_STICK } from '../../dataplane/abi.ts';
import { ipHeader } from '../dataplane/frames.ts';

export const ctx = { pinRoot: `/sys/fs/bpf/lqf-${randomBytes(3).toString('hex')}` };
export const quiet: DataplaneLogger = { info: () => undefined, warn: () => undefined };
const LO = 1;
export const CUST = '100.64.0.10', CUST6 = '2001:db8:5::42', REMOTE = '192.0.2.1', REMOTE6 = '2001:db8:ffff::1';
export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export interface Pkt {
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

function tcpSegment(p: Pkt): Buffer {
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
  return Buffer.concat([h, opts, Buffer.alloc(p.payload ?? 0, 0x61)]);
}

export function frame(p: Pkt): Buffer {
  const eth = Buffer.from([2, 0, 0, 0, 0, 1, 2, 0, 0, 0, 0, 2, 0x81, 0x00, (p.vlan >> 8) & 0x0f, p.vlan & 0xff, 0, 0]);
  eth.writeUInt16BE(p.src.includes(':') ? 0x86dd : 0x0800, 16);
  let l4: Buffer;
  if (p.proto === 6) l4 = tcpSegment(p);
  else if (p.proto === 17) {
    l4 = Buffer.alloc(8 + (p.payload ?? 0));
    l4.writeUInt16BE(p.sport!, 0);
    l4.writeUInt16BE(p.dport!, 2);
    l4.writeUInt16BE(l4.length, 4);
  } else {
    l4 = Buffer.from([8, 0, 0, 0, 0, 1, 0, 1, ...Buffer.alloc(p.payload ?? 0)]);
  }
  return Buffer.concat([eth, ipHeader(p.src, p.dst, p.proto, l4.length), l4]);
}

let xdpFd = -1;
let closeProgs: () => void = () => undefined;

/** Run one frame through XDP; returns its length (the bytes the flow counts). */
export function xdp(p: Pkt): number {
  const f = frame(p);
  const md = Buffer.alloc(24);
  md.writeUInt32LE(f.length, 4);
  md.writeUInt32LE(LO, 12);
  progTestRun(xdpFd, f, md, 24);
  return f.length;
}
type Half = Omit<Pkt, 'vlan' | 'src' | 'dst'> & { src?: string; dst?: string };
/** A packet toward the customer (Internet side → customer). */
export const down = (p: Half) => xdp({ vlan: 100, src: REMOTE, dst: CUST, ...p });
/** A packet from the customer. */
export const up = (p: Half) => xdp({ vlan: 200, src: CUST, dst: REMOTE, ...p });

export function find(localPort: number, proto = 6, localIp = CUST): FlowEntry | undefined {
  return readFlows(ctx).find((f) => f.localPort === localPort && f.proto === proto && f.localIp === localIp);
}

export function mapping(prefix: string, major: number, minor: number, n: number): IpMapping {
  return { prefix, cpu: major - 1, major, minor, circuitId: `c${n}`, deviceId: `d${n}`, circuitHash: BigInt(n) * 1111n, deviceHash: BigInt(n) };
}

/** Maps + programs; CUST (circuit hash 1111, class 1:10) and CUST6's /48 (2222, 2:11) mapped. */
export async function startXdp(): Promise<void> {
  await createPinnedMaps({ ...ctx, logger: quiet });
  configureCpus(4, ctx);
  await updateMappings([mapping(`${CUST}/32`, 1, 0x10, 1), mapping('2001:db8:5::/48', 2, 0x11, 2)], ctx);
  const progs = await loadPrograms({ mode: MODE_STICK, internetIfindex: LO, ispIfindex: LO, stickOffset: 0, internetVlan: 100, ispVlan: 200 }, { ...ctx, logger: quiet });
  xdpFd = progs.xdpFd;
  closeProgs = progs.close;
}

export async function stopXdp(): Promise<void> {
  closeProgs();
  closeFlowMaps(ctx);
  await teardownAll({ ...ctx, logger: quiet }).catch(() => undefined);
}
