// test-gate: shared (CPU only; see test/support/gate.ts)
/**
 * UISP options against the fake UISP server with an extended payload of the real API shape:
 * site squashing (enable_squashing / do_not_squash_sites / squash_sites), use_ptmp_as_parent,
 * infrastructure_transport_caps_enabled, and an unknown strategy.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { parse } from 'csv-parse/sync';
import { ConfigError } from '../../lib/config/load.ts';
import { IntegrationError } from '../../lib/integrations/common/errors.ts';
import { validateIntegrationOutput } from '../../lib/integrations/common/output.ts';
import { run } from '../../lib/integrations/uisp.ts';
import { dev, qos, site, startFakeUisp, UISP_TOKEN, uispPayload } from '../fixtures/crm/uisp.ts';
import { captureLogger, crmConfig, runOpts, tempDir, useFakeServer } from './helpers.ts';

/**
 * The base payload plus: Ridge (fed from Tower by a 300 Mbps PtP) → Ridge Relay → Ridge Tower (a
 * single-child chain) with AP-Ridge (2000/1000 Mbps radio behind a 100 Mbps Ethernet port) serving
 * Rita; Farm Relay (UISP parent Tower) whose station Farm-STA hangs off AP-1, a PtMP AP in Tower,
 * with AP-Farm serving Fred.
 */
function optionsPayload() {
  const p = uispPayload();
  p.sites.push(
    site('s-ridge', 'Ridge', 'site', null),
    site('s-ridge-relay', 'Ridge Relay', 'site', 's-ridge'),
    site('s-ridge-tower', 'Ridge Tower', 'site', 's-ridge-relay'),
    site('s-rita', 'Ridge, Rita', 'endpoint', 's-ridge-tower', qos(20, 5)),
    site('s-farm', 'Farm Relay', 'site', 's-tower'),
    site('s-fred', 'Field, Fred', 'endpoint', 's-farm', qos(30, 6)),
  );
  p.devices.push(
    dev('d-rptp1', 'PTP-Ridge-A', 's-tower', { overview: { downlinkCapacity: 300_000_000, uplinkCapacity: 300_000_000 } }, { role: 'ptp', type: 'airFiber', model: 'AF-5XHD' }),
    dev('d-rptp2', 'PTP-Ridge-B', 's-ridge', { overview: { downlinkCapacity: 300_000_000, uplinkCapacity: 300_000_000 } }, { role: 'ptp', type: 'airFiber', model: 'AF-5XHD' }),
    dev(
      'd-ap-ridge',
      'AP-Ridge',
      's-ridge-tower',
      {
        overview: { downlinkCapacity: 2_000_000_000, uplinkCapacity: 1_000_000_000 },
        interfaces: [
          { identification: { type: 'eth', name: 'eth0' }, addresses: [], status: { status: 'active', currentSpeed: '100 Mbps' } },
          { identification: { type: 'eth', name: 'eth1' }, addresses: [], status: { status: 'disconnected', speed: '1000' } },
          { identification: { type: 'wlan', name: 'wlan0' }, addresses: [], status: { status: 'active', currentSpeed: '2000 Mbps' } },
        ],
      },
      { role: 'ap', type: 'wave', model: 'Wave-AP' },
    ),
    dev('d-cpe-rita', 'CPE-Rita', 's-rita', { ipAddress: '100.64.8.1', attributes: { apDevice: { id: 'd-ap-ridge', name: 'AP-Ridge' } } }),
    dev('d-farm-sta', 'Farm-STA', 's-farm', { attributes: { apDevice: { id: 'd-ap1', name: 'AP-1' } } }),
    dev('d-ap-farm', 'AP-Farm', 's-farm', { overview: { downlinkCapacity: 100_000_000, uplinkCapacity: 50_000_000 } }, { role: 'ap', type: 'airMax', model: 'LiteAP' }),
    dev('d-cpe-fred', 'CPE-Fred', 's-fred', { ipAddress: '100.64.8.2', attributes: { apDevice: { id: 'd-ap-farm', name: 'AP-Farm' } } }),
  );
  p.dataLinks.push({
    id: 'l-ridge',
    from: { device: { identification: { id: 'd-rptp1', name: 'PTP-Ridge-A' } }, site: { identification: { id: 's-tower', name: 'Tower' } } },
    to: { device: { identification: { id: 'd-rptp2', name: 'PTP-Ridge-B' } }, site: { identification: { id: 's-ridge', name: 'Ridge' } } },
    canDelete: true,
  });
  return p;
}

