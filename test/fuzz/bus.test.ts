// test-gate: shared (CPU only; see test/support/gate.ts)
/**
 * Fuzz: lqosd bus messages. First the request decoder alone (lib/bus/protocol.ts decodeRequest):
 * valid requests of every type with fields dropped, added, set to values of the wrong type or to
 * prototype-pollution keys, ids of every kind, and raw text edits. Then raw byte streams into a
 * real bus server on a Unix socket in a temp directory: mutated request lines, random bytes, lines
 * split across writes, lines over the size limit, connections dropped mid-write. Every decode must
 * give a request or an error reply with a known code; the server must answer every line with a
 * well-formed reply and answer the next valid request (on the same connection, or on a new one
 * when it had to close that one).
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { busRequest } from '../../lib/bus/client.ts';
import { BusError, decodeRequest, encodeReply, ERROR_CODES, okReply, REQUEST_TYPES, type BusReply } from '../../lib/bus/protocol.ts';
import { startBusServer, type BusHandlers } from '../../lib/bus/server.ts';
import { quiet } from '../support/log.ts';
import { RawConn } from '../daemon/helpers.ts';
import { describeThrown, fc, fuzzParams, jsonLeaf, mutated, nastyText, prototypeKeys, Reach, scaledRuns, timed, withTimeout } from './support.ts';

const CSV = 'Circuit ID,Circuit Name,Device ID,Device Name,Parent Node,MAC,IPv4,IPv6,Download Min Mbps,Upload Min Mbps,Download Max Mbps,Upload Max Mbps,Comment\n';

/** A valid payload per request type (types added later fall back to none). */
const VALID: Record<string, Record<string, unknown>> = {
  submit_plan: { mode: 'full', devicesCsv: CSV, networkJson: '{}', updateonly: false, verbose: true },
  map_ip_add: { entries: [{ prefix: '100.64.0.1/32', cpu: 0, major: 1, minor: 3, circuitId: 'c1', deviceId: 'd1' }] },
  map_ip_delete: { prefixes: ['100.64.0.1/32', '2001:db8::/56'] },
  scheduler_heartbeat: { phase: 'idle', nextRun: '2026-01-01T00:00:00Z' },
  scheduler_success: { at: '2026-01-01T00:00:00Z' },
  scheduler_error: { message: 'integration failed', integration: 'uisp', output: 'line 1\nline 2', logFile: '/tmp/x.log' },
  scheduler_progress: { active: true, phase: 'apply', label: 'Applying shaping', step: 4, steps: 4, percent: 75 },
  scheduler_summary: {
    summary: { integration: 'uisp', finishedAt: '2026-01-01T00:00:00Z', durationMs: 1, circuits: { total: 1, added: 1, removed: 0, changed: 0 }, devices: { total: 1 }, warnings: ['w'], networkJson: 'written' },
  },
  urgent_submit: { source: 'scheduler', severity: 'error', code: 'X', message: 'm', context: { a: [1] }, dedupeKey: 'k' },
  urgent_ack: { issueId: '1' },
  urgent_clear: { issueId: '1' },
  urgent_resolve: { key: 'k' },
  stats_hosts: { limit: 20, sortBy: 'total' },
  top_circuits: { limit: 20, sortBy: 'rtt' },
};
const FIELDS = [...new Set(['id', 'type', ...Object.values(VALID).flatMap((p) => Object.keys(p)), 'prefix', 'cpu', 'major', 'minor', 'circuitId', 'devicesPath', 'networkPath', 'force'])];

/** Values of every kind, including ones that are close to valid for some field. */
const anyValue: fc.Arbitrary<unknown> = fc.oneof(
  { weight: 4, arbitrary: jsonLeaf },
  fc.constantFrom('full', 'incremental', '/etc/passwd', 'relative/path', '100.64.0.1', '100.64.0.0/33', '::/0', '1.2.3.4/', 'info', 'catastrophic', '2026-13-01T00:00:00Z', 'ping', ''),
  fc.array(jsonLeaf, { maxLength: 3 }),
  fc.dictionary(fc.oneof(fc.constantFrom(...FIELDS), prototypeKeys), jsonLeaf, { maxKeys: 3 }),
  fc.array(fc.record({ prefix: fc.constantFrom('100.64.0.1', 'x', '::1/128'), cpu: fc.integer({ min: -1, max: 2000 }), major: fc.integer({ min: 0, max: 70000 }), minor: fc.integer({ min: 0, max: 70000 }), circuitId: fc.string() }), { maxLength: 3 }),
  fc.integer({ min: 10_000, max: 300_000 }).map((n) => 'x'.repeat(n)),
);

