/**
 * Deterministic synthetic ISP dataset: network.json (regions > towers > APs) and a
 * ShapedDevices.csv with ~40 circuits per AP, 1–3 devices per circuit.
 *
 * Used by the compile benchmark, by tests, and by operators who want sample data:
 *   tsx bench/dataset.ts --circuits 1000 --out DIR [--seed 1] [--no-ipv6]
 *
 * Realism rules:
 *  - plans from a list of common residential/business tiers, 25–1000 Mbps down, upload
 *    1/5–1/2 of download; min (assured) rates 1–10 % of the max, at least 1 Mbps;
 *  - AP ceiling ≈ 0.3–0.5 × Σ plan maxes under it (oversubscribed), never below the largest
 *    plan under it; towers and regions oversubscribe their children the same way, never below
 *    their largest child; everything capped at the link rate (default 10 Gbit/s);
 *  - one unique IPv4 per device (a few devices carry two), drawn in order from 100.64.0.0/10
 *    then 10.0.0.0/8, skipping .0 and .255; optionally one IPv6 /64 per circuit from
 *    2001:db8::/32 (given to the circuit's first device);
 *  - ~3 % of circuits carry an sqm override.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { stringify } from 'csv-stringify/sync';
import { SHAPED_DEVICES_COLUMNS } from '../lib/inputs/shapedDevices.ts';

export interface DatasetOptions {
  circuits: number;
  /** PRNG seed (default 1). Same options → byte-identical output. */
  seed?: number;
  /** Give each circuit an IPv6 /64 (default true). */
  ipv6?: boolean;
  /** Inclusive range of devices per circuit (default [1, 3]). */
  devicesPerCircuit?: [number, number];
  /** Cap for every node ceiling, Mbps (default 10000 = the benchmark's link rate). */
  linkMbps?: number;
}

export interface DatasetStats {
  circuits: number;
  devices: number;
  /** CSV data rows (= devices). */
  rows: number;
  regions: number;
  towers: number;
  aps: number;
  ipv4Addresses: number;
  ipv6Prefixes: number;
  sqmOverrides: number;
  /** Expected IP mappings when every circuit is shaped (ipv4 + ipv6 prefixes). */
  expectedMappings: number;
  /** Σ plan download maxes / Σ AP download ceilings. */
  apOversubscription: number;
  csvBytes: number;
  networkBytes: number;
}

export interface Dataset {
  networkJson: string;
  shapedDevicesCsv: string;
  stats: DatasetStats;
}

/** ShapedDevices.csv's 16 columns in their canonical order (the rows below follow it). */
export const CSV_HEADER = SHAPED_DEVICES_COLUMNS.map((c) => c.header);

/** Plan tiers [down, up, relative weight]; upload is 1/5–1/2 of download. */
export const PLANS: ReadonlyArray<readonly [number, number, number]> = [
  [25, 5, 6],
  [50, 10, 10],
  [75, 15, 6],
  [100, 20, 16],
  [100, 50, 4],
  [150, 30, 8],
  [200, 40, 12],
  [250, 50, 8],
  [300, 100, 6],
  [400, 100, 5],
  [500, 100, 6],
  [500, 250, 3],
  [750, 250, 2],
  [1000, 200, 4],
  [1000, 500, 2],
];

const SQM_OVERRIDES = ['fq_codel', 'cake', 'none', 'fq_codel/cake', 'cake/fq_codel'] as const;
const STREETS = ['Main St', 'Oak Ave', 'Pine Rd', 'Maple Dr', 'Cedar Ln', 'Elm St', 'Hill Rd', 'Lake View', 'River Rd', 'Park Ave'];
const DEVICE_KINDS = ['CPE', 'Router', 'AP', 'ONT', 'Switch'];

/** mulberry32: tiny, fast, good enough for test data. Returns floats in [0, 1). */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