const srv = useFakeServer(() => startFakeUisp(optionsPayload));

const conf = (extra = '', enable = true) =>
  crmConfig(`
[queues]
generated_pn_download_mbps = 1000
generated_pn_upload_mbps = 1000
[ip_ranges]
allow_subnets = ["100.64.0.0/10", "192.168.0.0/16"]
[uisp_integration]
enable_uisp = ${enable}
token = "${UISP_TOKEN}"
url = "${srv.url}"
site = "Tower"
strategy = "full"
${extra}
`);

type Net = Record<string, { downloadBandwidthMbps: number; uploadBandwidthMbps: number; children?: Net }>;

/** Runs into a fresh dir; returns network.json, circuit id → Parent Node, and the log. The pair must validate. */
async function go(t: { after(fn: () => void): void }, extra = '') {
  const dir = tempDir(t);
  const log = captureLogger();
  const r = await run(conf(extra), runOpts(dir, log));
  const netText = readFileSync(join(dir, 'network.json'), 'utf8');
  const csvText = readFileSync(join(dir, 'ShapedDevices.csv'), 'utf8');
  assert.deepEqual(validateIntegrationOutput(netText, csvText).filter((i) => i.severity === 'error'), [], 'the pair passes validateInputs');
  const rows = parse(csvText, { columns: true }) as Array<Record<string, string>>;
  assert.ok(rows.length > 0);
  return { r, log, net: JSON.parse(netText) as Net, parent: Object.fromEntries(rows.map((x) => [x['Circuit ID'], x['Parent Node']])) };
}

/** Whether a node with this id is anywhere in network.json. */
const hasId = (net: Net, id: string): boolean => JSON.stringify(net).includes(`"id":"${id}"`);

const rates = (n: Net[string] | undefined) => {
  assert.ok(n, 'node exists');
  return [n.downloadBandwidthMbps, n.uploadBandwidthMbps];
};

