/**
 * Attach and detach the dataplane.
 *
 * attachDataplane() builds (if needed) and loads dataplane/build/lqos_kern.o once (object.ts), pins its
 * maps under `pinRoot` (default /sys/fs/bpf/lqos), fills the CPU maps, disables XPS, and attaches the
 * same two programs to every shaping interface: `lqos_xdp` (XDP ingress; `lqos_xdp_nometa` where the
 * kernel refuses XDP its metadata helper, object.ts xdpProgramName) and `lqos_tc_egress` (clsact
 * egress, direct-action, handle 1 / priority 0x4c51). Programs stay attached after this process exits;
 * maps.ts works from any process by re-opening the pinned maps.
 *
 * Everything that talks to the kernel can run inside a named network namespace (`netns`), which is
 * how the tests and the lab drive namespaced veth testbeds.
 */
import { existsSync, rmSync, readdirSync, rmdirSync } from 'node:fs';
import { release } from 'node:os';
import { join } from 'node:path';
import * as bpf from './libbpf.ts';
import { DataplaneError } from './libbpf.ts';
import { MODE_BRIDGE, MODE_STICK, encodeCfg, encodeU32 } from './abi.ts';
import { KERNEL_RECOMMENDED, compareVersion, nativeXdpHint, parseKernelRelease, trafficClassProblem, vlanVerdict, wantsFrags, DEFAULT_OFFLOADS } from './attachChecks.ts';
import { configureCpus, onlineCpus } from './cpus.ts';
import { dataplaneLogger, type DataplaneLogger } from './log.ts';
import { noFiltersLeft, prepareInterface, setPromisc, scanInterfaces, type IfPrep } from './netdev.ts';
import { TC_INGRESS_PROG, TC_PROG, XDP_PROG, XDP_PROGRAMS, ensureObjectReady, openAndLoad, requireRoot } from './object.ts';
import { forwardingPlan, writeForwarding, type ForwardingMode } from './forwarding.ts';
import { PINNED_MAPS, pinRootOf, shapingFds, type MapContext } from './pinned.ts';

export const TC_HANDLE = 1;
export const TC_PRIORITY = 0x4c51;

/**
 * How XDP is attached. `native` (driver mode, the default): a driver that refuses it makes the attach
 * fail, never a silent fallback. `generic` (SKB mode): works on any interface, slower, XDP metadata
 * does not reach tc, refused below Linux 5.15 (no generic redirect to a cpumap there).
 */
export type XdpMode = 'native' | 'generic';

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
  /** Default `native`. */
  xdpMode?: XdpMode;
  /**
   * Who forwards between the two sides (default: `stick` on a stick, else `linux-bridge`): in
   * `xdp-bridge` and `stick` the tc ingress program does (forwarding.ts), and the interfaces are put
   * in promiscuous mode.
   */
  forwarding?: ForwardingMode;
  /** Run everything in this network namespace (name under /var/run/netns). */
  netns?: string;
  /** Physical CPUs that own the queues (queue i -> cpus[i % n]). Default: all online CPUs. */
  cpus?: number[];
  /** Turn off GRO/GSO/TSO/LRO on the shaping interfaces (default true). */
  disableOffloads?: boolean;
  /**
   * Which ethtool features to turn off when disableOffloads is on (default gro, gso, tso, lro, rxvlan,
   * rx-vlan-stag-hw-parse); `rxvlan`/`rx-vlan-stag-hw-parse` keep 802.1Q/802.1ad tags inline where XDP
   * can see them. From `[tuning]`. VLAN stripping still on afterwards refuses the attach on a stick,
   * and in bridge mode when this list asked it off (else one warning).
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
  xdpMode: XdpMode;
  xdpProgId: number;
  tcProgId: number;
  /** The forwarding program at tc ingress (XDP bridge / stick), 0 when a Linux bridge forwards. */
  ingressProgId: number;
  txQueues: number;
}

