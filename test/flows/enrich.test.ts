/**
 * Remote-address enrichment from the packaged GeoLite2 databases (npm `geolite2.mmdb`, read with
 * mmdb-lib): known public addresses, private/special ranges, unknown and invalid input.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createEnricher, isPrivateAddress, packagedDatabases, type IpInfo } from '../../lib/flows/enrich.ts';

const e = createEnricher();

test('the packaged databases are found', () => {
  const p = packagedDatabases();
  assert.ok(p.asn && p.city, JSON.stringify(p));
  assert.match(e.info.asnBuilt ?? '', /^\d{4}-\d{2}-\d{2}$/);
});

test('the databases are read on the first public lookup, not before', () => {
  const buffers = () => process.memoryUsage().arrayBuffers;
  const b0 = buffers();
  const lazy = createEnricher();
  assert.equal(lazy.lookup('10.1.2.3'), 'private');
  const b1 = buffers();
  assert.ok(b1 - b0 < 8e6, `no database in memory before a public lookup (+${((b1 - b0) / 1e6).toFixed(1)} MB of buffers)`);
  assert.equal((lazy.lookup('8.8.8.8') as IpInfo).asn, 15169);
  const b2 = buffers();
  assert.ok(b2 - b1 > 40e6, `GeoLite2 ASN + City read on the first public lookup (+${((b2 - b1) / 1e6).toFixed(1)} MB of buffers)`);
});

test('known public addresses: ASN, AS name, country, lat/lon', () => {
  const g = e.lookup('8.8.8.8') as IpInfo;
  assert.equal(g.asn, 15169);
  assert.match(g.asName!, /Google/);
  assert.equal(g.country, 'US');
  assert.equal(typeof g.lat, 'number');
  assert.equal(typeof g.lon, 'number');
  const cf = e.lookup('1.1.1.1') as IpInfo;
  assert.equal(cf.asn, 13335);
  assert.match(cf.asName!, /Cloudflare/);
  const v6 = e.lookup('2001:4860:4860::8888') as IpInfo;
  assert.equal(v6.asn, 15169);
  assert.equal((e.lookup('9.9.9.9') as IpInfo).asn, 19281);
  const aa = e.lookup('81.2.69.160') as IpInfo; // GeoLite2 test network: London area
  assert.equal(aa.country, 'GB');
  assert.ok(aa.lat! > 50 && aa.lat! < 53 && aa.lon! > -1 && aa.lon! < 1, JSON.stringify(aa));
  assert.deepEqual(e.lookup('::ffff:8.8.8.8'), g, 'IPv4-mapped IPv6 = IPv4');
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
  // A public-looking IPv6 address in an unallocated block: nothing in the databases.
  assert.equal(e.lookup('3fff:ffff::1'), null);
});

test('lookups are cached and bounded', () => {
  const small = createEnricher({ cacheSize: 10 });
  for (let i = 1; i <= 50; i++) small.lookup(`8.8.${i}.8`);
  assert.ok(small.cacheSize <= 10);
  assert.equal((small.lookup('8.8.8.8') as IpInfo).asn, 15169);
});
