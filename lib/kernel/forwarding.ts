/**
 * The forwarding mode's check of the host wiring (lqosd's preflight and `LibreQoS --direct`):
 *
 * - `linux-bridge`: the operator's bridge forwards; both NICs should be ports of one Linux bridge
 *   (its name is shown in the status), otherwise nothing passes between them: warned.
 * - `xdp-bridge`: lqos-ts forwards with its tc-ingress redirect, so the NICs must not also be
 *   bridged: both ports of one Linux bridge is refused (the fix is in the message), one of them a
 *   bridge port is warned about.
 * - `stick`: nothing to check here (the VLAN ids are validated by the config schema, VLAN stripping
 *   by the attach, which refuses while it stays on).
 *
 * The decision is pure (`forwardingVerdict` on `ip -j -d link show` output); `checkForwarding` reads it.
 */
import { execa } from 'execa';
import type { ShapingInterfaces } from '../config/load.ts';

/** The fields of one `ip -j -d link show` entry this check reads. */
export interface IpLink {
  ifname: string;
  /** The device this one is enslaved to (bridge, bond, ...). */
  master?: string;
  operstate?: string;
  linkinfo?: { info_kind?: string; info_slave_kind?: string };
}

export interface ForwardingVerdict {
  /** Each one refuses shaping (lqosd degraded, `--direct` exits). */
  errors: string[];
  warnings: string[];
  /** linux-bridge: the Linux bridge holding both NICs. */
  bridge?: string;
}

/** The Linux bridge `name` is a port of, if any. */
function bridgeOf(name: string, links: IpLink[]): string | undefined {
  const link = links.find((l) => l.ifname === name);
  if (!link?.master) return undefined;
  const master = links.find((l) => l.ifname === link.master);
  const isBridge = link.linkinfo?.info_slave_kind === 'bridge' || master?.linkinfo?.info_kind === 'bridge';
  return isBridge ? link.master : undefined;
}

/** What the wiring means for the forwarding mode in `ifaces` (pure). */
export function forwardingVerdict(ifaces: ShapingInterfaces, links: IpLink[], configPath: string): ForwardingVerdict {
  if (ifaces.forwarding === 'stick') return { errors: [], warnings: [] };
  const inet = ifaces.upload;
  const net = ifaces.download;
  const bInet = bridgeOf(inet, links);
  const bNet = bridgeOf(net, links);
  if (ifaces.forwarding === 'linux-bridge') {
    if (bInet && bInet === bNet) return { errors: [], warnings: [], bridge: bInet };
    const where = (n: string, b?: string) => `${n} ${b ? `is a port of ${b}` : 'is in no bridge'}`;
    return {
      errors: [],
      warnings: [
        `[bridge] use_xdp_bridge = false in ${configPath} expects a Linux bridge to forward between ${inet} and ${net}, but ${where(inet, bInet)} and ${where(net, bNet)}: ` +
          `nothing passes between them; put both in one bridge (ip link set ${inet} master br0; ip link set ${net} master br0), ` +
          'or set use_xdp_bridge = true to let lqos-ts forward between them, then reload lqosd (systemctl reload lqosd)',
      ],
    };
  }
  if (bInet && bInet === bNet) {
    return {
      errors: [
        `[bridge] use_xdp_bridge = true in ${configPath}, but ${inet} and ${net} are both ports of the Linux bridge ${bInet}: ` +
          `lqos-ts would forward between them itself and bypass ${bInet}. Either take them out of the bridge ` +
          `(ip link set ${inet} nomaster; ip link set ${net} nomaster, and remove them from ${bInet} in your network configuration) ` +
          `to use the XDP bridge, or set use_xdp_bridge = false to keep forwarding with ${bInet}; then reload lqosd (systemctl reload lqosd)`,
      ],
      warnings: [],
    };
  }
  const warnings = [
    [inet, bInet],
    [net, bNet],
  ]
    .filter(([, b]) => b)
    .map(
      ([n, b]) =>
        `[bridge] use_xdp_bridge = true in ${configPath}, but ${n} is a port of the Linux bridge ${b}: lqos-ts redirects every frame arriving on ${n} ` +
        `before ${b} sees it; take it out (ip link set ${n} nomaster) unless that is what you want`,
    );
  return { errors: [], warnings };
}

/** `ip -j -d link show` of this network namespace, or why it could not be read. */
export async function readLinks(): Promise<{ links?: IpLink[]; error?: string }> {
  try {
    const r = await execa('ip', ['-j', '-d', 'link', 'show'], { reject: false, timeout: 10_000 });
    if (r.exitCode !== 0) return { error: String(r.stderr).trim().split('\n')[0] || `ip exited with ${r.exitCode}` };
    return { links: JSON.parse(String(r.stdout)) as IpLink[] };
  } catch (e) {
    return { error: `could not run "ip -j -d link show": ${(e as Error).message.split('\n')[0]}` };
  }
}

/** Reads the links and decides; an unreadable link list is a warning (the check is skipped). */
export async function checkForwarding(ifaces: ShapingInterfaces, configPath: string): Promise<ForwardingVerdict> {
  if (ifaces.forwarding === 'stick') return { errors: [], warnings: [] };
  const { links, error } = await readLinks();
  if (!links) return { errors: [], warnings: [`could not check the bridge membership of ${ifaces.upload} and ${ifaces.download}: ${error}`] };
  return forwardingVerdict(ifaces, links, configPath);
}
