// test-gate: shared (CPU only; see test/support/gate.ts)
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { run } from '../../lib/integrations/splynx.ts';
import { SPLYNX_KEY, SPLYNX_SECRET, startFakeSplynx } from '../fixtures/crm/splynx.ts';
import { counts, crmConfig, expectFailureKeepsFiles, runGolden, useFakeServer } from './helpers.ts';

const srv = useFakeServer(startFakeSplynx);

const conf = (o: { secret?: string; strategy?: string; compileMode?: string } = {}) =>
  crmConfig(`
[topology]
compile_mode = "${o.compileMode ?? ''}"
[uisp_integration]
bandwidth_overhead_factor = 1.15
[splynx_integration]
enable_splynx = true
api_key = "${SPLYNX_KEY}"
api_secret = "${o.secret ?? SPLYNX_SECRET}"
url = "${srv.url}/"
strategy = "${o.strategy ?? 'ap_site'}"
`);

describe('Splynx integration', () => {
  it('ap_site with network sites (golden) and skip reasons', async (t) => {
    srv.control.mode = 'none';
    const { r, log, reasons } = await runGolden(t, 'splynx', srv, (o) => run(conf(), o));
    assert.equal(r.strategy, 'ap_site');
    assert.deepEqual(counts(r), { sites: 2, aps: 3, circuits: 4, devices: 4 });
    assert.deepEqual(Object.keys(reasons).sort(), ['100', '96', '97', '98']);
    assert.match(reasons['96'], /service status is "blocked"/);
    assert.match(reasons['97'], /duplicate address 100\.64\.1\.10\/32 \(already used by circuit 93\)/);
    assert.match(reasons['98'], /ignore_subnets/);
    assert.match(reasons['100'], /unknown tariff 999/);
    for (const l of log.lines) assert.ok(!l.includes(SPLYNX_SECRET) && !l.includes(SPLYNX_KEY));
    // Every call is Basic-authenticated; services are requested with the active filter.
    assert.ok(srv.control.requests.some((q) => q.url.endsWith('internet-services?main_attributes%5Bstatus%5D=active')));
  });

  it('full strategy from [topology] compile_mode (golden)', async (t) => {
    srv.control.mode = 'none';
    const { r } = await runGolden(t, 'splynx/full', srv, (o) => run(conf({ compileMode: 'full2' }), o));
    assert.equal(r.strategy, 'full');
  });

  it('flat strategy skips the infrastructure endpoints (golden)', async (t) => {
    srv.control.mode = 'none';
    const { r, calls } = await runGolden(t, 'splynx/flat', srv, (o) => run(conf({ strategy: 'flat' }), o));
    assert.equal(r.strategy, 'flat');
    assert.equal(r.sites + r.aps, 0);
    assert.ok(!calls.some((q) => q.url.includes('/networking/')));
  });

  it('wrong credentials → 401 naming the keys', async (t) => {
    srv.control.mode = 'none';
    await expectFailureKeepsFiles(
      t,
      (o) => run(conf({ secret: 'bad-secret' }), o),
      [/^Splynx: GET \/api\/2\.0\/admin\/tariffs\/internet → 401 Unauthorized: check splynx_integration\.api_key \/ api_secret$/],
      ['bad-secret', SPLYNX_KEY],
    );
  });

  it('server error on one endpoint → 500 after retries', async (t) => {
    srv.control.mode = 'error500';
    srv.control.failPath = '/admin/customers/customer';
    t.after(() => (srv.control.failPath = undefined));
    await expectFailureKeepsFiles(t, (o) => run(conf(), o), [/^Splynx: GET \/api\/2\.0\/admin\/customers\/customer → 500 Internal Server Error \(3 attempts\)$/]);
  });

  it('timeout', async (t) => {
    srv.control.mode = 'slow';
    await expectFailureKeepsFiles(t, (o) => run(conf(), o), [/^Splynx: GET \/api\/2\.0\/admin\/tariffs\/internet → timed out after 250 ms/]);
  });

  it('malformed JSON', async (t) => {
    srv.control.mode = 'malformed';
    await expectFailureKeepsFiles(t, (o) => run(conf(), o), [/^Splynx: GET \/api\/2\.0\/admin\/tariffs\/internet → 200 OK but the body is not valid JSON/]);
  });

  it('missing required field names endpoint, field and item', async (t) => {
    srv.control.mode = 'missing-field';
    srv.control.failPath = 'internet-services';
    t.after(() => (srv.control.failPath = undefined));
    await expectFailureKeepsFiles(t, (o) => run(conf(), o), [
      /^Splynx: GET \/api\/2\.0\/admin\/customers\/customer\/0\/internet-services: required field "ipv4" is missing or invalid in service #3/,
    ]);
  });
});
