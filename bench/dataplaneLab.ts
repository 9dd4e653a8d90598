/**
 * Lab part of bench:dataplane: what the shaped path costs in throughput, per forwarding mode.
 *
 * Namespace labs are built side by side with the same circuits:
 *   - `lqbenchp`: the plain Linux bridge, no programs, no qdiscs (no lqosd, no LibreQoS): the baseline;
 *   - one LibreQoS lab per selected forwarding mode (lab/testbed.ts), the real pipeline (lqosd +
 *     LibreQoS: XDP + tc + mq/HTB): `lqbench` (linux-bridge), `lqbenchx` (xdp-bridge), `lqbenchs` (stick).
 * Each round measures, in an order that rotates every round, one iperf3 TCP run per configuration and
 * direction:
 *   plain            plain bridge, veth default offloads (GSO/TSO/SG on, GRO off);
 *   plain-fair       plain bridge with the shaped ports' offloads mirrored (attach turns gro/gso/tso/sg/lro
 *                    off): the fair baseline, the same per-frame work outside the dataplane;
 *   plain-stick      (with stick only) the stick topology without lqos-ts: the same router namespace and
 *                    trunk (shaped trunk's offloads), lab/stick_hairpin.c swaps the VLAN and hairpins; it
 *                    separates what the on-a-stick wiring costs from what lqos-ts costs (informational);
 *   <mode>:unmapped  an address in no circuit (XDP_PASS, HTB default class, no CPU redirect);
 *   <mode>:circuit   circuit `bench-fast` whose class ceiling (10 Gbit/s) is far above what the veth path
 *                    carries: every frame takes the CPU redirect (cpumap) and the circuit's HTB class, so
 *                    the ratio shows dataplane overhead and not the HTB limit.
 * Ratios are taken inside each round (interleaved, same machine state) and reported as median and
 * min–max over the rounds. dp_stats deltas around the circuit runs prove the redirect was taken.
 *
 * End-host phases (all labs alike, lab/testbed.ts setEndHostReceive): `napi` (GRO + threaded NAPI on
 * the end hosts, as separate machines; the targets are judged here) and optionally `inline`.
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
import { LAB_FORWARDING, attachPlainHairpin, setEndHostReceive, type EndHostReceive, type LabForwarding } from '../lab/testbed.ts';
import { median as statsMedian } from './stats.ts';

export const PLAIN_LAB = 'lqbenchp';
/** Stick topology without lqos-ts (router + trunk, lab/stick_hairpin.c swaps and hairpins): only with stick. */
export const PLAIN_STICK_LAB = 'lqbenchq';
/** LibreQoS lab id per forwarding mode. */
export const MODE_LAB: Record<LabForwarding, string> = { 'linux-bridge': 'lqbench', 'xdp-bridge': 'lqbenchx', stick: 'lqbenchs' };
export const MODES = LAB_FORWARDING;
/** A circuit whose ceiling is far above the veth lab's capacity (no parent node: generated parent, 10 Gbit/s). */
export const FAST: LabCircuit = { id: 'bench-fast', name: 'Bench Fast Customer', parent: '', ipv4: '10.99.1.13', ipv6: '', down: 10000, up: 10000, path: 'plain' };
const ACCURACY_ID = 'lab-50';

export type Kind = 'unmapped' | 'circuit';
export type ConfigName = 'plain' | 'plain-fair' | 'plain-stick' | `${LabForwarding}:${Kind}`;
export type Dir = 'download' | 'upload';
export const DIRS: readonly Dir[] = ['download', 'upload'];

/** Every configuration measured in a round for these modes: the baselines, then two per mode. */
export function configsFor(modes: readonly LabForwarding[]): ConfigName[] {
  const stick: ConfigName[] = modes.includes('stick') ? ['plain-stick'] : [];
  return ['plain', 'plain-fair', ...stick, ...modes.flatMap((m) => [`${m}:unmapped`, `${m}:circuit`] as ConfigName[])];
}

/** Offloads the attach turns off (ethtool -K short name → `ethtool -k` name), mirrored on the plain lab. */
const MIRRORED: Record<string, string> = {
  gro: 'generic-receive-offload', gso: 'generic-segmentation-offload', tso: 'tcp-segmentation-offload',
  sg: 'scatter-gather', lro: 'large-receive-offload',
};

export const ENDPOINT_MODES: readonly EndHostReceive[] = ['napi', 'inline'];
export type EndpointMode = EndHostReceive;
/** The end-host phase the targets are judged on. */
export const JUDGED: EndpointMode = 'napi';

export interface Round { endpoints: EndpointMode; order: ConfigName[]; load: number; mbps: Record<Dir, Partial<Record<ConfigName, number>>> }

