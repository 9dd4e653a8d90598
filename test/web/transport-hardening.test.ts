// test-gate: shared (CPU only; see test/support/gate.ts)
/**
 * The web server's transport guards (issue 14): the Host check against DNS rebinding
 * (`[web] allowed_hosts`), cross-site refusal of every state-changing request, the CSP header, the
 * websocket caps and slow-consumer drop, and /metrics behind `[web] metrics_token` or loopback.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { hostname, networkInterfaces } from 'node:os';
import { join } from 'node:path';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { loadConfig } from '../../lib/config/load.ts';
import { ChannelHub, ChannelRegistry, type WsLike } from '../../lib/web/channels.ts';
import { canonicalHost, HostAllowList, hostNames, isLoopbackHost } from '../../lib/web/hostCheck.ts';
import { crossOriginProblem } from '../../lib/web/originCheck.ts';
import { tokenMatches } from '../../lib/util/tokens.ts';
import { isLoopbackAddress, metricsExposureWarning } from '../../lib/web/routes/metrics.ts';
import { buildWebApp, startWebServer, type WebServer } from '../../lib/web/server.ts';
import { webConfig } from '../support/configs.ts';
import { capturingLogger } from '../support/log.ts';
import { fakeContext, type FakeContext } from '../support/context.ts';
import { Client, rawRequest } from '../support/http.ts';
import { seedUsers, setupUsers } from '../support/users.ts';
import { sleep, waitFor } from '../support/wait.ts';
import { tempDir } from '../support/workspace.ts';
import { withHarness } from './helpers.ts';

// ---------- small tools ----------

interface Rec {
  level: number;
  msg: string;
  [k: string]: unknown;
}

interface Server {
  base: string;
  port: number;
  usersFile: string;
  configPath: string;
  ctx: FakeContext;
  server: WebServer;
  records: Rec[];
  close(): Promise<void>;
}

/** lqosd's web server on a fake context whose log is kept; `extra` is appended to webConfig. */
async function startServer(extra = '', opts: { host?: string; wsIntervalMs?: number } = {}): Promise<Server> {
  const dir = tempDir('lqos-transport-');
  const configPath = join(dir, 'lqos.conf');
  writeFileSync(configPath, webConfig(dir, extra));
  let config = loadConfig({ path: configPath }).config;
  const { log, records } = capturingLogger();
  const ctx = fakeContext({
    configPath,
    log,
    config: () => config,
    reloadConfig: async () => {
      config = loadConfig({ path: configPath }).config;
    },
    appliedPlan: () => undefined,
  });
  const server = await startWebServer(ctx, { host: opts.host ?? '127.0.0.1', port: 0, webRoot: join(dir, 'no-webui'), wsIntervalMs: opts.wsIntervalMs });
  const port = Number(new URL(server.address).port);
  return {
    base: `http://127.0.0.1:${port}`,
    port,
    usersFile: join(dir, 'state', 'lqusers.toml'),
    configPath,
    ctx,
    server,
    records,
    close: async () => {
      await server.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

async function withServer(fn: (s: Server) => Promise<void>, extra = '', opts: { host?: string; wsIntervalMs?: number } = {}) {
  const s = await startServer(extra, opts);
  try {
    await fn(s);
  } finally {
    await s.close();
  }
}

/** A request with headers fetch() will not let us set (Host, Sec-Fetch-Site). */
function raw(port: number, method: string, path: string, headers: Record<string, string>, body?: string) {
  return rawRequest(`http://127.0.0.1:${port}${path}`, { method, headers, rawBody: body });
}

interface WsClient {
  on(event: 'message', l: (data: Buffer) => void): void;
  on(event: 'open', l: () => void): void;
  on(event: 'close', l: (code: number, reason: Buffer) => void): void;
  on(event: 'error', l: (err: Error) => void): void;
  on(event: 'unexpected-response', l: (req: unknown, res: { statusCode: number }) => void): void;
  send(text: string): void;
  close(): void;
  pause(): void;
  resume(): void;
}
type WsCtor = new (url: string, opts?: { headers?: Record<string, string> }) => WsClient;
const WebSocket = createRequire(import.meta.url)('ws') as WsCtor;

/** A websocket client that keeps counts, not messages (the big payloads would distort the RSS). */
function ws(base: string, cookie: string, headers: Record<string, string> = {}) {
  const socket = new WebSocket(`${base.replace(/^http/, 'ws')}/api/ws`, { headers: { cookie, ...headers } });
  const state = { received: 0, bytes: 0, channels: new Map<string, number>(), closed: undefined as number | undefined, reason: '', last: undefined as any };
  socket.on('message', (data) => {
    state.received++;
    state.bytes += data.length;
    const head = data.subarray(0, 64).toString();
    const channel = /^\{"channel":"([^"]+)"/.exec(head)?.[1] ?? '?';
    state.channels.set(channel, (state.channels.get(channel) ?? 0) + 1);
    if (data.length < 64 * 1024) state.last = JSON.parse(data.toString());
  });
  socket.on('close', (code, reason) => {
    state.closed = code;
    state.reason = reason.toString();
  });
  const opened = new Promise<number>((resolve) => {
    socket.on('open', () => resolve(101));
    socket.on('unexpected-response', (_req, res) => resolve(res.statusCode));
    socket.on('error', () => resolve(0));
  });
  return { socket, state, opened, count: (channel: string) => state.channels.get(channel) ?? 0 };
}

// ---------- Host check (DNS rebinding), pure ----------

test('canonicalHost: ports, case, IPv6 forms and trailing dots normalised; userinfo/path tricks rejected', () => {
  assert.equal(canonicalHost('LocalHost:9123'), 'localhost');
  assert.equal(canonicalHost('[0:0:0:0:0:0:0:1]:80'), '[::1]');
  assert.equal(canonicalHost('shaper.ISP.net.'), 'shaper.isp.net');
  assert.equal(canonicalHost('2130706433'), '127.0.0.1', 'numeric IPv4 as browsers read it');
  assert.equal(canonicalHost('evil.example@localhost'), undefined);
  assert.equal(canonicalHost('localhost/evil'), undefined);
  assert.equal(canonicalHost('localhost#x'), undefined);
  assert.equal(canonicalHost('a b'), undefined);
  assert.equal(canonicalHost(''), undefined);
  assert.equal(canonicalHost(undefined), undefined);
  for (const h of ['localhost', 'app.localhost', '127.0.0.1', '127.8.9.10', '[::1]', '[::ffff:7f00:1]']) assert.ok(isLoopbackHost(h), h);
  for (const h of ['localhost.evil.example', '128.0.0.1', '[::2]', '10.0.0.1']) assert.ok(!isLoopbackHost(h), h);
});

test('hostNames: bind address (unless wildcard), interfaces (IPv6 bracketed, zone dropped), host name and short form, allowed_hosts', () => {
  const names = hostNames({
    bindAddress: '0.0.0.0',
    hostname: 'shaper01.isp.example',
    interfaceAddresses: ['192.0.2.2', 'fd00::2', 'fe80::fc:ff:fe00:1%eth0'],
    allowedHosts: ['UI.Example.NET:443', 'lqos.lan'],
  });
  assert.deepEqual([...names].sort(), ['192.0.2.2', '[fd00::2]', '[fe80::fc:ff:fe00:1]', 'lqos.lan', 'shaper01', 'shaper01.isp.example', 'ui.example.net']);
  assert.ok(!hostNames({ bindAddress: '::', hostname: 'x', interfaceAddresses: [], allowedHosts: [] }).has('[::]'));
  assert.ok(hostNames({ bindAddress: '198.51.100.7', hostname: 'x', interfaceAddresses: [], allowedHosts: [] }).has('198.51.100.7'));
});

test('HostAllowList: interface addresses re-read on a miss (at most once a second) and every 5 s', () => {
  let now = 1_000_000;
  let addresses = ['192.0.2.2'];
  let reads = 0;
  const list = new HostAllowList({
    config: () => ({ bindAddress: '0.0.0.0', allowedHosts: [] }),
    readAddresses: () => (reads++, addresses),
    hostname: () => 'shaper',
    now: () => now,
  });
  assert.equal(list.check('192.0.2.2:9123').ok, true);
  assert.equal(list.check('192.0.2.2').ok, true);
  assert.equal(reads, 1, 'hits do not re-read');
  // A VLAN address appears at runtime.
  addresses = ['192.0.2.2', '203.0.113.9'];
  now += 200;
  assert.equal(list.check('203.0.113.9').ok, false, 'a miss within 1 s of the last read does not re-read');
  now += 1000;
  assert.equal(list.check('203.0.113.9').ok, true, 'a miss re-reads the interfaces');
  assert.equal(reads, 2);
  const bad = list.check('evil.example:9123');
  assert.equal(bad.ok, false);
  assert.ok(!bad.ok && /"evil\.example"/.test(bad.message) && /\[web\] allowed_hosts/.test(bad.message), !bad.ok ? bad.message : '');
  assert.equal(list.check(undefined).ok, false);
  assert.equal(list.check('localhost').ok, true);
  assert.equal(list.check('SHAPER').ok, true, 'the host name');
});

// ---------- Host check over HTTP ----------

test('foreign Host refused (421 bad_host naming the host and allowed_hosts) on API, UI, /metrics and the websocket; own names served', async () => {
  await withServer(async (s) => {
    await seedUsers(s);
    for (const path of ['/api/auth/status', '/', '/metrics', '/no/such/page', '/api/nope']) {
      const r = await raw(s.port, 'GET', path, { host: 'evil.example:9123' });
      assert.equal(r.status, 421, `${path} → ${r.status}`);
      assert.equal(r.json.error, 'bad_host');
      assert.match(r.json.message, /"evil\.example"/);
      assert.match(r.json.message, /\[web\] allowed_hosts/);
    }
    // A rebinding page's write is refused before anything runs.
    const post = await raw(s.port, 'POST', '/api/auth/login', { host: 'evil.example', 'content-type': 'application/json' }, JSON.stringify({ username: 'admin', password: 'x' }));
    assert.equal(post.status, 421);
    const c = ws(s.base, '', { host: 'evil.example' });
    assert.equal(await c.opened, 421);

    const own = [`127.0.0.1:${s.port}`, 'localhost:1', '[::1]', 'LOCALHOST', hostname()];
    const iface = Object.values(networkInterfaces()).flatMap((l) => l ?? []).find((a) => !a.internal);
    if (iface) own.push(iface.family === 'IPv6' ? `[${iface.address.replace(/%.*/, '')}]:9123` : `${iface.address}:9123`);
    for (const host of own) {
      const r = await raw(s.port, 'GET', '/api/auth/status', { host });
      assert.equal(r.status, 200, `Host ${host} → ${r.status} ${r.text}`);
    }
  });
});

test('[web] allowed_hosts admits extra names (port ignored) and a config reload applies without restart', async () => {
  await withServer(async (s) => {
    assert.equal((await raw(s.port, 'GET', '/api/auth/status', { host: 'lqos.isp.example:8443' })).status, 200);
    assert.equal((await raw(s.port, 'GET', '/api/auth/status', { host: 'LQOS.isp.example' })).status, 200);
    assert.equal((await raw(s.port, 'GET', '/api/auth/status', { host: 'shaper.isp.example' })).status, 421);
    writeFileSync(s.configPath, readFileSync(s.configPath, 'utf8').replace('allowed_hosts = ["lqos.isp.example"]', 'allowed_hosts = ["shaper.isp.example"]'));
    await s.ctx.reloadConfig();
    assert.equal((await raw(s.port, 'GET', '/api/auth/status', { host: 'shaper.isp.example' })).status, 200);
    assert.equal((await raw(s.port, 'GET', '/api/auth/status', { host: 'lqos.isp.example' })).status, 421);
  }, '[web]\nallowed_hosts = ["lqos.isp.example"]\n');
});

test('Host check through app.inject: the bind address counts as a name unless it is a wildcard', async () => {
  await withServer(async (s) => {
    const built = await buildWebApp(s.ctx, { host: '198.51.100.7', webRoot: '/nonexistent' });
    try {
      assert.equal((await built.app.inject({ url: '/api/auth/status', headers: { host: '198.51.100.7:9123' } })).statusCode, 200);
      const r = await built.app.inject({ url: '/api/auth/status', headers: { host: '198.51.100.8:9123' } });
      assert.equal(r.statusCode, 421);
      assert.equal(r.json().error, 'bad_host');
    } finally {
      built.hub.stop();
      await built.app.close();
    }
  });
});

// ---------- Origin check ----------

test('crossOriginProblem: own origin and no Origin pass; other origins, "null" and Sec-Fetch-Site cross-site/same-site refused', () => {
  const base = { protocol: 'http', host: '192.0.2.2:9123', fetchSite: undefined };
  assert.equal(crossOriginProblem({ ...base, origin: undefined }), undefined);
  assert.equal(crossOriginProblem({ ...base, origin: 'http://192.0.2.2:9123' }), undefined);
  assert.equal(crossOriginProblem({ protocol: 'https', host: 'lqos.example', fetchSite: 'same-origin', origin: 'https://lqos.example:443' }), undefined);
  assert.match(crossOriginProblem({ ...base, origin: 'http://evil.example' })!, /origin "http:\/\/evil\.example"/);
  assert.ok(crossOriginProblem({ ...base, origin: 'https://192.0.2.2:9123' }), 'another scheme is another origin');
  assert.ok(crossOriginProblem({ ...base, origin: 'http://192.0.2.2:9124' }), 'another port is another origin');
  assert.ok(crossOriginProblem({ ...base, origin: 'null' }));
  assert.match(crossOriginProblem({ ...base, origin: undefined, fetchSite: 'cross-site' })!, /Sec-Fetch-Site: cross-site/);
  assert.ok(crossOriginProblem({ ...base, origin: undefined, fetchSite: 'same-site' }));
  assert.equal(crossOriginProblem({ ...base, origin: undefined, fetchSite: 'none' }), undefined);
});

test('bodyless cross-origin POST /api/auth/logout with a valid session: 403, the session lives on', async () => {
  await withHarness(async (h) => {
    const { admin } = await setupUsers(h);
    const r = await admin.req('POST', '/api/auth/logout', undefined, { origin: 'http://evil.example' });
    assert.equal(r.status, 403, r.text);
    assert.equal(r.json.error, 'cross_origin');
    assert.match(r.json.message, /evil\.example/);
    assert.equal(r.setCookie.length, 0, 'no cookie cleared');
    assert.equal((await admin.get('/api/users')).status, 200, 'still logged in');
    // Sec-Fetch-Site alone (no Origin) is enough to refuse.
    assert.equal((await admin.req('POST', '/api/auth/logout', undefined, { 'sec-fetch-site': 'cross-site' })).status, 403);
    assert.equal((await admin.req('POST', '/api/auth/logout', undefined, { 'sec-fetch-site': 'same-site' })).status, 403);
    assert.equal((await admin.get('/api/users')).status, 200, 'still logged in');
    // The UI's own requests (same origin) and scripts without Origin pass.
    const ack = h.ctx.urgent.submit({ source: 'test', severity: 'error', code: 'X', message: 'x' });
    assert.equal((await admin.req('POST', `/api/urgent/${ack.id}/ack`, undefined, { origin: h.base, 'sec-fetch-site': 'same-origin' })).status, 200);
    assert.equal((await admin.post('/api/auth/logout')).status, 200);
    assert.equal((await admin.get('/api/users')).status, 401);
  });
});

test('every mutating route refuses a cross-origin request from a logged-in admin, and nothing changes', async () => {
  await withHarness(async (h) => {
    const { admin } = await setupUsers(h);
    h.ctx.urgent.submit({ source: 'test', severity: 'error', code: 'KEEP', message: 'must survive' });
    const files = [h.configPath, h.devicesPath, h.networkPath, h.usersFile];
    const before = files.map((f) => readFileSync(f, 'utf8'));
    const urgentBefore = JSON.stringify(h.ctx.urgent.items);
    const mutating = h.server.routes.filter((r) => ['POST', 'PUT', 'PATCH', 'DELETE'].includes(r.method));
    assert.ok(mutating.length >= 12, `only ${mutating.length} mutating routes`);
    for (const r of mutating) {
      const path = r.path.replace(/:id/, '1').replace(/:name/, 'viewer');
      const body = r.method === 'DELETE' ? undefined : { username: 'x', password: 'whatever-123', circuits: [], config: {} };
      const res = await admin.req(r.method, path, body, { origin: 'http://evil.example' });
      assert.equal(res.status, 403, `${r.method} ${r.path} → ${res.status} ${res.text}`);
      assert.equal(res.json.error, 'cross_origin', `${r.method} ${r.path}`);
    }
    assert.deepEqual(files.map((f) => readFileSync(f, 'utf8')), before, 'no file changed');
    assert.equal(JSON.stringify(h.ctx.urgent.items), urgentBefore, 'urgent issues unchanged');
    assert.equal((await admin.get('/api/users')).json.users.length, 2);
  });
});

// ---------- Content-Security-Policy ----------

test('every response carries the Content-Security-Policy', async () => {
  await withServer(async (s) => {
    for (const [path, host] of [['/', undefined], ['/api/auth/status', undefined], ['/api/nope', undefined], ['/metrics', undefined], ['/', 'evil.example']] as const) {
      const r = await raw(s.port, 'GET', path, { host: host ?? `127.0.0.1:${s.port}` });
      const csp = String(r.headers['content-security-policy'] ?? '');
      const d = Object.fromEntries(csp.split(';').map((p) => p.trim().split(/\s+/)).map(([k, ...v]) => [k, v.join(' ')]));
      assert.equal(d['default-src'], "'self'", `${path}: ${csp}`);
      assert.equal(d['script-src'], "'self'");
      assert.equal(d['style-src'], "'self' 'unsafe-inline'");
      assert.equal(d['img-src'], "'self' data:");
      assert.equal(d['object-src'], "'none'");
      assert.equal(d['frame-ancestors'], "'none'");
      assert.equal(d['base-uri'], "'self'");
      assert.equal(d['connect-src'], host ? "'self' ws://evil.example" : `'self' ws://127.0.0.1:${s.port}`);
    }
  });
});

// ---------- websocket ----------

/** A fake socket for the hub's unit tests. */
function fakeSocket(): WsLike & { sent: string[]; closedWith?: [number | undefined, string | undefined]; fire(e: string, ...a: unknown[]): void } {
  const listeners = new Map<string, ((...a: any[]) => void)[]>();
  const s = {
    readyState: 1,
    bufferedAmount: 0,
    sent: [] as string[],
    closedWith: undefined as [number | undefined, string | undefined] | undefined,
    send(d: string) {
      this.sent.push(d);
    },
    close(code?: number, reason?: string) {
      this.closedWith = [code, reason];
      this.readyState = 3;
      this.fire('close');
    },
    on(e: string, l: (...a: any[]) => void) {
      listeners.set(e, [...(listeners.get(e) ?? []), l]);
      return this;
    },
    fire(e: string, ...a: unknown[]) {
      for (const l of listeners.get(e) ?? []) l(...a);
    },
  };
  return s;
}

test('hub caps: connections in all, per session and per user, subscriptions per socket; slow consumers dropped (unit, fake sockets)', async () => {
  const { log, records } = capturingLogger();
  const reg = new ChannelRegistry();
  let produced = 0;
  for (const n of ['a', 'b', 'c']) reg.register(n, () => (produced++, { n }));
  const hub = new ChannelHub(reg, log, 60_000, { maxConnections: 3, maxPerSession: 2, maxSubscriptions: 2, maxBufferedBytes: 1000 });
  const client = (sessionId: string) => ({ sessionId, user: `u-${sessionId}`, sessionValid: () => true });
  const socks = [fakeSocket(), fakeSocket(), fakeSocket(), fakeSocket()];
  const refused = fakeSocket();
  assert.equal(hub.attach(socks[0], client('s1')), true);
  assert.equal(hub.attach(socks[1], client('s1')), true);
  assert.equal(hub.attach(refused, client('s1')), false, 'third socket of one session');
  assert.equal(refused.closedWith?.[0], 1008);
  assert.match(refused.closedWith?.[1] ?? '', /this session already has 2 websockets/);
  assert.equal(hub.attach(socks[2], client('s2')), true);
  assert.equal(hub.attach(socks[3], client('s3')), false, 'fourth socket in all');
  assert.equal(socks[3].closedWith?.[0], 1008);
  assert.match(socks[3].closedWith?.[1] ?? '', /websockets/);
  assert.ok(records.some((r) => r.level === 40 && /websocket refused/.test(r.msg)));
  socks[0].close();
  assert.equal(hub.connectionCount, 2, 'a closed socket frees its slot');

  // Per user over all their logins: one account with many sessions cannot take every slot.
  const perUser = new ChannelHub(reg, log, 60_000, { maxConnections: 10, maxPerSession: 2, maxPerUser: 3 });
  const viewer = (sessionId: string) => ({ sessionId, user: 'viewer', sessionValid: () => true });
  assert.equal(perUser.attach(fakeSocket(), viewer('v1')), true);
  assert.equal(perUser.attach(fakeSocket(), viewer('v1')), true);
  assert.equal(perUser.attach(fakeSocket(), viewer('v2')), true);
  const fourth = fakeSocket();
  assert.equal(perUser.attach(fourth, viewer('v3')), false, 'a fourth socket of the same user from a new login');
  assert.match(fourth.closedWith?.[1] ?? '', /user viewer already has 3 websockets open over all logins/);
  assert.equal(perUser.attach(fakeSocket(), { sessionId: 'a1', user: 'admin', sessionValid: () => true }), true, 'another user still gets one');
  perUser.stop();

  socks[1].fire('message', Buffer.from(JSON.stringify({ subscribe: ['a', 'b', 'c'] })), false);
  await waitFor(() => socks[1].sent.some((m) => m.startsWith('{"channel":"b"')), 2000, 'the initial payloads');
  assert.ok(socks[1].sent.some((m) => /too_many_subscriptions/.test(m)));
  assert.ok(!socks[1].sent.some((m) => m.startsWith('{"channel":"c"')));
  socks[2].fire('message', Buffer.from(JSON.stringify({ subscribe: ['a'] })), false);
  await waitFor(() => socks[2].sent.some((m) => m.startsWith('{"channel":"a"')), 2000, 'a for the second socket');
  assert.equal(produced, 2, 'a and b produced once each, shared by both sockets');

  // A consumer with more than the bound queued is dropped (1013) and logged; the other keeps receiving.
  socks[1].bufferedAmount = 5000;
  await hub.tick();
  assert.equal(socks[1].closedWith?.[0], 1013);
  assert.equal(socks[1].closedWith?.[1], 'too slow');
  assert.ok(records.some((r) => r.level === 40 && /dropped: it does not read fast enough/.test(r.msg) && r.user === 'u-s1'));
  const before = socks[2].sent.length;
  await hub.tick();
  assert.equal(socks[2].sent.length, before + 1);
  hub.stop();
});

test('websocket over HTTP: the 9th socket of one session is closed with 1008; payloads are produced once for many subscribers', async () => {
  await withServer(async (s) => {
    let produced = 0;
    s.server.channels.register('counted', () => ({ n: ++produced }));
    const admin = await seedUsers(s);
    const clients = Array.from({ length: 8 }, () => ws(s.base, admin.cookie));
    for (const c of clients) assert.equal(await c.opened, 101);
    const ninth = ws(s.base, admin.cookie);
    assert.equal(await ninth.opened, 101);
    await waitFor(() => ninth.state.closed !== undefined, 5000, 'the 9th socket to be closed');
    assert.equal(ninth.state.closed, 1008);
    assert.match(ninth.state.reason, /this session already has 8 websockets/);
    // Every socket subscribes (twice, and toggles): the producer still runs once (one tick is 60 s here).
    for (const c of clients) c.socket.send(JSON.stringify({ subscribe: ['counted'] }));
    await waitFor(() => clients.every((c) => c.count('counted') === 1), 5000, 'every socket to get the payload');
    for (let i = 0; i < 5; i++) {
      for (const c of clients) c.socket.send(JSON.stringify({ unsubscribe: ['counted'] }));
      for (const c of clients) c.socket.send(JSON.stringify({ subscribe: ['counted'] }));
    }
    await waitFor(() => clients.every((c) => c.count('counted') === 6), 5000, 'the re-subscriptions to be answered');
    assert.equal(produced, 1, 'one production shared by 8 sockets and 48 subscriptions');
    for (const c of clients) assert.deepEqual(c.state.last, { channel: 'counted', data: { n: 1 } });
    // A socket closed frees its slot.
    clients[0].socket.close();
    await waitFor(() => clients[0].state.closed !== undefined, 5000, 'close');
    const again = ws(s.base, admin.cookie);
    assert.equal(await again.opened, 101);
    await sleep(300);
    assert.equal(again.state.closed, undefined);
    for (const c of [...clients, again]) c.socket.close();
  }, '', { wsIntervalMs: 60_000 });
});

const gc = (() => {
  setFlagsFromString('--expose-gc');
  return runInNewContext('gc') as () => void;
})();

test('a websocket reader that stops reading is dropped; a normal one keeps receiving; RSS stays flat', { timeout: 180_000 }, async () => {
  await withServer(async (s) => {
    const MiB = 1024 * 1024;
    // 2 MiB per push every 100 ms: 20 MiB/s would pile up for a reader that never reads.
    const blob = { blob: 'x'.repeat(2 * MiB) };
    let produced = 0;
    s.server.channels.register('bulk', () => (produced++, blob));
    const admin = await seedUsers(s);
    const normal = ws(s.base, admin.cookie);
    const slow = ws(s.base, admin.cookie);
    assert.equal(await normal.opened, 101);
    assert.equal(await slow.opened, 101);
    normal.socket.send(JSON.stringify({ subscribe: ['bulk'] }));
    slow.socket.send(JSON.stringify({ subscribe: ['bulk'] }));
    await waitFor(() => slow.count('bulk') >= 1 && normal.count('bulk') >= 1, 20_000, 'both readers to get data');
    slow.socket.pause(); // stops reading from the kernel: its receive window fills, then lqosd's send queue
    gc();
    const rssBefore = process.memoryUsage().rss;
    const t0 = Date.now();

    await waitFor(() => s.records.some((r) => /dropped: it does not read fast enough/.test(r.msg)), 60_000, 'the slow reader to be dropped', 100);
    const droppedAfterMs = Date.now() - t0;
    const line = s.records.find((r) => /dropped/.test(r.msg))!;
    assert.equal(line.level, 40);
    assert.equal(line.user, 'admin');
    assert.ok((line.queuedBytes as number) > 4 * MiB);

    // The normal reader keeps receiving: 60 more pushes (120 MiB the slow one would have queued).
    const mark = normal.count('bulk');
    await waitFor(() => normal.count('bulk') >= mark + 60, 120_000, '60 more pushes to the normal reader', 100);
    assert.equal(normal.state.closed, undefined);
    gc();
    const growth = process.memoryUsage().rss - rssBefore;
    console.log(`slow reader dropped after ${droppedAfterMs} ms; RSS growth ${(growth / MiB).toFixed(1)} MiB over ${normal.count('bulk') - mark} pushes of 2 MiB; producer ran ${produced}× for 2 readers`);
    assert.ok(growth < 64 * MiB, `RSS grew by ${(growth / MiB).toFixed(1)} MiB`);
    assert.ok(produced <= normal.count('bulk') + 2, 'one production per tick, not one per reader');

    // The dropped reader's connection is really gone: once it reads again it sees the end.
    slow.socket.resume();
    await waitFor(() => slow.state.closed !== undefined, 60_000, 'the slow reader to see its connection closed', 100);
    normal.socket.close();
  }, '', { wsIntervalMs: 100 });
});

// ---------- /metrics ----------

test('/metrics without metrics_token: loopback clients only (403 for others, naming metrics_token)', async () => {
  await withServer(async (s) => {
    const local = await new Client(s.base).get('/metrics');
    assert.equal(local.status, 200);
    assert.match(local.text, /lqos_shaped_circuits/);
    const built = await buildWebApp(s.ctx, { host: '0.0.0.0', webRoot: '/nonexistent' });
    try {
      const far = await built.app.inject({ url: '/metrics', remoteAddress: '192.0.2.50', headers: { host: '127.0.0.1:9123' } });
      assert.equal(far.statusCode, 403);
      assert.equal(far.json().error, 'forbidden');
      assert.match(far.json().message, /metrics_token/);
      const v6 = await built.app.inject({ url: '/metrics', remoteAddress: '::1', headers: { host: '127.0.0.1:9123' } });
      assert.equal(v6.statusCode, 200);
      const mapped = await built.app.inject({ url: '/metrics', remoteAddress: '::ffff:127.0.0.1', headers: { host: '127.0.0.1:9123' } });
      assert.equal(mapped.statusCode, 200);
    } finally {
      built.hub.stop();
      await built.app.close();
    }
  });
});

const TOKEN = 'prom-scrape-token-7f3a9c1e';

test('/metrics with metrics_token: Bearer token required from everywhere (401 otherwise), never echoed', async () => {
  await withServer(async (s) => {
    const c = new Client(s.base);
    const none = await c.get('/metrics');
    assert.equal(none.status, 401);
    assert.equal(none.json.error, 'unauthorized');
    assert.match(none.headers.get('www-authenticate') ?? '', /^Bearer/);
    assert.match(none.json.message, /metrics_token/);
    assert.ok(!none.text.includes(TOKEN));
    for (const auth of [`Bearer ${TOKEN}x`, `Bearer ${TOKEN.slice(0, -1)}`, `Basic ${TOKEN}`, TOKEN, 'Bearer ']) {
      assert.equal((await c.req('GET', '/metrics', undefined, { authorization: auth })).status, 401, auth);
    }
    const ok = await c.req('GET', '/metrics', undefined, { authorization: `Bearer ${TOKEN}` });
    assert.equal(ok.status, 200);
    assert.match(ok.text, /^lqos_shaped_circuits 0$/m);
    const built = await buildWebApp(s.ctx, { host: '0.0.0.0', webRoot: '/nonexistent' });
    try {
      const far = await built.app.inject({ url: '/metrics', remoteAddress: '192.0.2.50', headers: { host: '127.0.0.1', authorization: `bearer ${TOKEN}` } });
      assert.equal(far.statusCode, 200, 'a remote Prometheus with the token');
      const farNo = await built.app.inject({ url: '/metrics', remoteAddress: '192.0.2.50', headers: { host: '127.0.0.1' } });
      assert.equal(farNo.statusCode, 401);
    } finally {
      built.hub.stop();
      await built.app.close();
    }
    assert.equal(tokenMatches(TOKEN, TOKEN), true);
    assert.equal(tokenMatches(TOKEN, `${TOKEN} `), false);
    assert.equal(tokenMatches(TOKEN, ''), false);
    // A new token applies on reload, without a restart: the old one stops working.
    writeFileSync(s.configPath, readFileSync(s.configPath, 'utf8').replace(TOKEN, `${TOKEN}-2`));
    await s.ctx.reloadConfig();
    assert.equal((await c.req('GET', '/metrics', undefined, { authorization: `Bearer ${TOKEN}` })).status, 401, 'old token after reload');
    assert.equal((await c.req('GET', '/metrics', undefined, { authorization: `Bearer ${TOKEN}-2` })).status, 200, 'new token after reload');
  }, `[web]\nmetrics_token = "${TOKEN}"\n`);
});

test('one warning at start when listening beyond loopback without metrics_token', async () => {
  assert.equal(metricsExposureWarning('127.0.0.1', ''), undefined);
  assert.equal(metricsExposureWarning('::1', ''), undefined);
  assert.equal(metricsExposureWarning('0.0.0.0', TOKEN), undefined);
  assert.match(metricsExposureWarning('0.0.0.0', '')!, /set \[web\] metrics_token/);
  assert.ok(isLoopbackAddress('127.0.0.1') && isLoopbackAddress('::ffff:127.0.0.2') && !isLoopbackAddress('192.0.2.1') && !isLoopbackAddress(undefined));
  await withServer(async (s) => {
    const warnings = s.records.filter((r) => r.level === 40 && /metrics_token/.test(r.msg));
    assert.equal(warnings.length, 1, JSON.stringify(warnings));
    assert.match(warnings[0].msg, /listens on 0\.0\.0\.0/);
  }, '', { host: '0.0.0.0' });
  await withServer(async (s) => {
    assert.equal(s.records.filter((r) => /metrics_token/.test(r.msg)).length, 0);
  });
  await withServer(async (s) => {
    assert.equal(s.records.filter((r) => /metrics_token/.test(r.msg)).length, 0);
  }, `[web]\nmetrics_token = "${TOKEN}"\n`, { host: '0.0.0.0' });
});

test('behind a reverse proxy on this host (trust_proxy): Host, Origin and the /metrics client are the forwarded ones', async () => {
  await withServer(async (s) => {
    const fwd = { host: `127.0.0.1:${s.port}`, 'x-forwarded-host': 'lqos.isp.example', 'x-forwarded-proto': 'https' };
    assert.equal((await raw(s.port, 'GET', '/api/auth/status', fwd)).status, 200);
    const foreign = await raw(s.port, 'GET', '/api/auth/status', { ...fwd, 'x-forwarded-host': 'evil.example' });
    assert.equal(foreign.status, 421, 'the forwarded Host is checked');
    // The browser's origin is the proxy's https origin: accepted; the same host over http is another origin.
    const same = await raw(s.port, 'POST', '/api/auth/logout', { ...fwd, origin: 'https://lqos.isp.example' });
    assert.notEqual(same.status, 403, same.text);
    assert.equal((await raw(s.port, 'POST', '/api/auth/logout', { ...fwd, origin: 'http://lqos.isp.example' })).status, 403);
    // A remote scraper through the proxy is not "this host".
    const far = await raw(s.port, 'GET', '/metrics', { ...fwd, 'x-forwarded-for': '192.0.2.77' });
    assert.equal(far.status, 403);
    assert.equal((await raw(s.port, 'GET', '/metrics', { host: `127.0.0.1:${s.port}` })).status, 200);
  }, '[web]\ntrust_proxy = true\nallowed_hosts = ["lqos.isp.example"]\n');
});
