/**
 * Host tuning from lqos.conf, as a pure decision: the config's `[tuning]` knobs (CPU governor,
 * irqbalance, netdev budget), the shaping interfaces' MTU (`[bridge] mtu` / `[single_interface]
 * mtu`) and which CPUs shaping may use (`exclude_efficiency_cores`), turned into a list of actions
 * for a snapshot of the host. lib/kernel/hostTuningApply.ts reads the snapshot and carries the
 * actions out; nothing here touches the host.
 */
import type { LqosConfig } from '../config/schema.ts';

/** What the planner needs to know about the host (read by hostTuningApply.ts readHostSnapshot). */
export interface HostSnapshot {
  /** cpufreq governor files (path relative to the root, e.g. `sys/devices/system/cpu/cpu0/cpufreq/scaling_governor`) → current value. */
  governors: Record<string, string>;
  /** The same CPUs' `scaling_available_governors` (absent when unreadable). */
  availableGovernors: Record<string, string[] | undefined>;
  /** sysctl name → current value (undefined when the file does not exist). */
  sysctls: Record<string, string | undefined>;
  /** Whether the irqbalance service runs ('unknown' when it cannot be told, e.g. no systemd). */
  irqbalance: 'active' | 'inactive' | 'unknown';
  /** Current MTU of each shaping interface (undefined: interface not found). */
  mtu: Record<string, number | undefined>;
}

/** The config keys an action honours (the text the log and the fidelity table use). */
export type TuningKey =
  | 'tuning.set_cpu_governor_performance'
  | 'tuning.stop_irq_balance'
  | 'tuning.netdev_budget_usecs'
  | 'tuning.netdev_budget_packets'
  | 'bridge.mtu'
  | 'single_interface.mtu';

export type TuningAction =
  /** Write `value` into the file `path` (relative to the root: sysfs or procfs). */
  | { kind: 'write'; key: TuningKey; path: string; value: string; from: string | undefined; what: string }
  /** Run a command (argv[0] is the program). */
  | { kind: 'run'; key: TuningKey; argv: string[]; what: string };

export interface TuningPlan {
  actions: TuningAction[];
  /** Things already as wanted, or that cannot be done on this host (logged at info). */
  notes: string[];
}

/** The sysctls `[tuning]` sets: config key → sysctl name. */
export const NETDEV_SYSCTLS = [
  { key: 'tuning.netdev_budget_usecs', sysctl: 'net.core.netdev_budget_usecs', value: (c: LqosConfig) => c.tuning.netdev_budget_usecs },
  { key: 'tuning.netdev_budget_packets', sysctl: 'net.core.netdev_budget', value: (c: LqosConfig) => c.tuning.netdev_budget_packets },
] as const;

/** procfs path (relative to the root) of a sysctl. */
export const sysctlPath = (name: string): string => `proc/sys/${name.replaceAll('.', '/')}`;

/** Interfaces whose MTU the config sets, with the key that sets it. */
export function mtuTargets(config: LqosConfig): { iface: string; mtu: number; key: TuningKey }[] {
  const b = config.bridge;
  if (b?.mtu !== undefined) return [...new Set([b.to_internet, b.to_network])].map((iface) => ({ iface, mtu: b.mtu!, key: 'bridge.mtu' as const }));
  const s = config.single_interface;
  if (s?.mtu !== undefined) return [{ iface: s.interface, mtu: s.mtu, key: 'single_interface.mtu' }];
  return [];
}

function governorActions(config: LqosConfig, snap: HostSnapshot, plan: TuningPlan): void {
  if (!config.tuning.set_cpu_governor_performance) return;
  const files = Object.keys(snap.governors).sort();
  if (!files.length) {
    plan.notes.push('set_cpu_governor_performance: this host exposes no cpufreq governors (virtual machine or container); nothing to set');
    return;
  }
  let already = 0;
  for (const path of files) {
    const current = snap.governors[path]!;
    if (current === 'performance') {
      already++;
      continue;
    }
    const available = snap.availableGovernors[path];
    if (available && !available.includes('performance')) {
      plan.notes.push(`set_cpu_governor_performance: ${path} offers no "performance" governor (available: ${available.join(' ')}); left at "${current}"`);
      continue;
    }
    plan.actions.push({ kind: 'write', key: 'tuning.set_cpu_governor_performance', path, value: 'performance', from: current, what: `CPU governor ${path}` });
  }
  if (already) plan.notes.push(`set_cpu_governor_performance: ${already} CPU(s) already use the performance governor`);
}

