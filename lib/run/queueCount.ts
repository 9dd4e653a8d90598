/**
 * Reads what the queue planner needs from the host: TX queues per interface and CPU count.
 */
import { existsSync, readdirSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import type { LqosConfig } from '../config/schema.ts';
import { resolveQueueCount } from '../plan/planConfig.ts';
import type { Logger } from '../util/log.ts';

/** Number of `tx-*` queues of an interface, or undefined if it does not exist here. */
export function txQueueCount(iface: string, sysfs = '/sys/class/net'): number | undefined {
  const dir = `${sysfs}/${iface}/queues`;
  if (!existsSync(dir)) return undefined;
  return readdirSync(dir).filter((e) => e.startsWith('tx-')).length;
}

export function cpuCount(): number {
  return availableParallelism();
}

/**
 * Queues per direction for this host and config (override, TX queues, CPUs). Logs the reason;
 * null (after logging an error) when a shaping interface is missing on a real run.
 */
export function hostQueueCount(
  config: LqosConfig,
  ifaces: { download: string; upload: string; onAStick: boolean },
  dryRun: boolean,
  log: Logger,
): number | null {
  const override = config.queues.override_available_queues ?? 0;
  const names = [ifaces.download, ifaces.upload];
  const tx = names.map((i) => txQueueCount(i));
  if (!dryRun && override <= 0) {
    const missing = names.filter((_, i) => tx[i] === undefined);
    if (missing.length) {
      log.error(`interface ${missing.join(', ')} does not exist on this host; fix [bridge]/[single_interface] in the config`);
      return null;
    }
  }
  const known = tx.filter((t): t is number => t !== undefined);
  const { queues, reason } = resolveQueueCount({ override, txQueues: known.length ? known : [cpuCount()], cpus: cpuCount(), onAStick: ifaces.onAStick });
  log.info(`using ${queues} queue(s) per direction (${reason})`);
  return queues;
}
