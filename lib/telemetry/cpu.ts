/**
 * Per-core CPU utilisation from /proc/stat deltas (what upstream's system stats thread shows as
 * per-core bars). Busy = everything but idle and iowait; guest time is already inside user/nice.
 */
import { readFileSync } from 'node:fs';

export interface CpuTimes {
  /** `cpu` (aggregate) or `cpu0`, `cpu1`, ... */
  name: string;
  total: number;
  idle: number;
}

/** Parses the `cpu*` lines of /proc/stat (jiffies). The aggregate `cpu` line comes first when present. */
export function parseProcStat(text: string): CpuTimes[] {
  const out: CpuTimes[] = [];
  for (const line of text.split('\n')) {
    if (!line.startsWith('cpu')) continue;
    const parts = line.trim().split(/\s+/);
    const name = parts[0]!;
    if (!/^cpu\d*$/.test(name)) continue;
    // user nice system idle iowait irq softirq steal guest guest_nice
    const v = parts.slice(1, 9).map((x) => Number(x) || 0);
    const idle = (v[3] ?? 0) + (v[4] ?? 0);
    const total = v.reduce((a, b) => a + b, 0);
    out.push({ name, total, idle });
  }
  return out;
}

export interface CpuUsage {
  /** Aggregate busy percent over all cores. */
  total: number;
  /** Busy percent per core, in /proc/stat order (cpu0, cpu1, ...). */
  perCore: number[];
}

/** Busy percent per core between two readings (0 when a core did not advance). */
export function cpuUsage(prev: CpuTimes[], cur: CpuTimes[]): CpuUsage {
  const before = new Map(prev.map((c) => [c.name, c]));
  const busy = (c: CpuTimes) => {
    const p = before.get(c.name);
    if (!p) return 0;
    const dt = c.total - p.total;
    const di = c.idle - p.idle;
    if (dt <= 0) return 0;
    return Math.max(0, Math.min(100, Math.round(((dt - di) / dt) * 1000) / 10));
  };
  const agg = cur.find((c) => c.name === 'cpu');
  const cores = cur.filter((c) => c.name !== 'cpu');
  return { total: agg ? busy(agg) : 0, perCore: cores.map(busy) };
}

/** Reads /proc/stat (or a fixture) and reports usage since the previous call. */
export class CpuSampler {
  private prev: CpuTimes[] | undefined;
  latest: CpuUsage = { total: 0, perCore: [] };

  constructor(private readonly read: () => string = () => readFileSync('/proc/stat', 'utf8')) {}

  sample(): CpuUsage {
    let cur: CpuTimes[];
    try {
      cur = parseProcStat(this.read());
    } catch {
      return this.latest;
    }
    if (this.prev) this.latest = cpuUsage(this.prev, cur);
    this.prev = cur;
    return this.latest;
  }
}
