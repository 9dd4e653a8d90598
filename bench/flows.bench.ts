/**
 * Flow telemetry benchmark (root, bpffs): `node --import tsx bench/flows.bench.ts [flows]`
 *
 *  1. XDP per-packet cost with flow tracking on vs off (BPF_PROG_TEST_RUN, repeat 1e6, TCP frame
 *     with timestamps on an existing flow).
 *  2. 100k active flows populated from userspace: kernel map memory, FlowTracker.poll() time,
 *     snapshot build time (with enrichment), process RSS/heap, and CPU share at a 1 s poll period.
 * On/off runs interleaved (rounds with the order rotating); figures are median (min–max).
 * Uses its own pin root, removed at the end. Sets no targets (prints the empty target table).
 */
import { randomBytes } from 'node:crypto';
import { execa } from 'execa';
import { teardownAll } from '../dataplane/attach.ts';
import { createPinnedMaps, loadPrograms } from '../dataplane/object.ts';
import { configureCpus } from '../dataplane/cpus.ts';
import { updateMappings } from '../dataplane/maps.ts';
import type { DataplaneLogger } from '../dataplane/log.ts';
import { FLOW_KEY_SIZE, FLOW_VALUE_SIZE, writeFlowKey, writeFlowValue } from '../dataplane/flowAbi.ts';
import { closeFlowMaps, deleteFlows, dumpFlowsRaw, readFlows, setFlowControl, writeFlows } from '../dataplane/flows.ts';
import { progTestRunRepeat } from '../dataplane/libbpf.ts';
import { MODE_STICK, encodeAddr } from '../dataplane/abi.ts';
import { startFlowTracking } from '../lib/flows/service.ts';
import { fmtSpread, interleaved, machineLine, median, Targets } from './stats.ts';

const N = Number(process.argv[2] ?? 100_000);
const ctx = { pinRoot: `/sys/fs/bpf/lqfb-${randomBytes(3).toString('hex')}` };
const quiet: DataplaneLogger = { info: () => undefined, warn: () => undefined };
const mb = (b: number) => (b / 1048576).toFixed(1);

function tcpFrame(): Buffer {
  const eth = Buffer.from([2, 0, 0, 0, 0, 1, 2, 0, 0, 0, 0, 2, 0x81, 0x00, 0, 100, 0x08, 0x00]);
  const ip = Buffer.alloc(20);
  const tcp = Buffer.alloc(32 + 1400);
  ip[0] = 0x45;
  ip.writeUInt16BE(20 + tcp.length, 2);
  ip[8] = 64;
  ip[9] = 6;
  encodeAddr('192.0.2.1').copy(ip, 12, 12, 16);
  encodeAddr('100.64.0.10').copy(ip, 16, 12, 16);
  tcp.writeUInt16BE(443, 0);
  tcp.writeUInt16BE(40000, 2);
  tcp.writeUInt32BE(1000, 4);
  tcp[12] = 8 << 4;
  tcp[13] = 0x10;
  Buffer.from([1, 1, 8, 10, 0, 0, 1, 0, 0, 0, 2, 0]).copy(tcp, 20);
  return Buffer.concat([eth, ip, tcp]);
}

