/**
 * Helper of bench/apply.bench.ts, run inside the bench namespace: applies 10 single-circuit rate
 * changes to the live tree (whose plan is in argv[2]) and prints the latencies as JSON.
 */
import { readFileSync } from 'node:fs';
import { pino } from 'pino';
import { applyPlan } from '../lib/apply/engine.ts';
import { diffPlans } from '../lib/apply/diff.ts';
import { deserializePlan } from '../lib/apply/appliedPlan.ts';
import { PFIFO_LEAVES } from '../test/support/plan.ts';

const compile = PFIFO_LEAVES;
let applied = deserializePlan(readFileSync(process.argv[2]!, 'utf8'))!;
const log = pino({ level: 'warn' });
const total: number[] = [];
const diff: number[] = [];
for (let i = 0; i < 10; i++) {
  const next = structuredClone(applied);
  const c = next.circuits[(i * 997) % next.circuits.length]!;
  c.download.ceilMbps = Math.max(1, c.download.ceilMbps - 1 - i);
  const t0 = performance.now();
  const rep = await applyPlan({ applied, next, compile, log });
  total.push(performance.now() - t0);
  const t1 = performance.now();
  diffPlans(applied, next, compile);
  diff.push(performance.now() - t1);
  if (rep.mode !== 'incremental' || rep.tcCommands !== 1) throw new Error(`unexpected ${rep.mode} with ${rep.tcCommands} commands`);
  applied = next;
}
console.log(JSON.stringify({ total, diff }));
