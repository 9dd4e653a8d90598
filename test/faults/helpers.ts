/**
 * Helpers of the fault-injection tests on the namespace lab: a `tc` shim that records when each
 * `tc -batch` starts and ends (and for whom), generated circuits, and the kernel read back with
 * `tc -j` and compared, independently of the apply engine, with a plan.
 */
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { execa } from 'execa';
import type { Lab, LabCircuit } from '../../lab/labEnv.ts';
import { deserializePlan } from '../../lib/apply/appliedPlan.ts';
import { busRequest } from '../../lib/bus/client.ts';
import type { ShapingPlan } from '../../lib/model.ts';
import { formatClassId } from '../../lib/util/classId.ts';

export interface TcTrace {
  /** Directory to put first in PATH. */
  binDir: string;
  /** Where the shim appends `start|end <tag> <pid> <seconds.nanos>` lines. */
  file: string;
}

/**
 * A `tc` in `dir/bin` that logs every `tc -batch` run (tagged with $LQOS_TC_TAG) and runs the real
 * one; with $LQOS_TC_HOLD set, a batch waits (after logging its start) until that file exists.
 */
export function tcShim(dir: string): TcTrace {
  const binDir = join(dir, 'bin');
  mkdirSync(binDir, { recursive: true });
  const file = join(dir, 'tc-trace.log');
  const real = existsSync('/usr/sbin/tc') ? '/usr/sbin/tc' : '/sbin/tc';
  writeFileSync(
    join(binDir, 'tc'),
    `#!/bin/sh
if [ "$1" = "-batch" ] && [ -n "$LQOS_TC_TRACE" ]; then
  echo "start \${LQOS_TC_TAG:-?} $$ $(date +%s.%N)" >> "$LQOS_TC_TRACE"
  # A slow tc on demand: hold the batch until the file $LQOS_TC_HOLD exists (at most 120 s).
  if [ -n "$LQOS_TC_HOLD" ]; then
    n=0
    while [ ! -e "$LQOS_TC_HOLD" ] && [ $n -lt 1200 ]; do sleep 0.1; n=$((n+1)); done
  fi
  # A batch cut in the middle on demand: run the first half of the lines, then hold until the file
  # $LQOS_TC_SPLIT_HOLD exists (a test kills the caller meanwhile), then the rest.
  if [ -n "$LQOS_TC_SPLIT_HOLD" ] && [ ! -e "$LQOS_TC_SPLIT_HOLD" ] && [ "$2" = "-" ]; then
    tmp=$(mktemp -p '${dir}')  # in the test's directory, removed with it even when this shim is killed
    cat > "$tmp"
    h=$(( $(wc -l < "$tmp") / 2 ))
    head -n "$h" "$tmp" | ${real} -batch -
    echo "half \${LQOS_TC_TAG:-?} $$ $(date +%s.%N) $h" >> "$LQOS_TC_TRACE"
    n=0
    while [ ! -e "$LQOS_TC_SPLIT_HOLD" ] && [ $n -lt 1200 ]; do sleep 0.1; n=$((n+1)); done
    tail -n +"$((h + 1))" "$tmp" | ${real} -batch -
    rc=$?
    rm -f "$tmp"
    echo "end \${LQOS_TC_TAG:-?} $$ $(date +%s.%N)" >> "$LQOS_TC_TRACE"
    exit $rc
  fi
  ${real} "$@"
  rc=$?
  echo "end \${LQOS_TC_TAG:-?} $$ $(date +%s.%N)" >> "$LQOS_TC_TRACE"
  exit $rc
fi
exec ${real} "$@"
`,
  );
  chmodSync(join(binDir, 'tc'), 0o755);
  return { binDir, file };
}

/** The environment that routes a process's `tc` through the shim, tagged `tag`. */
export function traceEnv(t: TcTrace, tag: string): Record<string, string> {
  return { PATH: `${t.binDir}:${process.env.PATH}`, LQOS_TC_TRACE: t.file, LQOS_TC_TAG: tag };
}

export interface BatchRun {
  tag: string;
  pid: string;
  start: number;
  /** Set when the split hold cut this batch after its first half (`lines` of it ran). */
  half?: { at: number; lines: number };
  end?: number;
}

/** The `tc -batch` runs recorded so far (an `end` is missing while one runs, or if it was killed). */
export function batchRuns(t: TcTrace): BatchRun[] {
  if (!existsSync(t.file)) return [];
  const runs = new Map<string, BatchRun>();
  for (const line of readFileSync(t.file, 'utf8').split('\n').filter(Boolean)) {
    const [what, tag, pid, at, lines] = line.split(' ');
    if (what === 'start') runs.set(pid!, { tag: tag!, pid: pid!, start: Number(at) });
    else if (what === 'half' && runs.has(pid!)) runs.get(pid!)!.half = { at: Number(at), lines: Number(lines) };
    else if (what === 'end' && runs.has(pid!)) runs.get(pid!)!.end = Number(at);
  }
  return [...runs.values()].sort((a, b) => a.start - b.start);
}

