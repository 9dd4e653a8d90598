/**
 * Queue statistics: parsing `tc -s -j qdisc show` (a real capture from this kernel's mq/HTB/pfifo,
 * and a hand-written CAKE/fq_codel sample with the upstream field names), deltas, mapping to
 * circuits, and one real poll through tc in a throwaway namespace (the `wrap` option).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { execa } from 'execa';
import { CircuitQueues, formatHandle, parseHandle, parseQdiscStats, QueueStatsCollector, QueueStatsTracker } from '../../lib/telemetry/queueStats.ts';
import { buildPlanIndex } from '../../lib/telemetry/rollup.ts';
import { sleep } from '../support/wait.ts';
import { circuit, testPlan } from './helpers.ts';

const fx = (name: string) => readFileSync(join(import.meta.dirname, 'fixtures', name), 'utf8');

test('handles: MAJ:MIN hex text ↔ numbers', () => {
  assert.equal(parseHandle('1:3'), 0x10003);
  assert.equal(parseHandle('7fff:'), 0x7fff0000);
  assert.equal(parseHandle('0x1:0xa'), 0x1000a);
  assert.equal(parseHandle('ffff:fff1'), 0xfffffff1);
  assert.equal(parseHandle('root'), -1);
  assert.equal(parseHandle(undefined), -1);
  assert.equal(parseHandle('nonsense'), -1);
  assert.equal(formatHandle(0x1000a), '1:a');
});

test('parses a real capture (mq → htb → pfifo, this kernel) without choking on pfifo', () => {
  const s = parseQdiscStats(fx('tc-qdisc-htb-pfifo.json'));
  assert.deepEqual(s.map((q) => q.kind), ['mq', 'htb', 'pfifo', 'htb', 'pfifo']);
  const leaf = s.find((q) => q.parent === '2:3')!;
  assert.equal(leaf.handle, '2002:');
  assert.equal(leaf.parentId, 0x20003);
  assert.equal(leaf.drops, 9370);
  assert.equal(leaf.backlog, 28840);
  assert.equal(leaf.qlen, 20);
  assert.equal(leaf.packets, 1346);
  assert.equal(s[0]!.parentId, -1, 'root mq');
});

test('parses CAKE (marks/ack drops summed over tins, 64-bit counters) and fq_codel; unknown kinds are harmless', () => {
  const s = parseQdiscStats(fx('tc-qdisc-cake.json'));
  const cake = s.find((q) => q.kind === 'cake')!;
  assert.equal(cake.bytes, 5_000_000_000, 'beyond u32');
  assert.equal(cake.drops, 1000);
  assert.equal(cake.ecnMarks, 75);
  assert.equal(cake.ackDrops, 4);
  assert.equal(cake.tins, 4);
  assert.equal(cake.backlog, 3028);
  const fq = s.find((q) => q.kind === 'fq_codel')!;
  assert.equal(fq.ecnMarks, 9);
  assert.equal(fq.drops, 12);
  assert.ok(s.some((q) => q.kind === 'pfifo_fast'));
  assert.deepEqual(parseQdiscStats(''), []);
  assert.deepEqual(parseQdiscStats('{"not":"an array"}'), []);
});

test('tracker: first poll is the baseline, then per-interval deltas; a replaced leaf restarts', () => {
  const t = new QueueStatsTracker();
  const one = (drops: number, handle = '2000:', kind = 'cake', backlog = 0) =>
    parseQdiscStats(JSON.stringify([{ kind, handle, parent: '1:6', bytes: drops * 100, packets: drops * 10, drops, overlimits: 0, requeues: 0, backlog, qlen: 0, tins: [{ ecn_mark: drops / 2 }] }]));
  t.beginPoll(0);
  t.ingest('eth0', one(100));
  t.endPoll();
  const l = t.leaves.get('eth0')!.get(0x10006)!;
  assert.equal(l.d.drops, 0);
  t.beginPoll(2000);
  t.ingest('eth0', one(130, '2000:', 'cake', 1514));
  t.endPoll();
  assert.equal(l.d.drops, 30);
  assert.equal(l.d.ecnMarks, 15);
  assert.equal(l.backlog, 1514);
  assert.equal(t.lastDtMs, 2000);
  t.beginPoll(4000);
  t.ingest('eth0', one(7, '2001:', 'fq_codel'));
  t.endPoll();
  assert.equal(t.leaves.get('eth0')!.get(0x10006), l, 'record reused');
  assert.equal(l.d.drops, 7, 'new leaf: counts from 0');
  assert.equal(l.kind, 'fq_codel');
  t.beginPoll(6000);
  t.ingest('eth0', []);
  t.endPoll();
  assert.equal(t.leaves.size, 0, 'vanished leaves are dropped');
});

test('circuit mapping: download leaves on the download interface, upload leaves on the upload interface (stick: major + offset)', () => {
  const plan = testPlan();
  const ix = buildPlanIndex(plan);
  const t = new QueueStatsTracker();
  t.beginPoll(0);
  t.ingest('eth-isp', parseQdiscStats(fx('tc-qdisc-cake.json')));
  t.ingest('eth-inet', parseQdiscStats(fx('tc-qdisc-cake.json')));
  t.endPoll();
  t.beginPoll(2000);
  const later = JSON.parse(fx('tc-qdisc-cake.json')) as Record<string, unknown>[];
  (later[2] as { drops: number }).drops += 25;
  t.ingest('eth-isp', parseQdiscStats(later));
  t.ingest('eth-inet', parseQdiscStats(fx('tc-qdisc-cake.json')));
  t.endPoll();
  const cq = new CircuitQueues();
  cq.map(ix, t);
  const c1 = cq.get(ix.circuitById.get('c1')!);
  assert.equal(c1.down?.kind, 'cake');
  assert.equal(c1.down?.d.drops, 25);
  assert.equal(c1.up?.d.drops, 0);
  assert.equal(cq.get(ix.circuitById.get('c2')!).down?.kind, 'fq_codel');
  assert.equal(cq.totals.drops.down, 25);
  assert.equal(cq.totals.backlog.down, 3028);
  assert.equal(cq.circuits.length, 2);

  // On a stick: one interface; upload classes have major + stickOffset.
  const stick = buildPlanIndex(testPlan({ stickOffset: 2, download: 'trunk', upload: 'trunk' }));
  const t2 = new QueueStatsTracker();
  t2.beginPoll(0);
  t2.ingest('trunk', parseQdiscStats(JSON.stringify([
    { kind: 'cake', handle: '2000:', parent: '1:6', drops: 1 },
    { kind: 'cake', handle: '2100:', parent: '3:6', drops: 2 },
  ])));
  t2.endPoll();
  const cq2 = new CircuitQueues();
  cq2.map(stick, t2);
  const s1 = cq2.get(stick.circuitById.get('c1')!);
  assert.equal(s1.down?.handle, '2000:');
  assert.equal(s1.up?.handle, '2100:');
});

test('collector with an injected reader polls both interfaces once each (once on a stick)', async () => {
  const seen: string[] = [];
  const col = new QueueStatsCollector({ readQdiscs: async (i) => (seen.push(i), fx('tc-qdisc-cake.json')) });
  await col.poll(buildPlanIndex(testPlan()));
  assert.deepEqual(seen.sort(), ['eth-inet', 'eth-isp']);
  seen.length = 0;
  await col.poll(buildPlanIndex(testPlan({ download: 'trunk', upload: 'trunk', stickOffset: 2 })));
  assert.deepEqual(seen, ['trunk']);
});

test('REAL: tc in a throwaway namespace (wrap), mq/HTB/pfifo leaves mapped to circuits with drop deltas', async (t) => {
  const ns = `lqtelq${process.pid % 10000}`;
  const peer = `${ns}p`;
  const sh = (cmd: string) => execa('sh', ['-c', cmd]);
  await sh(`ip netns del ${ns} 2>/dev/null; ip netns del ${peer} 2>/dev/null; true`);
  t.after(() => sh(`ip netns del ${ns} 2>/dev/null; ip netns del ${peer} 2>/dev/null; true`));
  await sh(`ip netns add ${ns} && ip netns add ${peer}`);
  await sh(`ip -n ${ns} link add q0 numtxqueues 2 numrxqueues 2 type veth peer name q1 numtxqueues 2 numrxqueues 2 netns ${peer}`);
  await sh(`ip -n ${ns} link set q0 up && ip -n ${peer} link set q1 up && ip -n ${ns} addr add 10.78.0.1/24 dev q0 && ip -n ${peer} addr add 10.78.0.2/24 dev q1`);
  const tcs = [
    'qdisc add dev q0 root handle 7fff: mq',
    ...[1, 2].flatMap((q) => [
      `qdisc add dev q0 parent 7fff:${q} handle ${q}: htb default 2 r2q 100`,
      `class add dev q0 parent ${q}: classid ${q}:1 htb rate 100mbit ceil 100mbit`,
      `class add dev q0 parent ${q}:1 classid ${q}:2 htb rate 10mbit ceil 100mbit`,
      `class add dev q0 parent ${q}:1 classid ${q}:6 htb rate 1mbit ceil 2mbit`,
      `qdisc add dev q0 parent ${q}:6 handle ${q}00: pfifo limit 10`,
      `filter add dev q0 parent ${q}: protocol ip prio 1 u32 match ip dst 10.78.0.2/32 flowid ${q}:6`,
    ]),
  ];
  for (const l of tcs) await execa('ip', ['netns', 'exec', ns, 'tc', ...l.split(' ')]);
  const plan = testPlan({ download: 'q0', upload: 'q0' });
  plan.circuits = [circuit('x1', '', 1, 6, ['10.78.0.2/32']), circuit('x2', '', 2, 6, ['10.78.0.3/32'])];
  plan.nodes = [];
  plan.mappings = [];
  const ix = buildPlanIndex(plan);
  const col = new QueueStatsCollector({ wrap: ['ip', 'netns', 'exec', ns] });
  await col.poll(ix);
  assert.equal(col.circuits.circuits.length, 2, 'both pfifo leaves mapped');
  assert.equal(col.circuits.get(0).down?.kind, 'pfifo');
  // Overload the 2 Mbit classes with 20 Mbit/s of UDP for 1 s: the 10-packet pfifo drops.
  const srv = execa('ip', ['netns', 'exec', peer, 'iperf3', '-s', '-1', '-B', '10.78.0.2'], { reject: false });
  await sleep(400);
  await execa('ip', ['netns', 'exec', ns, 'iperf3', '-c', '10.78.0.2', '-u', '-b', '20M', '-t', '1', '-l', '1200'], { reject: false });
  srv.kill('SIGKILL');
  await srv;
  await col.poll(ix);
  const drops = col.circuits.totals.drops.down;
  assert.ok(drops > 100, `drops delta ${drops}`);
  const dropped = [0, 1].map((c) => col.circuits.get(c).down!.d.drops);
  assert.equal(dropped[0]! + dropped[1]!, drops);
  await col.poll(ix);
  assert.equal(col.circuits.totals.drops.down, 0, 'no new drops in the next interval');
});
