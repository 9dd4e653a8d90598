// test-gate: shared (CPU only; see test/support/gate.ts)
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { AsnRow } from '../../lib/api/flows.ts';
import { countriesOf } from '../../lib/flows/aggregates.ts';

const row = (asn: number, country: string | null, flows: number, down: number, rtt: number | null): AsnRow => ({
  asn, name: `AS${asn}`, country, flows, rateBps: { down, up: down / 10 }, bytes: { down: down * 10, up: down }, rttMs: rtt, retransmits: 0, tcpPackets: 0, retransmitPct: null,
});

test('flows per country: sums, flow-weighted RTT, unknown country, order by rate', () => {
  const c = countriesOf([row(1, 'US', 3, 1000, 10), row(2, 'US', 1, 500, 30), row(3, 'DE', 2, 4000, null), row(4, null, 1, 1, 5)]);
  assert.deepEqual(c.map((x) => x.country), ['DE', 'US', 'unknown']);
  const us = c.find((x) => x.country === 'US')!;
  assert.equal(us.flows, 4);
  assert.equal(us.asns, 2);
  assert.equal(us.rateBps.down, 1500);
  assert.equal(us.rttMs, (10 * 3 + 30 * 1) / 4);
  assert.equal(c.find((x) => x.country === 'DE')!.rttMs, null);
});