/** `n` plain lab circuits `gen-<i>` under the lab's two APs, addresses from 10.200.0.0/16 (not routed: tc and maps only). */
export function generatedCircuits(n: number, rate = (i: number) => 5 + (i % 20)): LabCircuit[] {
  return Array.from({ length: n }, (_, i) => ({
    id: `gen-${i}`,
    name: `Generated ${i}`,
    parent: i % 2 ? 'Lab_AP_2' : 'Lab_AP_1',
    ipv4: `10.200.${i >> 8}.${i & 255}`,
    ipv6: '',
    down: rate(i),
    up: Math.max(1, Math.round(rate(i) / 4)),
    path: 'plain' as const,
  }));
}

/** The lab's applied_plan.json. */
export function appliedPlan(lab: Lab): ShapingPlan {
  const plan = deserializePlan(readFileSync(join(lab.dir, 'state', 'shaping', 'applied_plan.json'), 'utf8'));
  if (!plan) throw new Error('no applied plan');
  return plan;
}

interface TextClass {
  parent: string;
  /** bits per second */
  ceil: number;
}

const UNIT: Record<string, number> = { bit: 1, Kbit: 1e3, Mbit: 1e6, Gbit: 1e9, Tbit: 1e12 };

/** `tc class show` text (this iproute2 prints no JSON for HTB classes) → classid → parent, ceil. */
function htbClasses(text: string): Map<string, TextClass> {
  const out = new Map<string, TextClass>();
  for (const line of text.split('\n')) {
    const m = /^class htb (\S+) (?:root|parent (\S+)).*? ceil ([\d.]+)([KMGT]?bit)/.exec(line);
    if (m) out.set(m[1]!, { parent: m[2] ?? 'root', ceil: Number(m[3]) * UNIT[m[4]!]! });
  }
  return out;
}
interface JQdisc {
  kind: string;
  handle: string;
  parent?: string;
}

/**
 * Differences between the kernel (classes and leaf qdiscs on both lab interfaces, read with
 * `tc -j`) and `plan`, and between lqosd's IP map (bus map_ip_list) and the plan's mappings.
 * Empty: the kernel holds exactly the plan.
 */
export async function kernelVsPlan(lab: Lab, plan: ShapingPlan, opts: { maps?: boolean } = {}): Promise<string[]> {
  const problems: string[] = [];
  const sides = [
    { dev: lab.tb.shaperIfs.customer, dir: 'download' as const },
    { dev: lab.tb.shaperIfs.internet, dir: 'upload' as const },
  ];
  for (const { dev, dir } of sides) {
    const htb = htbClasses(String((await execa('tc', ['-n', lab.tb.ns.shaper, 'class', 'show', 'dev', dev])).stdout));
    const want = new Map<string, { parent: string; ceil: number }>();
    for (const x of [...plan.nodes, ...plan.circuits]) {
      want.set(formatClassId(x.queue, x.minor), { parent: formatClassId(x.queue, x.parentMinor), ceil: (dir === 'download' ? x.download : x.upload).ceilMbps * 1e6 });
    }
    for (const [id, w] of want) {
      const k = htb.get(id);
      if (!k) problems.push(`${dev}: class ${id} missing`);
      else if (k.parent !== w.parent) problems.push(`${dev}: class ${id} parent ${k.parent}, plan ${w.parent}`);
      else if (Math.abs(k.ceil - w.ceil) > Math.max(1000, w.ceil * 0.01)) problems.push(`${dev}: class ${id} ceil ${k.ceil} bit/s, plan ${w.ceil}`);
    }
    // Besides the plan's: per queue the link class N:1 and the default class N:2.
    const extra = [...htb.keys()].filter((id) => !want.has(id) && !/^[0-9a-f]+:[12]$/.test(id));
    if (extra.length) problems.push(`${dev}: ${extra.length} class(es) not in the plan, e.g. ${extra.slice(0, 3).join(', ')}`);
    const qdiscs = JSON.parse(String((await execa('tc', ['-n', lab.tb.ns.shaper, '-j', 'qdisc', 'show', 'dev', dev])).stdout) || '[]') as JQdisc[];
    const circuitIds = new Set(plan.circuits.map((c) => formatClassId(c.queue, c.minor)));
    const leaves = qdiscs.filter((q) => q.parent && circuitIds.has(q.parent));
    const leafless = plan.circuits.filter((c) => (dir === 'download' ? c.download : c.upload).leaf !== null).length;
    if (leaves.length !== leafless) problems.push(`${dev}: ${leaves.length} circuit leaf qdiscs, plan has ${leafless}`);
  }
  if (opts.maps === false) return problems;
  const listed = (await busRequest('map_ip_list', {}, { path: lab.busPath, timeoutMs: 30_000 })) as { mappings: { prefix: string; major: number; minor: number }[] };
  const inMap = new Map(listed.mappings.map((m) => [m.prefix, `${m.major}:${m.minor}`]));
  const planned = new Map(plan.mappings.map((m) => [m.prefix, `${m.major}:${m.minor}`]));
  const missing = [...planned].filter(([p, c]) => inMap.get(p) !== c);
  const stray = [...inMap.keys()].filter((p) => !planned.has(p));
  if (missing.length) problems.push(`IP map: ${missing.length} planned mapping(s) missing or wrong, e.g. ${missing.slice(0, 3).map(([p]) => p).join(', ')}`);
  if (stray.length) problems.push(`IP map: ${stray.length} mapping(s) not in the plan, e.g. ${stray.slice(0, 3).join(', ')}`);
  return problems;
}
