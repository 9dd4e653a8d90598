// test-gate: shared (CPU only; see test/support/gate.ts)
/**
 * CRM redirects and response size (issue 14): two real HTTP servers on two loopback addresses.
 * "A" (127.0.0.1, the configured CRM) redirects; "B" (127.0.0.2, another origin) records every
 * request it gets. The secret header and body must never reach B, and the client must say why.
 */
import assert from 'node:assert/strict';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { redirectRefusal, requestJson, scrubErrorText } from '../../lib/integrations/common/http.ts';
import { IntegrationError } from '../../lib/integrations/common/errors.ts';
import { run as runUisp } from '../../lib/integrations/uisp.ts';
import { crmConfig, FAST_HTTP, runOpts, tempDir } from './helpers.ts';

const SECRET = 'tok-9f8e7d6c5b4a-never-leaves';
const BODY_SECRET = 'apikey=body-secret-1234567890';

interface Seen {
  method: string;
  url: string;
  headers: IncomingMessage['headers'];
  body: string;
}
interface Srv {
  url: string;
  seen: Seen[];
  server: Server;
}

async function startServer(host: string, handler: (req: IncomingMessage, res: ServerResponse, body: string) => void): Promise<Srv> {
  const seen: Seen[] = [];
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks).toString('utf8');
      seen.push({ method: req.method ?? '', url: req.url ?? '', headers: req.headers, body });
      handler(req, res, body);
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, host, () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  return { url: `http://${host}:${port}`, seen, server };
}

const json = (res: ServerResponse, status: number, value: unknown) => {
  res.writeHead(status, { 'content-type': 'application/json' });
  res.end(JSON.stringify(value));
};

let a: Srv;
let b: Srv;
/** Path on A → where it redirects (status, location). Anything else answers JSON echoing the request. */
const routes = new Map<string, { status: number; to: () => string }>();

before(async () => {
  b = await startServer('127.0.0.2', (req, res) => json(res, 200, { from: 'B', path: req.url }));
  a = await startServer('127.0.0.1', (req, res, body) => {
    const path = (req.url ?? '').split('?')[0];
    const r = path.startsWith('/nms/') ? { status: 301, to: () => `${b.url}${req.url}` } : routes.get(path);
    if (r) {
      res.writeHead(r.status, { location: r.to() });
      res.end();
      return;
    }
    if (path === '/big') {
      // 2 MiB in 64 KiB chunks, no Content-Length: the cap must be enforced while streaming.
      res.writeHead(200, { 'content-type': 'application/json' });
      const chunk = Buffer.alloc(64 * 1024, 0x20);
      for (let i = 0; i < 32; i++) res.write(chunk);
      res.end('{}');
      return;
    }
    json(res, 200, { from: 'A', path, method: req.method, body, token: req.headers['x-auth-token'] === SECRET });
  });
  routes.set('/cross302', { status: 302, to: () => `${b.url}/steal` });
  routes.set('/cross307', { status: 307, to: () => `${b.url}/steal` });
  routes.set('/cross308', { status: 308, to: () => `${b.url}/steal` });
  routes.set('/same302', { status: 302, to: () => '/landing' });
  routes.set('/same307', { status: 307, to: () => `${a.url}/landing307` });
  routes.set('/same308', { status: 308, to: () => '/landing308' });
  routes.set('/loop', { status: 302, to: () => '/loop' });
});
after(async () => {
  a.server.closeAllConnections();
  b.server.closeAllConnections();
  await Promise.all([new Promise((r) => a.server.close(r)), new Promise((r) => b.server.close(r))]);
});

const opts = (method: 'GET' | 'POST') => ({
  crm: 'TestCRM',
  method,
  headers: { 'X-Auth-Token': SECRET, Authorization: `Bearer ${SECRET}`, 'content-type': 'application/x-www-form-urlencoded' },
  body: method === 'POST' ? BODY_SECRET : undefined,
  urlHint: 'check test_integration.url',
  ...FAST_HTTP,
});

/** B saw nothing that carries a secret; in fact it saw no request at all. */
function assertNothingReachedB(): void {
  for (const q of b.seen) {
    assert.ok(!JSON.stringify(q.headers).includes(SECRET), `B received the secret header on ${q.method} ${q.url}`);
    assert.ok(!q.body.includes('body-secret'), `B received the secret body on ${q.method} ${q.url}`);
  }
  assert.equal(b.seen.length, 0, 'the other origin must receive no request at all');
}

