/**
 * `[flows]` keys of lqos.conf (issue 13 item 1): flow_timeout_seconds is the tracker's idle expiry,
 * do_not_track_subnets keeps flows with either endpoint in those subnets out of the tracker's
 * tables and queries. Synthetic flow entries are written into the pinned flow table of our own pin
 * root (no programs, no traffic) with chosen last-seen times, then the tracker polls them.
 * Needs root and bpffs; run under `flock /tmp/lqos-kernel.lock`.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { teardownAll } from '../../dataplane/attach.ts';
import { createPinnedMaps } from '../../dataplane/object.ts';
import { bootTimeNs } from '../../dataplane/libbpf.ts';
import { FLOW_KEY_SIZE, FLOW_VALUE_SIZE, writeFlowKey, writeFlowValue, type FlowKey } from '../../dataplane/flowAbi.ts';
import { closeFlowMaps, deleteFlows, readFlows, writeFlows } from '../../dataplane/flows.ts';
import type { DataplaneLogger } from '../../dataplane/log.ts';
import { parseConfigText } from '../../lib/config/load.ts';
import { flowOptionsOf } from '../../lib/flows/service.ts';
import { FlowTracker } from '../../lib/flows/tracker.ts';

const ctx = { pinRoot: `/sys/fs/bpf/lqfc-${randomBytes(3).toString('hex')}` };
const quiet: DataplaneLogger = { info: () => undefined, warn: () => undefined };
const conf = (flows: string) => parseConfigText(`[bridge]\nto_internet = "eth0"\nto_network = "eth1"\n[flows]\n${flows}`, '/etc/lqos.conf').config;

before(async () => {
  await createPinnedMaps({ ...ctx, logger: quiet });
});

after(async () => {
  closeFlowMaps(ctx);
  await teardownAll({ ...ctx, logger: quiet }).catch(() => undefined);
});

/** Writes UDP flows into the table, each last seen `idleS` seconds ago. */
function put(flows: { key: Omit<FlowKey, 'proto'>; idleS: number }[]): void {
  deleteFlows(readFlows(ctx), ctx);
  const keys = Buffer.alloc(flows.length * FLOW_KEY_SIZE);
  const vals = Buffer.alloc(flows.length * FLOW_VALUE_SIZE);
  const now = bootTimeNs();
  flows.forEach((f, i) => {
    writeFlowKey({ proto: 17, ...f.key }, keys, i * FLOW_KEY_SIZE);
    const seen = now - BigInt(Math.round(f.idleS * 1e9));
    writeFlowValue({ startNs: seen - 1_000_000_000n, lastSeenNs: seen, bytes: { down: 1000, up: 100 }, packets: { down: 2, up: 1 } }, vals, i * FLOW_VALUE_SIZE);
  });
  writeFlows(keys, vals, flows.length, ctx);
}

const flow = (localIp: string, localPort: number, remoteIp = '198.51.100.7') => ({ localIp, localPort, remoteIp, remotePort: 53 });

test('flow_timeout_seconds sets the idle expiry of open flows', () => {
  const flows = [
    { key: flow('100.64.0.1', 1001), idleS: 3 },
    { key: flow('100.64.0.2', 1002), idleS: 8 },
    { key: flow('100.64.0.3', 1003), idleS: 20 },
  ];
  // flow_timeout_seconds = 5: the flows idle for 8 s and 20 s are retired (reason "idle") and leave the kernel table.
  put(flows);
  const opts = flowOptionsOf(conf('flow_timeout_seconds = 5\n'));
  assert.equal(opts.idleTimeoutMs, 5000);
  const short = new FlowTracker({ ...ctx, noEvents: true, ...opts });
  try {
    short.poll();
    assert.deepEqual(short.active().map((f) => f.localPort), [1001]);
    assert.deepEqual(short.recent().map((f) => [f.localPort, f.reason]).sort(), [[1002, 'idle'], [1003, 'idle']]);
    assert.deepEqual(readFlows(ctx).map((f) => f.localPort), [1001]);
  } finally {
    short.close();
  }
  // flow_timeout_seconds = 10: only the 20 s one goes.
  put(flows);
  const mid = new FlowTracker({ ...ctx, noEvents: true, ...flowOptionsOf(conf('flow_timeout_seconds = 10\n')) });
  try {
    mid.poll();
    assert.deepEqual(mid.active().map((f) => f.localPort).sort(), [1001, 1002]);
    assert.deepEqual(mid.recent().map((f) => f.localPort), [1003]);
  } finally {
    mid.close();
  }
  // Default (30 s, as upstream): all three stay.
  put(flows);
  const dflt = new FlowTracker({ ...ctx, noEvents: true, ...flowOptionsOf(conf('')) });
  try {
    dflt.poll();
    assert.equal(dflt.activeCount, 3);
  } finally {
    dflt.close();
  }
});

test('do_not_track_subnets keeps flows with either endpoint inside out of the tracker (tables, queries, kernel table)', () => {
  const flows = [
    { key: flow('100.64.0.1', 2001), idleS: 0 }, // tracked
    { key: flow('100.64.9.5', 2002), idleS: 0 }, // local side in 100.64.9.0/24
    { key: flow('100.64.0.2', 2003, '203.0.113.40'), idleS: 0 }, // remote side in 203.0.113.0/24
    { key: flow('2001:db8:1::5', 2004, '2001:db8:ffff::1'), idleS: 0 }, // remote side in 2001:db8:ffff::/48
    { key: flow('2001:db8:1::6', 2005, '2001:db8:eeee::1'), idleS: 0 }, // tracked
  ];
  put(flows);
  const opts = flowOptionsOf(conf('do_not_track_subnets = ["100.64.9.0/24", "203.0.113.0/24", "2001:db8:ffff::/48"]\n'));
  assert.deepEqual(opts.doNotTrack, ['100.64.9.0/24', '203.0.113.0/24', '2001:db8:ffff::/48']);
  const tracker = new FlowTracker({ ...ctx, noEvents: true, ...opts });
  try {
    tracker.poll();
    tracker.poll();
    assert.deepEqual(tracker.active().map((f) => f.localPort).sort(), [2001, 2005]);
    assert.deepEqual(tracker.top(10).map((f) => f.localPort).sort(), [2001, 2005]);
    assert.equal(tracker.circuitStats().reduce((n, c) => n + c.activeFlows, 0), 2, 'per-circuit tables count only tracked flows');
    assert.deepEqual(tracker.recent(), [], 'untracked flows are not "finished" flows either');
    assert.deepEqual(readFlows(ctx).map((f) => f.localPort).sort(), [2001, 2005], 'untracked flows take no slot in the kernel table');
  } finally {
    tracker.close();
  }
  // Without the key every flow is tracked.
  put(flows);
  const all = new FlowTracker({ ...ctx, noEvents: true, ...flowOptionsOf(conf('')) });
  try {
    all.poll();
    assert.equal(all.activeCount, 5);
  } finally {
    all.close();
  }
});
