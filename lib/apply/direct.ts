/**
 * Direct apply (no lqosd): rebuild the tc tree from a compiled batch and publish the IP
 * mappings to the dataplane. Mappings that disappear are removed before the classes are
 * rebuilt; new ones are published only after their classes exist.
 */
import type { IpMapping, ShapingPlan } from '../model.ts';
import type { Logger } from '../util/log.ts';
import { runTcBatch, tc } from './tcBatch.ts';

export interface MappingSink {
  /** Prefixes currently in the dataplane. */
  list(): Promise<string[]>;
  update(m: IpMapping[]): Promise<void>;
  remove(prefixes: string[]): Promise<void>;
}

export interface DirectApplyArgs {
  plan: ShapingPlan;
  tcLines: string[];
  mappings: IpMapping[];
  log: Logger;
  /** Absent: tc only (mappings are not published). */
  sink?: MappingSink;
  wrap?: string[];
}

export interface DirectApplyReport {
  tcLines: number;
  mappingsPublished: number;
  mappingsRemoved: number;
  tcSeconds: number;
  mappingSeconds: number;
}

/** Devices of a plan (one per direction; one on a stick). */
export function planDevices(plan: ShapingPlan): string[] {
  return [...new Set([plan.interfaces.download, plan.interfaces.upload])];
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

export async function applyDirect(args: DirectApplyArgs): Promise<DirectApplyReport> {
  const { plan, tcLines, mappings, log, sink, wrap } = args;
  const wanted = new Set(mappings.map((m) => m.prefix));
  let removed = 0;
  const t0 = performance.now();
  if (sink) {
    const stale = (await sink.list()).filter((p) => !wanted.has(p));
    if (stale.length) await sink.remove(stale);
    removed = stale.length;
  }
  const t1 = performance.now();
  await clearRootQdiscs(planDevices(plan), log, wrap);
  await runTcBatch(tcLines, { log, wrap });
  const t2 = performance.now();
  if (sink && mappings.length) await sink.update(mappings);
  const t3 = performance.now();
  return {
    tcLines: tcLines.length,
    mappingsPublished: sink ? mappings.length : 0,
    mappingsRemoved: removed,
    tcSeconds: (t2 - t1) / 1000,
    mappingSeconds: (t1 - t0 + t3 - t2) / 1000,
  };
}