const idValue = fc.oneof(fc.integer(), fc.string({ maxLength: 10 }), fc.constantFrom<unknown>(null, 1.5, -0, 1e308, 'x'.repeat(300), [], {}, true), fc.constant(undefined));

type FieldOp = { op: 'set' | 'drop' | 'proto'; field: string; value: unknown };
const fieldOp: fc.Arbitrary<FieldOp> = fc.record({ op: fc.constantFrom('set', 'set', 'drop', 'proto'), field: fc.oneof({ weight: 4, arbitrary: fc.constantFrom(...FIELDS) }, prototypeKeys, nastyText), value: anyValue });

/** A request object: a valid one of a known type (or an unknown type), then field edits. */
const requestObject = fc
  .record({
    type: fc.oneof({ weight: 8, arbitrary: fc.constantFrom(...REQUEST_TYPES) }, fc.constantFrom('format_disk', '', 'PING', '__proto__', 'constructor', 'toString')),
    id: idValue,
    ops: fc.oneof({ weight: 2, arbitrary: fc.constant([] as FieldOp[]) }, { weight: 3, arbitrary: fc.array(fieldOp, { minLength: 1, maxLength: 3 }) }),
  })
  .map(({ type, id, ops }) => {
    const obj: Record<string, unknown> = { id, type, ...structuredClone(Object.hasOwn(VALID, type) ? VALID[type] : {}) };
    for (const o of ops) {
      if (o.op === 'drop') delete obj[o.field];
      // An own "__proto__"/"constructor" key, as JSON.parse would create it from the wire.
      else if (o.op === 'proto') Object.defineProperty(obj, o.field, { value: o.value, enumerable: true, configurable: true, writable: true });
      else obj[o.field] = o.value;
    }
    return obj;
  });

const requestLine: fc.Arbitrary<string> = fc.oneof(
  { weight: 8, arbitrary: requestObject.map((o) => JSON.stringify(o)) },
  { weight: 2, arbitrary: mutated(requestObject.map((o) => JSON.stringify(o, null, 1))).map((s) => s.replace(/[\r\n]/g, ' ')) },
  { weight: 1, arbitrary: fc.oneof(jsonLeaf.map((v) => JSON.stringify(v) ?? 'undefined'), fc.string({ unit: 'binary', maxLength: 60 }), fc.constantFrom('[]', '{}', 'null', '{"id":1}', '{"type":"ping"}', '{"id":1,"type":"ping"', '{"id":1,"type":"ping"}}')) },
);

const KNOWN_CODES = new Set<string>(ERROR_CODES);

/** A reply as it goes on the wire: encodable, parseable back, with a known error code. */
function checkReply(reply: BusReply): void {
  const text = encodeReply(reply);
  assert.ok(text.endsWith('\n') && !text.slice(0, -1).includes('\n'), 'one line per reply');
  const back = JSON.parse(text) as BusReply;
  assert.ok(back.id === null || typeof back.id === 'number' || typeof back.id === 'string', `reply id ${String(back.id)}`);
  if (!back.ok) {
    assert.ok(KNOWN_CODES.has(back.error.code), `unknown error code ${back.error.code}`);
    assert.ok(typeof back.error.message === 'string' && back.error.message !== '', 'error message');
  }
}

test('bus: decodeRequest gives a valid request or an error reply with a known code, never an exception', (t) => {
  const seen = new Reach();
  fc.assert(
    fc.property(requestLine, (line) => {
      let decoded: ReturnType<typeof decodeRequest>;
      try {
        decoded = timed('decodeRequest', () => decodeRequest(line));
      } catch (e) {
        assert.fail(`decodeRequest threw: ${describeThrown(e)}`);
      }
      if (decoded.ok) {
        assert.ok(REQUEST_TYPES.includes(decoded.request.type));
        checkReply(okReply(decoded.request.id, decoded.request));
      } else checkReply(decoded.reply);
      seen.count(decoded.ok, decoded.ok ? [] : [decoded.reply.ok ? { code: 'ok' } : decoded.reply.error]);
    }),
    fuzzParams(t),
  );
  seen.report(t, ['bad_json', 'unknown_type', 'invalid']);
});

