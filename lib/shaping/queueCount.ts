/**
 * How many queues (CPUs) shaping uses per direction on this host: the one probe, shared by the
 * plan's HTB majors and the dataplane's CPU redirect so that the two always agree. TX queues are
 * read from sysfs; the override, the CPU count and on-a-stick halving are applied by
 * resolveQueueCount (lib/plan).
 */
import { existsSync, readdirSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import type { ShapingInterfaces } from '../config/load.ts';
import type { LqosConfig } from '../config/schema.ts';
import { resolveQueueCount } from '../plan/planConfig.ts';

/** Number of `tx-*` queues of an interface, or undefined if it does not exist here. */
export function txQueueCount(iface: string, sysfs = '/sys/class/net'): number | undefined {
  const dir = `${sysfs}/${iface}/queues`;
  if (!existsSync(dir)) return undefined;
  return readdirSync(dir).filter((e) => e.startsWith('tx-')).length;
}

export type HostQueues = { queues: number; reason: string } | { error: string };

/**
 * Queues per direction for this host and config. A shaping interface that does not exist is an
 * error unless `allowMissing` (dry runs) or the config overrides the count.
 */
export function hostQueueCount(config: LqosConfig, ifaces: ShapingInterfaces, allowMissing: boolean): HostQueues {
  const override = config.queues.override_available_queues ?? 0;
  const names = [ifaces.download, ifaces.upload];
  const tx = names.map((i) => txQueueCount(i));
  if (!allowMissing && override <= 0) {
    const missing = names.filter((_, i) => tx[i] === undefined);
    if (missing.length) return { error: `interface ${missing.join(', ')} does not exist on this host; fix [bridge]/[single_interface] in the config` };
  }
  const known = tx.filter((t): t is number => t !== undefined);
  const cpus = availableParallelism();
  return resolveQueueCount({ override, txQueues: known.length ? known : [cpus], cpus, onAStick: ifaces.onAStick });
}
