/**
 * Attach and detach the dataplane.
 *
 * attachDataplane() builds (if needed) and loads dataplane/build/lqos_kern.o once (object.ts), pins its
 * maps under `pinRoot` (default /sys/fs/bpf/lqos), fills the CPU maps, disables XPS, and attaches the
 * same two programs to every shaping interface: `lqos_xdp` (XDP ingress) and `lqos_tc_egress` (clsact
 * egress, direct-action, handle 1 / priority 0x4c51). Programs stay attached after this process exits;
 * maps.ts works from any process by re-opening the pinned maps.
 *
 * Everything that talks to the kernel can run inside a named network namespace (`netns`), which is
 * how the tests and the lab drive namespaced veth testbeds.
 */
import { existsSync, rmSync, readdirSync, rmdirSync } from 'node:fs';
import { join } from 'node:path';
import * as bpf from './libbpf.ts';
import { DataplaneError } from './libbpf.ts';
import { MODE_BRIDGE, MODE_STICK, encodeCfg, encodeU32 } from './abi.ts';
import { configureCpus, onlineCpus } from './cpus.ts';
import { dataplaneLogger, type DataplaneLogger } from './log.ts';
import { noFiltersLeft, prepareInterface, scanInterfaces, type IfPrep } from './netdev.ts';
import { TC_PROG, XDP_PROG, ensureObjectReady, openAndLoad, requireRoot } from './object.ts';
import { PINNED_MAPS, pinRootOf, shapingFds, type MapContext } from './pinned.ts';

export const TC_HANDLE = 1;
export const TC_PRIORITY = 0x4c51;

export type XdpMode = 'auto' | 'driver' | 'generic';

export interface AttachOptions extends MapContext {
  /** Customer/ISP-facing interface: packets leaving here are download. */
  downloadIf: string;
  /** Internet-facing interface: packets leaving here are upload. Equal to downloadIf on a stick. */
  uploadIf: string;
  onAStick: boolean;
  /** Number of HTB queues (majors 1..queues on the download side). */
  queues: number;
  /** Added to majors (and cpus) of upload classes; 0 in bridge mode. */
  stickOffset: number;
  /** Stick mode: VLAN ids carrying Internet-side and customer-side traffic. */
  vlan?: { internet: number; network: number };
  xdpMode?: XdpMode;
  /** Run everything in this network namespace (name under /var/run/netns). */
  netns?: string;
  /** Physical CPUs that own the queues (queue i -> cpus[i % n]). Default: all online CPUs. */
  cpus?: number[];
  /** Turn off GRO/GSO/TSO/LRO on the shaping interfaces (default true). */
  disableOffloads?: boolean;
  /**
   * Which ethtool features to turn off when disableOffloads is on (default gro, gso, tso, lro);
   * `rxvlan`/`txvlan` keep 802.1Q tags inline where XDP can see them. From `[tuning]`.
   */
  offloads?: string[];
  /** Interrupt coalescing (`ethtool -C rx-usecs/tx-usecs`), best effort. From `[tuning]`. */
  coalesce?: { rxUsecs?: number; txUsecs?: number };
  logger?: DataplaneLogger;
}

export interface AttachedInterface {
  name: string;
  ifindex: number;
  role: 'download' | 'upload' | 'stick';
  xdpMode: 'driver' | 'generic';
  xdpProgId: number;
  tcProgId: number;
  txQueues: number;
}

export interface AttachReport {
  pinRoot: string;
  netns?: string;
  mode: 'bridge' | 'stick';
  interfaces: AttachedInterface[];
  cpus: number[];
  queues: number;
  stickOffset: number;
  mapsCreated: string[];
  mapsReused: string[];
  mapsReplaced: string[];
  warnings: string[];
  elapsedMs: number;
}

export interface DetachOptions {
  netns?: string;
  logger?: DataplaneLogger;
}

// Registry of what this process attached, for detach/teardown without arguments.
const attached = new Map<string, { netns?: string; ifaces: string[] }>();

