// test-gate: shared (CPU only; see test/support/gate.ts)
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import Fastify from 'fastify';
import {
  clientRate,
  enabledIntegrationsFromConfig,
} from './commonImports.ts';
import {
  canonicalIp,
  fetchAllPages,
  finalRates,
  followNextLinks,
  getJson,
  IntegrationError,
  IpFilter,
  redactHeaders,
  redactUrl,
  buildOptionsFromConfig,
  resolveStrategy,
  round2,
  TopologyBuilder,
  writeIntegrationOutput,
  type BuildOptions,
  type Strategy,
} from '../../lib/integrations/common/index.ts';
import { config, OLD_CSV, OLD_NETWORK, tempDir } from './helpers.ts';

const base = (strategy: Strategy, over: Partial<BuildOptions> = {}): BuildOptions => ({
  crm: 'Test',
  strategy,
  linkMbps: { download: 1000, upload: 500 },
  defaultNodeMbps: { download: 800, upload: 800 },
  ipFilterMode: 'ignore-only',
  ignoreSubnets: [],
  allowSubnets: ['100.64.0.0/10'],
  circuitNameAsAddress: false,
  excludeSites: [],
  exceptionCpes: [],
  promoteToRoot: [],
  rateFloorMbps: 1,
  commitRatio: 0.98,
  ...over,
});

/** Site A → AP1 → c1; Site A → c2 (no AP); AP2 (top) → c3; c4 unparented. */
function sample(strategy: Strategy, over: Partial<BuildOptions> = {}) {
  const b = new TopologyBuilder(base(strategy, over));
  b.addNode({ id: 'sa', name: 'Site A', kind: 'site', networkJsonId: 'site-a', downloadMbps: 600, uploadMbps: 2000 });
  b.addNode({ id: 'ap1', name: 'AP1', kind: 'ap', parentId: 'sa', networkJsonId: 'ap-1', downloadMbps: 900.7, uploadMbps: 100.9 });
  b.addNode({ id: 'ap2', name: 'AP2', kind: 'ap' });
  b.addNode({ id: 'sb', name: 'Site B', kind: 'site', parentId: 'sa' });
  const client = (id: string, parentId: string | undefined, ip: string) => {
    b.addClient({ id, name: `Name ${id}`, address: `${id} Street`, parentId, downloadMaxMbps: 100, uploadMaxMbps: 20 });
    b.addDevice({ id: `${id}-d`, name: `dev ${id}`, clientId: id, ipv4: [ip] });
  };
  client('c1', 'ap1', '100.64.0.1');
  client('c2', 'sa', '100.64.0.2');
  client('c3', 'ap2', '100.64.0.3');
  client('c4', undefined, '100.64.0.4');
  return b.build();
}
const parents = (csv: string) =>
  csv
    .trim()
    .split('\n')
    .slice(1)
    .map((l) => l.split(',').slice(0, 1).concat(l.split(',').slice(4, 6)).join('|'));

describe('common: rates', () => {
  it('round2 rounds like Python', () => {
    assert.equal(round2(2.675), 2.67);
    assert.equal(round2(0.125), 0.12);
    assert.equal(round2(0.375), 0.38);
    assert.equal(round2(100 * 1.15 * 0.98), 112.7);
  });
  it('client rate rule and final rates', () => {
    const f = { overheadFactor: 1.15, clientMultiplier: 1.2 };
    assert.equal(clientRate(100, f), 120);
    assert.equal(clientRate('0', f), 0);
    assert.equal(clientRate(undefined, f), 0);
    assert.deepEqual(finalRates({ downloadMaxMbps: 0.4, uploadMaxMbps: 20 }, { floorMbps: 1, commitRatio: 0.98 }), {
      downloadMinMbps: 1,
      uploadMinMbps: 19.6,
      downloadMaxMbps: 1,
      uploadMaxMbps: 20,
    });
    assert.equal(finalRates({ downloadMaxMbps: 10, uploadMaxMbps: 10, downloadMinMbps: 50 }, { floorMbps: 0.1, commitRatio: 1 }).downloadMinMbps, 10);
  });
});

