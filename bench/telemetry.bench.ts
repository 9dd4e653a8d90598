/**
 * Telemetry loop benchmark: CPU time per 1 Hz tick at N simulated hosts (default 100 000) against a
 * synthetic 100k-circuit plan (bench/dataset.ts → planner), every host active every tick (worst
 * case), with rings, gauges (capped), channels and the per-minute SQLite history enabled.
 *
 *   node --expose-gc --import tsx bench/telemetry.bench.ts [--hosts 100000] [--circuits 100000] [--ticks 70]
 *
 * Reported separately: the simulated counter read (building the Map the dataplane reader returns,
 * one object per host — the real readHostCounters allocates the same) and the telemetry work.
 */
import { rmSync } from 'node:fs';
import { parseArgs } from 'node:util';
import type { HostCounters } from '../dataplane/abi.ts';
import { compileMappings } from '../lib/compile/mappings.ts';
import { validateInputs } from '../lib/inputs/validate.ts';
import { planShaping } from '../lib/plan/planner.ts';
import { createShapingMetrics } from '../lib/telemetry/metrics.ts';
import { startTelemetry } from '../lib/telemetry/service.ts';
import { ChannelRegistry } from '../lib/web/channels.ts';
import { stateContext } from '../test/support/context.ts';
import { BENCH_PLAN_CONFIG } from '../test/support/plan.ts';
import { tempDir } from '../test/support/workspace.ts';
import { generateDataset } from './dataset.ts';

const { values } = parseArgs({ options: { hosts: { type: 'string', default: '100000' }, circuits: { type: 'string', default: '100000' }, ticks: { type: 'string', default: '70' } } });
const HOSTS = Number(values.hosts);
const CIRCUITS = Number(values.circuits);
const TICKS = Number(values.ticks);

const ds = generateDataset({ circuits: CIRCUITS, seed: 1 });
const files = { devices: 'ShapedDevices.csv', network: 'network.json' };
const validation = validateInputs({ devicesText: ds.shapedDevicesCsv, devicesFile: files.devices, networkText: ds.networkJson, networkFile: files.network });
const plan = planShaping({ inputs: validation.inputs, config: BENCH_PLAN_CONFIG, files }).plan;
if (plan.mappings.length === 0) plan.mappings = compileMappings(plan);
// Host addresses: one per mapped IPv4 prefix (its first address), then IPv6 /64s, up to HOSTS.
const ips: string[] = [];
for (const m of plan.mappings) {
  if (ips.length >= HOSTS) break;
  ips.push(m.prefix.split('/')[0]!);
}
for (let i = 0; ips.length < HOSTS; i++) ips.push(`198.18.${(i >> 8) & 255}.${i & 255}`); // unknown hosts if the plan is small
// Counters carry the class handle of the host's circuit (as the dataplane writes it).
const handleOf = new Map(plan.circuits.map((c) => [c.id, c.queue * 65536 + c.minor]));
const hostHandle = plan.mappings.slice(0, HOSTS).map((m) => handleOf.get(m.circuitId) ?? 0);
while (hostHandle.length < HOSTS) hostHandle.push(0);

const dir = tempDir('lqtel-bench-');
const bytes = new Float64Array(HOSTS);
let now = Date.UTC(2025, 0, 1, 0, 0, 30);
let readMs = 0;
const readCounters = (): Map<string, HostCounters> => {
  const t0 = performance.now();
  const m = new Map<string, HostCounters>();
  for (let i = 0; i < HOSTS; i++) {
    bytes[i]! += 1000 + ((i * 7919) % 100_000);
    const b = BigInt(bytes[i]!);
    m.set(ips[i]!, { downloadBytes: b, uploadBytes: b / 10n, downloadPackets: b / 1000n, uploadPackets: b / 10_000n, lastSeenNs: 1n, tcHandle: hostHandle[i]!, circuitHash: 0n, deviceHash: 0n });
  }
  readMs += performance.now() - t0;
  return m;
};
// As in lqosd: the channels are published and the Prometheus gauges kept current on every tick.
const tel = startTelemetry(stateContext(dir, () => plan), {
  pinRoot: '/nonexistent',
  autoStart: false,
  now: () => now,
  readCounters,
  readQdiscs: async () => '[]',
  publish: new ChannelRegistry().publish,
  metrics: createShapingMetrics(),
});

const perTick: number[] = [];
const cpuPerTick: number[] = [];
let flushMs = 0;
let firstMs = 0;
let secondMs = 0;
let flushRows = 0;
const gc = (globalThis as { gc?: () => void }).gc;
gc?.();
const heap0 = process.memoryUsage().heapUsed;
let heap10 = heap0;
for (let i = 0; i < TICKS; i++) {
  const readBefore = readMs;
  const c0 = process.cpuUsage();
  const t0 = performance.now();
  await tel.tick();
  const wall = performance.now() - t0 - (readMs - readBefore);
  const c = process.cpuUsage(c0);
  const flushed = tel.history?.lastFlush;
  if (flushed && flushed.minute && flushed.rows > flushRows) {
    flushMs = flushed.ms;
    flushRows = flushed.rows;
  }
  if (i === 0) firstMs = wall;
  if (i === 9) {
    gc?.();
    heap10 = process.memoryUsage().heapUsed;
  }
  if (i === 1) secondMs = wall;
  if (i >= 2) {
    perTick.push(wall);
    cpuPerTick.push((c.user + c.system) / 1000 - (readMs - readBefore));
  }
  now += 1000;
}
gc?.();
const heap1 = process.memoryUsage().heapUsed;
const sorted = [...perTick].sort((a, b) => a - b);
const pctl = (p: number) => sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
const snap = tel.snapshot();
console.log(`telemetry bench: ${HOSTS} hosts (all active), plan ${plan.circuits.length} circuits / ${plan.nodes.length} nodes / ${plan.mappings.length} mappings, ${TICKS} ticks`);
console.log(`  first tick (plan index build + baseline) ${firstMs.toFixed(0)} ms; second (resolving ${HOSTS} hosts to circuits) ${secondMs.toFixed(0)} ms`);
console.log(`  steady state per tick (telemetry work, excl. the counter read):`);
console.log(`  wall median ${pctl(50).toFixed(1)} ms, p90 ${pctl(90).toFixed(1)} ms, max ${sorted[sorted.length - 1]!.toFixed(1)} ms (max includes the minute flush)`);
console.log(`  CPU (user+sys, process) median ${[...cpuPerTick].sort((a, b) => a - b)[Math.floor(cpuPerTick.length / 2)]!.toFixed(1)} ms per tick`);
console.log(`  simulated counter read (Map of ${HOSTS} HostCounters objects): ${(readMs / TICKS).toFixed(1)} ms per tick`);
console.log(`  history minute flush: ${flushRows} rows in ${flushMs.toFixed(1)} ms (one transaction)`);
console.log(`  active circuits ${snap.activeCircuits}, total down ${(snap.totals.downBps / 1e9).toFixed(2)} Gbps, heap ${(heap0 / 1e6).toFixed(0)} MB before (plan loaded), ${(heap10 / 1e6).toFixed(0)} MB after 10 ticks, ${(heap1 / 1e6).toFixed(0)} MB after ${TICKS}${gc ? '' : ' (run with --expose-gc for a settled figure)'}`);
await tel.stop();
rmSync(dir, { recursive: true, force: true });
