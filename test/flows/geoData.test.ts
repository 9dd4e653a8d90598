// test-gate: shared (CPU only; see test/support/gate.ts)
/**
 * Where the geo/ASN data comes from (lib/flows/geoSources.ts) and the operator's files (lqos.conf
 * `[flows] geo_mmdb_path` / `asn_mmdb_path`): MMDBs written by test/flows/geoMmdbWriter.ts with known
 * records and build date replace the bundled data; a missing or non-MMDB file gives a warning naming
 * it and the bundled data is used. Also: the country point table is what scripts/geo-centroids.ts writes.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseConfigText } from '../../lib/config/load.ts';
import { restartOnlyChanges } from '../../lib/daemon/configHolder.ts';
import { createEnricher, type IpInfo } from '../../lib/flows/enrich.ts';
import { builtAtOfVersion, readMmdbMetadata, resolveGeoFiles } from '../../lib/flows/geoSources.ts';
import { flowOptionsOf } from '../../lib/flows/service.ts';
import { countryCentroids, TABLE_FILE, tableSource } from '../../scripts/geo-centroids.ts';
import { writeMmdb } from './geoMmdbWriter.ts';

const dir = mkdtempSync(join(tmpdir(), 'lqos-geo-'));
after(() => rmSync(dir, { recursive: true, force: true }));

const BUILT = Date.UTC(2025, 0, 2, 3, 4, 5) / 1000;
const cityPath = join(dir, 'city.mmdb');
writeFileSync(cityPath, writeMmdb({
  // MaxMind's schema (GeoLite2/GeoIP2 City) …
  '8.8.8.0/24': { country: { iso_code: 'NZ', names: { en: 'New Zealand' } }, city: { names: { en: 'Testville' } }, location: { latitude: { double: -41.3 }, longitude: { double: 174.8 } } },
  // … and ip-location-db's flat one; a country without coordinates gets the country's point.
  '2001:4860::/32': { country_code: 'jp', city: 'Flatville', latitude: { double: 35.7 }, longitude: { double: 139.7 } },
  '9.9.9.0/24': { country_code: 'CH' },
}, { databaseType: 'Test-City', buildEpoch: BUILT }));
const asnPath = join(dir, 'asn.mmdb');
writeFileSync(asnPath, writeMmdb({
  '8.8.8.0/24': { autonomous_system_number: 64500, autonomous_system_organization: 'TEST-AS' },
  '2001:4860::/32': { autonomous_system_number: 4200000000, autonomous_system_organization: 'TEST-AS-32BIT' },
}, { databaseType: 'Test-ASN', buildEpoch: BUILT + 86400 }));
const textPath = join(dir, 'notes.mmdb');
writeFileSync(textPath, 'not a database\n'.repeat(100));

test('ip-location-db package versions carry the build hour', () => {
  assert.equal(builtAtOfVersion('2.3.2026061719'), '2026-06-17T19:00:00.000Z');
  assert.equal(builtAtOfVersion('1.0.0'), null);
});

test('MMDB metadata is read from the file tail; other files are refused with the reason', () => {
  assert.deepEqual(readMmdbMetadata(cityPath), { databaseType: 'Test-City', ipVersion: 6, builtAt: '2025-01-02T03:04:05.000Z' });
  assert.throws(() => readMmdbMetadata(textPath), /not an MMDB file/);
  assert.throws(() => readMmdbMetadata(join(dir, 'missing.mmdb')), /ENOENT/);
});

test('operator MMDBs replace the bundled data, with their build dates', () => {
  const e = createEnricher({ geoMmdbPath: cityPath, asnMmdbPath: asnPath });
  assert.deepEqual(e.info.warnings, []);
  assert.deepEqual(e.info.sources.map((s) => [s.kind, s.origin, s.source, s.dataType, s.builtAt]), [
    ['geo', 'operator', cityPath, 'Test-City', '2025-01-02T03:04:05.000Z'],
    ['asn', 'operator', asnPath, 'Test-ASN', '2025-01-03T03:04:05.000Z'],
  ]);
  assert.deepEqual(e.lookup('8.8.8.8'), { asn: 64500, asName: 'TEST-AS', country: 'NZ', countryName: 'New Zealand', city: 'Testville', lat: -41.3, lon: 174.8 });
  assert.deepEqual(e.lookup('2001:4860:4860::8888'), { asn: 4200000000, asName: 'TEST-AS-32BIT', country: 'JP', countryName: 'Japan', city: 'Flatville', lat: 35.7, lon: 139.7 });
  const ch = e.lookup('9.9.9.9') as IpInfo;
  assert.deepEqual([ch.asn, ch.country, ch.countryName, ch.city], [null, 'CH', 'Switzerland', null]);
  assert.ok(ch.lat! > 45 && ch.lat! < 48 && ch.lon! > 6 && ch.lon! < 11, `Switzerland's point: ${ch.lat}, ${ch.lon}`);
  // Addresses the operator's files do not cover are unknown (the bundled data is not consulted).
  assert.equal(e.lookup('1.1.1.1'), null);
});

test('one operator file: the other data set stays bundled', () => {
  const e = createEnricher({ asnMmdbPath: asnPath });
  assert.deepEqual(e.info.sources.map((s) => [s.kind, s.origin]), [['geo', 'bundled'], ['asn', 'operator']]);
  const g = e.lookup('8.8.8.8') as IpInfo;
  assert.deepEqual([g.asn, g.asName, g.country], [64500, 'TEST-AS', 'US']);
});

test('a missing or non-MMDB operator file: a warning naming it, and the bundled data', () => {
  const warned: string[] = [];
  const missing = join(dir, 'missing.mmdb');
  const e = createEnricher({ geoMmdbPath: missing, asnMmdbPath: textPath, log: { warn: (m) => warned.push(m) } });
  assert.deepEqual(warned, e.info.warnings);
  assert.equal(warned.length, 2);
  assert.equal(warned[0], `[flows] geo_mmdb_path = "${missing}" is not a readable MMDB file (no such file); using the bundled @ip-location-db/geo-whois-asn-country-mmdb data instead`);
  assert.match(warned[1]!, new RegExp(`^\\[flows\\] asn_mmdb_path = "${textPath}" is not a readable MMDB file \\(no MaxMind DB metadata \\(not an MMDB file\\)\\); using the bundled @ip-location-db/asn data instead$`));
  assert.deepEqual(e.info.sources.map((s) => [s.kind, s.origin]), [['geo', 'bundled'], ['asn', 'bundled']]);
  const g = e.lookup('8.8.8.8') as IpInfo;
  assert.deepEqual([g.asn, g.country], [15169, 'US']);
});

test('lqos.conf [flows] geo_mmdb_path / asn_mmdb_path reach the flow tracker; changing them needs a restart', () => {
  const conf = (flows: string) => parseConfigText(`[bridge]\nto_internet = "eth0"\nto_network = "eth1"\n[flows]\n${flows}`, '/etc/lqos.conf');
  const set = conf(`geo_mmdb_path = "${cityPath}"\nasn_mmdb_path = "${asnPath}"\n`);
  assert.deepEqual(set.warnings, []);
  assert.deepEqual(flowOptionsOf(set.config).geoFiles, { geoMmdbPath: cityPath, asnMmdbPath: asnPath });
  assert.equal(flowOptionsOf(conf('').config).geoFiles, undefined);
  assert.throws(() => conf('geo_mmdb_path = 5\n'), /geo_mmdb_path/);
  assert.deepEqual(restartOnlyChanges(['flows.geo_mmdb_path', 'flows.asn_mmdb_path']), ['flows.geo_mmdb_path', 'flows.asn_mmdb_path']);
  assert.deepEqual(resolveGeoFiles(flowOptionsOf(set.config).geoFiles).info.sources.map((s) => s.source), [cityPath, asnPath]);
});

test('the country point table is what scripts/geo-centroids.ts writes from world-atlas', () => {
  const rows = countryCentroids();
  assert.ok(rows.length > 200, `${rows.length} countries`);
  assert.equal(readFileSync(TABLE_FILE, 'utf8'), tableSource(rows), 'lib/flows/geoCentroids.ts is stale: run node --import tsx scripts/geo-centroids.ts');
  const at = new Map(rows.map(([c, lat, lon]) => [c, [lat, lon]]));
  // Mainland points (the largest polygon): not pulled towards Alaska/Hawaii or overseas departments.
  for (const [c, lat0, lat1, lon0, lon1] of [['US', 35, 42, -105, -90], ['FR', 45, 48, 1, 4], ['DE', 49, 53, 8, 12], ['AU', -30, -20, 128, 140], ['GB', 51, 56, -4, 0]] as const) {
    const [lat, lon] = at.get(c)!;
    assert.ok(lat! > lat0 && lat! < lat1 && lon! > lon0 && lon! < lon1, `${c}: ${lat}, ${lon}`);
  }
});

test('an operator file gone before the first lookup: one warning, lookups answer unknown, no throw', () => {
  const gone = join(dir, 'gone.mmdb');
  writeFileSync(gone, readFileSync(cityPath));
  const warned: string[] = [];
  const e = createEnricher({ geoMmdbPath: gone, asnMmdbPath: asnPath, log: { warn: (m) => warned.push(m) } });
  assert.deepEqual(warned, [], 'the file is there at start');
  rmSync(gone);
  assert.equal(e.lookup('8.8.8.8'), null);
  assert.equal(e.lookup('2001:4860::1'), null);
  assert.equal(warned.length, 1, `one warning, got ${JSON.stringify(warned)}`);
  assert.match(warned[0]!, /^geo\/ASN data could not be loaded \(.*gone\.mmdb.*\); flows are shown without ASN and country until lqosd restarts$/);
});
