// test-gate: shared (CPU only; see test/support/gate.ts)
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { run } from '../../lib/integrations/rest.ts';
import { REST_TOKEN, startFakeRest } from '../fixtures/crm/rest.ts';
import type { RunOptions } from '../../lib/integrations/common/run.ts';
import { config, expectFailureKeepsFiles, runGolden, useFakeServer } from './helpers.ts';

const srv = useFakeServer(startFakeRest);

const conf = config(`
[queues]
downlink_bandwidth_mbps = 1000
uplink_bandwidth_mbps = 1000
[ip_ranges]
ignore_subnets = ["100.64.99.0/24"]
`);
const env = (token = REST_TOKEN) => ({ LQOS_REST_URL: `${srv.url}/api`, LQOS_REST_TOKEN: token });
const withEnv = (o: RunOptions, token?: string): RunOptions => ({ ...o, env: env(token) });

describe('REST integration', () => {
  it('follows next links, maps header-named rows (golden)', async (t) => {
    srv.control.mode = 'none';
    const { r } = await runGolden(t, 'rest', srv, (o) => run(conf, withEnv(o)));
    assert.equal(r.circuits, 3);
    assert.deepEqual(r.skipped.map((s) => s.id), ['C3']);
    assert.ok(srv.control.requests.some((q) => q.url === '/api/devices?page=2'));
  });

  it('is not configured → clear error', async (t) => {
    await expectFailureKeepsFiles(t, (o) => run(conf, { ...o, env: {} }), [/^REST: LQOS_REST_URL is not set/]);
  });

  it('wrong token → 401', async (t) => {
    srv.control.mode = 'none';
    await expectFailureKeepsFiles(t, (o) => run(conf, withEnv(o, 'bad-token')), [/^REST: GET \/api\/network → 401 Unauthorized: check LQOS_REST_TOKEN$/], ['bad-token']);
  });

  it('server error → 500 after retries', async (t) => {
    srv.control.mode = 'error500';
    await expectFailureKeepsFiles(t, (o) => run(conf, withEnv(o)), [/^REST: GET \/api\/network → 500 Internal Server Error \(3 attempts\)$/]);
  });

  it('timeout', async (t) => {
    srv.control.mode = 'slow';
    srv.control.failPath = '/api/devices';
    t.after(() => (srv.control.failPath = undefined));
    await expectFailureKeepsFiles(t, (o) => run(conf, withEnv(o)), [/^REST: GET \/api\/devices → timed out after 250 ms/]);
  });

  it('malformed JSON', async (t) => {
    srv.control.mode = 'malformed';
    await expectFailureKeepsFiles(t, (o) => run(conf, withEnv(o)), [/^REST: GET \/api\/network → 200 OK but the body is not valid JSON/]);
  });

  it('missing required field', async (t) => {
    srv.control.mode = 'missing-field';
    await expectFailureKeepsFiles(t, (o) => run(conf, withEnv(o)), [/^REST: GET \/api\/devices: required field "Circuit ID" is missing in row 4/]);
  });
});
