/** lqosd's own state: GET /api/status and the `status` channel. */
import type { ShapingPlan } from '../model.ts';
import type { SchedulerStatus } from './scheduler.ts';

export type QueueMode = ShapingPlan['mode'];

export interface LastApply {
  at: string;
  mode: 'full' | 'incremental' | 'none';
  commands: number;
  seconds: number;
}

export interface ShapingStatus {
  /** Set when the preflight failed: the daemon runs without shaping and says why. */
  degraded?: string;
  /** The dataplane / tc tree drifted from the applied plan; the next apply rebuilds. */
  reloadRequired?: string;
  lastApply?: LastApply;
  /** qdisc kinds replaced by fallbacks on this kernel, e.g. { cake: 'pfifo limit 1000' }. */
  leafFallbacks?: Record<string, string>;
  /** The current inputs are refused; the shaping in force comes from the last good inputs. */
  lastGood?: LastGoodStatus;
  /** XDP attach mode in force per shaping interface (`[tuning] xdp_mode`); absent while not attached. */
  xdp?: XdpAttachment[];
  /** Who forwards frames between the two sides (lqos.conf [bridge] / [single_interface]); absent while not attached. */
  forwarding?: ForwardingStatus;
  /**
   * lqos_overrides.json's changes in the inputs of the last apply (absent: none were in effect): the
   * shaping in force differs from ShapedDevices.csv / network.json by these.
   */
  overrides?: OverridesStatus;
  /** Lazy queues (`[queues] lazy_queues` "Htb"/"Full"): circuits whose class/leaf is in the kernel now; absent with "No". */
  lazyQueues?: LazyQueuesStatus;
}

export interface LazyQueuesStatus {
  mode: 'Htb' | 'Full';
  circuits: number;
  /** Circuits with their class and leaf qdisc in the kernel (active recently). */
  materialised: number;
  /** Circuits without them (idle): `circuits - materialised`. */
  lazy: number;
  /** Materialisations and expiries since lqosd started. */
  created: number;
  expired: number;
  /**
   * The dataplane reports the first packet of a circuit that is not built (it is then built at once,
   * not at the next 1 s telemetry tick): off without lqos-ts's dataplane or with lazy_threshold_bytes.
   */
  firstPacketReports: boolean;
  /** Circuits whose first packet the dataplane reported since lqosd started. */
  reported: number;
}

/**
 * The forwarding mode in force: `linux-bridge` (the operator's bridge forwards, lqos-ts classifies
 * and shapes), `xdp-bridge` (lqos-ts forwards between the two NICs), `stick` (one NIC, lqos-ts swaps
 * the two VLANs and sends frames back out).
 */
export type ForwardingStatus =
  | { mode: 'linux-bridge'; toInternet: string; toNetwork: string; /** The bridge holding both NICs, when found. */ bridge?: string }
  | { mode: 'xdp-bridge'; toInternet: string; toNetwork: string }
  | { mode: 'stick'; interface: string; internetVlan: number; networkVlan: number };

/** One shaping interface's XDP attachment. `generic` is slower and passes no metadata to tc. */
export interface XdpAttachment {
  interface: string;
  role: 'download' | 'upload' | 'stick';
  mode: 'native' | 'generic';
  /**
   * The XDP program loaded: `lqos_xdp`, or `lqos_xdp_nometa` on a kernel that refuses XDP programs
   * bpf_xdp_adjust_meta (tc then looks each redirected frame up again: same shaping, a little more CPU).
   */
  program?: string;
}

/** "Shaping from last good inputs of <at>": why, and since when. */
export interface LastGoodStatus {
  /** When the last good inputs were applied (their copy's time). */
  at: string;
  /** When the current inputs were first found unusable (this stretch). */
  since: string;
  /** The first error, as `file:line: message`. */
  reason: string;
  file?: string;
  line?: number;
}

/** The applied plan in a few numbers. */
export type PlanSummary = { applied: true; circuits: number; nodes: number; mode: QueueMode; /** a dry run's plan: planned, not applied */ planned?: boolean } | { applied: false };

export interface StatusPayload {
  version: string;
  /** `node_name` of lqos.conf (the UI header and title show it). */
  nodeName: string;
  /** `node_id` of lqos.conf, or (empty) a stable id derived from /etc/machine-id. */
  nodeId: string;
  /** `[rtt_thresholds]`: the web UI colours RTTs green at or below greenMs, red at or above redMs. */
  rttThresholds: { greenMs: number; yellowMs: number; redMs: number };
  /** `enable_circuit_heatmaps` / `enable_site_heatmaps` / `enable_asn_heatmaps`: which pages show a heatmap. */
  heatmaps: { circuit: boolean; site: boolean; asn: boolean };
  startedAt: string;
  uptimeSeconds: number;
  shapingStatus: ShapingStatus;
  dryRun: boolean;
  queueMode: QueueMode;
  /** Unacknowledged urgent issues. */
  urgentActive: number;
  scheduler: SchedulerStatus;
  plan: PlanSummary;
  /** The CRM integration that owns ShapedDevices.csv / network.json (editors are read-only), if any. */
  inputsOwnedBy: string | null;
}

/** What lqos_overrides.json changed (lib/shaping/overridesApplied.ts): the first 50 changes and warnings, and how many there are. */
export interface OverridesStatus {
  /** When the effective inputs were built. */
  at: string;
  /** The overrides file. */
  file: string;
  changes: string[];
  changeCount: number;
  /** Entries that matched nothing or could not be applied. */
  warnings: string[];
  warningCount: number;
}
