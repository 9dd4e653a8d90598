/**
 * CPU maps: which physical CPU serves each logical queue (cpu_map, cpus_available) and which TX queue
 * unclassified traffic of each CPU takes (txq_config). Filled before any program is attached.
 */
import { readFileSync } from 'node:fs';
import { parseCpuList } from '../lib/util/cpuList.ts';
import * as bpf from './libbpf.ts';
import { MAX_CPUS, encodeU32 } from './abi.ts';
import { shapingFds, type MapContext } from './pinned.ts';

export const CPUMAP_QSIZE = 2048;

export function onlineCpus(): number[] {
  return parseCpuList(readFileSync('/sys/devices/system/cpu/online', 'utf8'));
}

/** Fill cpu_map / cpus_available / txq_config for `queues` queues over `cpus` (default: online CPUs). */
export function configureCpus(queues: number, ctx: MapContext = {}, cpus: number[] = onlineCpus()): void {
  // cpumap: one entry per shaping CPU.
  const cpumap = shapingFds.fd('cpu_map', ctx);
  for (const c of cpus) bpf.mapUpdateElem(cpumap, encodeU32(c), encodeU32(CPUMAP_QSIZE));
  // Logical queue index -> physical CPU; every index points at a populated cpumap slot.
  const n = MAX_CPUS;
  const keys = Buffer.alloc(n * 4);
  const vals = Buffer.alloc(n * 4);
  for (let i = 0; i < n; i++) {
    keys.writeUInt32LE(i, i * 4);
    vals.writeUInt32LE(cpus[(i % queues) % cpus.length]!, i * 4);
  }
  bpf.mapUpdateBatch(shapingFds.fd('cpus_available', ctx), keys, vals, n, 4, 4);
  // Physical CPU -> TX queue (1-based) for unclassified traffic; CPUs not shaping keep 0.
  const txq = Buffer.alloc(n * 4);
  cpus.forEach((c, i) => { if (c < n) txq.writeUInt32LE((i % queues) + 1, c * 4); });
  bpf.mapUpdateBatch(shapingFds.fd('txq_config', ctx), keys, txq, n, 4, 4);
}
