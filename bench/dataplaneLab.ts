/**
 * Lab part of bench:dataplane: what the shaped path costs in throughput, measured honestly.
 *
 * Two namespace labs are built side by side with the same circuits:
 *   - `lqbenchp`: the plain Linux bridge, no programs, no qdiscs (no lqosd, no LibreQoS);
 *   - `lqbench`:  the real pipeline (lqosd + LibreQoS: XDP + tc egress + mq/HTB).
 * Each round measures, in a rotating order, one iperf3 TCP run per configuration and direction:
 *   plain      plain bridge, veth default offloads (GSO/TSO/SG on, GRO off);
 *   plain-fair plain bridge with the shaped ports' offloads mirrored (attach turns gro/gso/tso/sg/lro
 *              off): the fair baseline, the same per-frame work outside the dataplane;
 *   unmapped   shaped lab, an address in no circuit (XDP_PASS, HTB default class, no CPU redirect);
 *   circuit    shaped lab, circuit `bench-fast` whose class ceiling (10 Gbit/s) is far above what the
 *              veth path carries: the frame takes the CPU redirect (cpumap) and the circuit's HTB class,
 *              so the ratio shows dataplane overhead and not the HTB limit.
 * Ratios are taken inside each round (interleaved, same machine state) and reported as median and
 * min–max over the rounds. dp_stats deltas around the circuit runs prove the redirect was taken.
 *
 * Two phases, both labs alike: `inline` (the endpoints as the lab builds them: a frame sent into the
 * customer or Internet namespace is received by that host's TCP stack synchronously, on the CPU and in
 * the context that sent it, i.e. inside the shaper's cpumap kthread on the redirect path) and `napi`
 * (the endpoints' eth0 get GRO and threaded NAPI, so their receive work runs in their own kernel
 * thread, as it does on separate hosts: the shaper's CPUs are charged for forwarding only).
 */
import { execa } from 'execa';
import { performance } from 'node:perf_hooks';
import { loadavg } from 'node:os';
import { teardownAll } from '../dataplane/attach.ts';
import { parseEthtoolFeatures } from '../dataplane/attachChecks.ts';
import { readStats } from '../dataplane/maps.ts';
import type { DataplaneStats } from '../dataplane/abi.ts';
import type { DataplaneLogger } from '../dataplane/log.ts';
import { UNSHAPED_IP, defaultLabCircuits, measure, runLabLibreQoS, startLab, stopLab, type Lab, type LabCircuit } from '../lab/labEnv.ts';

export const SHAPED_LAB = 'lqbench';
export const PLAIN_LAB = 'lqbenchp';
/** A circuit whose ceiling is far above the veth lab's capacity (no parent node: generated parent, 10 Gbit/s). */
export const FAST: LabCircuit = { id: 'bench-fast', name: 'Bench Fast Customer', parent: '', ipv4: '10.99.1.13', ipv6: '', down: 10000, up: 10000, path: 'plain' };
const ACCURACY_ID = 'lab-50';

export const CONFIGS = ['plain', 'plain-fair', 'unmapped', 'circuit'] as const;
export type ConfigName = (typeof CONFIGS)[number];
export type Dir = 'download' | 'upload';

/** Offloads the attach turns off (ethtool -K short name → `ethtool -k` name), mirrored on the plain lab. */
const MIRRORED: Record<string, string> = {
  gro: 'generic-receive-offload', gso: 'generic-segmentation-offload', tso: 'tcp-segmentation-offload',
  sg: 'scatter-gather', lro: 'large-receive-offload',
};

export const ENDPOINT_MODES = ['inline', 'napi'] as const;
export type EndpointMode = (typeof ENDPOINT_MODES)[number];

export interface Round { endpoints: EndpointMode; order: ConfigName[]; load: number; mbps: Record<Dir, Record<ConfigName, number>> }

export interface LabBenchResult {
  rounds: Round[];
  seconds: number;
  xdpModes: string;
  defaultClass: string;
  fastClass: string;
  /** The shaped ports' offloads read back, and what the plain ports were set to for plain-fair. */
  shapedOffloads: string;
  plainDefaultOffloads: string;
  /** dp_stats deltas summed over the circuit runs. */
  circuitStats?: DataplaneStats;
  accuracy: { id: string; ip: string; planDown: number; planUp: number; down: number; up: number };
  buildMs: number;
  libreqosMs: number;
}

export interface LabBenchOptions {
  seconds: number;
  rounds: number;
  say: (s: string) => void;
  /** Registers a cleanup (run on normal end, failure and signals). */
  onCleanup: (what: string, fn: () => Promise<void>) => void;
}

const quiet: DataplaneLogger = { info: () => undefined, warn: () => undefined };

export const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};

