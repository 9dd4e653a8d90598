/**
 * Remote IP → ASN, AS name, country, city, lat/lon from offline data (./geoSources.ts chooses the files):
 *
 *  - geo: an MMDB, by default the bundled `@ip-location-db/geo-whois-asn-country-mmdb` (country only;
 *    the location is then the country's point from ./geoCentroids.ts), or the operator's
 *    `[flows] geo_mmdb_path` (country or city data in MaxMind's schema — GeoLite2/GeoIP2 — or in
 *    ip-location-db's flat one: country_code, city, latitude, longitude);
 *  - asn: by default the bundled `@ip-location-db/asn` CSV ranges (./geoAsnTable.ts), or the
 *    operator's `[flows] asn_mmdb_path` (autonomous_system_number / _organization records).
 *
 * `lookup(ip)` returns:
 *   'private' for addresses that are not globally routable (RFC 1918, CGNAT, loopback, link-local,
 *             ULA, multicast, documentation, reserved …),
 *   null      for public addresses the data knows nothing about (or invalid text),
 *   an `IpInfo` otherwise (fields null where the data has no value).
 * Results are cached per address in a bounded LRU (`cacheSize`); identical results share one object.
 * The data (≈ 8 MB MMDB + ≈ 12 MB of ASN ranges and names by default) is read on the first lookup of a public
 * address, so a process with flow tracking but no traffic does not hold it; `info` (sources, build
 * dates, warnings) reads only file metadata.
 */
import { readFileSync } from 'node:fs';
import ipaddr from 'ipaddr.js';
import { Reader } from 'mmdb-lib';
import type { GeoDataInfo } from '../api/flows.ts';
import { AsnTable, type AsnHit } from './geoAsnTable.ts';
import { COUNTRY_CENTROIDS } from './geoCentroids.ts';
import { resolveGeoFiles, type GeoFiles, type GeoPaths } from './geoSources.ts';

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

export interface EnricherOptions extends GeoPaths {
  /** Cached lookups per address (LRU; default 32 768: the snapshot keeps each flow's result itself). */
  cacheSize?: number;
  /** Where a warning about an unusable operator file goes (it is also in `info.warnings`). */
  log?: { warn(msg: string): void };
}

