/**
 * `npm run bench:writes`: what crash-safe writes (lib/util/atomicFile.ts: temp → fsync → rename →
 * fsync the directory, with rotated hard-link backups) cost per shaping run, against a plain
 * writeFileSync, for the largest file a run records (applied_plan.json) at 10k and 100k circuits.
 * The three variants run interleaved (7 rounds, order rotating each round: plain / safe / backups,
 * safe / backups / plain, …); median and min–max of the 7 writes each, on the state directory's file
 * system (here: the repo's disk). Sets no targets (prints the empty target table); exits 1 on errors.
 */
import { rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { serializePlan } from '../lib/apply/appliedPlan.ts';
import { writeFileAtomic } from '../lib/util/atomicFile.ts';
import { BENCH_PLAN_CONFIG, buildPlan, PFIFO_LEAVES } from '../test/support/plan.ts';
import { generateDataset } from './dataset.ts';
import { fmtSpread, interleaved, machineLine, spread, Targets, type Spread } from './stats.ts';

const RUNS = 7;
const fmt = (x: Spread) => fmtSpread(x, 'ms', 1);

function time(fn: () => void): number {
  const t0 = performance.now();
  fn();
  return performance.now() - t0;
}

console.log(`crash-safe writes: ${machineLine()}`);
const dir = join(import.meta.dirname, '..', 'test-output', `bench-writes-${process.pid}`);
try {
  for (const circuits of [10_000, 100_000]) {
    const ds = generateDataset({ circuits, seed: 3 });
    // At 100k one interface has too few qdisc handles for a leaf per circuit: sqm none, as bench:apply does.
    const devices = circuits > 50_000 ? ds.shapedDevicesCsv.replace(/,\r?$/gm, ',none') : ds.shapedDevicesCsv;
    const plan = buildPlan({ devices, network: ds.networkJson }, { config: { ...BENCH_PLAN_CONFIG, queues: 4 }, compile: PFIFO_LEAVES }).plan;
    const text = serializePlan(plan);
    const file = join(dir, `applied_plan_${circuits}.json`);
    writeFileAtomic(file, text); // directory and first file in place
    const r = await interleaved(RUNS, {
      plain: () => time(() => writeFileSync(file, text)),
      safe: () => time(() => writeFileAtomic(file, text)),
      backups: () => time(() => writeFileAtomic(file, text, { backup: 2 })),
    });
    const plain = spread(r.plain);
    const safe = spread(r.safe);
    const withBackups = spread(r.backups);
    console.log(
      `${circuits.toLocaleString('en')} circuits, applied_plan.json ${(text.length / 1e6).toFixed(1)} MB: ` +
        `plain writeFileSync ${fmt(plain)}; crash-safe ${fmt(safe)} (${safe.median >= plain.median ? '+' : ''}${(safe.median - plain.median).toFixed(1)} ms); ` +
        `crash-safe with 2 rotated backups ${fmt(withBackups)}`,
    );
  }
  new Targets().report();
} finally {
  rmSync(dir, { recursive: true, force: true });
}