/** Median and min–max of the per-round ratio a/b. */
export function ratioStats(rounds: Round[], dir: Dir, a: ConfigName, b: ConfigName): { median: number; min: number; max: number; all: number[] } {
  const all = rounds.map((r) => r.mbps[dir][a] / r.mbps[dir][b]);
  return { median: median(all), min: Math.min(...all), max: Math.max(...all), all };
}

/** The configurations of round `r` in rotated order (no configuration is always first or last). */
export function roundOrder(r: number): ConfigName[] {
  return CONFIGS.map((_, i) => CONFIGS[(i + r) % CONFIGS.length]!);
}

async function features(ns: string, dev: string): Promise<Map<string, boolean>> {
  const r = await execa('ip', ['netns', 'exec', ns, 'ethtool', '-k', dev], { reject: false });
  const f = parseEthtoolFeatures(r.stdout ?? '');
  if (!f.size) throw new Error(`ethtool -k ${dev} in ${ns} gave nothing (${r.stderr?.trim()}): install ethtool`);
  return new Map([...f].map(([k, v]) => [k, v.on]));
}

const describe = (f: Map<string, boolean>) => Object.entries(MIRRORED).map(([s, l]) => `${s} ${f.get(l) ? 'on' : 'off'}`).join(', ');

/** Set the plain lab's ports to `want` (feature name → on), or back to the veth defaults. */
async function setOffloads(lab: Lab, want: Map<string, boolean>): Promise<void> {
  for (const dev of [lab.tb.shaperIfs.internet, lab.tb.shaperIfs.customer]) {
    const args = ['-K', dev];
    for (const [short, long] of Object.entries(MIRRORED)) if (want.has(long)) args.push(short, want.get(long) ? 'on' : 'off');
    // lro is [fixed] off on veth: ethtool exits non-zero for it; the read-back below is what counts.
    await execa('ip', ['netns', 'exec', lab.tb.ns.shaper, 'ethtool', ...args], { reject: false });
    const got = await features(lab.tb.ns.shaper, dev);
    for (const long of Object.values(MIRRORED)) {
      if (want.has(long) && got.get(long) !== want.get(long)) throw new Error(`${dev}: ${long} stayed ${got.get(long) ? 'on' : 'off'} in ${lab.tb.ns.shaper}`);
    }
  }
}

async function xdpModesOf(lab: Lab): Promise<string> {
  const r = await execa('ip', ['-n', lab.tb.ns.shaper, '-j', '-d', 'link', 'show'], { reject: false });
  const names: Record<number, string> = { 1: 'driver', 2: 'generic', 3: 'hw', 4: 'multi' };
  try {
    const links = JSON.parse(r.stdout || '[]') as Array<{ ifname: string; xdp?: { mode?: number } }>;
    const out = links.filter((l) => l.xdp?.mode).map((l) => `${l.ifname}:${names[l.xdp!.mode!] ?? l.xdp!.mode}`);
    return out.length ? out.join(', ') : 'none';
  } catch {
    return 'unknown';
  }
}

/** Endpoint receive mode of both labs' end hosts (eth0 in the -inet and -cust namespaces). */
async function setEndpoints(labs: Lab[], mode: EndpointMode): Promise<void> {
  const on = mode === 'napi' ? 'on' : 'off';
  for (const lab of labs) {
    for (const ns of [lab.tb.ns.inet, lab.tb.ns.cust]) {
      // veth has NAPI only while GRO is on: GRO first when turning on, threaded NAPI off first when turning off.
      // sysfs is per network namespace, so it is written from inside (0 fails harmlessly without NAPI).
      const threaded = (v: number) => execa('ip', ['netns', 'exec', ns, 'sh', '-c', `echo ${v} > /sys/class/net/eth0/threaded`], { reject: v === 1 });
      if (mode === 'inline') await threaded(0);
      await execa('ip', ['netns', 'exec', ns, 'ethtool', '-K', 'eth0', 'gro', on]);
      if (mode === 'napi') await threaded(1);
    }
  }
}

/** Rate/ceil of the class on the customer port whose line matches `re`, as tc prints it. */
async function classLine(lab: Lab, re: RegExp): Promise<string> {
  const r = await execa('ip', ['netns', 'exec', lab.tb.ns.shaper, 'tc', 'class', 'show', 'dev', lab.tb.shaperIfs.customer], { reject: false });
  const line = (r.stdout ?? '').split('\n').find((l) => re.test(l)) ?? '';
  const m = /class htb (\S+) .*rate (\S+) ceil (\S+) burst (\S+) cburst (\S+)/.exec(line);
  return m ? `${m[1]} rate ${m[2]} ceil ${m[3]} burst ${m[4]} cburst ${m[5]}` : 'not found';
}

async function libreqos(lab: Lab): Promise<number> {
  const t0 = performance.now();
  const run = await runLabLibreQoS(lab);
  if (run.code !== 0) throw new Error(`LibreQoS exited ${run.code}:\n${run.output.split('\n').slice(-15).join('\n')}`);
  return performance.now() - t0;
}

