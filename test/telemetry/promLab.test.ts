/**
 * Debian's `prometheus` scraping a real lqosd (namespace lab, web server on, shaped by the real
 * LibreQoS command, `[web] metrics_token` set): both run in the lab's shaper namespace, Prometheus
 * on its loopback with a 1 s scrape interval and the token as its bearer credential. An iperf3
 * download through lab-50 (50 Mbit/s) is then read back through Prometheus's HTTP API: the
 * circuit's throughput gauge and the rate() of its byte counter match what iperf3 measured (±15 %),
 * the site carries it, and the circuit's TCP RTT is present and > 0. Runs as root; own namespaces
 * (lqprom-*), under the kernel flock.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { runLabLibreQoS, startLab, stopLab, type Lab } from '../../lab/labEnv.ts';
import { measureWire } from '../support/lab.ts';
import { startPrometheus, type PromServer } from '../support/prometheus.ts';
import { waitFor } from '../support/wait.ts';

const ID = 'lqprom';
const TOKEN = 'prom-lab-token-7f3a';
let lab: Lab | undefined;
let prom: PromServer | undefined;

before(async () => {
  lab = await startLab({ id: ID, web: true, configExtra: `[web]\nmetrics_token = "${TOKEN}"\nmetrics_top_circuits = 3\n` });
  const r = await runLabLibreQoS(lab);
  assert.equal(r.code, 0, r.output);
  prom = await startPrometheus({ target: '127.0.0.1:9123', netns: lab.tb.ns.shaper, bearer: TOKEN });
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
  await prom?.cleanup();
  await stopLab(ID);
});

/** One value of an instant query at `time`; fails when the vector is not exactly one sample. */
async function one(q: string, time: number): Promise<number> {
  const r = await prom!.query(q, time);
  assert.equal(r.length, 1, `${q} @${time}: ${JSON.stringify(r)}`);
  return Number(r[0]!.value[1]);
}

test('Prometheus reads lab-50\'s download (throughput gauge, byte counter rate, site) at the iperf3 rate, and its TCP RTT', async (t) => {
  const start = Date.now() / 1000;
  const { wire } = await measureWire(lab!, '10.99.1.12', 'download', 6);
  const end = Date.now() / 1000;
  // The last scrapes of the flow are stored a second or two later.
  await new Promise((r) => setTimeout(r, 2500));
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
