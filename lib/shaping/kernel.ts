/**
 * What a shaping run needs from the kernel besides tc: fallback leaves for qdiscs this kernel
 * lacks, the eBPF dataplane attached as the config says, and its removal (--clearrules). Used by
 * lqosd and by `LibreQoS --direct`; libbpf is loaded only when the dataplane is touched.
 */
import type { AttachReport } from '../../dataplane/attach.ts';
import type { XdpAttachment } from '../api/status.ts';
import type { ShapingInterfaces } from '../config/load.ts';
import { stickVlans } from '../config/resolve.ts';
import type { LqosConfig } from '../config/schema.ts';
import { chooseLeafFallback, probeQdiscKinds } from '../kernel/qdiscs.ts';
import type { LeafQdisc } from '../model.ts';
import type { Log } from '../util/log.ts';

const dataplane = () => import('../../dataplane/attach.ts');
type AttachOptions = import('../../dataplane/attach.ts').AttachOptions;

/** What lqosd's status and the journal show of an attach: the XDP mode in force per interface. */
export interface AttachSummary {
  xdp: XdpAttachment[];
}

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
 * The `[tuning]` knobs the attach applies to each shaping interface: disable_offload (the features
 * turned off), disable_rxvlan (802.1Q and 802.1ad tag stripping off, so XDP sees the tags inline; read
 * back, and the attach refuses while it stays on), disable_txvlan, rx_usecs / tx_usecs (interrupt
 * coalescing) and xdp_mode (native or generic XDP).
 */
export function interfaceTuning(config: LqosConfig): { disableOffloads: boolean; offloads: string[]; coalesce: { rxUsecs: number; txUsecs: number }; xdpMode: 'native' | 'generic' } {
  const t = config.tuning;
  return {
    disableOffloads: true,
    offloads: [...t.disable_offload, ...(t.disable_rxvlan ? ['rxvlan', 'rx-vlan-stag-hw-parse'] : []), ...(t.disable_txvlan ? ['txvlan'] : [])],
    coalesce: { rxUsecs: t.rx_usecs, txUsecs: t.tx_usecs },
    xdpMode: t.xdp_mode,
  };
}

/** The attach options for the config's interfaces, VLANs and [tuning] (pure). */
export function attachOptionsFor({ config, interfaces, queues, cpus, pinRoot, log }: AttachArgs): AttachOptions {
  return {
    downloadIf: interfaces.download,
    uploadIf: interfaces.upload,
    onAStick: interfaces.onAStick,
    forwarding: interfaces.forwarding,
    queues,
    cpus,
    stickOffset: interfaces.onAStick ? queues : 0,
    vlan: stickVlans(config),
    pinRoot,
    ...interfaceTuning(config),
    logger: { info: (m) => log.info(m), warn: (m) => log.warn(m) },
  };
}

/** Attaches (or re-adopts) the dataplane with the config's interfaces, VLANs and [tuning]. */
export async function attachForConfig(args: AttachArgs): Promise<AttachSummary> {
  // The loader logs its warnings and the attached interfaces (with their XDP mode) itself.
  return attachSummary(await (await dataplane()).attachDataplane(attachOptionsFor(args)));
}

/** What the status shows of an attach: per interface its XDP mode and the XDP program loaded. */
export function attachSummary(r: Pick<AttachReport, 'interfaces' | 'xdpProgram'>): AttachSummary {
  return { xdp: r.interfaces.map((i) => ({ interface: i.name, role: i.role, mode: i.xdpMode, program: r.xdpProgram })) };
}

/** True for an attach refusal (DataplaneError with a refusal code): the message holds the fix. */
export function isAttachRefusal(e: unknown): e is Error & { code: string; refusal: string } {
  return e instanceof Error && e.name === 'DataplaneError' && typeof (e as { refusal?: unknown }).refusal === 'string';
}

/**
 * Kernel and libbpf fit for the dataplane (README "Supported kernels and libbpf"): errors refuse
 * (lqosd degraded, `LibreQoS --direct` exits), warnings are told. Loads libbpf on demand.
 */
export async function checkDataplanePlatform(config: LqosConfig): Promise<{ errors: string[]; warnings: string[]; kernel: string; libbpf: string }> {
  const { checkPlatform } = await import('../../dataplane/platform.ts');
  return checkPlatform(config.tuning.xdp_mode);
}

/** Detaches the programs from every interface and unpins the maps. */
export async function teardownDataplane(pinRoot: string, log: Log): Promise<void> {
  const r = await (await dataplane()).teardownAll({ pinRoot, logger: { info: (m) => log.info(m), warn: (m) => log.warn(m) } });
  log.info({ interfaces: r.interfaces, unpinned: r.unpinned.length }, 'dataplane removed');
}
