/**
 * Where lqosd's IP mappings (prefix → CPU + HTB class) go: the pinned eBPF LPM map when the
 * dataplane is attached, or an in-memory table in a dry run (nothing touches the kernel).
 */
import type { MappingInput } from '../bus/protocol.ts';
import type { IpMapping } from '../model.ts';
import { hash64 } from '../util/hash.ts';

export interface MappingView {
  prefix: string;
  cpu: number;
  major: number;
  minor: number;
  circuitHash: bigint;
  deviceHash: bigint;
  /** Known only for the in-memory table (the kernel map stores hashes). */
  circuitId?: string;
  deviceId?: string;
}

export interface MappingBackend {
  readonly kind: 'kernel' | 'memory';
  add(entries: MappingInput[]): Promise<number>;
  delete(prefixes: string[]): Promise<number>;
  clear(): Promise<number>;
  list(): Promise<MappingView[]>;
}

/** Canonical prefix text with a length: `100.64.0.1/32`, `2001:db8::/56` (lower case, compressed). */
export function canonicalPrefix(prefix: string): string {
  const slash = prefix.indexOf('/');
  const ip = slash < 0 ? prefix : prefix.slice(0, slash);
  const v6 = ip.includes(':');
  const host = new URL(v6 ? `http://[${ip}]/` : `http://${ip}/`).hostname.replace(/^\[|\]$/g, '');
  const len = slash < 0 ? (v6 ? 128 : 32) : Number(prefix.slice(slash + 1));
  return `${host}/${len}`;
}

export function toIpMapping(m: MappingInput): IpMapping {
  return {
    prefix: canonicalPrefix(m.prefix),
    cpu: m.cpu,
    major: m.major,
    minor: m.minor,
    circuitId: m.circuitId,
    deviceId: m.deviceId,
    circuitHash: hash64(m.circuitId),
    deviceHash: m.deviceId ? hash64(m.deviceId) : 0n,
  };
}

export class MemoryMappings implements MappingBackend {
  readonly kind = 'memory' as const;
  private table = new Map<string, IpMapping>();

  add(entries: MappingInput[]): Promise<number> {
    for (const e of entries) {
      const m = toIpMapping(e);
      this.table.set(m.prefix, m);
    }
    return Promise.resolve(entries.length);
  }

  delete(prefixes: string[]): Promise<number> {
    let n = 0;
    for (const p of prefixes) if (this.table.delete(canonicalPrefix(p))) n++;
    return Promise.resolve(n);
  }

  clear(): Promise<number> {
    const n = this.table.size;
    this.table.clear();
    return Promise.resolve(n);
  }

  list(): Promise<MappingView[]> {
    return Promise.resolve(
      [...this.table.values()]
        .sort((a, b) => (a.prefix < b.prefix ? -1 : a.prefix > b.prefix ? 1 : 0))
        .map((m) => ({ prefix: m.prefix, cpu: m.cpu, major: m.major, minor: m.minor, circuitHash: m.circuitHash, deviceHash: m.deviceHash, circuitId: m.circuitId, deviceId: m.deviceId })),
    );
  }
}

/** The pinned LPM map under `pinRoot` (libbpf is loaded only when this is first used). */
export function kernelMappings(pinRoot: string): MappingBackend {
  const ctx = { pinRoot };
  const loader = () => import('../../dataplane/loader.ts');
  return {
    kind: 'kernel',
    add: async (entries) => (await (await loader()).updateMappings(entries.map(toIpMapping), ctx)).count,
    delete: async (prefixes) => (await loader()).deleteMappings(prefixes.map(canonicalPrefix), ctx),
    clear: async () => (await loader()).clearMappings(ctx),
    list: async () => (await (await loader()).listMappings(ctx)).map((e) => ({ prefix: e.prefix, cpu: e.cpu, major: e.major, minor: e.minor, circuitHash: e.circuitHash, deviceHash: e.deviceHash })),
  };
}
