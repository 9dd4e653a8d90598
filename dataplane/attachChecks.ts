/**
 * Pure checks that decide whether an interface (or this host) is fit for the dataplane, each turning
 * tool output or versions into a verdict with the operator's message. No kernel access here: netdev.ts
 * and platform.ts read the facts, attach.ts acts on the verdicts.
 *
 * - VLAN offloads: while the NIC strips 802.1Q / 802.1ad tags, XDP never sees them and the skb the
 *   cpumap builds cannot carry them back (ethtool -k is read back; "[fixed]" means it cannot change).
 * - Traffic classes: with num_tc != 0 (DCB, mqprio, taprio) the TX queue the classifier picks is not
 *   the HTB of the class.
 * - XDP mode: generic XDP cannot redirect to a cpumap before 5.15.
 * - Kernel and libbpf versions.
 */
import type { Refusal } from './libbpf.ts';

// ---------------------------------------------------------------------------------------------
// ethtool -k

export interface Feature {
  on: boolean;
  /** "[fixed]": the driver does not let it change. */
  fixed: boolean;
  /** "[requested on|off]": what was asked, when the driver kept another state. */
  requested?: boolean;
}

/** `ethtool -k IF` output → feature name → state (sub-features included; headers ignored). */
export function parseEthtoolFeatures(text: string): Map<string, Feature> {
  const out = new Map<string, Feature>();
  for (const line of text.split('\n')) {
    const m = /^\s*([a-z0-9][a-z0-9-]*):\s+(on|off)(?:\s+\[(fixed|requested (on|off))\])?\s*$/.exec(line);
    if (!m) continue;
    const f: Feature = { on: m[2] === 'on', fixed: m[3] === 'fixed' };
    if (m[4]) f.requested = m[4] === 'on';
    out.set(m[1]!, f);
  }
  return out;
}

/** The VLAN tag stripping features: `ethtool -k` name → `ethtool -K` name. */
export const VLAN_STRIP_FEATURES: ReadonlyArray<{ feature: string; setName: string; what: string }> = [
  { feature: 'rx-vlan-offload', setName: 'rxvlan', what: '802.1Q tag stripping' },
  { feature: 'rx-vlan-stag-hw-parse', setName: 'rx-vlan-stag-hw-parse', what: '802.1ad (QinQ S-tag) stripping' },
];

/** The offloads attach turns off when the caller names none (VLAN stripping included). */
export const DEFAULT_OFFLOADS: readonly string[] = ['gro', 'gso', 'tso', 'lro', 'rxvlan', 'rx-vlan-stag-hw-parse'];

export interface VlanVerdict {
  refusal?: Refusal;
  warnings: string[];
}

/**
 * What the VLAN stripping state read back means. On a stick tags carry the direction: stripping
 * refuses. In bridge mode it refuses when the operator asked it off (`wantedOff`, [tuning]
 * disable_rxvlan = true) and it stayed on; when the operator left it on it is one warning.
 */
export function vlanVerdict(ifname: string, features: Map<string, Feature>, opts: { onAStick: boolean; wantedOff: (setName: string) => boolean }): VlanVerdict {
  const warnings: string[] = [];
  if (features.size === 0 && opts.onAStick) {
    // Nothing read at all (ethtool missing or failing): on a stick that cannot be taken as "off".
    const hint = `install ethtool, check \`ethtool -k ${ifname}\` works, and make sure rx-vlan-offload is off`;
    return { warnings, refusal: { code: 'VLAN_STRIPPING', message: `refusing to attach the dataplane: could not read the offload features of ${ifname} (ethtool -k), so VLAN tag stripping cannot be ruled out; on a single interface the VLAN tag tells download from upload. Fix: ${hint}`, hint } };
  }
  const stuck = VLAN_STRIP_FEATURES.filter((v) => features.get(v.feature)?.on);
  const refuse = stuck.filter((v) => opts.onAStick || opts.wantedOff(v.setName));
  const warn = stuck.filter((v) => !refuse.includes(v));
  for (const v of warn) {
    warnings.push(`${ifname}: ${v.feature} (${v.what}) is on because [tuning] disable_rxvlan = false: VLAN-tagged traffic is shaped ` +
      `but shaped frames leave ${ifname} without their VLAN tag (the cpumap cannot carry a stripped tag); ` +
      `set disable_rxvlan = true unless this link carries no VLAN tags`);
  }
  if (!refuse.length) return { warnings };
  const fixed = refuse.filter((v) => features.get(v.feature)?.fixed);
  const names = refuse.map((v) => `${v.feature}${features.get(v.feature)?.fixed ? ' [fixed]' : ''} (${v.what})`).join(' and ');
  const why = opts.onAStick
    ? 'on a single interface the VLAN tag tells download from upload, and XDP never sees a stripped tag'
    : 'shaped VLAN-tagged frames would leave untagged through the cpumap';
  const hint = fixed.length
    ? `the driver of ${ifname} cannot turn ${fixed.map((v) => v.feature).join('/')} off ([fixed]): use another NIC, or wire the shaper where frames arrive untagged` +
      (opts.onAStick ? ' (two interfaces, [bridge])' : '; if this link carries no VLAN tags at all, set [tuning] disable_rxvlan = false (attaches with a warning)')
    : `ethtool -K ${ifname} ${refuse.map((v) => `${v.setName} off`).join(' ')}` +
      (opts.onAStick ? '' : ', and keep [tuning] disable_rxvlan = true') +
      '; if the driver keeps refusing, use another NIC';
  const setting = opts.onAStick ? '' : ' although [tuning] disable_rxvlan = true asks it off';
  return {
    warnings,
    refusal: {
      code: 'VLAN_STRIPPING',
      message: `refusing to attach the dataplane: ${ifname} still strips VLAN tags in hardware (${names}${fixed.length ? ', fixed by the driver' : ''})${setting}; ${why}. Fix: ${hint}`,
      hint,
    },
  };
}

