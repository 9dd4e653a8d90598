/**
 * Thin koffi bindings to the system libbpf (libbpf.so.1, API >= 1.0) and the few libc calls the
 * dataplane needs (setns, if_nametoindex, close). Every failure becomes a `DataplaneError` carrying the
 * errno name, the operation and an operator hint.
 *
 * Struct-taking calls (bpf_tc_hook / bpf_tc_opts, bpf_map_info) are passed as hand-laid-out Buffers;
 * their layouts (libbpf 1.x, x86-64/aarch64 LP64) are documented next to the encoder.
 * All calls are synchronous: they are short syscalls, and `withNetns` relies on no other JS running
 * while the thread is switched into another network namespace.
 */
import koffi from 'koffi';
import { constants as osConstants } from 'node:os';
import { openSync, closeSync } from 'node:fs';

// ---------------------------------------------------------------------------------------------
// Errors

const ERRNO_NAMES: Map<number, string> = new Map(
  Object.entries(osConstants.errno).map(([name, num]) => [num as number, name]),
);

export function errnoName(errno: number): string {
  return ERRNO_NAMES.get(Math.abs(errno)) ?? `E#${Math.abs(errno)}`;
}

const HINTS: Record<string, string> = {
  EPERM: 'run as root (CAP_BPF + CAP_NET_ADMIN); check that the kernel allows bpf() (kernel.unprivileged_bpf_disabled does not matter for root) and that memlock is not limited',
  EACCES: 'the verifier rejected the program or access was denied; rebuild with `bash dataplane/build.sh --force` and inspect the verifier log',
  ENOENT: 'object not found: is bpffs mounted at /sys/fs/bpf and has attachDataplane()/createPinnedMaps() run (pinned maps missing)?',
  ENODEV: 'interface does not exist (check `ip link`, or the network namespace)',
  EINVAL: 'the kernel rejected the arguments: pinned map ABI mismatch, unsupported map/program type, or bad key/value size; rebuild and re-attach',
  EEXIST: 'something is already attached or present; detach first (`ip link set dev IF xdp off`, `tc qdisc del dev IF clsact`)',
  EBUSY: 'another XDP program or mode is already attached; detach it (`ip link set dev IF xdp off`) or use the same mode',
  EOPNOTSUPP: 'the driver or kernel does not support this feature/mode; try xdpMode "generic"',
  ENOTSUPP: 'the driver or kernel does not support this feature/mode; try xdpMode "generic"',
  E2BIG: 'map full (max_entries reached) or value too large',
  ENOSPC: 'no space: map full, or veth peer has more TX queues than this end has RX queues',
  ENOMEM: 'out of memory (or locked-memory limit); raise `ulimit -l` or free memory',
  ENXIO: 'interface has no driver support for this operation',
  ERANGE: 'buffer too small / value out of range',
  ESRCH: 'no such program or map id (already removed?)',
  EBADF: 'stale file descriptor: re-open the pinned maps',
};

/**
 * Codes of the attach refusals (attachChecks.ts): the host or interface is not fit to shape, and the
 * message says what to change. They stand in `DataplaneError.code` instead of an errno name.
 */
export type RefusalCode =
  | 'VLAN_STRIPPING' // hardware VLAN tag stripping stays on where tags matter
  | 'XDP_NATIVE_UNAVAILABLE' // native XDP refused by the driver (xdp_mode = "native")
  | 'XDP_GENERIC_UNSUPPORTED' // generic XDP asked for on a kernel that cannot redirect it to a cpumap
  | 'TRAFFIC_CLASSES' // num_tc != 0 (DCB / mqprio / taprio) on a shaping interface
  | 'PLATFORM'; // kernel or libbpf too old

export interface Refusal {
  code: RefusalCode;
  /** The whole operator message: what is wrong, on which interface, and what to do. */
  message: string;
  /** The fix alone. */
  hint: string;
}

export class DataplaneError extends Error {
  readonly errno: number;
  readonly code: string;
  readonly op: string;
  readonly hint: string;
  /** Set for an attach refusal (the host is unfit, nothing failed in the kernel). */
  readonly refusal?: RefusalCode;
  constructor(op: string, errno: number, detail?: string, hint?: string, refusal?: Refusal) {
    const code = refusal?.code ?? errnoName(errno);
    const h = refusal?.hint ?? hint ?? HINTS[code] ?? 'see `dmesg` and `bpftool prog/map/net` output';
    super(refusal ? refusal.message : `${op} failed: ${code} (${libbpfStrerror(-Math.abs(errno))})${detail ? ` - ${detail}` : ''}. Hint: ${h}`);
    this.name = 'DataplaneError';
    this.errno = Math.abs(errno);
    this.code = code;
    this.op = op;
    this.hint = h;
    if (refusal) this.refusal = refusal.code;
  }

  /** An attach refusal: `code` is the refusal code, the message is the operator text as given. */
  static refuse(op: string, r: Refusal, errno: number = osConstants.errno.EINVAL): DataplaneError {
    return new DataplaneError(op, errno, undefined, undefined, r);
  }
}

// ---------------------------------------------------------------------------------------------
// Library loading

let lib: ReturnType<typeof bind> | undefined;
let ringbufSampleFn: koffi.IKoffiCType | undefined;

