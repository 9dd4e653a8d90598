/**
 * What the machine spent its CPUs on while a lab measurement ran: /proc/stat (busy and hypervisor
 * steal time) and every process's CPU time (/proc/<pid>/stat), read at the start and the end.
 *
 * A lab rate can only fall short of its plan for two reasons: the shaper is wrong, or the 2-CPU
 * machine was busy with something else (measured 2026-12-06: one busy loop beside the lab changes
 * nothing, two take 5–30 % off the circuits). The report says which: the lab's own work (iperf3,
 * the softirq and cpumap kernel threads, lqosd, this test process) is told apart from everything
 * else, and steal is counted as not ours.
 */
import { readFileSync, readdirSync } from 'node:fs';
import { cpus } from 'node:os';
import { isLqosdCmdline } from '../../lab/labEnv.ts';

/** Clock ticks per second of /proc times (USER_HZ; 100 on Linux). */
const TICKS = 100;

export interface CpuTimes {
  /** Every tick of the `cpu` line, and of it: idle + iowait, and steal. */
  total: number;
  idle: number;
  steal: number;
}

/** The aggregate `cpu` line of /proc/stat. */
export function parseProcStat(text: string): CpuTimes {
  const line = text.split('\n').find((l) => l.startsWith('cpu '));
  if (!line) throw new Error('/proc/stat has no aggregate cpu line');
  const [user = 0, nice = 0, system = 0, idle = 0, iowait = 0, irq = 0, softirq = 0, steal = 0] = line.trim().split(/\s+/).slice(1).map(Number);
  return { total: user + nice + system + idle + iowait + irq + softirq + steal, idle: idle + iowait, steal };
}

/** One process's /proc/<pid>/stat: comm (it may hold spaces and parentheses), utime + stime and its start (ticks since boot). */
export interface PidTimes {
  comm: string;
  ticks: number;
  start: number;
}

export function parsePidStat(text: string): PidTimes | undefined {
  const open = text.indexOf('(');
  const close = text.lastIndexOf(')');
  if (open < 0 || close < open) return undefined;
  const rest = text.slice(close + 2).trim().split(/\s+/);
  // rest[0] is field 3 (state); utime and stime are fields 14 and 15, starttime field 22.
  const [utime, stime, start] = [rest[11], rest[12], rest[19]].map(Number) as [number, number, number];
  if (![utime, stime, start].every(Number.isFinite)) return undefined;
  return { comm: text.slice(open + 1, close), ticks: utime + stime, start };
}

export interface LoadSnapshot {
  at: number;
  cpu: CpuTimes;
  procs: Map<number, PidTimes>;
}

export function snapshotLoad(): LoadSnapshot {
  const procs = new Map<number, PidTimes>();
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const p = parsePidStat(readFileSync(`/proc/${name}/stat`, 'utf8'));
      if (p) procs.set(Number(name), p);
    } catch {
      // ended between the listing and the read
    }
  }
  return { at: performance.now(), cpu: parseProcStat(readFileSync('/proc/stat', 'utf8')), procs };
}

/** Kernel threads and programs that carry the lab's traffic. */
const LAB_COMM = /^(iperf3|ping|ip|nice|ksoftirqd\/\d+|cpumap\/.*|napi\/.*|irq\/.*)$/;

export interface ProcessLoad {
  pid: number;
  comm: string;
  /** CPUs' worth over the span (1 = one CPU all the time). */
  cpus: number;
  ours: boolean;
}

export interface LoadReport {
  seconds: number;
  cpuCount: number;
  busy: number;
  steal: number;
  /** CPUs' worth used by processes that are not the lab's, plus steal. */
  notOurs: number;
  /** The processes that used the most CPU, most first. */
  top: ProcessLoad[];
}

/**
 * CPU use over a series of snapshots (the first and last bound the span). A process counts from its
 * first snapshot to its last, so one that ended before the last snapshot still counts up to its last
 * sample; one first seen after the first snapshot started in between and counts from zero. A pid is
 * one process only with the same start time (kernel workers rename themselves as they work). A process
 * is the lab's when its comm is one of LAB_COMM, it is lqosd, or it is `self` (the test process).
 */
