/**
 * Telemetry loop benchmark on the real read path (root; holds the kernel: run it under
 * `flock /tmp/lqos-kernel.lock`):
 *
 *   flock /tmp/lqos-kernel.lock node --expose-gc --import tsx bench/telemetry.bench.ts \
 *     [--circuits 50000] [--hosts 100000] [--ticks 70]
 *
 * Set-up (not timed): a synthetic plan of N circuits (bench/dataset.ts → pipeline, pfifo leaves as
 * this kernel lacks cake/fq_codel) applied by the apply engine to a veth pair in a throwaway
 * namespace (one leaf qdisc per circuit per direction: 50k is about the most one interface holds),
 * and the dataplane's pinned maps in a private pin root with `--hosts` host_counters entries, one
 * per mapping of the plan, keyed, hashed and class-tagged as the XDP program writes them.
 *
 * Each simulated second: the entries are bumped in the kernel map from userspace (not timed: that is
 * the dataplane's work), then the telemetry service ticks exactly as in lqosd — `readHostCounters`
 * (BPF batch dump + decoding), dp_stats/unknown_ips, roll-up, rings, gauges, channels, per-minute
 * SQLite history. Every second tick it also polls the queues as lqosd does every 2 s:
 * `tc -s -j qdisc show` of both interfaces inside the namespace and parsing. Reported as median
 * (min–max) per tick / poll, CPU of this process plus its tc children, and the resulting share of
 * one core. Sets no targets (prints the empty target table); exits 1 on errors.
 */
