/**
 * Host tuning, the side effects: reads the host snapshot lib/kernel/hostTuning.ts plans from
 * (cpufreq governors, netdev sysctls, irqbalance, interface MTUs, hybrid CPU layout) and carries the
 * planned actions out. Files are read and written under an injectable root (tests lay out a fake
 * /sys and /proc/sys in a temp directory) and commands go through an injectable runner. Nothing is
 * fatal: each change is logged, and whatever cannot be done (not root, a container, a missing file)
 * is a warning saying what to do instead.
 */
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { LqosConfig } from '../config/schema.ts';
import type { Log } from '../util/log.ts';
import { parseCpuList } from '../util/cpuList.ts';
import { mtuTargets, NETDEV_SYSCTLS, planHostTuning, sysctlPath, type CpuTopology, type HostSnapshot, type TuningAction } from './hostTuning.ts';

export interface CommandResult {
  exitCode: number;
  stdout: string;
  stderr: string;
}
/** Runs argv (argv[0] is the program); a program that cannot be started gives exitCode 127. */
export type CommandRunner = (argv: string[]) => Promise<CommandResult>;

export const defaultRunner: CommandRunner = async (argv) => {
  const { execa } = await import('execa'); // loaded on first use: LibreQoS --dry-run never runs a command
  const r = await execa(argv[0]!, argv.slice(1), { reject: false, timeout: 15_000 });
  const failed = r.exitCode === undefined;
  return { exitCode: failed ? 127 : r.exitCode!, stdout: String(r.stdout ?? ''), stderr: failed ? (r.shortMessage ?? 'could not run') : String(r.stderr ?? '') };
};

export interface HostTuningEnv {
  /** Directory standing for `/` (default `/`). */
  root?: string;
  run?: CommandRunner;
}

const readTrim = (path: string): string | undefined => {
  try {
    return readFileSync(path, 'utf8').trim();
  } catch {
    return undefined;
  }
};

function readGovernors(root: string): Pick<HostSnapshot, 'governors' | 'availableGovernors'> {
  const governors: Record<string, string> = {};
  const availableGovernors: Record<string, string[] | undefined> = {};
  const base = 'sys/devices/system/cpu';
  let entries: string[] = [];
  try {
    entries = readdirSync(join(root, base)).filter((e) => /^cpu\d+$/.test(e));
  } catch {
    /* no sysfs CPU directory: nothing to tune */
  }
  for (const cpu of entries) {
    const rel = `${base}/${cpu}/cpufreq/scaling_governor`;
    const current = readTrim(join(root, rel));
    if (current === undefined) continue;
    governors[rel] = current;
    availableGovernors[rel] = readTrim(join(root, base, cpu, 'cpufreq/scaling_available_governors'))?.split(/\s+/).filter(Boolean);
  }
  return { governors, availableGovernors };
}

async function irqbalanceState(run: CommandRunner): Promise<HostSnapshot['irqbalance']> {
  const r = await run(['systemctl', 'is-active', 'irqbalance']);
  const out = r.stdout.trim();
  if (out === 'active' || out === 'activating' || out === 'reloading') return 'active';
  if (['inactive', 'failed', 'unknown', 'deactivating'].includes(out)) return 'inactive';
  return 'unknown';
}

async function readMtu(run: CommandRunner, iface: string): Promise<number | undefined> {
  const r = await run(['ip', '-j', 'link', 'show', 'dev', iface]);
  if (r.exitCode !== 0) return undefined;
  try {
    const mtu = (JSON.parse(r.stdout) as { mtu?: number }[])[0]?.mtu;
    return typeof mtu === 'number' ? mtu : undefined;
  } catch {
    return undefined;
  }
}

