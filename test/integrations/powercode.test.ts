// test-gate: shared (CPU only; see test/support/gate.ts)
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { powercodeEndpointUrl, run } from '../../lib/integrations/powercode.ts';
import { POWERCODE_KEY, startFakePowercode } from '../fixtures/crm/powercode.ts';
import { counts, crmConfig, expectFailureKeepsFiles, runGolden, useFakeServer } from './helpers.ts';

const srv = useFakeServer(startFakePowercode);

const conf = (key = POWERCODE_KEY) =>
  crmConfig(`
[uisp_integration]
bandwidth_overhead_factor = 1.0
[powercode_integration]
enable_powercode = true
powercode_api_key = "${key}"
powercode_api_url = "${srv.url}/"
`);

describe('Powercode integration', () => {
  it('imports active customers as flat circuits (golden) with skip reasons', async (t) => {
    srv.control.mode = 'none';
    const { r, log, calls, reasons } = await runGolden(t, 'powercode', srv, (o) => run(conf(), o));
    assert.equal(r.strategy, 'full');
    assert.deepEqual(counts(r), { sites: 0, aps: 0, circuits: 5, devices: 6 });
    assert.deepEqual(Object.keys(reasons).sort(), ['503', '504', '505', '506', '507', '510', '511']);
    assert.match(reasons['503'], /customer status is "Inactive"/);
    assert.match(reasons['504'], /customer status is "Suspended"/);
    assert.match(reasons['505'], /duplicate address 100\.64\.4\.4\/32 \(already used by circuit 501\)/);
    assert.match(reasons['506'], /ignore_subnets/);
    assert.match(reasons['507'], /no equipment of a shaped type with a known service \(9009: unknown service 999; 9010: no service\)/);
    assert.match(reasons['510'], /no equipment/);
    assert.match(reasons['511'], /unknown service 80/);
    assert.ok(r.warnings.some((w) => /customer 502 "Jane Roe" has equipment on services 78, 79; the rate of service 79/.test(w)));
    for (const l of log.lines) assert.ok(!l.includes(POWERCODE_KEY));
    // Two form-encoded POSTs to the preseem endpoint.
    assert.deepEqual(calls.map((q) => `${q.method} ${q.url}`), ['POST /api/preseem/index.php', 'POST /api/preseem/index.php']);
    assert.match(String(calls[0].headers['content-type']), /application\/x-www-form-urlencoded/);
  });

  it('appends :444 unless the URL has a port', () => {
    assert.equal(powercodeEndpointUrl('https://pc.example.com'), 'https://pc.example.com:444/api/preseem/index.php');
    assert.equal(powercodeEndpointUrl('https://pc.example.com/'), 'https://pc.example.com:444/api/preseem/index.php');
    assert.equal(powercodeEndpointUrl('http://127.0.0.1:8080'), 'http://127.0.0.1:8080/api/preseem/index.php');
  });

  it('empty key → error naming the key', async (t) => {
    await expectFailureKeepsFiles(t, (o) => run(conf(''), o), [/^Powercode: powercode_integration\.powercode_api_key is empty/]);
  });

  it('wrong key → 401 naming the key, no secret anywhere', async (t) => {
    srv.control.mode = 'none';
    await expectFailureKeepsFiles(
      t,
      (o) => run(conf('wrong-pc-key'), o),
      [/^Powercode: POST \/api\/preseem\/index\.php \(list_services\) → 401 Unauthorized: check powercode_integration\.powercode_api_key$/],
      ['wrong-pc-key'],
    );
  });

  it('wrong key answered as 200 {"error": …} → error naming the key', async (t) => {
    srv.control.mode = 'none';
    srv.powercode.badKeyStyle = 'json-error';
    t.after(() => (srv.powercode.badKeyStyle = '401'));
    await expectFailureKeepsFiles(
      t,
      (o) => run(conf('wrong-pc-key'), o),
      [/^Powercode: POST \/api\/preseem\/index\.php \(list_services\) → the API answered with an error \("Invalid API key"\): check powercode_integration\.powercode_api_key$/],
      ['wrong-pc-key'],
    );
  });

  it('server error → 500 after retries', async (t) => {
    srv.control.mode = 'error500';
    const before = srv.control.requests.length;
    await expectFailureKeepsFiles(t, (o) => run(conf(), o), [/^Powercode: POST \/api\/preseem\/index\.php \(list_services\) → 500 Internal Server Error \(3 attempts\)$/], [POWERCODE_KEY]);
    assert.equal(srv.control.requests.length - before, 3);
  });

  it('timeout', async (t) => {
    srv.control.mode = 'slow';
    await expectFailureKeepsFiles(t, (o) => run(conf(), o), [/^Powercode: POST \/api\/preseem\/index\.php \(list_services\) → timed out after 250 ms \(3 attempts\)/], [POWERCODE_KEY]);
  });

  it('malformed JSON', async (t) => {
    srv.control.mode = 'malformed';
    await expectFailureKeepsFiles(t, (o) => run(conf(), o), [/^Powercode: POST \/api\/preseem\/index\.php \(list_services\) → 200 OK but the body is not valid JSON/]);
  });

  it('missing required field names endpoint, field and item', async (t) => {
    srv.control.mode = 'missing-field';
    await expectFailureKeepsFiles(t, (o) => run(conf(), o), [
      /^Powercode: POST \/api\/preseem\/index\.php \(list_services\): required field "rate_up" is missing or invalid in service #2/,
    ]);
  });
});
