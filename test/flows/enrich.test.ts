// test-gate: shared (CPU only; see test/support/gate.ts)
/**
 * Remote-address enrichment from the bundled data (npm `@ip-location-db/geo-whois-asn-country-mmdb`
 * read with mmdb-lib, `@ip-location-db/asn` CSV ranges): known public addresses, private/special
 * ranges, unknown and invalid input, the lazy load.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createEnricher, isPrivateAddress, type IpInfo } from '../../lib/flows/enrich.ts';
import { COUNTRY_CENTROIDS } from '../../lib/flows/geoCentroids.ts';

const e = createEnricher();

test('the bundled data is found, with its build dates', () => {
  const { sources, warnings } = e.info;
  assert.deepEqual(warnings, []);
  assert.deepEqual(sources.map((s) => [s.kind, s.origin, s.source.replace(/@[\d.]+$/, '')]), [
    ['geo', 'bundled', '@ip-location-db/geo-whois-asn-country-mmdb'],
    ['asn', 'bundled', '@ip-location-db/asn'],
  ]);
  for (const s of sources) {
    assert.match(s.builtAt ?? '', /^20\d\d-\d\d-\d\dT\d\d:\d\d:\d\d\.000Z$/, `${s.source} build date`);
    // The npm data is newer than the GeoLite2 package it replaced (2019).
    assert.ok(s.builtAt! >= '2026-06-01', `${s.source} built ${s.builtAt}`);
  }
});

test('the data is read on the first public lookup, not before', () => {
  const buffers = () => process.memoryUsage().arrayBuffers;
  const b0 = buffers();
  const lazy = createEnricher();
  assert.equal(lazy.info.sources.length, 2, 'info reads only metadata');
  assert.equal(lazy.lookup('10.1.2.3'), 'private');
  const b1 = buffers();
  assert.ok(b1 - b0 < 2e6, `no data in memory before a public lookup (+${((b1 - b0) / 1e6).toFixed(1)} MB of buffers)`);
  assert.equal((lazy.lookup('8.8.8.8') as IpInfo).asn, 15169);
  const b2 = buffers();
  assert.ok(b2 - b1 > 10e6, `country MMDB + ASN ranges read on the first public lookup (+${((b2 - b1) / 1e6).toFixed(1)} MB of buffers)`);
});

test('known public addresses: ASN, AS name, country, the country\'s point', () => {
  const g = e.lookup('8.8.8.8') as IpInfo;
  assert.deepEqual(g, { asn: 15169, asName: 'Google LLC', country: 'US', countryName: 'United States', city: null, lat: COUNTRY_CENTROIDS.US![0], lon: COUNTRY_CENTROIDS.US![1] });
  const cf = e.lookup('1.1.1.1') as IpInfo;
  assert.equal(cf.asn, 13335);
  assert.match(cf.asName!, /Cloudflare/);
  const v6 = e.lookup('2001:4860:4860::8888') as IpInfo;
  assert.equal(v6.asn, 15169);
  assert.equal(v6.country, 'US');
  const cf6 = e.lookup('2606:4700:4700::1111') as IpInfo;
  assert.equal(cf6.asn, 13335);
  assert.equal((e.lookup('9.9.9.9') as IpInfo).asn, 19281);
  const ripe = e.lookup('193.0.6.139') as IpInfo; // RIPE NCC, Amsterdam
  assert.deepEqual([ripe.asn, ripe.country, ripe.countryName], [3333, 'NL', 'Netherlands']);
  assert.ok(ripe.lat! > 50 && ripe.lat! < 54 && ripe.lon! > 3 && ripe.lon! < 8, JSON.stringify(ripe));
  const ripe6 = e.lookup('2001:67c:2e8:22::c100:68b') as IpInfo;
  assert.deepEqual([ripe6.asn, ripe6.country], [3333, 'NL']);
  assert.deepEqual(e.lookup('::ffff:8.8.8.8'), g, 'IPv4-mapped IPv6 = IPv4');
  assert.equal(e.lookup('8.8.4.4'), g, 'identical results share one object');
});

test('private and special ranges are "private"; unknown and invalid are null', () => {
  for (const ip of ['10.1.2.3', '192.168.1.1', '172.16.5.5', '100.64.0.1', '127.0.0.1', '169.254.1.1', '192.0.2.1',
    '224.0.0.1', '0.0.0.0', '255.255.255.255', 'fd00::1', 'fe80::1', '::1', '2001:db8::1', 'ff02::1', '::ffff:10.0.0.1']) {
    assert.equal(e.lookup(ip), 'private', ip);
    assert.equal(isPrivateAddress(ip), true, ip);
  }
  assert.equal(isPrivateAddress('8.8.8.8'), false);
  assert.equal(isPrivateAddress('2a00:1450:4001::1'), false);
  assert.equal(e.lookup('not an ip'), null);
  assert.equal(e.lookup('300.1.1.1'), null);
  // A public-looking IPv6 address in an unallocated block: nothing in the data.
  assert.equal(e.lookup('3fff:ffff::1'), null);
});

test('lookups are cached and bounded', () => {
  const small = createEnricher({ cacheSize: 10 });
  for (let i = 1; i <= 50; i++) small.lookup(`8.8.${i}.8`);
  assert.ok(small.cacheSize <= 10);
  assert.equal((small.lookup('8.8.8.8') as IpInfo).asn, 15169);
});
