/**
 * What the machine spent its CPUs on while a lab measurement ran: /proc/stat (busy and hypervisor
 * steal time) and every process's CPU time (/proc/<pid>/stat), sampled every 0.5 s.
 *
 * The lab's end hosts share this machine's two CPUs with the shaper, so other work can take a lab
 * rate below its plan without the shaper being wrong (measured 2026-12-06, docs/PERFORMANCE.md: one
 * busy loop beside the lab changes nothing; two take up to 36 % off the downloads and at times
 * more off an upload). The report tells the lab's own work (processes in the lab's network namespaces,
 * the softirq, cpumap and NAPI kernel threads, the test process) apart from everything else, and
 * counts hypervisor steal as not the lab's.
 */
import { readFileSync, readdirSync, readlinkSync, statSync } from 'node:fs';
import { cpus } from 'node:os';

/** Clock ticks per second of /proc times (USER_HZ; 100 on Linux). */
const TICKS = 100;

/** How long other work must have lasted for its rate to count (machineWasBusy): four 0.5 s samples. */
const PEAK_WINDOW_MS = 2000;

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
  /** Its network namespace (`net:[4026531840]`), when it could be read. */
  net?: string;
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
  /** performance.now() ms, and ticks since boot (/proc/uptime) at the same moment. */
  at: number;
  uptime: number;
  cpu: CpuTimes;
  procs: Map<number, PidTimes>;
}

export function snapshotLoad(): LoadSnapshot {
  // The clocks first: a process that starts while /proc is listed then counts as new since this
  // snapshot (loadOver), not as one the listing missed.
  const at = performance.now();
  const uptime = Math.floor(Number(readFileSync('/proc/uptime', 'utf8').split(' ')[0]) * TICKS);
  const cpu = parseProcStat(readFileSync('/proc/stat', 'utf8'));
  const procs = new Map<number, PidTimes>();
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const p = parsePidStat(readFileSync(`/proc/${name}/stat`, 'utf8'));
      if (!p) continue;
      try {
        p.net = readlinkSync(`/proc/${name}/ns/net`);
      } catch {
        // a zombie (no namespace link) or gone meanwhile
      }
      procs.set(Number(name), p);
    } catch {
      // ended between the listing and the read
    }
  }
  return { at, uptime, cpu, procs };
}

/** The `net:[inode]` link of each named network namespace (`ip netns`, bind-mounted under /run/netns). */
export function namespaceLinks(names: readonly string[]): string[] {
  return names.map((n) => `net:[${statSync(`/run/netns/${n}`).ino}]`);
}

/** Kernel threads and programs that carry the lab's traffic wherever they run. */
const LAB_COMM = /^(iperf3|ping|ksoftirqd\/\d+|cpumap\/.*|napi\/.*|irq\/.*)$/;

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
  /** CPUs' worth used by processes that are not the lab's, plus steal, over the whole span. */
  notOurs: number;
  /** The same over the busiest 2 s of the span (the whole span when shorter). */
  peakNotOurs: number;
  /** Busy time that is neither steal nor any process the snapshots saw (processes that came and went between two, interrupts). */
  unattributed: number;
  /** The processes that used the most CPU, most first. */
  top: ProcessLoad[];
}

export interface LoadOwner {
  /** The test process. */
  self?: number;
  /** `net:[inode]` links of the lab's namespaces (namespaceLinks). */
  labNets?: readonly string[];
  cpuCount?: number;
}

/**
 * CPU use over a series of snapshots (the first and last bound the span). A process counts between
 * the first and last snapshot it was seen in, so one that ended before the last still counts up to its
 * last sample. One first seen later counts from zero only if it started after the snapshot before
 * (else it was missed by a listing and counts from where it was first seen). A pid is one process
 * only with the same start time (kernel workers rename themselves as they work). A process is the
 * lab's when it is `self`, runs in one of `labNets`, or its comm is one of LAB_COMM.
 */