export interface AttachReport {
  pinRoot: string;
  netns?: string;
  mode: 'bridge' | 'stick';
  forwarding: ForwardingMode;
  interfaces: AttachedInterface[];
  cpus: number[];
  queues: number;
  stickOffset: number;
  /** The XDP variant loaded: lqos_xdp, or lqos_xdp_nometa on a kernel that refuses XDP bpf_xdp_adjust_meta. */
  xdpProgram: string;
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

/** The XDP attach modes a program can sit in, each its own slot: generic, native, offload. */
const XDP_MODES = [bpf.XDP_FLAGS_SKB_MODE, bpf.XDP_FLAGS_DRV_MODE, bpf.XDP_FLAGS_HW_MODE];

/** The id of the XDP program in each mode of the interface that holds one (a mode the query refuses holds none). */
function xdpIdsByMode(ifindex: number): Array<{ flags: number; id: number }> {
  const held: Array<{ flags: number; id: number }> = [];
  for (const flags of XDP_MODES) {
    try {
      const id = bpf.xdpQueryId(ifindex, flags);
      if (id) held.push({ flags, id });
    } catch (e) {
      if (!(e instanceof DataplaneError)) throw e;
    }
  }
  return held;
}

/** Our programs' names, as the kernel reports them (struct bpf_prog_info name, 15 characters at most). */
const OUR_PROGRAMS: ReadonlySet<string> = new Set([...XDP_PROGRAMS, TC_PROG, TC_INGRESS_PROG]);

/** What of ours one interface carries, and the names of other tools' XDP programs on it. */
interface OurPrograms {
  /** XDP attach modes (flags) holding one of our programs. */
  xdpModes: number[];
  otherXdp: string[];
  egress: boolean;
  ingress: boolean;
}

/**
 * Ours by program name, read through libbpf: the XDP program of each mode (generic, native, offload:
 * one may be ours and another a different tool's) and the tc filter at our handle and priority.
 */
function ourProgramsOn(ifindex: number): OurPrograms {
  const r: OurPrograms = { xdpModes: [], otherXdp: [], egress: false, ingress: false };
  for (const { flags, id } of xdpIdsByMode(ifindex)) {
    const name = bpf.progNameById(id);
    if (name !== undefined && OUR_PROGRAMS.has(name)) r.xdpModes.push(flags);
    else r.otherXdp.push(name ?? `id ${id}`);
  }
  r.egress = OUR_PROGRAMS.has(bpf.progNameById(bpf.tcQuery(ifindex, bpf.BPF_TC_EGRESS, TC_HANDLE, TC_PRIORITY)) ?? '');
  r.ingress = OUR_PROGRAMS.has(bpf.progNameById(bpf.tcQuery(ifindex, bpf.BPF_TC_INGRESS, TC_HANDLE, TC_PRIORITY)) ?? '');
  return r;
}

const carriesOurs = (p: OurPrograms) => p.xdpModes.length > 0 || p.egress || p.ingress;

/** Detach our XDP program from every mode that holds it (`on`: ourProgramsOn); another tool's stays. */
function detachOurXdp(ifindex: number, name: string, on: OurPrograms): boolean {
  let any = false;
  for (const flags of on.xdpModes) any = bpf.xdpDetach(ifindex, flags, name) || any;
  return any;
}

/** Every XDP program on the interface, whoever's (attach replaces what a shaping interface carried). */
function detachXdpAllModes(ifindex: number, what: string): boolean {
  let any = false;
  for (const { flags } of xdpIdsByMode(ifindex)) {
    try {
      any = bpf.xdpDetach(ifindex, flags, what) || any;
    } catch (e) {
      if (!(e instanceof DataplaneError)) throw e;
    }
  }
  return any;
}

function attachXdp(ifindex: number, progFd: number, mode: XdpMode, ifname: string, mtu: number | undefined, logger: DataplaneLogger): XdpMode {
  // Same mode: the kernel swaps the program atomically (no XDP_FLAGS_UPDATE_IF_NOEXIST), so no frame
  // meets an interface without XDP (on a stick such a frame would leave unswapped, on the wrong VLAN).
  // Another mode cannot be replaced in place: that one is detached first.
  const wanted = mode === 'generic' ? bpf.XDP_FLAGS_SKB_MODE : bpf.XDP_FLAGS_DRV_MODE;
  const existing = bpf.xdpQueryId(ifindex, 0);
  if (existing) {
    const sameMode = bpf.xdpQueryId(ifindex, wanted) === existing;
    logger.info(`${ifname}: replacing previously attached XDP program id ${existing}${sameMode ? ' in place' : ' (other mode: detached first)'}`);
    if (!sameMode) detachXdpAllModes(ifindex, ifname);
  }
  if (mode === 'generic') {
    bpf.xdpAttach(ifindex, progFd, bpf.XDP_FLAGS_SKB_MODE, `${ifname}, generic mode`);
    logger.info(`${ifname}: XDP attached in generic (SKB) mode, as [tuning] xdp_mode = "generic" asks`);
    return 'generic';
  }
  try {
    bpf.captureLibbpf(() => bpf.xdpAttach(ifindex, progFd, bpf.XDP_FLAGS_DRV_MODE, `${ifname}, native mode`));
  } catch (e) {
    if (!(e instanceof DataplaneError)) throw e;
    const reason = bpf.kernelReason((e as { libbpf?: string[] }).libbpf ?? []) ?? `${e.code}: the driver has no native XDP support`;
    const hint = nativeXdpHint(ifname, mtu);
    throw DataplaneError.refuse(`attach native XDP on ${ifname}`, {
      code: 'XDP_NATIVE_UNAVAILABLE',
      message: `refusing to shape ${ifname} without native XDP: the driver refused native mode (${reason}${mtu ? `; MTU ${mtu}` : ''}). Fix: ${hint}`,
      hint,
    }, e.errno);
  }
  logger.info(`${ifname}: XDP attached in native (driver) mode`);
  return 'native';
}

/** Refuse generic mode on kernels that cannot redirect generic-mode XDP to a cpumap. */
function checkXdpMode(mode: XdpMode, kernel = release()): void {
  const k = parseKernelRelease(kernel);
  if (mode !== 'generic' || !k || compareVersion(k, KERNEL_RECOMMENDED) >= 0) return;
  const hint = `set [tuning] xdp_mode = "native" (a NIC whose driver supports XDP) or upgrade to Linux ${KERNEL_RECOMMENDED.major}.${KERNEL_RECOMMENDED.minor}+`;
  throw DataplaneError.refuse('attach generic XDP', {
    code: 'XDP_GENERIC_UNSUPPORTED',
    message: `refusing generic-mode XDP on kernel ${kernel}: before ${KERNEL_RECOMMENDED.major}.${KERNEL_RECOMMENDED.minor} generic XDP cannot redirect to a cpumap, every shaped packet would be dropped. Fix: ${hint}`,
    hint,
  });
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
  const fwd = forwardingOf(opts);
  if ((fwd === 'stick') !== stick) {
    throw new DataplaneError('attachDataplane', 22, `forwarding "${fwd}" with ${stick ? 'one interface (on a stick)' : 'two interfaces'}`,
      'on a stick the forwarding is "stick"; with two interfaces it is "linux-bridge" or "xdp-bridge"');
  }
  if (!stick && opts.stickOffset !== 0) logger.warn(`stickOffset ${opts.stickOffset} in bridge mode: upload classes will use major + ${opts.stickOffset}`);
}

/** The interface checks after preparation: traffic classes, VLAN stripping, TX queues. */
function checkInterface(opts: AttachOptions, name: string, p: IfPrep, warnings: string[]): void {
  const tc = trafficClassProblem(name, { classes: p.trafficClasses, rootQdisc: p.rootQdisc });
  if (tc) throw DataplaneError.refuse(`check traffic classes of ${name}`, tc);
  const disable = opts.disableOffloads ?? true;
  const asked = new Set(disable ? opts.offloads ?? DEFAULT_OFFLOADS : []);
  const vlan = vlanVerdict(name, p.features, { onAStick: opts.onAStick, wantedOff: (f) => asked.has(f) });
  if (vlan.refusal) throw DataplaneError.refuse(`check VLAN offloads of ${name}`, vlan.refusal);
  warnings.push(...vlan.warnings);
  const needed = opts.queues + (opts.onAStick ? opts.stickOffset : 0);
  if (p.txQueues < needed) {
    throw new DataplaneError(`check TX queues of ${name}`, 22, `${p.txQueues} TX queue(s), ${needed} needed`,
      'give the interface more queues (`ethtool -L IF tx N`, veth: numtxqueues) or lower the queue count');
  }
}

/**
 * Prepare every shaping interface (before anything is loaded or attached) and check it: traffic
 * classes, VLAN stripping read back, enough TX queues. A refusal throws before any attach.
 */
async function prepareInterfaces(opts: AttachOptions, ifnames: string[], warnings: string[]): Promise<Map<string, IfPrep>> {
  const preps = new Map<string, IfPrep>();
  for (const name of ifnames) {
    // Fail early (ENODEV) before anything else changes.
    bpf.withNetns(opts.netns, () => bpf.ifNameToIndex(name));
    const p = await prepareInterface(opts.netns, name, { disableOffloads: opts.disableOffloads ?? true, offloads: opts.offloads, coalesce: opts.coalesce });
    preps.set(name, p);
    warnings.push(...p.warnings);
    checkInterface(opts, name, p, warnings);
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
    // tc distrusts XDP metadata naming a major outside 1..queues (+ the upload offset).
    maxMajor: opts.queues + opts.stickOffset,
    // Generic XDP runs on the skb, whose outer VLAN tag may already be out of the frame (veth, or a
    // driver that hands tags over in the skb): the tc ingress program, which sees it either way,
    // swaps it instead.
    stickTcSwap: opts.onAStick && (opts.xdpMode ?? 'native') === 'generic',
  });
}

