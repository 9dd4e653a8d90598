// test-gate: shared (CPU only; see test/support/gate.ts)
/**
 * Meaning of the link capacities (spec item 12): downlink_bandwidth_mbps = total download (ISP-facing
 * interface), uplink_bandwidth_mbps = total upload. A migrated config that relied on upstream
 * LibreQoS.py capping both directions with uplink gets one warning when that changes the plan.
 */
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { test } from 'node:test';
import { interfacesOf, parseConfigText } from '../../lib/config/load.ts';
import { statePaths } from '../../lib/config/paths.ts';
import { validateInputs } from '../../lib/inputs/validate.ts';
import { runPipeline } from '../../lib/pipeline.ts';
import { capacityMeaningWarning, planConfigFromLqos } from '../../lib/plan/planConfig.ts';
import { runShaping } from '../../lib/shaping/run.ts';
import type { Log, LogFn } from '../../lib/util/log.ts';
import { GENERAL, QUEUES } from '../../webui/src/lib/configFields.ts';

const repoRoot = resolve(import.meta.dirname, '../..');
const HEADER = 'Circuit ID,Circuit Name,Device ID,Device Name,Parent Node,MAC,IPv4,IPv6,Download Min Mbps,Upload Min Mbps,Download Max Mbps,Upload Max Mbps,Comment';
const CSV = `${HEADER}\nc1,Big,d1,Big,Tower,,100.64.0.1,,100,20,900,100,\nc2,Small,d2,Small,Tower,,100.64.0.2,,10,5,100,20,\n`;
// Upstream-shaped: a v1.4-era config where "uplink" was thought of as the download side.
const NETWORK = JSON.stringify({ Tower: { downloadBandwidthMbps: 1000, uploadBandwidthMbps: 200, children: {} } });

function setup(queues: string) {
  const config = parseConfigText(`[bridge]\nto_internet = "eth0"\nto_network = "eth1"\n[queues]\n${queues}\n`, 'lqos.conf').config;
  const plan = planConfigFromLqos(config, interfacesOf(config)!, 1);
  const v = validateInputs({ devicesText: CSV, devicesFile: 'ShapedDevices.csv', networkText: NETWORK, networkFile: 'network.json' });
  assert.ok(v.ok);
  return { plan, inputs: v.inputs };
}

test('downlink shapes download and uplink shapes upload in the plan', () => {
  const { plan, inputs } = setup('downlink_bandwidth_mbps = 1000\nuplink_bandwidth_mbps = 200');
  assert.deepEqual(plan.link, { downloadMbps: 1000, uploadMbps: 200 });
  const r = runPipeline({ devicesText: CSV, devicesFile: 'ShapedDevices.csv', networkText: NETWORK, networkFile: 'network.json', config: plan });
  assert.ok(r.ok);
  const tower = r.plan.nodes.find((n) => n.name === 'Tower')!;
  assert.equal(tower.download.ceilMbps, 1000);
  assert.equal(tower.upload.ceilMbps, 200);
  assert.ok(inputs.circuits.length === 2);
});

test('downlink > uplink and a download rate above uplink: one warning explaining both meanings', () => {
  const { plan, inputs } = setup('downlink_bandwidth_mbps = 1000\nuplink_bandwidth_mbps = 200');
  const w = capacityMeaningWarning(plan.link, inputs);
  assert.ok(w);
  assert.match(w, /downlink_bandwidth_mbps = 1000 and uplink_bandwidth_mbps = 200 differ/);
  assert.match(w, /total download capacity, ISP-facing interface/);
  assert.match(w, /total upload capacity/);
  assert.match(w, /LibreQoS\.py capped both directions at uplink_bandwidth_mbps/);
  assert.match(w, /node "Tower" \(download 1000 Mbps\) is capped at 1000 Mbps here but was capped at 200 Mbps upstream/);
  assert.match(w, /swap them/);
});

