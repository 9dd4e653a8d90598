/**
 * Readers for the telemetry channels lqosd publishes (lib/telemetry/service.ts):
 * - `throughput`: `{at, dataplane, totals:{downBps, upBps, shapedDownBps, shapedUpBps, …}, link,
 *   nodes:[{path, name, depth, downBps, upBps, ceilDownMbps, …}] (top-level nodes), ring}`;
 * - `circuits`: `{at, topDownload:[view], topUpload:[view], activeCount, active:[view]}` with
 *   view = `{id, name, parentPath, downBps, upBps, ceilDownMbps, ceilUpMbps, utilDownPct, …}`;
 * - `cpu`: `{at, total, perCore:[%]}` (readCpu); `queues` (cake statistics) is not read yet.
 * The channels may be absent (no telemetry) or newer than this UI: every reader returns undefined /
 * empty for data it does not understand instead of throwing, and also accepts the obvious variants
 * (`downloadBps`/`download`/`down`, `…Mbps`, arrays or objects keyed by id / path).
 */
export interface Rate {
  downloadBps: number;
  uploadBps: number;
}
export interface ThroughputSample extends Rate {
  at: number;
  shaped?: Rate;
  /** false: no dataplane attached (dry run or degraded), the counters stay at zero. */
  dataplane?: boolean;
}

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);
const num = (v: unknown): number | undefined => (typeof v === 'number' && Number.isFinite(v) ? v : undefined);

const DOWN_KEYS = ['downBps', 'downloadBps', 'download_bps', 'down_bps', 'bitsDown', 'download', 'down', 'rx'];
const UP_KEYS = ['upBps', 'uploadBps', 'upload_bps', 'up_bps', 'bitsUp', 'upload', 'up', 'tx'];
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
    // epoch ms (or s); 0 = "no tick yet"
    if (typeof t === 'number' && Number.isFinite(t) && t > 1e9) return t < 1e12 ? t * 1000 : t;
    if (typeof t === 'string') {
      const p = Date.parse(t);
      if (!Number.isNaN(p)) return p;
    }
  }
  return Date.now();
}

export function readThroughput(data: unknown): ThroughputSample | undefined {
  if (!isObj(data)) return undefined;
  const totals = isObj(data.totals) ? data.totals : isObj(data.total) ? data.total : data;
  const total = readRate(totals);
  if (!total) return undefined;
  const sd = num(totals.shapedDownBps);
  const su = num(totals.shapedUpBps);
  const shaped = sd !== undefined && su !== undefined ? { downloadBps: sd, uploadBps: su } : readRate(data.shaped);
  return {
    ...total,
    at: readTime(data),
    ...(shaped ? { shaped } : {}),
    ...(typeof data.dataplane === 'boolean' ? { dataplane: data.dataplane } : {}),
  };
}

/** Entries of the first list key present (all list keys when `merge`), else of the object itself. */
function entries(data: unknown, listKeys: string[], merge = false): [string | undefined, unknown][] {
  if (Array.isArray(data)) return data.map((e) => [undefined, e]);
  if (!isObj(data)) return [];
  const out: [string | undefined, unknown][] = [];
  for (const k of listKeys) {
    if (Array.isArray(data[k])) out.push(...(data[k] as unknown[]).map((e): [undefined, unknown] => [undefined, e]));
    else if (isObj(data[k])) out.push(...Object.entries(data[k] as Obj));
    else continue;
    if (!merge) break;
  }
  return out.length > 0 ? out : Object.entries(data);
}

function readKeyed(data: unknown, listKeys: string[], idKeys: string[]): Map<string, Rate> {
  const out = new Map<string, Rate>();
  for (const [key, e] of entries(data, listKeys, true)) {
    if (!isObj(e)) continue;
    let id = key;
    for (const k of idKeys) {
      if (typeof e[k] === 'string' && e[k] !== '') {
        id = e[k] as string;
        break;
      }
    }
    const r = readRate(e);
    if (id !== undefined && r && !out.has(id)) out.set(id, r);
  }
  return out;
}

/** Live rate per circuit id (`circuits` channel: active + top lists). */
export function readCircuitRates(data: unknown): Map<string, Rate> {
  return readKeyed(data, ['active', 'topDownload', 'topUpload', 'circuits', 'top', 'items'], ['id', 'circuitId', 'circuit_id', 'circuit']);
}

/** Live rate per node path (the `nodes` list of the `throughput` channel). */
export function readNodeRates(data: unknown): Map<string, Rate> {
  if (!isObj(data) || !('nodes' in data)) return new Map();
  return readKeyed(data.nodes, [], ['path', 'nodePath', 'node_path', 'name', 'node']);
}

export interface CpuLoad {
  /** Busy % over all cores, if given. */
  total?: number;
  /** Busy % per core (index = CPU number). */
  perCore: number[];
}

/** The `cpu` channel: `{at, total, perCore:[%]}` (also `cores` / `per_core`, or a bare array). */
export function readCpu(data: unknown): CpuLoad | undefined {
  const list = Array.isArray(data) ? data : isObj(data) ? (data.perCore ?? data.per_core ?? data.cores ?? data.cpus) : undefined;
  if (!Array.isArray(list)) return undefined;
  const perCore = list.map((v) => (isObj(v) ? (num(v.pct) ?? num(v.busy) ?? num(v.usage) ?? num(v.load) ?? 0) : (num(v) ?? 0)));
  const total = isObj(data) ? num(data.total) : undefined;
  return { perCore, ...(total !== undefined ? { total } : {}) };
}