export interface ModeInfo {
  xdpModes: string;
  defaultClass: string;
  fastClass: string;
  /** The shaped ports' offloads read back. */
  shapedOffloads: string;
  /** dp_stats deltas summed over the circuit runs (both phases). */
  circuitStats?: DataplaneStats;
  accuracy: { id: string; ip: string; planDown: number; planUp: number; down: number; up: number };
}

export interface LabBenchResult {
  modes: LabForwarding[];
  rounds: Round[];
  seconds: number;
  perMode: Partial<Record<LabForwarding, ModeInfo>>;
  /** What the plain ports were set to for plain-fair, and their veth defaults. */
  fairOffloads: string;
  plainDefaultOffloads: string;
  buildMs: number;
  libreqosMs: number;
}

export interface LabBenchOptions {
  seconds: number;
  rounds: number;
  modes: LabForwarding[];
  endpoints: EndpointMode[];
  say: (s: string) => void;
  /** Registers a cleanup (run on normal end, failure and signals). */
  onCleanup: (what: string, fn: () => Promise<void>) => void;
}

const quiet: DataplaneLogger = { info: () => undefined, warn: () => undefined };

/** bench/stats.ts's median; NaN for a configuration no round measured (shown as such in the tables). */
export const median = (xs: number[]): number => (xs.length ? statsMedian(xs) : NaN);

/** Median and min–max of the per-round ratio a/b (rounds that measured both). */
export function ratioStats(rounds: Round[], dir: Dir, a: ConfigName, b: ConfigName): { median: number; min: number; max: number; all: number[] } {
  const all = rounds.filter((r) => r.mbps[dir][a] !== undefined && r.mbps[dir][b] !== undefined).map((r) => r.mbps[dir][a]! / r.mbps[dir][b]!);
  if (!all.length) throw new Error(`no round measured both ${a} and ${b} (${dir})`);
  return { median: median(all), min: Math.min(...all), max: Math.max(...all), all };
}

/** The configurations of round `r` in rotated order (no configuration is always first or last). */
export function roundOrder(r: number, configs: readonly ConfigName[] = configsFor(MODES)): ConfigName[] {
  return configs.map((_, i) => configs[(i + r) % configs.length]!);
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
  if (run.code !== 0) throw new Error(`LibreQoS (${lab.tb.forwarding}) exited ${run.code}:\n${run.output.split('\n').slice(-15).join('\n')}`);
  return performance.now() - t0;
}

const sub = (a: DataplaneStats, b: DataplaneStats): DataplaneStats =>
  Object.fromEntries(Object.keys(a).map((k) => [k, a[k as keyof DataplaneStats] - b[k as keyof DataplaneStats]])) as unknown as DataplaneStats;
const add = (a: DataplaneStats | undefined, b: DataplaneStats): DataplaneStats =>
  a ? (Object.fromEntries(Object.keys(b).map((k) => [k, a[k as keyof DataplaneStats] + b[k as keyof DataplaneStats]])) as unknown as DataplaneStats) : b;

/** Builds the plain lab and one LibreQoS lab per mode, each shaped by a real LibreQoS run. */
async function buildLabs(o: LabBenchOptions, circuits: LabCircuit[]) {
  const shaped = {} as Record<LabForwarding, Lab>;
  o.onCleanup('stop plain lab', () => stopLab(PLAIN_LAB));
  for (const m of o.modes) o.onCleanup(`stop ${m} lab`, () => stopLab(MODE_LAB[m]));
  const b0 = performance.now();
  const plain = await startLab({ id: PLAIN_LAB, circuits, daemon: false });
  let plainStick: Lab | undefined;
  if (o.modes.includes('stick')) {
    o.onCleanup('stop plain stick lab', () => stopLab(PLAIN_STICK_LAB));
    plainStick = await startLab({ id: PLAIN_STICK_LAB, circuits, daemon: false, forwarding: 'stick' });
    await attachPlainHairpin(plainStick.tb);
  }
  for (const m of o.modes) {
    o.say(`lab: building ${MODE_LAB[m]} (${m}, lqosd)…`);
    shaped[m] = await startLab({ id: MODE_LAB[m], circuits, forwarding: m });
  }
  const buildMs = performance.now() - b0;
  let libreqosMs = 0;
  for (const m of o.modes) {
    o.say(`lab: running LibreQoS in ${MODE_LAB[m]} (${m})…`);
    libreqosMs += await libreqos(shaped[m]);
    const lab = shaped[m];
    o.onCleanup(`${m} lab dataplane fds`, async () => { await teardownAll({ pinRoot: lab.pinRoot, netns: lab.tb.ns.shaper, logger: quiet }); });
  }
  return { plain, plainStick, shaped, buildMs, libreqosMs };
}

