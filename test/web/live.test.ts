// test-gate: shared (CPU only; see test/support/gate.ts)
/** Websocket channels, /metrics and static UI serving. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { Client } from '../support/http.ts';
import { UserStore } from '../../lib/web/users.ts';
import { setupUsers, VIEWER } from '../support/users.ts';
import { waitFor } from '../support/wait.ts';
import { withHarness } from './helpers.ts';

interface WsClient {
  on(event: 'message', l: (data: Buffer) => void): void;
  on(event: 'open', l: () => void): void;
  on(event: 'close', l: (code: number) => void): void;
  on(event: 'error', l: (err: Error) => void): void;
  on(event: 'unexpected-response', l: (req: unknown, res: { statusCode: number }) => void): void;
  send(text: string): void;
  close(): void;
}
type WsCtor = new (url: string, opts?: { headers?: Record<string, string> }) => WsClient;
// `ws` ships no types; only this small surface is used.
const WebSocket = createRequire(import.meta.url)('ws') as WsCtor;

interface Msg {
  channel: string;
  data: any;
}

function connect(base: string, cookie: string, headers: Record<string, string> = {}) {
  const ws = new WebSocket(base.replace(/^http/, 'ws') + '/api/ws', { headers: { cookie, ...headers } });
  const messages: Msg[] = [];
  const waiters: { pred: (m: Msg) => boolean; resolve: (m: Msg) => void }[] = [];
  let closed: number | undefined;
  ws.on('message', (data) => {
    const m = JSON.parse(data.toString()) as Msg;
    messages.push(m);
    for (const w of [...waiters]) {
      if (w.pred(m)) {
        waiters.splice(waiters.indexOf(w), 1);
        w.resolve(m);
      }
    }
  });
  ws.on('close', (code) => (closed = code));
  const opened = new Promise<number>((resolve) => {
    ws.on('open', () => resolve(101));
    ws.on('unexpected-response', (_req, res) => resolve(res.statusCode));
    ws.on('error', () => resolve(0));
  });
  const next = (pred: (m: Msg) => boolean, ms = 5000) =>
    new Promise<Msg>((resolve, reject) => {
      const hit = messages.find(pred);
      if (hit) return resolve(hit);
      const t = setTimeout(() => reject(new Error(`no matching message within ${ms} ms; got ${JSON.stringify(messages)}`)), ms);
      waiters.push({ pred, resolve: (m) => (clearTimeout(t), resolve(m)) });
    });
  return { ws, opened, next, messages, closed: () => closed };
}

test('websocket: subscribe to urgent and receive a newly submitted issue within 5 s', async () => {
  await withHarness(async (h) => {
    const { viewer } = await setupUsers(h);
    const c = connect(h.base, viewer.cookie);
    assert.equal(await c.opened, 101);
    c.ws.send(JSON.stringify({ subscribe: ['urgent', 'scheduler', 'status'] }));
    const sub = await c.next((m) => m.channel === 'subscribed');
    assert.deepEqual(sub.data, ['scheduler', 'status', 'urgent']);
    const first = await c.next((m) => m.channel === 'urgent');
    assert.deepEqual(first.data.items, []);
    assert.equal((await c.next((m) => m.channel === 'status')).data.version, '0.1.0-test');
    assert.equal((await c.next((m) => m.channel === 'scheduler')).data.health, 'unknown');

    const t0 = Date.now();
    h.ctx.urgent.submit({ source: 'scheduler', severity: 'error', code: 'INTEGRATION_FAILED', message: 'uisp timed out' });
    const got = await c.next((m) => m.channel === 'urgent' && m.data.items.length === 1, 5000);
    assert.ok(Date.now() - t0 < 5000);
    assert.equal(got.data.items[0].code, 'INTEGRATION_FAILED');
    assert.equal(got.data.activeCount, 1);

    // Bad messages get an error message, not a dropped socket.
    c.ws.send('not json');
    assert.equal((await c.next((m) => m.channel === 'error')).data.error, 'bad_message');
    c.ws.send(JSON.stringify({ subscribe: ['nope'] }));
    assert.equal((await c.next((m) => m.channel === 'error' && m.data.error === 'unknown_channel')).data.error, 'unknown_channel');
    c.ws.close();
  });
});

test('websocket: refused without a session or cross-origin; closed after logout', async () => {
  await withHarness(async (h) => {
    const { viewer } = await setupUsers(h);
    assert.equal(await connect(h.base, '').opened, 401);
    assert.equal(await connect(h.base, 'lqos_session=forged').opened, 401);
    assert.equal(await connect(h.base, viewer.cookie, { origin: 'http://evil.example' }).opened, 403);

    const c = connect(h.base, viewer.cookie, { origin: h.base });
    assert.equal(await c.opened, 101);
    c.ws.send(JSON.stringify({ subscribe: ['status'] }));
    await c.next((m) => m.channel === 'status');
    await viewer.post('/api/auth/logout');
    await waitFor(() => c.closed() !== undefined, 3000, 'the websocket to close', 50);
    assert.equal(c.closed(), 4401);
  }, { wsIntervalMs: 200 });
});

/** A socket subscribed to `status` that has had its first message. */
async function openStatusSocket(base: string, cookie: string) {
  const c = connect(base, cookie, { origin: base });
  assert.equal(await c.opened, 101);
  c.ws.send(JSON.stringify({ subscribe: ['status'] }));
  await c.next((m) => m.channel === 'status');
  return c;
}

