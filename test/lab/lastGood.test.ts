/**
 * Last good inputs and row triage with the real lqosd and kernel (namespace lab); classes are read
 * back with `tc class show` (this iproute2 prints no JSON for classes), mappings with bus `map_ip_list`:
 * - item 13.7: ShapedDevices.csv broken at file level + lqosd restarted after a simulated reboot (the
 *   tc tree and IP map wiped) → lqosd's start-up run puts the last good plan back into the kernel,
 *   an urgent issue names the file and line, and the status says "shaping from last good inputs".
 * - item 13.8: a duplicate IP added (new circuit) while another circuit's rate changes → the rate
 *   change is in the kernel, the new circuit is not (no class, its address still maps to its owner),
 *   and the urgent issue names the row.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { execa } from 'execa';
import { defaultLabCircuits, labShapedDevices, runLabLibreQoS, startLabDaemon, stopLab, stopLabDaemon, writeLabDevices, type Lab, type LabCircuit } from '../../lab/labEnv.ts';
import { busRequest } from '../../lib/bus/client.ts';
import { startShapedLab } from '../support/lab.ts';
import { waitFor } from '../support/wait.ts';

const ID = 'lqlg';
let lab: Lab;
const GOOD: LabCircuit[] = defaultLabCircuits.filter((c) => c.path === 'plain');

before(async () => {
  lab = await startShapedLab({ id: ID, circuits: GOOD });
});
after(async () => stopLab(ID));

interface ClassView {
  parent: string;
  rate: number;
  ceil: number;
  leaf?: string;
}

const UNIT: Record<string, number> = { bit: 1, Kbit: 1e3, Mbit: 1e6, Gbit: 1e9 };
const bits = (v: string) => {
  const m = /^([\d.]+)(bit|Kbit|Mbit|Gbit)$/.exec(v);
  assert.ok(m, `rate "${v}" not understood`);
  return Math.round(Number(m[1]) * UNIT[m[2]]);
};

/**
 * Every HTB class of both shaping interfaces, read back from the kernel. (`tc -j class show` prints
 * no JSON for classes with this iproute2, so the text form is parsed.)
 */
async function classes(): Promise<Record<string, ClassView>> {
  const out: Record<string, ClassView> = {};
  for (const dev of [lab.tb.shaperIfs.customer, lab.tb.shaperIfs.internet]) {
    const r = await execa('tc', ['-n', lab.tb.ns.shaper, 'class', 'show', 'dev', dev]);
    for (const line of String(r.stdout).split('\n')) {
      const m = /^class htb (\S+) (?:parent (\S+)|root)(?: leaf (\S+))? .*\brate (\S+) ceil (\S+)/.exec(line.trim());
      if (!m) continue;
      out[`${dev} ${m[1]}`] = { parent: m[2] ?? 'root', rate: bits(m[4]), ceil: bits(m[5]), ...(m[3] ? { leaf: m[3] } : {}) };
    }
  }
  return out;
}

/** prefix → "major:minor" (hex) of the kernel's IP map, through lqosd. */
async function ipMap(): Promise<Record<string, string>> {
  const r = (await busRequest('map_ip_list', {}, { path: lab.busPath })) as { mappings: Array<{ prefix: string; major: number; minor: number }>; backend: string };
  assert.equal(r.backend, 'kernel');
  return Object.fromEntries(r.mappings.map((m) => [m.prefix, `${m.major.toString(16)}:${m.minor.toString(16)}`]));
}

function classIdOf(circuitId: string): string | undefined {
  const st = JSON.parse(readFileSync(join(lab.dir, 'state', 'shaping', 'planner_state.json'), 'utf8'));
  const s = st.circuits[circuitId];
  return s ? `${s.queue.toString(16)}:${s.minor.toString(16)}` : undefined;
}

const status = async () => ((await busRequest('status', {}, { path: lab.busPath })) as { shaping: { lastGood?: { at: string; reason: string; line?: number } } }).shaping;
const urgent = async () => ((await busRequest('urgent_list', {}, { path: lab.busPath })) as { issues: Array<{ code: string; message: string }> }).issues;