function bind() {
  let so: koffi.IKoffiLib;
  try {
    so = koffi.load('libbpf.so.1');
  } catch (e) {
    throw new DataplaneError('load libbpf.so.1', osConstants.errno.ENOENT, String(e),
      'install the libbpf runtime (Debian/Ubuntu: apt-get install libbpf1)');
  }
  const libc = koffi.load('libc.so.6');
  koffi.opaque('bpf_object');
  koffi.opaque('bpf_program');
  koffi.opaque('bpf_map');
  ringbufSampleFn = koffi.proto('int lqos_ringbuf_sample_fn(void *ctx, void *data, size_t size)');
  printFn = koffi.proto('int lqos_libbpf_print_fn(int level, const char *fmt, void *args)');
  return {
    majorVersion: so.func('uint32_t libbpf_major_version(void)'),
    minorVersion: so.func('uint32_t libbpf_minor_version(void)'),
    setPrint: so.func('void *libbpf_set_print(lqos_libbpf_print_fn *fn)'),
    vsnprintf: libc.func('int vsnprintf(char *buf, size_t size, const char *fmt, void *args)'),
    strerror: so.func('int libbpf_strerror(int err, void *buf, size_t size)'),
    numPossibleCpus: so.func('int libbpf_num_possible_cpus(void)'),
    progLoad: so.func('int bpf_prog_load(int prog_type, const char *prog_name, const char *license, const void *insns, size_t insn_cnt, const void *opts)'),
    objectOpenFile: so.func('bpf_object *bpf_object__open_file(const char *path, const void *opts)'),
    objectLoad: so.func('int bpf_object__load(bpf_object *obj)'),
    objectClose: so.func('void bpf_object__close(bpf_object *obj)'),
    findProgram: so.func('bpf_program *bpf_object__find_program_by_name(const bpf_object *obj, const char *name)'),
    findMap: so.func('bpf_map *bpf_object__find_map_by_name(const bpf_object *obj, const char *name)'),
    nextMap: so.func('bpf_map *bpf_object__next_map(const bpf_object *obj, const bpf_map *map)'),
    nextProgram: so.func('bpf_program *bpf_object__next_program(const bpf_object *obj, bpf_program *prog)'),
    programFd: so.func('int bpf_program__fd(const bpf_program *prog)'),
    programName: so.func('const char *bpf_program__name(const bpf_program *prog)'),
    programSetAutoload: so.func('int bpf_program__set_autoload(bpf_program *prog, bool autoload)'),
    programSetFlags: so.func('int bpf_program__set_flags(bpf_program *prog, uint32_t flags)'),
    programFlags: so.func('uint32_t bpf_program__flags(const bpf_program *prog)'),
    programSetLogBuf: so.func('int bpf_program__set_log_buf(bpf_program *prog, void *log_buf, size_t log_size)'),
    programSetLogLevel: so.func('int bpf_program__set_log_level(bpf_program *prog, uint32_t log_level)'),
    mapName: so.func('const char *bpf_map__name(const bpf_map *map)'),
    mapFd: so.func('int bpf_map__fd(const bpf_map *map)'),
    mapType: so.func('int bpf_map__type(const bpf_map *map)'),
    mapKeySize: so.func('uint32_t bpf_map__key_size(const bpf_map *map)'),
    mapValueSize: so.func('uint32_t bpf_map__value_size(const bpf_map *map)'),
    mapMaxEntries: so.func('uint32_t bpf_map__max_entries(const bpf_map *map)'),
    mapFlags: so.func('uint32_t bpf_map__map_flags(const bpf_map *map)'),
    mapSetPinPath: so.func('int bpf_map__set_pin_path(bpf_map *map, const char *path)'),
    mapPin: so.func('int bpf_map__pin(bpf_map *map, const char *path)'),
    mapUnpin: so.func('int bpf_map__unpin(bpf_map *map, const char *path)'),
    mapReuseFd: so.func('int bpf_map__reuse_fd(bpf_map *map, int fd)'),
    mapSetMaxEntries: so.func('int bpf_map__set_max_entries(bpf_map *map, uint32_t max_entries)'),
    mapSetInitialValue: so.func('int bpf_map__set_initial_value(bpf_map *map, const void *data, size_t size)'),
    objGet: so.func('int bpf_obj_get(const char *pathname)'),
    progGetFdById: so.func('int bpf_prog_get_fd_by_id(uint32_t id)'),
    objGetInfoByFd: so.func('int bpf_obj_get_info_by_fd(int fd, void *info, void *info_len)'),
    mapUpdateElem: so.func('int bpf_map_update_elem(int fd, const void *key, const void *value, uint64_t flags)'),
    mapLookupElem: so.func('int bpf_map_lookup_elem(int fd, const void *key, void *value)'),
    mapDeleteElem: so.func('int bpf_map_delete_elem(int fd, const void *key)'),
    mapGetNextKey: so.func('int bpf_map_get_next_key(int fd, const void *key, void *next_key)'),
    mapUpdateBatch: so.func('int bpf_map_update_batch(int fd, const void *keys, const void *values, void *count, const void *opts)'),
    mapDeleteBatch: so.func('int bpf_map_delete_batch(int fd, const void *keys, void *count, const void *opts)'),
    mapLookupBatch: so.func('int bpf_map_lookup_batch(int fd, void *in_batch, void *out_batch, void *keys, void *values, void *count, const void *opts)'),
    xdpAttach: so.func('int bpf_xdp_attach(int ifindex, int prog_fd, uint32_t flags, const void *opts)'),
    xdpDetach: so.func('int bpf_xdp_detach(int ifindex, uint32_t flags, const void *opts)'),
    xdpQueryId: so.func('int bpf_xdp_query_id(int ifindex, int flags, void *prog_id)'),
    tcHookCreate: so.func('int bpf_tc_hook_create(void *hook)'),
    tcHookDestroy: so.func('int bpf_tc_hook_destroy(void *hook)'),
    tcAttach: so.func('int bpf_tc_attach(const void *hook, void *opts)'),
    tcDetach: so.func('int bpf_tc_detach(const void *hook, const void *opts)'),
    tcQuery: so.func('int bpf_tc_query(const void *hook, void *opts)'),
    progTestRun: so.func('int bpf_prog_test_run_opts(int prog_fd, void *opts)'),
    // ring buffer (flow telemetry, dataplane/flows.ts)
    ringBufferNew: so.func('void *ring_buffer__new(int map_fd, lqos_ringbuf_sample_fn *sample_cb, void *ctx, const void *opts)'),
    ringBufferConsume: so.func('int ring_buffer__consume(void *rb)'),
    ringBufferFree: so.func('void ring_buffer__free(void *rb)'),
    clockGettime: libc.func('int clock_gettime(int clk, void *ts)'),
    close: libc.func('int close(int fd)'),
    mmap: libc.func('void *mmap(void *addr, size_t length, int prot, int flags, int fd, int64_t offset)'),
    munmap: libc.func('int munmap(void *addr, size_t length)'),
    setns: libc.func('int setns(int fd, int nstype)'),
    ifNameToIndex: libc.func('unsigned int if_nametoindex(const char *ifname)'),
  };
}

