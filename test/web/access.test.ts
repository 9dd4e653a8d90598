// test-gate: shared (CPU only; see test/support/gate.ts)
/**
 * Access control and secrecy over the whole route table (taken from Fastify, so new routes are
 * covered automatically).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { RouteInfo } from '../../lib/web/server.ts';
import { SECRETS } from '../support/configs.ts';
import { Client } from '../support/http.ts';
import { setupUsers } from '../support/users.ts';
import { withHarness, type Harness } from './helpers.ts';

const MUTATING = new Set(['POST', 'PUT', 'PATCH', 'DELETE']);
const isAuthRoute = (r: RouteInfo) => r.path.startsWith('/api/auth/');

function fill(path: string, values: Record<string, string>): string {
  return path
    .replace(/:([A-Za-z_]+)/g, (_, name: string) => encodeURIComponent(values[name] ?? 'x'))
    .replace(/\*$/, '');
}

/** Things that must never be in a response. */
function assertClean(label: string, text: string): void {
  assert.doesNotMatch(text, /\$argon2/, `${label}: argon2 hash`);
  for (const [name, secret] of Object.entries(SECRETS)) {
    assert.ok(!text.includes(secret), `${label}: contains secret ${name}`);
  }
  assert.doesNotMatch(text, /\n\s+at .+:\d+:\d+/, `${label}: stack trace`);
  // Secret-named fields only ever say "set" / "not set".
  assert.doesNotMatch(text, /"[a-z_]*(?:password|secret|token|_key)"\s*:\s*"(?!set"|not set")/i, `${label}: secret-named field with a value`);
}

function withUsers(fn: (h: Harness, admin: Client, viewer: Client) => Promise<void>) {
  return withHarness(async (h) => {
    const { admin, viewer } = await setupUsers(h);
    h.ctx.urgent.submit({ source: 'test', severity: 'error', code: 'TEST', message: 'something broke' });
    await fn(h, admin, viewer);
  });
}

test('the route table is complete and every /api route declares its access', async () => {
  await withUsers(async (h) => {
    const routes = h.server.routes;
    const has = (m: string, p: string) => routes.some((r) => r.method === m && r.path === p);
    for (const [m, p] of [
      ['GET', '/api/status'],
      ['GET', '/api/config'],
      ['PUT', '/api/config'],
      ['GET', '/api/shaped-devices'],
      ['PUT', '/api/shaped-devices'],
      ['GET', '/api/network'],
      ['PUT', '/api/network'],
      ['GET', '/api/circuits'],
      ['GET', '/api/circuits/:id'],
      ['GET', '/api/circuits/:id/live'],
      ['GET', '/api/circuits/:id/flows'],
      ['GET', '/api/network-tree'],
      ['GET', '/api/urgent'],
      ['POST', '/api/urgent/:id/ack'],
      ['DELETE', '/api/urgent/:id'],
      ['DELETE', '/api/urgent'],
      ['GET', '/api/scheduler'],
      ['GET', '/api/users'],
      ['POST', '/api/users'],
      ['DELETE', '/api/users/:name'],
      ['PUT', '/api/users/:name/password'],
      ['GET', '/api/ws'],
      ['GET', '/metrics'],
      ['POST', '/api/auth/login'],
      ['POST', '/api/auth/logout'],
      ['POST', '/api/auth/first-run'],
      ['GET', '/api/auth/status'],
    ] as const) {
      assert.ok(has(m, p), `missing ${m} ${p}`);
    }
    for (const r of routes) {
      if (r.path.startsWith('/api')) assert.notEqual(r.access, 'static', `${r.method} ${r.path}`);
      if (MUTATING.has(r.method) && !isAuthRoute(r)) assert.equal(r.access, 'admin', `${r.method} ${r.path} must be admin-only`);
    }
  });
});

test('read-only user: every mutating route answers 403; every read route 200', async () => {
  await withUsers(async (h, admin, viewer) => {
    const mutating = h.server.routes.filter((r) => MUTATING.has(r.method) && !isAuthRoute(r));
    assert.ok(mutating.length >= 9, `only ${mutating.length} mutating routes found`);
    const before = await admin.get('/api/urgent');
    for (const r of mutating) {
      const path = fill(r.path, { id: '1', name: 'admin' });
      // Well-formed bodies where it matters, so a 403 is not hiding behind a 400.
      const body = r.method === 'DELETE' ? undefined : r.path.includes('ack') ? undefined : { password: 'whatever-123' };
      const res = await viewer.req(r.method, path, body);
      assert.equal(res.status, 403, `${r.method} ${r.path} → ${res.status} ${res.text}`);
      assert.equal(res.json.error, 'forbidden');
    }
    // Nothing changed.
    assert.deepEqual((await admin.get('/api/urgent')).json, before.json);
    assert.equal((await admin.get('/api/users')).json.users.length, 2);

    const reads = h.server.routes.filter((r) => r.method === 'GET' && !r.websocket);
    assert.ok(reads.length >= 8, `only ${reads.length} read routes found`);
    for (const r of reads) {
      const res = await viewer.get(fill(r.path, { id: 'c1', name: 'viewer' }));
      // /api/flows answers 404 when the daemon runs no flow tracking (as in this harness).
      const expected = r.access === 'admin' ? 403 : r.path === '/api/flows' && !h.ctx.flows ? 404 : 200;
      assert.equal(res.status, expected, `GET ${r.path} → ${res.status} ${res.text.slice(0, 200)}`);
    }
  });
});

test('not logged in: every protected route answers 401', async () => {
  await withUsers(async (h) => {
    const anon = new Client(h.base);
    const isProtected = h.server.routes.filter((x) => x.access === 'read_only' || x.access === 'admin');
    assert.ok(isProtected.length >= 15, `only ${isProtected.length} protected routes found`);
    for (const r of isProtected) {
      const res = await anon.req(r.method, fill(r.path, { id: '1', name: 'viewer' }), MUTATING.has(r.method) && r.method !== 'DELETE' ? {} : undefined);
      assert.equal(res.status, 401, `${r.method} ${r.path} → ${res.status}`);
      assert.deepEqual(res.json, { error: 'unauthorized', message: 'log in first' });
    }
  });
});

test('no response contains a password hash, a secret or a stack trace (all routes walked as admin)', async () => {
  await withUsers(async (h, admin) => {
    const gets = h.server.routes.filter((x) => x.method === 'GET' && !x.websocket);
    assert.ok(gets.length >= 8, `only ${gets.length} GET routes found`);
    for (const r of gets) {
      const path = fill(r.path, { id: 'c1', name: 'viewer' });
      const res = await admin.get(path);
      assert.ok(res.status < 500, `GET ${path} → ${res.status}`);
      assertClean(`GET ${path}`, res.text);
    }

    // The config shows secrets as set / not set, and nothing else.
    const cfg = (await admin.get('/api/config')).json.config;
    assert.equal(cfg.uisp_integration.token, 'set');
    assert.equal(cfg.uisp_integration.url, 'https://uisp.example.net');
    assert.equal(cfg.splynx_integration.api_key, 'set');
    assert.equal(cfg.splynx_integration.api_secret, 'set');
    assert.equal(cfg.visp_integration.client_secret, 'set');
    assert.equal(cfg.visp_integration.password, 'set');
    assert.equal(cfg.visp_integration.client_id, 'visp-client');
    assert.equal(cfg.visp_integration.username, 'visp-user');
    assert.equal(cfg.visp_integration.token_url, 'https://data.visp.net/token');
    assert.equal(cfg.long_term_stats.license_key, 'set');
    assert.equal(cfg.sonar_integration.sonar_api_key, 'set');
    assert.equal(cfg.sonar_integration.snmp_community, 'set');
    assert.equal(cfg.wispgate_integration.wispgate_api_token, 'set');
    assert.equal(cfg.influxdb.token, 'set');
    assert.equal(cfg.powercode_integration.powercode_api_key, 'set');
    assert.equal(cfg.netzur_integration.api_key, 'set');
    assert.deepEqual(cfg.ip_ranges.allow_subnets.length, 4, 'lists of subnets are not redacted');

    // Every mutating route as admin with junk input (logout last): errors are clean too.
    const mutating = h.server.routes.filter((r) => MUTATING.has(r.method) && r.path !== '/api/auth/logout');
    assert.ok(mutating.length >= 9, `only ${mutating.length} mutating routes found`);
    for (const r of mutating) {
      const path = fill(r.path, { id: 'no-such-id', name: 'no-such-user' });
      for (const body of r.method === 'DELETE' ? [undefined] : [undefined, {}, { junk: true }]) {
        const res = await admin.req(r.method, path, body);
        assert.ok(res.status < 500, `${r.method} ${path} → ${res.status} ${res.text}`);
        assertClean(`${r.method} ${path}`, res.text);
        if (res.status >= 400) {
          assert.equal(typeof res.json?.error, 'string', `${r.method} ${path}: error code`);
          assert.equal(typeof res.json?.message, 'string', `${r.method} ${path}: message`);
        }
      }
    }
    // Config writes answer with the redacted config; failures do not echo secrets.
    // A new URL needs its token entered again (the stored one is not sent to a new address).
    const ok = await admin.put('/api/config', { uisp_integration: { token: 'a-fresh-uisp-token', url: 'https://other.example.net' } });
    assert.equal(ok.status, 200, ok.text);
    assertClean('PUT /api/config', ok.text);
    assert.ok(!ok.text.includes('a-fresh-uisp-token'), 'PUT /api/config echoes the new token');
    const bad = await admin.put('/api/config', { uisp_integration: { token: 'set', airmax_capacity: 'lots' } });
    assert.equal(bad.status, 422);
    assertClean('PUT /api/config (invalid)', bad.text);
    const out = await admin.post('/api/auth/logout');
    assertClean('POST /api/auth/logout', out.text);
  });
});

test('unknown /api paths give a JSON 404; the UI placeholder is served when webui is not built', async () => {
  await withUsers(async (h, admin) => {
    const r = await admin.get('/api/nope');
    assert.equal(r.status, 404);
    assert.equal(r.json.error, 'not_found');
    const root = await new Client(h.base).get('/');
    assert.equal(root.status, 200);
    assert.match(root.headers.get('content-type') ?? '', /text\/html/);
    assert.match(root.text, /npm run build:webui/);
  });
});