test('downlink < uplink: the smaller downlink now caps download where upstream did not', () => {
  const { plan, inputs } = setup('downlink_bandwidth_mbps = 500\nuplink_bandwidth_mbps = 2000');
  const w = capacityMeaningWarning(plan.link, inputs);
  assert.match(w ?? '', /node "Tower" \(download 1000 Mbps\) is capped at 500 Mbps here but was capped at 1000 Mbps upstream/);
});

test('no warning when the two are equal, or when no download rate reaches the smaller one', () => {
  assert.equal(capacityMeaningWarning(setup('downlink_bandwidth_mbps = 1000\nuplink_bandwidth_mbps = 1000').plan.link, setup('').inputs), undefined);
  const { plan, inputs } = setup('downlink_bandwidth_mbps = 10000\nuplink_bandwidth_mbps = 5000');
  assert.equal(capacityMeaningWarning(plan.link, inputs), undefined); // largest download rate is 1000
});

test('example config, README and UI labels say the same thing', () => {
  const example = readFileSync(join(repoRoot, 'conf/lqos.conf.example'), 'utf8');
  assert.match(example, /^downlink_bandwidth_mbps = \d+ +# total DOWNLOAD capacity/m);
  assert.match(example, /^uplink_bandwidth_mbps = \d+ +# total UPLOAD capacity/m);
  const readme = readFileSync(join(repoRoot, 'README.md'), 'utf8');
  assert.match(readme, /downlink_bandwidth_mbps`[^\n]*total download/);
  assert.match(readme, /uplink_bandwidth_mbps`[^\n]*total upload/);
  const fields = [...GENERAL, ...QUEUES].flatMap((g) => g.fields);
  assert.match(fields.find((f) => f.key === 'queues.downlink_bandwidth_mbps')!.label, /download/i);
  assert.match(fields.find((f) => f.key === 'queues.uplink_bandwidth_mbps')!.label, /upload/i);
});

test('a rate its parent never lets through does not count', () => {
  const link = { downloadMbps: 1000, uploadMbps: 200 };
  const tree = [{ name: 'Hill', downloadMbps: 150, children: [] }];
  const circuits = [{ name: 'Fat', parentNode: 'Hill', downloadMaxMbps: 900 }];
  assert.equal(capacityMeaningWarning(link, { network: tree, circuits }), undefined);
  const loose = [{ name: 'Loose', parentNode: '', downloadMaxMbps: 900 }];
  assert.match(capacityMeaningWarning(link, { network: tree, circuits: loose }) ?? '', /circuit "Loose" \(download 900 Mbps\) is capped at 900 Mbps here but was capped at 200 Mbps upstream/);
});

test('a shaping run (dry run) logs the capacity warning exactly once', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'lqos-capacity-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const warnings: string[] = [];
  const fn = ((a: unknown, b?: string) => void (typeof a === 'string' ? a : b)) as LogFn;
  const log: Log = { debug: fn, info: fn, error: fn, warn: ((a: unknown, b?: string) => void warnings.push(typeof a === 'string' ? a : String(b))) as LogFn };
  const config = parseConfigText('[bridge]\nto_internet = "eth0"\nto_network = "eth1"\n[queues]\ndownlink_bandwidth_mbps = 1000\nuplink_bandwidth_mbps = 200\n', 'lqos.conf').config;
  const paths = statePaths(dir);
  mkdirSync(join(dir, 'shaping'), { recursive: true });
  mkdirSync(join(dir, 'debug'), { recursive: true });
  const r = await runShaping({
    config,
    ifaces: interfacesOf(config)!,
    queues: 1,
    inputs: { devicesFile: 'ShapedDevices.csv', networkFile: 'network.json', devicesText: CSV, networkText: NETWORK },
    paths,
    log,
    dryRun: true,
    updateonly: false,
    verbose: false,
  });
  assert.equal(r.code, 0);
  const capacity = warnings.filter((w) => w.includes('downlink_bandwidth_mbps = 1000 and uplink_bandwidth_mbps = 200 differ'));
  assert.equal(capacity.length, 1, JSON.stringify(warnings));
});
