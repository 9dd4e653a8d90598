/**
 * Qdisc capability probe (throwaway namespace, never real interfaces), leaf fallback choice, and
 * every generated cake / fq_codel leaf line run through iproute2's own option parser.
 *
 * tc parses a qdisc's options itself before it asks the kernel, so on a kernel without cake or
 * fq_codel a well-formed line is refused by the kernel ("Error: Specified qdisc kind is unknown.")
 * while a malformed one never gets there (`What is "…"?` + `Usage: …`, `Illegal "…"`). The compiled
 * batches are run with `tc -force -batch` against a veth pair in a throwaway namespace, and every
 * failing line's message is classified. Needs root; hold /tmp/lqos-kernel.lock.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { execa } from 'execa';
import { probeQdiscKinds, chooseLeafFallback, resetQdiscProbeCache } from '../../lib/kernel/qdiscs.ts';
import { startTimeOf } from '../../lib/util/processes.ts';
import { buildPlan, planConfig } from '../support/plan.ts';
import { compileTcBatch } from '../../lib/compile/tc.ts';

const NS = `lqqdt-${randomBytes(3).toString('hex')}`;
let nsReady: Promise<void> | undefined;

/** A namespace with a 2-queue veth pair p0/p1 (dummy links need a module minimal kernels lack). */
function scratchNs(): Promise<void> {
  nsReady ??= (async () => {
    await execa('ip', ['netns', 'add', NS]);
    await execa('ip', ['-n', NS, 'link', 'add', 'p0', 'numtxqueues', '2', 'numrxqueues', '2', 'type', 'veth', 'peer', 'name', 'p1', 'numtxqueues', '2', 'numrxqueues', '2']);
    for (const dev of ['p0', 'p1']) await execa('ip', ['-n', NS, 'link', 'set', dev, 'up']);
  })();
  return nsReady;
}
after(async () => {
  if (nsReady) await execa('ip', ['netns', 'del', NS], { reject: false });
});

test('probe finds the basic qdiscs, cleans up, and caches', async () => {
  resetQdiscProbeCache();
  // Left by a prober that died mid-probe (pid 9999999: above the kernel's PID_MAX_LIMIT, never alive; in
  // both name layouts), by one whose PID a later process (this one) has taken (another start time),
  // and by a live process (this one) that must stay (both layouts).
  const started = startTimeOf(process.pid)!;
  const stale = ['lqprobe-9999999-0badf00d', 'lqprobe-9999999-12345-0badf00d', `lqprobe-${process.pid}-${Number(started) + 1}-0badcafe`];
  const live = [`lqprobe-${process.pid}-00c0ffee`, `lqprobe-${process.pid}-${started}-00c0ffee`];
  for (const ns of [...stale, ...live]) await execa('ip', ['netns', 'add', ns]);
  let kinds: Set<string>;
  try {
    kinds = await probeQdiscKinds();
    const left = (await execa('ip', ['netns', 'list'])).stdout.split('\n').map((l) => l.split(' ')[0]);
    for (const ns of stale) assert.ok(!left.includes(ns), `${ns}: a gone prober's namespace is removed`);
    for (const ns of live) assert.ok(left.includes(ns), `${ns}: a live prober's namespace is left alone`);
  } finally {
    for (const ns of [...stale, ...live]) await execa('ip', ['netns', 'del', ns], { reject: false });
  }
  console.log(`# available qdiscs: ${[...kinds].sort().join(', ')}`);
  for (const k of ['htb', 'tbf', 'pfifo', 'bfifo']) assert.ok(kinds.has(k), k);
  const nsAfter = (await execa('ip', ['netns', 'list'])).stdout;
  assert.doesNotMatch(nsAfter, /lqprobe-/, 'probe namespace removed');
  // Cached: a second call runs no `ip`/`tc` at all (with no PATH it could not).
  const path = process.env.PATH;
  process.env.PATH = '';
  try {
    assert.deepEqual([...(await probeQdiscKinds())].sort(), [...kinds].sort());
  } finally {
    process.env.PATH = path;
  }
});

test('leaf fallback order', () => {
  assert.deepEqual(chooseLeafFallback(new Set(['cake', 'fq_codel']), 'cake', ['diffserv4']), { kind: 'cake', args: ['diffserv4'], fallback: false, reason: 'cake is available' });
  const fq = chooseLeafFallback(new Set(['fq_codel', 'sfq']), 'cake');
  assert.equal(fq.kind, 'fq_codel');
  assert.ok(fq.fallback);
  assert.match(fq.reason, /cake is not available/);
  assert.equal(chooseLeafFallback(new Set(['fq_pie', 'pie', 'sfq']), 'fq_codel').kind, 'fq_pie');
  assert.equal(chooseLeafFallback(new Set(['codel', 'pie']), 'cake').kind, 'codel');
  assert.equal(chooseLeafFallback(new Set(['pie', 'sfq']), 'cake').kind, 'pie');
  assert.deepEqual(chooseLeafFallback(new Set(['sfq', 'pfifo']), 'cake').kind, 'sfq');
  const fifo = chooseLeafFallback(new Set(['pfifo', 'htb', 'tbf']), 'cake');
  assert.deepEqual([fifo.kind, fifo.args], ['pfifo', ['limit', '1000']]);
  assert.equal(chooseLeafFallback(new Set(['htb']), 'cake').kind, 'none');
});