function L(): ReturnType<typeof bind> {
  if (!lib) {
    lib = bind();
    installPrinter(lib);
  }
  return lib;
}

// ---------------------------------------------------------------------------------------------
// libbpf's messages. libbpf prints warnings (among them the kernel's netlink "extack" text, e.g. why
// a driver refuses native XDP) through a print callback. Ours formats them as libbpf's default does
// (non-debug levels to stderr) and keeps them while `captureLibbpf` runs, so a failed attach can
// name the driver's reason.

let printFn: koffi.IKoffiCType | undefined;
let capturing: string[] | undefined;
/** Set while a call whose failure is expected runs (./libbpf.ts expectingFailure): its messages wait here. */
let held: string[] | undefined;

function installPrinter(l: ReturnType<typeof bind>): void {
  try {
    const cb = koffi.register((level: number, fmt: string, args: unknown) => {
      if (level >= 2) return 0; // LIBBPF_DEBUG
      const buf = Buffer.alloc(1024);
      l.vsnprintf(buf, buf.length, fmt, args);
      const end = buf.indexOf(0);
      const text = buf.toString('utf8', 0, end < 0 ? buf.length : end);
      if (held) {
        held.push(text);
        return 0;
      }
      capturing?.push(text.trim());
      process.stderr.write(text);
      return 0;
    }, koffi.pointer(printFn!));
    l.setPrint(cb); // kept registered for the life of the process
  } catch {
    /* libbpf's own printer stays in place: messages still reach stderr, only not the errors */
  }
}

/**
 * Run a libbpf call whose failure with one of `expected` (negative errno) is an answer, not a fault
 * (no clsact qdisc yet, no filter at our handle): libbpf's messages about it (the kernel's "Parent
 * Qdisc doesn't exists", "Cannot find specified filter chain") are dropped, so lqosd's journal does
 * not show them at every attach and teardown. Any other outcome prints them as usual.
 */
function expectingFailure(call: () => number, expected: readonly number[]): number {
  const outer = held;
  const messages: string[] = [];
  held = messages;
  let rc: number;
  try {
    rc = call();
  } finally {
    held = outer;
  }
  if (!expected.includes(rc)) {
    for (const m of messages) {
      if (held) held.push(m);
      else {
        capturing?.push(m.trim());
        process.stderr.write(m);
      }
    }
  }
  return rc;
}

/** Run `fn` and return libbpf's messages printed meanwhile (also when `fn` throws: attached as `.libbpf`). */
export function captureLibbpf<T>(fn: () => T): { result: T; messages: string[] } {
  L();
  const outer = capturing;
  const messages: string[] = [];
  capturing = messages;
  try {
    return { result: fn(), messages };
  } catch (e) {
    if (e && typeof e === 'object') (e as { libbpf?: string[] }).libbpf = messages;
    throw e;
  } finally {
    outer?.push(...messages);
    capturing = outer;
  }
}

/** The kernel's own words among libbpf's messages ("Kernel error message: ..."), if any. */
export function kernelReason(messages: string[]): string | undefined {
  for (const m of messages) {
    const hit = /Kernel error message:\s*(.+)$/.exec(m);
    if (hit) return hit[1]!.trim();
  }
  return undefined;
}

/** libbpf's version (libbpf_major_version / libbpf_minor_version of the loaded libbpf.so.1). */
export function libbpfVersion(): { major: number; minor: number } {
  const l = L();
  return { major: l.majorVersion(), minor: l.minorVersion() };
}

export function libbpfStrerror(err: number): string {
  try {
    const buf = Buffer.alloc(256);
    L().strerror(err, buf, buf.length);
    const end = buf.indexOf(0);
    return buf.toString('utf8', 0, end < 0 ? buf.length : end);
  } catch {
    return `errno ${Math.abs(err)}`;
  }
}

/** libbpf 1.x returns -errno; check and throw. */
function check(op: string, rc: number, detail?: string, hint?: string): number {
  if (rc < 0) throw new DataplaneError(op, -rc, detail, hint);
  return rc;
}

// ---------------------------------------------------------------------------------------------
// Constants (uapi)

export const BPF_ANY = 0;
export const BPF_NOEXIST = 1;
export const BPF_EXIST = 2;

export const XDP_FLAGS_UPDATE_IF_NOEXIST = 1 << 0;
export const XDP_FLAGS_SKB_MODE = 1 << 1;
export const XDP_FLAGS_DRV_MODE = 1 << 2;
export const XDP_FLAGS_HW_MODE = 1 << 3;

export const BPF_TC_INGRESS = 1;
export const BPF_TC_EGRESS = 2;
export const BPF_TC_F_REPLACE = 1;