/** Attach XDP and the tc egress classifier to one interface. */
function attachPrograms(fds: ProgramFds, opts: AttachOptions, name: string, prep: IfPrep, logger: DataplaneLogger): AttachedInterface {
  const forwards = forwardingOf(opts) !== 'linux-bridge';
  const entry = bpf.withNetns(opts.netns, () => {
    const idx = bpf.ifNameToIndex(name);
    const mode = attachXdp(idx, fds.xdp, opts.xdpMode ?? 'native', name, prep.mtu, logger);
    const xdpProgId = bpf.xdpQueryId(idx, 0);
    // (Creating an existing clsact makes the kernel log an error through libbpf: skip it.)
    if (!prep.hasClsact) bpf.tcHookCreate(idx, name);
    const tcProgId = bpf.tcAttach(idx, bpf.BPF_TC_EGRESS, fds.tc, TC_HANDLE, TC_PRIORITY, `${name} egress`);
    // Ingress last: frames it forwards meet the classifier already in place. A Linux bridge forwards
    // by itself: a forwarding program left from an earlier mode is removed.
    let ingressProgId = 0;
    if (forwards) ingressProgId = bpf.tcAttach(idx, bpf.BPF_TC_INGRESS, fds.ingress, TC_HANDLE, TC_PRIORITY, `${name} ingress`);
    else bpf.tcDetach(idx, bpf.BPF_TC_INGRESS, TC_HANDLE, TC_PRIORITY, `${name} ingress`);
    return { idx, mode, xdpProgId, tcProgId, ingressProgId };
  });
  return {
    name, ifindex: entry.idx, role: opts.onAStick ? 'stick' : name === opts.downloadIf ? 'download' : 'upload',
    xdpMode: entry.mode, xdpProgId: entry.xdpProgId, tcProgId: entry.tcProgId, ingressProgId: entry.ingressProgId, txQueues: prep.txQueues,
  };
}

