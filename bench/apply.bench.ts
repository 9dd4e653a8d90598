/**
 * `npm run bench:apply`: the apply engine against the kernel, in a throwaway namespace.
 *  1. full apply of 10k circuits through the engine vs the bare `tc -batch` of the same commands;
 *  2. single-circuit change latency (diff + tc + targeted read-back), median of 10;
 *  3. lqosd-like steady-state memory: RSS of a process holding the applied 100k-circuit plan.
 * Prints figures; exits non-zero only on errors.
 */
import { execa } from 'execa';
import { rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pino } from 'pino';
import { generateDataset } from './dataset.ts';
import type { PlanConfig } from '../lib/plan/planConfig.ts';
import { applyPlan } from '../lib/apply/engine.ts';
import { serializePlan } from '../lib/apply/appliedPlan.ts';
import { BENCH_PLAN_CONFIG, buildPlan, PFIFO_LEAVES } from '../test/support/plan.ts';
import { tempDir } from '../test/support/workspace.ts';

const NS = `lqbapply${process.pid % 1000}`;
const wrap = ['ip', 'netns', 'exec', NS];
const log = pino({ level: 'warn' });
const QUEUES = 2;

const config: PlanConfig = { ...BENCH_PLAN_CONFIG, interfaces: { download: 'b0', upload: 'b1', onAStick: false }, queues: QUEUES };
// This kernel has no cake/fq_codel.
const compile = PFIFO_LEAVES;

async function sh(args: string[]) {
  await execa(args[0]!, args.slice(1));
}

async function setupNs() {
  await execa('ip', ['netns', 'del', NS], { reject: false });
  await sh(['ip', 'netns', 'add', NS]);
  await sh(['ip', '-n', NS, 'link', 'add', 'b0', 'numtxqueues', '4', 'numrxqueues', '4', 'type', 'veth', 'peer', 'name', 'b1', 'numtxqueues', '4', 'numrxqueues', '4']);
}

async function resetTc() {
  for (const dev of ['b0', 'b1']) await execa('ip', ['netns', 'exec', NS, 'tc', 'qdisc', 'del', 'dev', dev, 'root'], { reject: false });
}

function plan(circuits: number, seed = 1) {
  const ds = generateDataset({ circuits, seed });
  return buildPlan({ devices: ds.shapedDevicesCsv, network: ds.networkJson }, { config, compile });
}

async function timeBareBatch(lines: string[]): Promise<number> {
  const dir = tempDir('lqb-');
  const f = join(dir, 'b.txt');
  writeFileSync(f, lines.join('\n') + '\n');
  const t0 = performance.now();
  await execa('ip', ['netns', 'exec', NS, 'tc', '-batch', f]);
  const ms = performance.now() - t0;
  rmSync(dir, { recursive: true, force: true });
  return ms;
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

async function main() {
  await setupNs();
  try {
    const p10 = plan(10_000);
    const bare: number[] = [];
    const engine: number[] = [];
    for (let i = 0; i < 3; i++) {
      await resetTc();
      bare.push(await timeBareBatch(p10.tcLines));
      await resetTc();
      const t0 = performance.now();
      const rep = await applyPlan({ applied: undefined, next: p10.plan, compile, log, wrap });
      engine.push(performance.now() - t0);
      if (rep.mode !== 'full') throw new Error(`expected a full apply, got ${rep.mode}`);
    }
    const b = median(bare);
    const e = median(engine);
    console.log(`\n10k circuits: ${p10.tcLines.length} tc commands`);
    console.log(`  bare tc -batch        ${b.toFixed(0)} ms (median of 3)`);
    console.log(`  engine full apply     ${e.toFixed(0)} ms (incl. full read-back verification)  ratio ${(e / b).toFixed(2)} (target ≤ 1.3)`);

    // Single-circuit change: rate of one circuit, applied incrementally on the live 10k tree —
    // measured in a process running inside the namespace, as lqosd does (no `ip netns exec`
    // per tc command).
    const dir = tempDir('lqb-plan-');
    writeFileSync(join(dir, 'plan.json'), serializePlan(p10.plan));
    const child = await execa('ip', ['netns', 'exec', NS, 'node', '--import', 'tsx', 'bench/apply.latency.ts', join(dir, 'plan.json')], { cwd: process.cwd() });
    rmSync(dir, { recursive: true, force: true });
    const lat = JSON.parse(String(child.stdout).trim().split('\n').pop()!) as { total: number[]; diff: number[] };
    console.log(`  single-circuit change ${median(lat.total).toFixed(1)} ms median, ${Math.max(...lat.total).toFixed(1)} ms max of 10 (target ≤ 100 ms; in-namespace: diff ${median(lat.diff).toFixed(1)} ms + tc + read-back of that class)`);

    // Memory of holding a 100k plan (what lqosd keeps after an apply).
    const memChild = await execa('node', ['--import', 'tsx', '-e', `
      const { generateDataset } = await import('./bench/dataset.ts');
      const { runPipeline } = await import('./lib/pipeline.ts');
      const ds = generateDataset({ circuits: 100000, seed: 7 });
      const csv = ds.shapedDevicesCsv.replace(/,\\r?$/gm, ',none');
      let r = runPipeline({ devicesText: csv, devicesFile: 'd', networkText: ds.networkJson, networkFile: 'n', config: ${JSON.stringify({ ...config, queues: 4 })} });
      if (!r.ok) { console.log(JSON.stringify({ error: r.stage })); process.exit(1); }
      const plan = r.plan; r = null; globalThis.keep = plan;
      global.gc?.(); await new Promise((res) => setTimeout(res, 500)); global.gc?.();
      const { readFileSync } = await import('node:fs'); const rss = Number(/VmRSS:\\s+(\\d+)/.exec(readFileSync('/proc/self/status', 'utf8'))[1]) / 1024;
      console.log(JSON.stringify({ circuits: plan.circuits.length, rssMb: Math.round(rss), peakMb: Math.round(process.resourceUsage().maxRSS / 1024) }));
    `], { cwd: process.cwd(), env: { NODE_OPTIONS: '--expose-gc' } });
    const mem = JSON.parse(String(memChild.stdout).trim().split('\n').pop()!) as { circuits: number; rssMb: number; peakMb: number };
    console.log(`\n100k circuits held in memory (sqm none: the kernel's ~57k leaf-qdisc limit per interface):`);
    console.log(`  steady RSS ${mem.rssMb} MB after GC (target ≤ 300 MB), peak during compile ${mem.peakMb} MB`);
  } finally {
    await execa('ip', ['netns', 'del', NS], { reject: false });
  }
}

main().catch((e) => {
  console.error(e);
  process.exitCode = 1;
});