// ---------------------------------------------------------------------------------------------
// XDP

function detachXdpAllModes(ifindex: number, what: string): boolean {
  let any = false;
  for (const flags of [bpf.XDP_FLAGS_SKB_MODE, bpf.XDP_FLAGS_DRV_MODE, bpf.XDP_FLAGS_HW_MODE]) {
    try {
      if (bpf.xdpQueryId(ifindex, flags)) any = bpf.xdpDetach(ifindex, flags, what) || any;
    } catch (e) {
      if (!(e instanceof DataplaneError)) throw e;
    }
  }
  return any;
}

function attachXdp(ifindex: number, progFd: number, mode: XdpMode, ifname: string, logger: DataplaneLogger): 'driver' | 'generic' {
  const existing = bpf.xdpQueryId(ifindex, 0);
  if (existing) {
    logger.info(`${ifname}: replacing previously attached XDP program id ${existing}`);
    detachXdpAllModes(ifindex, ifname);
  }
  if (mode === 'driver' || mode === 'auto') {
    try {
      bpf.xdpAttach(ifindex, progFd, bpf.XDP_FLAGS_DRV_MODE, `${ifname}, driver mode`);
      logger.info(`${ifname}: XDP attached in driver (native) mode`);
      return 'driver';
    } catch (e) {
      if (mode === 'driver' || !(e instanceof DataplaneError)) throw e;
      logger.warn(`${ifname}: driver-mode XDP not available (${e.code}); falling back to generic (SKB) mode - slower, and XDP metadata is not passed to tc`);
    }
  }
  bpf.xdpAttach(ifindex, progFd, bpf.XDP_FLAGS_SKB_MODE, `${ifname}, generic mode`);
  logger.info(`${ifname}: XDP attached in generic (SKB) mode`);
  return 'generic';
}

// ---------------------------------------------------------------------------------------------
// Attach

function checkAttachOptions(opts: AttachOptions, logger: DataplaneLogger): void {
  const stick = opts.onAStick;
  if (!Number.isInteger(opts.queues) || opts.queues < 1 || opts.queues > 0xffff) throw new DataplaneError('attachDataplane', 22, `queues=${opts.queues}`, 'queues must be a positive integer');
  if (stick && (!opts.vlan || opts.downloadIf !== opts.uploadIf)) {
    throw new DataplaneError('attachDataplane', 22, 'on a stick needs vlan {internet, network} and downloadIf === uploadIf', 'set both VLAN ids and use one interface');
  }
  if (!stick && opts.downloadIf === opts.uploadIf) throw new DataplaneError('attachDataplane', 22, 'bridge mode needs two different interfaces', 'set onAStick for a single interface');
  if (!stick && opts.stickOffset !== 0) logger.warn(`stickOffset ${opts.stickOffset} in bridge mode: upload classes will use major + ${opts.stickOffset}`);
}

/** Prepare every shaping interface (before anything is loaded) and check it has enough TX queues. */
async function prepareInterfaces(opts: AttachOptions, ifnames: string[], warnings: string[]): Promise<Map<string, IfPrep>> {
  const preps = new Map<string, IfPrep>();
  for (const name of ifnames) {
    // Fail early (ENODEV) before anything else changes.
    bpf.withNetns(opts.netns, () => bpf.ifNameToIndex(name));
    const p = await prepareInterface(opts.netns, name, { disableOffloads: opts.disableOffloads ?? true, offloads: opts.offloads, coalesce: opts.coalesce });
    preps.set(name, p);
    warnings.push(...p.warnings);
    const needed = opts.queues + (opts.onAStick ? opts.stickOffset : 0);
    if (p.txQueues < needed) {
      throw new DataplaneError(`check TX queues of ${name}`, 22, `${p.txQueues} TX queue(s), ${needed} needed`,
        'give the interface more queues (`ethtool -L IF tx N`, veth: numtxqueues) or lower the queue count');
    }
  }
  return preps;
}

