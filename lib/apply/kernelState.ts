/**
 * Reads back what tc has in the kernel: HTB classes (text form: `tc -j class show` is not JSON
 * for HTB in iproute2 6.1) and qdiscs (JSON), for verification and for rebuilds.
 */
import type { Log } from '../util/log.ts';
import { tc } from './tcBatch.ts';

export interface KernelClass {
  classid: string;
  parent: string;
  leaf?: string;
  rateKbit: number;
  ceilKbit: number;
}

export interface KernelQdisc {
  kind: string;
  handle: string;
  parent?: string;
  root?: boolean;
}

const UNIT: Record<string, number> = { bit: 0.001, kbit: 1, mbit: 1000, gbit: 1e6, tbit: 1e9 };

export function parseRateKbit(text: string): number {
  const m = /^([\d.]+)([KMGT]?bit)$/i.exec(text);
  if (!m) return NaN;
  return Number(m[1]) * (UNIT[m[2]!.toLowerCase()] ?? NaN);
}

/** Parses `tc class show dev X` text output (HTB classes only). */
export function parseHtbClasses(text: string): Map<string, KernelClass> {
  const out = new Map<string, KernelClass>();
  for (const line of text.split('\n')) {
    const m = /^class htb (\S+) (?:parent (\S+)|root)(?: leaf (\S+))?.*? rate (\S+) ceil (\S+)/.exec(line);
    if (!m) continue;
    out.set(m[1]!, { classid: m[1]!, parent: m[2] ?? 'root', leaf: m[3], rateKbit: parseRateKbit(m[4]!), ceilKbit: parseRateKbit(m[5]!) });
  }
  return out;
}

export async function readClasses(dev: string, opts: { wrap?: string[]; log?: Log; classid?: string } = {}): Promise<Map<string, KernelClass>> {
  const r = await tc(['class', 'show', 'dev', dev, ...(opts.classid ? ['classid', opts.classid] : [])], { ...opts, reject: false });
  return parseHtbClasses(r.stdout);
}

export async function readQdiscs(dev: string, opts: { wrap?: string[]; log?: Log } = {}): Promise<KernelQdisc[]> {
  const r = await tc(['-j', 'qdisc', 'show', 'dev', dev], { ...opts, reject: false });
  if (!r.ok) return [];
  return JSON.parse(r.stdout || '[]') as KernelQdisc[];
}

/** Deletes our root qdisc (mq or htb) on each device if present; traffic then passes unshaped. */
export async function clearRootQdiscs(devs: string[], log: Log, wrap?: string[]): Promise<string[]> {
  const cleared: string[] = [];
  for (const dev of devs) {
    const qdiscs = await readQdiscs(dev, { wrap, log });
    if (qdiscs.some((q) => q.root && (q.kind === 'mq' || q.kind === 'htb'))) {
      await tc(['qdisc', 'del', 'dev', dev, 'root'], { wrap, log });
      cleared.push(dev);
    }
  }
  return cleared;
}
