/**
 * Telemetry out of a real lqosd, in one namespace lab (root, iperf3, bpffs; own namespaces lqexport-*,
 * under the kernel flock), to the tools operators run:
 * - InfluxDB (`[influxdb]`): Debian's influxd in the shaper namespace; an iperf3 download through
 *   lab-50 (50 Mbit/s) is written at its plan rate in the `circuit` series, the sites and totals
 *   too, and the token never appears in lqosd's log.
 * - Prometheus (`[web] metrics_token`, `metrics_top_circuits = 3`): Debian's prometheus scrapes
 *   lqosd every second with the token; the same download is read back through its HTTP API: the
 *   throughput gauge and the rate() of the byte counter match iperf3 (±15 %), the site carries it,
 *   the TCP RTT is present, at most 3 circuits have series.
 * - `./lqtop` in a real pseudo-terminal (tmux): a download through lab-50 and an upload through lab-25
 *   show at their plan rates (±15 %, three refreshes in a row) with lab-50's RTT; `u` re-sorts by
 *   upload; `q` exits 0 with the terminal restored.
 * One lab for the three (a lab start costs ~10 s of the suite).
 */
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { runLabLibreQoS, startLab, startLabDaemon, stopLab, type Lab } from '../../lab/labEnv.ts';
import { iperf } from '../../lab/testbed.ts';
import { mbpsOf, rowOf, Tmux } from '../cli/lqtopTmux.ts';
import { startInfluxd, type Influxd } from '../support/influxd.ts';
import { measureWire, startLiveFlow, type LiveFlow } from '../support/lab.ts';
import { repoRoot } from '../support/paths.ts';
import { startPrometheus, type PromServer } from '../support/prometheus.ts';
import { waitFor } from '../support/wait.ts';

const ID = 'lqexport';
const INFLUX_TOKEN = 'CANARY-INFLUX-LAB-TOKEN';
const METRICS_TOKEN = 'prom-lab-token-7f3a';
const TOLERANCE = 0.15;
let lab: Lab | undefined;
let influx: Influxd | undefined;
let prom: PromServer | undefined;
let tmux: Tmux | undefined;
let flow: LiveFlow | undefined;

before(async () => {
  lab = await startLab({ id: ID, daemon: false, configExtra: `[web]\nmetrics_token = "${METRICS_TOKEN}"\nmetrics_top_circuits = 3\n` });
  influx = await startInfluxd({ netns: lab.tb.ns.shaper });
  await influx.createDatabase('shaper');
  const extra = `[influxdb]\nenable_influxdb = true\nurl = "${influx.url}"\norg = "isp"\nbucket = "shaper"\ntoken = "${INFLUX_TOKEN}"\n`;
  // The collector's address is known once it runs in the lab's shaper namespace: added before lqosd starts.
  writeFileSync(lab.config, readFileSync(lab.config, 'utf8') + extra);
  await startLabDaemon(lab, { web: true, env: { LQOS_INFLUX_INTERVAL_MS: '2000' } });
  const r = await runLabLibreQoS(lab);
  assert.equal(r.code, 0, r.output);
  prom = await startPrometheus({ target: '127.0.0.1:9123', netns: lab.tb.ns.shaper, bearer: METRICS_TOKEN });
  // lqosd may still be starting its web server: wait for a successful scrape.
  let last = '';
  const up = async () => {
    const t = (await prom!.targets())[0];
    last = JSON.stringify(t);
    return t?.health === 'up';
  };
  await waitFor(up, 30_000, "Prometheus's scrape of lqosd to succeed", 250).catch((e: Error) => {
    throw new Error(`${e.message}; the target: ${last}`);
  });
});
after(async () => {
  await tmux?.kill();
  await flow?.stop().catch(() => undefined);
  await prom?.cleanup();
  await influx?.cleanup();
  await stopLab(ID);
});

/** One value of an instant query at `time`; fails when the vector is not exactly one sample. */
async function one(q: string, time: number): Promise<number> {
  const r = await prom!.query(q, time);
  assert.equal(r.length, 1, `${q} @${time}: ${JSON.stringify(r)}`);
  return Number(r[0]!.value[1]);
}

const near = (mbps: number, plan: number) => Math.abs(mbps - plan) / plan <= TOLERANCE;