interface ProgramFds { xdp: number; tc: number; ingress: number }

function forwardingOf(opts: AttachOptions): ForwardingMode {
  return opts.forwarding ?? (opts.onAStick ? 'stick' : 'linux-bridge');
}

/** redirect_if / vlan_swap for the mode (emptied for a Linux bridge), written before any program is attached. */
function configureForwarding(opts: AttachOptions, ctx: MapContext): void {
  const ifindex = (n: string) => bpf.withNetns(opts.netns, () => bpf.ifNameToIndex(n));
  const mode = forwardingOf(opts);
  try {
    writeForwarding(forwardingPlan(mode, ifindex(opts.uploadIf), ifindex(opts.downloadIf), opts.vlan), ctx);
  } catch (e) {
    if (e instanceof DataplaneError) throw e;
    throw new DataplaneError('configure forwarding', 22, (e as Error).message, 'check [bridge] / [single_interface] in lqos.conf');
  }
}

/** The programs an interface carried before this attach, held open (a replaced program is otherwise freed). */
interface PriorPrograms { name: string; xdp?: { fd: number; flags: number; id: number }; egress?: number; ingress?: number }

function holdPriorPrograms(netns: string | undefined, name: string): PriorPrograms {
  return bpf.withNetns(netns, () => {
    const idx = bpf.ifNameToIndex(name);
    const hold = (id: number) => (id ? bpf.progFdById(id) : undefined);
    const prior: PriorPrograms = { name };
    for (const flags of [bpf.XDP_FLAGS_SKB_MODE, bpf.XDP_FLAGS_DRV_MODE]) {
      const id = bpf.xdpQueryId(idx, flags);
      if (id) prior.xdp = { fd: hold(id)!, flags, id };
    }
    prior.egress = hold(bpf.tcQuery(idx, bpf.BPF_TC_EGRESS, TC_HANDLE, TC_PRIORITY));
    prior.ingress = hold(bpf.tcQuery(idx, bpf.BPF_TC_INGRESS, TC_HANDLE, TC_PRIORITY));
    return prior;
  });
}

