/**
 * The incremental apply engine (side effects): applies the difference between the plan in force
 * and a new plan with the fewest tc commands and map updates, verifies the kernel against the
 * plan, and falls back to a full rebuild (keeping the mq root) when the difference is structural,
 * an incremental step fails, or the kernel drifted.
 */
import type { PlannedCircuit, ShapingPlan } from '../model.ts';
import { compileTcBatch, formatRate, lazyOmits, sidesOf, type CompileOptions, type LazyQueues } from '../compile/tc.ts';
import { formatClassId, parseClassId } from '../util/classId.ts';
import type { Log } from '../util/log.ts';
import { diffPlans, type ApplyOps } from './diff.ts';
import { compactPlan } from './compactPlan.ts';
import type { MappingSink } from './mappingSink.ts';
import { parseHtbClasses, readClasses, readQdiscs, type KernelClass } from './kernelState.ts';
import { runTcBatch, TcBatchError } from './tcBatch.ts';
import { estimatePlanMemory, memoryPreflight, readMemInfo } from './memoryPreflight.ts';
import { MappingCapacityError, mappingCapacityVerdict } from './capacity.ts';
import { compileMappings } from '../compile/mappings.ts';
import { MAX_MAPPINGS } from '../../dataplane/abi.ts';

export { MappingCapacityError };

export interface ApplyArgs {
  applied: ShapingPlan | undefined;
  next: ShapingPlan;
  compile?: CompileOptions;
  sink?: MappingSink;
  log: Log;
  /** Command prefix (tests: run tc in a namespace). */
  wrap?: string[];
  /** Skip the read-back check (benchmarks). */
  skipVerify?: boolean;
  /** Memory figures for the preflight (tests); default /proc/meminfo. */
  memInfo?: { available: number; total: number };
  /**
   * IP mappings the dataplane holds (the LPM map's max_entries). Default: what the sink reports
   * (the attached map's), else MAX_MAPPINGS. A plan above it is refused before any change.
   */
  mappingCapacity?: number;
  /** Lazy queues (lib/shaping/lazyQueues.ts): absent, the whole tree is built. */
  lazy?: LazyControl;
}

/** What an apply with lazy queues needs from lqosd's lazy queue manager. */
export interface LazyControl {
  /** Compile lazily (undefined: lazy_queues = "No", every class and leaf). */
  compile?: LazyQueues;
  /** Set: rebuild the whole tree for this reason (lazy_queues changed since the last apply). */
  rebuild?: string;
  /** After a successful apply: the plan in force, whether the tree was rebuilt, the compile options used. */
  applied(plan: ShapingPlan, full: boolean, compile: CompileOptions): void;
}

export class MemoryPreflightError extends Error {}

export interface ApplyReport {
  mode: 'full' | 'incremental' | 'none';
  reason?: string;
  tcCommands: number;
  mappingsDeleted: number;
  mappingsWritten: number;
  summary: ApplyOps['summary'];
  seconds: number;
  /** Set when an incremental apply had to be redone as a full rebuild. */
  escalated?: string;
}

/** Full-rebuild tc lines that keep an existing mq root: drop each HTB under 7fff:, rebuild. */
export async function fullRebuildLines(plan: ShapingPlan, opts: CompileOptions, wrap?: string[], log?: Log): Promise<string[]> {
  const full = compileTcBatch(plan, opts);
  const devs = [...new Set(sidesOf(plan).map((s) => s.dev))];
  const prelude: string[] = [];
  const keepRoot = new Set<string>();
  for (const dev of devs) {
    const qdiscs = await readQdiscs(dev, { wrap, log });
    const root = qdiscs.find((q) => q.root);
    if (root?.kind === 'mq' && root.handle === '7fff:') {
      keepRoot.add(dev);
      for (const q of qdiscs) if (q.parent?.startsWith('7fff:') && q.kind !== 'pfifo_fast' && q.kind !== 'noqueue') prelude.push(`qdisc del dev ${dev} parent ${q.parent}`);
    } else if (root && root.kind !== 'noqueue') {
      prelude.push(`qdisc del dev ${dev} root`);
    }
  }
  const body = full.filter((l) => !(/^qdisc replace dev (\S+) root handle 7fff: mq$/.test(l) && keepRoot.has(l.split(' ')[3]!)));
  return [...prelude, ...body];
}

