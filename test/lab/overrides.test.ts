/**
 * In the namespace lab with a real lqosd: lqos_overrides.json reaches the kernel through
 * `./LibreQoS` (submit to lqosd) and through lqosd's own bus `refresh` (issue 13.6), and after each
 * real apply `<state>/stats/` holds upstream's lastRun.txt, statsByCircuit.json and
 * statsByParentNode.json whose class ids are the classes in the kernel (issue 13.10).
 * Kernel test: run under the shared lock (flock /tmp/lqos-kernel.lock).
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { execa } from 'execa';
import { defaultLabCircuits, runLabLibreQoS, startLab, stopLab, type Lab } from '../../lab/labEnv.ts';
import { busRequest } from '../../lib/bus/client.ts';
import type { ShapingOutcome } from '../../lib/shaping/service.ts';
import type { StatsCircuit, StatsParentNode } from '../../lib/shaping/statsFiles.ts';

const ID = 'lqovr';
let lab: Lab;

before(async () => {
  lab = await startLab({ id: ID, circuits: defaultLabCircuits.filter((c) => c.id === 'lab-10' || c.id === 'lab-25') });
});
after(async () => stopLab(ID));

const stats = (f: string) => readFileSync(join(lab.dir, 'state', 'stats', f), 'utf8');
const speed = (down: number) => JSON.stringify({ circuit_adjustments: [{ type: 'circuit_adjust_speed', circuit_id: 'lab-10', max_download_bandwidth: down }] });

/** `rate`/`ceil` of a class on the customer-facing (download) interface, by upstream-style class id `0x1:0x5`. */
async function kernelClass(pyClassId: string): Promise<{ rate: string; ceil: string }> {
  const classid = pyClassId.replace(/0x/g, '');
  const r = await execa('tc', ['-n', lab.tb.ns.shaper, 'class', 'show', 'dev', lab.tb.shaperIfs.customer, 'classid', classid]);
  const m = / rate (\S+) ceil (\S+)/.exec(String(r.stdout));
  assert.ok(m, `class ${classid} in the kernel: ${r.stdout}`);
  return { rate: m[1]!, ceil: m[2]! };
}

/** lastRun.txt's time, parsed back (local time). */
function lastRunTime(): Date {
  const text = stats('lastRun.txt');
  const m = /^(\d{2})-([A-Z][a-z]{2})-(\d{4}) \((\d{2}):(\d{2}):(\d{2})\.(\d{6})\)$/.exec(text);
  assert.ok(m, `lastRun.txt in upstream's format: ${JSON.stringify(text)}`);
  const month = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'].indexOf(m[2]!);
  return new Date(+m[3]!, month, +m[1]!, +m[4]!, +m[5]!, +m[6]!, Math.floor(+m[7]! / 1000));
}

test('./LibreQoS (through lqosd) applies the override; the stats files name the kernel classes', async () => {
  writeFileSync(join(lab.dir, 'lqos_overrides.json'), speed(7));
  const t0 = Date.now();
  const r = await runLabLibreQoS(lab);
  assert.equal(r.code, 0, r.output);
  const byCircuit = JSON.parse(stats('statsByCircuit.json')) as StatsCircuit[];
  assert.deepEqual(byCircuit.map((c) => c.circuitID), ['lab-10', 'lab-25']);
  const ten = byCircuit[0]!;
  assert.equal(ten.maxDownload, 7, 'statsByCircuit shows the effective (overridden) rate');
  assert.equal((await kernelClass(ten.classid)).ceil, '7Mbit', 'the kernel has the overridden rate');
  assert.equal((await kernelClass(byCircuit[1]!.classid)).ceil, '25Mbit');
  const byNode = JSON.parse(stats('statsByParentNode.json')) as StatsParentNode[];
  const ap = byNode.find((n) => n.parentNodeName === 'Lab_AP_1');
  assert.ok(ap, JSON.stringify(byNode));
  assert.equal((await kernelClass(ap.classID)).ceil, `${ap.maxDownload}Mbit`);
  const at = lastRunTime().getTime();
  assert.ok(at >= t0 - 1000 && at <= Date.now() + 1000, `lastRun.txt is this run: ${stats('lastRun.txt')}`);
});

test("lqosd's own refresh applies the overrides too", async () => {
  writeFileSync(join(lab.dir, 'lqos_overrides.json'), speed(6));
  const o = await busRequest<'refresh', ShapingOutcome>('refresh', {}, { path: lab.busPath, timeoutMs: 120_000 });
  assert.equal(o.exitCode, 0, JSON.stringify(o.records));
  const ten = (JSON.parse(stats('statsByCircuit.json')) as StatsCircuit[]).find((c) => c.circuitID === 'lab-10')!;
  assert.equal((await kernelClass(ten.classid)).ceil, '6Mbit');

  // Overrides removed: the file's rate is back.
  writeFileSync(join(lab.dir, 'lqos_overrides.json'), '{}');
  const o2 = await busRequest<'refresh', ShapingOutcome>('refresh', {}, { path: lab.busPath, timeoutMs: 120_000 });
  assert.equal(o2.exitCode, 0, JSON.stringify(o2.records));
  assert.equal((await kernelClass(ten.classid)).ceil, '10Mbit');
});
