/**
 * The part of the configuration the planner needs, in planner vocabulary. Built from
 * /etc/lqos.conf by `planConfigFromLqos`, or written directly by tests and benchmarks.
 */
export interface PlanConfig {
  interfaces: { download: string; upload: string; onAStick: boolean };
  /** Number of shaping queues per direction (already resolved: override / sysfs / CPUs). */
  queues: number;
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
