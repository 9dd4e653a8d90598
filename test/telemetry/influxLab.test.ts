/**
 * lqosd's InfluxDB export in the namespace lab (`[influxdb] enable_influxdb`, `url`, `org`, `bucket`,
 * `token`): Debian's influxd runs in the shaper namespace beside lqosd; an iperf3 download through
 * lab-50 (50 Mbit/s) shows in the `circuit` series at its plan rate, the sites and totals are
 * written, and the token never appears in lqosd's log. Runs as root; own namespaces (lqinflux-*).
 */
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { runLabLibreQoS, startLab, startLabDaemon, stopLab, type Lab } from '../../lab/labEnv.ts';
import { startInfluxd, type Influxd } from '../support/influxd.ts';
import { measureWire } from '../support/lab.ts';

const ID = 'lqinflux';
const TOKEN = 'CANARY-INFLUX-LAB-TOKEN';
let lab: Lab | undefined;
let influx: Influxd | undefined;

before(async () => {
  lab = await startLab({ id: ID, daemon: false });
  influx = await startInfluxd({ netns: lab.tb.ns.shaper });
  await influx.createDatabase('shaper');
  const extra = `[influxdb]\nenable_influxdb = true\nurl = "${influx.url}"\norg = "isp"\nbucket = "shaper"\ntoken = "${TOKEN}"\n`;
  // The collector's address is known once it runs in the lab's shaper namespace: added before lqosd starts.
  writeFileSync(lab.config, readFileSync(lab.config, 'utf8') + extra);
  await startLabDaemon(lab, { env: { LQOS_INFLUX_INTERVAL_MS: '2000' } });
  const r = await runLabLibreQoS(lab);
  assert.equal(r.code, 0, r.output);
});
after(async () => {
  await influx?.cleanup();
  await stopLab(ID);
});

test('InfluxDB: a download through lab-50 is written at its plan rate; sites and totals too; the token stays out of the log', async () => {
  const { wire } = await measureWire(lab!, '10.99.1.12', 'download', 6);
  // A write every 2 s: wait for the ones covering the end of the flow.
  await new Promise((r) => setTimeout(r, 5000));
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
  assert.ok(!log.includes(TOKEN), 'the InfluxDB token must never be logged');
});