/**
 * Compares the kernel's HTB classes with the plan; returns human-readable differences.
 * With `only` (minors of the classes an incremental apply touched), just those classes are read
 * back — one small `tc class show … classid` per class instead of the whole tree.
 */
export async function verifyPlan(
  plan: ShapingPlan,
  opts: { wrap?: string[]; log?: Log; limit?: number; only?: Set<string>; readBack?: Map<string, Map<string, KernelClass>>; lazy?: LazyQueues } = {},
): Promise<string[]> {
  const problems: string[] = [];
  if (plan.mode === 'observe') return problems;
  const close = (a: number, b: number) => Math.abs(a - b) <= Math.max(1, b * 0.01);
  for (const s of sidesOf(plan)) {
    let k: Map<string, KernelClass>;
    if (opts.readBack) k = opts.readBack.get(s.dev) ?? new Map();
    else if (opts.only) {
      k = new Map();
      const reads = [...opts.only].map((key) => {
        const { major, minor } = parseClassId(key)!;
        return readClasses(s.dev, { ...opts, classid: formatClassId(major + s.majorOffset, minor) });
      });
      for (const part of await Promise.all(reads)) for (const [id, c] of part) k.set(id, c);
    } else k = await readClasses(s.dev, opts);
    const expect = (classid: string, parent: string, rate: number, ceil: number) => {
      const c = k.get(classid);
      if (!c) problems.push(`${s.dev}: class ${classid} missing`);
      else if (c.parent !== parent) problems.push(`${s.dev}: class ${classid} has parent ${c.parent}, plan says ${parent}`);
      else if (!close(c.rateKbit, rate * 1000) || !close(c.ceilKbit, ceil * 1000))
        problems.push(`${s.dev}: class ${classid} rate/ceil ${c.rateKbit}/${c.ceilKbit} kbit, plan says ${formatRate(rate)}/${formatRate(ceil)}`);
    };
    for (const list of [plan.nodes, plan.circuits]) {
      for (const x of list) {
        if (opts.only && !opts.only.has(formatClassId(x.queue, x.minor))) continue;
        const r = s.dir === 'download' ? x.download : x.upload;
        const major = x.queue + s.majorOffset;
        // A lazy circuit (Full) not materialised may lack its class; one left from before a restart is checked.
        if (list === plan.circuits && lazyOmits({ lazy: opts.lazy }, x as PlannedCircuit) === 'class' && !k.has(formatClassId(major, x.minor))) continue;
        expect(formatClassId(major, x.minor), formatClassId(major, x.parentMinor), r.rateMbps, r.ceilMbps);
      }
    }
    // On a stick both sides are one interface: its class list holds the download and the upload tree.
    const sides = sidesOf(plan).filter((x) => x.dev === s.dev).length;
    const planned = sides * (plan.nodes.length + plan.circuits.length + 2 * plan.queues);
    if (!opts.only && k.size > planned) problems.push(`${s.dev}: ${k.size - planned} class(es) in the kernel that the plan does not have`);
    if (problems.length >= (opts.limit ?? 20)) break;
  }
  return problems;
}

/** `queue:minor` (download majors, hex) of every class an incremental batch adds or changes. */
function touchedClasses(ops: ApplyOps, queues: number): Set<string> {
  const out = new Set<string>();
  for (const l of ops.tc) {
    const m = /^class (?:add|change) dev \S+ parent \S+ classid ([0-9a-f]+):([0-9a-f]+) /.exec(l);
    // Upload classes on a stick sit at major + queues; they map to the same download key.
    if (m && parseClassId(m[1])!.major <= queues) out.add(`${m[1]}:${m[2]}`);
  }
  return out;
}

