/**
 * What a shaping run needs from the kernel besides tc: fallback leaves for qdiscs this kernel
 * lacks, the eBPF dataplane attached as the config says, and its removal (--clearrules). Used by
 * lqosd and by `LibreQoS --direct`; libbpf is loaded only when the dataplane is touched.
 */
import type { ShapingInterfaces } from '../config/load.ts';
import { stickVlans } from '../config/resolve.ts';
import type { LqosConfig } from '../config/schema.ts';
import { chooseLeafFallback, probeQdiscKinds } from '../kernel/qdiscs.ts';
import type { LeafQdisc } from '../model.ts';
import type { Log } from '../util/log.ts';

const dataplane = () => import('../../dataplane/attach.ts');

/** Replacement leaves for the planned kinds (cake, fq_codel) this kernel lacks; each is warned about. */
export async function leafSubstitutes(log: Log): Promise<Record<string, LeafQdisc>> {
  const available = await probeQdiscKinds();
  const substitute: Record<string, LeafQdisc> = {};
  for (const kind of ['cake', 'fq_codel'] as const) {
    const choice = chooseLeafFallback(available, kind);
    if (!choice.fallback) continue;
    substitute[kind] = { kind: choice.kind, args: choice.args };
    log.warn({ code: 'qdisc-fallback', planned: kind, using: choice.kind }, choice.reason);
  }
  return substitute;
}

export interface AttachArgs {
  config: LqosConfig;
  interfaces: ShapingInterfaces;
  queues: number;
  /** Physical CPUs that own the queues (exclude_efficiency_cores); default: all online CPUs. */
  cpus?: number[];
  pinRoot: string;
  log: Log;
}

/**
 * The `[tuning]` ethtool knobs the attach applies to each shaping interface: disable_offload (the
 * features turned off), disable_rxvlan / disable_txvlan (VLAN offloads off so XDP sees 802.1Q tags
 * inline) and rx_usecs / tx_usecs (interrupt coalescing).
 */
export function interfaceTuning(config: LqosConfig): { disableOffloads: boolean; offloads: string[]; coalesce: { rxUsecs: number; txUsecs: number } } {
  const t = config.tuning;
  return {
    disableOffloads: true,
    offloads: [...t.disable_offload, ...(t.disable_rxvlan ? ['rxvlan'] : []), ...(t.disable_txvlan ? ['txvlan'] : [])],
    coalesce: { rxUsecs: t.rx_usecs, txUsecs: t.tx_usecs },
  };
}

/** Attaches (or re-adopts) the dataplane with the config's interfaces, VLANs and [tuning]. */
export async function attachForConfig({ config, interfaces, queues, cpus, pinRoot, log }: AttachArgs): Promise<void> {
  // The loader logs its warnings and the attached interfaces itself.
  await (await dataplane()).attachDataplane({
    downloadIf: interfaces.download,
    uploadIf: interfaces.upload,
    onAStick: interfaces.onAStick,
    queues,
    cpus,
    stickOffset: interfaces.onAStick ? queues : 0,
    vlan: stickVlans(config),
    pinRoot,
    ...interfaceTuning(config),
    logger: { info: (m) => log.info(m), warn: (m) => log.warn(m) },
  });
}

/** Detaches the programs from every interface and unpins the maps. */
export async function teardownDataplane(pinRoot: string, log: Log): Promise<void> {
  const r = await (await dataplane()).teardownAll({ pinRoot, logger: { info: (m) => log.info(m), warn: (m) => log.warn(m) } });
  log.info({ interfaces: r.interfaces, unpinned: r.unpinned.length }, 'dataplane removed');
}
