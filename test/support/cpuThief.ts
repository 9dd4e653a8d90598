/**
 * Takes every CPU away `awayMs` at a time, `timesPerSecond` times a second, as a busy hypervisor does
 * to a VM (the "steal" of /proc/stat): test/support/cpuThief.bpf.c spins with interrupts off in a
 * per-CPU cpu-clock perf event. Nothing runs on the CPU meanwhile, softirqs and qdisc timers included,
 * which a busy loop in user space cannot do. Everything is tied to this process's file descriptors:
 * stop() (or the process ending) gives the CPUs back.
 *
 * The object is built on first use with clang (installed by scripts/setup) into a temporary directory.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execFileSync } from 'node:child_process';
import koffi from 'koffi';
import { findProgram, objectClose, objectLoad, objectOpenFile, numPossibleCpus, type BpfObject } from '../../dataplane/libbpf.ts';

const SOURCE = join(import.meta.dirname, 'cpuThief.bpf.c');
const PERF_TYPE_SOFTWARE = 1;
const PERF_COUNT_SW_CPU_CLOCK = 0;
const PERF_FLAG_FD_CLOEXEC = 8;
const NR_PERF_EVENT_OPEN = 298; // x86_64

let native: { syscall: koffi.KoffiFunction; attachPerfEvent: koffi.KoffiFunction; linkDestroy: koffi.KoffiFunction } | undefined;
function bindNative() {
  if (native) return native;
  const libbpf = koffi.load('libbpf.so.1');
  const libc = koffi.load('libc.so.6');
  native = {
    syscall: libc.func('long syscall(long number, ...)'),
    attachPerfEvent: libbpf.func('void *bpf_program__attach_perf_event(void *prog, int pfd)'),
    linkDestroy: libbpf.func('int bpf_link__destroy(void *link)'),
  };
  return native;
}

/** `perf_event_attr` (the 64-byte first version): a software cpu-clock event firing every `periodNs`. */
function cpuClockAttr(periodNs: number): Buffer {
  const a = Buffer.alloc(64);
  a.writeUInt32LE(PERF_TYPE_SOFTWARE, 0);
  a.writeUInt32LE(64, 4);
  a.writeBigUInt64LE(BigInt(PERF_COUNT_SW_CPU_CLOCK), 8);
  a.writeBigUInt64LE(BigInt(Math.round(periodNs)), 16);
  return a;
}

export interface CpuThief {
  readonly awayMs: number;
  readonly timesPerSecond: number;
  stop(): void;
}

/** Starts taking the CPUs away; throws (naming what failed) when the kernel refuses. */
export function takeCpus(opts: { awayMs: number; timesPerSecond: number }): CpuThief {
  const { awayMs, timesPerSecond } = opts;
  if (!(awayMs > 0 && timesPerSecond > 0 && awayMs * timesPerSecond <= 500)) throw new Error(`takeCpus: ${awayMs} ms × ${timesPerSecond}/s would take more than half of each CPU`);
  const n = bindNative();
  const dir = mkdtempSync(join(tmpdir(), 'lqos-cpu-thief-'));
  let obj: BpfObject | undefined;
  const links: unknown[] = [];
  const stop = () => {
    for (const l of links.splice(0)) n.linkDestroy(l);
    if (obj) objectClose(obj);
    obj = undefined;
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    const out = join(dir, 'cpu_thief.o');
    execFileSync('clang', ['-target', 'bpf', '-O2', '-g', `-DAWAY_NS=${Math.round(awayMs * 1e6)}`, '-I', `/usr/include/${process.arch === 'x64' ? 'x86_64' : process.arch}-linux-gnu`, '-c', SOURCE, '-o', out], { stdio: ['ignore', 'ignore', 'pipe'] });
    obj = objectOpenFile(out);
    objectLoad(obj);
    const prog = findProgram(obj, 'take_cpu');
    const attr = cpuClockAttr(1e9 / timesPerSecond);
    for (let cpu = 0; cpu < numPossibleCpus(); cpu++) {
      const fd = Number(n.syscall(NR_PERF_EVENT_OPEN, 'void *', attr, 'int', -1, 'int', cpu, 'int', -1, 'unsigned long', PERF_FLAG_FD_CLOEXEC));
      if (fd < 0) {
        if (cpu > 0) continue; // a possible CPU that is offline
        throw new Error(`takeCpus: perf_event_open on CPU ${cpu} failed`);
      }
      const link = n.attachPerfEvent(prog, fd);
      if (!link) throw new Error(`takeCpus: attaching to the cpu-clock event of CPU ${cpu} failed`);
      links.push(link);
    }
  } catch (e) {
    stop();
    throw e;
  }
  return { awayMs, timesPerSecond, stop };
}

/**
 * Spins on this thread for `ms` and returns the gaps in it longer than `longerThanMs`: what a thief
 * took (and whatever else preempted it). Blocks the event loop meanwhile.
 */
export function gapsWhileSpinning(ms: number, longerThanMs: number): number[] {
  const gaps: number[] = [];
  const end = performance.now() + ms;
  let last = performance.now();
  for (;;) {
    const now = performance.now();
    if (now - last > longerThanMs) gaps.push(now - last);
    last = now;
    if (now > end) return gaps;
  }
}