/** `class show` lines (per side) for the touched classes, to append to a batch. */
function readBackLines(plan: ShapingPlan, touched: Set<string>): Array<{ dev: string; line: string }> {
  const out: Array<{ dev: string; line: string }> = [];
  for (const s of sidesOf(plan)) {
    for (const key of touched) {
      const { major, minor } = parseClassId(key)!;
      out.push({ dev: s.dev, line: `class show dev ${s.dev} classid ${formatClassId(major + s.majorOffset, minor)}` });
    }
  }
  return out;
}

/** Splits the stdout of appended `class show` lines back into per-device class maps. */
function parseReadBack(stdout: string, lines: Array<{ dev: string }>): Map<string, Map<string, KernelClass>> {
  const byDev = new Map<string, Map<string, KernelClass>>();
  // Class ids are unique per device but the same on both devices in bridge mode: attribute by
  // order — tc prints each show's output in batch order, one class per show.
  const texts = stdout.split('\n').filter((l) => l.startsWith('class htb '));
  texts.forEach((t, i) => {
    const dev = lines[i]?.dev;
    if (!dev) return;
    const c = parseHtbClasses(t).values().next().value as KernelClass | undefined;
    if (!c) return;
    let m = byDev.get(dev);
    if (!m) byDev.set(dev, (m = new Map()));
    m.set(c.classid, c);
  });
  return byDev;
}

async function runFull(args: ApplyArgs, ops: ApplyOps): Promise<number> {
  const { next, compile = {}, sink, log, wrap } = args;
  if (sink && ops.mapDelete.length) await sink.remove(ops.mapDelete);
  const lines = await fullRebuildLines(next, compile, wrap, log);
  await runTcBatch(lines, { log, wrap });
  if (sink && ops.mapUpsert.length) await sink.update(ops.mapUpsert);
  return lines.length;
}

/** The capacity the plan must fit (see ApplyArgs.mappingCapacity). */
async function capacityOf(args: ApplyArgs): Promise<number> {
  if (args.mappingCapacity !== undefined) return args.mappingCapacity;
  if (!args.sink?.capacity) return MAX_MAPPINGS;
  try {
    return await args.sink.capacity();
  } catch (e) {
    args.log.debug(`mapping capacity unknown (${(e as Error).message}); assuming ${MAX_MAPPINGS}`);
    return MAX_MAPPINGS;
  }
}

/** Refuses (MappingCapacityError) a plan whose mappings do not fit the dataplane: nothing is touched yet. */
async function capacityPreflight(args: ApplyArgs): Promise<void> {
  const verdict = mappingCapacityVerdict(args.next, await capacityOf(args));
  if (!verdict.ok) throw new MappingCapacityError(verdict.message, verdict.mappings, verdict.capacity);
  args.log.debug(`mapping capacity: ${verdict.message}`);
}

