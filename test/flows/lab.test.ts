/**
 * Flow telemetry in the namespace lab, with the real lqosd attaching the dataplane:
 * iperf3 TCP/UDP flows appear with iperf3's byte counts (±2%, after removing per-packet header
 * bytes), the passive TCP RTT follows a user-space ping over the same path — also with 40 ms (2 × 20 ms) of
 * added delay (a user-space delaying L2 relay, see dataplane/README.md "Flow telemetry"), and
 * retransmits are counted when a tiny pfifo forces loss. Runs as root; own namespaces (lqflow-*).
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execa, type ResultPromise } from 'execa';
import { join } from 'node:path';
import { runLabLibreQoS, startLab, stopLab, repoRoot, type Lab } from '../../lab/labEnv.ts';
import { nsExec } from '../../lab/testbed.ts';
import type { FlowEntry } from '../../dataplane/flowAbi.ts';
import { closeFlowMaps, readFlows } from '../../dataplane/flows.ts';
import { percentile } from '../../lib/flows/percentiles.ts';
import { listMappings } from '../../dataplane/maps.ts';
import { startFlowTracking, type FlowTrackingHandle } from '../../lib/flows/service.ts';

const ID = 'lqflow';
const FAR_NS = `${ID}-far`;
const FAR_IP = '10.99.0.2';
const CUST = '10.99.1.12'; // lab-50 (50/15 Mbit/s)
const LOSSY = '10.99.1.10'; // lab-10
const TOOLS = join(repoRoot, 'test', 'flows', 'nettools.ts');
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
let lab: Lab;
let ctx: { pinRoot: string };
let port = 7200 + Math.floor(Math.random() * 500);

async function cleanupFar() {
  const pids = await execa('ip', ['netns', 'pids', FAR_NS], { reject: false });
  for (const pid of (pids.stdout ?? '').split(/\s+/).filter(Boolean)) {
    try { process.kill(Number(pid), 'SIGKILL'); } catch { /* gone */ }
  }
  await execa('ip', ['netns', 'del', FAR_NS], { reject: false });
}

before(async () => {
  await cleanupFar();
  // This test reads the flow maps with its own tracker: lqosd's must not consume them too.
  lab = await startLab({ id: ID, daemonEnv: { LQOS_FLOWS: '0' } });
  const r = await runLabLibreQoS(lab);
  assert.equal(r.code, 0, r.output);
  ctx = { pinRoot: lab.pinRoot };
  // A "far" Internet host behind the inet namespace: inet:r0 <-> far:eth0. The relay (started per
  // test) joins inet:eth0 and inet:r0 at layer 2, holding each frame for the configured delay.
  await execa('ip', ['netns', 'add', FAR_NS]);
  await execa('ip', ['-n', FAR_NS, 'link', 'set', 'lo', 'up']);
  await execa('ip', ['-n', lab.tb.ns.inet, 'link', 'add', 'r0', 'type', 'veth', 'peer', 'name', 'eth0', 'netns', FAR_NS]);
  await execa('ip', ['-n', FAR_NS, 'addr', 'add', `${FAR_IP}/16`, 'dev', 'eth0']);
  for (const [ns, dev] of [[FAR_NS, 'eth0'], [lab.tb.ns.inet, 'r0'], [lab.tb.ns.inet, 'eth0']] as const) {
    await nsExec(ns, 'ethtool', ['-K', dev, 'tx', 'off', 'tso', 'off', 'gso', 'off', 'gro', 'off'], { reject: false });
    await execa('ip', ['-n', ns, 'link', 'set', dev, 'up']);
  }
});

after(async () => {
  await cleanupFar();
  closeFlowMaps(ctx);
  await stopLab(ID);
});

interface IperfJson {
  error?: string;
  end?: { sum_sent?: { bytes: number; retransmits?: number }; sum_received?: { bytes: number }; sum?: { bytes: number; packets?: number } };
}

/** One iperf3 run from `custIp` to `server` (in `serverNs`); returns the JSON and the server port. */
async function iperf(args: { custIp: string; server: string; serverNs: string; seconds: number; reverse?: boolean; udp?: boolean; rate?: string; len?: number }) {
  let last = '';
  // A run that breaks off (busy machine) is repeated on a fresh server/port, up to 3 times.
  for (let attempt = 0; attempt < 3; attempt++) {
    const r = await iperfOnce(args);
    if ('json' in r) return r;
    last = r.error;
  }
  throw new Error(`iperf3 failed 3 times: ${last}`);
}

