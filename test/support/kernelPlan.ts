/**
 * The kernel read back against a plan, for lab tests: HTB class rates in exact bits/s (tc's text form:
 * `tc -j class show` prints no JSON for HTB in iproute2 6.1) compared with what the compiler wrote
 * for each circuit, and the leaf qdiscs (`tc -j qdisc show`) under the circuit classes.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { execa } from 'execa';
import { parsePlan } from '../../lib/apply/appliedPlan.ts';
import { compileCircuitLines, sidesOf } from '../../lib/compile/tc.ts';
import { statePaths } from '../../lib/config/paths.ts';
import type { PlannedCircuit, ShapingPlan } from '../../lib/model.ts';
import { tcHex } from '../../lib/util/classId.ts';

const UNITS: Record<string, bigint> = { '': 1n, k: 1000n, m: 1_000_000n, g: 1_000_000_000n, t: 1_000_000_000_000n };

/** `25Mbit`, `2500kbit`, `4Gbit`, `10bit` → bits/s, exactly (tc prints rates exactly below 1 Gbit/s and for whole units above). */
export function rateBits(text: string): bigint {
  const m = /^(\d+)([kmgt]?)bit$/i.exec(text);
  assert.ok(m, `not a tc rate: "${text}"`);
  return BigInt(m[1]!) * UNITS[m[2]!.toLowerCase()]!;
}

export interface KernelHtbClass {
  classid: string;
  parent: string;
  /** Leaf qdisc handle (`2003:`) when the class has one. */
  leaf?: string;
  rateBits: bigint;
  ceilBits: bigint;
}

/** HTB classes of `dev` in namespace `ns`, keyed by class id as tc prints it (`1:3`). */
export async function readHtbClasses(ns: string, dev: string): Promise<Map<string, KernelHtbClass>> {
  const r = await execa('tc', ['-n', ns, 'class', 'show', 'dev', dev]);
  const out = new Map<string, KernelHtbClass>();
  for (const line of r.stdout.split('\n')) {
    const m = /^class htb (\S+) (?:parent (\S+)|root)(?: leaf (\S+))?.*? rate (\S+) ceil (\S+)/.exec(line);
    if (m) out.set(m[1]!, { classid: m[1]!, parent: m[2] ?? 'root', leaf: m[3], rateBits: rateBits(m[4]!), ceilBits: rateBits(m[5]!) });
  }
  return out;
}

export interface KernelQdisc {
  kind: string;
  handle: string;
  parent?: string;
  root?: boolean;
  options?: Record<string, unknown>;
}

/** Qdiscs of `dev` in namespace `ns` (`tc -j qdisc show`). */
export async function readQdiscs(ns: string, dev: string): Promise<KernelQdisc[]> {
  const r = await execa('tc', ['-n', ns, '-j', 'qdisc', 'show', 'dev', dev]);
  return JSON.parse(r.stdout) as KernelQdisc[];
}

/** The plan in force (`<state>/shaping/applied_plan.json`) of a state directory. */
export function readAppliedPlan(stateDir: string): ShapingPlan {
  return parsePlan(readFileSync(statePaths(stateDir).appliedPlan, 'utf8'));
}

/** One direction of a circuit as the compiler writes it. */
export interface CompiledSide {
  dir: 'download' | 'upload';
  dev: string;
  classid: string;
  rateBits: bigint;
  ceilBits: bigint;
  /** The planned leaf (before any fallback) and its handle; null leaf = none. */
  leaf: PlannedCircuit['download']['leaf'];
  leafHandle: string;
}

/** The circuit's class lines of the compiled plan, parsed: device, class id, rate and ceil. */
export function compiledSides(plan: ShapingPlan, c: PlannedCircuit): CompiledSide[] {
  const lines = compileCircuitLines(plan, c).filter((l) => l.startsWith('class '));
  const sides = sidesOf(plan);
  assert.equal(lines.length, sides.length, `circuit ${c.id}: expected one class line per direction, got ${lines.length}`);
  return sides.map((s, i) => {
    const m = /^class add dev (\S+) parent \S+ classid (\S+) htb rate (\S+) ceil (\S+) /.exec(lines[i]!);
    assert.ok(m, `circuit ${c.id}: class line not understood: ${lines[i]}`);
    const d = s.dir === 'download' ? c.download : c.upload;
    return { dir: s.dir, dev: m[1]!, classid: m[2]!, rateBits: rateBits(m[3]!), ceilBits: rateBits(m[4]!), leaf: d.leaf, leafHandle: `${tcHex(d.leafHandle)}:` };
  });
}

/** A plan rate (Mbit/s) in bits/s at tc's kbit precision (lib/compile/tc.ts formatRate). */
export function planBits(mbps: number): bigint {
  return BigInt(Math.max(1, Math.round(mbps * 1000))) * 1000n;
}

/**
 * Asserts every circuit of `plan` (or those of `ids`) has its class in the kernel with exactly the
 * compiled rate and ceil, both directions, and that the compiled rate and ceil are the plan's.
 * Returns how many classes were compared.
 */
export async function assertCircuitClasses(ns: string, plan: ShapingPlan, ids?: string[]): Promise<number> {
  const circuits = ids ? ids.map((id) => plan.circuits.find((c) => c.id === id)) : plan.circuits;
  assert.ok(circuits.length > 0, 'no circuits to compare with the kernel');
  const kernel = new Map<string, Map<string, KernelHtbClass>>();
  let compared = 0;
  for (const [i, c] of circuits.entries()) {
    assert.ok(c, `circuit ${ids?.[i]} is not in the plan in force`);
    for (const s of compiledSides(plan, c)) {
      if (!kernel.has(s.dev)) kernel.set(s.dev, await readHtbClasses(ns, s.dev));
      const k = kernel.get(s.dev)!.get(s.classid);
      assert.ok(k, `circuit ${c.id} ${s.dir}: class ${s.classid} is not on ${s.dev} (tc -n ${ns} class show dev ${s.dev})`);
      assert.deepEqual(
        { rate: k.rateBits, ceil: k.ceilBits },
        { rate: s.rateBits, ceil: s.ceilBits },
        `circuit ${c.id} ${s.dir}: kernel class ${s.classid} on ${s.dev} has rate/ceil (bits/s) other than compiled`,
      );
      const d: PlannedCircuit['download'] = s.dir === 'download' ? c.download : c.upload;
      assert.deepEqual(
        { rate: s.rateBits, ceil: s.ceilBits },
        { rate: planBits(d.rateMbps), ceil: planBits(d.ceilMbps) },
        `circuit ${c.id} ${s.dir}: the compiled class ${s.classid} has rate/ceil (bits/s) other than the plan's`,
      );
      compared++;
    }
  }
  return compared;
}