describe('common: IPs (§2.8)', () => {
  it('canonicalises and turns interface addresses into hosts', () => {
    assert.deepEqual(canonicalIp('100.64.6.6/24'), { family: 'v4', prefix: '100.64.6.6/32' });
    assert.deepEqual(canonicalIp('2001:DB8::1/64'), { family: 'v6', prefix: '2001:db8::1/128' });
    assert.deepEqual(canonicalIp('100.64.8.0/29'), { family: 'v4', prefix: '100.64.8.0/29' });
    assert.ok('error' in canonicalIp('300.1.1.1'));
  });
  it('ignore-only keeps public addresses; allow-and-ignore needs the allow list', () => {
    const ign = new IpFilter('ignore-only', ['100.64.1.0/24'], ['10.0.0.0/8']);
    assert.equal(ign.rejects('203.0.113.10/32'), null);
    assert.match(ign.rejects('100.64.1.10/32')!, /ignore_subnets \(100\.64\.1\.0\/24\)/);
    const both = new IpFilter('allow-and-ignore', ['100.64.1.0/24'], ['100.64.0.0/10']);
    assert.equal(both.rejects('100.64.2.1/32'), null);
    assert.equal(both.rejects('203.0.113.10/32'), 'outside allow_subnets');
    assert.equal(both.rejects('2001:db8::1/128'), 'outside allow_subnets');
    assert.match(both.rejects('100.64.1.10/32')!, /ignore_subnets/);
  });
});

