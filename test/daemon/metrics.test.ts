/**
 * `/metrics` of a real lqosd (namespace lab, web server on, shaped by the real LibreQoS command),
 * scraped from inside the shaper namespace: every series reflects the daemon's real state — the
 * shaped circuit count follows the applied plan (also after a circuit is removed), the urgent
 * gauge follows the bus's urgent list, and a shaped download shows on its circuit's series at its
 * plan rate. Namespace lab: run under the kernel flock.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execa } from 'execa';
import { defaultLabCircuits, measure, runLabLibreQoS, startLab, stopLab, writeLabDevices, type Lab } from '../../lab/labEnv.ts';
import { busRequest } from '../../lib/bus/client.ts';
import { appliedPlan } from '../faults/helpers.ts';
import { waitFor } from '../support/wait.ts';

const ID = 'lqmet';
const circuits = defaultLabCircuits.filter((c) => c.path === 'plain');
let lab: Lab;

before(async () => {
  lab = await startLab({ id: ID, circuits, web: true });
  const r = await runLabLibreQoS(lab);
  assert.equal(r.code, 0, r.output);
  // lqosd may still be starting its web server.
  await waitFor(async () => (await curlMetrics()).ok, 30_000, "lqosd's /metrics to answer", 200);
});
after(() => stopLab(ID));

async function curlMetrics() {
  const r = await execa('ip', ['netns', 'exec', lab.tb.ns.shaper, 'curl', '-sS', '-f', '--max-time', '10', 'http://127.0.0.1:9123/metrics'], { reject: false });
  return { ok: r.exitCode === 0, text: String(r.stdout), err: String(r.stderr) };
}

/** Series name with labels (as printed) → value. */
async function scrape(): Promise<Map<string, number>> {
  const r = await curlMetrics();
  assert.ok(r.ok, `GET /metrics failed: ${r.err}`);
  const out = new Map<string, number>();
  for (const line of r.text.split('\n')) {
    const m = /^(lqos_[a-z_]+(?:\{[^}]*\})?) (\S+)$/.exec(line);
    if (m) out.set(m[1]!, Number(m[2]));
  }
  assert.ok(out.size > 0, `no lqos_ series in /metrics:\n${r.text.slice(0, 2000)}`);
  return out;
}

function series(m: Map<string, number>, key: string): number {
  const v = m.get(key);
  assert.ok(v !== undefined, `series ${key} missing; present: ${[...m.keys()].join(', ')}`);
  return v;
}

test('/metrics: lqos_shaped_circuits is the applied plan\'s circuit count and shaping is not degraded', async () => {
  const plan = appliedPlan(lab);
  assert.equal(plan.circuits.length, circuits.length, 'the applied plan does not hold every lab circuit');
  const m = await scrape();
  assert.equal(series(m, 'lqos_shaped_circuits'), plan.circuits.length);
  assert.equal(series(m, 'lqos_shaping_degraded'), 0);
});

test('/metrics: lqos_urgent_issues_active follows the urgent list on the bus', async () => {
  const list = async () => (await busRequest('urgent_list', {}, { path: lab.busPath })) as { issues: { acknowledged: boolean }[]; active: number };
  const before = await list();
  assert.equal(series(await scrape(), 'lqos_urgent_issues_active'), before.issues.filter((i) => !i.acknowledged).length);
  await busRequest('urgent_submit', { source: 'test', severity: 'warning', code: 'METRICS_TEST', message: 'raised by test/daemon/metrics.test.ts' }, { path: lab.busPath });
  const now = await list();
  assert.equal(now.issues.filter((i) => !i.acknowledged).length, before.issues.filter((i) => !i.acknowledged).length + 1, 'the submitted issue is not on the list');
  assert.equal(series(await scrape(), 'lqos_urgent_issues_active'), now.active);
});

test('/metrics: a shaped download shows on its circuit series at about its plan rate, inside its node\'s', async (t) => {
  const c = circuits.find((x) => x.id === 'lab-10')!;
  const planBps = c.down * 1e6;
  const key = `lqos_circuit_throughput_bps{circuit="${c.id}",direction="download"}`;
  const flow = measure(lab, c.ipv4, 'download', 10);
  let seen = 0;
  let m = new Map<string, number>();
  try {
    // Telemetry ticks once a second: wait for a tick that saw the flow at speed.
    await waitFor(async () => {
      m = await scrape();
      seen = m.get(key) ?? 0;
      return seen >= 0.8 * planBps;
    }, 8_000, `${key} to reach 80 % of ${planBps} bit/s (last ${seen})`, 250);
  } finally {
    await flow;
  }
  t.diagnostic(`${key} = ${seen} bit/s (plan ${planBps})`);
  assert.ok(seen <= 1.05 * planBps, `${key} = ${seen} bit/s, above its plan rate ${planBps} bit/s by more than 5 %`);
  const node = [...m.entries()].find(([k]) => k.startsWith('lqos_node_throughput_bps{') && k.includes(c.parent) && k.includes('direction="download"'));
  assert.ok(node, `no download series for node ${c.parent}: ${[...m.keys()].filter((k) => k.startsWith('lqos_node')).join(', ')}`);
  assert.ok(node[1] >= 0.9 * seen, `node ${c.parent} shows ${node[1]} bit/s, less than its circuit's ${seen}`);
});

test('/metrics: after a circuit is removed and LibreQoS runs again, the count follows and its series go', async () => {
  writeLabDevices(lab, circuits.filter((c) => c.id !== 'lab-50'));
  // One of four circuits is 25 %, over [safety] max_removed_percent (20 %): intended here.
  const r = await runLabLibreQoS(lab, ['--force']);
  assert.equal(r.code, 0, r.output);
  const m = await scrape();
  assert.equal(series(m, 'lqos_shaped_circuits'), circuits.length - 1);
  assert.equal(appliedPlan(lab).circuits.length, circuits.length - 1);
  assert.deepEqual([...m.keys()].filter((k) => k.includes('circuit="lab-50"')), [], 'series of the removed circuit remain');
});
