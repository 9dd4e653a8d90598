/**
 * Memory preflight before building many qdiscs: estimates the kernel memory of the leaf qdiscs
 * and classes a plan needs and refuses when the host cannot afford it (an out-of-memory kernel
 * mid-rebuild would leave the box unshaped or worse).
 */
import { readFileSync } from 'node:fs';
import type { ShapingPlan } from '../model.ts';

/** Rough kernel memory per object, bytes (CAKE preallocates its flow tables). */
export const QDISC_COST: Record<string, number> = {
  cake: 512 * 1024,
  fq_codel: 64 * 1024,
  fq_pie: 64 * 1024,
  sfq: 16 * 1024,
  pfifo: 4 * 1024,
  bfifo: 4 * 1024,
  codel: 4 * 1024,
  pie: 4 * 1024,
  other: 16 * 1024,
};
export const HTB_CLASS_COST = 2 * 1024;

export interface MemoryEstimate {
  bytes: number;
  leaves: Record<string, number>;
  classes: number;
}

/** Estimated kernel memory of a plan's tc objects, after leaf substitution. */
export function estimatePlanMemory(plan: ShapingPlan, substitute: Record<string, { kind: string }> = {}): MemoryEstimate {
  const leaves: Record<string, number> = {};
  let classes = 0;
  const count = (kind: string | undefined) => {
    if (!kind) return;
    const k = substitute[kind]?.kind ?? kind;
    if (k === 'none') return;
    leaves[k] = (leaves[k] ?? 0) + 1;
  };
  for (const c of plan.circuits) {
    classes += 2;
    count(c.download.leaf?.kind);
    count(c.upload.leaf?.kind);
  }
  classes += 2 * plan.nodes.length + 4 * plan.queues;
  let bytes = classes * HTB_CLASS_COST;
  for (const [k, n] of Object.entries(leaves)) bytes += n * (QDISC_COST[k] ?? QDISC_COST.other!);
  return { bytes, leaves, classes };
}

/** MemAvailable and MemTotal from /proc/meminfo, bytes. */
export function readMemInfo(text = readFileSync('/proc/meminfo', 'utf8')): { available: number; total: number } {
  const get = (k: string) => Number(new RegExp(`^${k}:\\s+(\\d+) kB`, 'm').exec(text)?.[1] ?? 0) * 1024;
  return { available: get('MemAvailable'), total: get('MemTotal') };
}

export interface PreflightVerdict {
  ok: boolean;
  message: string;
}

/**
 * Safe when what is available, minus a reserve for the rest of the system (the larger of 2 GiB
 * and 1/8 of RAM), covers the estimate. Only the growth over the tree in force counts.
 */
export function memoryPreflight(next: MemoryEstimate, current: MemoryEstimate | undefined, mem: { available: number; total: number }): PreflightVerdict {
  const growth = Math.max(0, next.bytes - (current?.bytes ?? 0));
  const reserve = Math.max(2 * 1024 ** 3, mem.total / 8);
  const spare = mem.available - reserve;
  const mib = (b: number) => `${Math.round(b / 1024 ** 2)} MiB`;
  const what = Object.entries(next.leaves)
    .map(([k, n]) => `${n} ${k}`)
    .join(', ');
  if (growth <= spare) return { ok: true, message: `estimated ${mib(next.bytes)} of kernel memory for ${next.classes} classes and ${what || 'no'} leaf qdiscs; ${mib(spare)} to spare` };
  return {
    ok: false,
    message: `not enough memory to build the queues: about ${mib(growth)} more kernel memory is needed (${next.classes} classes; ${what} leaf qdiscs) but only ${mib(Math.max(0, spare))} is available after keeping ${mib(reserve)} for the system; nothing was changed — use a lighter SQM (fq_codel instead of cake), set sqm = none for some circuits, or add RAM`,
  };
}
