/**
 * Readers for flow tracking data (lib/flows/service.ts `FlowSnapshot`), from the `flows` websocket
 * channel and/or `GET /api/flows`:
 * - globe: `[{lat, lon, label, country, bytesDown, bytesUp, rttMs, flows}]` (also `{lat, lon, bytes,
 *   rtt}` and upstream's `[lat, lon, label, bytes, rtt_ns]` tuples);
 * - asns: `[{asn, name, country, flows, rateBps:{down, up}, bytes, rttMs, retransmits, retransmitPct}]`.
 * Unknown shapes read as empty lists instead of throwing.
 */
type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);
const num = (v: unknown): number | undefined => (typeof v === 'number' && Number.isFinite(v) ? v : undefined);
const str = (v: unknown): string | undefined => (typeof v === 'string' ? v : undefined);

export interface GlobePoint {
  lat: number;
  lon: number;
  label: string;
  bytes: number;
  /** ms; undefined when unknown. */
  rttMs?: number;
  flows?: number;
}

export interface AsnRow {
  asn: number | null;
  name: string;
  country?: string;
  flows?: number;
  downBps: number;
  upBps: number;
  bytes?: number;
  rttMs?: number;
  retransmits?: number;
  retransmitPct?: number;
}

export interface FlowData {
  at?: number;
  activeFlows?: number;
  globe: GlobePoint[];
  asns: AsnRow[];
}

function pair(v: unknown): { down: number; up: number } | undefined {
  if (!isObj(v)) return undefined;
  const d = num(v.down) ?? num(v.download) ?? num(v.downBps);
  const u = num(v.up) ?? num(v.upload) ?? num(v.upBps);
  return d === undefined && u === undefined ? undefined : { down: d ?? 0, up: u ?? 0 };
}

function rttOf(o: Obj): number | undefined {
  const ms = num(o.rttMs) ?? num(o.rtt_ms) ?? num(o.medianRttMs);
  if (ms !== undefined) return ms;
  if (isObj(o.rttMs)) return num(o.rttMs.total) ?? num(o.rttMs.internet) ?? num(o.rttMs.customer);
  const ns = num(o.rttNs) ?? num(o.rtt_ns);
  if (ns !== undefined) return ns / 1e6;
  return num(o.rtt);
}

export function readGlobe(list: unknown): GlobePoint[] {
  if (!Array.isArray(list)) return [];
  const out: GlobePoint[] = [];
  for (const e of list) {
    let p: GlobePoint | undefined;
    if (Array.isArray(e)) {
      const [lat, lon, label, bytes, rttNs] = e as unknown[];
      if (num(lat) !== undefined && num(lon) !== undefined) {
        const r = num(rttNs);
        p = { lat: lat as number, lon: lon as number, label: str(label) ?? '', bytes: num(bytes) ?? 0, ...(r !== undefined ? { rttMs: r / 1e6 } : {}) };
      }
    } else if (isObj(e)) {
      const lat = num(e.lat) ?? num(e.latitude);
      const lon = num(e.lon) ?? num(e.lng) ?? num(e.longitude);
      if (lat !== undefined && lon !== undefined) {
        const b = pair(e.bytes);
        const bytes = num(e.bytes) ?? (b ? b.down + b.up : (num(e.bytesDown) ?? 0) + (num(e.bytesUp) ?? 0));
        const rtt = rttOf(e);
        const flows = num(e.flows);
        p = { lat, lon, label: str(e.label) ?? str(e.city) ?? str(e.country) ?? '', bytes, ...(rtt !== undefined ? { rttMs: rtt } : {}), ...(flows !== undefined ? { flows } : {}) };
      }
    }
    if (p && !(p.lat === 0 && p.lon === 0) && Math.abs(p.lat) <= 90 && Math.abs(p.lon) <= 180) out.push(p);
  }
  return out;
}

export function readAsns(list: unknown): AsnRow[] {
  if (!Array.isArray(list)) return [];
  const out: AsnRow[] = [];
  for (const e of list) {
    if (!isObj(e)) continue;
    const asnRaw = e.asn ?? e.as ?? e.number;
    const asn = num(asnRaw) ?? (typeof asnRaw === 'string' && /^(AS)?\d+$/i.test(asnRaw) ? Number(asnRaw.replace(/^AS/i, '')) : null);
    const rate = pair(e.rateBps) ?? pair(e.throughput) ?? pair(e.bps);
    const bytes = pair(e.bytes);
    const rtt = rttOf(e);
    const row: AsnRow = {
      asn,
      name: str(e.name) ?? str(e.asName) ?? str(e.as_name) ?? '',
      downBps: rate?.down ?? num(e.downBps) ?? num(e.downloadBps) ?? 0,
      upBps: rate?.up ?? num(e.upBps) ?? num(e.uploadBps) ?? 0,
    };
    const country = str(e.country);
    if (country) row.country = country;
    const flows = num(e.flows) ?? num(e.flowCount);
    if (flows !== undefined) row.flows = flows;
    const total = bytes ? bytes.down + bytes.up : num(e.bytes) ?? num(e.totalBytes);
    if (total !== undefined) row.bytes = total;
    if (rtt !== undefined) row.rttMs = rtt;
    const rx = isObj(e.retransmits) ? (num(e.retransmits.down) ?? 0) + (num(e.retransmits.up) ?? 0) : num(e.retransmits);
    if (rx !== undefined) row.retransmits = rx;
    const pct = num(e.retransmitPct) ?? num(e.retransmit_pct);
    if (pct !== undefined) row.retransmitPct = pct;
    out.push(row);
  }
  return out;
}

/** A snapshot as sent by lqosd (or undefined when the payload says flow tracking is off). */
export function readFlows(data: unknown): FlowData | undefined {
  if (!isObj(data)) return undefined;
  if (data.available === false || data.enabled === false) return undefined;
  const snap = isObj(data.snapshot) ? data.snapshot : data;
  return {
    ...(num(snap.at) !== undefined ? { at: num(snap.at) } : {}),
    ...(num(snap.activeFlows) !== undefined ? { activeFlows: num(snap.activeFlows) } : {}),
    globe: readGlobe(snap.globe ?? snap.points ?? snap.endpoints),
    asns: readAsns(snap.asns ?? snap.asn),
  };
}

/** RTT colour scale (ms): green → yellow → orange → red; grey when unknown. */
export function rttColor(ms: number | undefined): string {
  if (ms === undefined) return '#8b949e';
  if (ms < 30) return '#3fb950';
  if (ms < 60) return '#a3d13f';
  if (ms < 100) return '#d29922';
  if (ms < 150) return '#f0883e';
  return '#f85149';
}
