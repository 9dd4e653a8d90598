/**
 * Two applies at once are serialised by the kernel lock (issue 14): lqosd applying a large refresh
 * (as the scheduler asks for it) while `LibreQoS --direct` applies other inputs to the same kernel.
 * A `tc` shim records when each `tc -batch` starts and ends, and holds lqosd's batch until
 * --direct has come: the two processes' batches never overlap, --direct says whom it waited for,
 * both end with exit code 0, and the kernel ends up holding exactly the plan applied last. Namespace lab: run under the kernel flock.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { copyFileSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { execa } from 'execa';
import { join } from 'node:path';
import { defaultLabCircuits, labShapedDevices, repoRoot, runLabLibreQoS, startLab, stopLab, writeLabDevices, type Lab } from '../../lab/labEnv.ts';
import { busRequest } from '../../lib/bus/client.ts';
import type { ShapingOutcome } from '../../lib/shaping/service.ts';
import { waitFor } from '../support/wait.ts';
import { testDir } from '../support/workspace.ts';
import { appliedPlan, batchRuns, generatedCircuits, kernelVsPlan, tcShim, traceEnv } from './helpers.ts';

const ID = 'lqconc';
let lab: Lab | undefined;
after(async () => {
  if (lab) await stopLab(ID);
});

test('lqosd applying a refresh and LibreQoS --direct at the same time: the tc batches do not overlap, both succeed, the kernel holds the last plan', async (t) => {
  const dir = testDir(t, 'lqos-conc-');
  const trace = tcShim(dir);
  // lqosd's tc batches wait for this file: a slow tc, so --direct surely comes while lqosd applies.
  const release = join(dir, 'release');
  writeFileSync(release, '');
  const plain = defaultLabCircuits.filter((c) => c.path === 'plain');
  lab = await startLab({ id: ID, circuits: plain, daemonEnv: { ...traceEnv(trace, 'lqosd'), LQOS_TC_HOLD: release } });
  assert.equal((await runLabLibreQoS(lab)).code, 0);
  rmSync(release);

  // lqosd's refresh: 4,000 new circuits. --direct: its own copy of the config and inputs (the same
  // interfaces and state) with 4,000 circuits at other rates, so both have a large batch to run.
  writeLabDevices(lab, [...plain, ...generatedCircuits(4000)]);
  const directDir = join(dir, 'direct');
  mkdirSync(directDir);
  const directConf = join(directDir, 'lqos.conf');
  writeFileSync(directConf, readFileSync(lab.config, 'utf8').replace(/^lqos_directory = .*$/m, `lqos_directory = "${directDir}"`));
  copyFileSync(join(lab.dir, 'network.json'), join(directDir, 'network.json'));
  writeFileSync(join(directDir, 'ShapedDevices.csv'), labShapedDevices([...plain, ...generatedCircuits(4000, (i) => 30 + (i % 7))]));

  const t0 = Date.now() / 1000;
  const since = () => batchRuns(trace).filter((r) => r.start >= t0);
  const refresh = busRequest<'refresh', ShapingOutcome>('refresh', {}, { path: lab.busPath, timeoutMs: 300_000 });
  await waitFor(() => since().some((r) => r.tag === 'lqosd'), 120_000, "lqosd's tc batch to start", 10);
  // lqosd now holds the kernel lock and its batch is held. --direct must wait for it, not run.
  let output = '';
  const direct = execa('ip', ['netns', 'exec', lab.tb.ns.shaper, join(repoRoot, 'LibreQoS'), '--config', directConf, '--direct'], {
    reject: false,
    all: true,
    env: { LQOS_BPF_PIN_ROOT: lab.pinRoot, LQOS_LOG_FORMAT: 'json', LQOS_RUN_DIR: join(lab.dir, 'run'), ...traceEnv(trace, 'direct') },
  });
  direct.all!.on('data', (d: Buffer) => (output += d.toString()));
  await waitFor(() => /waiting for PID/.test(output) || direct.exitCode !== null, 120_000, '--direct to wait for the kernel lock', 20);
  assert.equal(since().filter((r) => r.tag === 'direct').length, 0, '--direct ran a tc batch while lqosd was applying');
  writeFileSync(release, ''); // lqosd's tc goes on
  const [refreshed, done] = await Promise.all([refresh, direct]);

  assert.equal(refreshed.exitCode, 0, JSON.stringify(refreshed.records.slice(-5)));
  assert.equal(done.exitCode, 0, output.slice(-3000));
  const lqosdPid = readFileSync(join(lab.dir, 'run', 'lqosd.lock'), 'utf8').split('\n')[0];
  assert.match(output, new RegExp(`waiting for PID ${lqosdPid} \\(lqosd: refresh\\) to release .*kernel\\.lock`), output.slice(0, 3000));
  assert.match(output, /kernel\.lock is free; going ahead after waiting/);

  const runs = since();
  assert.ok(runs.some((r) => r.tag === 'lqosd') && runs.some((r) => r.tag === 'direct'), JSON.stringify(runs));
  for (const r of runs) assert.ok(r.end !== undefined, `batch ${r.pid} (${r.tag}) never ended`);
  for (let i = 1; i < runs.length; i++) {
    const [a, b] = [runs[i - 1]!, runs[i]!];
    assert.ok(a.end! <= b.start, `${a.tag} batch (${a.start}–${a.end}) overlaps ${b.tag} batch (${b.start}–${b.end})`);
  }
  // Every lqosd batch ended before the first --direct batch: --direct waited for the whole apply.
  const firstDirect = runs.find((r) => r.tag === 'direct')!.start;
  assert.ok(runs.filter((r) => r.tag === 'lqosd').every((r) => r.end! <= firstDirect));
  console.log(`# batches: ${runs.map((r) => `${r.tag} ${(r.end! - r.start).toFixed(2)} s`).join(', ')}`);

  // The kernel holds the plan applied last (--direct's: 4,004 circuits at its rates).
  const plan = appliedPlan(lab);
  assert.equal(plan.circuits.length, 4004);
  assert.equal(plan.circuits.find((c) => c.id === 'gen-1')!.download.ceilMbps, 31);
  assert.deepEqual(await kernelVsPlan(lab, plan), []);
});