export async function applyPlan(args: ApplyArgs): Promise<ApplyReport> {
  const t0 = performance.now();
  const { applied, next, sink, log, wrap } = args;
  const compile: CompileOptions = args.lazy?.compile ? { ...args.compile, lazy: args.lazy.compile } : (args.compile ?? {});
  args = { ...args, compile };
  await capacityPreflight(args);
  let ops = diffPlans(applied, next, compile);
  let tcCommands = 0;
  let escalated: string | undefined;
  let readBack: Map<string, Map<string, KernelClass>> | undefined;
  const fullOps = (why: string): ApplyOps => {
    const d = diffPlans(undefined, next, compile);
    const keep = new Set(next.mappings.map((m) => m.prefix));
    const staleOld = applied ? applied.mappings.map((m) => m.prefix).filter((p) => !keep.has(p)) : [];
    return { ...d, reason: why, mapDelete: staleOld };
  };

  if (args.lazy?.rebuild && ops.mode !== 'full') ops = fullOps(args.lazy.rebuild);
  if (ops.mode === 'full' || ops.summary.circuitsAdded > 1000) {
    const verdict = memoryPreflight(
      estimatePlanMemory(next, compile.substitute),
      applied && ops.mode !== 'full' ? estimatePlanMemory(applied, compile.substitute) : undefined,
      args.memInfo ?? readMemInfo(),
    );
    if (!verdict.ok) throw new MemoryPreflightError(verdict.message);
    log.info(`memory preflight: ${verdict.message}`);
  }
  if (ops.mode === 'full') {
    log.info({ reason: ops.reason }, `full rebuild: ${ops.reason}`);
    tcCommands = await runFull(args, ops);
  } else if (ops.mode === 'incremental') {
    try {
      if (sink && ops.mapDelete.length) await sink.remove(ops.mapDelete);
      // A small change reads its classes back in the same tc process (`class show` lines).
      const touched = touchedClasses(ops, next.queues);
      const showLines = !args.skipVerify && touched.size > 0 && touched.size <= 64 ? readBackLines(next, touched) : [];
      if (ops.tc.length) {
        const out = await runTcBatch([...ops.tc, ...showLines.map((l) => l.line)], { log, wrap });
        if (showLines.length) readBack = parseReadBack(out, showLines);
      }
      if (sink && ops.mapUpsert.length) await sink.update(ops.mapUpsert);
      tcCommands = ops.tc.length;
    } catch (e) {
      if (!(e instanceof TcBatchError)) throw e;
      escalated = `incremental apply failed (${e.message.split('\n')[0]}); rebuilding the whole tree`;
      log.warn(escalated);
      ops = fullOps(escalated);
      tcCommands = await runFull(args, ops);
    }
  }

  if (!args.skipVerify) {
    // An incremental apply that touched few classes checks just those; everything else (full
    // rebuilds, "nothing changed" runs that look for drift) reads the whole tree back.
    const touched = ops.mode === 'incremental' && !escalated ? touchedClasses(ops, next.queues) : undefined;
    const only = touched && touched.size <= 64 ? touched : undefined;
    const problems = await verifyPlan(next, { wrap, log, only, readBack: only && !escalated ? readBack : undefined, lazy: compile.lazy });
    if (problems.length) {
      if (escalated || ops.mode === 'full') throw new Error(`the kernel does not match the plan after a full rebuild: ${problems.slice(0, 5).join('; ')}`);
      escalated = `kernel drifted from the plan (${problems[0]}${problems.length > 1 ? `, +${problems.length - 1} more` : ''}); rebuilding`;
      log.warn(escalated);
      ops = fullOps(escalated);
      tcCommands += await runFull(args, ops);
      const again = await verifyPlan(next, { wrap, log, lazy: compile.lazy });
      if (again.length) throw new Error(`the kernel does not match the plan after a full rebuild: ${again.slice(0, 5).join('; ')}`);
    }
  }
  // The maps can lose entries behind our back (reboot, bpffs remount, manual edits): make the
  // dataplane hold exactly the plan's mappings.
  let mapRepairs = 0;
  if (sink) {
    const present = new Set((await sink.list()).map((e) => e.prefix));
    const planned = compileMappings(next);
    const plannedSet = new Set(planned.map((m) => m.prefix));
    const missing = planned.filter((m) => !present.has(m.prefix));
    const extra = [...present].filter((p) => !plannedSet.has(p));
    if (extra.length) await sink.remove(extra);
    if (missing.length) await sink.update(missing);
    mapRepairs = missing.length + extra.length;
    if (mapRepairs && ops.mode === 'none') log.warn({ missing: missing.length, extra: extra.length }, 'IP mappings drifted from the plan; repaired');
  }
  // The compact form (./compactPlan.ts, the same object lqosd holds): the lazy queue manager keeps it until the next apply.
  args.lazy?.applied(compactPlan(next), escalated !== undefined || ops.mode === 'full', compile);
  return {
    mode: escalated ? 'full' : ops.mode === 'none' && mapRepairs ? 'incremental' : ops.mode,
    reason: ops.reason,
    tcCommands,
    mappingsDeleted: ops.mapDelete.length,
    mappingsWritten: ops.mapUpsert.length,
    summary: ops.summary,
    seconds: (performance.now() - t0) / 1000,
    escalated,
  };
}