/** The current state of everything the config's tuning keys touch. */
export async function readHostSnapshot(config: LqosConfig, env: HostTuningEnv = {}): Promise<HostSnapshot> {
  const root = env.root ?? '/';
  const run = env.run ?? defaultRunner;
  const sysctls: Record<string, string | undefined> = {};
  for (const s of NETDEV_SYSCTLS) sysctls[s.sysctl] = readTrim(join(root, sysctlPath(s.sysctl)));
  const mtu: Record<string, number | undefined> = {};
  for (const t of mtuTargets(config)) mtu[t.iface] = await readMtu(run, t.iface);
  return {
    ...(config.tuning.set_cpu_governor_performance ? readGovernors(root) : { governors: {}, availableGovernors: {} }),
    sysctls,
    irqbalance: config.tuning.stop_irq_balance ? await irqbalanceState(run) : 'inactive',
    mtu,
  };
}

export interface TuningReport {
  /** What was changed (one line each, as logged). */
  changed: string[];
  /** What could not be done (as warned). */
  failed: string[];
  notes: string[];
}

async function execute(a: TuningAction, root: string, run: CommandRunner): Promise<string | undefined> {
  if (a.kind === 'write') {
    const file = join(root, a.path);
    try {
      writeFileSync(file, `${a.value}\n`);
    } catch (e) {
      return (e as Error).message;
    }
    const back = readTrim(file);
    return back === a.value ? undefined : `wrote "${a.value}" but it reads back as "${back ?? '(unreadable)'}"`;
  }
  const r = await run(a.argv);
  return r.exitCode === 0 ? undefined : (r.stderr || r.stdout).trim().split('\n')[0] || `exit code ${r.exitCode}`;
}

/**
 * Reads the host, plans and applies the tuning the config asks for. Logs each change (info) and
 * each failure (warning); never throws.
 */
export async function applyHostTuning(config: LqosConfig, log: Log, env: HostTuningEnv = {}): Promise<TuningReport> {
  const root = env.root ?? '/';
  const run = env.run ?? defaultRunner;
  const report: TuningReport = { changed: [], failed: [], notes: [] };
  let snap: HostSnapshot;
  try {
    snap = await readHostSnapshot(config, { root, run });
  } catch (e) {
    const msg = `host tuning skipped: reading the host state failed: ${(e as Error).message}`;
    log.warn({ code: 'host-tuning' }, msg);
    report.failed.push(msg);
    return report;
  }
  const plan = planHostTuning(config, snap);
  for (const n of plan.notes) log.info({ code: 'host-tuning' }, n);
  report.notes.push(...plan.notes);
  for (const a of plan.actions) {
    const err = await execute(a, root, run);
    if (err === undefined) {
      const line = a.kind === 'write' ? `${a.key}: set ${a.what} from "${a.from ?? ''}" to "${a.value}"` : `${a.key}: ${a.argv[0] === 'systemctl' ? 'stopped' : 'set'} ${a.what}`;
      log.info({ code: 'host-tuning', key: a.key }, line);
      report.changed.push(line);
    } else {
      const line = `${a.key}: could not change ${a.what}: ${err}; shaping continues without it (run lqosd as root on the host, or set ${a.key} = false to silence this)`;
      log.warn({ code: 'host-tuning', key: a.key }, line);
      report.failed.push(line);
    }
  }
  return report;
}

/** The host's CPU layout (online CPUs, Intel E-cores, per-CPU capacity) under `root`. */
export function readCpuTopology(root = '/'): CpuTopology {
  const online = parseCpuList(readTrim(join(root, 'sys/devices/system/cpu/online')) ?? '');
  const atomText = readTrim(join(root, 'sys/devices/cpu_atom/cpus'));
  const capacity: Record<number, number> = {};
  for (const c of online) {
    const v = readTrim(join(root, `sys/devices/system/cpu/cpu${c}/cpu_capacity`));
    if (v !== undefined && Number.isFinite(Number(v))) capacity[c] = Number(v);
  }
  return { online, atom: atomText === undefined ? undefined : parseCpuList(atomText), capacity };
}
