/**
 * Reads what the queue planner needs from the host: TX queues per interface and CPU count.
 */
import { existsSync, readdirSync } from 'node:fs';
import { availableParallelism } from 'node:os';

/** Number of `tx-*` queues of an interface, or undefined if it does not exist here. */
export function txQueueCount(iface: string, sysfs = '/sys/class/net'): number | undefined {
  const dir = `${sysfs}/${iface}/queues`;
  if (!existsSync(dir)) return undefined;
  return readdirSync(dir).filter((e) => e.startsWith('tx-')).length;
}

export function cpuCount(): number {
  return availableParallelism();
}