/** The program configuration (lqos_cfg): mode, the two ifindexes, stick offset, VLANs. */
function attachCfg(opts: AttachOptions): Buffer {
  const ifindex = (n: string) => bpf.withNetns(opts.netns, () => bpf.ifNameToIndex(n));
  const downIdx = ifindex(opts.downloadIf);
  const upIdx = ifindex(opts.uploadIf);
  return encodeCfg({
    mode: opts.onAStick ? MODE_STICK : MODE_BRIDGE,
    internetIfindex: upIdx,
    ispIfindex: downIdx,
    stickOffset: opts.stickOffset,
    internetVlan: opts.vlan?.internet ?? 0,
    ispVlan: opts.vlan?.network ?? 0,
  });
}

/** Attach XDP and the tc egress classifier to one interface. */
function attachPrograms(fds: { xdp: number; tc: number }, opts: AttachOptions, name: string, prep: IfPrep, logger: DataplaneLogger): AttachedInterface {
  const entry = bpf.withNetns(opts.netns, () => {
    const idx = bpf.ifNameToIndex(name);
    const mode = attachXdp(idx, fds.xdp, opts.xdpMode ?? 'auto', name, logger);
    const xdpProgId = bpf.xdpQueryId(idx, 0);
    // (Creating an existing clsact makes the kernel log an error through libbpf: skip it.)
    if (!prep.hasClsact) bpf.tcHookCreate(idx, name);
    const tcProgId = bpf.tcAttach(idx, bpf.BPF_TC_EGRESS, fds.tc, TC_HANDLE, TC_PRIORITY, `${name} egress`);
    return { idx, mode, xdpProgId, tcProgId };
  });
  return {
    name, ifindex: entry.idx, role: opts.onAStick ? 'stick' : name === opts.downloadIf ? 'download' : 'upload',
    xdpMode: entry.mode, xdpProgId: entry.xdpProgId, tcProgId: entry.tcProgId, txQueues: prep.txQueues,
  };
}

/** Load the dataplane and attach it to the shaping interface(s). */
export async function attachDataplane(opts: AttachOptions): Promise<AttachReport> {
  const t0 = performance.now();
  const logger = dataplaneLogger(opts.logger);
  requireRoot();
  const pinRoot = pinRootOf(opts);
  checkAttachOptions(opts, logger);
  await ensureObjectReady();
  const cpus = opts.cpus?.length ? opts.cpus : onlineCpus();
  const warnings: string[] = [];
  const ifnames = opts.onAStick ? [opts.downloadIf] : [opts.downloadIf, opts.uploadIf];
  const preps = await prepareInterfaces(opts, ifnames, warnings);

  const loaded = openAndLoad(pinRoot, attachCfg(opts), true, logger);
  const report: AttachReport = {
    pinRoot, netns: opts.netns, mode: opts.onAStick ? 'stick' : 'bridge', interfaces: [], cpus, queues: opts.queues,
    stickOffset: opts.stickOffset, mapsCreated: loaded.created, mapsReused: loaded.reused, mapsReplaced: loaded.replaced,
    warnings, elapsedMs: 0,
  };
  try {
    // Maps first, programs second: no window where a redirect hits an empty cpumap slot.
    const ctx = { pinRoot };
    bpf.mapUpdateElem(shapingFds.fd('classify_ctl', ctx), encodeU32(0), encodeU32(0));
    configureCpus(opts.queues, ctx, cpus);
    const fds = { xdp: bpf.programFd(bpf.findProgram(loaded.obj, XDP_PROG)), tc: bpf.programFd(bpf.findProgram(loaded.obj, TC_PROG)) };
    for (const name of ifnames) report.interfaces.push(attachPrograms(fds, opts, name, preps.get(name)!, logger));
  } finally {
    // Attached programs and pinned maps keep everything alive; the object itself is not needed.
    bpf.objectClose(loaded.obj);
  }
  attached.set(pinRoot, { netns: opts.netns, ifaces: ifnames });
  for (const w of warnings) logger.warn(w);
  report.elapsedMs = Math.round(performance.now() - t0);
  logger.info(`dataplane attached (${report.mode}) on ${ifnames.join(', ')} in ${report.elapsedMs} ms; maps under ${pinRoot}`);
  return report;
}

