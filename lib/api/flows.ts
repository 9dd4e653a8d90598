/**
 * Flow tracking (lib/flows): the snapshot GET /api/flows returns and the `flows` channel pushes.
 * Rates in bits/s, RTTs in ms (null when unknown).
 */

interface DownUp {
  down: number;
  up: number;
}

export interface FlowView {
  id: string;
  protocol: string;
  localIp: string;
  localPort: number;
  remoteIp: string;
  remotePort: number;
  bytes: DownUp;
  packets: DownUp;
  rateBps: DownUp;
  retransmits: DownUp;
  /** Customer side (last mile + shaper queue) and Internet side; total = sum when both known. */
  rttMs: { customer: number | null; internet: number | null; total: number | null };
  durationMs: number;
  endStatus: 'open' | 'fin' | 'rst';
  tcHandle: number;
  circuitHash: string;
  circuitId: string | null;
  circuitName: string | null;
  asn: number | null;
  asName: string | null;
  country: string | null;
  /** 'private' for non-routable remotes. */
  remoteKind: 'public' | 'private' | 'unknown';
}

/** Remote endpoints at one location. */
export interface GlobePoint {
  lat: number;
  lon: number;
  label: string;
  country: string | null;
  bytesDown: number;
  bytesUp: number;
  /** Median RTT of the flows at this point. */
  rttMs: number | null;
  flows: number;
}

/** Traffic per remote ASN. */
export interface AsnRow {
  asn: number | null;
  name: string;
  country: string | null;
  flows: number;
  rateBps: DownUp;
  bytes: DownUp;
  /** Median RTT. */
  rttMs: number | null;
  retransmits: number;
  tcpPackets: number;
  retransmitPct: number | null;
}

/** Flows aggregated per remote country (from the ASN rows). */
export interface CountryRow {
  country: string;
  flows: number;
  asns: number;
  rateBps: DownUp;
  bytes: DownUp;
  /** Flow-weighted mean of the ASN median RTTs. */
  rttMs: number | null;
}

export interface Percentiles {
  p50: number | null;
  p90: number | null;
  p99: number | null;
  samples: number;
}

/** TCP retransmits / TCP packets over the retransmit window, per direction. */
export interface CircuitRetransmits {
  down: number;
  up: number;
  packetsDown: number;
  packetsUp: number;
  pctDown: number | null;
  pctUp: number | null;
}

export interface CircuitFlowView {
  circuitHash: string;
  circuitId: string | null;
  circuitName: string | null;
  tcHandle: number;
  activeFlows: number;
  rateBps: DownUp;
  rtt: { customer: Percentiles; internet: Percentiles };
  retransmits: CircuitRetransmits;
  /** The circuit's busiest flows (only for the busiest circuits). */
  flows: FlowView[];
}

/**
 * One data set the remote-address enrichment reads: the bundled npm package or the operator's file
 * (lqos.conf `[flows] geo_mmdb_path` / `asn_mmdb_path`).
 */
export interface GeoDataSource {
  /** 'geo': country (or city) of an address; 'asn': its autonomous system. */
  kind: 'geo' | 'asn';
  origin: 'bundled' | 'operator';
  /** npm package name@version, or the operator's file path. */
  source: string;
  /** The MMDB's database_type (e.g. "country", "GeoLite2-City"), or "asn" for the bundled CSV. */
  dataType: string;
  /** When the data was built (ISO 8601 UTC): MMDB metadata build_epoch, or the package's build stamp. */
  builtAt: string | null;
  licence: string;
  /** Credit the licence asks for (shown with a link where the data is displayed). */
  attribution: { text: string; url: string } | null;
}

export interface GeoDataInfo {
  sources: GeoDataSource[];
  /** Operator files that could not be used (the bundled data is used instead). */
  warnings: string[];
}

export interface FlowSnapshot {
  /** Wall-clock ms of the poll this snapshot is from (0 before the first poll). */
  at: number;
  /** Where the ASN / country / location of remote addresses come from, with the data's date. */
  geoData: GeoDataInfo;
  activeFlows: number;
  globe: GlobePoint[];
  asns: AsnRow[];
  countries: CountryRow[];
  circuits: CircuitFlowView[];
  topFlows: FlowView[];
  recent: FlowView[];
  /**
   * rttEvents: RTT events consumed since the previous poll. ringDrops: RTT records the kernel lost
   * because the ring buffer was full, since the dataplane maps were created; ringDropsDelta: the
   * increase since the previous poll (> 0 = samples are being lost now).
   */
  stats: {
    pollMs: number; snapshotMs: number; rttEvents: number; ringDrops: number; ringDropsDelta: number;
    expired: number; evicted: number; enrichCache: number;
  };
}
