// test-gate: shared (CPU only; see test/support/gate.ts)
/**
 * The bus protocol and server: framing, error replies, limits, socket permissions, stale socket
 * handling and the client's messages when lqosd is down.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import fs, { existsSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import { syncBuiltinESMExports } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BusClient, busRequest, BusUnavailableError, waitForBus } from '../../lib/bus/client.ts';
import { BusError, MAX_MESSAGE_BYTES } from '../../lib/bus/protocol.ts';
import { BusAlreadyRunningError, startBusServer, type BusServer } from '../../lib/bus/server.ts';
import { RecordingLog } from '../../lib/util/logRecords.ts';
import { quiet } from '../support/log.ts';
import { RawConn } from './helpers.ts';

const dirs: string[] = [];
const servers: BusServer[] = [];
after(async () => {
  for (const s of servers) await s.close();
  dirs.forEach((d) => rmSync(d, { recursive: true, force: true }));
});
function sockPath(): string {
  const d = mkdtempSync(join(tmpdir(), 'lqos-bus-'));
  dirs.push(d);
  return join(d, 'run', 'bus');
}
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function server(handlers: Parameters<typeof startBusServer>[0]['handlers'] = {}, extra: Partial<Parameters<typeof startBusServer>[0]> = {}) {
  const path = sockPath();
  const s = await startBusServer({ path, log: quiet, handlers: { ping: () => ({ pong: true }), ...handlers }, ...extra });
  servers.push(s);
  return s;
}

test('socket is created root-only (0600) in a 0755 directory and removed on close', async () => {
  const s = await server();
  assert.equal(statSync(s.path).mode & 0o777, 0o600);
  assert.ok(statSync(s.path).isSocket());
  assert.equal(statSync(join(s.path, '..')).mode & 0o777, 0o755);
  assert.equal(statSync(s.path).uid, process.getuid!());
  await s.close();
  assert.equal(existsSync(s.path), false);
});

test('the socket is 0600 from the moment it exists, whatever the umask (no window before the chmod in which another user could connect)', async () => {
  const seen: number[] = [];
  const original = fs.chmodSync;
  const oldMask = process.umask(0);
  fs.chmodSync = ((p: fs.PathLike, mode: fs.Mode) => {
    if (String(p).endsWith('/bus')) seen.push(statSync(p).mode & 0o777);
    return original(p, mode);
  }) as typeof fs.chmodSync;
  syncBuiltinESMExports();
  try {
    const s = await server();
    assert.deepEqual(seen, [0o600], 'mode of the socket when it was first looked at (just after listen)');
    assert.equal(statSync(s.path).mode & 0o777, 0o600);
    assert.equal(process.umask(0), 0, 'the umask is given back after the socket is made');
  } finally {
    fs.chmodSync = original;
    syncBuiltinESMExports();
    process.umask(oldMask);
  }
});

test('ping round trip; several requests on one connection, ids echoed (numbers and strings)', async () => {
  const s = await server();
  const c = await RawConn.open(s.path);
  c.write('{"id":1,"type":"ping"}\n{"id":"abc","type":"ping"}\n');
  const r = [await c.next(), await c.next()].sort((a, b) => String(a.id).localeCompare(String(b.id)));
  assert.deepEqual(r, [
    { id: 1, ok: true, result: { pong: true } },
    { id: 'abc', ok: true, result: { pong: true } },
  ]);
  // A request split across writes is reassembled.
  c.write('{"id":2,');
  await sleep(20);
  c.write('"type":"ping"}\n');
  assert.deepEqual(await c.next(), { id: 2, ok: true, result: { pong: true } });
  c.close();
});

test('malformed JSON → bad_json; the connection stays usable', async () => {
  const s = await server();
  const c = await RawConn.open(s.path);
  c.write('{this is not json\n');
  const r = await c.next();
  assert.equal(r.ok, false);
  assert.equal(r.id, null);
  assert.equal(r.error.code, 'bad_json');
  c.write('\n   \n[1,2]\n');
  const arr = await c.next();
  assert.equal(arr.error.code, 'invalid');
  c.write('{"id":3,"type":"ping"}\n');
  assert.equal((await c.next()).ok, true);
  c.close();
});

test('unknown or missing type → unknown_type (id echoed)', async () => {
  const s = await server();
  const c = await RawConn.open(s.path);
  c.write('{"id":7,"type":"format_disk"}\n');
  const r = await c.next();
  assert.equal(r.id, 7);
  assert.equal(r.error.code, 'unknown_type');
  assert.match(r.error.message, /format_disk.*known types: ping/);
  c.write('{"id":8}\n');
  assert.equal((await c.next()).error.code, 'unknown_type');
  c.close();
});

test('schema failure → invalid with the path of the offending field', async () => {
  const s = await server();
  const c = await RawConn.open(s.path);
  c.write(JSON.stringify({ id: 1, type: 'map_ip_add', entries: [{ prefix: '100.64.0.1/32', cpu: 0, major: 1, minor: 3, circuitId: 'c' }, { prefix: '100.64.0.2', cpu: -1, major: 1, minor: 3, circuitId: 'c' }] }) + '\n');
  const r = await c.next();
  assert.equal(r.error.code, 'invalid');
  assert.deepEqual(r.error.path, ['entries', 1, 'cpu']);
  assert.match(r.error.message, /^entries\[1\]\.cpu: /);
  c.write(JSON.stringify({ id: 2, type: 'urgent_submit', source: 'x', severity: 'catastrophic', code: 'C', message: 'm' }) + '\n');
  const r2 = await c.next();
  assert.deepEqual(r2.error.path, ['severity']);
  c.write(JSON.stringify({ id: 3, type: 'ping', extra: true }) + '\n');
  assert.equal((await c.next()).error.code, 'invalid', 'unknown fields are rejected');
  c.write(JSON.stringify({ id: { nested: 1 }, type: 'ping' }) + '\n');
  const r4 = await c.next();
  assert.equal(r4.id, null);
  assert.deepEqual(r4.error.path, ['id']);
  // A file's name in messages (submit_plan's labels) is one line of printable text.
  c.write(JSON.stringify({ id: 5, type: 'submit_plan', mode: 'incremental', devicesPath: '/x.csv', networkPath: '/n.json', devicesLabel: 'ShapedDevices.csv\nlqosd: fake line' }) + '\n');
  const r5 = await c.next();
  assert.equal(r5.error.code, 'invalid');
  assert.deepEqual(r5.error.path, ['devicesLabel']);
  c.close();
});

test('oversized message → too_large and the connection is closed; a new connection is served', async () => {
  const s = await server();
  const c = await RawConn.open(s.path);
  // Without a newline: the limit applies to the buffered, unfinished line too.
  const big = 'x'.repeat(MAX_MESSAGE_BYTES + 10);
  c.write(`{"id":1,"type":"ping","pad":"${big}`);
  const r = await c.next();
  assert.equal(r.error.code, 'too_large');
  assert.ok(await c.waitClosed(), 'connection closed');
  // A complete line over the limit (in one write).
  const c2 = await RawConn.open(s.path);
  c2.write(`{"id":1,"type":"ping","pad":"${big}"}\n`);
  assert.equal((await c2.next()).error.code, 'too_large');
  assert.ok(await c2.waitClosed());
  assert.deepEqual(await busRequest('ping', {}, { path: s.path }), { pong: true });
});

test('handler errors: BusError keeps its code, other throws become internal; missing handler → not_implemented', async () => {
  const s = await server({
    status: () => {
      throw new Error('kaboom');
    },
    urgent_list: () => {
      throw new BusError('unavailable', 'not now');
    },
    scheduler_status: () => Promise.reject(new TypeError('async kaboom')),
  });
  const c = new BusClient({ path: s.path });
  await assert.rejects(c.request('status'), (e: BusError) => e.code === 'internal' && /kaboom/.test(e.message));
  await assert.rejects(c.request('urgent_list'), (e: BusError) => e.code === 'unavailable' && e.message === 'not now');
  await assert.rejects(c.request('scheduler_status'), (e: BusError) => e.code === 'internal');
  await assert.rejects(c.request('map_ip_list'), (e: BusError) => e.code === 'not_implemented');
  assert.deepEqual(await c.request('ping'), { pong: true });
  c.close();
});

test('garbage bytes never take the server down', async () => {
  const s = await server();
  for (const junk of [Buffer.from([0, 1, 2, 255, 254, 10]), Buffer.from('\u0000\n'.repeat(100)), Buffer.from('null\n"str"\n42\ntrue\n{"id":1,"type":null}\n')]) {
    const c = await RawConn.open(s.path);
    c.sock.write(junk);
    const r = await c.next();
    assert.equal(r.ok, false);
    c.close();
  }
  // Abrupt disconnects with requests in flight.
  for (let i = 0; i < 10; i++) {
    const c = await RawConn.open(s.path);
    c.write('{"id":1,"type":"ping"}\n'.repeat(50));
    c.close();
  }
  await sleep(50);
  assert.deepEqual(await busRequest('ping', {}, { path: s.path }), { pong: true });
});

test('at most 32 connections are served at once; 50 concurrent clients all get answers', async () => {
  let running = 0;
  let maxRunning = 0;
  const s = await server({
    ping: async () => {
      running++;
      maxRunning = Math.max(maxRunning, running);
      await sleep(30);
      running--;
      return { pong: true };
    },
  });
  const results = await Promise.all(
    Array.from({ length: 50 }, async (_, i) => {
      const c = new BusClient({ path: s.path });
      try {
        await c.request('ping');
        return await c.request('ping', {}, { timeoutMs: 10_000 }).then(() => i);
      } finally {
        c.close();
      }
    }),
  );
  assert.equal(results.length, 50);
  assert.ok(s.stats().peak <= 32, `peak ${s.stats().peak}`);
  assert.ok(s.stats().peak >= 2);
  assert.ok(maxRunning <= 32);
  await waitUntil(() => s.stats().connections === 0 && s.stats().waiting === 0);
});

test('connections beyond the limit that wait too long get busy', async () => {
  const s = await server({}, { maxConnections: 2, waitTimeoutMs: 300 });
  const hold = [await RawConn.open(s.path), await RawConn.open(s.path)];
  for (const h of hold) {
    h.write('{"id":1,"type":"ping"}\n');
    assert.equal((await h.next()).ok, true);
  }
  const late = await RawConn.open(s.path);
  late.write('{"id":1,"type":"ping"}\n');
  const r = await late.next();
  assert.equal(r.error.code, 'busy');
  assert.match(r.error.message, /too many bus connections/);
  hold[0]!.close();
  await waitUntil(() => s.stats().connections === 1);
  assert.deepEqual(await busRequest('ping', {}, { path: s.path }), { pong: true });
  hold[1]!.close();
});

test('per-connection in-flight bound: at most 16 handlers run for one connection; all 60 are answered', async () => {
  let running = 0;
  let maxRunning = 0;
  const s = await server({
    ping: async () => {
      running++;
      maxRunning = Math.max(maxRunning, running);
      await sleep(20);
      running--;
      return { pong: true };
    },
  });
  const c = await RawConn.open(s.path);
  c.write(Array.from({ length: 60 }, (_, i) => JSON.stringify({ id: i, type: 'ping' })).join('\n') + '\n');
  const ids = new Set<number>();
  for (let i = 0; i < 60; i++) ids.add((await c.next()).id);
  assert.equal(ids.size, 60);
  assert.ok(maxRunning <= 16 && maxRunning > 1, `maxRunning ${maxRunning}`);
  c.close();
});

test('a stale socket file is replaced; a live one means "already running"; a non-socket file is refused', async () => {
  const path = sockPath();
  // A listener in another process; SIGKILL leaves its socket file behind (stale).
  const { mkdirSync, writeFileSync } = await import('node:fs');
  mkdirSync(join(path, '..'), { recursive: true });
  const { execa } = await import('execa');
  const child = execa(process.execPath, ['-e', `require('net').createServer().listen(${JSON.stringify(path)}, () => console.log('up'))`], { reject: false });
  await new Promise<void>((r) => child.stdout!.once('data', () => r()));
  await assert.rejects(startBusServer({ path, log: quiet, handlers: {} }), (e: Error) => e instanceof BusAlreadyRunningError && /lqosd already running/.test(e.message));
  child.kill('SIGKILL');
  await child;
  assert.ok(existsSync(path), 'the killed listener left its socket file behind');
  const s = await startBusServer({ path, log: quiet, handlers: { ping: () => 'fresh' } });
  servers.push(s);
  assert.equal(await busRequest('ping', {}, { path }), 'fresh');
  await s.close();
  writeFileSync(path, 'not a socket');
  await assert.rejects(startBusServer({ path, log: quiet, handlers: {} }), /exists and is not a socket/);
});

test('client: clear message when lqosd is down; waitForBus waits for it to come up', async () => {
  const path = sockPath();
  await assert.rejects(busRequest('ping', {}, { path }), (e: Error) =>
    e instanceof BusUnavailableError && e.message === `lqosd is not running (no socket at ${path}); start it with systemctl start lqosd`,
  );
  const progress: string[] = [];
  await assert.rejects(waitForBus({ path, timeoutMs: 300, intervalMs: 50, onProgress: (p) => progress.push(p.error) }), /lqosd is not running .*waited/);
  assert.ok(progress.length >= 2);
  const waiting = waitForBus({ path, timeoutMs: 5000, intervalMs: 50 });
  await sleep(200);
  const s = await startBusServer({ path, log: quiet, handlers: { ping: () => ({ pong: 1 }) } });
  servers.push(s);
  assert.deepEqual(await waiting, { pong: 1 });
  // The daemon going away fails requests in flight instead of hanging them.
  const slow = await startBusServer({ path: sockPath(), log: quiet, handlers: { ping: () => new Promise(() => {}) } });
  const c = new BusClient({ path: slow.path });
  const pending = c.request('ping');
  await sleep(50);
  await slow.close();
  await assert.rejects(pending, BusUnavailableError);
  c.close();
});

test('idle timeout: a silent client, a client stalled mid-request and an idle client after its reply are closed (logged at debug)', async () => {
  const log = new RecordingLog();
  const s = await server({}, { idleTimeoutMs: 300, log });
  const silent = await RawConn.open(s.path);
  const stalled = await RawConn.open(s.path);
  stalled.write('{"id":1,"type":"pi'); // never finished
  const done = await RawConn.open(s.path);
  done.write('{"id":1,"type":"ping"}\n');
  assert.deepEqual(await done.next(), { id: 1, ok: true, result: { pong: true } });
  await waitUntil(() => s.stats().connections === 3);
  for (const c of [silent, stalled, done]) assert.equal(await c.waitClosed(5000), true, 'closed by the server');
  await waitUntil(() => s.stats().connections === 0);
  const msgs = log.records.filter((r) => r.level === 'debug').map((r) => r.msg);
  assert.equal(msgs.filter((m) => /idle for 300 ms; closing that connection/.test(m)).length, 2, msgs.join('\n'));
  assert.equal(msgs.filter((m) => /unfinished request and nothing more for 300 ms/.test(m)).length, 1, msgs.join('\n'));
  // The server is still there for the next client.
  assert.deepEqual(await busRequest('ping', {}, { path: s.path }), { pong: true });
});

test('idle timeout: a request that runs longer than the idle timeout is answered on its connection; each answer restarts the clock', async () => {
  const s = await server({ refresh: () => sleep(2000).then(() => ({ refreshed: true })) }, { idleTimeoutMs: 700 });
  const c = await RawConn.open(s.path);
  c.write('{"id":"r1","type":"refresh"}\n');
  assert.deepEqual(await c.next(5000), { id: 'r1', ok: true, result: { refreshed: true } });
  assert.equal(c.closed, false, 'not cut off while its request was handled');
  // Requests in a row, each shorter than the timeout, keep the connection open past it.
  for (let i = 0; i < 4; i++) {
    await sleep(250);
    c.write(`{"id":${i},"type":"ping"}\n`);
    assert.equal((await c.next()).id, i);
  }
  assert.equal(c.closed, false);
  // Then it idles and is closed.
  assert.equal(await c.waitClosed(5000), true);
  // BusClient: a long request on its one connection works the same way.
  const client = new BusClient({ path: s.path });
  assert.deepEqual(await client.request('refresh', {}, { timeoutMs: 5000 }), { refreshed: true });
  client.close();
});

test('client: closes its own idle connection before the server would, and reconnects for the next request', async () => {
  const s = await server({}, { idleTimeoutMs: 60_000 });
  const c = new BusClient({ path: s.path, idleCloseMs: 100 });
  assert.deepEqual(await c.request('ping'), { pong: true });
  await waitUntil(() => s.stats().connections === 1);
  await waitUntil(() => s.stats().connections === 0);
  assert.deepEqual(await c.request('ping'), { pong: true }, 'a new connection for the next request');
  assert.equal(s.stats().served, 2);
  c.close();
});

test('connection cap: connections beyond served + waiting are refused with busy and one warning names the limit', async () => {
  const log = new RecordingLog();
  const s = await server({}, { maxConnections: 1, maxWaiting: 0, log });
  const hold = await RawConn.open(s.path);
  hold.write('{"id":1,"type":"ping"}\n');
  assert.equal((await hold.next()).ok, true);
  const refused = [];
  for (let i = 0; i < 3; i++) {
    const c = await RawConn.open(s.path);
    const r = await c.next();
    assert.equal(r.error.code, 'busy');
    refused.push(c);
  }
  const warnings = log.records.filter((r) => r.level === 'warn' && /bus connection limit reached \(1 served at once, 0 waiting\)/.test(r.msg));
  assert.equal(warnings.length, 1, 'one line per burst, not one per connection');
  assert.equal(warnings[0].fields?.refused, 1);
  hold.close();
  refused.forEach((c) => c.close());
});

test('close() does not wait for refused clients that keep their end open (lqosd stops at once; the socket file is removed)', async () => {
  const s = await server({}, { maxConnections: 1, maxWaiting: 0 });
  const hold = await RawConn.open(s.path);
  const refused = await RawConn.open(s.path);
  assert.equal((await refused.next()).error.code, 'busy');
  const t0 = Date.now();
  await s.close();
  const ms = Date.now() - t0;
  assert.ok(ms < 500, `close took ${ms} ms: it waited for the refused connection (destroyed only by its 1 s timer)`);
  assert.equal(existsSync(s.path), false);
  hold.close();
  refused.close();
});

async function waitUntil(cond: () => boolean, ms = 5000) {
  const t0 = Date.now();
  while (!cond()) {
    if (Date.now() - t0 > ms) throw new Error('timeout');
    await sleep(20);
  }
}
