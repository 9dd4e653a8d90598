/**
 * The leaf-qdisc fallback as every lab run uses it: this kernel has neither cake nor fq_codel, so
 * lqosd applies a replacement leaf (lib/kernel/qdiscs.ts chooses it) and raises QDISC_FALLBACK.
 * The namespace lab (lab/labEnv.ts) with the real lqosd and LibreQoS shapes circuits planned with
 * cake (default_sqm), fq_codel and none (sqm column); then the kernel is read back: every circuit
 * class and every default class carries the replacement the code chose (kind, handle, options), a
 * `none` circuit has no leaf, and the urgent issue, lqosd's status and LibreQoS's output name the
 * missing kind and its replacement. Needs root; hold /tmp/lqos-kernel.lock. Namespaces lqqfb-*.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { execa } from 'execa';
import { defaultLabCircuits, runLabLibreQoS, startLab, startLabDaemon, stopLab, type Lab } from '../../lab/labEnv.ts';
import { busRequest } from '../../lib/bus/client.ts';
import { chooseLeafFallback, probeQdiscKinds, type LeafChoice } from '../../lib/kernel/qdiscs.ts';
import type { UrgentIssue } from '../../lib/api/urgent.ts';
import type { ShapingPlan } from '../../lib/model.ts';
import { tcHex } from '../../lib/util/classId.ts';
import { compiledSides, readAppliedPlan, readQdiscs, type KernelQdisc } from '../support/kernelPlan.ts';

const ID = 'lqqfb';
const PLANNED = ['cake', 'fq_codel'] as const;
/** The lab's plain circuits with an sqm override each: default (cake diffserv4), fq_codel, none, fq_codel down / cake up. */
const SQM: Record<string, string> = { 'lab-10': '', 'lab-25': 'fq_codel', 'lab-50': 'none', 'lab-v6': 'fq_codel/cake' };
const circuits = defaultLabCircuits.filter((c) => c.path === 'plain');

let lab: Lab;
let plan: ShapingPlan;
let cliOutput: string;
/** Planned kinds the kernel refuses (found with tc itself, not with the code under test). */
const missing = new Set<string>();
/** What the code chooses for each planned kind on this kernel. */
const choice = new Map<string, LeafChoice>();

function devicesCsv(): string {
  const header = 'Circuit ID,Circuit Name,Device ID,Device Name,Parent Node,MAC,IPv4,IPv6,Download Min Mbps,Upload Min Mbps,Download Max Mbps,Upload Max Mbps,Comment,sqm';
  const rows = circuits.map((c) => [c.id, c.name, `${c.id}-cpe`, `CPE of ${c.id}`, c.parent, '', c.ipv4, c.ipv6, '1', '1', c.down, c.up, 'lab', SQM[c.id] ?? ''].join(','));
  return [header, ...rows].join('\n') + '\n';
}

before(async () => {
  lab = await startLab({ id: ID, circuits, daemon: false });
  writeFileSync(join(lab.dir, 'ShapedDevices.csv'), devicesCsv());
  // Does the kernel have the planned kinds? Asked of tc directly, on the lab shaper's loopback.
  for (const kind of PLANNED) {
    const r = await execa('tc', ['-n', lab.tb.ns.shaper, 'qdisc', 'add', 'dev', 'lo', 'root', 'handle', '1:', kind], { reject: false, all: true });
    if (r.exitCode === 0) await execa('tc', ['-n', lab.tb.ns.shaper, 'qdisc', 'del', 'dev', 'lo', 'root']);
    else {
      assert.equal(String(r.all).trim(), 'Error: Specified qdisc kind is unknown.', `tc qdisc add … ${kind} failed other than for the kind`);
      missing.add(kind);
    }
  }
  const kinds = await probeQdiscKinds();
  for (const kind of PLANNED) choice.set(kind, chooseLeafFallback(kinds, kind));
  await startLabDaemon(lab);
  const r = await runLabLibreQoS(lab);
  assert.equal(r.code, 0, `LibreQoS failed (exit ${r.code}):\n${r.output.slice(-3000)}`);
  cliOutput = r.output;
  plan = readAppliedPlan(join(lab.dir, 'state'));
});
after(async () => {
  await stopLab(ID);
});

/** The leaf under `parent` on `dev` (asserts there is at most one). */
function leafUnder(qdiscs: KernelQdisc[], parent: string, what: string): KernelQdisc | undefined {
  const under = qdiscs.filter((q) => q.parent === parent);
  assert.ok(under.length <= 1, `${what}: ${under.length} qdiscs under ${parent}: ${JSON.stringify(under)}`);
  return under[0];
}

