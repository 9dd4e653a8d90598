// test-gate: shared (CPU only; see test/support/gate.ts)
/**
 * The Unknown IPs page's CSV downloads (lib/web/unknownIpsCsv.ts): upstream's totals layout, and
 * ShapedDevices.csv rows that our own validator accepts as they are (with the chosen parent and plan).
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { UnknownIpRow } from '../../lib/api/telemetry.ts';
import { validateIntegrationOutput } from '../../lib/integrations/common/output.ts';
import { parseShapedDevices } from '../../lib/inputs/shapedDevices.ts';
import { unknownShapedRowsCsv, unknownTotalsCsv } from '../../lib/web/unknownIpsCsv.ts';

const rows: UnknownIpRow[] = [
  { ip: '198.51.100.23', lastSeenMs: 0, downBps: 0, upBps: 0, downBytes: 48_200_000, upBytes: 1_250 },
  { ip: '2001:db8:ff::7', lastSeenMs: 0, downBps: 0, upBps: 0, downBytes: 900, upBytes: 0 },
];
const NOW = Date.UTC(2026, 11, 5, 12);

test('totals: upstream header, one line per address, exact byte counts', () => {
  assert.equal(unknownTotalsCsv(rows), 'IP Address,Total Download (bytes),Total Upload (bytes)\n198.51.100.23,48200000,1250\n2001:db8:ff::7,900,0\n');
  assert.equal(unknownTotalsCsv([]), 'IP Address,Total Download (bytes),Total Upload (bytes)\n');
});

test('ShapedDevices rows: the 13 classic columns, IPv4/IPv6 in their own column, the chosen plan and parent; our validator accepts them', () => {
  const csv = unknownShapedRowsCsv(rows, { downMbps: 100, upMbps: 20.5, parent: 'AP A', now: NOW });
  const lines = csv.trimEnd().split('\n');
  assert.equal(lines[0], 'Circuit ID,Circuit Name,Device ID,Device Name,Parent Node,MAC,IPv4,IPv6,Download Min Mbps,Upload Min Mbps,Download Max Mbps,Upload Max Mbps,Comment');
  const parsed = parseShapedDevices(csv, 'unknown-ips-shaped-devices.csv');
  assert.deepEqual(
    parsed.rows.map((r) => [r.circuitId, r.parentNode, r.ipv4, r.ipv6, r.downloadMin, r.uploadMin, r.downloadMax, r.uploadMax]),
    [
      ['unknown-198.51.100.23', 'AP A', '198.51.100.23', '', '100', '20.5', '100', '20.5'],
      ['unknown-2001:db8:ff::7', 'AP A', '', '2001:db8:ff::7', '100', '20.5', '100', '20.5'],
    ],
  );
  assert.equal(parsed.rows[0]!.comment, 'unknown IP seen 2026-12-05: check the plan and parent, then rename');
  assert.equal(lines.length, 3);
  const network = JSON.stringify({ 'Site 1': { downloadBandwidthMbps: 1000, uploadBandwidthMbps: 1000, children: { 'AP A': { downloadBandwidthMbps: 500, uploadBandwidthMbps: 500 } } } });
  assert.deepEqual(validateIntegrationOutput(network, csv).filter((i) => i.severity === 'error'), [], 'the rows validate against a network with that parent');
  const flat = unknownShapedRowsCsv(rows, { downMbps: 50, upMbps: 10, parent: '', now: NOW });
  assert.deepEqual(validateIntegrationOutput('{}', flat).filter((i) => i.severity === 'error'), [], 'no parent: valid for a flat network');
});
