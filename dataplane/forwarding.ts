/**
 * Forwarding by lqos-ts itself: in the XDP-bridge mode (two NICs not in a Linux bridge) and on a
 * stick (one trunk NIC, two VLANs) nothing else moves frames between the two sides, so the tc
 * ingress program `lqos_tc_ingress` sends each frame to the egress of the other NIC (stick: of the
 * same NIC, after XDP swapped its VLAN), where the classifier and the mq/HTB tree shape it.
 * This module computes the two maps (pure) and writes them; attach.ts attaches the program.
 */
import * as bpf from './libbpf.ts';
import { encodeU32 } from './abi.ts';
import { shapingFds, type MapContext } from './pinned.ts';

export type ForwardingMode = 'linux-bridge' | 'xdp-bridge' | 'stick';

export interface ForwardingPlan {
  /** redirect_if: arriving ifindex -> egress ifindex (scanVlans: stick, only swapped VLANs). */
  redirects: Array<{ ifindex: number; redirectTo: number; scanVlans: boolean }>;
  /** vlan_swap: (ifindex << 16 | vid) -> vid, both directions. */
  swaps: Array<{ ifindex: number; from: number; to: number }>;
}

/**
 * The maps for a mode. `internet`/`network` are the two ifindexes (equal on a stick); `vlan` the
 * stick's VLAN ids. A Linux bridge needs no entry (the bridge forwards; our programs only classify).
 */
export function forwardingPlan(mode: ForwardingMode, internet: number, network: number, vlan?: { internet: number; network: number }): ForwardingPlan {
  if (mode === 'linux-bridge') return { redirects: [], swaps: [] };
  if (mode === 'xdp-bridge') {
    if (internet === network) throw new Error('the XDP bridge needs two different interfaces');
    return {
      redirects: [{ ifindex: internet, redirectTo: network, scanVlans: false }, { ifindex: network, redirectTo: internet, scanVlans: false }],
      swaps: [],
    };
  }
  if (!vlan) throw new Error('on a stick both VLAN ids are needed');
  const ok = (v: number) => Number.isInteger(v) && v >= 1 && v <= 4094;
  if (!ok(vlan.internet) || !ok(vlan.network) || vlan.internet === vlan.network) {
    throw new Error(`on a stick the VLAN ids must be two different ids in 1..4094 (internet ${vlan.internet}, network ${vlan.network})`);
  }
  return {
    redirects: [{ ifindex: internet, redirectTo: internet, scanVlans: true }],
    swaps: [{ ifindex: internet, from: vlan.internet, to: vlan.network }, { ifindex: internet, from: vlan.network, to: vlan.internet }],
  };
}

/** Key of vlan_swap. */
export function vlanSwapKey(ifindex: number, vid: number): number {
  return (((ifindex & 0xffff) << 16) | (vid & 0x0fff)) >>> 0;
}

/** Delete every key of a u32-keyed map that `keep` does not list. */
function dropStale(fd: number, valueSize: number, keep: Set<number>): void {
  const d = bpf.mapDump(fd, 4, valueSize, 256);
  const stale: number[] = [];
  for (let i = 0; i < d.count; i++) if (!keep.has(d.keys.readUInt32LE(i * 4))) stale.push(d.keys.readUInt32LE(i * 4));
  if (!stale.length) return;
  const keys = Buffer.alloc(stale.length * 4);
  stale.forEach((k, i) => keys.writeUInt32LE(k, i * 4));
  bpf.mapDeleteBatch(fd, keys, stale.length, 4);
}

/**
 * Make redirect_if and vlan_swap hold exactly `plan` (empty plan: both emptied). New entries are
 * written over the old ones first and only stale keys deleted afterwards, so a re-attach under
 * traffic never leaves a moment without forwarding.
 */
export function writeForwarding(plan: ForwardingPlan, ctx?: MapContext): void {
  const redirectFd = shapingFds.fd('redirect_if', ctx);
  const swapFd = shapingFds.fd('vlan_swap', ctx);
  // Swaps before redirects: a hairpin never runs for a VLAN that is not swapped.
  for (const s of plan.swaps) bpf.mapUpdateElem(swapFd, encodeU32(vlanSwapKey(s.ifindex, s.from)), encodeU32(s.to));
  for (const r of plan.redirects) {
    const v = Buffer.alloc(8);
    v.writeUInt32LE(r.redirectTo, 0);
    v.writeUInt32LE(r.scanVlans ? 1 : 0, 4);
    bpf.mapUpdateElem(redirectFd, encodeU32(r.ifindex), v);
  }
  dropStale(redirectFd, 8, new Set(plan.redirects.map((r) => r.ifindex)));
  dropStale(swapFd, 4, new Set(plan.swaps.map((s) => vlanSwapKey(s.ifindex, s.from))));
}

/** Read both maps back (tests, diagnostics). */
export function readForwarding(ctx?: MapContext): ForwardingPlan {
  const r = bpf.mapDump(shapingFds.fd('redirect_if', ctx), 4, 8, 256);
  const s = bpf.mapDump(shapingFds.fd('vlan_swap', ctx), 4, 4, 256);
  const redirects: ForwardingPlan['redirects'] = [];
  for (let i = 0; i < r.count; i++) {
    redirects.push({ ifindex: r.keys.readUInt32LE(i * 4), redirectTo: r.values.readUInt32LE(i * 8), scanVlans: r.values.readUInt32LE(i * 8 + 4) !== 0 });
  }
  const swaps: ForwardingPlan['swaps'] = [];
  for (let i = 0; i < s.count; i++) {
    const k = s.keys.readUInt32LE(i * 4);
    swaps.push({ ifindex: k >>> 16, from: k & 0x0fff, to: s.values.readUInt32LE(i * 4) });
  }
  return { redirects, swaps };
}