interface NodeJson {
  downloadBandwidthMbps: number;
  uploadBandwidthMbps: number;
  type: string;
  children?: Record<string, NodeJson>;
}

/** Sequential unique IPv4 host addresses: 100.64.0.0/10, then 10.0.0.0/8; no .0 / .255. */
class Ipv4Allocator {
  private readonly ranges: Array<[number, number]> = [
    [ipToInt(100, 64, 0, 0), ipToInt(100, 127, 255, 255)],
    [ipToInt(10, 0, 0, 0), ipToInt(10, 255, 255, 255)],
  ];
  private range = 0;
  private cur = this.ranges[0]![0];

  next(): string {
    for (;;) {
      const r = this.ranges[this.range];
      if (!r) throw new Error('synthetic IPv4 space exhausted (100.64.0.0/10 + 10.0.0.0/8)');
      if (this.cur > r[1]) {
        this.range++;
        this.cur = this.ranges[this.range]?.[0] ?? 0;
        continue;
      }
      const v = this.cur++;
      const last = v & 0xff;
      if (last === 0 || last === 255) continue;
      return `${v >>> 24}.${(v >>> 16) & 0xff}.${(v >>> 8) & 0xff}.${last}`;
    }
  }
}

function ipToInt(a: number, b: number, c: number, d: number): number {
  return ((a << 24) >>> 0) + (b << 16) + (c << 8) + d;
}

/** The n-th (1-based) /64 inside 2001:db8::/32, in RFC 5952 form. */
export function ipv6Prefix(n: number): string {
  const hi = Math.floor(n / 0x10000) & 0xffff;
  const lo = n & 0xffff;
  return lo === 0 ? `2001:db8:${hi.toString(16)}::/64` : `2001:db8:${hi.toString(16)}:${lo.toString(16)}::/64`;
}

function mac(n: number): string {
  // Locally administered unicast prefix 02:, then the 40-bit device counter.
  const parts = ['02'];
  for (let shift = 32; shift >= 0; shift -= 8) parts.push((Math.floor(n / 2 ** shift) & 0xff).toString(16).padStart(2, '0'));
  return parts.join(':');
}

const roundUp = (v: number, step: number) => Math.ceil(v / step) * step;