describe('common: graph and strategies', () => {
  it('full: clamps top-down (truncating), parent = nearest node', () => {
    const r = sample('full');
    const net = JSON.parse(r.networkJson);
    assert.deepEqual(Object.keys(net), ['AP2', 'Site A']);
    assert.equal(net['Site A'].downloadBandwidthMbps, 600);
    assert.equal(net['Site A'].uploadBandwidthMbps, 500);
    assert.deepEqual(net['Site A'].children.AP1, { downloadBandwidthMbps: 600, uploadBandwidthMbps: 100, type: 'ap', id: 'ap-1' });
    assert.deepEqual(parents(r.shapedDevicesCsv), ['c1|AP1|ap-1', 'c2|Site A|site-a', 'c3|AP2|', 'c4||']);
    assert.deepEqual([r.summary.sites, r.summary.aps, r.summary.circuits], [2, 2, 4]);
  });
  it('flat', () => {
    const r = sample('flat');
    assert.equal(r.networkJson, '{}\n');
    assert.deepEqual(parents(r.shapedDevicesCsv), ['c1||', 'c2||', 'c3||', 'c4||']);
  });
  it('ap_only: APs with circuits at the top, others unparented', () => {
    const r = sample('ap_only');
    assert.deepEqual(Object.keys(JSON.parse(r.networkJson)), ['AP1', 'AP2']);
    assert.deepEqual(parents(r.shapedDevicesCsv), ['c1|AP1|ap-1', 'c2||', 'c3|AP2|', 'c4||']);
  });
  it('ap_site: APs under their nearest site; site-attached circuits keep the site', () => {
    const r = sample('ap_site');
    const net = JSON.parse(r.networkJson);
    assert.deepEqual(Object.keys(net), ['AP2', 'Site A']);
    assert.deepEqual(Object.keys(net['Site A'].children), ['AP1']);
    assert.deepEqual(parents(r.shapedDevicesCsv), ['c1|AP1|ap-1', 'c2|Site A|site-a', 'c3|AP2|', 'c4||']);
  });
  it('exclude_sites, promote_to_root, exception CPEs, circuit_name_as_address, duplicate names', () => {
    const b = new TopologyBuilder(
      base('full', { excludeSites: ['Gone'], promoteToRoot: ['Deep'], exceptionCpes: [{ cpe: 'c9', parent: 'Top' }], circuitNameAsAddress: true }),
    );
    b.addNode({ id: 't', name: 'Top', kind: 'site' });
    b.addNode({ id: 'g', name: 'Gone', kind: 'site' });
    b.addNode({ id: 'k', name: 'Kid', kind: 'site', parentId: 'g' });
    b.addNode({ id: 'd', name: 'Deep', kind: 'site', parentId: 't' });
    b.addNode({ id: 'x', name: 'Top', kind: 'ap', parentId: 'd', networkJsonId: 'x-id' });
    b.addClient({ id: 'c9', name: 'Nine', address: '9 Road', downloadMaxMbps: 10, uploadMaxMbps: 10 });
    b.addDevice({ id: 'd9', name: 'd9', clientId: 'c9', ipv4: ['100.64.0.9'] });
    const r = b.build();
    const net = JSON.parse(r.networkJson);
    assert.deepEqual(Object.keys(net), ['Deep', 'Kid', 'Top']);
    assert.deepEqual(Object.keys(net.Deep.children), ['Top (x-id)']);
    assert.deepEqual(parents(r.shapedDevicesCsv), ['c9|Top|']);
    assert.match(r.shapedDevicesCsv, /^c9,9 Road,/m);
  });
  it('exclude_sites: what hung below an excluded node is at the top level, and one warning per such node says so with counts (by id or name)', () => {
    const b = new TopologyBuilder(base('full', { excludeSites: ['Gone', 'Empty'] }));
    b.addNode({ id: 'g', name: 'Gone', kind: 'site' });
    b.addNode({ id: 'e', name: 'Empty', kind: 'site' });
    b.addNode({ id: 'k', name: 'Kid', kind: 'site', parentId: 'g' });
    b.addNode({ id: 'k2', name: 'Kid2', kind: 'ap', parentId: 'Gone' });
    b.addClient({ id: 'c1', name: 'One', downloadMaxMbps: 10, uploadMaxMbps: 10, parentId: 'g' });
    b.addDevice({ id: 'd1', name: 'd1', clientId: 'c1', ipv4: ['100.64.0.1'] });
    const r = b.build();
    assert.deepEqual(Object.keys(JSON.parse(r.networkJson)).sort(), ['Kid', 'Kid2']);
    assert.deepEqual(parents(r.shapedDevicesCsv), ['c1||']);
    const w = r.summary.warnings.filter((x) => x.includes('exclude_sites'));
    assert.deepEqual(w, [
      '"Gone" is in uisp_integration.exclude_sites: its 2 child nodes and 1 circuit are placed at the top level instead, not limited by its rates; to leave them out too, list them in exclude_sites (or shape them under another node)',
    ]);
    assert.ok(!r.summary.warnings.some((x) => x.includes('unknown')), r.summary.warnings.join('\n'));
  });
  it('cycles go to the top level', () => {
    const b = new TopologyBuilder(base('full'));
    b.addNode({ id: 'a', name: 'A', kind: 'site', parentId: 'b' });
    b.addNode({ id: 'b', name: 'B', kind: 'site', parentId: 'a' });
    const r = b.build();
    assert.ok(r.summary.warnings.some((w) => w.includes('cycle')));
    assert.doesNotThrow(() => JSON.parse(r.networkJson));
  });
  it('a compile_mode the integration does not build, and a client_bandwidth_multiplier it does not apply, are warnings of the run (they were silent)', () => {
    const warnings = (toml: string, strategy: Strategy, applied = true) =>
      new TopologyBuilder(buildOptionsFromConfig(config(toml), 'Netzur', strategy, applied ? {} : { clientMultiplierApplied: false })).build().summary.warnings;
    assert.deepEqual(warnings('[topology]\ncompile_mode = "ap_site"\n', 'full'), [
      '[topology] compile_mode = "ap_site" is not a mode this integration builds; its tree is built as "full"',
    ]);
    assert.deepEqual(warnings('[topology]\ncompile_mode = "full2"\n', 'full'), [], 'full2 is full');
    assert.deepEqual(warnings('[topology]\ncompile_mode = ""\n', 'full'), []);
    assert.deepEqual(warnings('[integration_common]\nclient_bandwidth_multiplier = 1.2\n', 'full', false), [
      'integration_common.client_bandwidth_multiplier = 1.2 is not applied by this integration (as upstream): its plan rates are used as the CRM gives them',
    ]);
    assert.deepEqual(warnings('[integration_common]\nclient_bandwidth_multiplier = 1.2\n', 'full'), [], 'applied: nothing to say');
  });
  it('strategy resolution: compile_mode wins if supported, then legacy key, then default', () => {
    const c = (mode: string) => config(`[topology]\ncompile_mode = "${mode}"\n`);
    assert.equal(resolveStrategy(c('full2'), ['flat', 'full'], 'flat', 'full'), 'full');
    assert.equal(resolveStrategy(c('ap_site'), ['flat', 'full'], 'flat', 'full'), 'flat');
    assert.equal(resolveStrategy(c(''), ['full'], 'bogus', 'full'), 'full');
  });
});