/** What tc said about one line of a batch. */
type Verdict = { line: string; kind: 'ok' | 'kernel-unknown-kind' | 'parse-error' | 'other-error'; message: string };

/** The kernel's refusal of a qdisc kind it does not have (net/sched/sch_api.c), nothing else. */
const KERNEL_UNKNOWN_KIND = 'Error: Specified qdisc kind is unknown.';
/** iproute2's own refusals of an option (q_cake.c, q_fq_codel.c, tc_util.c) or of a kind it cannot parse. */
const PARSE_ERROR = /What is "|Illegal "|Usage: |option is unknown|Unknown qdisc "|hence option parsing not possible|invalid|requires an argument/;

function classify(line: string, message: string): Verdict {
  const m = message.trim();
  if (m === '') return { line, kind: 'ok', message: '' };
  if (m === KERNEL_UNKNOWN_KIND) return { line, kind: 'kernel-unknown-kind', message: m };
  return { line, kind: PARSE_ERROR.test(m) ? 'parse-error' : 'other-error', message: m };
}

/**
 * Runs `lines` with `tc -force -batch` on p0/p1 of the scratch namespace (root qdiscs cleared first):
 * every line gets its verdict (tc prints each failure's message followed by `Command failed -:N`).
 */
async function runBatch(lines: string[]): Promise<Verdict[]> {
  await scratchNs();
  for (const dev of ['p0', 'p1']) await execa('tc', ['-n', NS, 'qdisc', 'del', 'dev', dev, 'root'], { reject: false });
  assert.ok(lines.every((l) => l.trim() !== '' && !l.includes('\n')), 'one tc command per line');
  const r = await execa('tc', ['-n', NS, '-force', '-batch', '-'], { input: lines.join('\n') + '\n', reject: false });
  const messages = new Map<number, string>();
  let pending = '';
  for (const part of String(r.stderr).split('\n')) {
    const failed = /^Command failed -:(\d+)$/.exec(part);
    if (failed) {
      messages.set(Number(failed[1]), pending);
      pending = '';
    } else pending += `${part}\n`;
  }
  assert.equal(pending.trim(), '', `tc printed text that belongs to no failed line: ${pending}`);
  assert.equal(r.exitCode === 0, messages.size === 0, `tc exit ${r.exitCode} with ${messages.size} failed line(s): ${r.stderr.slice(0, 600)}`);
  return lines.map((l, i) => classify(l, messages.get(i + 1) ?? ''));
}

const NETWORK = JSON.stringify({ Site: { downloadBandwidthMbps: 2000, uploadBandwidthMbps: 2000, type: 'site', children: { AP: { downloadBandwidthMbps: 1500, uploadBandwidthMbps: 1500, type: 'ap' } } } });
/** Circuits that exercise every leaf the planner writes: low-rate cake rtt (1–4 Mbit/s), plain cake, fast fq_codel, and each sqm override. */
const CIRCUITS: Array<[string, number, string]> = [
  ['r1', 1, ''], ['r2', 2, ''], ['r3', 3, ''], ['r4', 4, ''], ['r10', 10, ''], ['fast', 800, ''],
  ['ovr-cake', 2, 'cake'], ['ovr-fq', 20, 'fq_codel'], ['ovr-none', 20, 'none'], ['ovr-split', 3, 'fq_codel/cake'],
];
const DEVICES = [
  'Circuit ID,Circuit Name,Device ID,Device Name,Parent Node,MAC,IPv4,IPv6,Download Min Mbps,Upload Min Mbps,Download Max Mbps,Upload Max Mbps,Comment,sqm',
  ...CIRCUITS.map(([id, mbps, sqm], i) => `${id},${id},${id}-d,${id}-d,AP,,100.64.0.${i + 1},,1,1,${mbps},${mbps},,${sqm}`),
].join('\n') + '\n';
/** default_sqm values an operator may configure (the web UI offers the first three). */
const DEFAULT_SQMS = [
  'cake diffserv4', 'cake diffserv4 ack-filter', 'fq_codel',
  'cake diffserv3', 'cake diffserv8', 'cake besteffort', 'cake diffserv4 ack-filter-aggressive nat wash',
  'cake diffserv4 rtt 20ms', 'cake diffserv4 overhead 18 mpu 64 noatm', 'cake diffserv4 triple-isolate split-gso',
  'fq_codel ecn', 'fq_codel limit 10240 flows 1024 target 5ms interval 100ms',
];

