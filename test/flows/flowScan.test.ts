/**
 * The kernel-side flow table reader (dataplane/flowScan.ts, bpf/lqos_flow_scan.c): it returns exactly
 * the rows a batch lookup returns, the tracker reads the same flows through it as through batch
 * lookups, and it follows the table when the maps are recreated. Needs root and bpffs (xdpHarness.ts).
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { FLOW_KEY_SIZE, FLOW_ROW_SIZE, FLOW_VALUE_SIZE, MAX_FLOWS, compactFlowValues, writeFlowKey } from '../../dataplane/flowAbi.ts';
import { closeFlowMaps, deleteFlows, dumpFlowsRaw, writeFlows } from '../../dataplane/flows.ts';
import { openFlowScanner } from '../../dataplane/flowScan.ts';
import { bootTimeNs } from '../../dataplane/libbpf.ts';
import { teardownAll } from '../../dataplane/attach.ts';
import { createPinnedMaps } from '../../dataplane/object.ts';
import { FlowTracker } from '../../lib/flows/tracker.ts';
import { startFlowTracking } from '../../lib/flows/service.ts';
import { ctx, quiet, startXdp, stopXdp } from './xdpHarness.ts';

before(startXdp);
after(stopXdp);

/** n flows of mapped customers (100.64.0.0/16) with random counters; last_seen now, so none is idle. */
function flows(n: number, seed: number): { keys: Buffer; values: Buffer } {
  const keys = Buffer.alloc(n * FLOW_KEY_SIZE), values = randomBytes(n * FLOW_VALUE_SIZE);
  const now = bootTimeNs();
  for (let i = 0; i < n; i++) {
    writeFlowKey({ proto: 6, localIp: `100.64.${(i >> 8) & 255}.${i & 255}`, localPort: 1024 + seed, remoteIp: `198.51.100.${i % 250}`, remotePort: 443 }, keys, i * FLOW_KEY_SIZE);
    const o = i * FLOW_VALUE_SIZE;
    values.writeBigUInt64LE(now - 1_000_000_000n, o); // start
    values.writeBigUInt64LE(now, o + 8); // last_seen
    values[o + 124] = 0; // open: not retired as finished
  }
  return { keys, values };
}

/** key hex → row hex (struct lqos_flow_row). */
function rowsOf(keys: Buffer, rows: Buffer, n: number): Map<string, string> {
  const m = new Map<string, string>();
  for (let i = 0; i < n; i++) {
    m.set(keys.toString('hex', i * FLOW_KEY_SIZE, (i + 1) * FLOW_KEY_SIZE), rows.toString('hex', i * FLOW_ROW_SIZE, (i + 1) * FLOW_ROW_SIZE));
  }
  return m;
}

/** A batch dump with its values compacted as the tracker does (flowAbi.ts compactFlowValues). */
function batchRows(): { keys: Buffer; rows: Buffer; count: number } {
  const d = dumpFlowsRaw(ctx);
  const rows = Buffer.alloc(Math.max(1, d.count) * FLOW_ROW_SIZE);
  compactFlowValues(new Uint32Array(d.values.buffer, d.values.byteOffset, d.values.length >>> 2), new Uint32Array(rows.buffer, rows.byteOffset, rows.length >>> 2), d.count);
  return { keys: d.keys, rows, count: d.count };
}

test('a row keeps the fields userspace reads, at their struct lqos_flow_row offsets', () => {
  const v = Buffer.alloc(FLOW_VALUE_SIZE);
  for (let i = 0; i < FLOW_VALUE_SIZE; i++) v[i] = i; // byte i of the value holds i
  const r = Buffer.alloc(FLOW_ROW_SIZE);
  compactFlowValues(new Uint32Array(v.buffer, v.byteOffset, FLOW_VALUE_SIZE / 4), new Uint32Array(r.buffer, r.byteOffset, FLOW_ROW_SIZE / 4), 1);
  const from = (start: number, len: number) => [...Array(len).keys()].map((k) => start + k);
  // start .. next_seq (0-63), rtt_us (112-119), tc_handle (120-123), end/flags/tos (124-126), pad 0, circuit_hash (128-135), syn_seq (136-143)
  assert.deepEqual([...r], [...from(0, 64), ...from(112, 15), 0, ...from(128, 16)]);
});

function clearTable(): void {
  const d = dumpFlowsRaw(ctx);
  if (d.count) deleteFlows(d.keys.subarray(0, d.count * FLOW_KEY_SIZE), ctx);
}