export function generateDataset(opts: DatasetOptions): Dataset {
  const total = Math.floor(opts.circuits);
  if (!Number.isFinite(total) || total < 0) throw new Error(`circuits must be a non-negative integer, got ${opts.circuits}`);
  const rand = mulberry32(opts.seed ?? 1);
  const withV6 = opts.ipv6 ?? true;
  const [dMin, dMax] = opts.devicesPerCircuit ?? [1, 3];
  if (!(dMin >= 1 && dMax >= dMin)) throw new Error(`devicesPerCircuit must be [min >= 1, max >= min], got [${dMin}, ${dMax}]`);
  const cap = opts.linkMbps ?? 10000;

  const int = (lo: number, hi: number) => lo + Math.floor(rand() * (hi - lo + 1));
  const between = (lo: number, hi: number) => lo + rand() * (hi - lo);
  // Only plans that fit under the cap, so every circuit fits under its AP.
  const plans = PLANS.filter((p) => p[0] <= cap && p[1] <= cap);
  if (plans.length === 0) throw new Error(`linkMbps ${cap} is below the smallest plan (${PLANS[0]![0]} Mbps)`);
  const planWeight = plans.reduce((s, p) => s + p[2], 0);
  const pickPlan = () => {
    let r = rand() * planWeight;
    for (const p of plans) if ((r -= p[2]) < 0) return p;
    return plans[plans.length - 1]!;
  };

  const network: Record<string, NodeJson> = {};
  const rows: string[][] = [];
  const ip4 = new Ipv4Allocator();
  const stats: DatasetStats = {
    circuits: 0,
    devices: 0,
    rows: 0,
    regions: 0,
    towers: 0,
    aps: 0,
    ipv4Addresses: 0,
    ipv6Prefixes: 0,
    sqmOverrides: 0,
    expectedMappings: 0,
    apOversubscription: 0,
    csvBytes: 0,
    networkBytes: 0,
  };
  let sumPlanDown = 0;
  let sumApDown = 0;

  /** Emits one AP with `count` circuits; returns its node. */
  const makeAp = (apName: string, count: number): NodeJson => {
    let sumDown = 0;
    let sumUp = 0;
    let maxDown = 0;
    let maxUp = 0;
    for (let k = 0; k < count; k++) {
      const idx = ++stats.circuits;
      const [down, up] = pickPlan();
      sumDown += down;
      sumUp += up;
      maxDown = Math.max(maxDown, down);
      maxUp = Math.max(maxUp, up);
      const minDown = Math.max(1, Math.round(down * between(0.01, 0.1)));
      const minUp = Math.max(1, Math.round(up * between(0.01, 0.1)));
      let sqm = '';
      if (rand() < 0.03) {
        sqm = SQM_OVERRIDES[int(0, SQM_OVERRIDES.length - 1)]!;
        stats.sqmOverrides++;
      }
      const business = rand() < 0.08;
      const circuitId = `C${String(idx).padStart(6, '0')}`;
      // Some names contain a comma, to exercise CSV quoting.
      const circuitName = business
        ? `Business ${idx}, Suite ${int(1, 400)}`
        : `${idx} ${STREETS[int(0, STREETS.length - 1)]}`;
      const comment = business ? 'business' : rand() < 0.05 ? 'migrated from legacy CRM' : '';
      const nDevices = int(dMin, dMax);
      for (let d = 0; d < nDevices; d++) {
        const dev = ++stats.devices;
        const v4 = [ip4.next()];
        if (rand() < 0.05) v4.push(ip4.next());
        stats.ipv4Addresses += v4.length;
        let v6 = '';
        if (withV6 && d === 0) {
          v6 = ipv6Prefix(idx);
          stats.ipv6Prefixes++;
        }
        rows.push([
          circuitId,
          circuitName,
          `D${String(dev).padStart(7, '0')}`,
          `${circuitId}-${DEVICE_KINDS[int(0, DEVICE_KINDS.length - 1)]}${d + 1}`,
          apName,
          '',
          '',
          mac(dev),
          v4.join(','),
          v6,
          String(minDown),
          String(minUp),
          String(down),
          String(up),
          comment,
          sqm,
        ]);
      }
    }
    sumPlanDown += sumDown;
    const ceilDown = Math.min(cap, Math.max(maxDown, roundUp(sumDown * between(0.3, 0.5), 50)));
    const ceilUp = Math.min(cap, Math.max(maxUp, roundUp(sumUp * between(0.3, 0.5), 50)));
    sumApDown += ceilDown;
    return { downloadBandwidthMbps: ceilDown, uploadBandwidthMbps: ceilUp, type: 'ap' };
  };

  /** Parent ceiling from its children: oversubscribed by `factor`, ≥ largest child, ≤ cap. */
  const aggregate = (children: NodeJson[], lo: number, hi: number, step: number) => {
    const f = between(lo, hi);
    const sd = children.reduce((s, c) => s + c.downloadBandwidthMbps, 0);
    const su = children.reduce((s, c) => s + c.uploadBandwidthMbps, 0);
    const md = Math.max(0, ...children.map((c) => c.downloadBandwidthMbps));
    const mu = Math.max(0, ...children.map((c) => c.uploadBandwidthMbps));
    return {
      down: Math.min(cap, Math.max(md, roundUp(sd * f, step))),
      up: Math.min(cap, Math.max(mu, roundUp(su * f, step))),
    };
  };

  let remaining = total;
  for (let r = 1; remaining > 0; r++) {
    const regionName = `Region_${r}`;
    const towers: Record<string, NodeJson> = {};
    const nTowers = int(8, 15);
    for (let t = 1; t <= nTowers && remaining > 0; t++) {
      const towerName = `Tower_${r}_${t}`;
      const aps: Record<string, NodeJson> = {};
      const nAps = int(4, 8);
      for (let a = 1; a <= nAps && remaining > 0; a++) {
        // ~40 circuits per AP (25–55); the last AP takes what is left.
        const count = Math.min(remaining, int(25, 55));
        remaining -= count;
        const apName = `AP_${r}_${t}_${a}`;
        aps[apName] = makeAp(apName, count);
        stats.aps++;
      }
      const agg = aggregate(Object.values(aps), 0.5, 0.8, 100);
      towers[towerName] = { downloadBandwidthMbps: agg.down, uploadBandwidthMbps: agg.up, type: 'site', children: aps };
      stats.towers++;
    }
    const agg = aggregate(Object.values(towers), 0.5, 0.8, 1000);
    network[regionName] = { downloadBandwidthMbps: agg.down, uploadBandwidthMbps: agg.up, type: 'site', children: towers };
    stats.regions++;
  }

  const shapedDevicesCsv = stringify(rows, { header: true, columns: [...CSV_HEADER] });
  const networkJson = JSON.stringify(network, null, 2) + '\n';
  stats.rows = rows.length;
  stats.expectedMappings = stats.ipv4Addresses + stats.ipv6Prefixes;
  stats.apOversubscription = sumApDown > 0 ? Math.round((sumPlanDown / sumApDown) * 100) / 100 : 0;
  stats.csvBytes = Buffer.byteLength(shapedDevicesCsv);
  stats.networkBytes = Buffer.byteLength(networkJson);
  return { networkJson, shapedDevicesCsv, stats };
}