describe('UISP options', () => {
  it('defaults: every site kept, transport caps on (fastest active wired port; AF60-LR model ceiling)', async (t) => {
    const { net, parent } = await go(t);
    const ridge = net['Ridge'];
    assert.deepEqual(rates(ridge), [300, 300], 'the 300 Mbps PtP feeds Ridge');
    const tower = ridge.children!['Ridge Relay'].children!['Ridge Tower'];
    assert.deepEqual(rates(tower.children!['AP-Ridge']), [94, 94], 'AP-Ridge: 2000/1000 radio capped at 100 Mbps eth0 × 0.94 (eth1 is down, wlan0 is no transport)');
    assert.deepEqual(rates(net['Hill Relay']), [940, 940], 'the AF60-LR PtP ends (no port data) are capped at 1 Gbps × 0.94');
    assert.ok(net['Farm Relay'], 'Farm Relay at the top level (below the root site Tower)');
    assert.equal(parent['s-rita'], 'AP-Ridge');
    assert.equal(parent['s-fred'], 'AP-Farm');
  });

  it('infrastructure_transport_caps_enabled = false: radio capacities only', async (t) => {
    const { net } = await go(t, 'infrastructure_transport_caps_enabled = false');
    const tower = net['Ridge'].children!['Ridge Relay'].children!['Ridge Tower'];
    assert.deepEqual(rates(tower.children!['AP-Ridge']), [300, 300], 'only the top-down clamp (Ridge 300) applies');
    assert.deepEqual(rates(net['Hill Relay']), [1000, 1000]);
  });

  it('enable_squashing collapses single-child sites without circuits, keeping their rates; do_not_squash_sites keeps a site', async (t) => {
    const all = await go(t, 'enable_squashing = true');
    for (const gone of ['s-ridge', 's-ridge-relay', 's-ridge-tower', 's-farm', 's-hill', 's-valley']) assert.ok(!hasId(all.net, `uisp:site:${gone}`), `${gone} is squashed`);
    assert.deepEqual(rates(all.net['AP-Ridge']), [94, 94], 'AP-Ridge moved to the top level');
    assert.deepEqual(rates(all.net['LTU-Valley']), [400, 200]);
    assert.deepEqual(rates(all.net['AP-Hill']), [210, 90]);
    assert.ok(hasId(all.net, 'uisp:site:s-valley2'), 'a site without children is kept');
    assert.ok(all.net['Orphans']?.children?.['Island'], 'Orphans and its childless site are kept');
    assert.equal(all.parent['s-rita'], 'AP-Ridge');
    assert.ok(all.log.lines.some((l) => /^UISP: squashed 6 site\(s\) into their parents: /.test(l)), all.log.lines.join('\n'));

    const kept = await go(t, 'enable_squashing = true\ndo_not_squash_sites = ["Ridge Tower"]\ninfrastructure_transport_caps_enabled = false');
    assert.equal(kept.net['Ridge'], undefined);
    const tower = kept.net['Ridge Tower'];
    assert.deepEqual(rates(tower), [300, 300], "Ridge's 300 Mbps passed down the squashed chain");
    assert.deepEqual(rates(tower.children!['AP-Ridge']), [300, 300]);
    assert.equal(kept.parent['s-rita'], 'AP-Ridge');
  });

  it('squash_sites squashes the named sites even when squashing is off', async (t) => {
    const { net, parent } = await go(t, 'squash_sites = ["Valley"]');
    assert.deepEqual(rates(net['LTU-Valley']), [400, 200], 'the AP of the squashed Valley moved up');
    assert.equal(parent['s-acme'], 'LTU-Valley');
    assert.ok(!hasId(net, 'uisp:site:s-valley') && !hasId(net, 'uisp:site:s-valley2'), 'both sites named Valley are squashed (by name)');
    assert.ok(net['Ridge']?.children?.['Ridge Relay'], 'no automatic squashing');
  });

  it('use_ptmp_as_parent: a site fed by a PtMP AP hangs below that AP', async (t) => {
    const { net, parent } = await go(t, 'use_ptmp_as_parent = true');
    assert.equal(net['Farm Relay'], undefined);
    const farm = net['AP-1']?.children?.['Farm Relay'];
    assert.ok(farm, `Farm Relay below AP-1, got top level ${Object.keys(net).join(', ')}`);
    assert.ok(farm.children?.['AP-Farm']);
    assert.deepEqual(rates(farm), [200, 100], "clamped by AP-1's 200/100 Mbps radio");
    assert.equal(parent['s-fred'], 'AP-Farm');
    assert.ok(net['Ridge'], 'Ridge is fed by a PtP link: unchanged');
  });

  it('an unknown strategy: a config error when UISP is enabled, an integration error when run anyway', async (t) => {
    assert.throws(
      () => crmConfig(`[uisp_integration]\nenable_uisp = true\nstrategy = "fulll"\n`),
      (e: unknown) => e instanceof ConfigError && /uisp_integration\.strategy: expected one of "flat", "ap_only", "ap_site", "full"/.test(e.message) && /got "fulll"/.test(e.message),
    );
    const c = conf('', false);
    c.uisp_integration.strategy = 'Hybrid';
    await assert.rejects(run(c, runOpts(tempDir(t))), (e: unknown) => e instanceof IntegrationError && /^UISP: uisp_integration\.strategy = "Hybrid" is not a strategy; use one of "flat", "ap_only", "ap_site", "full"/.test(e.message));
    const ok = conf('', false);
    ok.uisp_integration.strategy = 'FULL2';
    assert.equal((await run(ok, runOpts(tempDir(t)))).strategy, 'full');
  });
});