function releasePriorPrograms(prior: PriorPrograms[]): void {
  for (const p of prior) for (const fd of [p.xdp?.fd, p.egress, p.ingress]) if (fd !== undefined) bpf.closeFd(fd);
}

/** Put back what the interface carried before (XDP in its old mode, our tc filters), or remove ours when it carried nothing. */
async function restorePriorPrograms(netns: string | undefined, p: PriorPrograms, logger: DataplaneLogger): Promise<void> {
  if (!p.xdp && p.egress === undefined && p.ingress === undefined) {
    await detachDataplane([p.name], { netns, logger });
    return;
  }
  bpf.withNetns(netns, () => {
    const idx = bpf.ifNameToIndex(p.name);
    if (p.xdp) {
      if (bpf.xdpQueryId(idx, 0) && !bpf.xdpQueryId(idx, p.xdp.flags)) detachXdpAllModes(idx, p.name);
      bpf.xdpAttach(idx, p.xdp.fd, p.xdp.flags, `${p.name}, previous program`);
    } else detachXdpAllModes(idx, p.name);
    for (const [point, fd, what] of [[bpf.BPF_TC_EGRESS, p.egress, 'egress'], [bpf.BPF_TC_INGRESS, p.ingress, 'ingress']] as const) {
      if (fd !== undefined) bpf.tcAttach(idx, point, fd, TC_HANDLE, TC_PRIORITY, `${p.name} ${what}, previous program`);
      else bpf.tcDetach(idx, point, TC_HANDLE, TC_PRIORITY, `${p.name} ${what}`);
    }
  });
  logger.warn(`${p.name}: the attach failed, so the programs it carried before are back in force (XDP ${p.xdp ? `id ${p.xdp.id}` : 'none'}); the previous shaping continues`);
}

/**
 * Attach to every interface. A failure on one puts back what every touched interface carried before
 * (a reload that fails on the second NIC leaves the first one shaping as it did), or removes what
 * this attach added where there was nothing.
 */