export function loadOver(snaps: readonly LoadSnapshot[], owner: LoadOwner = {}): LoadReport {
  const a = snaps[0];
  const b = snaps.at(-1);
  if (!a || !b) throw new Error('loadOver needs at least one snapshot');
  const seconds = Math.max(1e-3, (b.at - a.at) / 1000);
  const cpuCount = owner.cpuCount ?? cpus().length;
  const labNets = new Set(owner.labNets ?? []);
  const isOurs = (pid: number, p: PidTimes) => pid === owner.self || (p.net !== undefined && labNets.has(p.net)) || LAB_COMM.test(p.comm);
  const share = (ticks: number, total: number) => (ticks / Math.max(1, total)) * cpuCount;
  const seen = new Map<string, { pid: number; comm: string; ours: boolean; from: number; to: number }>();
  /** Not-ours ticks and wall ms of each interval between consecutive snapshots. */
  const steps: Array<{ ms: number; notOurs: number }> = [];
  snaps.forEach((snap, i) => {
    const prev = snaps[i - 1];
    // /proc/stat and /proc/<pid>/stat both count CPU-ticks: 100 are one CPU for one second.
    let notOurs = prev ? snap.cpu.steal - prev.cpu.steal : 0;
    for (const [pid, p] of snap.procs) {
      const key = `${pid}:${p.start}`;
      const had = seen.get(key);
      // Ticks already counted (or from before the span): a process new since the snapshot before
      // counts from zero, one that only escaped a listing from where it was first seen.
      const base = had ? had.to : !prev || p.start < prev.uptime ? p.ticks : 0;
      const ours = isOurs(pid, p) || (had?.ours ?? false);
      if (had) Object.assign(had, { comm: p.comm, ours, to: p.ticks });
      else seen.set(key, { pid, comm: p.comm, ours, from: base, to: p.ticks });
      if (!ours) notOurs += Math.max(0, p.ticks - base);
    }
    if (prev) steps.push({ ms: snap.at - prev.at, notOurs });
  });
  const all: ProcessLoad[] = [];
  for (const { pid, comm, ours, from, to } of seen.values()) {
    if (to > from) all.push({ pid, comm, cpus: (to - from) / (TICKS * seconds), ours });
  }
  all.sort((x, y) => y.cpus - x.cpus);
  const total = b.cpu.total - a.cpu.total;
  const steal = share(b.cpu.steal - a.cpu.steal, total);
  const busy = share(total - (b.cpu.idle - a.cpu.idle), total);
  return {
    seconds,
    cpuCount,
    busy,
    steal,
    notOurs: rateOf(steps),
    peakNotOurs: peakRate(steps),
    unattributed: Math.max(0, busy - steal - all.reduce((s, p) => s + p.cpus, 0)),
    top: all.slice(0, 6),
  };
}

/** CPUs' worth of a run of steps (ticks over their time). */
function rateOf(steps: ReadonlyArray<{ ms: number; notOurs: number }>): number {
  const ms = steps.reduce((s, x) => s + x.ms, 0);
  return steps.reduce((s, x) => s + x.notOurs, 0) / (TICKS * Math.max(1e-3, ms / 1000));
}

/** The highest CPUs' worth over any PEAK_WINDOW_MS of consecutive steps (the whole span when shorter). */
function peakRate(steps: ReadonlyArray<{ ms: number; notOurs: number }>): number {
  let peak = 0;
  for (let i = 0; i < steps.length; i++) {
    let j = i;
    let ms = 0;
    while (j < steps.length && ms < PEAK_WINDOW_MS) ms += steps[j++]!.ms;
    if (ms >= PEAK_WINDOW_MS || i === 0) peak = Math.max(peak, rateOf(steps.slice(i, j)));
  }
  return peak;
}

/**
 * Snapshots every `everyMs` until stopped (so short-lived processes are caught), then the report
 * over the whole span (loadOver, with this process as `self`).
 */
export function watchLoad(owner: Omit<LoadOwner, 'self'> = {}, everyMs = 500): { stop(): LoadReport } {
  const snaps = [snapshotLoad()];
  const timer = setInterval(() => snaps.push(snapshotLoad()), everyMs);
  timer.unref();
  return {
    stop() {
      clearInterval(timer);
      snaps.push(snapshotLoad());
      return loadOver(snaps, { ...owner, self: process.pid });
    },
  };
}

