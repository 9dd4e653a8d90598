/**
 * The BPF object dataplane/build/lqos_kern.o: built on demand (build.sh), opened with its maps pinned
 * under the pin root (bpffs mounted if needed; pins with an old layout replaced), configured and
 * loaded. attach.ts attaches the loaded programs; `loadPrograms` keeps them for BPF_PROG_TEST_RUN.
 */
import { execa } from 'execa';
import { existsSync, readFileSync, unlinkSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { REPO_ROOT } from '../lib/util/paths.ts';
import * as bpf from './libbpf.ts';
import { DataplaneError } from './libbpf.ts';
import { ABI_VERSION, MAX_CPUS, encodeCfg, encodeU32, type CfgValues } from './abi.ts';
import { dataplaneLogger, type DataplaneLogger } from './log.ts';
import { ABI_MAP, PINNED_MAPS, pinRootOf, pinnedAbiVersion, shapingFds, type MapContext } from './pinned.ts';

// Relative to the installation, not to this file: the compiled bundle (build/bin/) runs it from elsewhere.
const HERE = join(REPO_ROOT, 'dataplane');
export const OBJECT_PATH = join(HERE, 'build', 'lqos_kern.o');
export const BUILD_SCRIPT = join(HERE, 'build.sh');
export const XDP_PROG = 'lqos_xdp';
/** The same XDP program without bpf_xdp_adjust_meta, for kernels that refuse XDP that helper (lqos_kern.c). */
export const XDP_PROG_NO_META = 'lqos_xdp_nometa';
export const XDP_PROGRAMS: readonly string[] = [XDP_PROG, XDP_PROG_NO_META];
export const TC_PROG = 'lqos_tc_egress';
export const TC_INGRESS_PROG = 'lqos_tc_ingress';
export const CFG_MAP = '.data.cfg';

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

/** bpffs mounted and the object built: everything loading needs from the system. */
export async function ensureObjectReady(): Promise<void> {
  await ensureBpffs();
  await ensureBuilt();
}

export function requireRoot(): void {
  if (typeof process.getuid === 'function' && process.getuid() !== 0) {
    throw new DataplaneError('dataplane attach', 1, 'not running as root', 'run as root (or with CAP_BPF, CAP_NET_ADMIN, CAP_SYS_ADMIN)');
  }
}

let xdpChoice: string | undefined;

/** Remember the XDP variant to load from now on (the loader's fallback below; tests simulate a wrong probe). */
export function setXdpProgramChoice(name: string): void {
  if (!XDP_PROGRAMS.includes(name)) throw new Error(`no XDP program ${name} in the object`);
  xdpChoice = name;
}

/** The verifier refused lqos_xdp for bpf_xdp_adjust_meta ("program of this type cannot use helper"). */
function refusesAdjustMeta(e: unknown): boolean {
  return e instanceof DataplaneError && e.code === 'EINVAL' && /cannot use helper bpf_xdp_adjust_meta/.test(e.message);
}

/**
 * The XDP program this kernel loads (probed once per process): lqos_xdp, or lqos_xdp_nometa where the
 * verifier refuses bpf_xdp_adjust_meta to XDP programs; tc then classifies each redirected frame itself.
 */
export function xdpProgramName(): string {
  xdpChoice ??= bpf.kernelAllowsHelper(bpf.BPF_PROG_TYPE_XDP, bpf.BPF_FUNC_XDP_ADJUST_META) ? XDP_PROG : XDP_PROG_NO_META;
  return xdpChoice;
}

export interface LoadedObject {
  obj: bpf.BpfObject;
  /** The XDP program loaded (xdpProgramName); '' when only the maps were created. */
  xdpProg: string;
  created: string[];
  reused: string[];
  replaced: string[];
}

function mapTypeName(t: number): string {
  const e = Object.entries(bpf.BPF_MAP_TYPE).find(([, v]) => v === t);
  return e ? e[0] : String(t);
}

/** Keep an existing pin whose definition matches the object's map; unlink it otherwise. */
function checkExistingPin(pin: string, def: bpf.MapDef, logger: DataplaneLogger): 'reused' | 'replaced' {
  const fd = bpf.objGet(pin);
  try {
    const info = bpf.mapInfoByFd(fd);
    const same = info.type === def.type && info.keySize === def.keySize && info.valueSize === def.valueSize &&
      info.maxEntries === def.maxEntries && info.flags === def.flags;
    if (same) return 'reused';
    logger.warn(`pinned map ${pin} has an old layout (type ${mapTypeName(info.type)} key ${info.keySize} value ${info.valueSize} max ${info.maxEntries} flags ${info.flags}); ` +
      `replacing it with type ${mapTypeName(def.type)} key ${def.keySize} value ${def.valueSize} max ${def.maxEntries} flags ${def.flags} - its contents are lost`);
    unlinkSync(pin);
    return 'replaced';
  } finally {
    bpf.closeFd(fd);
  }
}

/**
 * Maps pinned by another ABI version may have the same sizes with other meanings: unlink every pin
 * of ours so that the load creates them afresh (lqosd rewrites the mappings after attaching).
 */
function dropOtherAbi(pinRoot: string, res: LoadedObject, logger: DataplaneLogger): void {
  const found = pinnedAbiVersion(pinRoot);
  if (found === null || found === ABI_VERSION) return;
  logger.warn(`dataplane maps of ABI v${found} under ${pinRoot} replaced by v${ABI_VERSION}: mappings will be rewritten, counters start from zero`);
  for (const name of PINNED_MAPS) {
    const pin = join(pinRoot, name);
    if (!existsSync(pin)) continue;
    unlinkSync(pin);
    res.replaced.push(name);
  }
}

/** Point every named map of the object at its pin under pinRoot (sizing the cpumap first). */
function pinMaps(res: LoadedObject, pinRoot: string, logger: DataplaneLogger): void {
  mkdirSync(pinRoot, { recursive: true });
  dropOtherAbi(pinRoot, res, logger);
  for (const m of bpf.listMaps(res.obj)) {
    // The kernel caps a cpumap at NR_CPUS entries: size it to the possible CPUs.
    if (bpf.mapDef(m).name === 'cpu_map') bpf.mapSetMaxEntries(m, Math.min(bpf.numPossibleCpus(), MAX_CPUS));
    const def = bpf.mapDef(m);
    if (!(PINNED_MAPS as readonly string[]).includes(def.name)) continue;
    const pin = join(pinRoot, def.name);
    if (existsSync(pin)) res[checkExistingPin(pin, def, logger)].push(def.name);
    else if (!res.replaced.includes(def.name)) res.created.push(def.name);
    bpf.mapSetPinPath(m, pin);
  }
}

/**
 * Disable the programs (maps only) or give each a verifier log buffer; of the two XDP variants only
 * `xdpProg` is loaded. Returns the buffers.
 */
function preparePrograms(obj: bpf.BpfObject, programs: boolean, xdpProg: string): Buffer[] {
  const logBufs: Buffer[] = [];
  for (const p of bpf.listPrograms(obj)) {
    const name = bpf.programName(p);
    if (!programs || (XDP_PROGRAMS.includes(name) && name !== xdpProg)) bpf.programSetAutoload(p, false);
    else {
      const buf = Buffer.alloc(256 * 1024);
      logBufs.push(buf);
      bpf.programSetLogBuf(p, buf, 0);
    }
  }
  return logBufs;
}

/**
 * Open the object, point every named map at its pin (replacing pins whose definition changed),
 * set the program configuration, and load. With `programs = false` only the maps are created.
 * Cached fds of the pin root are closed first: the pins may be replaced. The XDP variant is
 * `xdpProg`, else xdpProgramName()'s; when the verifier refuses lqos_xdp for its metadata helper
 * although the probe allowed it (a probe that does not match this kernel's rules), the load is
 * repeated once with lqos_xdp_nometa, which is then kept for this process.
 */
export function openAndLoad(
  pinRoot: string, cfg: Buffer | null, programs: boolean, logger: DataplaneLogger, beforeLoad?: (obj: bpf.BpfObject, xdpProg: string) => void, xdpProg?: string,
): LoadedObject {
  const chosen = programs ? (xdpProg ?? xdpProgramName()) : '';
  try {
    return loadOnce(pinRoot, cfg, programs, chosen, logger, beforeLoad);
  } catch (e) {
    if (xdpProg !== undefined || chosen !== XDP_PROG || !refusesAdjustMeta(e)) throw e;
    logger.warn(`the verifier refused ${XDP_PROG} for bpf_xdp_adjust_meta although the probe allowed it; loading ${XDP_PROG_NO_META} (tc looks each redirected frame up itself)`);
    setXdpProgramChoice(XDP_PROG_NO_META);
    const res = loadOnce(pinRoot, cfg, programs, XDP_PROG_NO_META, logger, beforeLoad);
    // Pins the first attempt replaced (old layout, other ABI) are gone now: still replaced, not created.
    const earlier = (e as { replacedPins?: string[] }).replacedPins ?? [];
    res.created = res.created.filter((n) => !earlier.includes(n));
    res.replaced = [...new Set([...earlier, ...res.replaced])];
    return res;
  }
}

function loadOnce(
  pinRoot: string, cfg: Buffer | null, programs: boolean, xdpProg: string, logger: DataplaneLogger, beforeLoad?: (obj: bpf.BpfObject, xdpProg: string) => void,
): LoadedObject {
  shapingFds.forget(pinRoot);
  const obj = bpf.objectOpenFile(OBJECT_PATH);
  const res: LoadedObject = { obj, xdpProg, created: [], reused: [], replaced: [] };
  try {
    pinMaps(res, pinRoot, logger);
    if (cfg) bpf.mapSetInitialValue(bpf.findMap(obj, CFG_MAP), cfg);
    const logBufs = preparePrograms(obj, programs, res.xdpProg);
    beforeLoad?.(obj, xdpProg); // e.g. attach.ts: load flags of a program (BPF_F_XDP_HAS_FRAGS for native XDP)
    bpf.objectLoad(obj, () => {
      const text = logBufs.map((b) => b.toString('utf8', 0, Math.max(0, b.indexOf(0)))).join('\n').trim();
      return text ? `verifier log (tail): ${text.slice(-1500)}` : '';
    });
    // Only now are the pinned maps complete and in this layout: stamp them.
    bpf.mapUpdateElem(bpf.mapFd(bpf.findMap(obj, ABI_MAP)), encodeU32(0), encodeU32(ABI_VERSION));
    return res;
  } catch (e) {
    bpf.objectClose(obj);
    if (e && typeof e === 'object') (e as { replacedPins?: string[] }).replacedPins = res.replaced;
    throw e;
  }
}

type LoadContext = MapContext & { logger?: DataplaneLogger; /** Tests: load this XDP variant instead of xdpProgramName()'s. */ xdpProgram?: string };

async function loadObject(ctx: LoadContext, cfg: Buffer | null, programs: boolean): Promise<LoadedObject> {
  requireRoot();
  await ensureObjectReady();
  return openAndLoad(pinRootOf(ctx), cfg, programs, dataplaneLogger(ctx.logger), undefined, ctx.xdpProgram);
}

/** Create (or reuse) the pinned maps without loading or attaching any program. */
export async function createPinnedMaps(ctx: LoadContext = {}): Promise<{ created: string[]; reused: string[]; replaced: string[] }> {
  const r = await loadObject(ctx, null, false);
  bpf.objectClose(r.obj);
  return { created: r.created, reused: r.reused, replaced: r.replaced };
}

export interface LoadedPrograms {
  xdpFd: number;
  /** Which XDP variant xdpFd is (XDP_PROG or XDP_PROG_NO_META). */
  xdpProg: string;
  tcFd: number;
  /** The forwarding program (tc ingress: XDP bridge / stick). */
  ingressFd: number;
  /** Close the object (programs unload unless attached somewhere). */
  close(): void;
}

/**
 * Load the object with an explicit configuration and keep it open, without attaching anything:
 * for BPF_PROG_TEST_RUN based tests and diagnostics. Maps are pinned under pinRoot as usual.
 */
export async function loadPrograms(cfg: CfgValues, ctx: LoadContext = {}): Promise<LoadedPrograms> {
  const loaded = await loadObject(ctx, encodeCfg(cfg), true);
  return {
    xdpFd: bpf.programFd(bpf.findProgram(loaded.obj, loaded.xdpProg)),
    xdpProg: loaded.xdpProg,
    tcFd: bpf.programFd(bpf.findProgram(loaded.obj, TC_PROG)),
    ingressFd: bpf.programFd(bpf.findProgram(loaded.obj, TC_INGRESS_PROG)),
    close: () => bpf.objectClose(loaded.obj),
  };
}
