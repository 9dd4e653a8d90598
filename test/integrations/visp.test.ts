// test-gate: shared (CPU only; see test/support/gate.ts)
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, it } from 'node:test';
import { run, VERIFY_TLS_REFUSED, vispMac, vispSpeedMbps } from '../../lib/integrations/visp.ts';
import type { RunOptions } from '../../lib/integrations/common/run.ts';
import { startFakeVisp, VISP_CRED } from '../fixtures/crm/visp.ts';
import { captureLogger, counts, crmConfig, expectFailureKeepsFiles, runGolden, runOpts, tempDir, useFakeServer } from './helpers.ts';

const srv = useFakeServer(startFakeVisp);

const SECRETS = [VISP_CRED.client_secret, VISP_CRED.password];

/** Each test gets its own (existing) state directory, so token caches never leak between tests. */
let stateDir = '';
beforeEach(() => {
  stateDir = mkdtempSync(join(tmpdir(), 'lqos-visp-state-'));
});
afterEach(() => rmSync(stateDir, { recursive: true, force: true }));

/** The token cache files in the state directory. */
const cacheFiles = () => {
  try {
    return readdirSync(join(stateDir, 'cache')).map((f) => join(stateDir, 'cache', f));
  } catch {
    return [];
  }
};

/** `state_directory` is this test's directory (set on the parsed config: the test TOML starts inside [bridge]). */
const conf = (o: { password?: string; ispId?: number; online?: boolean; verifyTls?: boolean } = {}) => ({ ...baseConf(o), state_directory: stateDir });

const baseConf = (o: { password?: string; ispId?: number; online?: boolean; verifyTls?: boolean }) =>
  crmConfig(`
[queues]
generated_pn_download_mbps = 1000
generated_pn_upload_mbps = 1000
[uisp_integration]
bandwidth_overhead_factor = 1.0
[integration_common]
client_bandwidth_multiplier = 1.1
[visp_integration]
enable_visp = true
client_id = "${VISP_CRED.client_id}"
client_secret = "${VISP_CRED.client_secret}"
username = "${VISP_CRED.username}"
password = "${o.password ?? VISP_CRED.password}"
token_url = "${srv.url}/token"
graphql_url = "${srv.url}/graphql"
${o.ispId === undefined ? '' : `isp_id = ${o.ispId}`}
${o.online === false ? '' : 'online_users_domain = "pppoe.example.net"'}
${o.verifyTls === false ? 'verify_tls = false' : ''}
`);

/** Page size 5 so that Subs (12 rows) and EquipmentPg (6 rows) page; no process env leaks in. */
const go = (c: ReturnType<typeof conf>, o: RunOptions, env: Record<string, string> = {}) => run(c, { ...o, env }, { pageSize: 5 });

const reset = () => {
  srv.control.mode = 'none';
  srv.control.failPath = undefined;
  srv.visp.rejectTokens = 'none';
  srv.visp.authErrorStyle = '401';
  srv.visp.errorOn = undefined;
};