export const BPF_MAP_TYPE = {
  HASH: 1, ARRAY: 2, PERCPU_HASH: 5, PERCPU_ARRAY: 6, LRU_HASH: 9, LRU_PERCPU_HASH: 10, LPM_TRIE: 11,
  CPUMAP: 16, RINGBUF: 27,
} as const;

export const CLONE_NEWNET = 0x40000000;

// ---------------------------------------------------------------------------------------------
// Objects, programs, maps

export type BpfObject = unknown;
export type BpfProgram = unknown;
export type BpfMap = unknown;

let possibleCpus: number | undefined;
/** Number of possible CPUs (the per-CPU value count of per-CPU maps); asked once, then cached. */
export function numPossibleCpus(): number {
  possibleCpus ??= check('libbpf_num_possible_cpus', L().numPossibleCpus());
  return possibleCpus;
}

export function objectOpenFile(path: string): BpfObject {
  koffi.errno(0);
  const obj = L().objectOpenFile(path, null);
  if (!obj) {
    const e = koffi.errno() || osConstants.errno.EINVAL;
    throw new DataplaneError(`bpf_object__open_file(${path})`, e, undefined,
      e === osConstants.errno.ENOENT ? 'object missing: run `bash dataplane/build.sh`' : undefined);
  }
  return obj;
}

export function objectLoad(obj: BpfObject, detail?: () => string): void {
  const rc = L().objectLoad(obj);
  if (rc < 0) throw new DataplaneError('bpf_object__load', -rc, detail?.());
}

export function objectClose(obj: BpfObject): void {
  L().objectClose(obj);
}

export function findProgram(obj: BpfObject, name: string): BpfProgram {
  const p = L().findProgram(obj, name);
  if (!p) throw new DataplaneError(`bpf_object__find_program_by_name(${name})`, osConstants.errno.ENOENT, undefined,
    'the object does not contain this program: rebuild with `bash dataplane/build.sh --force`');
  return p;
}

export function findMap(obj: BpfObject, name: string): BpfMap {
  const m = L().findMap(obj, name);
  if (!m) throw new DataplaneError(`bpf_object__find_map_by_name(${name})`, osConstants.errno.ENOENT, undefined,
    'the object does not contain this map: rebuild with `bash dataplane/build.sh --force`');
  return m;
}

export function listMaps(obj: BpfObject): BpfMap[] {
  const out: BpfMap[] = [];
  for (let m = L().nextMap(obj, null); m; m = L().nextMap(obj, m)) out.push(m);
  return out;
}

export function listPrograms(obj: BpfObject): BpfProgram[] {
  const out: BpfProgram[] = [];
  for (let p = L().nextProgram(obj, null); p; p = L().nextProgram(obj, p)) out.push(p);
  return out;
}

export function programFd(p: BpfProgram): number { return check('bpf_program__fd', L().programFd(p)); }
export function programName(p: BpfProgram): string { return L().programName(p) as string; }
export function programSetAutoload(p: BpfProgram, on: boolean): void {
  check('bpf_program__set_autoload', L().programSetAutoload(p, on));
}
export const BPF_PROG_TYPE_XDP = 6;
export const BPF_FUNC_XDP_ADJUST_META = 54;

/**
 * Whether this kernel lets programs of `progType` call helper `helperId` with a context and a small
 * negative number (r1 = ctx, r2 = -8), e.g. bpf_xdp_adjust_meta: a four-instruction program is loaded
 * and closed. (libbpf_probe_bpf_helper only knows the verifier's "unknown func" wording and calls a
 * helper refused with "program of this type cannot use helper" supported.)
 */
export function kernelAllowsHelper(progType: number, helperId: number): boolean {
  const insn = (code: number, dst: number, imm: number) => {
    const b = Buffer.alloc(8);
    b.writeUInt8(code, 0);
    b.writeUInt8(dst & 0x0f, 1);
    b.writeInt32LE(imm, 4);
    return b;
  };
  // mov r2, -8; call helper; mov r0, 2; exit
  const prog = Buffer.concat([insn(0xb7, 2, -8), insn(0x85, 0, helperId), insn(0xb7, 0, 2), insn(0x95, 0, 0)]);
  const fd = L().progLoad(progType, 'lqos_probe', 'GPL', prog, 4, null);
  if (fd >= 0) {
    closeFd(fd);
    return true;
  }
  if (-fd === osConstants.errno.EINVAL) return false;
  throw new DataplaneError('probe of a BPF helper (bpf_prog_load)', -fd);
}

/** BPF_F_XDP_HAS_FRAGS (uapi): the XDP program accepts multi-buffer frames (jumbo MTU in native mode). */
export const BPF_F_XDP_HAS_FRAGS = 1 << 5;

/** Add load flags to a program (before bpf_object__load). */
export function programAddFlags(p: BpfProgram, flags: number): void {
  const l = L();
  check('bpf_program__set_flags', l.programSetFlags(p, (l.programFlags(p) | flags) >>> 0));
}

/** The buffer must stay referenced until bpf_object__load returns. */
export function programSetLogBuf(p: BpfProgram, buf: Buffer, level = 1): void {
  check('bpf_program__set_log_buf', L().programSetLogBuf(p, buf, buf.length));
  check('bpf_program__set_log_level', L().programSetLogLevel(p, level));
}

export interface MapDef { name: string; type: number; keySize: number; valueSize: number; maxEntries: number; flags: number }

