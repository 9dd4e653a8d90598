/**
 * Shaping interfaces through the usual tools (sh, ethtool, tc, ip), inside a network namespace when
 * `netns` is set: preparation before attaching (TX queue count, XPS off, offloads, interrupt
 * coalescing) and inspection for detach/teardown (filters left, interfaces carrying our programs).
 */
import { execa } from 'execa';
import { DataplaneError } from './libbpf.ts';
import { XDP_PROG } from './object.ts';

/** Run a command, in `netns` when given (`ip netns exec`). */
async function run(netns: string | undefined, cmd: string, args: string[], reject = true) {
  const full = netns ? ['netns', 'exec', netns, cmd, ...args] : args;
  const bin = netns ? 'ip' : cmd;
  return execa(bin, full, { reject, all: true });
}

export interface IfPrep { txQueues: number; hasClsact: boolean; warnings: string[] }

export interface IfTuning {
  /** Turn the offload features off (default true). */
  disableOffloads: boolean;
  /** Features to turn off (default gro, gso, tso, lro). */
  offloads?: string[];
  /** Interrupt coalescing, best effort. */
  coalesce?: { rxUsecs?: number; txUsecs?: number };
}

/** First line of a failed command's output, for a warning. */
const firstLine = (all: string | undefined) => (all ?? '').trim().split('\n')[0];

/**
 * Count TX queues and zero XPS in one shell call (sysfs must be read inside the namespace); also
 * tells whether a clsact qdisc exists. The interface name is passed as $1, never interpolated.
 */
async function zeroXps(netns: string | undefined, ifname: string): Promise<IfPrep> {
  const script = 'set -u; d="/sys/class/net/$1/queues"; [ -d "$d" ] || { echo NOQUEUES; exit 0; }; ' +
    'n=0; for q in "$d"/tx-*; do n=$((n+1)); if [ -e "$q/xps_cpus" ]; then echo 0 > "$q/xps_cpus" 2>/dev/null || echo "XPSFAIL $q"; fi; ' +
    'if [ -e "$q/xps_rxqs" ]; then echo 0 > "$q/xps_rxqs" 2>/dev/null || true; fi; done; echo "TXQ $n"; ' +
    'tc qdisc show dev "$1" 2>/dev/null | grep -q "^qdisc clsact" && echo HASCLSACT; true';
  const r = await run(netns, 'sh', ['-c', script, 'sh', ifname], false);
  const out = r.stdout ?? '';
  if (out.includes('NOQUEUES')) throw new DataplaneError(`inspect queues of ${ifname}`, 2, `/sys/class/net/${ifname}/queues missing`, 'the interface must be multi-queue (veth: numtxqueues/numrxqueues, then `ethtool -L IF rx N tx N`)');
  const warnings: string[] = [];
  for (const line of out.split('\n')) if (line.startsWith('XPSFAIL')) warnings.push(`could not disable XPS on ${line.slice(8)}; classes may land in the wrong queue`);
  const m = /TXQ (\d+)/.exec(out);
  return { txQueues: m ? Number(m[1]) : 0, hasClsact: out.includes('HASCLSACT'), warnings };
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

/** Ready an interface for shaping: XPS off, offloads off, coalescing; reports its TX queues. */
export async function prepareInterface(netns: string | undefined, ifname: string, tuning: IfTuning): Promise<IfPrep> {
  const prep = await zeroXps(netns, ifname);
  if (tuning.disableOffloads) await turnOffloadsOff(netns, ifname, tuning.offloads ?? ['gro', 'gso', 'tso', 'lro'], prep.warnings);
  if (tuning.coalesce) await setCoalescing(netns, ifname, tuning.coalesce, prep.warnings);
  return prep;
}

/** True when the interface has no tc filter left on egress nor ingress (its clsact can go). */
export async function noFiltersLeft(netns: string | undefined, ifname: string): Promise<boolean> {
  const left = await run(netns, 'tc', ['-j', 'filter', 'show', 'dev', ifname, 'egress'], false);
  const leftIn = await run(netns, 'tc', ['-j', 'filter', 'show', 'dev', ifname, 'ingress'], false);
  const empty = (s: string | undefined) => { try { return (JSON.parse(s || '[]') as unknown[]).length === 0; } catch { return false; } };
  return empty(left.stdout) && empty(leftIn.stdout);
}

/** Interfaces in the namespace that carry our XDP program or have a clsact qdisc. */
export async function scanInterfaces(netns?: string): Promise<string[]> {
  const names = new Set<string>();
  const links = await run(netns, 'ip', ['-j', '-d', 'link', 'show'], false);
  try {
    for (const l of JSON.parse(links.stdout || '[]') as Array<{ ifname: string; xdp?: { prog?: { name?: string }; attached?: Array<{ prog?: { name?: string } }> } }>) {
      const progNames = [l.xdp?.prog?.name, ...(l.xdp?.attached ?? []).map((a) => a.prog?.name)];
      if (progNames.some((n) => n === XDP_PROG)) names.add(l.ifname);
    }
  } catch { /* ignore */ }
  const q = await run(netns, 'tc', ['-j', 'qdisc', 'show'], false);
  try {
    for (const d of JSON.parse(q.stdout || '[]') as Array<{ kind: string; dev: string }>) if (d.kind === 'clsact') names.add(d.dev);
  } catch { /* ignore */ }
  return [...names];
}