/** The compiled full batch for a default_sqm, on p0 (download) / p1 (upload), 2 queues, fq_codel from 500 Mbit/s. */
function compiled(defaultSqm: string): string[] {
  const r = buildPlan({ devices: DEVICES, network: NETWORK }, { config: planConfig({ defaultSqm, fastQueuesFqCodelMbps: 500, interfaces: { download: 'p0', upload: 'p1' } }) });
  return compileTcBatch(r.plan);
}

const leafKind = (line: string) => /^qdisc (?:add|replace) dev \S+ parent \S+ handle \S+ (\S+)/.exec(line)?.[1];

test('every generated cake and fq_codel line passes iproute2\'s option parser (only the kernel may refuse the kind)', async () => {
  const kernelKinds = await probeQdiscKinds();
  const verdicts: Verdict[] = [];
  for (const sqm of DEFAULT_SQMS) verdicts.push(...(await runBatch(compiled(sqm))));
  const leaves = verdicts.filter((v) => ['cake', 'fq_codel'].includes(leafKind(v.line) ?? ''));
  const leafTexts = new Set(leaves.map((v) => v.line.replace(/^.* handle \S+ /, '')));
  console.log(`# ${verdicts.length} lines, ${leaves.length} cake/fq_codel leaf lines (${leafTexts.size} distinct leaves); kernel kinds: ${[...kernelKinds].sort().join(', ')}`);
  const bad: string[] = [];
  for (const v of verdicts) {
    const kind = leafKind(v.line);
    if (kind === 'cake' || kind === 'fq_codel') {
      // Accepted by tc's parser: applied (the kernel has the kind) or refused by the kernel for the kind alone.
      const want = kernelKinds.has(kind) ? 'ok' : 'kernel-unknown-kind';
      if (v.kind !== want) bad.push(`${v.kind} (wanted ${want}): ${v.line}\n    ${v.message.split('\n')[0]}`);
    } else if (v.kind !== 'ok') bad.push(`${v.kind}: ${v.line}\n    ${v.message.split('\n')[0]}`);
  }
  assert.deepEqual(bad, [], `tc refused generated lines other than by the kernel's "${KERNEL_UNKNOWN_KIND}":\n${bad.join('\n')}`);
  // The compiler's own options are all in there.
  for (const want of ['cake diffserv4', 'cake diffserv4 rtt 300ms', 'cake diffserv4 rtt 180ms', 'cake diffserv4 rtt 140ms', 'cake diffserv4 rtt 120ms', 'cake diffserv4 ack-filter rtt 300ms', 'fq_codel']) {
    assert.ok(leafTexts.has(want), `no generated leaf "${want}" among: ${[...leafTexts].join(' | ')}`);
  }
});

test('the classification tells a parse error from the kernel refusing the kind', async () => {
  await scratchNs();
  const vs = await runBatch([
    'qdisc replace dev p0 root handle 7fff: mq',
    'qdisc add dev p0 parent 7fff:1 handle 1: htb default 2',
    'class add dev p0 parent 1: classid 1:1 htb rate 10mbit ceil 10mbit',
    'qdisc add dev p0 parent 1:1 handle 2001: cake diffserv4 ack-filtr',
    'qdisc add dev p0 parent 1:1 handle 2001: cake diffserv4 rtt 300mss',
    'qdisc add dev p0 parent 1:1 handle 2001: fq_codel targett 5ms',
  ]);
  assert.deepEqual(vs.map((v) => v.kind), ['ok', 'ok', 'ok', 'parse-error', 'parse-error', 'parse-error'], JSON.stringify(vs, null, 1));
  assert.match(vs[3]!.message, /^What is "ack-filtr"\?/);
  assert.match(vs[5]!.message, /^What is "targett"\?/);
  const kinds = await probeQdiscKinds();
  for (const kind of ['cake', 'fq_codel'] as const) {
    const [v] = await runBatch([`qdisc add dev p0 root handle 1: ${kind}`]);
    assert.equal(v!.kind, kinds.has(kind) ? 'ok' : 'kernel-unknown-kind', `${kind}: ${v!.message}`);
  }
});

test('this kernel: a plan\'s cake and fq_codel leaves get the documented fallback', async () => {
  const kinds = await probeQdiscKinds();
  for (const planned of ['cake', 'fq_codel'] as const) {
    const choice = chooseLeafFallback(kinds, planned);
    console.log(`# leaf for a ${planned} plan here: ${choice.kind} ${choice.args.join(' ')} - ${choice.reason}`);
    assert.equal(choice.fallback, !kinds.has(planned));
    assert.ok(choice.kind === planned || kinds.has(choice.kind), `${planned} falls back to ${choice.kind}, which the probe did not find`);
  }
});
