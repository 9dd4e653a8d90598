/**
 * Kernel helpers shared by the apply paths: the mapping sink interface (the dataplane's IP
 * map, or lqosd over the bus) and removal of our root qdiscs (--clearrules).
 */
import type { IpMapping } from '../model.ts';
import type { Logger } from '../util/log.ts';
import { tc } from './tcBatch.ts';

export interface MappingSink {
  /** Prefixes currently in the dataplane. */
  list(): Promise<string[]>;
  update(m: IpMapping[]): Promise<void>;
  remove(prefixes: string[]): Promise<void>;
}

/** Deletes our root qdisc on each device if present (traffic then passes unshaped). */
export async function clearRootQdiscs(devs: string[], log: Logger, wrap?: string[]): Promise<string[]> {
  const cleared: string[] = [];
  for (const dev of devs) {
    const show = await tc(['-j', 'qdisc', 'show', 'dev', dev, 'root'], { wrap, log, reject: false });
    if (!show.ok) continue;
    const qdiscs = JSON.parse(show.stdout || '[]') as Array<{ kind: string; handle: string }>;
    if (qdiscs.some((q) => q.kind === 'mq' || q.kind === 'htb')) {
      await tc(['qdisc', 'del', 'dev', dev, 'root'], { wrap, log });
      cleared.push(dev);
    }
  }
  return cleared;
}
