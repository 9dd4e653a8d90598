/**
 * Roll-ups of the tracked flows by remote: per ASN, per country (from the ASN rows) and per location
 * for the globe, each with an RTT median. Built without per-flow views (100k flows).
 */
import type { PerDirection } from '../../dataplane/flowAbi.ts';
import type { AsnRow, CountryRow, GlobePoint } from '../api/flows.ts';
import type { Enrichment } from './enrich.ts';
import { percentile } from './percentiles.ts';

/** RTT samples kept per row for its median. */
const MAX_RTTS = 1000;

const totalRate = (x: { rateBps: PerDirection }) => x.rateBps.down + x.rateBps.up;

/** Busiest first (rate, then download bytes). */
export const byRateDesc = (a: { rateBps: PerDirection; bytes: PerDirection }, b: { rateBps: PerDirection; bytes: PerDirection }) =>
  totalRate(b) - totalRate(a) || b.bytes.down - a.bytes.down;

export type GlobeAcc = GlobePoint & { rtts: number[] };
export type AsnAcc = AsnRow & { rtts: number[] };

/** RTT (ms) from a flow's last kernel samples (µs, 0 = none): both sides summed, else the one known. */
export function lastRttOf(customerUs: number, internetUs: number): number | null {
  if (customerUs && internetUs) return (customerUs + internetUs) / 1000;
  return internetUs ? internetUs / 1000 : customerUs ? customerUs / 1000 : null;
}

/** Remote endpoints per location (lat/lon); flows without coordinates are left out. */
export class GlobeTable {
  private readonly points = new Map<string, GlobeAcc>();

  /** The point of a location (null: no coordinates); `remoteIp` names it when the database has no place name. */
  point(geo: Enrichment, remoteIp: () => string): GlobeAcc | null {
    if (!geo || geo === 'private' || geo.lat === null || geo.lon === null) return null;
    const k = `${geo.lat},${geo.lon}`;
    let p = this.points.get(k);
    if (!p) {
      const label = [geo.city, geo.countryName].filter(Boolean).join(', ') || geo.country || remoteIp();
      this.points.set(k, (p = { lat: geo.lat, lon: geo.lon, label, country: geo.country, bytesDown: 0, bytesUp: 0, rttMs: null, flows: 0, rtts: [] }));
    }
    return p;
  }

  static addTo(p: GlobeAcc, bytesDown: number, bytesUp: number, rtt: number | null): void {
    p.bytesDown += bytesDown;
    p.bytesUp += bytesUp;
    p.flows++;
    if (rtt !== null && p.rtts.length < MAX_RTTS) p.rtts.push(rtt);
  }

  /** Points by download bytes. */
  rows(): GlobePoint[] {
    return [...this.points.values()].map(({ rtts, ...p }) => ({ ...p, rttMs: percentile(rtts, 50) })).sort((a, b) => b.bytesDown - a.bytesDown);
  }
}

/** Traffic per remote ASN, with a "Private/local" and an "Unknown" row for the rest. */
export class AsnTable {
  private readonly byKey = new Map<string, AsnAcc>();

  row(geo: Enrichment): AsnAcc {
    const info = geo && geo !== 'private' ? geo : null;
    const key = info?.asn != null ? `AS${info.asn}` : geo === 'private' ? 'private' : 'unknown';
    let row = this.byKey.get(key);
    if (!row) {
      this.byKey.set(key, (row = {
        asn: info?.asn ?? null, name: info?.asName ?? (geo === 'private' ? 'Private/local' : 'Unknown'), country: info?.country ?? null,
        flows: 0, rateBps: { down: 0, up: 0 }, bytes: { down: 0, up: 0 }, rttMs: null, retransmits: 0, tcpPackets: 0, retransmitPct: null, rtts: [],
      }));
    }
    return row;
  }

  /**
   * One flow into a row: rates and bytes per direction, TCP retransmits and packets (both directions
   * summed; 0 for other protocols), RTT.
   */
  static addTo(row: AsnAcc, rateD: number, rateU: number, bytesD: number, bytesU: number, tcpRetrans: number, tcpPackets: number, rtt: number | null): void {
    row.flows++;
    row.rateBps.down += rateD;
    row.rateBps.up += rateU;
    row.bytes.down += bytesD;
    row.bytes.up += bytesU;
    row.retransmits += tcpRetrans;
    row.tcpPackets += tcpPackets;
    if (rtt !== null && row.rtts.length < MAX_RTTS) row.rtts.push(rtt);
  }

  /** Rows busiest first, with RTT median and retransmit %. */
  rows(): AsnRow[] {
    return [...this.byKey.values()]
      .map(({ rtts, ...r }) => ({ ...r, rttMs: percentile(rtts, 50), retransmitPct: r.tcpPackets ? (100 * r.retransmits) / r.tcpPackets : null }))
      .sort(byRateDesc);
  }
}

/** Per-country roll-up of ASN rows (pure). */
export function countriesOf(asns: AsnRow[]): CountryRow[] {
  const by = new Map<string, CountryRow & { rttW: number; rttN: number }>();
  for (const a of asns) {
    const key = a.country ?? 'unknown';
    let c = by.get(key);
    if (!c) by.set(key, (c = { country: key, flows: 0, asns: 0, rateBps: { down: 0, up: 0 }, bytes: { down: 0, up: 0 }, rttMs: null, rttW: 0, rttN: 0 }));
    c.flows += a.flows;
    c.asns += 1;
    c.rateBps.down += a.rateBps.down;
    c.rateBps.up += a.rateBps.up;
    c.bytes.down += a.bytes.down;
    c.bytes.up += a.bytes.up;
    if (a.rttMs !== null) {
      c.rttW += a.rttMs * a.flows;
      c.rttN += a.flows;
    }
  }
  return [...by.values()]
    .map(({ rttW, rttN, ...c }) => ({ ...c, rttMs: rttN ? rttW / rttN : null }))
    .sort(byRateDesc);
}
