// test-gate: shared (CPU only; see test/support/gate.ts)
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { normaliseClientName, parseLinkSpeed, run } from '../../lib/integrations/uisp.ts';
import { startFakeUisp, UISP_TOKEN } from '../fixtures/crm/uisp.ts';
import { crmConfig, expectFailureKeepsFiles, runGolden, runOpts, tempDir, useFakeServer } from './helpers.ts';

const srv = useFakeServer(startFakeUisp);

const conf = (o: { token?: string; strategy?: string; site?: string; suspended?: string } = {}) =>
  crmConfig(`
[queues]
generated_pn_download_mbps = 1000
generated_pn_upload_mbps = 1000
[ip_ranges]
allow_subnets = ["100.64.0.0/10", "192.168.0.0/16", "2001:db8::/32"]
[uisp_integration]
enable_uisp = true
token = "${o.token ?? UISP_TOKEN}"
url = "${srv.url}"
site = "${o.site ?? 'Tower'}"
strategy = "${o.strategy ?? 'full'}"
suspended_strategy = "${o.suspended ?? 'slow'}"
ltu_capacity = 0.9
commit_bandwidth_multiplier = 0.98
`);

describe('UISP integration', () => {
  it('full strategy (golden), skip reasons, X-Auth-Token', async (t) => {
    srv.control.mode = 'none';
    const { r, log, reasons } = await runGolden(t, 'uisp', srv, (o) => run(conf(), o));
    assert.equal(r.strategy, 'full');
    assert.match(reasons['s-lan'], /duplicate address 192\.168\.1\.1\/32 \(already used by circuit s-smith\)/);
    assert.match(reasons['s-public'], /203\.0\.113\.9\/32 outside allow_subnets/);
    assert.match(reasons['s-ignored'], /in ignore_subnets/);
    assert.match(reasons['s-noip'], /no IP address/);
    assert.match(reasons['s-nodev'], /no devices/);
    assert.ok(r.warnings.some((w) => w.includes('Olive Orphan') && w.includes('Orphans')));
    assert.ok(srv.control.requests.every((q) => q.headers['x-auth-token'] === UISP_TOKEN));
    assert.ok(srv.control.requests.some((q) => q.url === '/nms/api/v2.1/devices?withInterfaces=true'));
    for (const l of log.lines) assert.ok(!l.includes(UISP_TOKEN));
  });

  it('ap_only and ap_site and flat (golden), root found from the WAN data link', async (t) => {
    srv.control.mode = 'none';
    for (const strategy of ['ap_only', 'ap_site', 'flat']) {
      const { r } = await runGolden(t, `uisp/${strategy}`, srv, (o) => run(conf({ strategy, site: '' }), o));
      assert.equal(r.strategy, strategy);
    }
  });

  it('suspended_strategy = ignore skips suspended clients', async (t) => {
    srv.control.mode = 'none';
    const r = await run(conf({ suspended: 'ignore' }), runOpts(tempDir(t)));
    assert.deepEqual(r.skipped.find((s) => s.id === 's-susp'), { id: 's-susp', name: 'Sam Suspended', reason: 'suspended (suspended_strategy = "ignore")' });
  });

  it('a suspended_strategy that is not one of "", none, ignore, slow fails the run naming the key and the values, files kept; any case is accepted', async (t) => {
    srv.control.mode = 'none';
    await expectFailureKeepsFiles(t, (o) => run(conf({ suspended: 'slowdown' }), o), [/^UISP: uisp_integration\.suspended_strategy = "slowdown" is not a strategy; use "none" .*"ignore" .*"slow" \(0\.1 Mbps\), or leave it empty$/]);
    const r = await run(conf({ suspended: ' Ignore ' }), runOpts(tempDir(t)));
    assert.equal(r.skipped.find((s) => s.id === 's-susp')?.reason, 'suspended (suspended_strategy = "ignore")');
  });

  it('exception_cpes: the client of a named CPE hangs under the named site or AP (by name or id), its CPE kept; a parent that names nothing is warned about', async (t) => {
    srv.control.mode = 'none';
    const withExceptions = (entries: string) => {
      const c = conf();
      return { ...c, uisp_integration: { ...c.uisp_integration, exception_cpes: JSON.parse(entries) } };
    };
    const parents = (dir: string) =>
      new Map(
        readFileSync(join(dir, 'ShapedDevices.csv'), 'utf8')
          .trim()
          .split(/\r?\n/)
          .slice(1)
          .map((l) => l.split(',').map((c) => c.replace(/^"|"$/g, '')))
          .map((c) => [c[0], { parent: c[4], device: c[3] }]),
      );
    const dir = tempDir(t);
    const r = await run(
      withExceptions('[{"cpe":"CPE-Olive","parent":"Hill Relay"},{"cpe":"d-cpe1","parent":"s-valley"},{"cpe":"CPE-Smith","parent":"AP-1"},{"cpe":"CPE-Sam","parent":"No Such Site"}]'),
      runOpts(dir),
    );
    const p = parents(dir);
    assert.deepEqual(p.get('s-orphan'), { parent: 'Hill Relay', device: 'CPE-Olive' }, 'by site name: no longer under Orphans');
    assert.deepEqual(p.get('s-doe'), { parent: 'Valley', device: 'CPE-1' }, 'by site id, over its AP');
    assert.deepEqual(p.get('s-smith'), { parent: 'AP-1', device: 'CPE-Smith' }, 'by AP name');
    assert.equal(p.get('s-susp')?.parent, 'AP-1', 'unknown parent: placed as discovered');
    assert.ok(r.warnings.some((w) => w.includes('"No Such Site"') && w.includes('CPE-Sam') && w.includes('placed as discovered')), r.warnings.join('\n'));
    assert.ok(!r.warnings.some((w) => w.includes('Olive Orphan') && w.includes('Orphans')), 'Olive is placed, not orphaned');
  });

  it('full strategy without a known root site is an error', async (t) => {
    srv.control.mode = 'none';
    await expectFailureKeepsFiles(t, (o) => run(conf({ site: 'Nowhere' }), o), [/^UISP: uisp_integration\.site "Nowhere" is not an infrastructure site/]);
  });

  it('wrong token → 401', async (t) => {
    srv.control.mode = 'none';
    const err = await expectFailureKeepsFiles(t, (o) => run(conf({ token: 'nope-token' }), o), [/^UISP: GET \/nms\/api\/v2\.1\/\S+ → 401 Unauthorized: check uisp_integration\.token$/], ['nope-token']);
    assert.equal(err.status, 401);
  });

  it('server error → 500 after retries', async (t) => {
    srv.control.mode = 'error500';
    srv.control.failPath = '/data-links';
    t.after(() => (srv.control.failPath = undefined));
    await expectFailureKeepsFiles(t, (o) => run(conf(), o), [/^UISP: GET \/nms\/api\/v2\.1\/data-links → 500 Internal Server Error \(3 attempts\)$/]);
  });

  it('timeout', async (t) => {
    srv.control.mode = 'slow';
    srv.control.failPath = '/sites';
    t.after(() => (srv.control.failPath = undefined));
    await expectFailureKeepsFiles(t, (o) => run(conf(), o), [/^UISP: GET \/nms\/api\/v2\.1\/sites → timed out after 250 ms \(3 attempts\)/]);
  });

  it('malformed JSON', async (t) => {
    srv.control.mode = 'malformed';
    srv.control.failPath = '/devices';
    t.after(() => (srv.control.failPath = undefined));
    await expectFailureKeepsFiles(t, (o) => run(conf(), o), [/^UISP: GET \/nms\/api\/v2\.1\/devices → 200 OK but the body is not valid JSON/]);
  });

  it('missing required field', async (t) => {
    srv.control.mode = 'missing-field';
    srv.control.failPath = '/sites';
    t.after(() => (srv.control.failPath = undefined));
    await expectFailureKeepsFiles(t, (o) => run(conf(), o), [/^UISP: GET \/nms\/api\/v2\.1\/sites: required field "identification\.type" is missing or invalid in site #3 \(s-valley\)/]);
  });

  it('name and link-speed helpers', () => {
    assert.equal(normaliseClientName('Doe, John'), 'John Doe');
    assert.equal(normaliseClientName('Acme, Inc'), 'Acme, Inc');
    assert.equal(normaliseClientName('Unit 4, Main'), 'Unit 4, Main');
    assert.equal(parseLinkSpeed('100 Mbps'), 100);
    assert.equal(parseLinkSpeed('1 Gbps'), 1000);
    assert.equal(parseLinkSpeed('1000'), 1000);
    assert.equal(parseLinkSpeed('1000-full'), 1000);
    assert.equal(parseLinkSpeed(null), undefined);
  });
});