// ---------------------------------------------------------------------------------------------
// Detach / teardown

/** Remove our XDP program and our egress filter from each interface (clsact removed if then empty). */
export async function detachDataplane(ifaces: string[], opts: DetachOptions = {}): Promise<{ xdpRemoved: string[]; tcRemoved: string[] }> {
  const logger = dataplaneLogger(opts.logger);
  const xdpRemoved: string[] = [];
  const tcRemoved: string[] = [];
  for (const name of ifaces) {
    let idx: number;
    try {
      idx = bpf.withNetns(opts.netns, () => bpf.ifNameToIndex(name));
    } catch (e) {
      if (e instanceof DataplaneError && e.code === 'ENODEV') continue;
      throw e;
    }
    const r = bpf.withNetns(opts.netns, () => ({
      xdp: detachXdpAllModes(idx, name),
      tc: bpf.tcDetach(idx, bpf.BPF_TC_EGRESS, TC_HANDLE, TC_PRIORITY, `${name} egress`),
    }));
    if (r.xdp) xdpRemoved.push(name);
    if (r.tc) tcRemoved.push(name);
    // Drop clsact when nothing else uses it.
    if (await noFiltersLeft(opts.netns, name)) bpf.withNetns(opts.netns, () => bpf.tcHookDestroy(idx, name));
  }
  if (xdpRemoved.length || tcRemoved.length) logger.info(`dataplane detached: XDP from [${xdpRemoved.join(', ')}], tc from [${tcRemoved.join(', ')}]`);
  return { xdpRemoved, tcRemoved };
}

/** Remove only the XDP program (the egress classifier keeps classifying on its own). */
export async function detachXdp(ifaces: string[], opts: DetachOptions = {}): Promise<string[]> {
  const removed: string[] = [];
  for (const name of ifaces) {
    const done = bpf.withNetns(opts.netns, () => detachXdpAllModes(bpf.ifNameToIndex(name), name));
    if (done) removed.push(name);
  }
  if (removed.length) dataplaneLogger(opts.logger).info(`XDP detached from [${removed.join(', ')}]`);
  return removed;
}

/** Remove our own pins under pinRoot (a bpffs root also holds kernel entries such as maps.debug). */
function unpinMaps(pinRoot: string): string[] {
  const unpinned: string[] = [];
  if (!existsSync(pinRoot)) return unpinned;
  const ours = new Set<string>(PINNED_MAPS);
  for (const f of readdirSync(pinRoot)) {
    if (!ours.has(f)) continue;
    rmSync(join(pinRoot, f), { force: true });
    unpinned.push(f);
  }
  try { rmdirSync(pinRoot); } catch { /* not empty: someone else's pins */ }
  return unpinned;
}

/**
 * Remove everything the dataplane installed: XDP programs, our egress filters (and empty clsact
 * qdiscs) on every interface carrying them in the namespace, and the pinned maps under pinRoot.
 * The mq/HTB tree is left alone.
 */
export async function teardownAll(opts: DetachOptions & MapContext = {}): Promise<{ interfaces: string[]; unpinned: string[] }> {
  const pinRoot = pinRootOf(opts);
  const known = attached.get(pinRoot);
  const netns = opts.netns ?? known?.netns;
  const ifaces = new Set<string>(known?.ifaces ?? []);
  for (const n of await scanInterfaces(netns)) ifaces.add(n);
  const res = await detachDataplane([...ifaces], { netns, logger: opts.logger });
  shapingFds.forget(pinRoot);
  const unpinned = unpinMaps(pinRoot);
  attached.delete(pinRoot);
  return { interfaces: [...new Set([...res.xdpRemoved, ...res.tcRemoved])], unpinned };
}
