/**
 * Tolerant readers for the telemetry channels (`throughput`, `circuits`, `queues`, `cpu`). Those
 * channels are produced by lqosd's telemetry, which may be absent or newer than this UI; every reader
 * returns undefined / empty for data it does not understand instead of throwing.
 *
 * Accepted forms (bits per second unless a key says otherwise):
 * - throughput: `{downloadBps, uploadBps}`, `{download, upload}`, `{down, up}`, `{bps:{download,upload}}`,
 *   optionally with `shaped…` variants and a `ts`/`at` timestamp;
 * - circuits: an array, or `{circuits:[…]}` / `{top:[…]}` / `{items:[…]}`, or an object keyed by
 *   circuit id; each entry `{id|circuitId, downloadBps, uploadBps}` (same key variants as above);
 * - queues: an array, or `{nodes:[…]}` / `{queues:[…]}`, or an object keyed by node path; each entry
 *   `{path|name|node, downloadBps, uploadBps}`.
 */
export interface Rate {
  downloadBps: number;
  uploadBps: number;
}
export interface ThroughputSample extends Rate {
  at: number;
  shaped?: Rate;
}

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);
const num = (v: unknown): number | undefined => (typeof v === 'number' && Number.isFinite(v) ? v : undefined);

const DOWN_KEYS = ['downloadBps', 'download_bps', 'downBps', 'down_bps', 'bitsDown', 'download', 'down', 'rx'];
const UP_KEYS = ['uploadBps', 'upload_bps', 'upBps', 'up_bps', 'bitsUp', 'upload', 'up', 'tx'];
const MBPS_DOWN = ['downloadMbps', 'download_mbps'];
const MBPS_UP = ['uploadMbps', 'upload_mbps'];

function pick(o: Obj, keys: string[]): number | undefined {
  for (const k of keys) {
    const v = o[k];
    const n = num(v);
    if (n !== undefined) return n;
    if (isObj(v)) {
      const inner = num(v.bps) ?? num(v.bits) ?? num(v.bitsPerSecond);
      if (inner !== undefined) return inner;
    }
  }
  return undefined;
}

/** Reads a download/upload pair from an object (or its `bps` / `bits` / `rates` member). */
export function readRate(v: unknown): Rate | undefined {
  if (!isObj(v)) return undefined;
  for (const o of [v, v.bps, v.bits, v.bitsPerSecond, v.rates, v.rate, v.throughput]) {
    if (!isObj(o)) continue;
    let d = pick(o, DOWN_KEYS);
    let u = pick(o, UP_KEYS);
    if (d === undefined || u === undefined) {
      const dm = pick(o, MBPS_DOWN);
      const um = pick(o, MBPS_UP);
      if (dm !== undefined && um !== undefined) {
        d = dm * 1e6;
        u = um * 1e6;
      }
    }
    if (d !== undefined && u !== undefined) return { downloadBps: d, uploadBps: u };
  }
  return undefined;
}

function readTime(v: Obj): number {
  for (const k of ['ts', 'at', 'time', 'timestamp']) {
    const t = v[k];
    if (typeof t === 'number' && Number.isFinite(t)) return t < 1e12 ? t * 1000 : t;
    if (typeof t === 'string') {
      const p = Date.parse(t);
      if (!Number.isNaN(p)) return p;
    }
  }
  return Date.now();
}

export function readThroughput(data: unknown): ThroughputSample | undefined {
  if (!isObj(data)) return undefined;
  const total = readRate(data.total) ?? readRate(data);
  if (!total) return undefined;
  const shaped = readRate(data.shaped);
  return { ...total, at: readTime(data), ...(shaped ? { shaped } : {}) };
}

function entries(data: unknown, listKeys: string[]): [string | undefined, unknown][] {
  if (Array.isArray(data)) return data.map((e) => [undefined, e]);
  if (!isObj(data)) return [];
  for (const k of listKeys) {
    if (Array.isArray(data[k])) return (data[k] as unknown[]).map((e) => [undefined, e]);
    if (isObj(data[k])) return Object.entries(data[k] as Obj);
  }
  return Object.entries(data);
}

function readKeyed(data: unknown, listKeys: string[], idKeys: string[]): Map<string, Rate> {
  const out = new Map<string, Rate>();
  for (const [key, e] of entries(data, listKeys)) {
    if (!isObj(e)) continue;
    let id = key;
    for (const k of idKeys) {
      if (typeof e[k] === 'string' && e[k] !== '') {
        id = e[k] as string;
        break;
      }
    }
    const r = readRate(e);
    if (id !== undefined && r) out.set(id, r);
  }
  return out;
}

/** Live rate per circuit id. */
export function readCircuitRates(data: unknown): Map<string, Rate> {
  return readKeyed(data, ['circuits', 'top', 'items', 'rates'], ['id', 'circuitId', 'circuit_id', 'circuit']);
}

/** Live rate per node path (or name). */
export function readNodeRates(data: unknown): Map<string, Rate> {
  return readKeyed(data, ['nodes', 'queues', 'items', 'tree'], ['path', 'nodePath', 'node_path', 'name', 'node']);
}