/** Writes network.json and ShapedDevices.csv into `dir` (created if missing). */
export function writeDataset(dir: string, ds: Dataset): { network: string; devices: string } {
  mkdirSync(dir, { recursive: true });
  const network = join(dir, 'network.json');
  const devices = join(dir, 'ShapedDevices.csv');
  writeFileSync(network, ds.networkJson);
  writeFileSync(devices, ds.shapedDevicesCsv);
  return { network, devices };
}

function main(argv: string[]): void {
  const { values } = parseArgs({
    args: argv,
    options: {
      circuits: { type: 'string', default: '1000' },
      out: { type: 'string' },
      seed: { type: 'string', default: '1' },
      'no-ipv6': { type: 'boolean', default: false },
      devices: { type: 'string', default: '1-3' },
      help: { type: 'boolean', short: 'h', default: false },
    },
    strict: true,
  });
  if (values.help || !values.out) {
    process.stdout.write(
      'usage: tsx bench/dataset.ts --circuits N --out DIR [--seed S] [--no-ipv6] [--devices MIN-MAX]\n' +
        'Writes DIR/network.json and DIR/ShapedDevices.csv (deterministic for a seed).\n',
    );
    process.exitCode = values.help ? 0 : 2;
    return;
  }
  const circuits = Number(values.circuits);
  const seed = Number(values.seed);
  const m = /^(\d+)-(\d+)$/.exec(values.devices ?? '');
  if (!Number.isInteger(circuits) || circuits < 0 || !Number.isInteger(seed) || !m) {
    process.stderr.write('bad --circuits, --seed or --devices value\n');
    process.exitCode = 2;
    return;
  }
  const ds = generateDataset({ circuits, seed, ipv6: !values['no-ipv6'], devicesPerCircuit: [Number(m[1]), Number(m[2])] });
  const files = writeDataset(resolve(values.out), ds);
  process.stdout.write(`${files.network}\n${files.devices}\n${JSON.stringify(ds.stats)}\n`);
}

if (process.argv[1] && import.meta.url === pathToFileURL(resolve(process.argv[1])).href) main(process.argv.slice(2));