async function iperfOnce(args: { custIp: string; server: string; serverNs: string; seconds: number; reverse?: boolean; udp?: boolean; rate?: string; len?: number }): Promise<{ json: IperfJson; port: number } | { error: string }> {
  const p = port++;
  const srv: ResultPromise = execa('ip', ['netns', 'exec', args.serverNs, 'iperf3', '-s', '-1', '-p', String(p), '-B', args.server], { reject: false });
  try {
    const a = ['-c', args.server, '-p', String(p), '-B', args.custIp, '-t', String(args.seconds), '-J', '--connect-timeout', '1000'];
    if (args.reverse) a.push('-R');
    if (args.udp) a.push('-u');
    if (args.rate) a.push('-b', args.rate);
    if (args.len) a.push('-l', String(args.len));
    for (let i = 0; i < 30; i++) {
      const r = await nsExec(lab.tb.ns.cust, 'iperf3', a, { reject: false, timeout: (args.seconds + 20) * 1000 });
      let j: IperfJson = {};
      try {
        j = JSON.parse(r.stdout || '{}') as IperfJson;
      } catch {
        /* not JSON */
      }
      const complete = !j.error && (args.udp ? j.end?.sum : j.end?.sum_sent);
      if (complete) return { json: j, port: p };
      if (!/refused|unable to connect/i.test(j.error ?? r.all ?? '')) return { error: j.error ?? String(r.all ?? '').slice(0, 300) };
      await sleep(100);
    }
    return { error: 'iperf3 server never answered' };
  } finally {
    srv.kill('SIGKILL');
    await srv.catch(() => undefined);
  }
}

/** The data flow of an iperf3 test: biggest flow of that protocol to the server port. */
function dataFlow(localIp: string, remotePort: number, proto: number): FlowEntry {
  const all = readFlows(ctx).filter((f) => f.localIp === localIp && f.remotePort === remotePort && f.proto === proto);
  assert.ok(all.length > 0, `no flow ${localIp} -> :${remotePort}/${proto}`);
  return all.sort((a, b) => b.bytes.down + b.bytes.up - (a.bytes.down + a.bytes.up))[0]!;
}

const within = (a: number, b: number, tol: number) => Math.abs(a - b) / b <= tol;

test('TCP and UDP iperf3 flows: bytes per direction match iperf3 (±2%)', async () => {
  // Upload TCP below the plan (no drops, so no retransmitted bytes on the wire).
  const up = await iperf({ custIp: CUST, server: lab.tb.inetIp4, serverNs: lab.tb.ns.inet, seconds: 3, rate: '10M' });
  let f = dataFlow(CUST, up.port, 6);
  // L2 bytes = payload + 66 per segment (14 Ethernet + 20 IPv4 + 32 TCP with timestamps).
  const sentUp = up.json.end!.sum_sent!.bytes;
  const payloadUp = f.bytes.up - f.packets.up * 66;
  assert.ok(within(payloadUp, sentUp, 0.02), `TCP upload: flow payload ${payloadUp} vs iperf3 ${sentUp}`);
  assert.equal(f.tcHandle !== 0, true, 'the flow carries its class');
  assert.ok(f.packets.down > 0 && f.bytes.down < f.bytes.up / 10, 'ACK direction counted separately');

  const down = await iperf({ custIp: CUST, server: lab.tb.inetIp4, serverNs: lab.tb.ns.inet, seconds: 3, rate: '20M', reverse: true });
  f = dataFlow(CUST, down.port, 6);
  const sentDown = down.json.end!.sum_sent!.bytes;
  const payloadDown = f.bytes.down - f.packets.down * 66;
  assert.ok(within(payloadDown, sentDown, 0.02), `TCP download: flow payload ${payloadDown} vs iperf3 ${sentDown}`);

  const udp = await iperf({ custIp: CUST, server: lab.tb.inetIp4, serverNs: lab.tb.ns.inet, seconds: 3, udp: true, rate: '8M', len: 1200 });
  f = dataFlow(CUST, udp.port, 17);
  const sentUdp = udp.json.end!.sum!.bytes;
  // 14 + 20 + 8 header bytes per datagram.
  const payloadUdp = f.bytes.up - f.packets.up * 42;
  assert.ok(within(payloadUdp, sentUdp, 0.02), `UDP upload: flow payload ${payloadUdp} vs iperf3 ${sentUdp}`);
});

/** Median of a user-space UDP ping from the customer to the far host (ms). */
async function pingMs(n = 40): Promise<number> {
  const p = port++;
  const srv = execa('ip', ['netns', 'exec', FAR_NS, 'node', '--import', 'tsx', TOOLS, 'echo-server', FAR_IP, String(p)], { reject: false, cwd: repoRoot });
  try {
    await sleep(800);
    const r = await execa('ip', ['netns', 'exec', lab.tb.ns.cust, 'node', '--import', 'tsx', TOOLS, 'echo-client', FAR_IP, String(p), String(n)], { cwd: repoRoot });
    const rtts = (JSON.parse(r.stdout) as { rttMs: number[] }).rttMs;
    assert.ok(rtts.length >= n * 0.8, `ping lost too much: ${rtts.length}/${n}`);
    return percentile(rtts, 50)!;
  } finally {
    srv.kill('SIGKILL');
    await srv.catch(() => undefined);
  }
}