async function attachAll(fds: ProgramFds, opts: AttachOptions, ifnames: string[], preps: Map<string, IfPrep>, logger: DataplaneLogger): Promise<AttachedInterface[]> {
  const done: AttachedInterface[] = [];
  const prior: PriorPrograms[] = [];
  try {
    for (const name of ifnames) {
      prior.push(holdPriorPrograms(opts.netns, name));
      done.push(attachPrograms(fds, opts, name, preps.get(name)!, logger));
    }
    return done;
  } catch (e) {
    for (const p of prior) {
      await restorePriorPrograms(opts.netns, p, logger).catch(async (r: unknown) => {
        logger.warn(`${p.name}: could not put the previous programs back (${(r as Error).message}); removing this attach's programs`);
        await detachDataplane([p.name], { netns: opts.netns, logger }).catch(() => undefined);
      });
    }
    throw e;
  } finally {
    releasePriorPrograms(prior);
  }
}

/**
 * Load the object for attaching. Native mode loads the XDP program frags-aware (BPF_F_XDP_HAS_FRAGS),
 * so drivers attach above their single-buffer MTU (the program reads headers in the first buffer
 * only). Generic mode does not: there a frags-aware program's cpumap redirects are dropped (measured
 * on 6.18). The kernel ties a cpumap to the frags flag of the first program that used it, so after a
 * switch between modes the pinned cpu_map is refused (EINVAL at load): it is then recreated (it is
 * refilled by configureCpus anyway) and reported as replaced.
 */
function loadForAttach(opts: AttachOptions, pinRoot: string, logger: DataplaneLogger): ReturnType<typeof openAndLoad> {
  // Before 5.18 the kernel refuses the frags flag: load as before (jumbo MTUs then need generic mode).
  const frags = wantsFrags(opts.xdpMode ?? 'native', release());
  const load = () => openAndLoad(pinRoot, attachCfg(opts), true, logger, (obj, xdpProg) => {
    if (frags) bpf.programAddFlags(bpf.findProgram(obj, xdpProg), bpf.BPF_F_XDP_HAS_FRAGS);
  });
  const cpuPin = join(pinRoot, 'cpu_map');
  try {
    return load();
  } catch (e) {
    // Not a verifier refusal of a program (openAndLoad handles the metadata helper's): the cpumap.
    if (!(e instanceof DataplaneError) || e.code !== 'EINVAL' || !existsSync(cpuPin) || /cannot use helper/.test(e.message)) throw e;
    logger.warn(`the pinned cpu_map was used by an XDP program of the other mode (frags ${frags ? 'off' : 'on'}): recreating it for ${frags ? 'native' : 'generic'} mode`);
    rmSync(cpuPin, { force: true });
    const r = load();
    r.created = r.created.filter((n) => n !== 'cpu_map');
    r.replaced.push('cpu_map');
    return r;
  }
}