async function main() {
  await createPinnedMaps({ ...ctx, logger: quiet });
  configureCpus(4, ctx);
  await updateMappings([{ prefix: '100.64.0.0/16', cpu: 0, major: 1, minor: 0x10, circuitId: 'c', deviceId: 'd', circuitHash: 7n, deviceHash: 7n }], ctx);
  const progs = await loadPrograms({ mode: MODE_STICK, internetIfindex: 1, ispIfindex: 1, stickOffset: 0, internetVlan: 100, ispVlan: 200 }, { ...ctx, logger: quiet });
  try {
    // ---- 1. fast path cost
    const f = tcpFrame();
    const md = Buffer.alloc(24);
    md.writeUInt32LE(f.length, 4);
    md.writeUInt32LE(1, 12);
    console.log(`flows bench: ${machineLine()}`);
    const cost = (on: boolean) => {
      setFlowControl({ enabled: on }, ctx);
      progTestRunRepeat(progs.xdpFd, f, md, 10_000); // warm
      return progTestRunRepeat(progs.xdpFd, f, md, 1_000_000).durationNs;
    };
    const x = await interleaved(8, { off: () => cost(false), on: () => cost(true) });
    console.log(`XDP per packet (test run, 8 interleaved rounds x 1e6): flows off ${fmtSpread(x.off, 'ns', 0)}, flows on ${fmtSpread(x.on, 'ns', 0)} (+${(median(x.on) - median(x.off)).toFixed(0)} ns on the medians)`);
    deleteFlows(readFlows(ctx), ctx);

    // ---- 2. 100k flows from userspace
    const keys = Buffer.alloc(N * FLOW_KEY_SIZE);
    const vals = Buffer.alloc(N * FLOW_VALUE_SIZE);
    const now = (await import('../dataplane/libbpf.ts')).bootTimeNs();
    for (let i = 0; i < N; i++) {
      writeFlowKey({
        proto: i % 5 === 0 ? 17 : 6, localIp: `100.64.${(i >> 8) & 255}.${i & 255}`, localPort: 30000 + (i % 20000),
        remoteIp: `${1 + (i % 200)}.${(i * 7) % 250}.${(i * 13) % 250}.${1 + (i % 250)}`, remotePort: 443,
      }, keys, i * FLOW_KEY_SIZE);
      writeFlowValue({
        startNs: now - 5_000_000_000n, lastSeenNs: now, bytes: { down: 1_000_000 + i, up: 50_000 + i }, packets: { down: 800, up: 400 },
        retransmits: { down: i % 3, up: 0 }, lastRttUs: { customer: 5000, internet: 20000 }, circuitHash: BigInt(1 + (i % 5000)), tcHandle: 0x10010,
      }, vals, i * FLOW_VALUE_SIZE);
    }
    let t = performance.now();
    writeFlows(keys, vals, N, ctx);
    console.log(`populate ${N} flows (batch update): ${(performance.now() - t).toFixed(0)} ms`);
    const info = await execa('bpftool', ['-j', 'map', 'show', 'pinned', `${ctx.pinRoot}/flows`], { reject: false });
    try {
      const j = JSON.parse(info.stdout) as { bytes_memlock?: number };
      if (j.bytes_memlock) console.log(`kernel flows map (131072 entries, preallocated LRU): ${mb(j.bytes_memlock)} MiB`);
    } catch { /* bpftool missing */ }

    const rss0 = process.memoryUsage();
    t = performance.now();
    const d = dumpFlowsRaw(ctx);
    console.log(`dump only (batch lookup): ${(performance.now() - t).toFixed(0)} ms for ${d.count} entries`);

    const ft = startFlowTracking({ ...ctx, intervalMs: 3_600_000, idleTimeoutMs: 3_600_000 });
    t = performance.now();
    ft.pollNow();
    console.log(`first poll + snapshot (cold enrichment of ${N} remotes): ${(performance.now() - t).toFixed(0)} ms`);
    const polls: number[] = [], snaps: number[] = [];
    const cpu0 = process.cpuUsage();
    const wall0 = performance.now();
    const POLLS = 9;
    for (let i = 0; i < POLLS; i++) {
      const s = ft.pollNow();
      polls.push(s.stats.pollMs);
      snaps.push(s.stats.snapshotMs);
    }
    const cpu = process.cpuUsage(cpu0);
    const wall = performance.now() - wall0;
    const snap = ft.snapshot();
    const mem = process.memoryUsage();
    console.log(`steady poll (${POLLS}): ${fmtSpread(polls)}, snapshot build: ${fmtSpread(snaps)}`);
    console.log(`CPU per tick (mean of ${POLLS}): ${((cpu.user + cpu.system) / 1000 / POLLS).toFixed(0)} ms -> ${((cpu.user + cpu.system) / 1000 / POLLS / 10).toFixed(1)} % of one core at a 1 s period (wall ${(wall / POLLS).toFixed(0)} ms/tick)`);
    console.log(`snapshot: ${snap.activeFlows} active flows, ${snap.asns.length} ASN rows, ${snap.globe.length} globe points, ${snap.circuits.length} circuits`);
    console.log(`process memory: RSS ${mb(mem.rss)} MiB (+${mb(mem.rss - rss0.rss)} for tracking+enrichment), heap used ${mb(mem.heapUsed)} MiB, external ${mb(mem.external)} MiB`);
    ft.stop();
    new Targets().report();
  } finally {
    progs.close();
    closeFlowMaps(ctx);
    await teardownAll({ ...ctx, logger: quiet }).catch(() => undefined);
  }
}

await main();