/** One line: `busy 1.62 of 2 CPUs over 12.3 s, not the lab's 0.04 (at most 0.10 over 2 s; steal 0.00); top: iperf3 0.31, …`. */
export function describeLoad(r: LoadReport): string {
  const top = r.top.map((p) => `${p.comm}${p.ours ? '' : ' [not the lab]'} ${p.cpus.toFixed(2)}`).join(', ');
  return `busy ${r.busy.toFixed(2)} of ${r.cpuCount} CPUs over ${r.seconds.toFixed(1)} s, not the lab's ${r.notOurs.toFixed(2)} (at most ${r.peakNotOurs.toFixed(2)} over 2 s; steal ${r.steal.toFixed(2)}; unattributed ${r.unattributed.toFixed(2)}); top: ${top}`;
}

/**
 * Hypervisor steal, in CPUs over a whole measurement, above which a shortfall may be the host's. Steal
 * takes a vCPU away whole (softirqs and qdisc timers with it), which costs far more than the same
 * share of busy loops: with 1 ms HTB bursts, fresh-clone runs of 2026-12-06/07 lost 3–9 % beside
 * 0.12–0.21 CPU of steal and up to 18 % beside 0.68. The 10 ms bursts since (docs/PERFORMANCE.md "HTB
 * burst and hypervisor steal") ride out gaps of up to about 10 ms; a host that takes longer ones still
 * costs rate.
 */
export const STEAL_WORTH_RETRY = 0.1;

/**
 * True when work that is not the lab's took a whole CPU or more over some 2 s, or the hypervisor stole
 * more than STEAL_WORTH_RETRY CPUs. A whole CPU is the lower edge of what busy loops cost a measurement
 * here: in the runs of 2026-12-06 one busy loop (≈ 1 CPU) the whole time did no harm and two (≈ 2 CPUs)
 * did, so a shortfall beside less other work than that (and less steal) is never the machine's, and
 * one beside more may be.
 */
export function machineWasBusy(r: LoadReport): boolean {
  return r.peakNotOurs >= 1 || r.steal > STEAL_WORTH_RETRY;
}

/** What measureAgainIfBusy returns: the attempt that counts, the load during it, and a first attempt's load when it was set aside. */
export interface Measured<T> {
  result: T;
  load: LoadReport;
  setAside?: { result: T; load: LoadReport };
}

/**
 * What the machine did during a measureAgainIfBusy result: its load, and for a second attempt what the
 * first measured (`first`, e.g. "24.1 Mbit/s") and the load it was set aside for.
 */
export function describeMeasured<T>(m: Measured<T>, first?: (result: T) => string): string {
  if (!m.setAside) return describeLoad(m.load);
  const what = first ? ` (${first(m.setAside.result)})` : '';
  return `${describeLoad(m.load)}; a second attempt: the first${what} ran while the machine was busy (${describeLoad(m.setAside.load)})`;
}

/**
 * Runs `attempt` while watching the machine (watchLoad; `labNamespaces` are the lab's `ip netns`
 * names). When `fellShort(result)` says it came in under plan and work that is not the lab's was busy
 * meanwhile (machineWasBusy), it runs once more and that attempt counts: the first says nothing about
 * the shaper. A rate over plan is never measured again (CPU shortage cannot raise one). A miss without
 * such load, or a second miss, is the caller's to report (with `describeLoad(load)`).
 */
export async function measureAgainIfBusy<T>(attempt: () => Promise<T>, fellShort: (result: T) => boolean, labNamespaces: readonly string[] = []): Promise<Measured<T>> {
  const labNets = namespaceLinks(labNamespaces);
  const once = async () => {
    const watch = watchLoad({ labNets });
    try {
      const result = await attempt();
      return { result, load: watch.stop() };
    } catch (e) {
      watch.stop();
      throw e;
    }
  };
  const first = await once();
  if (!fellShort(first.result) || !machineWasBusy(first.load)) return first;
  return { ...(await once()), setAside: first };
}
