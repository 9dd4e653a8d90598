/**
 * Shared data model: what the input readers produce, what the planner consumes and what the
 * compiler emits. Pure types only — no behaviour lives here.
 */

/** One problem found in an input file. `line` is the 1-based physical line in the file. */
export interface InputIssue {
  severity: 'error' | 'warning';
  /** Machine-readable code, e.g. `duplicate-ip`, `unknown-parent`, `min-above-max`. */
  code: string;
  file: string;
  line?: number;
  /** Header name (CSV) or JSON path (network.json) of the offending field. */
  column?: string;
  value?: string;
  message: string;
  /** Another line the issue involves (e.g. `duplicate-ip`: the line that already has the address). */
  relatedLine?: number;
}

/** Per-direction SQM override from ShapedDevices.csv (`cake`, `fq_codel`, `none`, or `down/up`). */
export type SqmKind = 'cake' | 'fq_codel' | 'none';
export interface SqmOverride {
  download?: SqmKind;
  upload?: SqmKind;
}

export interface Device {
  id: string;
  name: string;
  mac: string;
  /** Canonical IPv4 prefixes, always with a length: `100.64.0.1/32`, `100.64.2.0/24`. */
  ipv4: string[];
  /** Canonical (RFC 5952) IPv6 prefixes, always with a length: `2001:db8::/56`. */
  ipv6: string[];
  comment: string;
  /** Physical line of the CSV row this device came from. */
  line: number;
}

export interface Circuit {
  id: string;
  name: string;
  /** Parent node name as written; '' when the circuit has no parent. */
  parentNode: string;
  parentNodeId: string;
  anchorNodeId: string;
  downloadMinMbps: number;
  uploadMinMbps: number;
  downloadMaxMbps: number;
  uploadMaxMbps: number;
  sqm?: SqmOverride;
  comment: string;
  devices: Device[];
  /** Physical line of the circuit's first row. */
  line: number;
}

/** A node of network.json after parsing (virtual nodes still present). */
export interface NetworkNode {
  /** Key in network.json; unique across the whole tree. */
  name: string;
  /** Optional stable id (`id` field) used to match `Parent Node ID`. */
  id?: string;
  /** Optional display name (`name` field) — an alias when matching `Parent Node`. */
  displayName?: string;
  /** `active_attachment_name` (published by upstream integrations) — also an alias when matching parents. */
  attachmentName?: string;
  /** 1-based line of the node's key in network.json (for issues). */
  line?: number;
  downloadMbps: number;
  uploadMbps: number;
  downloadMinMbps?: number;
  uploadMinMbps?: number;
  type?: string;
  virtual: boolean;
  /** Latitude/longitude if present (for the site map); informational. */
  latitude?: number;
  longitude?: number;
  children: NetworkNode[];
}

export interface ShapingInputs {
  circuits: Circuit[];
  /** Top-level nodes; empty = flat network. */
  network: NetworkNode[];
}

export interface ValidationResult {
  inputs: ShapingInputs;
  issues: InputIssue[];
  /** True when no issue has severity `error`. */
  ok: boolean;
}

// ---------------------------------------------------------------------------------------------
// Planner output

export interface DirectionRates {
  /** HTB rate (assured), Mbps. */
  rateMbps: number;
  /** HTB ceil, Mbps. */
  ceilMbps: number;
}

/** A leaf qdisc as planned for real hosts (before capability fallback). */
export interface LeafQdisc {
  /** qdisc kind: `cake` or `fq_codel` in plans; a fallback kind after the capability probe. */
  kind: string;
  /** tc tokens after the kind, e.g. ['diffserv4', 'rtt', '140ms']. */
  args: string[];
}

export interface PlannedNode {
  name: string;
  /** Path of names from the top, joined with '/'. Identity key for stable ids. */
  path: string;
  id?: string;
  generated: boolean;
  /** 1-based queue (= HTB major, = mq slot); CPU index is queue - 1. */
  queue: number;
  minor: number;
  /** Minor of the parent class on the same queue; 1 for top-level nodes. */
  parentMinor: number;
  depth: number;
  download: DirectionRates;
  upload: DirectionRates;
}

export interface PlannedCircuit {
  id: string;
  name: string;
  /** Path of the node the circuit hangs under. */
  parentPath: string;
  queue: number;
  minor: number;
  parentMinor: number;
  download: DirectionRates & { leaf: LeafQdisc | null; leafHandle: number };
  upload: DirectionRates & { leaf: LeafQdisc | null; leafHandle: number };
  devices: Device[];
  circuitHash: bigint;
}

/** One XDP/tc IP mapping: prefix → CPU + class. */
export interface IpMapping {
  /** Canonical prefix with length (`100.64.0.1/32`, `2001:db8::/56`). */
  prefix: string;
  /** CPU index (queue - 1). */
  cpu: number;
  /** Download-direction class major:minor, as numbers. Upload major = major + stickOffset. */
  major: number;
  minor: number;
  circuitId: string;
  deviceId: string;
  circuitHash: bigint;
  deviceHash: bigint;
}

export interface ShapingPlan {
  interfaces: {
    /** ISP/customer-facing interface (egress = download). */
    download: string;
    /** Internet-facing interface (egress = upload). Same as download on a stick. */
    upload: string;
    onAStick: boolean;
  };
  queues: number;
  /** Added to the queue number for upload classes (on a stick: = queues, else 0). */
  stickOffset: number;
  link: { downloadMbps: number; uploadMbps: number };
  /** Default-SQM leaf used for infrastructure classes. */
  defaultLeaf: LeafQdisc;
  /** `observe`: count traffic only — no classes and no mappings are installed. */
  mode: 'shape' | 'observe';
  nodes: PlannedNode[];
  circuits: PlannedCircuit[];
  mappings: IpMapping[];
  /** Non-fatal findings of planning (clamped rates, unattached circuits, ...). */
  warnings: InputIssue[];
}
