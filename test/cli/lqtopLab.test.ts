/**
 * `./lqtop` in a real pseudo-terminal (tmux) against lqosd in the namespace lab, with traffic: an
 * iperf3 download through lab-50 (50/15 Mbit/s) and an upload through lab-25 (25/8). The screen shows
 * both circuits by name at their plan rates (±15 %, three refreshes in a row), lab-50 near 100 %
 * utilisation with a measured RTT; `u` re-sorts by upload (lab-25 first, the header says so); `q`
 * exits 0 with the terminal restored. Root, iperf3, tmux, bpffs; own namespaces (lqtop-*).
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { stopLab, type Lab } from '../../lab/labEnv.ts';
import { iperf } from '../../lab/testbed.ts';
import { startLiveFlow, startShapedLab, type LiveFlow } from '../support/lab.ts';
import { repoRoot } from '../support/paths.ts';
import { mbpsOf, rowOf, Tmux } from './lqtopTmux.ts';

const ID = 'lqtop';
const TOLERANCE = 0.15;
let lab: Lab | undefined;
let tmux: Tmux | undefined;
let flow: LiveFlow | undefined;

before(async () => {
  lab = await startShapedLab({ id: ID });
});
after(async () => {
  await tmux?.kill();
  await flow?.stop().catch(() => undefined);
  await stopLab(ID);
});

const near = (mbps: number, plan: number) => Math.abs(mbps - plan) / plan <= TOLERANCE;

test('lqtop shows the lab circuits at their live rates, re-sorts on u, exits on q', async (ctx) => {
  const l = lab!;
  flow = await startLiveFlow(l, '10.99.1.12');
  const upload = iperf(l.tb, { custIp: '10.99.1.11', direction: 'upload', seconds: 12 });
  tmux = await Tmux.start(join(repoRoot, 'lqtop'), { width: 120, height: 12, env: { LQOS_RUN_DIR: join(l.dir, 'run') } });
  const t = tmux;

  // Three refreshes in a row with both circuits at their plan rate (the flows need a moment to get there).
  const seen: string[] = [];
  let streak = 0;
  let lastFrame = '';
  const rates = (s: string[]) => ({ down50: mbpsOf(rowOf(s, 'Fifty Meg Customer')?.[1]), up25: mbpsOf(rowOf(s, 'Twenty-five Meg Customer')?.[2]) });
  const s = await t.waitForScreen((lines) => {
    const frame = lines[0] ?? '';
    if (frame === lastFrame) return false; // the same second (the clock is in the title)
    lastFrame = frame;
    const r = rates(lines);
    seen.push(`${frame.slice(7, 15)} lab-50 down ${r.down50} lab-25 up ${r.up25}`);
    streak = near(r.down50, 50) && near(r.up25, 8) ? streak + 1 : 0;
    return streak >= 3;
  }, 'lab-50 at 50 Mbit/s down and lab-25 at 8 Mbit/s up (±15 %) in three refreshes in a row', 12_000).catch((e: Error) => {
    throw new Error(`${e.message}\nframes seen:\n${seen.join('\n')}`);
  });
  ctx.diagnostic(`the screen:\n${s.join('\n')}`);
  assert.match(s[1]!, /sort: throughput/);
  const order = s.slice(4).filter((x) => / Customer /.test(x)).map((x) => x.split(/\s{2,}/)[0]);
  assert.deepEqual(order.slice(0, 2), ['Fifty Meg Customer', 'Twenty-five Meg Customer'], `busiest first:\n${s.join('\n')}`);
  const row50 = rowOf(s, 'Fifty Meg Customer')!;
  assert.equal(row50[3], '50/15', 'the plan column');
  assert.ok(Number(row50[4]!.split('/')[0]) >= 85, `lab-50's download utilisation ${row50[4]}`);
  assert.match(row50[5]!, /^[\d.]+ ms$/, `lab-50's RTT p50 from flow tracking: ${row50.join(' | ')}`);
  assert.match(s[0]!, /lqosd \S+ \(attached, up \S+\)  5 circuits shaped, \d+ active/);

  await t.keys('u');
  const byUp = await t.waitForScreen((lines) => /sort: upload/.test(lines[1] ?? '') && (lines[4] ?? '').startsWith('Twenty-five Meg Customer'), 'lab-25 first after u (sort by upload)');
  assert.match(byUp[3]!, /Up▼/);

  await t.keys('q');
  assert.deepEqual(await t.waitForExit(), { status: 0, alternate: false, cursor: true });
  await flow.stop();
  flow = undefined;
  const up = await upload;
  assert.ok(up.mbps > 0, 'the upload ran');
});