/** Load the dataplane and attach it to the shaping interface(s). */
export async function attachDataplane(opts: AttachOptions): Promise<AttachReport> {
  const t0 = performance.now();
  const logger = dataplaneLogger(opts.logger);
  requireRoot();
  const pinRoot = pinRootOf(opts);
  checkAttachOptions(opts, logger);
  checkXdpMode(opts.xdpMode ?? 'native');
  await ensureObjectReady();
  const cpus = opts.cpus?.length ? opts.cpus : onlineCpus();
  const warnings: string[] = [];
  const ifnames = opts.onAStick ? [opts.downloadIf] : [opts.downloadIf, opts.uploadIf];
  const preps = await prepareInterfaces(opts, ifnames, warnings);

  const loaded = loadForAttach(opts, pinRoot, logger);
  const report: AttachReport = {
    pinRoot, netns: opts.netns, mode: opts.onAStick ? 'stick' : 'bridge', forwarding: forwardingOf(opts), interfaces: [], cpus, queues: opts.queues,
    stickOffset: opts.stickOffset, xdpProgram: loaded.xdpProg, mapsCreated: loaded.created, mapsReused: loaded.reused, mapsReplaced: loaded.replaced,
    warnings, elapsedMs: 0,
  };
  try {
    // Maps first, programs second: no window where a redirect hits an empty cpumap slot.
    const ctx = { pinRoot };
    bpf.mapUpdateElem(shapingFds.fd('classify_ctl', ctx), encodeU32(0), encodeU32(0));
    configureCpus(opts.queues, ctx, cpus);
    configureForwarding(opts, ctx);
    if (forwardingOf(opts) !== 'linux-bridge') for (const name of ifnames) await setPromisc(opts.netns, name, true);
    const prog = (n: string) => bpf.programFd(bpf.findProgram(loaded.obj, n));
    const fds = { xdp: prog(loaded.xdpProg), tc: prog(TC_PROG), ingress: prog(TC_INGRESS_PROG) };
    report.interfaces.push(...(await attachAll(fds, opts, ifnames, preps, logger)));
  } finally {
    // Attached programs and pinned maps keep everything alive; the object itself is not needed.
    bpf.objectClose(loaded.obj);
  }
  attached.set(pinRoot, { netns: opts.netns, ifaces: ifnames });
  for (const w of warnings) logger.warn(w);
  report.elapsedMs = Math.round(performance.now() - t0);
  const modes = report.interfaces.map((i) => `${i.name} XDP ${i.xdpMode}`).join(', ');
  logger.info(`dataplane attached (${FORWARDING_TEXT[report.forwarding]}) on ${modes} in ${report.elapsedMs} ms; maps under ${pinRoot}`);
  if (report.xdpProgram !== XDP_PROG) {
    logger.info(`this kernel refuses bpf_xdp_adjust_meta to XDP programs: loaded ${report.xdpProgram}, so the tc classifier looks up each redirected frame again (same shaping, a little more CPU per frame)`);
  }
  return report;
}

const FORWARDING_TEXT: Record<ForwardingMode, string> = {
  'linux-bridge': 'Linux bridge forwards, lqos-ts classifies',
  'xdp-bridge': 'XDP bridge: lqos-ts forwards between the two interfaces',
  stick: 'on a stick: lqos-ts swaps the VLANs and hairpins',
};

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
    // Only our own programs (by name): another tool's XDP program (in any mode) or tc filter on the
    // same interface stays, and so does a clsact that still holds a filter.
    const r = bpf.withNetns(opts.netns, () => {
      const on = ourProgramsOn(idx);
      return {
        others: on.otherXdp,
        xdp: detachOurXdp(idx, name, on),
        tc: on.egress && bpf.tcDetach(idx, bpf.BPF_TC_EGRESS, TC_HANDLE, TC_PRIORITY, `${name} egress`),
        ingress: on.ingress && bpf.tcDetach(idx, bpf.BPF_TC_INGRESS, TC_HANDLE, TC_PRIORITY, `${name} ingress`),
      };
    });
    for (const other of r.others) logger.info(`${name}: XDP program "${other}" is not lqos-ts's; left attached`);
    if (r.xdp) xdpRemoved.push(name);
    if (r.tc || r.ingress) tcRemoved.push(name);
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
    const done = bpf.withNetns(opts.netns, () => {
      const idx = bpf.ifNameToIndex(name);
      return detachOurXdp(idx, name, ourProgramsOn(idx));
    });
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
  // Other interfaces only when they carry one of our programs (not for any XDP program or clsact).
  for (const n of await scanInterfaces(netns)) {
    if (ifaces.has(n)) continue;
    const ours = bpf.withNetns(netns, () => {
      try {
        return carriesOurs(ourProgramsOn(bpf.ifNameToIndex(n)));
      } catch (e) {
        if (e instanceof DataplaneError && e.code === 'ENODEV') return false; // gone since the scan
        throw e;
      }
    });
    if (ours) ifaces.add(n);
  }
  const res = await detachDataplane([...ifaces], { netns, logger: opts.logger });
  shapingFds.forget(pinRoot);
  const unpinned = unpinMaps(pinRoot);
  attached.delete(pinRoot);
  return { interfaces: [...new Set([...res.xdpRemoved, ...res.tcRemoved])], unpinned };
}
