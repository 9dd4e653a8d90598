/**
 * How many queues (CPUs) shaping uses per direction on this host: the one probe, shared by the
 * plan's HTB majors and the dataplane's CPU redirect so that the two always agree. TX queues are
 * read from sysfs; the override, the CPU count and on-a-stick halving are applied by
 * resolveQueueCount (lib/plan). With `exclude_efficiency_cores` (the default) the CPUs of a hybrid
 * host's efficiency cores are left out of the count and of the dataplane's CPU placement.
 */
import { existsSync, readdirSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import type { ShapingInterfaces } from '../config/load.ts';
import type { LqosConfig } from '../config/schema.ts';
import { shapingCpus } from '../kernel/hostTuning.ts';
import { readCpuTopology } from '../kernel/hostTuningApply.ts';
import { resolveQueueCount } from '../plan/planConfig.ts';

/** Number of `tx-*` queues of an interface, or undefined if it does not exist here. */
export function txQueueCount(iface: string, sysfs = '/sys/class/net'): number | undefined {
  const dir = `${sysfs}/${iface}/queues`;
  if (!existsSync(dir)) return undefined;
  return readdirSync(dir).filter((e) => e.startsWith('tx-')).length;
}

export type HostQueues = { queues: number; reason: string; cpus?: number[] } | { error: string };

/**
 * The CPUs shaping uses on this host: online CPUs, without the efficiency cores when the config
 * says so and the host is hybrid. `root` stands for `/` (tests).
 */
export function hostShapingCpus(config: LqosConfig, root = '/'): { cpus: number[]; excluded: number[]; how?: string } {
  const topo = readCpuTopology(root);
  if (!topo.online.length) topo.online = [...Array(availableParallelism()).keys()];
  return shapingCpus(topo, config.exclude_efficiency_cores);
}

/** The error for shaping interfaces that do not exist on this host, or undefined when both do. */
export function missingInterfacesError(ifaces: ShapingInterfaces, root = '/'): string | undefined {
  const missing = [...new Set([ifaces.download, ifaces.upload])].filter((i) => txQueueCount(i, join(root, 'sys/class/net')) === undefined);
  return missing.length ? `interface ${missing.join(', ')} does not exist on this host; fix [bridge]/[single_interface] in the config` : undefined;
}

/**
 * Queues per direction for this host and config. A shaping interface that does not exist is an
 * error unless `allowMissing` (dry runs) or the config overrides the count (LibreQoS --direct
 * checks the interfaces itself: missingInterfacesError).
 */
export function hostQueueCount(config: LqosConfig, ifaces: ShapingInterfaces, allowMissing: boolean, root = '/'): HostQueues {
  const override = config.queues.override_available_queues ?? 0;
  const names = [ifaces.download, ifaces.upload];
  const tx = names.map((i) => txQueueCount(i, join(root, 'sys/class/net')));
  if (!allowMissing && override <= 0) {
    const error = missingInterfacesError(ifaces, root);
    if (error) return { error };
  }
  const known = tx.filter((t): t is number => t !== undefined);
  const sel = hostShapingCpus(config, root);
  // Unchanged on non-hybrid hosts: the CPUs this process may use.
  const cpus = sel.excluded.length ? sel.cpus.length : availableParallelism();
  const r = resolveQueueCount({ override, txQueues: known.length ? known : [cpus], cpus, onAStick: ifaces.onAStick });
  if (!sel.excluded.length) return r;
  return { ...r, cpus: sel.cpus, reason: `${r.reason} (exclude_efficiency_cores: CPUs ${sel.excluded.join(',')} ${sel.how} left out)` };
}