describe('VISP integration', () => {
  it('token + GraphQL import (golden), topology from CPE assemblies, skip reasons', async (t) => {
    reset();
    const { r, log, calls, reasons } = await runGolden(t, 'visp', srv, (o) => go(conf(), o));
    assert.equal(r.strategy, 'full');
    assert.deepEqual(counts(r), { sites: 4, aps: 6, circuits: 7, devices: 7 });
    assert.deepEqual(Object.keys(reasons).sort(), ['5004', '5008', '5010', '5011', 'customer:1006', 'customer:1007']);
    assert.match(reasons['5004'], /service status is CANCELLED/);
    assert.match(reasons['5008'], /no usable download speed/);
    assert.match(reasons['5010'], /duplicate address 100\.64\.10\.1\/32 \(already used by circuit 5001\)/);
    assert.match(reasons['5011'], /ignore_subnets/);
    assert.match(reasons['customer:1006'], /no wireless service \(only ServiceTypeFiberCircuit\)/);
    assert.match(reasons['customer:1007'], /subscriber status is CANCELLED/);
    assert.ok(r.warnings.some((w) => /without service_number/.test(w)));
    assert.ok(r.warnings.some((w) => /service number 5003 \(customer 1002 "asmith"\) appears more than once/.test(w)));
    for (const l of log.lines) for (const s of [...SECRETS, ...srv.visp.issued]) assert.ok(!l.includes(s), `log leaks a secret: ${l}`);
    const ops = calls.filter((q) => q.url === '/graphql').length;
    // token, Subs ×3, Bulk, EquipmentAssemblies, EquipmentPg ×2, CustomerServices ×2, CustomerIpList, Online
    assert.equal(calls.length, 12);
    assert.equal(ops, 11);
    const g = calls.find((q) => q.url === '/graphql')!;
    assert.equal(g.headers.authorization, srv.visp.issued.at(-1), 'raw token, no "Bearer"');
  });

  it('helpers: units and MACs', () => {
    assert.equal(vispSpeedMbps(25000, 'kbps'), 25);
    assert.equal(vispSpeedMbps('1', 'G'), 1000);
    assert.equal(vispSpeedMbps(50, 'whatever'), 50);
    assert.equal(vispSpeedMbps(0, 'mbps'), undefined);
    assert.equal(vispMac('aabb.cc00.1002'), 'AA:BB:CC:00:10:02');
    assert.equal(vispMac('aa-bb-cc-00-10-01'), 'AA:BB:CC:00:10:01');
  });

  it('an expired token (401) is replaced once and the run succeeds', async (t) => {
    reset();
    srv.visp.rejectTokens = 'first';
    srv.visp.issued.length = 0;
    const dir = tempDir(t);
    const r = await go(conf({ online: false }), runOpts(dir));
    assert.equal(srv.visp.issued.length, 2);
    assert.ok(r.circuits > 0);
  });

  it('env overrides the credentials', async (t) => {
    reset();
    const dir = tempDir(t);
    const r = await go(conf({ password: 'stale-password' }), runOpts(dir), { VISP_PASSWORD: VISP_CRED.password });
    assert.ok(r.circuits > 0);
  });

  it('missing credentials are listed', async (t) => {
    await expectFailureKeepsFiles(t, (o) => go(conf({ password: '' }), o), [/^VISP: visp_integration\.password is empty; set it in lqos\.conf \(or VISP_CLIENT_ID/]);
  });

  it('wrong credentials → token endpoint 401 naming the keys', async (t) => {
    reset();
    await expectFailureKeepsFiles(
      t,
      (o) => go(conf({ password: 'wrong-visp-pass' }), o),
      [/^VISP: GET \/token → 401 Unauthorized: check visp_integration\.client_id \/ client_secret \/ username \/ password$/],
      ['wrong-visp-pass', VISP_CRED.client_secret],
    );
  });

  it('token rejected by GraphQL (401) even after re-auth', async (t) => {
    reset();
    srv.visp.rejectTokens = 'all';
    await expectFailureKeepsFiles(t, (o) => go(conf(), o), [/^VISP: POST \/graphql \(Subs\) → 401 Unauthorized: check visp_integration\./], SECRETS);
  });

  it('token rejected as 200 with an "errors" array', async (t) => {
    reset();
    srv.visp.rejectTokens = 'all';
    srv.visp.authErrorStyle = 'errors';
    const before = srv.visp.issued.length;
    await expectFailureKeepsFiles(
      t,
      (o) => go(conf(), o),
      [/^VISP: POST \/graphql \(Subs\) → GraphQL error: Unauthorized: token expired: check visp_integration\.client_id \/ client_secret \/ username \/ password$/],
      SECRETS,
    );
    assert.equal(srv.visp.issued.length - before, 2, 're-authenticated once');
  });

  it('a GraphQL error (wrong isp_id) names the operation', async (t) => {
    reset();
    await expectFailureKeepsFiles(t, (o) => go(conf({ ispId: 7 }), o), [/^VISP: POST \/graphql \(Subs\) → GraphQL error: isp_id 7 is not accessible$/], SECRETS);
  });

  it('server error → 500 after retries', async (t) => {
    reset();
    srv.control.mode = 'error500';
    srv.control.failPath = '/graphql';
    await expectFailureKeepsFiles(t, (o) => go(conf(), o), [/^VISP: POST \/graphql \(Subs\) → 500 Internal Server Error \(3 attempts\)$/], SECRETS);
  });

  it('timeout', async (t) => {
    reset();
    srv.control.mode = 'slow';
    await expectFailureKeepsFiles(t, (o) => go(conf(), o), [/^VISP: GET \/token → timed out after 250 ms \(3 attempts\)/], SECRETS);
  });

  it('malformed JSON', async (t) => {
    reset();
    srv.control.mode = 'malformed';
    srv.control.failPath = '/graphql';
    await expectFailureKeepsFiles(t, (o) => go(conf(), o), [/^VISP: POST \/graphql \(Subs\) → 200 OK but the body is not valid JSON/]);
  });

  it('missing required field names endpoint, field and item', async (t) => {
    reset();
    srv.control.mode = 'missing-field';
    await expectFailureKeepsFiles(t, (o) => go(conf(), o), [/^VISP: POST \/graphql \(Bulk\): required field "wireless_services" is missing or invalid in customer #2/]);
  });

  it('the token is cached (0600, never logged) and reused by the next run without a login', async (t) => {
    reset();
    const tokenCalls = () => srv.control.requests.filter((q) => q.url === '/token').length;
    const before = tokenCalls();
    const log1 = captureLogger();
    const r1 = await go(conf({ online: false }), runOpts(tempDir(t), log1));
    assert.ok(r1.circuits > 0);
    assert.equal(tokenCalls() - before, 1, 'first run logs in');
    const files = cacheFiles();
    assert.equal(files.length, 1, 'one cache file');
    assert.match(files[0], /\/cache\/\.visp_token_cache_[0-9a-f]{16}\.json$/);
    assert.equal(statSync(files[0]).mode & 0o777, 0o600);
    const cached = JSON.parse(readFileSync(files[0], 'utf8'));
    assert.equal(cached.token, srv.visp.issued.at(-1));
    assert.equal(cached.exp, 4102444800);
    const log2 = captureLogger();
    const r2 = await go(conf({ online: false }), runOpts(tempDir(t), log2));
    assert.equal(r2.circuits, r1.circuits);
    assert.equal(tokenCalls() - before, 1, 'second run: no login');
    assert.ok(log2.lines.some((l) => /VISP: using the cached token \(valid until 2100-01-01T00:00:00\.000Z\)/.test(l)));
    for (const l of [...log1.lines, ...log2.lines]) for (const s of [...SECRETS, ...srv.visp.issued]) assert.ok(!l.includes(s), `log leaks a secret: ${l}`);
  });

  it('an expired cached token → a new login, and the cache is rewritten', async (t) => {
    reset();
    await go(conf({ online: false }), runOpts(tempDir(t)));
    const [file] = cacheFiles();
    assert.ok(file);
    writeFileSync(file, JSON.stringify({ token: 'old-token-expired', exp: Math.floor(Date.now() / 1000) - 10, isp_ids: [42] }));
    const issued = srv.visp.issued.length;
    const log = captureLogger();
    await go(conf({ online: false }), runOpts(tempDir(t), log));
    assert.equal(srv.visp.issued.length, issued + 1, 'logged in again');
    assert.ok(log.lines.some((l) => /the cached token expired/.test(l)));
    assert.equal(JSON.parse(readFileSync(file, 'utf8')).token, srv.visp.issued.at(-1));
    assert.ok(!srv.control.requests.some((q) => q.headers.authorization === 'old-token-expired'), 'the expired token was not sent');
  });

  it('a cached token the server rejects (revoked) → one new login, the run succeeds', async (t) => {
    reset();
    await go(conf({ online: false }), runOpts(tempDir(t)));
    const [file] = cacheFiles();
    assert.ok(file);
    writeFileSync(file, JSON.stringify({ token: 'revoked-token', exp: 4102444800, isp_ids: [42] }));
    const issued = srv.visp.issued.length;
    const r = await go(conf({ online: false }), runOpts(tempDir(t)));
    assert.ok(r.circuits > 0);
    assert.equal(srv.visp.issued.length, issued + 1);
    assert.ok(srv.control.requests.some((q) => q.headers.authorization === 'revoked-token'), 'the cached token was tried first');
    assert.equal(JSON.parse(readFileSync(file, 'utf8')).token, srv.visp.issued.at(-1));
  });

  it('verify_tls = false stays refused and the warning says why', async (t) => {
    reset();
    const log = captureLogger();
    await go(conf({ online: false, verifyTls: false }), runOpts(tempDir(t), log));
    const w = log.lines.filter((l) => l.includes('verify_tls'));
    assert.deepEqual(w, [`VISP: ${VERIFY_TLS_REFUSED}`]);
    assert.match(w[0], /not supported: without certificate checks .* could pose as it and read the client secret, password and token/);
  });
});
