// test-gate: shared (CPU only; see test/support/gate.ts)
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { run } from '../../lib/integrations/wispgate.ts';
import { startFakeWispgate, WISPGATE_TOKEN } from '../fixtures/crm/wispgate.ts';
import { counts, crmConfig, expectFailureKeepsFiles, runGolden, useFakeServer } from './helpers.ts';

const srv = useFakeServer(startFakeWispgate);

const conf = (token = WISPGATE_TOKEN) =>
  crmConfig(`
[uisp_integration]
bandwidth_overhead_factor = 1.15
[wispgate_integration]
enable_wispgate = true
wispgate_api_token = "${token}"
wispgate_api_url = "${srv.url}"
`);

describe('WISPGate integration', () => {
  it('imports rows as flat circuits (golden) with skip reasons', async (t) => {
    srv.control.mode = 'none';
    const { r, log, calls, reasons } = await runGolden(t, 'wispgate', srv, (o) => run(conf(), o));
    assert.equal(r.strategy, 'full');
    assert.deepEqual(counts(r), { sites: 0, aps: 0, circuits: 7, devices: 8 });
    assert.deepEqual(Object.keys(reasons).sort(), ['C4', 'C7', 'C8', 'C9']);
    assert.match(reasons.C4, /invalid bandwidth/);
    assert.match(reasons.C7, /duplicate address 100\.64\.3\.3\/32 \(already used by circuit C1\)/);
    assert.match(reasons.C8, /ignore_subnets/);
    assert.match(reasons.C9, /no IP address/);
    for (const l of log.lines) assert.ok(!l.includes(WISPGATE_TOKEN));
    assert.deepEqual(calls.map((q) => `${q.method} ${q.url}`), ['POST /api/libreqos/shaped-devices']);
  });

  it('an empty list is an error; old files stay', async (t) => {
    srv.control.mode = 'none';
    srv.wispgate.empty = true;
    t.after(() => (srv.wispgate.empty = false));
    await expectFailureKeepsFiles(t, (o) => run(conf(), o), [/^WISPGate: POST \/api\/libreqos\/shaped-devices → returned no shaped devices; refusing/]);
  });

  it('wrong token → 401 naming the key, no secret anywhere', async (t) => {
    srv.control.mode = 'none';
    await expectFailureKeepsFiles(
      t,
      (o) => run(conf('wrong-wg-token'), o),
      [/^WISPGate: POST \/api\/libreqos\/shaped-devices → 401 Unauthorized: check wispgate_integration\.wispgate_api_token$/],
      ['wrong-wg-token'],
    );
  });

  it('wrong token answered as 200 {"error": …}', async (t) => {
    srv.control.mode = 'none';
    srv.wispgate.badTokenStyle = 'json-error';
    t.after(() => (srv.wispgate.badTokenStyle = '401'));
    await expectFailureKeepsFiles(
      t,
      (o) => run(conf('wrong-wg-token'), o),
      [/^WISPGate: POST \/api\/libreqos\/shaped-devices → the API answered with an error \("Invalid API token"\): check wispgate_integration\.wispgate_api_token$/],
      ['wrong-wg-token'],
    );
  });

  it('server error → 500 after retries', async (t) => {
    srv.control.mode = 'error500';
    await expectFailureKeepsFiles(t, (o) => run(conf(), o), [/^WISPGate: POST \/api\/libreqos\/shaped-devices → 500 Internal Server Error \(3 attempts\)$/], [WISPGATE_TOKEN]);
  });

  it('timeout', async (t) => {
    srv.control.mode = 'slow';
    await expectFailureKeepsFiles(t, (o) => run(conf(), o), [/^WISPGate: POST \/api\/libreqos\/shaped-devices → timed out after 250 ms \(3 attempts\)/], [WISPGATE_TOKEN]);
  });

  it('malformed JSON', async (t) => {
    srv.control.mode = 'malformed';
    await expectFailureKeepsFiles(t, (o) => run(conf(), o), [/^WISPGate: POST \/api\/libreqos\/shaped-devices → 200 OK but the body is not valid JSON/]);
  });

  it('missing required field names endpoint, field and item', async (t) => {
    srv.control.mode = 'missing-field';
    await expectFailureKeepsFiles(t, (o) => run(conf(), o), [/^WISPGate: POST \/api\/libreqos\/shaped-devices: required field "Circuit ID" is missing or invalid in row #3/]);
  });
});