/** The viewer's socket has ended (4401) while the admin's keeps streaming, and HTTP agrees. */
async function viewerEndedAdminStays(viewerWs: Awaited<ReturnType<typeof openStatusSocket>>, adminWs: Awaited<ReturnType<typeof openStatusSocket>>, viewer: Client, admin: Client) {
  await waitFor(() => viewerWs.closed() !== undefined, 3000, 'the viewer\'s websocket to close', 50);
  assert.equal(viewerWs.closed(), 4401);
  // Several ws ticks (200 ms) later the admin's socket still streams, and the viewer's session is gone.
  const seen = adminWs.messages.length;
  await waitFor(() => adminWs.messages.length >= seen + 3, 3000, 'the admin\'s socket to keep streaming', 50);
  assert.equal(adminWs.closed(), undefined);
  assert.equal((await viewer.get('/api/config')).status, 401);
  assert.equal((await admin.get('/api/config')).status, 200);
  adminWs.ws.close();
}

test('websocket: `lqusers passwd` (the users file changed behind lqosd) closes a socket of that user with 4401; another user\'s socket stays open', async () => {
  await withHarness(async (h) => {
    const { admin, viewer } = await setupUsers(h);
    const changed = await openStatusSocket(h.base, viewer.cookie);
    const control = await openStatusSocket(h.base, admin.cookie);
    // What `lqusers passwd viewer` does: a new hash in the users file, lqosd not told.
    await new UserStore(h.usersFile).setPassword(VIEWER.username, 'a-new-viewer-pass-2');
    await viewerEndedAdminStays(changed, control, viewer, admin);
  }, { wsIntervalMs: 200 });
});

test('websocket: a corrupt users file closes no socket (HTTP answers 503, sessions kept); once fixed, a changed password closes it with 4401', async () => {
  await withHarness(async (h) => {
    const { admin, viewer } = await setupUsers(h);
    const viewerWs = await openStatusSocket(h.base, viewer.cookie);
    const adminWs = await openStatusSocket(h.base, admin.cookie);
    // The file as `lqusers passwd viewer` would leave it, made on a copy for later.
    const good = readFileSync(h.usersFile, 'utf8');
    const copy = `${h.usersFile}.copy`;
    writeFileSync(copy, good);
    await new UserStore(copy).setPassword(VIEWER.username, 'a-new-viewer-pass-2');
    const changed = readFileSync(copy, 'utf8');
    rmSync(copy);
    const replace = (text: string) => {
      writeFileSync(`${h.usersFile}.tmp-test`, text);
      renameSync(`${h.usersFile}.tmp-test`, h.usersFile);
    };

    replace(good.slice(0, Math.floor(good.length / 2))); // truncated: corrupt
    assert.equal((await admin.get('/api/config')).status, 503);
    // Several ws ticks (200 ms) later both sockets still stream.
    for (const c of [viewerWs, adminWs]) {
      const seen = c.messages.length;
      await waitFor(() => c.messages.length >= seen + 3, 3000, 'the socket to keep streaming', 50);
      assert.equal(c.closed(), undefined);
    }

    // Fixed, with the viewer's password changed meanwhile: the viewer's socket ends; the admin's stays.
    replace(changed);
    await viewerEndedAdminStays(viewerWs, adminWs, viewer, admin);
  }, { wsIntervalMs: 200 });
});

test('websocket: channels registered later (telemetry) are served', async () => {
  await withHarness(async (h) => {
    const remove = h.channels.register('throughput', () => ({ bps: { down: 123, up: 45 } }));
    try {
      const { viewer } = await setupUsers(h);
      const c = connect(h.base, viewer.cookie);
      await c.opened;
      c.ws.send(JSON.stringify({ subscribe: ['throughput'] }));
      assert.deepEqual((await c.next((m) => m.channel === 'throughput')).data, { bps: { down: 123, up: 45 } });
      assert.throws(() => h.channels.register('error', () => 1));
      assert.throws(() => h.channels.register('Bad Name', () => 1));
      c.ws.close();
    } finally {
      remove();
    }
  }, { wsIntervalMs: 200 });
});

