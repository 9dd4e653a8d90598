/**
 * The part of the configuration the planner needs, in planner vocabulary. Built from
 * /etc/lqos.conf by `planConfigFromLqos`, or written directly by tests and benchmarks.
 */
export interface PlanConfig {
  interfaces: { download: string; upload: string; onAStick: boolean };
  /** Number of shaping queues per direction (already resolved: override / sysfs / CPUs). */
  queues: number;
  /** download = `downlink_bandwidth_mbps` (total download, ISP-facing), upload = `uplink_bandwidth_mbps` (total upload). */
  link: { downloadMbps: number; uploadMbps: number };
  generatedPn: { downloadMbps: number; uploadMbps: number };
  /** e.g. "cake diffserv4" */
  defaultSqm: string;
  /** Circuits at or above this ceil get fq_codel instead of the default SQM (no override). */
  fastQueuesFqCodelMbps: number;
  /** Bin-pack top-level nodes and unparented circuits over queues by weight (else by count). */
  useBinpacking: boolean;
  queueMode: 'shape' | 'observe';
}

export interface LqosConfigLike {
  queues: {
    default_sqm: string;
    queue_mode: string;
    uplink_bandwidth_mbps: number;
    downlink_bandwidth_mbps: number;
    generated_pn_download_mbps: number;
    generated_pn_upload_mbps: number;
    fast_queues_fq_codel?: number;
    use_binpacking: boolean;
  };
}

export function planConfigFromLqos(
  config: LqosConfigLike,
  interfaces: { download: string; upload: string; onAStick: boolean },
  queues: number,
): PlanConfig {
  const q = config.queues;
  return {
    interfaces,
    queues,
    link: { downloadMbps: q.downlink_bandwidth_mbps, uploadMbps: q.uplink_bandwidth_mbps },
    generatedPn: { downloadMbps: q.generated_pn_download_mbps, uploadMbps: q.generated_pn_upload_mbps },
    defaultSqm: q.default_sqm,
    fastQueuesFqCodelMbps: q.fast_queues_fq_codel ?? 1000,
    useBinpacking: q.use_binpacking,
    queueMode: q.queue_mode === 'observe' ? 'observe' : 'shape',
  };
}

/**
 * Queue count: the override if set, else the smaller TX-queue count of the two interfaces,
 * never more than the CPUs; halved on a stick (the other half carries upload).
 */
export function resolveQueueCount(args: {
  override: number;
  txQueues: number[];
  cpus: number;
  onAStick: boolean;
}): { queues: number; reason: string } {
  const hw = args.override > 0 ? args.override : Math.min(...args.txQueues);
  let queues = Math.max(1, Math.min(hw, args.cpus));
  let reason =
    args.override > 0
      ? `override_available_queues = ${args.override}, ${args.cpus} CPUs`
      : `${Math.min(...args.txQueues)} TX queues, ${args.cpus} CPUs`;
  if (args.onAStick) {
    queues = Math.max(1, Math.floor(queues / 2));
    reason += ', halved for single-interface mode';
  }
  return { queues, reason };
}

/** The parsed inputs the capacity check reads (circuits and the network.json tree). */
export interface CapacityInputs {
  circuits: { name: string; parentNode: string; downloadMaxMbps: number }[];
  network: CapacityNode[];
}
interface CapacityNode {
  name: string;
  downloadMbps: number;
  children: CapacityNode[];
}

/**
 * Meaning of the two link capacities: `downlink_bandwidth_mbps` is the total download capacity
 * (ISP-facing interface), `uplink_bandwidth_mbps` the total upload capacity. Upstream LibreQoS.py
 * capped both directions with the uplink value, so a migrated config whose two values differ shapes
 * download differently here whenever a download rate lies above the smaller of the two. Returns the
 * warning for that case (one, naming the largest such rate), else undefined. Pure.
 */
export function capacityMeaningWarning(link: PlanConfig['link'], inputs: CapacityInputs): string | undefined {
  const { downloadMbps: down, uploadMbps: up } = link;
  if (down === up) return undefined;
  const smaller = Math.min(down, up);
  let top: { what: string; mbps: number } | undefined;
  // The label is made only for a new top (not for each of 50k circuits).
  const consider = (what: () => string, mbps: number) => {
    if (mbps > smaller && (!top || mbps > top.mbps)) top = { what: what(), mbps };
  };
  // A rate only counts as far as its parents let it through (the link aside).
  const reach = new Map<string, number>();
  const walk = (nodes: CapacityNode[], cap: number) => {
    for (const n of nodes) {
      const own = Math.min(n.downloadMbps, cap);
      reach.set(n.name, own);
      consider(() => `node "${n.name}"`, own);
      walk(n.children, own);
    }
  };
  walk(inputs.network, Infinity);
  for (const c of inputs.circuits) consider(() => `circuit "${c.name}"`, Math.min(c.downloadMaxMbps, reach.get(c.parentNode) ?? Infinity));
  if (!top) return undefined;
  const ours = Math.min(top.mbps, down);
  const theirs = Math.min(top.mbps, up);
  return (
    `[queues] downlink_bandwidth_mbps = ${down} and uplink_bandwidth_mbps = ${up} differ: lqos-ts caps download at ` +
    `downlink_bandwidth_mbps (total download capacity, ISP-facing interface) and upload at uplink_bandwidth_mbps ` +
    `(total upload capacity), while upstream LibreQoS.py capped both directions at uplink_bandwidth_mbps. ` +
    `The ${top.what} (download ${top.mbps} Mbps) is capped at ${ours} Mbps here but was capped at ${theirs} Mbps upstream. ` +
    `Check that downlink_bandwidth_mbps is your total download and uplink_bandwidth_mbps your total upload ` +
    `(swap them if this config was written for the old meaning).`
  );
}
