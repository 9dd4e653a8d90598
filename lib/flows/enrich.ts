/**
 * Remote IP → ASN, AS name, country, city, lat/lon from offline MaxMind-format databases.
 *
 * Data: the npm package `geolite2.mmdb` (GeoLite2-ASN.mmdb + GeoLite2-City.mmdb, MaxMind GeoLite2,
 * "This product includes GeoLite2 data created by MaxMind"), read with `mmdb-lib`. Other MMDB files
 * with the same schema can be given explicitly (`asnPath`, `cityPath`), e.g. fresher downloads.
 *
 * `lookup(ip)` returns:
 *   'private' for addresses that are not globally routable (RFC 1918, CGNAT, loopback, link-local,
 *             ULA, multicast, documentation, reserved …),
 *   null      for public addresses the databases know nothing about (or invalid text),
 *   an `IpInfo` otherwise (fields null where the database has no value).
 * Results are cached per address in a bounded LRU (`cacheSize`); identical results share one object.
 * The databases (≈ 68 MB) are read on the first lookup of a public address (or the first read of
 * `info`), so a process with flow tracking but no traffic does not hold them.
 */
import { readFileSync, existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import ipaddr from 'ipaddr.js';
import { Reader, type AsnResponse, type CityResponse } from 'mmdb-lib';

export interface IpInfo {
  asn: number | null;
  asName: string | null;
  /** ISO 3166-1 alpha-2 */
  country: string | null;
  countryName: string | null;
  city: string | null;
  lat: number | null;
  lon: number | null;
}

export type Enrichment = IpInfo | 'private' | null;

export interface EnricherOptions {
  asnPath?: string;
  cityPath?: string;
  /** Cached lookups per address (LRU; default 32 768: the snapshot keeps each flow's result itself). */
  cacheSize?: number;
}

export interface Enricher {
  lookup(ip: string): Enrichment;
  /** Build dates of the databases (ISO) and where they came from (reading it loads the databases). */
  readonly info: { asn: string | null; city: string | null; asnBuilt: string | null; cityBuilt: string | null };
  readonly cacheSize: number;
}

type AsnRecord = AsnResponse;
type CityRecord = CityResponse;

/** Paths of the packaged databases (null when the package is not installed). */
export function packagedDatabases(): { asn: string | null; city: string | null } {
  try {
    const req = createRequire(import.meta.url);
    const dir = join(dirname(req.resolve('geolite2.mmdb/package.json')), 'dist');
    const asn = join(dir, 'GeoLite2-ASN.mmdb');
    const city = join(dir, 'GeoLite2-City.mmdb');
    return { asn: existsSync(asn) ? asn : null, city: existsSync(city) ? city : null };
  } catch {
    return { asn: null, city: null };
  }
}

const PUBLIC_RANGES = new Set(['unicast']);

/** True for addresses that never appear in public routing (private/special ranges). */
export function isPrivateAddress(ip: string): boolean {
  let a: ipaddr.IPv4 | ipaddr.IPv6;
  try {
    a = ipaddr.parse(ip);
  } catch {
    return false;
  }
  if (a.kind() === 'ipv6' && (a as ipaddr.IPv6).isIPv4MappedAddress()) a = (a as ipaddr.IPv6).toIPv4Address();
  const range = a.range();
  if (a.kind() === 'ipv6') {
    // ipaddr.js calls every non-special v6 address 'unicast'; 2000::/3 is the global unicast space.
    if (range !== 'unicast') return true;
    const first = (a as ipaddr.IPv6).parts[0]!;
    return (first & 0xe000) !== 0x2000 || (first === 0x2001 && (a as ipaddr.IPv6).parts[1] === 0x0db8);
  }
  return !PUBLIC_RANGES.has(range);
}

function buildDate(r: Reader<object> | null): string | null {
  if (!r) return null;
  const v = (r.metadata as { buildEpoch?: unknown }).buildEpoch;
  const d = v instanceof Date ? v : new Date(Number(v) * 1000);
  return Number.isFinite(d.getTime()) ? d.toISOString().slice(0, 10) : null;
}

export function createEnricher(opts: EnricherOptions = {}): Enricher {
  const pk = packagedDatabases();
  const asnPath = opts.asnPath ?? pk.asn;
  const cityPath = opts.cityPath ?? pk.city;
  let dbs: { asn: Reader<AsnRecord> | null; city: Reader<CityRecord> | null } | undefined;
  const open = () => (dbs ??= {
    asn: asnPath ? new Reader<AsnRecord>(readFileSync(asnPath)) : null,
    city: cityPath ? new Reader<CityRecord>(readFileSync(cityPath)) : null,
  });
  const max = Math.max(1, opts.cacheSize ?? 32_768);
  const cache = new Map<string, Enrichment>();
  /** Identical results share one object (many addresses of an ASN and place): bounded like the cache. */
  const interned = new Map<string, IpInfo>();
  const intern = (v: IpInfo): IpInfo => {
    const k = `${v.asn}|${v.asName}|${v.country}|${v.countryName}|${v.city}|${v.lat}|${v.lon}`;
    const hit = interned.get(k);
    if (hit) return hit;
    if (interned.size >= max) interned.clear();
    interned.set(k, v);
    return v;
  };

  const resolve = (ip: string): Enrichment => {
    if (!ipaddr.isValid(ip)) return null;
    if (isPrivateAddress(ip)) return 'private';
    let text = ip;
    const parsed = ipaddr.parse(ip);
    if (parsed.kind() === 'ipv6' && (parsed as ipaddr.IPv6).isIPv4MappedAddress()) text = (parsed as ipaddr.IPv6).toIPv4Address().toString();
    const { asn, city } = open();
    let a: AsnRecord | null = null;
    let c: CityRecord | null = null;
    try { a = asn?.get(text) ?? null; } catch { a = null; }
    try { c = city?.get(text) ?? null; } catch { c = null; }
    if (!a && !c) return null;
    const country = c?.country ?? c?.registered_country;
    return intern({
      asn: a?.autonomous_system_number ?? null,
      asName: a?.autonomous_system_organization ?? null,
      country: country?.iso_code ?? null,
      countryName: country?.names?.en ?? null,
      city: c?.city?.names?.en ?? null,
      lat: c?.location?.latitude ?? null,
      lon: c?.location?.longitude ?? null,
    });
  };

  return {
    lookup(ip: string): Enrichment {
      const hit = cache.get(ip);
      if (hit !== undefined) {
        // LRU: a hit moves to the end (Map order), the oldest entry goes when full.
        cache.delete(ip);
        cache.set(ip, hit);
        return hit;
      }
      const v = resolve(ip);
      if (cache.size >= max) cache.delete(cache.keys().next().value!);
      cache.set(ip, v);
      return v;
    },
    get info() {
      const { asn, city } = open();
      return { asn: asnPath, city: cityPath, asnBuilt: buildDate(asn as Reader<object> | null), cityBuilt: buildDate(city as Reader<object> | null) };
    },
    get cacheSize() {
      return cache.size;
    },
  };
}

let shared: Enricher | undefined;
/** Process-wide enricher on the packaged databases (read on the first public lookup, ~70 MB resident). */
export function defaultEnricher(): Enricher {
  shared ??= createEnricher();
  return shared;
}