// ---------------------------------------------------------------------------------------------
// Traffic classes (num_tc)

/**
 * `/sys/class/net/IF/queues/tx-N/traffic_class` values (null = unreadable) and the root qdisc kind
 * → the traffic classes in force, or undefined when there are none (num_tc == 0).
 */
export function trafficClassProblem(ifname: string, facts: { classes: Record<string, string | null>; rootQdisc?: string }): Refusal | undefined {
  const odd = Object.entries(facts.classes).filter(([, v]) => v !== null && v.trim() !== '' && v.trim() !== '0');
  const root = facts.rootQdisc === 'mqprio' || facts.rootQdisc === 'taprio' ? facts.rootQdisc : undefined;
  if (!odd.length && !root) return undefined;
  const seen = [
    ...(root ? [`root qdisc ${root}`] : []),
    ...(odd.length ? [`TX queues in traffic classes (${odd.slice(0, 4).map(([q, v]) => `${q}: ${v!.trim()}`).join(', ')}${odd.length > 4 ? ', ...' : ''})`] : []),
  ].join(', ');
  const hint = `remove the traffic classes from ${ifname}: ${root ? `\`tc qdisc del dev ${ifname} root\`` : 'turn DCB off'} ` +
    `(firmware LLDP on Intel NICs: \`ethtool --set-priv-flags ${ifname} disable-fw-lldp on\`; \`dcb ets show dev ${ifname}\` / lldpad), ` +
    'then attach again (systemctl reload lqosd or LibreQoS --direct)';
  return {
    code: 'TRAFFIC_CLASSES',
    message: `refusing to attach the dataplane: ${ifname} has traffic classes in force (num_tc != 0: ${seen}), as DCB or mqprio set; ` +
      `the classifier's TX queue choice would put packets in another queue's HTB and miss their class. Fix: ${hint}`,
    hint,
  };
}

/** Root qdisc kind from `tc qdisc show dev IF` text (undefined when none is listed as root). */
export function rootQdiscKind(tcQdiscShow: string): string | undefined {
  for (const line of tcQdiscShow.split('\n')) {
    const m = /^qdisc (\S+) \S+ root\b/.exec(line.trim());
    if (m) return m[1];
  }
  return undefined;
}

// ---------------------------------------------------------------------------------------------
// Versions

export interface Version { major: number; minor: number; patch: number }

/** `uname -r` text (e.g. "6.18.44-fc-v1272", "5.15.0-91-generic") → version, or undefined. */
export function parseKernelRelease(release: string): Version | undefined {
  const m = /^(\d+)\.(\d+)(?:\.(\d+))?/.exec(release.trim());
  return m ? { major: Number(m[1]), minor: Number(m[2]), patch: Number(m[3] ?? 0) } : undefined;
}

/** < 0, 0, > 0 as a is older, equal, newer than b (patch ignored when b has none). */
export function compareVersion(a: Pick<Version, 'major' | 'minor'> & { patch?: number }, b: Pick<Version, 'major' | 'minor'> & { patch?: number }): number {
  return a.major - b.major || a.minor - b.minor || (a.patch ?? 0) - (b.patch ?? 0);
}

