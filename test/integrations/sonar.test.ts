// test-gate: shared (CPU only; see test/support/gate.ts)
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { run, sonarGraphqlUrl } from '../../lib/integrations/sonar.ts';
import { SONAR_KEY, startFakeSonar } from '../fixtures/crm/sonar.ts';
import type { RunOptions } from '../../lib/integrations/common/run.ts';
import { counts, crmConfig, expectFailureKeepsFiles, runGolden, useFakeServer } from './helpers.ts';

const srv = useFakeServer(startFakeSonar);

const conf = (o: { key?: string; compileMode?: string; statuses?: string } = {}) =>
  crmConfig(`
[queues]
generated_pn_download_mbps = 2000
generated_pn_upload_mbps = 1000
[topology]
compile_mode = "${o.compileMode ?? ''}"
[uisp_integration]
bandwidth_overhead_factor = 1.0
[sonar_integration]
enable_sonar = true
sonar_api_url = "${srv.url}/api"
sonar_api_key = "${o.key ?? SONAR_KEY}"
# SNMP AP discovery off: the fixture's APs (10.0.0.5, 10.0.1.5) are not ours to ask (sonarSnmp.test.ts asks real snmpd).
snmp_community = ""
airmax_model_ids = ["41"]
ltu_model_ids = ["42"]
active_status_ids = ${o.statuses ?? '[""]'}
recurring_service_rates = [
  { service_name = "Residential 50", download_mbps = 50, upload_mbps = 10 },
  { service_name = "Static IP", download_mbps = 1, upload_mbps = 1 },
]
recurring_excluded_service_names = ["static ip"]
`);

/** Page size 2 so that the fake's paging is exercised. */
const go = (c: ReturnType<typeof conf>, o: RunOptions) => run(c, o, { pageSize: 2 });

describe('Sonar integration', () => {
  it('full: sites without SNMP (snmp_community = ""), accounts over pages (golden) with skip reasons', async (t) => {
    srv.control.mode = 'none';
    const { r, log, calls, reasons } = await runGolden(t, 'sonar', srv, (o) => go(conf(), o));
    assert.equal(r.strategy, 'full');
    assert.deepEqual(counts(r), { sites: 2, aps: 0, circuits: 5, devices: 7 });
    assert.deepEqual(Object.keys(reasons).sort(), ['sonar:account:1005', 'sonar:account:1006', 'sonar:account:1007', 'sonar:account:1009', 'sonar:account:1010']);
    assert.match(reasons['sonar:account:1005'], /no service address/);
    assert.match(reasons['sonar:account:1006'], /no DATA service and no recurring service/);
    assert.match(reasons['sonar:account:1007'], /ignore_subnets/);
    assert.match(reasons['sonar:account:1009'], /no IP address/);
    assert.match(reasons['sonar:account:1010'], /duplicate address 100\.64\.5\.5\/32 \(already used by circuit sonar:account:1001\)/);
    assert.ok(
      r.warnings.some((w) => /^2 AP inventory items found, but sonar_integration\.snmp_community is empty, so SNMP AP discovery is off/.test(w)),
      `expected the "SNMP AP discovery is off" warning, got: ${r.warnings.join(' | ')}`,
    );
    assert.ok(r.warnings.some((w) => /not-an-ip/.test(w)));
    for (const l of log.lines) assert.ok(!l.includes(SONAR_KEY));
    // statuses (1 page), sites (2 pages), accounts status 1 (3 pages), status 5 (3 pages); Bearer auth.
    assert.equal(calls.length, 9);
    assert.ok(calls.every((q) => q.method === 'POST' && q.url === '/api/graphql' && q.headers.authorization === `Bearer ${SONAR_KEY}`));
  });

  it('flat from [topology] compile_mode, configured statuses: no status or site queries (golden)', async (t) => {
    srv.control.mode = 'none';
    const { r, calls } = await runGolden(t, 'sonar/flat', srv, (o) => go(conf({ compileMode: 'flat', statuses: '["1"]' }), o));
    assert.equal(r.strategy, 'flat');
    assert.equal(r.sites + r.aps, 0);
    assert.equal(calls.length, 3);
  });

  it('normalises the GraphQL URL', () => {
    assert.equal(sonarGraphqlUrl('https://x.sonar.software'), 'https://x.sonar.software/api/graphql');
    assert.equal(sonarGraphqlUrl('https://x.sonar.software/api/'), 'https://x.sonar.software/api/graphql');
    assert.equal(sonarGraphqlUrl('https://x.sonar.software/api/graphql/'), 'https://x.sonar.software/api/graphql');
  });

  it('wrong key → 200 with "errors" (Unauthenticated) naming the key', async (t) => {
    srv.control.mode = 'none';
    await expectFailureKeepsFiles(
      t,
      (o) => go(conf({ key: 'wrong-sonar-key' }), o),
      [/^Sonar: POST \/api\/graphql \(account_statuses\) → GraphQL error: Unauthenticated\.: check sonar_integration\.sonar_api_key$/],
      ['wrong-sonar-key'],
    );
  });

  it('wrong key → 401 naming the key', async (t) => {
    srv.control.mode = 'none';
    srv.sonar.badKeyStyle = '401';
    t.after(() => (srv.sonar.badKeyStyle = 'errors'));
    await expectFailureKeepsFiles(
      t,
      (o) => go(conf({ key: 'wrong-sonar-key' }), o),
      [/^Sonar: POST \/api\/graphql \(account_statuses\) → 401 Unauthorized: check sonar_integration\.sonar_api_key$/],
      ['wrong-sonar-key'],
    );
  });

  it('a GraphQL error in a later query fails the run', async (t) => {
    srv.control.mode = 'none';
    srv.sonar.errorOn = 'accounts';
    t.after(() => (srv.sonar.errorOn = undefined));
    await expectFailureKeepsFiles(t, (o) => go(conf(), o), [/^Sonar: POST \/api\/graphql \(accounts status 1\) → GraphQL error: Internal server error in accounts$/], [SONAR_KEY]);
  });

  it('server error → 500 after retries', async (t) => {
    srv.control.mode = 'error500';
    await expectFailureKeepsFiles(t, (o) => go(conf(), o), [/^Sonar: POST \/api\/graphql \(account_statuses\) → 500 Internal Server Error \(3 attempts\)$/], [SONAR_KEY]);
  });

  it('timeout', async (t) => {
    srv.control.mode = 'slow';
    await expectFailureKeepsFiles(t, (o) => go(conf(), o), [/^Sonar: POST \/api\/graphql \(account_statuses\) → timed out after 250 ms \(3 attempts\)/], [SONAR_KEY]);
  });

  it('malformed JSON', async (t) => {
    srv.control.mode = 'malformed';
    await expectFailureKeepsFiles(t, (o) => go(conf(), o), [/^Sonar: POST \/api\/graphql \(account_statuses\) → 200 OK but the body is not valid JSON/]);
  });

  it('missing required field names endpoint, field and item', async (t) => {
    srv.control.mode = 'missing-field';
    await expectFailureKeepsFiles(t, (o) => go(conf(), o), [/^Sonar: POST \/api\/graphql \(accounts status 1\): required field "id" is missing or invalid in account #2/]);
  });
});