export async function benchLab(o: LabBenchOptions): Promise<LabBenchResult> {
  if (!o.modes.length) throw new Error('no forwarding mode selected (--modes)');
  const circuits = [...defaultLabCircuits, FAST];
  const { plain, plainStick, shaped, buildMs, libreqosMs } = await buildLabs(o, circuits);

  // The fair baseline mirrors the shaped ports' offloads; every mode's attach must set the same ones.
  const shapedF = {} as Record<LabForwarding, Map<string, boolean>>;
  for (const m of o.modes) shapedF[m] = await features(shaped[m].tb.ns.shaper, shaped[m].tb.shaperIfs.customer);
  const first = shapedF[o.modes[0]!];
  for (const m of o.modes) {
    if (describe(shapedF[m]) !== describe(first)) throw new Error(`shaped ports' offloads differ between modes (${o.modes[0]}: ${describe(first)}; ${m}: ${describe(shapedF[m])}): one fair baseline cannot serve both`);
  }
  const plainDefault = await features(plain.tb.ns.shaper, plain.tb.shaperIfs.customer);
  const fair = new Map(Object.values(MIRRORED).filter((l) => first.has(l)).map((l) => [l, first.get(l)!]));
  const veth = new Map(Object.values(MIRRORED).filter((l) => plainDefault.has(l)).map((l) => [l, plainDefault.get(l)!]));
  if (plainStick) await setOffloads(plainStick, fair); // the trunk gets the shaped trunk's offloads, for good

  const stats: Partial<Record<LabForwarding, DataplaneStats>> = {};
  const run = async (c: ConfigName, dir: Dir): Promise<number> => {
    if (c === 'plain') { await setOffloads(plain, veth); return measure(plain, UNSHAPED_IP, dir, o.seconds); }
    if (c === 'plain-fair') { await setOffloads(plain, fair); return measure(plain, UNSHAPED_IP, dir, o.seconds); }
    if (c === 'plain-stick') return measure(plainStick!, UNSHAPED_IP, dir, o.seconds);
    const [m, kind] = c.split(':') as [LabForwarding, Kind];
    const lab = shaped[m];
    if (kind === 'unmapped') return measure(lab, UNSHAPED_IP, dir, o.seconds);
    const before = await readStats({ pinRoot: lab.pinRoot });
    const v = await measure(lab, FAST.ipv4, dir, o.seconds);
    stats[m] = add(stats[m], sub(await readStats({ pinRoot: lab.pinRoot }), before));
    return v;
  };

  const configs = configsFor(o.modes);
  const allTbs = [plain, ...(plainStick ? [plainStick] : []), ...o.modes.map((m) => shaped[m])].map((l) => l.tb);
  const rounds: Round[] = [];
  for (const endpoints of o.endpoints) {
    for (const tb of allTbs) await setEndHostReceive(tb, endpoints);
    for (let r = 0; r < o.rounds; r++) {
      const order = roundOrder(r, configs);
      const mbps: Round['mbps'] = { download: {}, upload: {} };
      for (const dir of DIRS) for (const c of order) mbps[dir][c] = await run(c, dir);
      rounds.push({ endpoints, order, load: loadavg()[0]!, mbps });
      const f = (d: Dir) => configs.map((c) => `${c} ${mbps[d][c]!.toFixed(0)}`).join(', ');
      o.say(`lab: endpoints ${endpoints}, round ${r + 1}/${o.rounds} (load ${loadavg()[0]!.toFixed(1)}): ↓ ${f('download')} | ↑ ${f('upload')} Mbit/s`);
    }
  }
  for (const tb of allTbs) await setEndHostReceive(tb, 'inline');
  await setOffloads(plain, veth);

  const perMode: LabBenchResult['perMode'] = {};
  for (const m of o.modes) {
    const lab = shaped[m];
    const acc = lab.circuits.find((c) => c.id === ACCURACY_ID);
    if (!acc) throw new Error(`lab circuit ${ACCURACY_ID} not found`);
    const down = await measure(lab, acc.ipv4, 'download', o.seconds);
    const up = await measure(lab, acc.ipv4, 'upload', o.seconds);
    perMode[m] = {
      xdpModes: await xdpModesOf(lab),
      defaultClass: await classLine(lab, / parent \d+:1 leaf [0-9a-f]+: prio 5 /),
      fastClass: await classLine(lab, / leaf [0-9a-f]+: prio 3 .*ceil 10Gbit /),
      shapedOffloads: describe(shapedF[m]),
      circuitStats: stats[m],
      accuracy: { id: acc.id, ip: acc.ipv4, planDown: acc.down, planUp: acc.up, down, up },
    };
  }
  return {
    modes: [...o.modes], rounds, seconds: o.seconds, buildMs, libreqosMs, perMode,
    fairOffloads: describe(first), plainDefaultOffloads: describe(plainDefault),
  };
}
