/**
 * lqos-ts dataplane loader and map API.
 *
 * attachDataplane() builds (if needed) and loads dataplane/build/lqos_kern.o once, pins its maps under
 * `pinRoot` (default /sys/fs/bpf/lqos), fills the CPU maps, disables XPS, and attaches the same two
 * programs to every shaping interface: `lqos_xdp` (XDP ingress) and `lqos_tc_egress` (clsact egress,
 * direct-action, handle 1 / priority 0x4c51). Programs stay attached after this process exits; the map
 * API below works from any process by re-opening the pinned maps.
 *
 * Everything that talks to the kernel can run inside a named network namespace (`netns`), which is
 * how the tests and the lab drive namespaced veth testbeds.
 */
import { execa } from 'execa';
import pino from 'pino';
import { existsSync, readFileSync, rmSync, unlinkSync, readdirSync, rmdirSync, mkdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { dirname, join } from 'node:path';
import type { IpMapping } from '../lib/model.ts';
import * as bpf from './libbpf.ts';
import { DataplaneError } from './libbpf.ts';
import {
  ADDR_SIZE, CLASS_INFO_SIZE, HOST_COUNTER_SIZE, LPM_KEY_SIZE, HOT_ENTRY_SIZE, MODE_BRIDGE, MODE_STICK,
  decodeAddr, decodeLpmKey, writeAddr, encodeCfg, readClassInfo, sumHostCounters, tcHandle, writeClassInfo, writeLpmKey,
  type HostCounters,
} from './abi.ts';

export { DataplaneError } from './libbpf.ts';
export type { HostCounters } from './abi.ts';

const HERE = dirname(fileURLToPath(import.meta.url));
export const OBJECT_PATH = join(HERE, 'build', 'lqos_kern.o');
export const BUILD_SCRIPT = join(HERE, 'build.sh');
export const DEFAULT_PIN_ROOT = '/sys/fs/bpf/lqos';
export const XDP_PROG = 'lqos_xdp';
export const TC_PROG = 'lqos_tc_egress';
export const TC_HANDLE = 1;
export const TC_PRIORITY = 0x4c51;
export const CFG_MAP = '.data.cfg';
export const CPUMAP_QSIZE = 2048;
export const MAX_CPUS = 1024;

/** Maps pinned under pinRoot (file name = map name). */
export const PINNED_MAPS = [
  'ip_to_class', 'hot_cache', 'mapping_epoch', 'host_counters', 'cpu_map', 'cpus_available', 'txq_config', 'classify_ctl',
  'dp_stats',
  // flow telemetry (dataplane/flows.ts)
  'flows', 'flow_events', 'flow_ctl',
] as const;
export type PinnedMapName = (typeof PINNED_MAPS)[number];

// ---------------------------------------------------------------------------------------------
// Logging

export interface DataplaneLogger {
  info(msg: string): void;
  warn(msg: string): void;
}

let defaultLogger: DataplaneLogger | undefined;
function log(l?: DataplaneLogger): DataplaneLogger {
  if (l) return l;
  if (!defaultLogger) {
    const p = pino({ name: 'lqos-dataplane', level: process.env.LQOS_DATAPLANE_LOG ?? 'info' });
    defaultLogger = { info: (m) => p.info(m), warn: (m) => p.warn(m) };
  }
  return defaultLogger;
}

// ---------------------------------------------------------------------------------------------
// Options and reports

export interface MapContext {
  /** Directory in bpffs holding the pinned maps. Default /sys/fs/bpf/lqos. */
  pinRoot?: string;
}

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

// ---------------------------------------------------------------------------------------------
// Shell helpers (namespace aware)

async function run(netns: string | undefined, cmd: string, args: string[], reject = true) {
  const full = netns ? ['netns', 'exec', netns, cmd, ...args] : args;
  const bin = netns ? 'ip' : cmd;
  return execa(bin, full, { reject, all: true });
}

export async function ensureBpffs(): Promise<void> {
  const mounts = readFileSync('/proc/mounts', 'utf8');
  if (mounts.split('\n').some((l) => l.split(' ')[1] === '/sys/fs/bpf' && l.split(' ')[2] === 'bpf')) return;
  mkdirSync('/sys/fs/bpf', { recursive: true });
  const r = await execa('mount', ['-t', 'bpf', 'bpf', '/sys/fs/bpf'], { reject: false, all: true });
  if (r.exitCode !== 0) {
    throw new DataplaneError('mount bpffs at /sys/fs/bpf', 1, r.all, 'mount it yourself: `mount -t bpf bpf /sys/fs/bpf` (needs root, CONFIG_BPF_SYSCALL)');
  }
}

/** Build the BPF object if it is missing or older than its sources (fast no-op otherwise). */
export async function ensureBuilt(): Promise<string> {
  const r = await execa('bash', [BUILD_SCRIPT], { reject: false, all: true });
  if (r.exitCode !== 0) {
    throw new DataplaneError('build BPF object (dataplane/build.sh)', r.exitCode === 127 ? 2 : 8, r.all,
      'install clang and libbpf-dev, then run `bash dataplane/build.sh`');
  }
  return OBJECT_PATH;
}

function requireRoot(): void {
  if (typeof process.getuid === 'function' && process.getuid() !== 0) {
    throw new DataplaneError('dataplane attach', 1, 'not running as root', 'run as root (or with CAP_BPF, CAP_NET_ADMIN, CAP_SYS_ADMIN)');
  }
}

function onlineCpus(): number[] {
  const text = readFileSync('/sys/devices/system/cpu/online', 'utf8').trim();
  const out: number[] = [];
  for (const part of text.split(',')) {
    const [a, b] = part.split('-').map(Number);
    for (let c = a!; c <= (b ?? a!); c++) out.push(c);
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Object loading and pinned maps

interface LoadedObject {
  obj: bpf.BpfObject;
  created: string[];
  reused: string[];
  replaced: string[];
}

function mapTypeName(t: number): string {
  const e = Object.entries(bpf.BPF_MAP_TYPE).find(([, v]) => v === t);
  return e ? e[0] : String(t);
}

/**
 * Open the object, point every named map at its pin (replacing pins whose definition changed),
 * set the program configuration, and load. With `programs = false` only the maps are created.
 */
function openAndLoad(pinRoot: string, cfg: Buffer | null, programs: boolean, logger: DataplaneLogger): LoadedObject {
  const obj = bpf.objectOpenFile(OBJECT_PATH);
  const res: LoadedObject = { obj, created: [], reused: [], replaced: [] };
  const logBufs: Buffer[] = [];
  try {
    mkdirSync(pinRoot, { recursive: true });
    for (const m of bpf.listMaps(obj)) {
      // The kernel caps a cpumap at NR_CPUS entries: size it to the possible CPUs.
      if (bpf.mapDef(m).name === 'cpu_map') bpf.mapSetMaxEntries(m, Math.min(possibleCpus(), MAX_CPUS));
      const def = bpf.mapDef(m);
      if (!(PINNED_MAPS as readonly string[]).includes(def.name)) continue;
      const pin = join(pinRoot, def.name);
      if (existsSync(pin)) {
        const fd = bpf.objGet(pin);
        try {
          const info = bpf.mapInfoByFd(fd);
          const same = info.type === def.type && info.keySize === def.keySize && info.valueSize === def.valueSize &&
            info.maxEntries === def.maxEntries && info.flags === def.flags;
          if (same) res.reused.push(def.name);
          else {
            logger.warn(`pinned map ${pin} has an old layout (type ${mapTypeName(info.type)} key ${info.keySize} value ${info.valueSize} max ${info.maxEntries} flags ${info.flags}); ` +
              `replacing it with type ${mapTypeName(def.type)} key ${def.keySize} value ${def.valueSize} max ${def.maxEntries} flags ${def.flags} - its contents are lost`);
            unlinkSync(pin);
            res.replaced.push(def.name);
          }
        } finally {
          bpf.closeFd(fd);
        }
      } else res.created.push(def.name);
      bpf.mapSetPinPath(m, pin);
    }
    if (cfg) bpf.mapSetInitialValue(bpf.findMap(obj, CFG_MAP), cfg);
    for (const p of bpf.listPrograms(obj)) {
      if (!programs) bpf.programSetAutoload(p, false);
      else {
        const buf = Buffer.alloc(256 * 1024);
        logBufs.push(buf);
        bpf.programSetLogBuf(p, buf, 0);
      }
    }
    bpf.objectLoad(obj, () => {
      const text = logBufs.map((b) => b.toString('utf8', 0, Math.max(0, b.indexOf(0)))).join('\n').trim();
      return text ? `verifier log (tail): ${text.slice(-1500)}` : '';
    });
    return res;
  } catch (e) {
    bpf.objectClose(obj);
    throw e;
  }
}

/** Create (or reuse) the pinned maps without loading or attaching any program. */
export async function createPinnedMaps(ctx: MapContext & { logger?: DataplaneLogger } = {}): Promise<{ created: string[]; reused: string[]; replaced: string[] }> {
  requireRoot();
  await ensureBpffs();
  await ensureBuilt();
  const pinRoot = ctx.pinRoot ?? DEFAULT_PIN_ROOT;
  forgetFds(pinRoot);
  const r = openAndLoad(pinRoot, null, false, log(ctx.logger));
  bpf.objectClose(r.obj);
  return { created: r.created, reused: r.reused, replaced: r.replaced };
}

export interface LoadedPrograms {
  xdpFd: number;
  tcFd: number;
  /** Close the object (programs unload unless attached somewhere). */
  close(): void;
}

/**
 * Load the object with an explicit configuration and keep it open, without attaching anything:
 * for BPF_PROG_TEST_RUN based tests and diagnostics. Maps are pinned under pinRoot as usual.
 */
export async function loadPrograms(cfg: import('./abi.ts').CfgValues, ctx: MapContext & { logger?: DataplaneLogger } = {}): Promise<LoadedPrograms> {
  requireRoot();
  await ensureBpffs();
  await ensureBuilt();
  const pinRoot = ctx.pinRoot ?? DEFAULT_PIN_ROOT;
  forgetFds(pinRoot);
  const loaded = openAndLoad(pinRoot, encodeCfg(cfg), true, log(ctx.logger));
  return {
    xdpFd: bpf.programFd(bpf.findProgram(loaded.obj, XDP_PROG)),
    tcFd: bpf.programFd(bpf.findProgram(loaded.obj, TC_PROG)),
    close: () => bpf.objectClose(loaded.obj),
  };
}

/** Fill cpu_map / cpus_available / txq_config for `queues` queues over `cpus` (default: online CPUs). */
export function configureCpus(queues: number, ctx: MapContext = {}, cpus: number[] = onlineCpus()): void {
  fillCpuMaps(cpus, queues, 0, ctx);
}

// ---------------------------------------------------------------------------------------------
// Pinned map handles (per pin root, opened lazily)

const fdCache = new Map<string, Map<PinnedMapName, number>>();

function forgetFds(pinRoot: string): void {
  const m = fdCache.get(pinRoot);
  if (m) for (const fd of m.values()) bpf.closeFd(fd);
  fdCache.delete(pinRoot);
}

function mapFdOf(name: PinnedMapName, ctx?: MapContext): number {
  const root = ctx?.pinRoot ?? DEFAULT_PIN_ROOT;
  let m = fdCache.get(root);
  if (!m) fdCache.set(root, (m = new Map()));
  let fd = m.get(name);
  if (fd === undefined) {
    fd = bpf.objGet(join(root, name));
    m.set(name, fd);
  }
  return fd;
}

let ncpuPossible: number | undefined;
function possibleCpus(): number {
  ncpuPossible ??= bpf.numPossibleCpus();
  return ncpuPossible;
}

function u32(n: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32LE(n >>> 0);
  return b;
}

function fillCpuMaps(cpus: number[], queues: number, stickOffset: number, ctx: MapContext): void {
  // cpumap: one entry per shaping CPU.
  const cpumap = mapFdOf('cpu_map', ctx);
  for (const c of cpus) bpf.mapUpdateElem(cpumap, u32(c), u32(CPUMAP_QSIZE));
  // Logical queue index -> physical CPU; every index points at a populated cpumap slot.
  const n = MAX_CPUS;
  const keys = Buffer.alloc(n * 4);
  const vals = Buffer.alloc(n * 4);
  for (let i = 0; i < n; i++) {
    keys.writeUInt32LE(i, i * 4);
    vals.writeUInt32LE(cpus[(i % queues) % cpus.length]!, i * 4);
  }
  bpf.mapUpdateBatch(mapFdOf('cpus_available', ctx), keys, vals, n, 4, 4);
  // Physical CPU -> TX queue (1-based) for unclassified traffic; CPUs not shaping keep 0.
  const txq = Buffer.alloc(n * 4);
  cpus.forEach((c, i) => { if (c < n) txq.writeUInt32LE((i % queues) + 1, c * 4); });
  void stickOffset;
  bpf.mapUpdateBatch(mapFdOf('txq_config', ctx), keys, txq, n, 4, 4);
}

// ---------------------------------------------------------------------------------------------
// Interface preparation

interface IfPrep { txQueues: number; hasClsact: boolean; warnings: string[] }

async function prepareInterface(
  netns: string | undefined,
  ifname: string,
  disableOffloads: boolean,
  offloads: string[] = ['gro', 'gso', 'tso', 'lro'],
  coalesce?: { rxUsecs?: number; txUsecs?: number },
): Promise<IfPrep> {
  const warnings: string[] = [];
  // Count TX queues and zero XPS in one shell call (sysfs must be read inside the namespace).
  // The interface name is passed as $1, never interpolated into the script.
  const script = 'set -u; d="/sys/class/net/$1/queues"; [ -d "$d" ] || { echo NOQUEUES; exit 0; }; ' +
    'n=0; for q in "$d"/tx-*; do n=$((n+1)); if [ -e "$q/xps_cpus" ]; then echo 0 > "$q/xps_cpus" 2>/dev/null || echo "XPSFAIL $q"; fi; ' +
    'if [ -e "$q/xps_rxqs" ]; then echo 0 > "$q/xps_rxqs" 2>/dev/null || true; fi; done; echo "TXQ $n"; ' +
    'tc qdisc show dev "$1" 2>/dev/null | grep -q "^qdisc clsact" && echo HASCLSACT; true';
  const r = await run(netns, 'sh', ['-c', script, 'sh', ifname], false);
  const out = r.stdout ?? '';
  if (out.includes('NOQUEUES')) throw new DataplaneError(`inspect queues of ${ifname}`, 2, `/sys/class/net/${ifname}/queues missing`, 'the interface must be multi-queue (veth: numtxqueues/numrxqueues, then `ethtool -L IF rx N tx N`)');
  for (const line of out.split('\n')) if (line.startsWith('XPSFAIL')) warnings.push(`could not disable XPS on ${line.slice(8)}; classes may land in the wrong queue`);
  const m = /TXQ (\d+)/.exec(out);
  const txQueues = m ? Number(m[1]) : 0;
  if (disableOffloads) {
    for (const feat of offloads) {
      const e = await run(netns, 'ethtool', ['-K', ifname, feat, 'off'], false);
      if (e.exitCode !== 0 && !/not supported|Cannot change|Could not change|fixed/i.test(e.all ?? '')) {
        warnings.push(`ethtool -K ${ifname} ${feat} off failed: ${(e.all ?? '').trim().split('\n')[0]}`);
      }
    }
  }
  if (coalesce && (coalesce.rxUsecs !== undefined || coalesce.txUsecs !== undefined)) {
    const args = ['-C', ifname];
    if (coalesce.rxUsecs !== undefined) args.push('rx-usecs', String(coalesce.rxUsecs));
    if (coalesce.txUsecs !== undefined) args.push('tx-usecs', String(coalesce.txUsecs));
    const e = await run(netns, 'ethtool', args, false);
    // veth and many virtual NICs have no coalescing settings: not worth a warning.
    if (e.exitCode !== 0 && !/not supported|Operation not supported/i.test(e.all ?? '')) {
      warnings.push(`ethtool ${args.join(' ')} failed: ${(e.all ?? '').trim().split('\n')[0]}`);
    }
  }
  return { txQueues, hasClsact: out.includes('HASCLSACT'), warnings };
}

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

// Registry of what this process attached, for detach/teardown without arguments.
const attached = new Map<string, { netns?: string; ifaces: string[] }>();

/** Load the dataplane and attach it to the shaping interface(s). */
export async function attachDataplane(opts: AttachOptions): Promise<AttachReport> {
  const t0 = performance.now();
  const logger = log(opts.logger);
  requireRoot();
  const pinRoot = opts.pinRoot ?? DEFAULT_PIN_ROOT;
  const stick = opts.onAStick;
  if (!Number.isInteger(opts.queues) || opts.queues < 1 || opts.queues > 0xffff) throw new DataplaneError('attachDataplane', 22, `queues=${opts.queues}`, 'queues must be a positive integer');
  if (stick && (!opts.vlan || opts.downloadIf !== opts.uploadIf)) {
    throw new DataplaneError('attachDataplane', 22, 'on a stick needs vlan {internet, network} and downloadIf === uploadIf', 'set both VLAN ids and use one interface');
  }
  if (!stick && opts.downloadIf === opts.uploadIf) throw new DataplaneError('attachDataplane', 22, 'bridge mode needs two different interfaces', 'set onAStick for a single interface');
  if (!stick && opts.stickOffset !== 0) logger.warn(`stickOffset ${opts.stickOffset} in bridge mode: upload classes will use major + ${opts.stickOffset}`);

  await ensureBpffs();
  await ensureBuilt();
  const cpus = opts.cpus?.length ? opts.cpus : onlineCpus();
  const warnings: string[] = [];

  const ifnames = stick ? [opts.downloadIf] : [opts.downloadIf, opts.uploadIf];
  const preps = new Map<string, IfPrep>();
  for (const name of ifnames) {
    // Fail early (ENODEV) before anything else changes.
    bpf.withNetns(opts.netns, () => bpf.ifNameToIndex(name));
    const p = await prepareInterface(opts.netns, name, opts.disableOffloads ?? true, opts.offloads, opts.coalesce);
    preps.set(name, p);
    warnings.push(...p.warnings);
    const needed = opts.queues + (stick ? opts.stickOffset : 0);
    if (p.txQueues < needed) {
      throw new DataplaneError(`check TX queues of ${name}`, 22, `${p.txQueues} TX queue(s), ${needed} needed`,
        'give the interface more queues (`ethtool -L IF tx N`, veth: numtxqueues) or lower the queue count');
    }
  }

  const ifindex = (n: string) => bpf.withNetns(opts.netns, () => bpf.ifNameToIndex(n));
  const downIdx = ifindex(opts.downloadIf);
  const upIdx = ifindex(opts.uploadIf);
  const cfg = encodeCfg({
    mode: stick ? MODE_STICK : MODE_BRIDGE,
    internetIfindex: upIdx,
    ispIfindex: downIdx,
    stickOffset: opts.stickOffset,
    internetVlan: opts.vlan?.internet ?? 0,
    ispVlan: opts.vlan?.network ?? 0,
  });

  forgetFds(pinRoot);
  const loaded = openAndLoad(pinRoot, cfg, true, logger);
  const report: AttachReport = {
    pinRoot, netns: opts.netns, mode: stick ? 'stick' : 'bridge', interfaces: [], cpus, queues: opts.queues,
    stickOffset: opts.stickOffset, mapsCreated: loaded.created, mapsReused: loaded.reused, mapsReplaced: loaded.replaced,
    warnings, elapsedMs: 0,
  };
  try {
    // Maps first, programs second: no window where a redirect hits an empty cpumap slot.
    const ctx = { pinRoot };
    bpf.mapUpdateElem(mapFdOf('classify_ctl', ctx), u32(0), u32(0));
    fillCpuMaps(cpus, opts.queues, opts.stickOffset, ctx);

    const xdpFd = bpf.programFd(bpf.findProgram(loaded.obj, XDP_PROG));
    const tcFd = bpf.programFd(bpf.findProgram(loaded.obj, TC_PROG));
    for (const name of ifnames) {
      const entry = bpf.withNetns(opts.netns, () => {
        const idx = bpf.ifNameToIndex(name);
        const mode = attachXdp(idx, xdpFd, opts.xdpMode ?? 'auto', name, logger);
        const xdpProgId = bpf.xdpQueryId(idx, 0);
        // (Creating an existing clsact makes the kernel log an error through libbpf: skip it.)
        if (!preps.get(name)!.hasClsact) bpf.tcHookCreate(idx, name);
        const tcProgId = bpf.tcAttach(idx, bpf.BPF_TC_EGRESS, tcFd, TC_HANDLE, TC_PRIORITY, `${name} egress`);
        return { idx, mode, xdpProgId, tcProgId };
      });
      report.interfaces.push({
        name, ifindex: entry.idx, role: stick ? 'stick' : name === opts.downloadIf ? 'download' : 'upload',
        xdpMode: entry.mode, xdpProgId: entry.xdpProgId, tcProgId: entry.tcProgId, txQueues: preps.get(name)!.txQueues,
      });
    }
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

export interface DetachOptions {
  netns?: string;
  logger?: DataplaneLogger;
}

/** Remove our XDP program and our egress filter from each interface (clsact removed if then empty). */
export async function detachDataplane(ifaces: string[], opts: DetachOptions = {}): Promise<{ xdpRemoved: string[]; tcRemoved: string[] }> {
  const logger = log(opts.logger);
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
    const left = await run(opts.netns, 'tc', ['-j', 'filter', 'show', 'dev', name, 'egress'], false);
    const leftIn = await run(opts.netns, 'tc', ['-j', 'filter', 'show', 'dev', name, 'ingress'], false);
    const empty = (s: string | undefined) => { try { return (JSON.parse(s || '[]') as unknown[]).length === 0; } catch { return false; } };
    if (empty(left.stdout) && empty(leftIn.stdout)) bpf.withNetns(opts.netns, () => bpf.tcHookDestroy(idx, name));
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
  if (removed.length) log(opts.logger).info(`XDP detached from [${removed.join(', ')}]`);
  return removed;
}

/** Interfaces in the namespace that carry our XDP program or have a clsact qdisc. */
async function scanInterfaces(netns?: string): Promise<string[]> {
  const names = new Set<string>();
  const links = await run(netns, 'ip', ['-j', '-d', 'link', 'show'], false);
  try {
    for (const l of JSON.parse(links.stdout || '[]') as Array<{ ifname: string; xdp?: { prog?: { name?: string }; attached?: Array<{ prog?: { name?: string } }> } }>) {
      const progNames = [l.xdp?.prog?.name, ...(l.xdp?.attached ?? []).map((a) => a.prog?.name)];
      if (progNames.some((n) => n === XDP_PROG)) names.add(l.ifname);
    }
  } catch { /* ignore */ }
  const q = await run(netns, 'tc', ['-j', 'qdisc', 'show'], false);
  try {
    for (const d of JSON.parse(q.stdout || '[]') as Array<{ kind: string; dev: string }>) if (d.kind === 'clsact') names.add(d.dev);
  } catch { /* ignore */ }
  return [...names];
}

/**
 * Remove everything the dataplane installed: XDP programs, our egress filters (and empty clsact
 * qdiscs) on every interface carrying them in the namespace, and the pinned maps under pinRoot.
 * The mq/HTB tree is left alone.
 */
export async function teardownAll(opts: DetachOptions & MapContext = {}): Promise<{ interfaces: string[]; unpinned: string[] }> {
  const pinRoot = opts.pinRoot ?? DEFAULT_PIN_ROOT;
  const known = attached.get(pinRoot);
  const netns = opts.netns ?? known?.netns;
  const ifaces = new Set<string>(known?.ifaces ?? []);
  for (const n of await scanInterfaces(netns)) ifaces.add(n);
  const res = await detachDataplane([...ifaces], { netns, logger: opts.logger });
  forgetFds(pinRoot);
  const unpinned: string[] = [];
  if (existsSync(pinRoot)) {
    // Only our own pins: a bpffs root also holds kernel entries (maps.debug, progs.debug).
    const ours = new Set<string>(PINNED_MAPS);
    for (const f of readdirSync(pinRoot)) {
      if (!ours.has(f)) continue;
      rmSync(join(pinRoot, f), { force: true });
      unpinned.push(f);
    }
    try { rmdirSync(pinRoot); } catch { /* not empty: someone else's pins */ }
  }
  attached.delete(pinRoot);
  return { interfaces: [...new Set([...res.xdpRemoved, ...res.tcRemoved])], unpinned };
}

// ---------------------------------------------------------------------------------------------
// Mapping API

export interface MappingEntry {
  prefix: string;
  cpu: number;
  major: number;
  minor: number;
  tcHandle: number;
  circuitHash: bigint;
  deviceHash: bigint;
}

export interface UpdateResult { count: number; method: 'batch' | 'loop'; elapsedMs: number }

/** Insert or replace mappings (one syscall for all when the kernel supports batch ops), then invalidate the hot cache. */
export function updateMappings(mappings: IpMapping[], ctx?: MapContext): Promise<UpdateResult> {
  const t0 = performance.now();
  const n = mappings.length;
  const keys = Buffer.alloc(n * LPM_KEY_SIZE);
  const vals = Buffer.alloc(n * CLASS_INFO_SIZE);
  for (let i = 0; i < n; i++) {
    const m = mappings[i]!;
    writeLpmKey(m.prefix, keys, i * LPM_KEY_SIZE);
    writeClassInfo({ cpu: m.cpu, tcHandle: tcHandle(m.major, m.minor), circuitHash: m.circuitHash, deviceHash: m.deviceHash }, vals, i * CLASS_INFO_SIZE);
  }
  const method = bpf.mapUpdateBatch(mapFdOf('ip_to_class', ctx), keys, vals, n, LPM_KEY_SIZE, CLASS_INFO_SIZE);
  invalidateHotCacheSync(ctx);
  return Promise.resolve({ count: n, method, elapsedMs: performance.now() - t0 });
}

/** Delete mappings by prefix (missing ones are ignored), then invalidate the hot cache. */
export function deleteMappings(prefixes: string[], ctx?: MapContext): Promise<number> {
  const keys = Buffer.alloc(prefixes.length * LPM_KEY_SIZE);
  prefixes.forEach((p, i) => writeLpmKey(p, keys, i * LPM_KEY_SIZE));
  bpf.mapDeleteBatch(mapFdOf('ip_to_class', ctx), keys, prefixes.length, LPM_KEY_SIZE);
  invalidateHotCacheSync(ctx);
  return Promise.resolve(prefixes.length);
}

/** Remove every mapping. Returns how many were removed. */
export function clearMappings(ctx?: MapContext): Promise<number> {
  const fd = mapFdOf('ip_to_class', ctx);
  let total = 0;
  for (;;) {
    const d = bpf.mapDump(fd, LPM_KEY_SIZE, CLASS_INFO_SIZE);
    if (d.count === 0) break;
    bpf.mapDeleteBatch(fd, d.keys, d.count, LPM_KEY_SIZE);
    total += d.count;
  }
  invalidateHotCacheSync(ctx);
  return Promise.resolve(total);
}

/** Dump the LPM, decoded back to canonical prefixes, sorted by prefix text. */
export function listMappings(ctx?: MapContext): Promise<MappingEntry[]> {
  const d = bpf.mapDump(mapFdOf('ip_to_class', ctx), LPM_KEY_SIZE, CLASS_INFO_SIZE);
  const out: MappingEntry[] = new Array(d.count);
  for (let i = 0; i < d.count; i++) {
    const v = readClassInfo(d.values, i * CLASS_INFO_SIZE);
    out[i] = {
      prefix: decodeLpmKey(d.keys, i * LPM_KEY_SIZE),
      cpu: v.cpu, major: v.tcHandle >>> 16, minor: v.tcHandle & 0xffff, tcHandle: v.tcHandle,
      circuitHash: v.circuitHash, deviceHash: v.deviceHash,
    };
  }
  out.sort((a, b) => (a.prefix < b.prefix ? -1 : a.prefix > b.prefix ? 1 : 0));
  return Promise.resolve(out);
}

/** Number of mappings in the LPM (full dump; O(n)). */
export function countMappings(ctx?: MapContext): Promise<number> {
  return Promise.resolve(bpf.mapDump(mapFdOf('ip_to_class', ctx), LPM_KEY_SIZE, CLASS_INFO_SIZE).count);
}

function invalidateHotCacheSync(ctx?: MapContext): number {
  // Bump the epoch first: from here on every cached entry is a miss, whatever the wipe below races with.
  const epFd = mapFdOf('mapping_epoch', ctx);
  const v = Buffer.alloc(4);
  bpf.mapLookupElem(epFd, u32(0), v);
  const next = (v.readUInt32LE(0) + 1) >>> 0;
  bpf.mapUpdateElem(epFd, u32(0), u32(next));
  // Then drop the stale entries (memory hygiene; correctness comes from the epoch).
  const hcFd = mapFdOf('hot_cache', ctx);
  const d = bpf.mapDump(hcFd, ADDR_SIZE, HOT_ENTRY_SIZE);
  bpf.mapDeleteBatch(hcFd, d.keys, d.count, ADDR_SIZE);
  return next;
}

/** Bump the mapping epoch and wipe the hot cache. Returns the new epoch. */
export function invalidateHotCache(ctx?: MapContext): Promise<number> {
  return Promise.resolve(invalidateHotCacheSync(ctx));
}

/** Per-host counters summed over CPUs, keyed by IP text (IPv4 dotted, IPv6 RFC 5952). */
export function readHostCounters(ctx?: MapContext): Promise<Map<string, HostCounters>> {
  const ncpu = possibleCpus();
  const stride = ncpu * HOST_COUNTER_SIZE;
  const d = bpf.mapDump(mapFdOf('host_counters', ctx), ADDR_SIZE, stride, 1024);
  const out = new Map<string, HostCounters>();
  for (let i = 0; i < d.count; i++) out.set(decodeAddr(d.keys, i * ADDR_SIZE), sumHostCounters(d.values, i * stride, ncpu));
  return Promise.resolve(out);
}

/** Drop host counter entries (e.g. idle hosts); missing ones are ignored. */
export function deleteHostCounters(ips: string[], ctx?: MapContext): Promise<void> {
  const keys = Buffer.alloc(ips.length * ADDR_SIZE);
  ips.forEach((ip, i) => writeAddr(ip, keys, i * ADDR_SIZE));
  bpf.mapDeleteBatch(mapFdOf('host_counters', ctx), keys, ips.length, ADDR_SIZE);
  return Promise.resolve();
}

/** Pass-through switch: when on, XDP passes everything and tc leaves packets unclassified. */
export function setBypass(on: boolean, ctx?: MapContext): Promise<void> {
  bpf.mapUpdateElem(mapFdOf('classify_ctl', ctx), u32(0), u32(on ? 1 : 0));
  return Promise.resolve();
}

export function getBypass(ctx?: MapContext): Promise<boolean> {
  const v = Buffer.alloc(4);
  bpf.mapLookupElem(mapFdOf('classify_ctl', ctx), u32(0), v);
  return Promise.resolve(v.readUInt32LE(0) !== 0);
}

export interface DataplaneStats {
  xdpSeen: bigint;
  xdpRedirect: bigint;
  xdpUnshaped: bigint;
  tcSeen: bigint;
  tcMeta: bigint;
  tcLookup: bigint;
  tcUnclassified: bigint;
  metaFail: bigint;
}

/** Event counters of both programs, summed over CPUs. */
export function readStats(ctx?: MapContext): Promise<DataplaneStats> {
  const ncpu = possibleCpus();
  const v = Buffer.alloc(ncpu * 64);
  bpf.mapLookupElem(mapFdOf('dp_stats', ctx), u32(0), v);
  const sum = (i: number) => { let t = 0n; for (let c = 0; c < ncpu; c++) t += v.readBigUInt64LE(c * 64 + i * 8); return t; };
  return Promise.resolve({
    xdpSeen: sum(0), xdpRedirect: sum(1), xdpUnshaped: sum(2), tcSeen: sum(3), tcMeta: sum(4), tcLookup: sum(5),
    tcUnclassified: sum(6), metaFail: sum(7),
  });
}

/** Current mapping epoch (for diagnostics/tests). */
export function readEpoch(ctx?: MapContext): number {
  const v = Buffer.alloc(4);
  bpf.mapLookupElem(mapFdOf('mapping_epoch', ctx), u32(0), v);
  return v.readUInt32LE(0);
}

/** Number of hot-cache entries (diagnostics/tests). */
export function hotCacheSize(ctx?: MapContext): number {
  return bpf.mapDump(mapFdOf('hot_cache', ctx), ADDR_SIZE, HOT_ENTRY_SIZE).count;
}
