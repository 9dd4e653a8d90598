// test-gate: shared (CPU only; see test/support/gate.ts)
/**
 * Proofs for lqos.conf keys that lqos-ts honours (lib/config/fidelity.ts points here): each key, set
 * in an lqos.conf text, changes the plan, the queue count, the VLANs, an integration's output or
 * request timeout, or when the scheduler runs next (that one starts an in-process lqosd in dry run on
 * `lo`, like test/scheduler: run this file under the kernel lock).
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it, test } from 'node:test';
import { busRequest } from '../../lib/bus/client.ts';
import { interfacesOf, parseConfigText } from '../../lib/config/load.ts';
import { stickVlans } from '../../lib/config/resolve.ts';
import type { LqosConfig } from '../../lib/config/schema.ts';
import { run as runNetzur } from '../../lib/integrations/netzur.ts';
import { run as runUisp } from '../../lib/integrations/uisp.ts';
import { run as runVisp } from '../../lib/integrations/visp.ts';
import type { ShapingPlan } from '../../lib/model.ts';
import { runPipeline } from '../../lib/pipeline.ts';
import { planConfigFromLqos, resolveQueueCount } from '../../lib/plan/planConfig.ts';
import { Scheduler, SCHEDULER_EXIT } from '../../lib/scheduler/scheduler.ts';
import { NETZUR_KEY, NETZUR_PATH, startFakeNetzur } from '../fixtures/crm/netzur.ts';
import { startFakeUisp, UISP_TOKEN } from '../fixtures/crm/uisp.ts';
import { startFakeVisp, VISP_CRED } from '../fixtures/crm/visp.ts';
import { captureLogger, crmConfig, runOpts, tempDir, useFakeServer } from '../integrations/helpers.ts';
import { makeSchedWorkspace, startTestDaemon as startSchedDaemon } from '../scheduler/helpers.ts';
import { quiet } from '../support/log.ts';
import { waitFor } from '../support/wait.ts';

const BRIDGE = '[bridge]\nto_internet = "eth0"\nto_network = "eth1"\n';
const conf = (text: string): LqosConfig => parseConfigText(`${BRIDGE}${text}`, 'effects.conf').config;

const HEADER = 'Circuit ID,Circuit Name,Device ID,Device Name,Parent Node,MAC,IPv4,IPv6,Download Min Mbps,Upload Min Mbps,Download Max Mbps,Upload Max Mbps,Comment';
const CSV = `${HEADER}\nc1,Fast,d1,Fast,Site,,100.64.0.1,,100,50,2000,800,\nc2,Loose,d2,Loose,,,100.64.0.2,,10,10,50,20,\n`;
const NETWORK = JSON.stringify({ Site: { downloadBandwidthMbps: 5000, uploadBandwidthMbps: 5000, children: {} } });

function plan(text: string): ShapingPlan {
  const c = conf(text);
  const r = runPipeline({
    devicesText: CSV,
    devicesFile: 'ShapedDevices.csv',
    networkText: NETWORK,
    networkFile: 'network.json',
    config: planConfigFromLqos(c, interfacesOf(c)!, 2),
  });
  assert.ok(r.ok, `pipeline failed at ${r.ok ? '' : r.stage}`);
  return r.plan;
}
const circuit = (p: ShapingPlan, name: string) => p.circuits.find((c) => c.name === name)!;
const node = (p: ShapingPlan, name: string) => p.nodes.find((n) => n.name === name)!;

describe('[queues] keys change the plan', () => {
  it('default_sqm picks the circuits leaf qdisc', () => {
    assert.equal(circuit(plan(''), 'Loose').download.leaf?.kind, 'cake');
    assert.equal(circuit(plan('[queues]\ndefault_sqm = "fq_codel"'), 'Loose').download.leaf?.kind, 'fq_codel');
  });

  it('queue_mode = "observe" plans no shaping', () => {
    assert.equal(plan('').mode, 'shape');
    assert.equal(plan('[queues]\nqueue_mode = "observe"').mode, 'observe');
  });

  it('downlink_bandwidth_mbps caps download, uplink_bandwidth_mbps caps upload', () => {
    const p = plan('[queues]\ndownlink_bandwidth_mbps = 300\nuplink_bandwidth_mbps = 700');
    assert.deepEqual(p.link, { downloadMbps: 300, uploadMbps: 700 });
    assert.equal(node(p, 'Site').download.ceilMbps, 300);
    assert.equal(node(p, 'Site').upload.ceilMbps, 700);
    assert.ok(circuit(p, 'Fast').download.ceilMbps <= 300);
    assert.equal(circuit(p, 'Fast').upload.ceilMbps, 700);
  });

  it('generated_pn_download_mbps / generated_pn_upload_mbps size the generated parents', () => {
    const p = plan('[queues]\ngenerated_pn_download_mbps = 400\ngenerated_pn_upload_mbps = 40');
    const generated = p.nodes.filter((n) => n.generated);
    assert.ok(generated.length > 0);
    for (const n of generated) assert.deepEqual([n.download.ceilMbps, n.upload.ceilMbps], [400, 40]);
  });

  it('fast_queues_fq_codel switches fast circuits to fq_codel', () => {
    assert.equal(circuit(plan(''), 'Fast').download.leaf?.kind, 'fq_codel'); // 2000 >= 1000 (default)
    assert.equal(circuit(plan('[queues]\nfast_queues_fq_codel = 5000'), 'Fast').download.leaf?.kind, 'cake');
  });

  it('override_available_queues sets the queue count', () => {
    const c = conf('[queues]\noverride_available_queues = 3');
    assert.equal(resolveQueueCount({ override: c.queues.override_available_queues, txQueues: [8, 8], cpus: 16, onAStick: false }).queues, 3);
    assert.equal(resolveQueueCount({ override: conf('').queues.override_available_queues, txQueues: [8, 8], cpus: 16, onAStick: false }).queues, 8);
  });
});

test('[single_interface] internet_vlan / network_vlan are the VLANs the dataplane tells direction by', () => {
  const c = parseConfigText('[single_interface]\ninterface = "eth0"\ninternet_vlan = 20\nnetwork_vlan = 30\n', 'stick.conf').config;
  assert.deepEqual(stickVlans(c), { internet: 20, network: 30 });
  assert.deepEqual(interfacesOf(c), { download: 'eth0', upload: 'eth0', onAStick: true, forwarding: 'stick' });
});

describe('[uisp_integration] / [integration_common] capacity keys change the UISP output', () => {
  const srv = useFakeServer(startFakeUisp);
  const uispConf = (extra: { uisp?: string; common?: string } = {}) =>
    crmConfig(`
[ip_ranges]
allow_subnets = ["100.64.0.0/10", "192.168.0.0/16", "2001:db8::/32"]
[integration_common]
${extra.common ?? ''}
[uisp_integration]
enable_uisp = true
token = "${UISP_TOKEN}"
url = "${srv.url}"
site = "Tower"
strategy = "full"
${extra.uisp ?? ''}
`);
  const output = async (t: { after(fn: () => void): void }, c: LqosConfig) => {
    const dir = tempDir(t);
    await runUisp(c, runOpts(dir));
    return readFileSync(join(dir, 'network.json'), 'utf8') + readFileSync(join(dir, 'ShapedDevices.csv'), 'utf8');
  };

  const variants: [string, { uisp?: string; common?: string }][] = [
    ['airmax_capacity', { uisp: 'airmax_capacity = 0.5' }],
    ['ignore_calculated_capacity', { uisp: 'ignore_calculated_capacity = true' }],
    ['ethernet_port_limits_enabled', { common: 'ethernet_port_limits_enabled = false' }],
    ['ethernet_port_limit_multiplier', { common: 'ethernet_port_limit_multiplier = 0.5' }],
  ];
  it('airmax_flexible_frame_download_ratio splits a flexible-frame AP without a live ratio', async (t) => {
    srv.control.mode = 'none';
    // The fake AP reports a live dlRatio (which wins); drop it and report a theoretical capacity instead, so
    // the configured ratio splits the AP's total.
    const realFetch = globalThis.fetch;
    t.mock.method(globalThis, 'fetch', async (input: string | URL | Request, init?: RequestInit) => {
      const res = await realFetch(input, init);
      if (!String(input).includes('/devices')) return res;
      const text = (await res.text()).replace(/"dlRatio":\d+/g, '"dlRatio":null').replace(/"wirelessMode":"ap-ptmp"/g, '"wirelessMode":"ap-ptmp","theoreticalTotalCapacity":300000000');
      return new Response(text, { status: res.status, headers: res.headers });
    });
    const apHill = (out: string) => JSON.parse(out.slice(0, out.indexOf('\nCircuit ID')))['Hill Relay'].children['AP-Hill'];
    const half = apHill(await output(t, uispConf({ uisp: 'airmax_flexible_frame_download_ratio = 0.5' })));
    const most = apHill(await output(t, uispConf({ uisp: 'airmax_flexible_frame_download_ratio = 0.2' })));
    assert.deepEqual([half.downloadBandwidthMbps, half.uploadBandwidthMbps], [150, 150]);
    assert.deepEqual([most.downloadBandwidthMbps, most.uploadBandwidthMbps], [60, 240]);
  });

  for (const [key, extra] of variants) {
    it(`${key} changes the generated files`, async (t) => {
      srv.control.mode = 'none';
      const base = await output(t, uispConf());
      const changed = await output(t, uispConf(extra));
      assert.notEqual(changed, base, `${key}: same output with and without it`);
    });
  }
});

// The two wait on different fake servers: run at the same time (each still waits out its own timeout).
describe('integration timeout_secs is the per-request timeout', { concurrency: true }, () => {
  const netzur = useFakeServer(startFakeNetzur);
  const visp = useFakeServer(startFakeVisp);

  /** Runs `fn` against a server that answers after 12 s, without retries; how long until it gave up. */
  async function giveUp(srv: { control: { mode: string; slowMs: number } }, fn: () => Promise<unknown>): Promise<{ ms: number; err: Error }> {
    srv.control.mode = 'slow';
    srv.control.slowMs = 12_000;
    const t0 = Date.now();
    try {
      await fn();
    } catch (err) {
      return { ms: Date.now() - t0, err: err as Error };
    } finally {
      srv.control.mode = 'none';
    }
    assert.fail('expected the request to time out');
  }

  it('netzur_integration.timeout_secs = 5 gives up after 5 s (default 60)', async (t) => {
    const c = crmConfig(`[netzur_integration]\nenable_netzur = true\napi_key = "${NETZUR_KEY}"\napi_url = "${netzur.url}${NETZUR_PATH}"\ntimeout_secs = 5\n`);
    const { ms, err } = await giveUp(netzur, () => runNetzur(c, { log: captureLogger(), outDir: tempDir(t), http: { retries: 0 } }));
    assert.ok(ms >= 4900 && ms < 9000, `gave up after ${ms} ms`);
    assert.match(err.message, /tim(e|ed) ?out/i);
  });

  it('visp_integration.timeout_secs = 10 gives up after 10 s (default 20)', async (t) => {
    const c = crmConfig(`[visp_integration]
enable_visp = true
client_id = "${VISP_CRED.client_id}"
client_secret = "${VISP_CRED.client_secret}"
username = "${VISP_CRED.username}"
password = "${VISP_CRED.password}"
token_url = "${visp.url}/token"
graphql_url = "${visp.url}/graphql"
timeout_secs = 10
`);
    const { ms, err } = await giveUp(visp, () => runVisp(c, { log: captureLogger(), outDir: tempDir(t), http: { retries: 0 } }));
    assert.ok(ms >= 9900 && ms < 15_000, `gave up after ${ms} ms`);
    assert.match(err.message, /tim(e|ed) ?out/i);
  });
});

test('integration_common.queue_refresh_interval_mins sets when the scheduler runs next', async (t) => {
  const w = makeSchedWorkspace('[integration_common]\nqueue_refresh_interval_mins = 7\n');
  t.after(() => w.cleanup());
  const d = await startSchedDaemon(w);
  t.after(() => d.stop());
  const s = new Scheduler({ configPath: w.config, busPath: w.busPath, log: quiet, busWaitMs: 15_000, logDir: w.logDir, integrations: () => [] });
  t.after(() => s.stop());
  const t0 = Date.now();
  assert.equal((await s.start()).code, SCHEDULER_EXIT.ok);
  let next: string | undefined;
  await waitFor(async () => {
    next = (await busRequest<'scheduler_status', { nextRun?: string; phase: string }>('scheduler_status', {}, { path: w.busPath })).nextRun;
    return next !== undefined;
  }, 5000, 'nextRun reported');
  const inMin = (Date.parse(next!) - t0) / 60_000;
  assert.ok(inMin > 6.9 && inMin < 7.2, `next run in ${inMin.toFixed(2)} min, expected 7`);
});
