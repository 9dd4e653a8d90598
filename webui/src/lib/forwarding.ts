/** The forwarding mode in force (lqosd's shapingStatus.forwarding) in operator words. */
import type { ForwardingStatus } from '../../../lib/api/status.ts';

export function forwardingText(f: ForwardingStatus): string {
  switch (f.mode) {
    case 'linux-bridge':
      return `Linux bridge (${f.bridge ?? `${f.toInternet} ↔ ${f.toNetwork}`}) — lqos-ts classifies only`;
    case 'xdp-bridge':
      return `XDP bridge: lqos-ts forwards between ${f.toInternet} and ${f.toNetwork}`;
    case 'stick':
      return `On a stick: ${f.interface}, VLAN ${f.internetVlan} ↔ ${f.networkVlan}`;
  }
}

/** What each mode means, for the title/help next to the text. */
export function forwardingHelp(f: ForwardingStatus): string {
  switch (f.mode) {
    case 'linux-bridge':
      return 'The Linux bridge forwards frames (and keeps forwarding if lqosd stops); lqos-ts classifies and shapes them on egress.';
    case 'xdp-bridge':
      return `lqos-ts redirects every frame arriving on ${f.toInternet} or ${f.toNetwork} to the other one, where it is shaped. Traffic stops if the programs are removed.`;
    case 'stick':
      return `Frames tagged with VLAN ${f.internetVlan} (Internet side) or ${f.networkVlan} (subscriber side) get the other tag and leave ${f.interface} again, shaped.`;
  }
}