describe('common: writeIntegrationOutput', () => {
  it('writes a valid pair, no temp files left', (t) => {
    const dir = tempDir(t);
    const r = sample('full');
    writeIntegrationOutput({ networkJson: r.networkJson, shapedDevicesCsv: r.shapedDevicesCsv, dir });
    assert.deepEqual(readdirSync(dir).sort(), ['ShapedDevices.csv', 'network.json']);
    assert.equal(readFileSync(join(dir, 'network.json'), 'utf8'), r.networkJson);
  });
  it('an invalid pair throws, listing the errors, and leaves the old files untouched', (t) => {
    const dir = tempDir(t);
    writeFileSync(join(dir, 'network.json'), OLD_NETWORK);
    writeFileSync(join(dir, 'ShapedDevices.csv'), OLD_CSV);
    const badCsv = `${OLD_CSV}dup,Dup,dup-d,Dup,Old Site,,100.64.0.1,,1,1,10,10,\n`;
    assert.throws(
      () => writeIntegrationOutput({ networkJson: OLD_NETWORK, shapedDevicesCsv: badCsv, dir, crm: 'Test' }),
      (e: unknown) => e instanceof IntegrationError && /^Test: the generated files fail validation \(1 error\)/.test(e.message) && /duplicate|already used/.test(e.message),
    );
    assert.equal(readFileSync(join(dir, 'network.json'), 'utf8'), OLD_NETWORK);
    assert.equal(readFileSync(join(dir, 'ShapedDevices.csv'), 'utf8'), OLD_CSV);
    assert.deepEqual(readdirSync(dir).sort(), ['ShapedDevices.csv', 'network.json']);
  });
  it('the files it replaces are kept as rotated backups (<file>.bak newest), a first write makes none', (t) => {
    const dir = tempDir(t);
    const full = sample('full');
    const flat = sample('flat');
    writeIntegrationOutput({ networkJson: full.networkJson, shapedDevicesCsv: full.shapedDevicesCsv, dir });
    assert.deepEqual(readdirSync(dir).sort(), ['ShapedDevices.csv', 'network.json'], 'nothing to keep yet');
    writeIntegrationOutput({ networkJson: flat.networkJson, shapedDevicesCsv: flat.shapedDevicesCsv, dir });
    assert.equal(readFileSync(join(dir, 'ShapedDevices.csv.bak'), 'utf8'), full.shapedDevicesCsv);
    assert.equal(readFileSync(join(dir, 'network.json.bak'), 'utf8'), full.networkJson);
    writeIntegrationOutput({ networkJson: full.networkJson, shapedDevicesCsv: full.shapedDevicesCsv, dir });
    assert.equal(readFileSync(join(dir, 'ShapedDevices.csv.bak'), 'utf8'), flat.shapedDevicesCsv, 'newest backup: the file just replaced');
    assert.equal(readFileSync(join(dir, 'ShapedDevices.csv.bak.1'), 'utf8'), full.shapedDevicesCsv);
    assert.equal(readFileSync(join(dir, 'ShapedDevices.csv'), 'utf8'), full.shapedDevicesCsv);
    assert.ok(!readdirSync(dir).some((f) => f.includes('.tmp')), 'no temp files');
  });
  it('a missing directory is an IntegrationError and creates nothing', () => {
    const r = sample('flat');
    assert.throws(() => writeIntegrationOutput({ networkJson: r.networkJson, shapedDevicesCsv: r.shapedDevicesCsv, dir: '/nonexistent/dir' }), IntegrationError);
    assert.ok(!existsSync('/nonexistent/dir'));
  });
});