export function loadOver(snaps: readonly LoadSnapshot[], opts: { self?: number; cmdline?: (pid: number) => string; cpuCount?: number } = {}): LoadReport {
  const a = snaps[0];
  const b = snaps.at(-1);
  if (!a || !b) throw new Error('loadOver needs at least one snapshot');
  const seconds = Math.max(1e-3, (b.at - a.at) / 1000);
  const cpuCount = opts.cpuCount ?? cpus().length;
  const total = Math.max(1, b.cpu.total - a.cpu.total);
  const share = (ticks: number) => (ticks / total) * cpuCount;
  const cmdline = opts.cmdline ?? readCmdline;
  const seen = new Map<string, { pid: number; comm: string; from: number; to: number }>();
  snaps.forEach((snap, i) => {
    for (const [pid, p] of snap.procs) {
      const key = `${pid}:${p.start}`;
      const had = seen.get(key);
      if (had) Object.assign(had, { comm: p.comm, to: p.ticks });
      else seen.set(key, { pid, comm: p.comm, from: i === 0 ? p.ticks : 0, to: p.ticks });
    }
  });
  const all: ProcessLoad[] = [];
  for (const { pid, comm, from, to } of seen.values()) {
    if (to <= from) continue;
    const ours = pid === opts.self || LAB_COMM.test(comm) || isLqosdCmdline(cmdline(pid));
    all.push({ pid, comm, cpus: (to - from) / (TICKS * seconds), ours });
  }
  all.sort((x, y) => y.cpus - x.cpus);
  const steal = share(b.cpu.steal - a.cpu.steal);
  return {
    seconds,
    cpuCount,
    busy: share(total - (b.cpu.idle - a.cpu.idle)),
    steal,
    notOurs: steal + all.filter((p) => !p.ours).reduce((s, p) => s + p.cpus, 0),
    top: all.slice(0, 6),
  };
}

/**
 * Snapshots every `everyMs` until stopped (so short-lived processes are caught), then the report
 * over the whole span (loadOver, with this process as `self`).
 */
export function watchLoad(everyMs = 500): { stop(): LoadReport } {
  const snaps = [snapshotLoad()];
  const timer = setInterval(() => snaps.push(snapshotLoad()), everyMs);
  timer.unref();
  return {
    stop() {
      clearInterval(timer);
      snaps.push(snapshotLoad());
      return loadOver(snaps, { self: process.pid });
    },
  };
}

function readCmdline(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8');
  } catch {
    return '';
  }
}

/** One line: `busy 1.62 of 2 CPUs over 12.3 s, not the lab's 0.04 (steal 0.00); top: iperf3 0.31, …`. */
export function describeLoad(r: LoadReport): string {
  const top = r.top.map((p) => `${p.comm}${p.ours ? '' : ' [not the lab]'} ${p.cpus.toFixed(2)}`).join(', ');
  return `busy ${r.busy.toFixed(2)} of ${r.cpuCount} CPUs over ${r.seconds.toFixed(1)} s, not the lab's ${r.notOurs.toFixed(2)} (steal ${r.steal.toFixed(2)}); top: ${top}`;
}

/**
 * True when something that is not the lab took at least half a CPU: enough to have cost the
 * measurement its rate on this 2-CPU machine, so a miss then says nothing about the shaper.
 */
export function machineWasBusy(r: LoadReport): boolean {
  return r.notOurs >= 0.5;
}

/** What measureAgainIfBusy returns: the attempt that counts, the load during it, and a first attempt's load when it was set aside. */
export interface Measured<T> {
  result: T;
  load: LoadReport;
  setAside?: { result: T; load: LoadReport };
}

/**
 * Runs `attempt` while watching the machine (watchLoad). When `missed(result)` says it fell short of
 * plan and something that is not the lab took half a CPU or more meanwhile (machineWasBusy), it runs
 * once more and that attempt counts: the first says nothing about the shaper. A miss without such
 * load, or a second miss, is the caller's to report (with `describeLoad(load)`).
 */
export async function measureAgainIfBusy<T>(attempt: () => Promise<T>, missed: (result: T) => boolean): Promise<Measured<T>> {
  const once = async () => {
    const watch = watchLoad();
    try {
      const result = await attempt();
      return { result, load: watch.stop() };
    } catch (e) {
      watch.stop();
      throw e;
    }
  };
  const first = await once();
  if (!missed(first.result) || !machineWasBusy(first.load)) return first;
  return { ...(await once()), setAside: first };
}