// ---------------------------------------------------------------------------------------------
// A real server

const dir = mkdtempSync(join(tmpdir(), 'lqos-fuzz-bus-'));
after(() => rmSync(dir, { recursive: true, force: true }));

/** Handlers for every type: answers, throws a BusError, throws a bug, or rejects late. */
function handlers(): BusHandlers {
  const h: Record<string, (req: { type: string }) => unknown> = {};
  for (const type of REQUEST_TYPES) h[type] = (req) => ({ echo: req.type });
  h.status = () => {
    throw new TypeError('handler bug');
  };
  h.urgent_list = () => {
    throw new BusError('unavailable', 'not now');
  };
  h.refresh = () => new Promise((resolve) => setTimeout(() => resolve({ refreshed: true }), 2));
  h.map_ip_list = () => ({ big: 10n ** 30n });
  return h as BusHandlers;
}

const MAX_BYTES = 16 * 1024;

/** What one connection sends: chunks written one after another, then maybe an abrupt close. */
const streamCase = fc.record({
  chunks: fc.array(
    fc.oneof(
      // Lines within the limit (cut at a quarter of it: several may end up on one line with the chunks before)…
      { weight: 12, arbitrary: fc.array(requestLine, { minLength: 1, maxLength: 4 }).map((ls) => Buffer.from(ls.map((l) => l.slice(0, MAX_BYTES / 4)).join('\n') + '\n')) },
      { weight: 2, arbitrary: fc.uint8Array({ maxLength: 200 }).map((b) => Buffer.from(b)) },
      { weight: 2, arbitrary: requestLine.map((l) => Buffer.from(l.slice(0, Math.min(MAX_BYTES / 4, Math.ceil(l.length / 2))))) },
      // …and now and then one over it.
      { weight: 1, arbitrary: fc.integer({ min: MAX_BYTES - 10, max: MAX_BYTES * 2 }).map((n) => Buffer.from(`{"id":1,"type":"ping","pad":"${'p'.repeat(n)}"}\n`)) },
    ),
    { minLength: 1, maxLength: 5 },
  ),
  abort: fc.oneof({ weight: 9, arbitrary: fc.constant(false) }, { weight: 1, arbitrary: fc.constant(true) }),
});

/** Reads reply lines until the probe's reply; false when the server closed the connection first. */
async function drainUntilProbe(c: RawConn): Promise<boolean> {
  for (;;) {
    const r = await c.next(10_000);
    if (r === undefined) return false;
    checkReply(r as BusReply);
    if (r.id === 'probe') {
      assert.deepEqual(r, { id: 'probe', ok: true, result: { echo: 'ping' } });
      return true;
    }
  }
}

test('bus: raw byte streams into a real server; every reply is well-formed and the next valid request is answered', async (t) => {
  const s = await startBusServer({ path: join(dir, 'bus'), log: quiet, handlers: handlers(), maxMessageBytes: MAX_BYTES, idleTimeoutMs: 30_000 });
  t.after(() => s.close());
  let closedByServer = 0;
  await fc.assert(
    fc.asyncProperty(streamCase, async ({ chunks, abort }) => {
      await withTimeout('bus exchange', (async () => {
        const c = await RawConn.open(s.path);
        try {
          for (const chunk of chunks) {
            c.sock.write(chunk);
            await new Promise((r) => setImmediate(r));
          }
          if (abort) {
            c.close();
          } else {
            c.write('\n{"id":"probe","type":"ping"}\n');
            if (await drainUntilProbe(c)) return;
            closedByServer++;
          }
        } finally {
          c.close();
        }
        // That connection is gone: the server still answers a new one.
        assert.deepEqual(await busRequest('ping', {}, { path: s.path, timeoutMs: 10_000 }), { echo: 'ping' });
      })());
    }),
    fuzzParams(t, scaledRuns(0.1, 200)),
  );
  t.diagnostic(`${closedByServer} connections closed by the server (messages over ${MAX_BYTES} bytes)`);
  assert.deepEqual(await busRequest('ping', {}, { path: s.path }), { echo: 'ping' });
});
