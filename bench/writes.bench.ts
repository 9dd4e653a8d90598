/**
 * `npm run bench:writes`: what crash-safe writes (lib/util/atomicFile.ts: temp → fsync → rename →
 * fsync the directory, with rotated hard-link backups) cost per shaping run, against a plain
 * writeFileSync, for the largest file a run records (applied_plan.json) at 10k and 100k circuits.
 * Median and spread of 7 writes each, on the state directory's file system (here: the repo's disk).
 * Prints figures; exits non-zero only on errors.
 */
import { rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { serializePlan } from '../lib/apply/appliedPlan.ts';
import { writeFileAtomic } from '../lib/util/atomicFile.ts';
import { BENCH_PLAN_CONFIG, buildPlan, PFIFO_LEAVES } from '../test/support/plan.ts';
import { generateDataset } from './dataset.ts';

const RUNS = 7;
const stats = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return { median: s[Math.floor(s.length / 2)]!, min: s[0]!, max: s[s.length - 1]! };
};
const fmt = (x: { median: number; min: number; max: number }) => `${x.median.toFixed(1)} ms (${x.min.toFixed(1)}–${x.max.toFixed(1)})`;

function time(fn: () => void): number[] {
  const out: number[] = [];
  for (let i = 0; i < RUNS; i++) {
    const t0 = performance.now();
    fn();
    out.push(performance.now() - t0);
  }
  return out;
}

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
    const plain = stats(time(() => writeFileSync(file, text)));
    const safe = stats(time(() => writeFileAtomic(file, text)));
    const withBackups = stats(time(() => writeFileAtomic(file, text, { backup: 2 })));
    console.log(
      `${circuits.toLocaleString('en')} circuits, applied_plan.json ${(text.length / 1e6).toFixed(1)} MB: ` +
        `plain writeFileSync ${fmt(plain)}; crash-safe ${fmt(safe)} (${safe.median >= plain.median ? '+' : ''}${(safe.median - plain.median).toFixed(1)} ms); ` +
        `crash-safe with 2 rotated backups ${fmt(withBackups)}`,
    );
  }
} finally {
  rmSync(dir, { recursive: true, force: true });
}