const sub = (a: DataplaneStats, b: DataplaneStats): DataplaneStats =>
  Object.fromEntries(Object.keys(a).map((k) => [k, a[k as keyof DataplaneStats] - b[k as keyof DataplaneStats]])) as unknown as DataplaneStats;
const add = (a: DataplaneStats | undefined, b: DataplaneStats): DataplaneStats =>
  a ? (Object.fromEntries(Object.keys(b).map((k) => [k, a[k as keyof DataplaneStats] + b[k as keyof DataplaneStats]])) as unknown as DataplaneStats) : b;

export async function benchLab(o: LabBenchOptions): Promise<LabBenchResult> {
  const b0 = performance.now();
  const circuits = [...defaultLabCircuits, FAST];
  o.say(`lab: building ${SHAPED_LAB} (LibreQoS) and ${PLAIN_LAB} (plain bridge)…`);
  o.onCleanup('stop shaped lab', () => stopLab(SHAPED_LAB));
  o.onCleanup('stop plain lab', () => stopLab(PLAIN_LAB));
  const shaped = await startLab({ id: SHAPED_LAB, circuits });
  const plain = await startLab({ id: PLAIN_LAB, circuits, daemon: false });
  const buildMs = performance.now() - b0;
  o.say('lab: running LibreQoS in the shaped lab…');
  const libreqosMs = await libreqos(shaped);
  o.onCleanup('lab dataplane fds', async () => { await teardownAll({ pinRoot: shaped.pinRoot, netns: shaped.tb.ns.shaper, logger: quiet }); });

  const shapedF = await features(shaped.tb.ns.shaper, shaped.tb.shaperIfs.customer);
  const plainDefault = await features(plain.tb.ns.shaper, plain.tb.shaperIfs.customer);
  const fair = new Map(Object.values(MIRRORED).filter((l) => shapedF.has(l)).map((l) => [l, shapedF.get(l)!]));
  const veth = new Map(Object.values(MIRRORED).filter((l) => plainDefault.has(l)).map((l) => [l, plainDefault.get(l)!]));

  const fastIp = FAST.ipv4;
  let circuitStats: DataplaneStats | undefined;
  const run = async (c: ConfigName, dir: Dir): Promise<number> => {
    switch (c) {
      case 'plain': await setOffloads(plain, veth); return measure(plain, UNSHAPED_IP, dir, o.seconds);
      case 'plain-fair': await setOffloads(plain, fair); return measure(plain, UNSHAPED_IP, dir, o.seconds);
      case 'unmapped': return measure(shaped, UNSHAPED_IP, dir, o.seconds);
      case 'circuit': {
        const before = await readStats({ pinRoot: shaped.pinRoot });
        const v = await measure(shaped, fastIp, dir, o.seconds);
        circuitStats = add(circuitStats, sub(await readStats({ pinRoot: shaped.pinRoot }), before));
        return v;
      }
    }
  };

  const rounds: Round[] = [];
  for (const endpoints of ENDPOINT_MODES) {
    await setEndpoints([plain, shaped], endpoints);
    for (let r = 0; r < o.rounds; r++) {
      const order = roundOrder(r);
      const mbps = { download: {}, upload: {} } as Round['mbps'];
      for (const dir of ['download', 'upload'] as const) for (const c of order) mbps[dir][c] = await run(c, dir);
      rounds.push({ endpoints, order, load: loadavg()[0]!, mbps });
      const f = (d: Dir) => CONFIGS.map((c) => `${c} ${mbps[d][c].toFixed(0)}`).join(', ');
      o.say(`lab: endpoints ${endpoints}, round ${r + 1}/${o.rounds} (load ${loadavg()[0]!.toFixed(1)}): ↓ ${f('download')} | ↑ ${f('upload')} Mbit/s`);
    }
  }
  await setEndpoints([plain, shaped], 'inline');
  await setOffloads(plain, veth);

  const acc = shaped.circuits.find((c) => c.id === ACCURACY_ID);
  if (!acc) throw new Error(`lab circuit ${ACCURACY_ID} not found`);
  const down = await measure(shaped, acc.ipv4, 'download', o.seconds);
  const up = await measure(shaped, acc.ipv4, 'upload', o.seconds);
  return {
    rounds, seconds: o.seconds, buildMs, libreqosMs, circuitStats,
    xdpModes: await xdpModesOf(shaped),
    defaultClass: await classLine(shaped, / parent \d+:1 leaf [0-9a-f]+: prio 5 /),
    fastClass: await classLine(shaped, / leaf [0-9a-f]+: prio 3 .*ceil 10Gbit /),
    shapedOffloads: describe(shapedF), plainDefaultOffloads: describe(plainDefault),
    accuracy: { id: acc.id, ip: acc.ipv4, planDown: acc.down, planUp: acc.up, down, up },
  };
}