test('one download through lab-50: InfluxDB and Prometheus both carry it at its plan rate, with sites, totals and TCP RTT; no token in the log', async (t) => {
  const start = Date.now() / 1000;
  const { wire } = await measureWire(lab!, '10.99.1.12', 'download', 6);
  const end = Date.now() / 1000;
  // InfluxDB: a write every 2 s (the totals always, a circuit only while it has traffic); wait for
  // one after the end of the flow, and for a Prometheus scrape (every 1 s) after it too.
  const wroteAfterEnd = async () => (await influx!.query('shaper', `SELECT * FROM shaper WHERE time > ${Math.ceil(end)}s`)).length > 0;
  await waitFor(wroteAfterEnd, 15_000, 'an InfluxDB point written after the download ended', 250);
  // (`up`: Prometheus's own series of each scrape; lab-50's may leave the top 3 once idle.)
  const scrapedAfterEnd = async () => Number((await prom!.query('timestamp(up{job="lqosd"})'))[0]?.value[1] ?? 0) > end;
  await waitFor(scrapedAfterEnd, 15_000, "Prometheus's scrape after the download ended", 250);
  const peak = await influx!.query('shaper', `SELECT max(down_bps) FROM circuit WHERE circuit_id = 'lab-50'`);
  assert.equal(peak.length, 1, 'lab-50 has points in InfluxDB');
  const mbps = Number(peak[0]!.max) / 1e6;
  assert.ok(Math.abs(mbps - 50) / 50 <= 0.1, `lab-50's written download peak ${mbps.toFixed(2)} Mbit/s vs plan 50 (iperf3 wire ${wire.toFixed(2)})`);
  const sites = await influx!.query('shaper', `SELECT max(down_bps) FROM site WHERE site = 'Lab_Tower'`);
  assert.ok(Number(sites[0]?.max) / 1e6 >= 45, `the site above lab-50 carried it: ${JSON.stringify(sites)}`);
  const totals = await influx!.query('shaper', `SELECT max(down_bps) FROM shaper WHERE node = 'LibreQoS'`);
  assert.ok(Number(totals[0]?.max) / 1e6 >= 45, `the totals carried it: ${JSON.stringify(totals)}`);
  const log = readFileSync(join(lab!.dir, 'lqosd.log'), 'utf8');
  assert.match(log, /InfluxDB export to http:\/\/127\.0\.0\.1:\d+ \(bucket shaper\) every 2 s/);
  assert.ok(!log.includes(INFLUX_TOKEN), 'the InfluxDB token must never be logged');
  assert.ok(!log.includes(METRICS_TOKEN), 'the metrics token must never be logged');

  // Past slow start (2 s) and before the end (1 s): 1 s scrapes of 1 s telemetry ticks.
  const at = end - 1;
  const range = `${Math.floor(at - (start + 2))}s`;
  const sel = 'circuit="lab-50",direction="download"';
  const gauge = (await one(`quantile_over_time(0.5, lqos_circuit_throughput_bps{${sel}}[${range}])`, at)) / 1e6;
  const counter = ((await one(`rate(lqos_circuit_bytes_total{${sel}}[${range}])`, at)) * 8) / 1e6;
  const site = ((await one(`rate(lqos_site_bytes_total{site="Lab_Tower",direction="download"}[${range}])`, at)) * 8) / 1e6;
  const rtt = await one(`max_over_time(lqos_circuit_tcp_rtt_seconds{circuit="lab-50",quantile="0.5"}[${range}])`, at);
  const netRtt = await one(`max_over_time(lqos_tcp_rtt_seconds{quantile="0.5"}[${range}])`, at);
  const line = `iperf3 wire ${wire.toFixed(2)} Mbit/s (plan 50); Prometheus over ${range}: gauge median ${gauge.toFixed(2)}, rate(bytes_total)×8 ${counter.toFixed(2)}, site rate ${site.toFixed(2)} Mbit/s; RTT p50 ${(rtt * 1000).toFixed(2)} ms (network ${(netRtt * 1000).toFixed(2)} ms)`;
  t.diagnostic(line);
  for (const [what, v] of [['throughput gauge', gauge], ['byte counter rate', counter]] as const) {
    assert.ok(Math.abs(v - wire) / wire <= 0.15, `${what} ${v.toFixed(2)} Mbit/s is not within ±15 % of iperf3's ${wire.toFixed(2)}: ${line}`);
    assert.ok(Math.abs(v - 50) / 50 <= 0.15, `${what} ${v.toFixed(2)} Mbit/s is not within ±15 % of the 50 Mbit/s plan: ${line}`);
  }
  assert.ok(site >= 0.85 * wire, `the site above lab-50 carries it: ${line}`);
  assert.ok(rtt > 0 && rtt < 1, `lab-50's TCP RTT p50 is present and plausible: ${line}`);
  assert.ok(netRtt > 0, `the network RTT is present: ${line}`);
  // Bounded: at most metrics_top_circuits (3) circuits have series at any time.
  const circuits = (await prom!.query('count by (circuit) (lqos_circuit_throughput_bps)', at)).map((c) => c.metric.circuit);
  assert.ok(circuits.includes('lab-50') && circuits.length <= 3, `circuits with series: ${circuits.join(', ')}`);
});

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