async function withRelay<T>(delayMs: number, fn: () => Promise<T>): Promise<T> {
  const relay = execa('ip', ['netns', 'exec', lab.tb.ns.inet, 'node', '--import', 'tsx', TOOLS, 'relay', 'eth0', 'r0', String(delayMs)], { reject: false, cwd: repoRoot, buffer: false });
  try {
    // Wait until the relay says it is forwarding (node start-up can take seconds on a busy machine).
    await new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, 15_000);
      relay.stdout?.on('data', (d: Buffer) => {
        if (String(d).includes('relay ready')) {
          clearTimeout(timer);
          resolve();
        }
      });
    });
    await sleep(300);
    return await fn();
  } finally {
    relay.kill('SIGKILL');
    await relay.catch(() => undefined);
  }
}

test('passive TCP RTT agrees with a ping over the same path, with and without 40 ms added delay', async () => {
  let ft: FlowTrackingHandle | undefined;
  const results: string[] = [];
  try {
    // The relay holds frames in both directions: 20 ms each way = +40 ms RTT.
    for (const delay of [0, 20]) {
      ft?.stop();
      ft = startFlowTracking({ pinRoot: ctx.pinRoot, intervalMs: 200, enricher: false });
      await withRelay(delay, async () => {
        const ping = await pingMs();
        // Upload TCP through the relay: the customer's data TSvals are echoed by the far host.
        const run = await iperf({ custIp: CUST, server: FAR_IP, serverNs: FAR_NS, seconds: 4, rate: '4M' });
        ft!.pollNow();
        const f = ft!.tracker.active().find((x) => x.localIp === CUST && x.remotePort === run.port && x.proto === 6 && x.bytes.up > 100_000)
          ?? ft!.tracker.recent().find((x) => x.localIp === CUST && x.remotePort === run.port && x.bytes.up > 100_000);
        assert.ok(f, 'iperf3 flow tracked');
        const circuit = ft!.tracker.circuitStats().find((c) => c.circuitHash === f.circuitHash)!;
        const flowRtt = f.rttMs.internet!;
        const circuitP50 = circuit.rtt.internet.p50!;
        results.push(`delay ${delay}: ping ${ping.toFixed(2)} ms, flow internet-side ${flowRtt.toFixed(2)} ms (customer side ${f.rttMs.customer?.toFixed(2)}), circuit p50 ${circuitP50.toFixed(2)} ms over ${circuit.rtt.internet.samples} samples`);
        assert.ok(Math.abs(flowRtt - ping) <= 3, results.at(-1));
        assert.ok(Math.abs(circuitP50 - ping) <= 3, results.at(-1));
        assert.ok(flowRtt >= 2 * delay, results.at(-1));
        // The customer side (shaper -> customer -> shaper) does not include the Internet delay.
        if (f.rttMs.customer !== null) assert.ok(f.rttMs.customer < 5, results.at(-1));
      });
    }
  } finally {
    console.log(results.join('\n'));
    ft?.stop();
  }
});

test('retransmits are counted when a tiny queue forces loss', async () => {
  const m = (await listMappings(ctx)).find((x) => x.prefix === `${LOSSY}/32`)!;
  assert.ok(m, 'mapping of lab-10');
  const cls = `${m.major.toString(16)}:${m.minor.toString(16)}`;
  await nsExec(lab.tb.ns.shaper, 'tc', ['qdisc', 'replace', 'dev', lab.tb.shaperIfs.customer, 'parent', cls, 'pfifo', 'limit', '3']);
  const run = await iperf({ custIp: LOSSY, server: lab.tb.inetIp4, serverNs: lab.tb.ns.inet, seconds: 3, reverse: true });
  const f = dataFlow(LOSSY, run.port, 6);
  const iperfRetr = run.json.end!.sum_sent!.retransmits ?? 0;
  console.log(`retransmits: flow ${f.retransmits.down} (of ${f.packets.down} segments), iperf3 ${iperfRetr}`);
  assert.ok(iperfRetr > 0, 'the tiny queue did cause retransmissions');
  assert.ok(f.retransmits.down > 0, 'flow counted retransmits');
  assert.ok(f.retransmits.down >= iperfRetr * 0.5 && f.retransmits.down <= iperfRetr * 2 + 5, `flow ${f.retransmits.down} vs iperf3 ${iperfRetr}`);
  assert.equal(f.retransmits.up, 0, 'no retransmits on the ACK direction');
});
