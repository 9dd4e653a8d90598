/**
 * Shaping interfaces through the usual tools (sh, ethtool, tc, ip), inside a network namespace when
 * `netns` is set: preparation before attaching (TX queue count, XPS off, traffic classes, offloads set
 * and read back, interrupt coalescing) and inspection for detach/teardown (filters left, interfaces
 * carrying our programs).
 */
import { execa } from 'execa';
import { DEFAULT_OFFLOADS, parseEthtoolFeatures, rootQdiscKind, type Feature } from './attachChecks.ts';
import { DataplaneError } from './libbpf.ts';

/** Run a command, in `netns` when given (`ip netns exec`). */
async function run(netns: string | undefined, cmd: string, args: string[], reject = true) {
  const full = netns ? ['netns', 'exec', netns, cmd, ...args] : args;
  const bin = netns ? 'ip' : cmd;
  return execa(bin, full, { reject, all: true });
}

export interface IfPrep {
  txQueues: number;
  hasClsact: boolean;
  warnings: string[];
  /** traffic_class of each TX queue (null: unreadable) and the root qdisc kind (num_tc check). */
  trafficClasses: Record<string, string | null>;
  rootQdisc?: string;
  /** `ethtool -k` read back after the offloads were set (empty when ethtool could not be run). */
  features: Map<string, Feature>;
  /** Current MTU (sysfs). */
  mtu?: number;
}

export interface IfTuning {
  /** Turn the offload features off (default true). */
  disableOffloads: boolean;
  /** Features to turn off (default DEFAULT_OFFLOADS: gro, gso, tso, lro and VLAN stripping). */
  offloads?: string[];
  /** Interrupt coalescing, best effort. */
  coalesce?: { rxUsecs?: number; txUsecs?: number };
}

/** First line of a failed command's output, for a warning. */
const firstLine = (all: string | undefined) => (all ?? '').trim().split('\n')[0];

/**
 * One shell call (sysfs must be read inside the namespace): counts TX queues and zeroes XPS, lists
 * each queue's traffic_class, the MTU and the qdiscs (clsact present? root mqprio/taprio?). The
 * interface name is passed as $1, never interpolated; $2 is the sysfs class directory (tests pass a
 * fake one).
 */
const INSPECT_SCRIPT = 'set -u; d="$2/$1/queues"; [ -d "$d" ] || { echo NOQUEUES; exit 0; }; ' +
  'n=0; for q in "$d"/tx-*; do n=$((n+1)); if [ -e "$q/xps_cpus" ]; then echo 0 > "$q/xps_cpus" 2>/dev/null || echo "XPSFAIL $q"; fi; ' +
  'if [ -e "$q/xps_rxqs" ]; then echo 0 > "$q/xps_rxqs" 2>/dev/null || true; fi; ' +
  'if [ -e "$q/traffic_class" ]; then echo "TCLASS ${q##*/} $(cat "$q/traffic_class" 2>/dev/null || echo "?")"; fi; done; echo "TXQ $n"; ' +
  '[ -r "$2/$1/mtu" ] && echo "MTU $(cat "$2/$1/mtu")"; ' +
  'tc qdisc show dev "$1" 2>/dev/null | sed "s/^/QDISC /"; true';

/** Parse the inspection script's output (pure). */
export function parseInspection(ifname: string, out: string): Omit<IfPrep, 'features'> {
  if (out.includes('NOQUEUES')) throw new DataplaneError(`inspect queues of ${ifname}`, 2, `/sys/class/net/${ifname}/queues missing`, 'the interface must be multi-queue (veth: numtxqueues/numrxqueues, then `ethtool -L IF rx N tx N`)');
  const warnings: string[] = [];
  const trafficClasses: Record<string, string | null> = {};
  const qdiscs: string[] = [];
  let mtu: number | undefined;
  for (const line of out.split('\n')) {
    if (line.startsWith('XPSFAIL')) warnings.push(`could not disable XPS on ${line.slice(8)}; classes may land in the wrong queue`);
    const tcl = /^TCLASS (\S+) (.*)$/.exec(line);
    if (tcl) trafficClasses[tcl[1]!] = tcl[2] === '?' ? null : tcl[2]!.trim();
    if (line.startsWith('QDISC ')) qdiscs.push(line.slice(6));
    const m = /^MTU (\d+)/.exec(line);
    if (m) mtu = Number(m[1]);
  }
  const m = /TXQ (\d+)/.exec(out);
  return {
    txQueues: m ? Number(m[1]) : 0,
    hasClsact: qdiscs.some((q) => q.startsWith('qdisc clsact')),
    warnings, trafficClasses, rootQdisc: rootQdiscKind(qdiscs.join('\n')), mtu,
  };
}

/** Inspect the interface's queues (XPS zeroed on the way); `sysClassNet` is for tests. */
export async function inspectQueues(netns: string | undefined, ifname: string, sysClassNet = '/sys/class/net'): Promise<Omit<IfPrep, 'features'>> {
  const r = await run(netns, 'sh', ['-c', INSPECT_SCRIPT, 'sh', ifname, sysClassNet], false);
  return parseInspection(ifname, r.stdout ?? '');
}

