/**
 * The graph model every integration fills (infrastructure nodes, clients, devices), the options of a
 * build and what it returns. The rules that turn it into files are in graph.ts.
 */
import type { SqmOverride } from '../../model.ts';
import type { IpFilterMode } from './ip.ts';

export type Strategy = 'flat' | 'ap_only' | 'ap_site' | 'full';
export const STRATEGIES: readonly Strategy[] = ['flat', 'ap_only', 'ap_site', 'full'];

export type InfraKind = 'site' | 'ap';

export interface InfraNodeInput {
  /** Graph id, unique per integration run (e.g. `uisp:site:<id>`, `ns_1`). */
  id: string;
  name: string;
  kind: InfraKind;
  /** Graph id of the parent node; empty/undefined = top level (exception CPEs may apply). */
  parentId?: string | null;
  /** Capacity in Mbps; missing/0 → generated_pn rates. */
  downloadMbps?: number;
  uploadMbps?: number;
  /** Stable id written to network.json `id` and to Parent Node ID. Empty = none. */
  networkJsonId?: string;
  latitude?: number;
  longitude?: number;
}

export interface ClientInput {
  /** Circuit ID. */
  id: string;
  name: string;
  /** Used as the circuit name when `circuit_name_as_address` is on (falls back to name if empty). */
  address?: string;
  /** Graph id of the parent node (site or AP). */
  parentId?: string | null;
  /** Plan maxima in Mbps (multipliers already applied by the integration). */
  downloadMaxMbps: number;
  uploadMaxMbps: number;
  /** Explicit minima; when absent, min = max × commitRatio. */
  downloadMinMbps?: number;
  uploadMinMbps?: number;
  comment?: string;
  sqm?: SqmOverride;
}

export interface DeviceInput {
  id: string;
  name: string;
  /** Circuit ID of the owning client. */
  clientId: string;
  mac?: string;
  /** Addresses as the CRM gives them (either family in either list is fine; they are sorted out). */
  ipv4?: string[];
  ipv6?: string[];
  comment?: string;
}

export interface SkippedEntry {
  id: string;
  name: string;
  reason: string;
}

export interface IntegrationSummary {
  crm: string;
  strategy: Strategy;
  sites: number;
  aps: number;
  circuits: number;
  devices: number;
  skipped: SkippedEntry[];
  /** Non-fatal findings (dropped IPs, renamed nodes, unknown parents, …). */
  warnings: string[];
  /** Where the files were written (undefined on a dry run). */
  written?: { networkJson: string; shapedDevicesCsv: string };
}

export interface BuildOptions {
  crm: string;
  strategy: Strategy;
  /** Top-level clamp: the link capacity (downlink / uplink Mbps). */
  linkMbps: { download: number; upload: number };
  /** Rates of nodes created without rates (`generated_pn_*`). */
  defaultNodeMbps: { download: number; upload: number };
  ipFilterMode: IpFilterMode;
  ignoreSubnets: readonly string[];
  allowSubnets: readonly string[];
  circuitNameAsAddress: boolean;
  /** Node names never added (exact match). */
  excludeSites: readonly string[];
  /** A parentless node or client whose id or name equals `cpe` gets parent `parent` (a node id or name). */
  exceptionCpes: ReadonlyArray<{ cpe: string; parent: string }>;
  /** Node names moved to the top level. */
  promoteToRoot: readonly string[];
  /** Lowest circuit rate written (Mbps). */
  rateFloorMbps: number;
  /** min = max × commitRatio when the integration gives no minimum. */
  commitRatio: number;
  /** MikroTik IPv6 enrichment on: the router list file (mikrotikIpv6.ts). */
  mikrotikIpv6ConfigPath?: string;
  /**
   * `integration_common.always_overwrite_network_json`: false keeps an existing network.json (only
   * ShapedDevices.csv is written, output.ts). Absent = true (callers that build options by hand).
   */
  alwaysOverwriteNetworkJson?: boolean;
  /** Settings this run does not follow (said once as warnings when the build starts: TopologyBuilder). */
  notes?: readonly string[];
}

export interface BuildResult {
  networkJson: string;
  shapedDevicesCsv: string;
  summary: IntegrationSummary;
}