export function mapDef(m: BpfMap): MapDef {
  const l = L();
  return {
    name: l.mapName(m) as string,
    type: l.mapType(m),
    keySize: l.mapKeySize(m),
    valueSize: l.mapValueSize(m),
    maxEntries: l.mapMaxEntries(m),
    flags: l.mapFlags(m),
  };
}
export function mapFd(m: BpfMap): number { return check('bpf_map__fd', L().mapFd(m)); }
export function mapSetPinPath(m: BpfMap, path: string): void { check(`bpf_map__set_pin_path(${path})`, L().mapSetPinPath(m, path)); }
export function mapPin(m: BpfMap, path: string): void { check(`bpf_map__pin(${path})`, L().mapPin(m, path)); }
export function mapUnpin(m: BpfMap, path: string): void { check(`bpf_map__unpin(${path})`, L().mapUnpin(m, path)); }
export function mapReuseFd(m: BpfMap, fd: number): void { check('bpf_map__reuse_fd', L().mapReuseFd(m, fd)); }
export function mapSetMaxEntries(m: BpfMap, n: number): void { check('bpf_map__set_max_entries', L().mapSetMaxEntries(m, n)); }
export function mapSetInitialValue(m: BpfMap, data: Buffer): void {
  check('bpf_map__set_initial_value', L().mapSetInitialValue(m, data, data.length));
}

export function objGet(path: string): number {
  return check(`bpf_obj_get(${path})`, L().objGet(path));
}

/** A new fd holding the loaded program `id` (keeps it alive until closed). */
export function progFdById(id: number): number {
  return check(`bpf_prog_get_fd_by_id(${id})`, L().progGetFdById(id));
}

export function closeFd(fd: number): void {
  if (fd >= 0) L().close(fd);
}

/**
 * The name of loaded program `id` (struct bpf_prog_info: name@64[16]), or undefined when it is gone
 * or unreadable. How detaching tells our programs from another tool's on the same hook.
 */
export function progNameById(id: number): string | undefined {
  if (!id) return undefined;
  let fd = -1;
  try {
    fd = progFdById(id);
    return objName(objInfoByFd(fd, 256), 64);
  } catch {
    return undefined;
  } finally {
    closeFd(fd);
  }
}

/** Subset of struct bpf_map_info (uapi): type@0 id@4 key_size@8 value_size@12 max_entries@16 map_flags@20 name@24[16]. */
export interface MapInfo { type: number; id: number; keySize: number; valueSize: number; maxEntries: number; flags: number; name: string }

/** The kernel's info struct of a map or program fd (bpf_obj_get_info_by_fd), `bytes` long. */
function objInfoByFd(fd: number, bytes: number): Buffer {
  const info = Buffer.alloc(bytes);
  const len = Buffer.alloc(4);
  len.writeUInt32LE(info.length);
  check('bpf_obj_get_info_by_fd', L().objGetInfoByFd(fd, info, len));
  return info;
}

/** The object name (char[16], NUL-terminated unless full) at `offset` of an info struct. */
function objName(info: Buffer, offset: number): string {
  const end = info.indexOf(0, offset);
  return info.toString('utf8', offset, end < 0 || end > offset + 16 ? offset + 16 : end);
}

export function mapInfoByFd(fd: number): MapInfo {
  const info = objInfoByFd(fd, 128);
  return {
    type: info.readUInt32LE(0),
    id: info.readUInt32LE(4),
    keySize: info.readUInt32LE(8),
    valueSize: info.readUInt32LE(12),
    maxEntries: info.readUInt32LE(16),
    flags: info.readUInt32LE(20),
    name: objName(info, 24),
  };
}

// ---------------------------------------------------------------------------------------------
// Map element operations

export function mapUpdateElem(fd: number, key: Buffer, value: Buffer, flags = BPF_ANY): void {
  check('bpf_map_update_elem', L().mapUpdateElem(fd, key, value, flags));
}

/** Returns false when the key does not exist. */
export function mapLookupElem(fd: number, key: Buffer, value: Buffer): boolean {
  const rc = L().mapLookupElem(fd, key, value);
  if (rc === -osConstants.errno.ENOENT) return false;
  check('bpf_map_lookup_elem', rc);
  return true;
}

/** Returns false when the key did not exist. */
export function mapDeleteElem(fd: number, key: Buffer): boolean {
  const rc = L().mapDeleteElem(fd, key);
  if (rc === -osConstants.errno.ENOENT) return false;
  check('bpf_map_delete_elem', rc);
  return true;
}

/** Returns false at the end of the map. `key` null = first key. */
export function mapGetNextKey(fd: number, key: Buffer | null, next: Buffer): boolean {
  const rc = L().mapGetNextKey(fd, key, next);
  if (rc === -osConstants.errno.ENOENT) return false;
  check('bpf_map_get_next_key', rc);
  return true;
}

function batchUnsupported(rc: number): boolean {
  const e = -rc;
  return e === osConstants.errno.EINVAL || e === osConstants.errno.EOPNOTSUPP || e === 524 /* ENOTSUPP */;
}

/**
 * Update `count` elements (keys/values packed back to back). Uses BPF_MAP_UPDATE_BATCH when the
 * kernel supports it for this map type, otherwise one update per element.
 */
export function mapUpdateBatch(fd: number, keys: Buffer, values: Buffer, count: number, keySize: number, valueSize: number): 'batch' | 'loop' {
  if (count === 0) return 'batch';
  const cnt = Buffer.alloc(4);
  cnt.writeUInt32LE(count);
  const rc = L().mapUpdateBatch(fd, keys, values, cnt, null);
  if (rc === 0) return 'batch';
  const done = cnt.readUInt32LE(0);
  if (!batchUnsupported(rc) || done !== 0) check('bpf_map_update_batch', rc, `${done}/${count} elements written`);
  const up = L().mapUpdateElem;
  for (let i = 0; i < count; i++) {
    const r = up(fd, keys.subarray(i * keySize, (i + 1) * keySize), values.subarray(i * valueSize, (i + 1) * valueSize), BPF_ANY);
    if (r < 0) check('bpf_map_update_elem', r, `element ${i} of ${count}`);
  }
  return 'loop';
}