test('13.7: broken ShapedDevices.csv + lqosd restart after a wiped kernel → the last good plan is back in the kernel, the issue names the line, the status says so', async () => {
  const goodClasses = await classes();
  const goodMap = await ipMap();
  assert.ok(Object.keys(goodClasses).length >= 2 * (GOOD.length + 3), JSON.stringify(goodClasses));
  assert.equal(goodMap['10.99.1.10/32'], classIdOf('lab-10'));
  const meta = JSON.parse(readFileSync(join(lab.dir, 'state', 'shaping', 'lastGoodConfig.meta.json'), 'utf8')) as { at: string };

  // A CRM export gone wrong: semicolons instead of commas in the header; and a rate change that must not apply.
  const broken = labShapedDevices(GOOD.map((c) => (c.id === 'lab-10' ? { ...c, down: 3 } : c))).replace(/^[^\n]*/, (h) => h.replaceAll(',', ';'));
  writeFileSync(join(lab.dir, 'ShapedDevices.csv'), broken);
  await busRequest('map_ip_clear', {}, { path: lab.busPath });
  assert.deepEqual(await ipMap(), {});
  await stopLabDaemon(lab);
  // Simulated reboot: the tc trees and the IP map are gone.
  for (const dev of [lab.tb.shaperIfs.customer, lab.tb.shaperIfs.internet]) await execa('tc', ['-n', lab.tb.ns.shaper, 'qdisc', 'del', 'dev', dev, 'root'], { reject: false });
  assert.deepEqual(await classes(), {});
  await startLabDaemon(lab);
  await waitFor(async () => (await status()).lastGood !== undefined, 60_000, 'lqosd to report shaping from the last good inputs');

  const st = await status();
  assert.equal(st.lastGood!.at, meta.at);
  assert.equal(st.lastGood!.line, 1);
  assert.match(st.lastGood!.reason, /ShapedDevices\.csv line 1: /);
  assert.deepEqual(await classes(), goodClasses, 'the kernel holds exactly the last good plan (lab-10 still at 10 Mbit)');
  assert.deepEqual(await ipMap(), goodMap);
  const issue = (await urgent()).find((i) => i.code === 'INPUTS_INVALID');
  assert.ok(issue, JSON.stringify(await urgent()));
  assert.match(issue.message, /ShapedDevices\.csv line 1: the header row is missing required column/);
  assert.match(issue.message, /shaping from the last good inputs of/);
  const log = readFileSync(join(lab.dir, 'lqosd.log'), 'utf8');
  assert.match(log, /applying the last good inputs of/);

  // A manual run with the broken file: refused (exit 1), says what stays in force, changes nothing.
  const manual = await runLabLibreQoS(lab);
  assert.equal(manual.code, 1, manual.output);
  assert.match(manual.output, /shaping in force stays as it is: it was applied from the last good inputs of/);
  assert.deepEqual(await classes(), goodClasses);

  // Fixed: a normal run clears the status and the issue.
  writeLabDevices(lab, GOOD);
  const fixed = await runLabLibreQoS(lab);
  assert.equal(fixed.code, 0, fixed.output);
  assert.equal((await status()).lastGood, undefined);
  assert.equal((await urgent()).some((i) => i.code === 'INPUTS_INVALID'), false);
});

test('13.8: a duplicate IP added while another circuit changes rate → the rate change is in the kernel, the duplicate circuit is not, the issue names the row', async () => {
  const beforeClasses = await classes();
  const beforeMap = await ipMap();
  const id25 = classIdOf('lab-25')!;
  const dup: LabCircuit = { id: 'lab-dup', name: 'Duplicate Customer', parent: 'Lab_AP_2', ipv4: '10.99.1.10', ipv6: '', down: 33, up: 3, path: 'plain' };
  writeLabDevices(lab, [...GOOD.map((c) => (c.id === 'lab-25' ? { ...c, down: 7 } : c)), dup]);
  const r = await runLabLibreQoS(lab);
  assert.equal(r.code, 0, r.output);
  assert.match(r.output, /ShapedDevices\.csv:6: circuit \\"lab-dup\\" skipped/); // (JSON log lines: quotes escaped)

  const afterClasses = await classes();
  const dl = `${lab.tb.shaperIfs.customer} ${id25}`;
  assert.equal(afterClasses[dl].ceil, 7_000_000, 'lab-25 download ceil read back from the kernel is 7 Mbit');
  const changed = Object.keys({ ...beforeClasses, ...afterClasses }).filter((k) => JSON.stringify(beforeClasses[k]) !== JSON.stringify(afterClasses[k]));
  assert.deepEqual(changed, [dl], 'only lab-25 changed; no class for lab-dup');
  assert.equal(classIdOf('lab-dup'), undefined);
  assert.deepEqual(await ipMap(), beforeMap, '10.99.1.10 still maps to lab-10');

  const issue = (await urgent()).find((i) => i.code === 'ROWS_SKIPPED');
  assert.ok(issue, JSON.stringify(await urgent()));
  assert.match(issue.message, /ShapedDevices\.csv line 6: circuit "lab-dup" — IPv4 "10\.99\.1\.10" \(duplicate-ip\): .*line 2.*left out \(new circuit\)/);

  // Fixed: the next run adds lab-dup with its own address and clears the issue.
  writeLabDevices(lab, [...GOOD, { ...dup, ipv4: '10.99.1.77' }]);
  const fixed = await runLabLibreQoS(lab);
  assert.equal(fixed.code, 0, fixed.output);
  assert.ok(classIdOf('lab-dup'));
  assert.equal((await urgent()).some((i) => i.code === 'ROWS_SKIPPED'), false);
});