function netdevActions(config: LqosConfig, snap: HostSnapshot, plan: TuningPlan): void {
  for (const s of NETDEV_SYSCTLS) {
    const want = String(s.value(config));
    const current = snap.sysctls[s.sysctl];
    if (current === undefined) {
      plan.notes.push(`${s.key}: sysctl ${s.sysctl} does not exist on this host; not set`);
      continue;
    }
    if (current.trim() === want) continue;
    plan.actions.push({ kind: 'write', key: s.key, path: sysctlPath(s.sysctl), value: want, from: current.trim(), what: `sysctl ${s.sysctl}` });
  }
}

function mtuActions(config: LqosConfig, snap: HostSnapshot, plan: TuningPlan): void {
  for (const t of mtuTargets(config)) {
    const current = snap.mtu[t.iface];
    if (current === t.mtu) continue;
    if (current === undefined) {
      plan.notes.push(`${t.key}: interface ${t.iface} not found; MTU not set`);
      continue;
    }
    plan.actions.push({ kind: 'run', key: t.key, argv: ['ip', 'link', 'set', 'dev', t.iface, 'mtu', String(t.mtu)], what: `MTU of ${t.iface} from ${current} to ${t.mtu}` });
  }
}

/** The actions that bring the host to what the config asks, given its current state. */
export function planHostTuning(config: LqosConfig, snap: HostSnapshot): TuningPlan {
  const plan: TuningPlan = { actions: [], notes: [] };
  mtuActions(config, snap, plan);
  governorActions(config, snap, plan);
  netdevActions(config, snap, plan);
  if (config.tuning.stop_irq_balance) {
    if (snap.irqbalance === 'active') {
      plan.actions.push({ kind: 'run', key: 'tuning.stop_irq_balance', argv: ['systemctl', 'stop', 'irqbalance'], what: 'the irqbalance service (it would move the NIC interrupts off the shaping CPUs)' });
    } else if (snap.irqbalance === 'unknown') {
      plan.notes.push('stop_irq_balance: cannot tell whether irqbalance runs (no systemctl); stop it yourself if it does');
    }
  }
  return plan;
}

/** The fingerprint of the config keys planHostTuning reads (re-apply only when it changes). */
export function tuningFingerprint(config: LqosConfig): string {
  const t = config.tuning;
  return JSON.stringify([t.set_cpu_governor_performance, t.stop_irq_balance, t.netdev_budget_usecs, t.netdev_budget_packets, mtuTargets(config)]);
}

/** CPU layout of the host as far as efficiency cores go. */
export interface CpuTopology {
  online: number[];
  /** CPUs listed in /sys/devices/cpu_atom/cpus (Intel hybrid E-cores); undefined when absent. */
  atom?: number[];
  /** cpu → cpu_capacity (ARM big.LITTLE and others); CPUs without the file are absent. */
  capacity: Record<number, number>;
}

/**
 * The CPUs shaping may use: all online CPUs, minus the efficiency cores when `exclude` is set and
 * the host is hybrid (E-cores listed under cpu_atom, or CPUs whose capacity is below the largest).
 * Never empty: a host with only "efficiency" cores keeps them all.
 */
export function shapingCpus(topo: CpuTopology, exclude: boolean): { cpus: number[]; excluded: number[]; how?: string } {
  const online = [...topo.online].sort((a, b) => a - b);
  if (!exclude) return { cpus: online, excluded: [] };
  let slow = new Set<number>();
  let how: string | undefined;
  if (topo.atom?.length) {
    slow = new Set(topo.atom);
    how = 'listed in /sys/devices/cpu_atom/cpus';
  } else {
    const caps = online.map((c) => topo.capacity[c]).filter((c): c is number => c !== undefined);
    const max = Math.max(...caps);
    if (caps.length === online.length && caps.some((c) => c < max)) {
      slow = new Set(online.filter((c) => topo.capacity[c]! < max));
      how = `cpu_capacity below ${max}`;
    }
  }
  const cpus = online.filter((c) => !slow.has(c));
  if (!cpus.length || !slow.size) return { cpus: online, excluded: [] };
  return { cpus, excluded: online.filter((c) => slow.has(c)), how };
}