/** Delete `count` keys; missing keys are ignored. Batch where possible, else a loop. */
export function mapDeleteBatch(fd: number, keys: Buffer, count: number, keySize: number): void {
  if (count === 0) return;
  const cnt = Buffer.alloc(4);
  cnt.writeUInt32LE(count);
  const rc = L().mapDeleteBatch(fd, keys, cnt, null);
  if (rc === 0) return;
  // Batch delete stops at the first missing key (ENOENT) or is unsupported: finish one by one.
  const done = rc === -osConstants.errno.ENOENT || batchUnsupported(rc) ? cnt.readUInt32LE(0) : -1;
  if (done < 0) check('bpf_map_delete_batch', rc);
  for (let i = done; i < count; i++) mapDeleteElem(fd, keys.subarray(i * keySize, (i + 1) * keySize));
}

/**
 * Dump a whole map in chunks through caller-owned buffers (reused: no allocation per dump) with
 * BPF_MAP_LOOKUP_BATCH: after each batch `onChunk(n)` reads the `n` elements at the start of
 * `keys`/`values` (overwritten by the next batch). The batch size is what the buffers hold.
 * Returns the element count, or -1 (no call made) when the kernel has no batch lookup for this map.
 */
export function mapDumpChunks(fd: number, keySize: number, valueStride: number, keys: Buffer, values: Buffer, onChunk: (n: number) => void): number {
  const chunk = Math.min(Math.floor(keys.length / keySize), Math.floor(values.length / valueStride));
  const outBatch = Buffer.alloc(Math.max(keySize, 8));
  const inBatch = Buffer.alloc(outBatch.length);
  const cnt = Buffer.alloc(4);
  let total = 0;
  let first = true;
  for (;;) {
    cnt.writeUInt32LE(chunk);
    const rc = L().mapLookupBatch(fd, first ? null : inBatch, outBatch, keys, values, cnt, null);
    const n = cnt.readUInt32LE(0);
    if (rc < 0 && rc !== -osConstants.errno.ENOENT) {
      if (batchUnsupported(rc) && total === 0) return -1;
      check('bpf_map_lookup_batch', rc);
    }
    if (n > 0) onChunk(n);
    total += n;
    if (rc === -osConstants.errno.ENOENT) return total;
    outBatch.copy(inBatch);
    first = false;
  }
}

/**
 * Dump a whole map: returns packed keys and values. `valueStride` is the value bytes per element as
 * the kernel returns them (per-CPU maps: nCPU * round_up(value_size, 8)).
 * Uses BPF_MAP_LOOKUP_BATCH (mapDumpChunks, `chunk` elements per batch), falling back to mapWalk.
 */
export function mapDump(fd: number, keySize: number, valueStride: number, chunk = 4096): { keys: Buffer; values: Buffer; count: number } {
  const keys = Buffer.alloc(chunk * keySize);
  const values = Buffer.alloc(chunk * valueStride);
  const keyParts: Buffer[] = [];
  const valueParts: Buffer[] = [];
  const count = mapDumpChunks(fd, keySize, valueStride, keys, values, (n) => {
    keyParts.push(Buffer.from(keys.subarray(0, n * keySize)));
    valueParts.push(Buffer.from(values.subarray(0, n * valueStride)));
  });
  if (count < 0) return mapWalk(fd, keySize, valueStride);
  return { keys: Buffer.concat(keyParts), values: Buffer.concat(valueParts), count };
}

/** Dump a whole map with get_next_key + lookup (two syscalls per element): kernels without batch lookup. */
export function mapWalk(fd: number, keySize: number, valueStride: number): { keys: Buffer; values: Buffer; count: number } {
  const ks: Buffer[] = [];
  const vs: Buffer[] = [];
  let prev: Buffer | null = null;
  for (;;) {
    const next = Buffer.alloc(keySize);
    if (!mapGetNextKey(fd, prev, next)) break;
    const v = Buffer.alloc(valueStride);
    if (mapLookupElem(fd, next, v)) { ks.push(next); vs.push(v); }
    prev = next;
  }
  return { keys: Buffer.concat(ks), values: Buffer.concat(vs), count: ks.length };
}

// ---------------------------------------------------------------------------------------------
// XDP

export function xdpAttach(ifindex: number, progFd: number, flags: number, what: string): void {
  check(`bpf_xdp_attach(${what})`, L().xdpAttach(ifindex, progFd, flags, null));
}

/** Detach in the given mode; returns false if nothing was attached in that mode. */
export function xdpDetach(ifindex: number, flags: number, what: string): boolean {
  const rc = L().xdpDetach(ifindex, flags, null);
  if (rc === -osConstants.errno.ENOENT || rc === -osConstants.errno.EINVAL) return false;
  check(`bpf_xdp_detach(${what})`, rc);
  return true;
}

/** Program id attached in `flags` mode (0 = any mode / none attached → 0). */
export function xdpQueryId(ifindex: number, flags: number): number {
  const id = Buffer.alloc(4);
  check('bpf_xdp_query_id', L().xdpQueryId(ifindex, flags, id));
  return id.readUInt32LE(0);
}

// ---------------------------------------------------------------------------------------------
// tc (clsact + cls_bpf direct-action) through libbpf's netlink helpers.
//
// struct bpf_tc_hook (libbpf 1.x, LP64): size_t sz@0; int ifindex@8; enum attach_point@12;
//   __u32 parent@16; pad to 24.
// struct bpf_tc_opts: size_t sz@0; int prog_fd@8; __u32 flags@12; __u32 prog_id@16;
//   __u32 handle@20; __u32 priority@24; pad to 32.

function tcHook(ifindex: number, attachPoint: number): Buffer {
  const b = Buffer.alloc(24);
  b.writeBigUInt64LE(24n, 0);
  b.writeInt32LE(ifindex, 8);
  b.writeUInt32LE(attachPoint, 12);
  return b;
}