import { randomBytes } from 'node:crypto';
import { readFileSync, rmSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { execa } from 'execa';
import { pino } from 'pino';
import { HOST_COUNTER_SIZE, LPM_KEY_SIZE, tcHandle, writeLpmKey } from '../dataplane/abi.ts';
import { teardownAll } from '../dataplane/attach.ts';
import * as bpf from '../dataplane/libbpf.ts';
import type { DataplaneLogger } from '../dataplane/log.ts';
import { createPinnedMaps } from '../dataplane/object.ts';
import { applyPlan } from '../lib/apply/engine.ts';
import type { PlanConfig } from '../lib/plan/planConfig.ts';
import { createShapingMetrics } from '../lib/telemetry/metrics.ts';
import { startTelemetry } from '../lib/telemetry/service.ts';
import { ChannelRegistry } from '../lib/web/channels.ts';
import { stateContext } from '../test/support/context.ts';
import { BENCH_PLAN_CONFIG, buildPlan, PFIFO_LEAVES } from '../test/support/plan.ts';
import { tempDir } from '../test/support/workspace.ts';
import { generateDataset } from './dataset.ts';
import { fmtSpread, machineLine, median, Targets } from './stats.ts';

const { values } = parseArgs({ options: { hosts: { type: 'string', default: '100000' }, circuits: { type: 'string', default: '50000' }, ticks: { type: 'string', default: '70' } } });
const HOSTS = Number(values.hosts);
const CIRCUITS = Number(values.circuits);
const TICKS = Number(values.ticks);
const NS = `lqbtel${process.pid % 10000}`;
const wrap = ['ip', 'netns', 'exec', NS];
const pinRoot = `/sys/fs/bpf/lqtb-${randomBytes(3).toString('hex')}`;
const quiet: DataplaneLogger = { info: () => undefined, warn: () => undefined };
const log = pino({ level: 'warn' });
const CLK_TCK = 100; // USER_HZ on Linux

/** CPU ms of this process's reaped children (the tc commands), from /proc/self/stat. */
function childrenCpuMs(): number {
  const stat = readFileSync('/proc/self/stat', 'utf8');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return ((Number(f[13]) + Number(f[14])) * 1000) / CLK_TCK; // cutime, cstime (fields 16, 17)
}

async function setupNamespace(config: PlanConfig, plan: ReturnType<typeof buildPlan>['plan']): Promise<number> {
  await execa('ip', ['netns', 'del', NS], { reject: false });
  await execa('ip', ['netns', 'add', NS]);
  const q = String(config.queues);
  await execa('ip', ['-n', NS, 'link', 'add', 'b0', 'numtxqueues', q, 'numrxqueues', q, 'type', 'veth', 'peer', 'name', 'b1', 'numtxqueues', q, 'numrxqueues', q]);
  const t0 = performance.now();
  const rep = await applyPlan({ applied: undefined, next: plan, compile: PFIFO_LEAVES, log, wrap });
  if (rep.mode !== 'full') throw new Error(`expected a full apply of the bench tree, got ${rep.mode}`);
  return performance.now() - t0;
}

/** host_counters entries for the first HOSTS mappings; returns the buffers and a bump function. */
function hostCounters(plan: ReturnType<typeof buildPlan>['plan']) {
  const maps = plan.mappings.slice(0, HOSTS);
  if (maps.length < HOSTS) throw new Error(`the plan has ${plan.mappings.length} mappings, fewer than --hosts ${HOSTS}: raise --circuits`);
  const keys = Buffer.alloc(HOSTS * LPM_KEY_SIZE);
  const vals = Buffer.alloc(HOSTS * HOST_COUNTER_SIZE);
  maps.forEach((m, i) => {
    writeLpmKey(m.prefix, keys, i * LPM_KEY_SIZE);
    const o = i * HOST_COUNTER_SIZE;
    vals.writeUInt32LE(tcHandle(m.major, m.minor), o + 40);
    vals.writeBigUInt64LE(m.circuitHash, o + 48);
    vals.writeBigUInt64LE(m.deviceHash, o + 56);
  });
  const u64 = new BigUint64Array(vals.buffer, vals.byteOffset, HOSTS * (HOST_COUNTER_SIZE / 8));
  const fd = bpf.objGet(`${pinRoot}/host_counters`);
  const maxEntries = bpf.mapInfoByFd(fd).maxEntries;
  if (maxEntries < HOSTS) throw new Error(`host_counters holds ${maxEntries} entries, fewer than --hosts ${HOSTS}`);
  /** One second of traffic for every host (1–100 kB each), written to the kernel map. */
  const bump = () => {
    const now = bpf.bootTimeNs();
    for (let i = 0; i < HOSTS; i++) {
      const b = i * 8;
      const d = BigInt(1000 + ((i * 7919) % 100_000));
      u64[b] += d;
      u64[b + 1] += d / 10n;
      u64[b + 2] += d / 1000n + 1n;
      u64[b + 3] += d / 10_000n + 1n;
      u64[b + 4] = now;
    }
    bpf.mapUpdateBatch(fd, keys, vals, HOSTS, LPM_KEY_SIZE, HOST_COUNTER_SIZE);
  };
  return { bump, close: () => bpf.closeFd(fd) };
}

async function main(): Promise<void> {
  const config: PlanConfig = { ...BENCH_PLAN_CONFIG, interfaces: { download: 'b0', upload: 'b1', onAStick: false }, queues: 4 };
  const ds = generateDataset({ circuits: CIRCUITS, seed: 1 });
  const plan = buildPlan({ devices: ds.shapedDevicesCsv, network: ds.networkJson }, { config, compile: PFIFO_LEAVES }).plan;
  const dir = tempDir('lqtel-bench-');
  let counters: ReturnType<typeof hostCounters> | undefined;
  try {
    console.log(`telemetry bench (real counter read and queue poll): ${machineLine()}`);
    const applyMs = await setupNamespace(config, plan);
    await createPinnedMaps({ pinRoot, logger: quiet });
    counters = hostCounters(plan);
    counters.bump();
    let now = Date.UTC(2025, 0, 1, 0, 0, 30);
    const tel = startTelemetry(stateContext(dir, () => plan), {
      pinRoot,
      wrap,
      autoStart: false,
      now: () => now,
      publish: new ChannelRegistry().publish,
      metrics: createShapingMetrics(),
    });
    const tick = { wall: [] as number[], cpu: [] as number[], read: [] as number[] };
    const poll = { wall: [] as number[], cpu: [] as number[], children: [] as number[] };
    let flush = { ms: 0, rows: 0 };
    const gc = (globalThis as { gc?: () => void }).gc;
    gc?.();
    const heap0 = process.memoryUsage().heapUsed;
    let firstMs = 0;
    for (let i = 0; i < TICKS; i++) {
      counters.bump();
      let c0 = process.cpuUsage();
      let t0 = performance.now();
      await tel.tick();
      const wall = performance.now() - t0;
      const c = process.cpuUsage(c0);
      const snap = tel.snapshot();
      if (i === 0) firstMs = wall;
      if (i >= 2) {
        tick.wall.push(wall);
        tick.cpu.push((c.user + c.system) / 1000);
        tick.read.push(snap.lastReadMs);
      }
      const f = tel.history?.lastFlush;
      if (f?.minute && f.rows > flush.rows) flush = { ms: f.ms, rows: f.rows };
      if (i % 2 === 1) {
        const ch0 = childrenCpuMs();
        c0 = process.cpuUsage();
        t0 = performance.now();
        await tel.pollQueues();
        const pw = performance.now() - t0;
        const pc = process.cpuUsage(c0);
        if (i >= 2) {
          poll.wall.push(pw);
          poll.cpu.push((pc.user + pc.system) / 1000);
          poll.children.push(childrenCpuMs() - ch0);
        }
      }
      now += 1000;
    }
    gc?.();
    const heap1 = process.memoryUsage().heapUsed;
    const snap = tel.snapshot();
    if (snap.activeCircuits === 0) throw new Error('telemetry saw no active circuit: the host counters did not resolve to the plan');
    const qTotals = snap.queues.totals as unknown as Record<string, unknown>;
    await tel.stop();
    const tickCpu = median(tick.cpu);
    const pollCpu = median(poll.cpu) + median(poll.children);
    const share = (tickCpu + pollCpu / 2) / 10; // ms per second → % of one core
    const out = [
      `plan ${plan.circuits.length} circuits / ${plan.nodes.length} nodes / ${plan.mappings.length} mappings, applied to ${NS} (b0/b1, pfifo leaves) in ${(applyMs / 1000).toFixed(1)} s`,
      `${HOSTS} host_counters entries, all active every second; ${TICKS} ticks (first ${firstMs.toFixed(0)} ms: plan index build + baseline), figures over ticks 3..${TICKS}: median (min–max)`,
      `  tick wall, incl. the real counter read   ${fmtSpread(tick.wall)}`,
      `    of which readHostCounters + dp_stats   ${fmtSpread(tick.read)}`,
      `  tick CPU (this process)                  ${fmtSpread(tick.cpu)}`,
      `  queue poll wall (every 2 s; tc -s -j qdisc show of 2 interfaces in the namespace + parse)  ${fmtSpread(poll.wall)}`,
      `  queue poll CPU: this process ${fmtSpread(poll.cpu)} + tc children ${fmtSpread(poll.children)} (children at ${1000 / CLK_TCK} ms resolution)`,
      `  ⇒ ${share.toFixed(1)} % of one core (median tick CPU + half the median poll CPU, per second)`,
      `  history minute flush: ${flush.rows} rows in ${flush.ms.toFixed(1)} ms (one transaction)`,
      `  active circuits ${snap.activeCircuits}, total down ${(snap.totals.downBps / 1e9).toFixed(2)} Gbps, queue totals ${JSON.stringify(qTotals).slice(0, 120)}`,
      `  heap ${(heap0 / 1e6).toFixed(0)} MB before the first tick (plan loaded), ${(heap1 / 1e6).toFixed(0)} MB after ${TICKS}${gc ? '' : ' (run with --expose-gc for a settled figure)'}`,
    ];
    console.log(out.join('\n'));
    new Targets().report();
  } finally {
    counters?.close();
    await teardownAll({ pinRoot, logger: quiet }).catch(() => undefined);
    rmSync(pinRoot, { recursive: true, force: true });
    await execa('ip', ['netns', 'del', NS], { reject: false });
    rmSync(dir, { recursive: true, force: true });
  }
}

await main();