export interface Enricher {
  lookup(ip: string): Enrichment;
  /** The data sets in use, with their build dates, and warnings about operator files (no data loaded). */
  readonly info: GeoDataInfo;
  readonly cacheSize: number;
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

/** A geo record in MaxMind's schema (GeoLite2/GeoIP2 Country or City) or ip-location-db's flat one. */
interface GeoRecord {
  country?: { iso_code?: string; names?: Record<string, string> };
  registered_country?: { iso_code?: string; names?: Record<string, string> };
  city?: string | { names?: Record<string, string> };
  location?: { latitude?: number; longitude?: number };
  country_code?: string;
  latitude?: number;
  longitude?: number;
}

interface AsnRecord {
  autonomous_system_number?: number;
  autonomous_system_organization?: string;
}

type Place = Pick<IpInfo, 'country' | 'countryName' | 'city' | 'lat' | 'lon'>;

const regionNames = new Intl.DisplayNames(['en'], { type: 'region' });
const nameOf = (code: string): string | null => {
  try {
    return regionNames.of(code) ?? null;
  } catch {
    return null;
  }
};

/** Country, city and coordinates of a geo record (the country's point when it has no coordinates). */
export function placeOf(r: GeoRecord): Place {
  const c = r.country ?? r.registered_country;
  const country = (c?.iso_code ?? r.country_code ?? '').toUpperCase() || null;
  const city = (typeof r.city === 'string' ? r.city : r.city?.names?.en) || null;
  let lat = r.location?.latitude ?? r.latitude ?? null;
  let lon = r.location?.longitude ?? r.longitude ?? null;
  if ((lat === null || lon === null) && country) [lat, lon] = COUNTRY_CENTROIDS[country] ?? [null, null];
  return { country, countryName: c?.names?.en ?? (country ? nameOf(country) : null), city, lat, lon };
}

/** The loaded data: one lookup per address family. */
interface GeoData {
  geo(text: string, v6: boolean): Place | null;
  asn(a: ipaddr.IPv4 | ipaddr.IPv6): AsnHit | null;
}

/** An MMDB lookup that skips IPv6 addresses in IPv4-only files and never throws. */
function mmdbGet<T>(path: string): (text: string, v6: boolean) => T | null {
  const r = new Reader<T & object>(readFileSync(path));
  const v4only = r.metadata.ipVersion === 4;
  return (text, v6) => {
    if (v6 && v4only) return null;
    try {
      return r.get(text) as T | null;
    } catch {
      return null;
    }
  };
}

function asnLookup(files: GeoFiles['asn']): GeoData['asn'] {
  if (!files) return () => null;
  if (files.format === 'csv') {
    const t = AsnTable.fromFiles(files.ipv4, files.ipv6);
    return (a) => {
      if (a.kind() === 'ipv4') {
        const o = (a as ipaddr.IPv4).octets;
        return t.lookupV4(o[0]! * 16777216 + o[1]! * 65536 + o[2]! * 256 + o[3]!);
      }
      const p = (a as ipaddr.IPv6).parts;
      return t.lookupV6(p[0]! * 65536 + p[1]!, p[2]! * 65536 + p[3]!, p[4]! * 65536 + p[5]!, p[6]! * 65536 + p[7]!);
    };
  }
  const get = mmdbGet<AsnRecord>(files.path);
  return (a) => {
    const r = get(a.toString(), a.kind() === 'ipv6');
    return r?.autonomous_system_number ? { asn: r.autonomous_system_number, org: r.autonomous_system_organization ?? '' } : null;
  };
}

function loadData(files: GeoFiles): GeoData {
  const geoGet = files.geo ? mmdbGet<GeoRecord>(files.geo.path) : () => null;
  return {
    geo: (text, v6) => {
      const r = geoGet(text, v6);
      return r ? placeOf(r) : null;
    },
    asn: asnLookup(files.asn),
  };
}

/** No geo/ASN data: what lookups answer after the data failed to load. */
const NO_DATA: GeoData = { geo: () => null, asn: () => null };

/**
 * The data, read once: a file that cannot be read (deleted since lqosd started, a damaged package)
 * is warned about once and lookups answer "unknown" from then on, rather than re-reading ~40 MB of files
 * and throwing on every flow.
 */
function loadDataOnce(files: GeoFiles, log: EnricherOptions['log']): GeoData {
  try {
    return loadData(files);
  } catch (e) {
    const msg = `geo/ASN data could not be loaded (${(e as Error).message}); flows are shown without ASN and country until lqosd restarts`;
    (log ?? console).warn(msg);
    return NO_DATA;
  }
}

export function createEnricher(opts: EnricherOptions = {}): Enricher {
  const files = resolveGeoFiles(opts);
  for (const w of files.info.warnings) opts.log?.warn(w);
  let data: GeoData | undefined;
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
    let addr = ipaddr.parse(ip);
    if (addr.kind() === 'ipv6' && (addr as ipaddr.IPv6).isIPv4MappedAddress()) addr = (addr as ipaddr.IPv6).toIPv4Address();
    data ??= loadDataOnce(files, opts.log);
    const place = data.geo(addr.toString(), addr.kind() === 'ipv6');
    const a = data.asn(addr);
    if (!a && !place) return null;
    return intern({
      asn: a?.asn ?? null,
      asName: a?.org || null,
      country: place?.country ?? null,
      countryName: place?.countryName ?? null,
      city: place?.city ?? null,
      lat: place?.lat ?? null,
      lon: place?.lon ?? null,
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
    info: files.info,
    get cacheSize() {
      return cache.size;
    },
  };
}

let shared: Enricher | undefined;
/** Process-wide enricher on the bundled data (read on the first public lookup, ≈ 20 MB resident). */
export function defaultEnricher(): Enricher {
  shared ??= createEnricher();
  return shared;
}