function tcOpts(progFd: number, flags: number, handle: number, priority: number): Buffer {
  const b = Buffer.alloc(32);
  b.writeBigUInt64LE(32n, 0);
  b.writeInt32LE(progFd, 8);
  b.writeUInt32LE(flags, 12);
  b.writeUInt32LE(handle, 20);
  b.writeUInt32LE(priority, 24);
  return b;
}

/** libbpf's answers for "no clsact qdisc" / "no filter at that handle" (expectingFailure). */
const NO_HOOK_OR_FILTER = [-osConstants.errno.ENOENT, -osConstants.errno.EINVAL];

/**
 * Create the clsact qdisc (ok if it already exists). Its messages are not hidden: callers create it
 * only when they saw none, so EEXIST then means another qdisc holds its handle (a plain `ingress`
 * qdisc), and the kernel's "Exclusivity flag on" line is the explanation.
 */
export function tcHookCreate(ifindex: number, what: string): void {
  const rc = L().tcHookCreate(tcHook(ifindex, BPF_TC_INGRESS | BPF_TC_EGRESS));
  if (rc === -osConstants.errno.EEXIST) return;
  check(`bpf_tc_hook_create(${what})`, rc);
}

/** Remove the clsact qdisc and every filter on it. Returns false if there was none. */
export function tcHookDestroy(ifindex: number, what: string): boolean {
  const rc = expectingFailure(() => L().tcHookDestroy(tcHook(ifindex, BPF_TC_INGRESS | BPF_TC_EGRESS)), NO_HOOK_OR_FILTER);
  if (rc === -osConstants.errno.ENOENT || rc === -osConstants.errno.EINVAL) return false;
  check(`bpf_tc_hook_destroy(${what})`, rc);
  return true;
}

/** Attach (or replace) a direct-action cls_bpf filter; returns the kernel program id. */
export function tcAttach(ifindex: number, attachPoint: number, progFd: number, handle: number, priority: number, what: string): number {
  const opts = tcOpts(progFd, BPF_TC_F_REPLACE, handle, priority);
  check(`bpf_tc_attach(${what})`, L().tcAttach(tcHook(ifindex, attachPoint), opts));
  return opts.readUInt32LE(16);
}

export function tcDetach(ifindex: number, attachPoint: number, handle: number, priority: number, what: string): boolean {
  const rc = expectingFailure(() => L().tcDetach(tcHook(ifindex, attachPoint), tcOpts(0, 0, handle, priority)), NO_HOOK_OR_FILTER);
  if (rc === -osConstants.errno.ENOENT || rc === -osConstants.errno.EINVAL) return false;
  check(`bpf_tc_detach(${what})`, rc);
  return true;
}

/** Program id of our filter, or 0 when absent. */
export function tcQuery(ifindex: number, attachPoint: number, handle: number, priority: number): number {
  const opts = tcOpts(0, 0, handle, priority);
  const rc = expectingFailure(() => L().tcQuery(tcHook(ifindex, attachPoint), opts), NO_HOOK_OR_FILTER);
  if (rc < 0) return 0;
  return opts.readUInt32LE(16);
}

// ---------------------------------------------------------------------------------------------
// BPF_PROG_TEST_RUN (tests and diagnostics)
//
// struct bpf_test_run_opts (libbpf 1.x, LP64): size_t sz@0; data_in@8; data_out@16;
//   u32 data_size_in@24; u32 data_size_out@28; ctx_in@32; ctx_out@40; u32 ctx_size_in@48;
//   u32 ctx_size_out@52; u32 retval@56; int repeat@60; u32 duration@64; u32 flags@68; int cpu@72;
//   u32 batch_size@76; size 80.

export interface TestRunResult { retval: number; data: Buffer; ctx: Buffer | null }

/** struct bpf_test_run_opts for one frame (`out` receives the resulting frame). */
function testRunOpts(data: Buffer, out: Buffer, ctxIn: Buffer | null): Buffer {
  const o = Buffer.alloc(80);
  o.writeBigUInt64LE(80n, 0);
  o.writeBigUInt64LE(koffi.address(data), 8);
  o.writeBigUInt64LE(koffi.address(out), 16);
  o.writeUInt32LE(data.length, 24);
  o.writeUInt32LE(out.length, 28);
  if (ctxIn) {
    o.writeBigUInt64LE(koffi.address(ctxIn), 32);
    o.writeUInt32LE(ctxIn.length, 48);
  }
  return o;
}

export function progTestRun(progFd: number, data: Buffer, ctxIn: Buffer | null, ctxOutSize = 0): TestRunResult {
  const out = Buffer.alloc(data.length + 256);
  const ctxOut = ctxOutSize ? Buffer.alloc(ctxOutSize) : null;
  const o = testRunOpts(data, out, ctxIn);
  if (ctxOut) {
    o.writeBigUInt64LE(koffi.address(ctxOut), 40);
    o.writeUInt32LE(ctxOut.length, 52);
  }
  check('bpf_prog_test_run_opts', L().progTestRun(progFd, o));
  return { retval: o.readUInt32LE(56), data: out.subarray(0, o.readUInt32LE(28)), ctx: ctxOut };
}

// ---------------------------------------------------------------------------------------------
// Interfaces and network namespaces

/** ifindex of `name` in the current network namespace of this thread; throws ENODEV if missing. */
export function ifNameToIndex(name: string): number {
  const idx = L().ifNameToIndex(name) as number;
  if (!idx) throw new DataplaneError(`if_nametoindex(${name})`, osConstants.errno.ENODEV);
  return idx;
}

