/**
 * RTT records lost to a full flow_events ring buffer are counted (dp_stats RING_DROP) and reach the
 * flow snapshot (stats.ringDrops / ringDropsDelta) with one rate-limited warning. The ring is filled
 * through BPF_PROG_TEST_RUN (xdpHarness.ts) with nobody draining it: one RTT sample per new flow
 * (the per-flow gap never holds back a flow's first sample), so every sample beyond the ring's
 * capacity — 1 MiB / 80 B per record (72 B + 8 B header) = 13 107 records — is one drop.
 * Needs root and bpffs; own pin root.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { FLOW_EVENT_SIZE } from '../../dataplane/flowAbi.ts';
import { readRingDrops } from '../../dataplane/flows.ts';
import { startFlowTracking } from '../../lib/flows/service.ts';
import { ctx, down, startXdp, stopXdp, up } from './xdpHarness.ts';

const RING_BYTES = 1 << 20; // LQOS_FLOW_RINGBUF
const RECORD = FLOW_EVENT_SIZE + 8; // BPF_RINGBUF_HDR_SZ, already a multiple of 8
const CAPACITY = Math.floor(RING_BYTES / RECORD);

before(startXdp);
after(stopXdp);

let nextPort = 10_000;
/** `n` new TCP flows with one Internet-side RTT sample each (data up with a TSval, its echo down). */
function samples(n: number): void {
  for (let i = 0; i < n; i++) {
    const lp = nextPort++;
    up({ proto: 6, sport: lp, dport: 443, seq: 1, ack: 1, flags: { ack: true }, ts: [77, 0], payload: 10 });
    down({ proto: 6, sport: 443, dport: lp, seq: 1, ack: 11, flags: { ack: true }, ts: [5, 77] });
  }
}

test('a full ring counts every lost RTT record; the snapshot shows total and delta; one warning per minute', () => {
  const warnings: string[] = [];
  const ft = startFlowTracking({ ...ctx, intervalMs: 3_600_000, drainIntervalMs: 3_600_000, enricher: false, log: { warn: (m) => warnings.push(m) } });
  try {
    let s = ft.pollNow();
    assert.equal(s.stats.ringDrops, 0);
    assert.equal(CAPACITY, 13_107);

    const lost = 893;
    samples(CAPACITY + lost);
    assert.equal(readRingDrops(ctx), lost, 'kernel counter = samples beyond the ring capacity');
    s = ft.pollNow();
    assert.equal(s.stats.rttEvents, CAPACITY, 'everything the ring held was delivered');
    assert.equal(s.stats.ringDrops, lost);
    assert.equal(s.stats.ringDropsDelta, lost);
    assert.equal(warnings.length, 1);
    assert.match(warnings[0]!, /RTT samples lost: ring buffer full — 893 RTT record\(s\) dropped/);

    // Drained: new samples get through again, nothing more is lost.
    samples(10);
    s = ft.pollNow();
    assert.equal(s.stats.rttEvents, 10);
    assert.equal(s.stats.ringDrops, lost);
    assert.equal(s.stats.ringDropsDelta, 0);

    // Overflow again within the minute: counted, no second warning yet.
    samples(CAPACITY + 5);
    s = ft.pollNow();
    assert.equal(s.stats.ringDrops, lost + 5);
    assert.equal(s.stats.ringDropsDelta, 5);
    assert.equal(warnings.length, 1, 'warning rate-limited');
  } finally {
    ft.stop();
  }
});
