/**
 * lib/telemetry/influx against Debian's real InfluxDB on loopback: points written in batches are
 * what InfluxQL reads back; with the server down the writer keeps a bounded buffer and backs off,
 * then delivers once the server is back; a rejected batch is dropped without blocking the rest.
 */
import { strict as assert } from 'node:assert';
import { after, before, test } from 'node:test';
import { pointLine } from '../../lib/telemetry/influx/lineProtocol.ts';
import { InfluxWriter } from '../../lib/telemetry/influx/writer.ts';
import { startInfluxd, type Influxd } from '../support/influxd.ts';

let influx: Influxd;
before(async () => {
  influx = await startInfluxd();
  await influx.createDatabase('shaper');
});
after(async () => influx?.cleanup());

const T = 1_796_472_000;

test('line protocol: escaping, integer and string fields, empty tags and non-finite values left out', () => {
  assert.equal(
    pointLine('circuit', { circuit_id: 'c 1,a=b', parent: '', z: 'x' }, { down_bps: 1.5, drops: { int: 7 }, name: 'Al "B"', up: Number.NaN }, T + 0.7),
    `circuit,circuit_id=c\\ 1\\,a\\=b,z=x down_bps=1.5,drops=7i,name="Al \\"B\\"" ${T}`,
  );
  assert.equal(pointLine('m', {}, { x: undefined, y: Number.POSITIVE_INFINITY }, T), undefined, 'no field: no line');
});

test('points written through the writer read back from InfluxDB (v1 API found by the 404 fallback)', async () => {
  const events: string[] = [];
  const w = new InfluxWriter({ url: influx.url, org: 'isp', bucket: 'shaper', token: '', batchLines: 100, flushIntervalMs: 60_000, onEvent: (_l, m) => events.push(m) });
  const lines = Array.from({ length: 250 }, (_, i) => pointLine('circuit', { circuit_id: `c${i}`, node: 'AP 1' }, { down_bps: i * 1000, rtt_ms: 12.5, drops: { int: i } }, T + i)!);
  w.add(lines);
  await w.flush();
  const s = w.stats();
  assert.equal(s.written, 250);
  assert.equal(s.buffered, 0);
  assert.equal(s.api, 'v1');
  const rows = await influx.query('shaper', `SELECT down_bps, rtt_ms, drops FROM circuit WHERE circuit_id = 'c42'`);
  assert.deepEqual(rows, [{ time: T + 42, down_bps: 42_000, rtt_ms: 12.5, drops: 42 }]);
  const count = await influx.query('shaper', 'SELECT count(down_bps) FROM circuit');
  assert.equal(count[0]?.count, 250);
  const node = await influx.query('shaper', `SELECT count(down_bps) FROM circuit WHERE node = 'AP 1'`);
  assert.equal(node[0]?.count, 250, 'a tag value with a space is stored as written');
  await w.close();
});

test('server down: the buffer stays bounded, writes back off, and everything kept is delivered once it is back', async () => {
  const events: string[] = [];
  const w = new InfluxWriter({
    url: influx.url, org: 'isp', bucket: 'shaper', token: 'CANARY-INFLUX-TOKEN', maxBufferedLines: 300, flushIntervalMs: 60_000, requestTimeoutMs: 2000,
    onEvent: (_l, m) => events.push(m),
  });
  await influx.stop();
  w.add(Array.from({ length: 500 }, (_, i) => pointLine('outage', { n: String(i) }, { v: i }, T + i)!));
  await w.flush();
  const down = w.stats();
  assert.equal(down.buffered, 300, 'at most maxBufferedLines are kept');
  assert.equal(down.droppedOverflow, 200, 'the oldest lines beyond the limit are dropped and counted');
  assert.equal(down.failures, 1);
  assert.ok(down.retryAtMs && down.retryAtMs > Date.now(), 'the next try waits for the backoff');
  await w.flush();
  assert.equal(w.stats().failures, 1, 'no new request while backing off');
  assert.match(events.join('\n'), /InfluxDB write to http:\/\/127\.0\.0\.1:\d+ failed/);

  await influx.start();
  await new Promise((r) => setTimeout(r, Math.max(0, down.retryAtMs! - Date.now()) + 50));
  await w.flush();
  const up = w.stats();
  assert.equal(up.buffered, 0);
  assert.equal(up.written, 300);
  const count = await influx.query('shaper', 'SELECT count(v) FROM outage');
  assert.equal(count[0]?.count, 300, 'the kept lines reached the server');
  const oldest = await influx.query('shaper', 'SELECT min(v) FROM outage');
  assert.equal(oldest[0]?.min, 200, 'the newest 300 were kept');
  assert.match(events.join('\n'), /work again/);
  assert.ok(!events.join('\n').includes('CANARY-INFLUX-TOKEN'), 'the token is never in a message');
  await w.close();
});

test('a batch the server refuses (bad line) is dropped and counted; later batches still go through', async () => {
  const w = new InfluxWriter({ url: influx.url, org: 'isp', bucket: 'shaper', token: '', batchLines: 2, flushIntervalMs: 60_000 });
  w.add(['bad line without fields', 'also bad', pointLine('ok', {}, { v: 1 }, T)!]);
  await w.flush();
  const s = w.stats();
  assert.equal(s.droppedRejected, 2);
  assert.equal(s.written, 1);
  assert.match(s.lastError ?? '', /HTTP 400/);
  await w.close();
});

test('flushIntervalMs 0 (how the export uses it): nothing is written until the owner flushes', async () => {
  const w = new InfluxWriter({ url: influx.url, org: 'isp', bucket: 'shaper', token: '', flushIntervalMs: 0 });
  w.add([pointLine('owner_flush', { circuit_id: 'x' }, { down_bps: 1 }, T)!]);
  await new Promise((r) => setTimeout(r, 300));
  assert.equal(w.stats().written, 0, 'a writer without its own timer must not flush by itself');
  await w.flush();
  assert.equal(w.stats().written, 1);
  await w.close();
});
