/**
 * Control frames pass HTB unshaped (issue 20 item 6), shown in the veth lab (lab/testbed.ts) with
 * the dataplane attached for one queue (HTB 1: of two), so the unmapped flood and the control frames
 * meet in the same HTB. A UDP flood toward an unmapped customer address at 6 × the default class ceil keeps that class
 * full (drops, a 1000-packet backlog); meanwhile ARP (arping), IPv6 neighbour solicitations (ndisc6,
 * and a ping after flushing the neighbour cache) all get their answers, and HTB's direct_packets_stat
 * and dp_stats ctrlDirect grow by at least the frames sent. Baseline: the same arping with the
 * classifier bypassed (tc leaves the frame alone, so it joins the default class) loses replies.
 * Needs root, iperf3, arping (iputils-arping), ndisc6, bpffs. Namespaces lqt-<random>-*, removed in after().
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execa, type ResultPromise } from 'execa';
import type { IpMapping } from '../../lib/model.ts';
import { attachDataplane, teardownAll } from '../../dataplane/attach.ts';
import { readStats, setBypass, updateMappings } from '../../dataplane/maps.ts';
import type { DataplaneLogger } from '../../dataplane/log.ts';
import { buildTestbed, destroyTestbed, buildShapingTree, nsExec, type Testbed } from '../../lab/testbed.ts';

const quiet: DataplaneLogger = { info: () => undefined, warn: () => undefined };
const LINK_MBIT = 10; // root 1:1 rate and default class 1:2 ceil
const FLOOD_MBIT = 6 * LINK_MBIT;
const CUST4 = '10.99.1.10', CUST6 = 'fd00:99::1:10', UNMAPPED = '10.99.1.99';
const PROBES = 10;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

let tb: Testbed;
let ctx: { pinRoot: string };
let flood: { server: ResultPromise; client: ResultPromise } | undefined;
const notes: string[] = [];

function mapping(prefix: string): IpMapping {
  return { prefix, cpu: 0, major: 1, minor: 0x10, circuitId: 'cust', deviceId: 'cust-cpe', circuitHash: 7n, deviceHash: 8n };
}

before(async () => {
  // mq needs a multi-queue device: two TX queues (two HTBs), but the dataplane is told of one queue,
  // so every CPU sends unclassified traffic and control frames to TX queue 1 / HTB 1:.
  tb = await buildTestbed({ queues: 2 });
  ctx = { pinRoot: `/sys/fs/bpf/${tb.id}` };
  await buildShapingTree(tb, { queues: 2, linkMbit: LINK_MBIT, classes: [{ major: 1, minor: 0x10, downloadMbit: 5, uploadMbit: 5 }] });
  await attachDataplane({
    downloadIf: tb.shaperIfs.customer, uploadIf: tb.shaperIfs.internet, onAStick: false, queues: 1, stickOffset: 0,
    netns: tb.ns.shaper, pinRoot: ctx.pinRoot, logger: quiet,
  });
  await updateMappings([mapping(`${CUST4}/32`), mapping(`${CUST6}/128`)], ctx);
});

after(async () => {
  await stopFlood();
  if (notes.length) console.log(`# ${notes.join('\n# ')}`);
  if (tb) {
    await teardownAll({ netns: tb.ns.shaper, pinRoot: ctx.pinRoot, logger: quiet }).catch(() => undefined);
    await destroyTestbed(tb);
  }
});

async function stopFlood(): Promise<void> {
  if (!flood) return;
  for (const p of [flood.client, flood.server]) {
    p.kill('SIGKILL');
    await p.catch(() => undefined);
  }
  flood = undefined;
}

/** iperf3 UDP from the Internet namespace to the unmapped customer address (download, default class). */
async function startFlood(seconds: number): Promise<void> {
  const port = String(6200 + Math.floor(Math.random() * 1000));
  const server = execa('ip', ['netns', 'exec', tb.ns.cust, 'iperf3', '-s', '-1', '-p', port, '-B', UNMAPPED], { reject: false, all: true });
  await sleep(300);
  const client = execa('ip', ['netns', 'exec', tb.ns.inet, 'iperf3', '-c', UNMAPPED, '-p', port, '-u', '-b', `${FLOOD_MBIT}M`, '-l', '1400', '-t', String(seconds)], { reject: false, all: true });
  flood = { server, client };
}

interface HtbState {
  direct: number;
  defaultDrops: number;
  defaultBacklogPkts: number;
}

/** HTB 1: direct_packets_stat and the default class 1:2's drops and backlog on the download port. */
async function htbState(): Promise<HtbState> {
  const dev = tb.shaperIfs.customer;
  const q = await nsExec(tb.ns.shaper, 'tc', ['-s', '-j', 'qdisc', 'show', 'dev', dev]);
  const qd = (JSON.parse(q.stdout) as Array<{ kind: string; handle: string; options?: { direct_packets_stat?: number } }>)
    .find((x) => x.kind === 'htb' && x.handle === '1:');
  assert.ok(qd?.options?.direct_packets_stat !== undefined, `tc -j qdisc show dev ${dev}: HTB 1: with direct_packets_stat\n${q.stdout}`);
  // The class statistics are read from the text form (tc -j class is not JSON for every kind in iproute2 6.1).
  const c = await nsExec(tb.ns.shaper, 'tc', ['-s', 'class', 'show', 'dev', dev, 'classid', '1:2']);
  const drops = /dropped (\d+)/.exec(c.stdout);
  const backlog = /backlog \S+ (\d+)p/.exec(c.stdout);
  assert.ok(drops && backlog, `tc -s class show 1:2:\n${c.stdout}`);
  return { direct: qd.options.direct_packets_stat, defaultDrops: Number(drops[1]), defaultBacklogPkts: Number(backlog[1]) };
}