// The series against a real lqosd's state (plan, urgent list, telemetry): test/daemon/metrics.test.ts.
test('/metrics: no login from this host (no metrics_token set), the shaping gauges only, read from the daemon context at scrape time', async () => {
  await withHarness(async (h) => {
    await setupUsers(h);
    const scrape = async () => {
      const r = await new Client(h.base).get('/metrics');
      assert.equal(r.status, 200);
      assert.match(r.headers.get('content-type') ?? '', /text\/plain/);
      return r.text;
    };
    const first = await scrape();
    for (const name of ['lqos_node_throughput_bps', 'lqos_circuit_throughput_bps', 'lqos_total_throughput_bps', 'lqos_urgent_issues_active', 'lqos_shaped_circuits', 'lqos_shaping_degraded']) {
      assert.match(first, new RegExp(`^# TYPE ${name} gauge$`, 'm'));
    }
    assert.match(first, /^lqos_urgent_issues_active 0$/m);
    assert.match(first, new RegExp(`^lqos_shaped_circuits ${h.ctx.appliedPlan()!.circuits.length}$`, 'm'));
    assert.doesNotMatch(first, /process_|nodejs_/);
    h.ctx.urgent.submit({ source: 'test', severity: 'warning', code: 'X', message: 'x' });
    h.ctx.urgent.submit({ source: 'test', severity: 'warning', code: 'Y', message: 'y' });
    assert.match(await scrape(), /^lqos_urgent_issues_active 2$/m);
  });
});

test('static UI: files served from webRoot with SPA fallback to index.html; /api stays JSON', async () => {
  const webRoot = join(await import('node:os').then((os) => os.tmpdir()), `lqos-webroot-${process.pid}`);
  mkdirSync(join(webRoot, 'assets'), { recursive: true });
  writeFileSync(join(webRoot, 'index.html'), '<!doctype html><title>LQ UI</title>');
  writeFileSync(join(webRoot, 'assets', 'app.js'), 'console.log(1)');
  try {
    await withHarness(async (h) => {
      const c = new Client(h.base);
      assert.match((await c.get('/')).text, /LQ UI/);
      const js = await c.get('/assets/app.js');
      assert.equal(js.status, 200);
      assert.match(js.headers.get('content-type') ?? '', /javascript/);
      const spa = await c.get('/circuits/c1');
      assert.equal(spa.status, 200);
      assert.match(spa.text, /LQ UI/);
      const api = await c.get('/api/nope');
      assert.equal(api.status, 404);
      assert.equal(api.json.error, 'not_found');
      assert.equal((await c.get('/../../etc/passwd')).text.includes('root:'), false);
    }, { webRoot });
  } finally {
    rmSync(webRoot, { recursive: true, force: true });
  }
});

test('urgent issues and scheduler over REST: list for everyone, ack / clear for admins', async () => {
  await withHarness(async (h) => {
    const { admin, viewer } = await setupUsers(h);
    const a = h.ctx.urgent.submit({ source: 'libreqos', severity: 'error', code: 'TC_FAIL', message: 'tc failed' });
    const b = h.ctx.urgent.submit({ source: 'scheduler', severity: 'warning', code: 'SLOW', message: 'slow' });
    h.ctx.scheduler.heartbeat('integration', '2030-01-01T00:00:00.000Z');

    const list = await viewer.get('/api/urgent');
    assert.equal(list.json.activeCount, 2);
    assert.deepEqual(list.json.items.map((i: any) => i.code), ['TC_FAIL', 'SLOW']);
    assert.equal((await viewer.get('/api/scheduler')).json.phase, 'integration');

    assert.equal((await admin.post(`/api/urgent/${a.id}/ack`)).status, 200);
    assert.equal(h.ctx.urgent.items[0].acknowledged, true);
    assert.equal((await viewer.get('/api/status')).json.urgentActive, 1);
    assert.equal((await admin.post('/api/urgent/999/ack')).status, 404);
    assert.deepEqual((await admin.del(`/api/urgent/${b.id}`)).json, { ok: true, cleared: 1 });
    assert.deepEqual((await admin.del('/api/urgent')).json, { ok: true, cleared: 1 });
    assert.equal(h.ctx.urgent.items.length, 0);
  });
});