test('the kernel-side reader returns exactly the rows of a batch lookup, compacted (insert, update, delete, empty)', () => {
  clearTable();
  const sc = openFlowScanner(ctx);
  try {
    assert.equal(sc.capacity, MAX_FLOWS);
    assert.equal(sc.scan(), 0, 'empty table');
    const a = flows(5_000, 1);
    writeFlows(a.keys, a.values, 5_000, ctx);
    const check = (what: string) => {
      const n = sc.scan();
      const d = batchRows();
      assert.equal(n, d.count, `${what}: row count`);
      assert.deepEqual(rowsOf(sc.keys, sc.rows, n), rowsOf(d.keys, d.rows, d.count), `${what}: rows`);
      return n;
    };
    assert.equal(check('5 000 inserted'), 5_000);
    // New counters for the first 1 000, the last 1 000 deleted.
    const b = flows(1_000, 1);
    writeFlows(b.keys, b.values, 1_000, ctx);
    deleteFlows(a.keys.subarray(4_000 * FLOW_KEY_SIZE), ctx);
    assert.equal(check('1 000 updated, 1 000 deleted'), 4_000);
    clearTable();
    assert.equal(sc.scan(), 0, 'emptied');
  } finally {
    sc.close();
  }
});

test('the tracker reads the same flows through the kernel-side reader as through batch lookups', () => {
  clearTable();
  const scanning = new FlowTracker({ ...ctx, noEvents: true });
  const batch = new FlowTracker({ ...ctx, noEvents: true, tableReader: 'batch' });
  try {
    assert.deepEqual(scanning.reader, { path: 'kernel-scan' });
    assert.deepEqual(batch.reader, { path: 'batch' });
    const view = (t: FlowTracker) => t.active().map((f) => ({ id: f.id, bytes: f.bytes, packets: f.packets, retransmits: f.retransmits, circuitHash: f.circuitHash, tcHandle: f.tcHandle }))
      .sort((x, y) => (x.id < y.id ? -1 : 1));
    const a = flows(3_000, 2);
    writeFlows(a.keys, a.values, 3_000, ctx);
    scanning.poll();
    batch.poll();
    assert.equal(scanning.activeCount, 3_000);
    assert.deepEqual(view(scanning), view(batch));
    // Counters move, 500 flows end (deleted from the kernel: evicted for the trackers), 500 start.
    const b = flows(2_500, 2);
    writeFlows(b.keys, b.values, 2_500, ctx);
    deleteFlows(a.keys.subarray(2_500 * FLOW_KEY_SIZE), ctx);
    const c = flows(500, 3);
    writeFlows(c.keys, c.values, 500, ctx);
    const s1 = scanning.poll(), s2 = batch.poll();
    assert.equal(s1.evicted, 500);
    assert.deepEqual({ entries: s1.entries, evicted: s1.evicted, expired: s1.expired }, { entries: s2.entries, evicted: s2.evicted, expired: s2.expired });
    assert.equal(scanning.activeCount, 3_000);
    assert.deepEqual(view(scanning), view(batch));
    assert.deepEqual(scanning.circuitStats().map((x) => [x.circuitHash, x.retransmits]).sort(), batch.circuitStats().map((x) => [x.circuitHash, x.retransmits]).sort());
  } finally {
    scanning.close();
    batch.close();
  }
});

test('after the maps are recreated the tracker reopens the reader on the new table (also after a poll found none)', async () => {
  const own = { pinRoot: `/sys/fs/bpf/lqfs-${randomBytes(3).toString('hex')}` };
  await createPinnedMaps({ ...own, logger: quiet });
  const t = new FlowTracker({ ...own, noEvents: true });
  try {
    const a = flows(100, 4);
    writeFlows(a.keys, a.values, 100, own);
    t.poll();
    assert.equal(t.activeCount, 100);
    // Teardown and new maps under the same pin root (what a re-attach with a new layout does). A
    // poll between the two finds no table: it fails, and the reader is tried again at the next poll.
    closeFlowMaps(own);
    await teardownAll({ ...own, logger: quiet });
    assert.throws(() => t.poll());
    assert.equal(t.reader.path, 'batch');
    await createPinnedMaps({ ...own, logger: quiet });
    const b = flows(40, 5);
    writeFlows(b.keys, b.values, 40, own);
    const st = t.poll();
    assert.equal(t.reader.path, 'kernel-scan');
    assert.equal(st.entries, 40, 'the new table is read');
    assert.equal(st.evicted, 100, 'the old flows are gone');
  } finally {
    t.close();
    closeFlowMaps(own);
    await teardownAll({ ...own, logger: quiet }).catch(() => undefined);
  }
});

test('lqosd says at start how the flow table is read', () => {
  const said: string[] = [];
  const log = { info: (m: string) => said.push(`info ${m}`), warn: (m: string) => said.push(`warn ${m}`) };
  const h = startFlowTracking({ ...ctx, intervalMs: 3_600_000, noEvents: true, enricher: false, log });
  h.poll();
  h.stop();
  assert.deepEqual(said, ['info flow tracking: the flow table is read by the kernel-side reader (lqos_flow_scan.o)']);
  said.length = 0;
  const b = startFlowTracking({ ...ctx, intervalMs: 3_600_000, noEvents: true, enricher: false, log, tableReader: 'batch' });
  b.poll();
  b.stop();
  assert.deepEqual(said, [], 'batch lookups asked for: nothing to explain');
});
