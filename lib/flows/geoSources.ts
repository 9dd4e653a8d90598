/**
 * Which files the remote-address enrichment reads, and what to say about them (source, licence,
 * build date), without loading the data:
 *
 *  - geo (country of an address): an operator MMDB (`[flows] geo_mmdb_path`, country or city, in
 *    MaxMind's or ip-location-db's schema), else the bundled `@ip-location-db/geo-whois-asn-country-mmdb`
 *    (GeoFeed + RIR whois + ASN country, CC0-1.0, built from NRO data);
 *  - asn: an operator MMDB (`[flows] asn_mmdb_path`, e.g. GeoLite2-ASN.mmdb), else the bundled
 *    `@ip-location-db/asn` CSV ranges (RouteViews + NRO + DB-IP, CC BY 4.0).
 *
 * An operator file is used when it exists and its MMDB metadata parses; otherwise a warning names
 * the file and the bundled data is used. The build date comes from the MMDB metadata (build_epoch)
 * or, for the bundled CSV, from the package version (`2.3.YYYYMMDDHH`, the ip-location-db build stamp).
 */
import { closeSync, fstatSync, openSync, readFileSync, readSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { parseMetadata } from 'mmdb-lib/lib/metadata.js';
import type { GeoDataInfo, GeoDataSource } from '../api/flows.ts';

/** Where each data set is read from. */
export interface GeoFiles {
  geo: { path: string; format: 'mmdb' } | null;
  asn: { path: string; format: 'mmdb' } | { ipv4: string; ipv6: string; format: 'csv' } | null;
  info: GeoDataInfo;
}

/** What the operator asked for (lqos.conf [flows]). */
export interface GeoPaths {
  geoMmdbPath?: string;
  asnMmdbPath?: string;
}

export const GEO_PACKAGE = '@ip-location-db/geo-whois-asn-country-mmdb';
export const ASN_PACKAGE = '@ip-location-db/asn';
const GEO_FILE = 'geo-whois-asn-country.mmdb';
const ASN_FILES = { ipv4: 'asn-ipv4-num.csv', ipv6: 'asn-ipv6-num.csv' };

/** The metadata of an MMDB lies in its last 128 KiB, after this marker. */
const METADATA_MARKER = Buffer.from('abcdef4d61784d696e642e636f6d', 'hex');
const METADATA_MAX = 128 * 1024;

export interface MmdbMeta {
  databaseType: string;
  ipVersion: number;
  builtAt: string | null;
}

/** The metadata of an MMDB file (reads only its tail); throws a readable error when it is not one. */
export function readMmdbMetadata(path: string): MmdbMeta {
  const fd = openSync(path, 'r');
  try {
    const size = fstatSync(fd).size;
    const n = Math.min(size, METADATA_MAX);
    const tail = Buffer.alloc(n);
    readSync(fd, tail, 0, n, size - n);
    if (tail.lastIndexOf(METADATA_MARKER) < 0) throw new Error('no MaxMind DB metadata (not an MMDB file)');
    const m = parseMetadata(tail);
    if (!(m.nodeCount > 0) || m.searchTreeSize > size) throw new Error('MMDB metadata does not match the file (truncated?)');
    const built = m.buildEpoch.getTime();
    return { databaseType: String(m.databaseType ?? ''), ipVersion: m.ipVersion, builtAt: Number.isFinite(built) ? new Date(built).toISOString() : null };
  } finally {
    closeSync(fd);
  }
}

/** `2.3.2026061719` → 2026-06-17T19:00:00.000Z (ip-location-db's versions carry the build hour). */
export function builtAtOfVersion(version: string): string | null {
  const m = /^\d+\.\d+\.(\d{4})(\d{2})(\d{2})(\d{2})$/.exec(version);
  return m ? `${m[1]}-${m[2]}-${m[3]}T${m[4]}:00:00.000Z` : null;
}

/** Directory and version of an installed package (null when it is not installed). */
function packageDir(name: string): { dir: string; version: string } | null {
  try {
    const pj = createRequire(import.meta.url).resolve(`${name}/package.json`);
    return { dir: dirname(pj), version: String((JSON.parse(readFileSync(pj, 'utf8')) as { version?: unknown }).version ?? '') };
  } catch {
    return null;
  }
}

const GEO_LICENCE = { licence: 'CC0-1.0 (includes RIR data by the NRO, CC BY 4.0)', attribution: { text: 'ip-location-db, NRO', url: 'https://www.nro.net/' } };
const ASN_LICENCE = { licence: 'CC BY 4.0 (RouteViews, NRO, DB-IP)', attribution: { text: 'IP to ASN data by RouteViews, NRO and DB-IP', url: 'https://db-ip.com' } };

function operatorSource(kind: 'geo' | 'asn', path: string, meta: MmdbMeta): GeoDataSource {
  return { kind, origin: 'operator', source: path, dataType: meta.databaseType, builtAt: meta.builtAt, licence: 'operator-supplied (see the file\'s licence)', attribution: null };
}

/** The operator's MMDB when usable; else a warning for `warnings` and null. */
function operatorFile(kind: 'geo' | 'asn', key: string, path: string | undefined, warnings: string[]): GeoDataSource | null {
  if (!path) return null;
  try {
    return operatorSource(kind, path, readMmdbMetadata(path));
  } catch (e) {
    const why = (e as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : (e as Error).message;
    warnings.push(`[flows] ${key} = "${path}" is not a readable MMDB file (${why}); using the bundled ${kind === 'geo' ? GEO_PACKAGE : ASN_PACKAGE} data instead`);
    return null;
  }
}

function bundledGeo(): { path: string; source: GeoDataSource } | null {
  const pk = packageDir(GEO_PACKAGE);
  if (!pk) return null;
  const path = join(pk.dir, GEO_FILE);
  try {
    const meta = readMmdbMetadata(path);
    return { path, source: { kind: 'geo', origin: 'bundled', source: `${GEO_PACKAGE}@${pk.version}`, dataType: meta.databaseType, builtAt: meta.builtAt, ...GEO_LICENCE } };
  } catch {
    return null;
  }
}

function bundledAsn(): { ipv4: string; ipv6: string; source: GeoDataSource } | null {
  const pk = packageDir(ASN_PACKAGE);
  if (!pk) return null;
  const source: GeoDataSource = { kind: 'asn', origin: 'bundled', source: `${ASN_PACKAGE}@${pk.version}`, dataType: 'asn', builtAt: builtAtOfVersion(pk.version), ...ASN_LICENCE };
  return { ipv4: join(pk.dir, ASN_FILES.ipv4), ipv6: join(pk.dir, ASN_FILES.ipv6), source };
}

/** The files to read for `paths` (operator MMDBs when usable, else the bundled packages). */
export function resolveGeoFiles(paths: GeoPaths = {}): GeoFiles {
  const warnings: string[] = [];
  const sources: GeoDataSource[] = [];
  let geo: GeoFiles['geo'] = null;
  let asn: GeoFiles['asn'] = null;
  const og = operatorFile('geo', 'geo_mmdb_path', paths.geoMmdbPath, warnings);
  const bg = og ? null : bundledGeo();
  if (og) geo = { path: og.source, format: 'mmdb' };
  else if (bg) geo = { path: bg.path, format: 'mmdb' };
  const oa = operatorFile('asn', 'asn_mmdb_path', paths.asnMmdbPath, warnings);
  const ba = oa ? null : bundledAsn();
  if (oa) asn = { path: oa.source, format: 'mmdb' };
  else if (ba) asn = { ipv4: ba.ipv4, ipv6: ba.ipv6, format: 'csv' };
  for (const s of [og ?? bg?.source, oa ?? ba?.source]) if (s) sources.push(s);
  return { geo, asn, info: { sources, warnings } };
}