/** `ethtool -k IF` parsed; empty (with a warning) when ethtool cannot be run. */
export async function readFeatures(netns: string | undefined, ifname: string, warnings: string[]): Promise<Map<string, Feature>> {
  const r = await run(netns, 'ethtool', ['-k', ifname], false);
  const f = parseEthtoolFeatures(r.stdout ?? '');
  if (f.size === 0) warnings.push(`could not read the offloads of ${ifname} (ethtool -k: ${firstLine(r.all) || `exit ${r.exitCode}`}); install ethtool`);
  return f;
}

async function turnOffloadsOff(netns: string | undefined, ifname: string, features: string[], warnings: string[]): Promise<void> {
  for (const feat of features) {
    const e = await run(netns, 'ethtool', ['-K', ifname, feat, 'off'], false);
    if (e.exitCode !== 0 && !/not supported|Cannot change|Could not change|fixed/i.test(e.all ?? '')) {
      warnings.push(`ethtool -K ${ifname} ${feat} off failed: ${firstLine(e.all)}`);
    }
  }
}

async function setCoalescing(netns: string | undefined, ifname: string, c: { rxUsecs?: number; txUsecs?: number }, warnings: string[]): Promise<void> {
  if (c.rxUsecs === undefined && c.txUsecs === undefined) return;
  const args = ['-C', ifname];
  if (c.rxUsecs !== undefined) args.push('rx-usecs', String(c.rxUsecs));
  if (c.txUsecs !== undefined) args.push('tx-usecs', String(c.txUsecs));
  const e = await run(netns, 'ethtool', args, false);
  // veth and many virtual NICs have no coalescing settings: not worth a warning.
  if (e.exitCode !== 0 && !/not supported|Operation not supported/i.test(e.all ?? '')) {
    warnings.push(`ethtool ${args.join(' ')} failed: ${firstLine(e.all)}`);
  }
}

/**
 * Ready an interface for shaping: XPS off, offloads off, coalescing; reports its TX queues, traffic
 * classes and the offloads read back (the caller judges them: ethtool's exit code is not trusted).
 */
export async function prepareInterface(netns: string | undefined, ifname: string, tuning: IfTuning): Promise<IfPrep> {
  const q = await inspectQueues(netns, ifname);
  if (tuning.disableOffloads) await turnOffloadsOff(netns, ifname, tuning.offloads ?? [...DEFAULT_OFFLOADS], q.warnings);
  if (tuning.coalesce) await setCoalescing(netns, ifname, tuning.coalesce, q.warnings);
  return { ...q, features: await readFeatures(netns, ifname, q.warnings) };
}

/** Promiscuous mode (the XDP bridge and a stick receive frames addressed to other hosts' MACs). */
export async function setPromisc(netns: string | undefined, ifname: string, on: boolean): Promise<void> {
  const r = await run(netns, 'ip', ['link', 'set', 'dev', ifname, 'promisc', on ? 'on' : 'off'], false);
  if (r.exitCode !== 0) throw new DataplaneError(`ip link set ${ifname} promisc ${on ? 'on' : 'off'}`, 1, firstLine(r.all), 'check that the interface exists and that this runs as root');
}

/** True when the interface has no tc filter left on egress nor ingress (its clsact can go). */
export async function noFiltersLeft(netns: string | undefined, ifname: string): Promise<boolean> {
  const left = await run(netns, 'tc', ['-j', 'filter', 'show', 'dev', ifname, 'egress'], false);
  const leftIn = await run(netns, 'tc', ['-j', 'filter', 'show', 'dev', ifname, 'ingress'], false);
  const empty = (s: string | undefined) => { try { return (JSON.parse(s || '[]') as unknown[]).length === 0; } catch { return false; } };
  return empty(left.stdout) && empty(leftIn.stdout);
}

type LinkJson = { ifname: string; xdp?: unknown };

/**
 * Interfaces in the namespace that may carry our programs: those with an XDP program (any) or a
 * clsact qdisc. Which of their programs are ours is decided by name through libbpf
 * (attach.ts ourProgramsOn), never from this list alone.
 */
export async function scanInterfaces(netns?: string): Promise<string[]> {
  const names = new Set<string>();
  const links = await run(netns, 'ip', ['-j', '-d', 'link', 'show'], false);
  try {
    for (const l of JSON.parse(links.stdout || '[]') as LinkJson[]) if (l.xdp) names.add(l.ifname);
  } catch { /* the clsact scan below still finds tc filters */ }
  const q = await run(netns, 'tc', ['-j', 'qdisc', 'show'], false);
  try {
    for (const d of JSON.parse(q.stdout || '[]') as Array<{ kind: string; dev: string }>) if (d.kind === 'clsact') names.add(d.dev);
  } catch { /* none */ }
  return [...names];
}
