/** The forwarding mode of a config's interfaces, as lqosd's status reports it (pure). */
import type { ForwardingStatus } from '../api/status.ts';
import type { ShapingInterfaces } from '../config/load.ts';
import type { LqosConfig } from '../config/schema.ts';

/** `bridge`: the Linux bridge found holding both NICs (linux-bridge mode only). */
export function forwardingStatus(config: LqosConfig, ifaces: ShapingInterfaces, bridge?: string): ForwardingStatus {
  const stick = config.single_interface;
  if (ifaces.forwarding === 'stick' && stick) {
    return { mode: 'stick', interface: stick.interface, internetVlan: stick.internet_vlan, networkVlan: stick.network_vlan };
  }
  const sides = { toInternet: ifaces.upload, toNetwork: ifaces.download };
  if (ifaces.forwarding === 'xdp-bridge') return { mode: 'xdp-bridge', ...sides };
  return { mode: 'linux-bridge', ...sides, ...(bridge ? { bridge } : {}) };
}