export const KERNEL_MIN = { major: 5, minor: 8 } as const; // BPF ring buffer (flow telemetry)
export const KERNEL_RECOMMENDED = { major: 5, minor: 15 } as const; // generic XDP redirect to a cpumap
export const KERNEL_PERCPU_OK = { major: 5, minor: 10 } as const;
export const LIBBPF_MIN_MAJOR = 1;
/** BPF_F_XDP_HAS_FRAGS (multi-buffer XDP) exists from 5.18; older kernels refuse the flag at load. */
export const KERNEL_XDP_FRAGS = { major: 5, minor: 18 } as const;

/** Whether to load the XDP program frags-aware: native mode on a kernel that knows the flag. */
export function wantsFrags(mode: 'native' | 'generic', kernelRelease: string): boolean {
  const v = parseKernelRelease(kernelRelease);
  return mode === 'native' && v !== undefined && compareVersion(v, KERNEL_XDP_FRAGS) >= 0;
}

export interface PlatformFacts {
  /** `uname -r`. */
  kernel: string;
  /** The loaded libbpf's version, or why it could not be loaded. */
  libbpf: { major: number; minor: number } | { error: string };
  xdpMode: 'native' | 'generic';
}

export interface PlatformVerdict {
  errors: string[];
  warnings: string[];
}

const fmt = (v: { major: number; minor: number }) => `${v.major}.${v.minor}`;

/** Kernel and libbpf against what the dataplane needs (README "Supported kernels and libbpf"). */
export function platformVerdict(f: PlatformFacts): PlatformVerdict {
  const errors: string[] = [];
  const warnings: string[] = [];
  const k = parseKernelRelease(f.kernel);
  if (!k) warnings.push(`cannot read the kernel version from "${f.kernel}"; the dataplane needs Linux ${fmt(KERNEL_MIN)} or newer (${fmt(KERNEL_RECOMMENDED)}+ recommended)`);
  else if (compareVersion(k, KERNEL_MIN) < 0) {
    errors.push(`kernel ${f.kernel} is too old for the dataplane: it needs Linux ${fmt(KERNEL_MIN)} or newer (BPF ring buffer), ${fmt(KERNEL_RECOMMENDED)}+ recommended; upgrade the kernel`);
  } else if (compareVersion(k, KERNEL_RECOMMENDED) < 0) {
    if (f.xdpMode === 'generic') {
      errors.push(`[tuning] xdp_mode = "generic" needs Linux ${fmt(KERNEL_RECOMMENDED)} or newer (kernel ${f.kernel} cannot redirect generic-mode XDP to a cpumap: every shaped packet would be dropped); use xdp_mode = "native" or upgrade the kernel`);
    }
    warnings.push(`kernel ${f.kernel} is older than the recommended ${fmt(KERNEL_RECOMMENDED)}: generic-mode XDP cannot redirect to a cpumap (native XDP is required)` +
      (compareVersion(k, KERNEL_PERCPU_OK) < 0 ? `, and per-CPU counters are unreliable before ${fmt(KERNEL_PERCPU_OK)}` : '') + '; upgrade when you can');
  }
  if ('error' in f.libbpf) errors.push(`libbpf cannot be used: ${f.libbpf.error}; install libbpf ${LIBBPF_MIN_MAJOR}.0 or newer (Debian/Ubuntu: apt-get install libbpf1)`);
  else if (f.libbpf.major < LIBBPF_MIN_MAJOR) {
    errors.push(`libbpf ${fmt(f.libbpf)} is too old: the dataplane needs libbpf ${LIBBPF_MIN_MAJOR}.0 or newer (libbpf.so.1); install libbpf1`);
  }
  return { errors, warnings };
}

/** An MTU note for a native attach refusal: jumbo frames need a frags-aware program and driver. */
export function nativeXdpHint(ifname: string, mtu: number | undefined): string {
  return `set [tuning] xdp_mode = "generic" in lqos.conf (slower: every packet gets an skb first, XDP metadata is not passed to tc; ` +
    `refused below Linux ${fmt(KERNEL_RECOMMENDED)}), or use a NIC whose driver supports native XDP` +
    (mtu && mtu > 3498 ? ` with multi-buffer frames at MTU ${mtu} (or lower the MTU of ${ifname})` : '');
}
