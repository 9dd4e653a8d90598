/**
 * The flow snapshot (GET /api/flows, `flows` channel) names the geo/ASN data and its build date, from
 * the bundled packages or from lqos.conf `[flows] geo_mmdb_path` / `asn_mmdb_path`; an unusable file is
 * warned about in lqosd's log when flow tracking starts. Uses our own pin root with the flow maps
 * only (no programs, no traffic); needs root and bpffs: run under `flock /tmp/lqos-kernel.lock`.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { teardownAll } from '../../dataplane/attach.ts';
import { createPinnedMaps } from '../../dataplane/object.ts';
import { closeFlowMaps } from '../../dataplane/flows.ts';
import type { DataplaneLogger } from '../../dataplane/log.ts';
import { parseConfigText } from '../../lib/config/load.ts';
import { flowOptionsOf, startFlowTracking } from '../../lib/flows/service.ts';
import { writeMmdb } from './geoMmdbWriter.ts';

const ctx = { pinRoot: `/sys/fs/bpf/lqgs-${randomBytes(3).toString('hex')}` };
const quiet: DataplaneLogger = { info: () => undefined, warn: () => undefined };
const dir = mkdtempSync(join(tmpdir(), 'lqos-geosnap-'));
const conf = (flows: string) => parseConfigText(`[bridge]\nto_internet = "eth0"\nto_network = "eth1"\n[flows]\n${flows}`, '/etc/lqos.conf').config;

before(async () => {
  await createPinnedMaps({ ...ctx, logger: quiet });
});
after(async () => {
  closeFlowMaps(ctx);
  await teardownAll({ ...ctx, logger: quiet }).catch(() => undefined);
  rmSync(dir, { recursive: true, force: true });
});

/** geoData of the snapshot before the first poll and after one, and what was logged. */
function geoDataOf(flows: string) {
  const warned: string[] = [];
  const h = startFlowTracking({ ...ctx, noEvents: true, ...flowOptionsOf(conf(flows)), log: { warn: (m) => warned.push(m) } });
  try {
    const first = h.snapshot().geoData;
    const polled = h.pollNow().geoData;
    assert.deepEqual(polled, first);
    return { geoData: polled, warned };
  } finally {
    h.stop();
  }
}

test('bundled data: package names and build dates in the snapshot', () => {
  const { geoData, warned } = geoDataOf('');
  assert.deepEqual(warned, []);
  assert.deepEqual(geoData.warnings, []);
  assert.deepEqual(geoData.sources.map((s) => [s.kind, s.origin, s.source.replace(/@[\d.]+$/, ''), s.builtAt?.slice(0, 4)]), [
    ['geo', 'bundled', '@ip-location-db/geo-whois-asn-country-mmdb', '2026'],
    ['asn', 'bundled', '@ip-location-db/asn', '2026'],
  ]);
  assert.match(geoData.sources[1]!.attribution!.url, /db-ip\.com/);
});

test('operator file from lqos.conf: its path and build date; a bad one is logged and replaced by the bundled data', () => {
  const geo = join(dir, 'geo.mmdb');
  writeFileSync(geo, writeMmdb({ '8.8.8.0/24': { country_code: 'NZ' } }, { databaseType: 'Test-Country', buildEpoch: Date.UTC(2025, 4, 6) / 1000 }));
  const missing = join(dir, 'asn-missing.mmdb');
  const { geoData, warned } = geoDataOf(`geo_mmdb_path = "${geo}"\nasn_mmdb_path = "${missing}"\n`);
  assert.deepEqual(geoData.sources.map((s) => [s.kind, s.origin, s.source.replace(/@[\d.]+$/, ''), s.dataType]), [
    ['geo', 'operator', geo, 'Test-Country'],
    ['asn', 'bundled', '@ip-location-db/asn', 'asn'],
  ]);
  assert.equal(geoData.sources[0]!.builtAt, '2025-05-06T00:00:00.000Z');
  assert.equal(warned.length, 1);
  assert.match(warned[0]!, new RegExp(`asn_mmdb_path = "${missing}" is not a readable MMDB file \\(no such file\\); using the bundled @ip-location-db/asn data`));
  assert.deepEqual(geoData.warnings, warned);
});