describe('common: http', () => {
  it('redacts secrets in URLs and headers', () => {
    assert.equal(redactUrl('https://u:p@x.test/a?api_key=1&page=2&token=3'), 'https://x.test/a?api_key=***&page=2&token=***');
    assert.deepEqual(redactHeaders({ Authorization: 'Basic x', 'X-Auth-Token': 't', Accept: 'json' }), { Authorization: '***', 'X-Auth-Token': '***', Accept: 'json' });
  });
  it('does not retry 4xx; retries 5xx; error names path only (no query)', async (t) => {
    const app = Fastify();
    let hits = 0;
    app.get('/x', async (_req, reply) => {
      hits++;
      return reply.code(hits < 3 ? 503 : 200).send({ ok: hits });
    });
    app.get('/gone', async (_req, reply) => {
      hits++;
      return reply.code(404).send({});
    });
    await app.listen({ host: '127.0.0.1', port: 0 });
    t.after(() => app.close());
    const url = `http://127.0.0.1:${(app.server.address() as { port: number }).port}`;
    assert.deepEqual(await getJson(`${url}/x`, { crm: 'T', retries: 2, backoffMs: 1 }), { ok: 3 });
    hits = 0;
    await assert.rejects(getJson(`${url}/gone?api_key=SECRET`, { crm: 'T', retries: 3, backoffMs: 1, urlHint: 'check t.url' }), (e: unknown) => {
      assert.ok(e instanceof IntegrationError);
      assert.equal(e.message, 'T: GET /gone → 404 Not Found: check t.url');
      return true;
    });
    assert.equal(hits, 1);
    const closed = Fastify();
    await closed.listen({ host: '127.0.0.1', port: 0 });
    const closedPort = (closed.server.address() as { port: number }).port;
    await closed.close();
    await assert.rejects(getJson(`http://127.0.0.1:${closedPort}/refused`, { crm: 'T', retries: 1, backoffMs: 1, urlHint: 'check t.url' }), /T: GET \/refused → connection failed \(ECONNREFUSED\) \(2 attempts\); check t\.url$/);
  });
  it('pagination helpers', async () => {
    const pages = [[1, 2], [3, 4], [5]];
    assert.deepEqual(await fetchAllPages(async (i) => pages[i] ?? [], { pageSize: 2, crm: 'T', endpoint: 'GET /p' }), [1, 2, 3, 4, 5]);
    await assert.rejects(fetchAllPages(async () => [1, 2], { pageSize: 2, maxPages: 3, crm: 'T', endpoint: 'GET /p' }), /still returning full pages/);
    const links: Record<string, { items: number[]; next: string | null }> = {
      'http://h/a': { items: [1], next: '/b' },
      'http://h/b': { items: [2], next: 'http://h/a' },
    };
    await assert.rejects(followNextLinks('http://h/a', async (u) => links[u], { crm: 'T' }), /pagination does not end/);
  });
});

describe('registry', () => {
  it('enabled integrations in priority order; rest never enabled by config', () => {
    const c = config(`[netzur_integration]\nenable_netzur = true\n[uisp_integration]\nenable_uisp = true\n`);
    assert.deepEqual(enabledIntegrationsFromConfig(c).map((e) => e.name), ['uisp', 'netzur']);
    assert.deepEqual(enabledIntegrationsFromConfig(config('')), []);
  });
});