/**
 * Run `fn` with this (the main) thread switched into network namespace `netns` (a name under
 * /var/run/netns or an absolute path). Synchronous on purpose: nothing else may run meanwhile.
 * libbpf's netlink sockets and if_nametoindex then act inside that namespace.
 */
export function withNetns<T>(netns: string | undefined, fn: () => T): T {
  if (!netns) return fn();
  const target = netns.startsWith('/') ? netns : `/var/run/netns/${netns}`;
  const l = L();
  const self = openSync('/proc/thread-self/ns/net', 'r');
  let nsFd = -1;
  try {
    try {
      nsFd = openSync(target, 'r');
    } catch {
      throw new DataplaneError(`open netns ${target}`, osConstants.errno.ENOENT, undefined, 'network namespace does not exist (`ip netns list`)');
    }
    if (l.setns(nsFd, CLONE_NEWNET) !== 0) throw new DataplaneError(`setns(${netns})`, koffi.errno());
    try {
      return fn();
    } finally {
      if (l.setns(self, CLONE_NEWNET) !== 0) {
        // Never continue in the wrong namespace.
        process.stderr.write(`lqos dataplane: FATAL: cannot return to the original network namespace (errno ${koffi.errno()})\n`);
        process.abort();
      }
    }
  } finally {
    if (nsFd >= 0) closeSync(nsFd);
    closeSync(self);
  }
}

// ---------------------------------------------------------------------------------------------
// BPF ring buffer (libbpf ring_buffer__*), consumed synchronously: ring_buffer__consume() runs the
// JS callback on this thread for every pending record; no epoll/poll thread is involved.

export interface RingBufferReader {
  /** Process every pending record; returns how many were consumed. */
  consume(): number;
  /** Free the ring buffer manager and the callback (idempotent). */
  close(): void;
}

/** Open a consumer on a BPF_MAP_TYPE_RINGBUF fd. `onRecord` receives a copy of each record. */
export function ringBufferOpen(mapFd: number, onRecord: (rec: Buffer) => void): RingBufferReader {
  const l = L();
  const cb = koffi.register((_ctx: unknown, data: unknown, size: number | bigint) => {
    try {
      onRecord(Buffer.from(koffi.view(data, Number(size))).subarray(0));
    } catch {
      /* a throwing consumer must not unwind through libbpf */
    }
    return 0;
  }, koffi.pointer(ringbufSampleFn!));
  koffi.errno(0);
  const rb = l.ringBufferNew(mapFd, cb, null, null);
  if (!rb) {
    koffi.unregister(cb);
    throw new DataplaneError('ring_buffer__new', koffi.errno() || osConstants.errno.EINVAL);
  }
  let open = true;
  return {
    consume() {
      if (!open) return 0;
      return check('ring_buffer__consume', l.ringBufferConsume(rb));
    },
    close() {
      if (!open) return;
      open = false;
      l.ringBufferFree(rb);
      koffi.unregister(cb);
    },
  };
}

// ---------------------------------------------------------------------------------------------
// Memory-mapped BPF arrays (BPF_F_MMAPABLE)

export interface MappedMap {
  /** The map's data, in place (no copy): valid until `unmap()`. */
  readonly bytes: Buffer;
  unmap(): void;
}

const PROT_READ = 1, PROT_WRITE = 2, MAP_SHARED = 1;

/**
 * Map `length` bytes of a BPF_F_MMAPABLE array (its values, densely packed) into this process,
 * shared and read-write, as libbpf maps its own global-data arrays. The Buffer must not be touched
 * after `unmap()`.
 */
export function mmapMap(fd: number, length: number): MappedMap {
  const l = L();
  koffi.errno(0);
  const p = l.mmap(null, length, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  // MAP_FAILED is (void *)-1.
  if (!p || koffi.address(p) === 0xffffffffffffffffn) throw new DataplaneError('mmap of a BPF array', koffi.errno() || osConstants.errno.EINVAL);
  let mapped = true;
  return {
    bytes: Buffer.from(koffi.view(p, length)),
    unmap() {
      if (!mapped) return;
      mapped = false;
      l.munmap(p, length);
    },
  };
}

/** CLOCK_BOOTTIME in ns: the clock of bpf_ktime_get_boot_ns() (flow/host last_seen). */
export function bootTimeNs(): bigint {
  const ts = Buffer.alloc(16);
  check('clock_gettime(CLOCK_BOOTTIME)', L().clockGettime(7, ts));
  return ts.readBigInt64LE(0) * 1_000_000_000n + ts.readBigInt64LE(8);
}

/**
 * Run a BPF_PROG_TYPE_SYSCALL program once (BPF_PROG_TEST_RUN with only a context: the kernel
 * refuses data, repeat and duration for this type). `ctx` is in/out: the program may write to it.
 * Returns the program's return value.
 */
export function progRunSyscall(progFd: number, ctx: Buffer): number {
  const o = Buffer.alloc(80);
  o.writeBigUInt64LE(80n, 0);
  o.writeBigUInt64LE(koffi.address(ctx), 32);
  o.writeUInt32LE(ctx.length, 48);
  check('bpf_prog_test_run_opts', L().progTestRun(progFd, o));
  return o.readUInt32LE(56);
}

/** BPF_PROG_TEST_RUN with `repeat` iterations: returns the kernel's mean duration per run (ns). */
export function progTestRunRepeat(progFd: number, data: Buffer, ctxIn: Buffer | null, repeat: number): { retval: number; durationNs: number } {
  const out = Buffer.alloc(data.length + 256);
  const o = testRunOpts(data, out, ctxIn);
  o.writeInt32LE(repeat, 60);
  check('bpf_prog_test_run_opts', L().progTestRun(progFd, o));
  return { retval: o.readUInt32LE(56), durationNs: o.readUInt32LE(64) };
}
