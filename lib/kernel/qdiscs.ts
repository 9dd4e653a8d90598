/**
 * Kernel qdisc capability probe and leaf-qdisc fallback choice.
 *
 * The probe never touches real interfaces: it creates a throwaway network namespace with a veth
 * pair (dummy links need the `dummy` module, which minimal kernels lack), tries `tc qdisc replace
 * ... root <kind>` for each kind, and deletes the namespace again (and any left by a prober that died
 * mid-probe). tc may auto-load qdisc modules while doing so, exactly as a real apply would. Results
 * are cached per process.
 */
import { execa } from 'execa';
import { randomBytes } from 'node:crypto';
import { pidAlive, startTimeOf } from '../util/processes.ts';

export const DEFAULT_PROBE_KINDS = ['cake', 'fq_codel', 'fq_pie', 'pie', 'codel', 'sfq', 'fq', 'pfifo', 'bfifo', 'tbf', 'htb', 'red'];

/** Minimal valid arguments for kinds that refuse to be created bare. */
const PROBE_ARGS: Record<string, string[]> = {
  tbf: ['rate', '1mbit', 'burst', '32kbit', 'latency', '400ms'],
  red: ['limit', '400000', 'min', '30000', 'max', '90000', 'avpkt', '1000', 'burst', '55', 'bandwidth', '10mbit', 'probability', '0.02'],
  pfifo: ['limit', '100'],
  bfifo: ['limit', '100000'],
};

const cache = new Map<string, Promise<Set<string>>>();

/**
 * Delete probe namespaces left by processes that died mid-probe (lqosd killed while starting): the
 * name carries the prober's pid and start time (`lqprobe-<pid>-<start>-<random>`; earlier versions:
 * `lqprobe-<pid>-<random>`), so only namespaces of processes that are gone go — also when a later
 * process has taken the PID.
 */
async function removeStaleProbes(ip: (args: string[]) => Promise<{ exitCode?: number; stdout?: unknown }>): Promise<void> {
  const list = await ip(['netns', 'list']);
  for (const line of String(list.stdout ?? '').split('\n')) {
    const m = /^(lqprobe-(\d+)-(?:(\d+)-)?[0-9a-f]{8})(?:\s|$)/.exec(line.trim());
    if (m && !pidAlive(Number(m[2]), m[3] && m[3] !== '0' ? m[3] : undefined)) await ip(['netns', 'del', m[1]!]);
  }
}

async function probeOnce(kinds: string[]): Promise<Set<string>> {
  const ns = `lqprobe-${process.pid}-${startTimeOf(process.pid) ?? 0}-${randomBytes(4).toString('hex')}`;
  const available = new Set<string>();
  const ip = (args: string[]) => execa('ip', args, { reject: false, all: true });
  await removeStaleProbes(ip);
  const add = await ip(['netns', 'add', ns]);
  if (add.exitCode !== 0) throw new Error(`qdisc probe: cannot create network namespace ${ns}: ${add.all} (needs root)`);
  try {
    const link = await ip(['-n', ns, 'link', 'add', 'probe0', 'type', 'veth', 'peer', 'name', 'probe1']);
    if (link.exitCode !== 0) throw new Error(`qdisc probe: cannot create a veth pair in ${ns}: ${link.all}`);
    await ip(['-n', ns, 'link', 'set', 'probe0', 'up']);
    for (const kind of kinds) {
      const r = await execa('tc', ['-n', ns, 'qdisc', 'replace', 'dev', 'probe0', 'root', kind, ...(PROBE_ARGS[kind] ?? [])], { reject: false, all: true });
      if (r.exitCode === 0) {
        available.add(kind);
        await execa('tc', ['-n', ns, 'qdisc', 'del', 'dev', 'probe0', 'root'], { reject: false });
      }
    }
  } finally {
    await ip(['netns', 'del', ns]);
  }
  return available;
}

/** Which of `kinds` the running kernel can instantiate (cached per kind list). */
export function probeQdiscKinds(kinds: string[] = DEFAULT_PROBE_KINDS): Promise<Set<string>> {
  const key = [...kinds].sort().join(',');
  let p = cache.get(key);
  if (!p) {
    p = probeOnce(kinds);
    cache.set(key, p);
    p.catch(() => cache.delete(key));
  }
  return p.then((s) => new Set(s));
}

/** Forget cached probe results (tests, or after loading modules). */
export function resetQdiscProbeCache(): void {
  cache.clear();
}

export interface LeafChoice {
  /** Kind to use ('none' = leave HTB's default pfifo leaf in place). */
  kind: string;
  /** tc tokens after the kind. */
  args: string[];
  /** True when the planned kind is not what will be used. */
  fallback: boolean;
  reason: string;
}

/** Preference order for a leaf when the planned one is missing: fair-queueing AQMs first, then plain AQM, then FIFO. */
export const LEAF_FALLBACK_ORDER: Array<{ kind: string; args: string[]; note: string }> = [
  { kind: 'fq_codel', args: [], note: 'flow-queueing + CoDel AQM, closest to cake' },
  { kind: 'fq_pie', args: [], note: 'flow-queueing + PIE AQM' },
  { kind: 'codel', args: [], note: 'CoDel AQM without flow isolation' },
  { kind: 'pie', args: [], note: 'PIE AQM without flow isolation' },
  { kind: 'sfq', args: ['perturb', '10'], note: 'stochastic fairness, no AQM' },
  { kind: 'pfifo', args: ['limit', '1000'], note: 'plain FIFO, no fairness and no AQM' },
];

/**
 * Best available leaf for a plan that wants `planned` (cake or fq_codel).
 * Returns the planned kind itself when available.
 */
export function chooseLeafFallback(available: Set<string>, planned: 'cake' | 'fq_codel' = 'cake', plannedArgs: string[] = []): LeafChoice {
  if (available.has(planned)) {
    return { kind: planned, args: plannedArgs, fallback: false, reason: `${planned} is available` };
  }
  for (const c of LEAF_FALLBACK_ORDER) {
    if (c.kind === planned) continue;
    if (available.has(c.kind)) {
      return {
        kind: c.kind, args: c.args, fallback: true,
        reason: `${planned} is not available in this kernel; using ${c.kind}${c.args.length ? ' ' + c.args.join(' ') : ''} (${c.note})`,
      };
    }
  }
  return {
    kind: 'none', args: [], fallback: true,
    reason: `${planned} and every fallback leaf (${LEAF_FALLBACK_ORDER.map((c) => c.kind).join(', ')}) are unavailable; HTB classes keep their built-in default leaf`,
  };
}