describe('CRM redirects', () => {
  for (const status of [302, 307, 308]) {
    for (const method of ['GET', 'POST'] as const) {
      it(`${status} to another origin (${method}) is refused; the secret never reaches it`, async () => {
        const before = a.seen.length;
        await assert.rejects(requestJson(`${a.url}/cross${status}?key=abc`, opts(method)), (err: unknown) => {
          assert.ok(err instanceof IntegrationError);
          assert.equal(err.status, status);
          assert.match(err.message, /^TestCRM: (GET|POST) \/cross\d+ → redirected from http:\/\/127\.0\.0\.1:\d+\/cross\d+\?key=\*\*\* to http:\/\/127\.0\.0\.2:\d+\/steal/);
          assert.match(err.message, /another origin \(http:\/\/127\.0\.0\.2:\d+ instead of http:\/\/127\.0\.0\.1:\d+/);
          assert.match(err.message, /set the configured URL to the server that answers; check test_integration\.url$/);
          assert.ok(!err.message.includes(SECRET) && !err.message.includes('abc'));
          return true;
        });
        // Not retried: a redirect answer does not change on the next attempt.
        assert.equal(a.seen.length - before, 1);
        assertNothingReachedB();
      });
    }
  }

  it('an http URL redirected to https on the same host is another origin: refused, not followed', async () => {
    routes.set('/to-https', { status: 302, to: () => `${a.url.replace('http:', 'https:')}/landing` });
    await assert.rejects(requestJson(`${a.url}/to-https`, opts('GET')), /another origin \(https:\/\/127\.0\.0\.1:\d+ instead of http:\/\/127\.0\.0\.1:\d+/);
  });

  it('https → http is refused as a downgrade, even on the same host (the rule, checked without TLS)', () => {
    const hop = { crm: 'UISP', endpoint: 'GET /nms', configured: 'https://crm.example/nms?token=x', current: 'https://crm.example/nms?token=x', hop: 0 };
    const downgrade = redirectRefusal({ ...hop, next: 'http://crm.example/nms' });
    assert.match(downgrade ?? '', /^UISP: GET \/nms → redirected from https:\/\/crm\.example\/nms\?token=\*\*\* to http:\/\/crm\.example\/nms: refusing to downgrade https to http/);
    assert.equal(redirectRefusal({ ...hop, next: 'https://crm.example/nms/v2' }), undefined);
    assert.match(redirectRefusal({ ...hop, next: 'https://crm.example:8443/nms' }) ?? '', /another origin \(https:\/\/crm\.example:8443 instead of https:\/\/crm\.example;/);
    assert.match(redirectRefusal({ ...hop, hop: 5, next: 'https://crm.example/nms' }) ?? '', /more than 5 redirects/);
  });

  it('same-origin redirects are followed: 302 turns POST into GET without the body; 307/308 keep method and body', async () => {
    const r302 = (await requestJson(`${a.url}/same302`, opts('POST'))) as Record<string, unknown>;
    assert.deepEqual(r302, { from: 'A', path: '/landing', method: 'GET', body: '', token: true });
    const r307 = (await requestJson(`${a.url}/same307`, opts('POST'))) as Record<string, unknown>;
    assert.deepEqual(r307, { from: 'A', path: '/landing307', method: 'POST', body: BODY_SECRET, token: true });
    const r308 = (await requestJson(`${a.url}/same308`, opts('GET'))) as Record<string, unknown>;
    assert.deepEqual(r308, { from: 'A', path: '/landing308', method: 'GET', body: '', token: true });
    assertNothingReachedB();
  });

  it('a redirect loop stops after 5 hops with a clear error', async () => {
    const before = a.seen.length;
    await assert.rejects(requestJson(`${a.url}/loop`, opts('GET')), /→ redirected from .*\/loop to .*\/loop: more than 5 redirects; fix the configured URL/);
    assert.equal(a.seen.length - before, 6);
  });

  it('a real integration (UISP, X-Auth-Token) whose URL redirects elsewhere fails and leaves B untouched', async (t) => {
    const conf = crmConfig(`
[uisp_integration]
enable_uisp = true
token = "${SECRET}"
url = "${a.url}"
site = "Tower"
`);
    await assert.rejects(runUisp(conf, runOpts(tempDir(t))), (err: unknown) => {
      assert.ok(err instanceof IntegrationError);
      assert.match(err.message, /^UISP: GET \/nms\/api\/v2\.1\/(\w|-)+ → redirected from http:\/\/127\.0\.0\.1:\d+\/nms\S* to http:\/\/127\.0\.0\.2:\d+\/nms\S*: refusing/);
      assert.match(err.message, /check uisp_integration\.url$/);
      return true;
    });
    assertNothingReachedB();
  });
});

describe('CRM response size cap', () => {
  it('a body past maxResponseBytes is refused while streaming', async () => {
    await assert.rejects(requestJson(`${a.url}/big`, { ...opts('GET'), maxResponseBytes: 1024 * 1024 }), (err: unknown) => {
      assert.ok(err instanceof IntegrationError);
      assert.match(err.message, /^TestCRM: GET \/big → response larger than 1 MiB; refused .*check that the configured URL points at the CRM API$/);
      return true;
    });
  });
  it('the same body under the cap is read (default cap 256 MiB)', async () => {
    assert.deepEqual(await requestJson(`${a.url}/big`, opts('GET')), {});
  });
  it('a declared Content-Length past the cap is refused before reading', async () => {
    await assert.rejects(requestJson(`${a.url}/plain`, { ...opts('GET'), maxResponseBytes: 10 }), /response larger than 10 bytes; refused/);
  });
});

it('fetch errors that quote a URL with credentials or a header value never carry the secret', () => {
  const a = scrubErrorText('Request cannot be constructed from a URL that includes credentials: https://user:PASSWORD123@crm.example/api?api_key=KEY456&x=1');
  assert.ok(!/PASSWORD123|KEY456/.test(a), a);
  assert.match(a, /https:\/\/crm\.example\/api\?api_key=\*\*\*&x=1/);
  const b = scrubErrorText('Headers.append: "TOKEN-WITH\nNEWLINE-789" is an invalid header value.');
  assert.ok(!/TOKEN|789/.test(b), b);
  assert.match(b, /invalid header value/);
});