/** Asserts `q` is the leaf the code chose for `planned`: kind, and each `name value` option pair it sets. */
function assertChosenLeaf(q: KernelQdisc | undefined, planned: string, what: string): void {
  const c = choice.get(planned);
  assert.ok(c, `${what}: planned leaf ${planned} is neither cake nor fq_codel`);
  assert.equal(c.fallback, missing.has(planned), `${what}: the code ${c.fallback ? 'falls back from' : 'keeps'} ${planned}, but tc says the kernel ${missing.has(planned) ? 'lacks' : 'has'} it`);
  if (c.kind === 'none') return assert.equal(q, undefined, `${what}: no usable leaf kind, yet ${q?.kind} is in the kernel`);
  assert.ok(q, `${what}: no leaf qdisc in the kernel (expected ${c.kind})`);
  assert.equal(q.kind, c.kind, `${what}: kernel leaf is ${q.kind}, the code chose ${c.kind} (${c.reason})`);
  for (let i = 0; i + 1 < c.args.length; i += 2) {
    assert.equal(String(q.options?.[c.args[i]!]), c.args[i + 1], `${what}: ${c.kind} option ${c.args[i]} in the kernel: ${JSON.stringify(q.options)}`);
  }
}

test('every circuit class and default class carries the leaf the code chose for its planned kind (tc -j qdisc show)', async () => {
  assert.equal(choice.size, PLANNED.length, 'a choice for each planned kind');
  const byDev = new Map<string, KernelQdisc[]>();
  const qdiscsOf = async (dev: string) => {
    if (!byDev.has(dev)) byDev.set(dev, await readQdiscs(lab.tb.ns.shaper, dev));
    return byDev.get(dev)!;
  };
  const seen = new Set<string>();
  for (const c of plan.circuits) {
    for (const s of compiledSides(plan, c)) {
      const what = `circuit ${c.id} ${s.dir} (class ${s.classid} on ${s.dev})`;
      const q = leafUnder(await qdiscsOf(s.dev), s.classid, what);
      if (s.leaf === null) {
        assert.equal(q, undefined, `${what}: sqm none plans no leaf, the kernel has ${q?.kind}`);
        seen.add('none');
        continue;
      }
      assertChosenLeaf(q, s.leaf.kind, what);
      assert.equal(q!.handle, s.leafHandle, `${what}: leaf handle`);
      seen.add(s.leaf.kind);
    }
  }
  assert.deepEqual([...seen].sort(), ['cake', 'fq_codel', 'none'], 'the lab plans leaves of every kind');
  // The default class N:2 of each queue carries default_sqm (cake diffserv4), replaced the same way.
  assert.equal(plan.defaultLeaf.kind, 'cake');
  for (const [dev, offset] of [[plan.interfaces.download, 0], [plan.interfaces.upload, plan.stickOffset]] as const) {
    for (let n = 1; n <= plan.queues; n++) {
      const classid = `${tcHex(n + offset)}:2`;
      assertChosenLeaf(leafUnder(await qdiscsOf(dev), classid, `default class ${classid} on ${dev}`), 'cake', `default class ${classid} on ${dev}`);
    }
  }
});

test('the fallback is raised as lqosd\'s QDISC_FALLBACK urgent issue, in its status and in LibreQoS\'s output, naming the missing kind and its replacement', async () => {
  const expected: Record<string, string> = {};
  for (const kind of missing) {
    const c = choice.get(kind)!;
    expected[kind] = [c.kind, ...c.args].join(' ');
  }
  const { issues } = (await busRequest('urgent_list', {}, { path: lab.busPath })) as { issues: UrgentIssue[] };
  const fb = issues.filter((i) => i.code === 'QDISC_FALLBACK');
  const st = (await busRequest('status', {}, { path: lab.busPath })) as { shaping: { leafFallbacks?: Record<string, string> } };
  if (missing.size === 0) {
    assert.deepEqual(fb, [], 'cake and fq_codel exist here: no QDISC_FALLBACK issue');
    assert.equal(st.shaping.leafFallbacks, undefined);
    return;
  }
  assert.equal(fb.length, 1, `one QDISC_FALLBACK urgent issue expected; lqosd has: ${issues.map((i) => i.code).join(', ') || 'none'}`);
  const issue = fb[0]!;
  assert.equal(issue.severity, 'warning');
  assert.deepEqual(issue.context, expected, 'the issue\'s context maps each missing kind to its replacement');
  for (const [kind, using] of Object.entries(expected)) {
    assert.ok(issue.message.includes(kind), `the issue does not name the missing ${kind}: ${issue.message}`);
    assert.ok(issue.message.includes(using), `the issue does not name the replacement "${using}": ${issue.message}`);
    assert.ok(cliOutput.includes(`${kind} is not available in this kernel; circuits planned with ${kind} use ${using}`), `LibreQoS's output does not report the ${kind} fallback:\n${cliOutput.slice(0, 2000)}`);
  }
  assert.deepEqual(st.shaping.leafFallbacks, expected, 'lqosd status shaping.leafFallbacks');
});
