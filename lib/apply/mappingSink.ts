/**
 * Where IP mappings (prefix → CPU + HTB class) go: the dataplane's pinned LPM map, or an in-memory
 * table (dry runs: nothing touches the kernel). The apply engine writes the plan's mappings through
 * a sink; lqosd's bus `map_ip_*` requests use the same sink.
 */
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

export interface MappingSink {
  readonly kind: 'kernel' | 'memory';
  /** Every entry, sorted by prefix. */
  list(): Promise<MappingView[]>;
  /** Inserts or replaces; returns how many were written. */
  update(mappings: IpMapping[]): Promise<number>;
  /** Returns how many of the prefixes were present. */
  remove(prefixes: string[]): Promise<number>;
  /** Removes everything; returns how many entries there were. */
  clear(): Promise<number>;
  /** How many entries the table can hold (the kernel LPM map's max_entries); absent: MAX_MAPPINGS is assumed. */
  capacity?(): Promise<number>;
}

/** A mapping as a bus client sends it (ids instead of hashes, any prefix spelling). */
export interface MappingRequest {
  prefix: string;
  cpu: number;
  major: number;
  minor: number;
  circuitId: string;
  deviceId?: string;
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

export function toIpMapping(m: MappingRequest): IpMapping {
  return {
    prefix: canonicalPrefix(m.prefix),
    cpu: m.cpu,
    major: m.major,
    minor: m.minor,
    circuitId: m.circuitId,
    deviceId: m.deviceId ?? '',
    circuitHash: hash64(m.circuitId),
    deviceHash: m.deviceId ? hash64(m.deviceId) : 0n,
  };
}

const byPrefix = (a: { prefix: string }, b: { prefix: string }) => (a.prefix < b.prefix ? -1 : a.prefix > b.prefix ? 1 : 0);

export class MemoryMappingSink implements MappingSink {
  readonly kind = 'memory' as const;
  private readonly table = new Map<string, IpMapping>();

  list(): Promise<MappingView[]> {
    return Promise.resolve(
      [...this.table.values()].sort(byPrefix).map((m) => ({
        prefix: m.prefix,
        cpu: m.cpu,
        major: m.major,
        minor: m.minor,
        circuitHash: m.circuitHash,
        deviceHash: m.deviceHash,
        circuitId: m.circuitId,
        deviceId: m.deviceId,
      })),
    );
  }

  update(mappings: IpMapping[]): Promise<number> {
    // Prefixes are canonical already (plans and toIpMapping produce them so).
    for (const m of mappings) this.table.set(m.prefix, m);
    return Promise.resolve(mappings.length);
  }

  remove(prefixes: string[]): Promise<number> {
    let n = 0;
    for (const p of prefixes) if (this.table.delete(canonicalPrefix(p))) n++;
    return Promise.resolve(n);
  }

  clear(): Promise<number> {
    const n = this.table.size;
    this.table.clear();
    return Promise.resolve(n);
  }
}

/** The dataplane's pinned LPM map under `pinRoot` (libbpf is loaded on first use). */
export function dataplaneMappingSink(pinRoot: string): MappingSink {
  const ctx = { pinRoot };
  const maps = () => import('../../dataplane/maps.ts');
  return {
    kind: 'kernel',
    list: async () =>
      (await (await maps()).listMappings(ctx)).map((e) => ({
        prefix: e.prefix,
        cpu: e.cpu,
        major: e.major,
        minor: e.minor,
        circuitHash: e.circuitHash,
        deviceHash: e.deviceHash,
      })),
    update: async (mappings) => (await (await maps()).updateMappings(mappings, ctx)).count,
    remove: async (prefixes) => (await maps()).deleteMappings(prefixes.map(canonicalPrefix), ctx),
    clear: async () => (await maps()).clearMappings(ctx),
    capacity: async () => (await maps()).mappingCapacity(ctx),
  };
}