/**
 * Starts the flood and waits (polling, at most 10 s) until it has filled the default class: backlog
 * above 100 packets and the class dropping. Returns the state at that moment.
 */
async function floodUntilFull(seconds: number): Promise<HtbState> {
  const before = await htbState();
  await startFlood(seconds);
  const end = Date.now() + 10_000;
  let s = await htbState();
  while (!(s.defaultBacklogPkts > 100 && s.defaultDrops > before.defaultDrops) && Date.now() < end) {
    await sleep(100);
    s = await htbState();
  }
  return s;
}

/** PROBES single ARP requests from the Internet namespace (1 s deadline each, like the kernel's retransmit time): answered ones. */
async function arping(target: string): Promise<number> {
  let ok = 0;
  for (let i = 0; i < PROBES; i++) {
    const r = await nsExec(tb.ns.inet, 'arping', ['-c', '1', '-w', '1', '-I', 'eth0', target], { reject: false });
    const m = /Received (\d+) response/.exec(r.all ?? '');
    assert.ok(m, `arping output:\n${r.all}`);
    ok += Number(m[1]) > 0 ? 1 : 0;
  }
  return ok;
}

/** ndisc6 single solicitations (1 try, 1 s wait each): how many were answered. */
async function ndisc(target: string): Promise<number> {
  let ok = 0;
  for (let i = 0; i < PROBES; i++) {
    const r = await nsExec(tb.ns.inet, 'ndisc6', ['-1', '-q', '-r', '1', '-w', '1000', target, 'eth0'], { reject: false });
    if (r.exitCode === 0) ok++;
  }
  return ok;
}

test('ARP and IPv6 neighbour discovery get through while the default class is saturated; HTB counts them as direct', async () => {
  // Resolve the flood target before the flood (its own ARP would otherwise be what we measure).
  await nsExec(tb.ns.inet, 'arping', ['-c', '1', '-w', '2', '-I', 'eth0', UNMAPPED], { reject: false });
  const s0 = await floodUntilFull(40);
  const st0 = await readStats(ctx);
  assert.ok(s0.defaultBacklogPkts > 100, `default class 1:2 saturated (backlog ${s0.defaultBacklogPkts} packets)`);

  const arp = await arping(CUST4);
  const nd = await ndisc(CUST6);
  // A ping after flushing the neighbour cache: the solicitation goes first, then the echo (mapped class).
  await nsExec(tb.ns.inet, 'ip', ['-6', 'neigh', 'flush', 'dev', 'eth0']);
  const ping = await nsExec(tb.ns.inet, 'ping', ['-6', '-c', '5', '-i', '0.2', '-W', '2', CUST6], { reject: false });
  const pingRx = Number(/(\d+) received/.exec(ping.stdout)?.[1] ?? -1);

  const s1 = await htbState();
  const st1 = await readStats(ctx);
  notes.push(
    `saturated default class: backlog ${s0.defaultBacklogPkts}→${s1.defaultBacklogPkts} packets, drops +${s1.defaultDrops - s0.defaultDrops}`,
    `arping ${arp}/${PROBES}, ndisc6 ${nd}/${PROBES}, ping -6 after neighbour flush ${pingRx}/5`,
    `HTB direct_packets_stat +${s1.direct - s0.direct}, dp_stats ctrlDirect +${st1.ctrlDirect - st0.ctrlDirect}`,
  );
  assert.ok(s1.defaultDrops > s0.defaultDrops, 'the default class kept dropping during the probes (it was full)');
  assert.equal(arp, PROBES, 'every ARP request answered');
  assert.equal(nd, PROBES, 'every neighbour solicitation answered');
  assert.equal(pingRx, 5, `ping -6 after a neighbour flush:\n${ping.stdout}`);
  // Requests and solicitations (and DAD/MLD chatter) took the direct queue on the download port.
  assert.ok(s1.direct - s0.direct >= 2 * PROBES, `direct_packets_stat grew by ${s1.direct - s0.direct}`);
  assert.ok(st1.ctrlDirect - st0.ctrlDirect >= BigInt(2 * PROBES), `ctrlDirect grew by ${st1.ctrlDirect - st0.ctrlDirect}`);
});

test('baseline: with the classifier bypassed, ARP queues behind the flood in the default class and loses replies', async () => {
  if (!flood) await floodUntilFull(20);
  const s0 = await htbState();
  await setBypass(true, ctx);
  try {
    const arp = await arping(CUST4);
    const s1 = await htbState();
    notes.push(`baseline (bypass): arping ${arp}/${PROBES}, direct_packets_stat +${s1.direct - s0.direct}`);
    assert.ok(arp < PROBES, `ARP lost replies behind the flood (${arp}/${PROBES})`);
    assert.equal(s1.direct, s0.direct, 'nothing took the direct queue while bypassed');
  } finally {
    await setBypass(false, ctx);
    await stopFlood();
  }
});
