/**
 * The namespace lab: a testbed (lab/testbed.ts) plus a real LibreQoS configuration for it,
 * used by `npm run lab` and the end-to-end tests. The LibreQoS command runs inside the shaper
 * namespace exactly as on a real box; pinned maps live in a bpffs mounted under /run so they
 * survive between runs (`ip netns exec` gives each run a fresh /sys).
 */
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { spawn } from 'node:child_process';
import { execa } from 'execa';
import { waitForBus } from '../lib/bus/client.ts';
import { buildTestbed, destroyTestbed, iperf, labBpfObject, nsExec, type LabForwarding, type Testbed } from './testbed.ts';

export const repoRoot = resolve(import.meta.dirname, '..');

export interface LabCircuit {
  id: string;
  name: string;
  parent: string;
  ipv4: string;
  ipv6: string;
  down: number;
  up: number;
  /** Which path the address lives on: the plain segment or the VLAN-tagged one. */
  path: 'plain' | 'vlan';
}

export const LAB_VLAN = 100;

export const defaultLabCircuits: LabCircuit[] = [
  { id: 'lab-10', name: 'Ten Meg Customer', parent: 'Lab_AP_1', ipv4: '10.99.1.10', ipv6: '', down: 10, up: 4, path: 'plain' },
  { id: 'lab-25', name: 'Twenty-five Meg Customer', parent: 'Lab_AP_1', ipv4: '10.99.1.11', ipv6: '', down: 25, up: 8, path: 'plain' },
  { id: 'lab-50', name: 'Fifty Meg Customer', parent: 'Lab_AP_2', ipv4: '10.99.1.12', ipv6: '', down: 50, up: 15, path: 'plain' },
  { id: 'lab-v6', name: 'IPv6 Only Customer', parent: 'Lab_AP_2', ipv4: '', ipv6: 'fd00:99::1:10', down: 20, up: 6, path: 'plain' },
  { id: 'lab-vlan', name: 'VLAN Customer', parent: 'Lab_AP_1', ipv4: '10.98.1.10', ipv6: '', down: 15, up: 5, path: 'vlan' },
];

/** An address that is on the customer segment but in no circuit (must pass unshaped). */
export const UNSHAPED_IP = '10.99.1.99';
const VLAN_SERVER = '10.98.0.1';

export interface Lab {
  id: string;
  /** lqosd's bus socket in this lab (the daemon runs inside the shaper namespace). */
  busPath: string;
  dir: string;
  config: string;
  pinRoot: string;
  tb: Testbed;
  circuits: LabCircuit[];
}

const HEADER = 'Circuit ID,Circuit Name,Device ID,Device Name,Parent Node,MAC,IPv4,IPv6,Download Min Mbps,Upload Min Mbps,Download Max Mbps,Upload Max Mbps,Comment';

export function labShapedDevices(circuits: LabCircuit[]): string {
  const q = (v: string) => (/[",\n]/.test(v) ? `"${v.replace(/"/g, '""')}"` : v);
  const rows = circuits.map(
    (c) => [c.id, c.name, `${c.id}-cpe`, `CPE of ${c.id}`, c.parent, '', c.ipv4, c.ipv6, '1', '1', `${c.down}`, `${c.up}`, 'lab'].map(q).join(','),
  );
  return [HEADER, ...rows].join('\n') + '\n';
}

export const labNetwork = {
  Lab_Tower: {
    downloadBandwidthMbps: 4000,
    uploadBandwidthMbps: 2000,
    type: 'site',
    children: {
      Lab_AP_1: { downloadBandwidthMbps: 1500, uploadBandwidthMbps: 600, type: 'ap' },
      Lab_AP_2: { downloadBandwidthMbps: 1500, uploadBandwidthMbps: 600, type: 'ap' },
    },
  },
};

/** The interface section of the lab's lqos.conf for the testbed's forwarding mode. */
function labInterfaces(tb: Testbed): string[] {
  if (tb.forwarding === 'stick') {
    return [
      '[single_interface]',
      `interface = "${tb.shaperIfs.customer}"`,
      `internet_vlan = ${tb.stick!.vlans.internet}`,
      `network_vlan = ${tb.stick!.vlans.network}`,
    ];
  }
  return [
    '[bridge]',
    ...(tb.forwarding === 'xdp-bridge' ? ['use_xdp_bridge = true'] : []),
    `to_internet = "${tb.shaperIfs.internet}"`,
    `to_network = "${tb.shaperIfs.customer}"`,
  ];
}

export function labConfig(dir: string, tb: Testbed): string {
  return [
    `# Written by the lqos-ts lab (lab/labEnv.ts) for its ${tb.forwarding} testbed. Shapes the namespace testbed only.`,
    `lqos_directory = "${dir}"`,
    `state_directory = "${join(dir, 'state')}"`,
    ...labInterfaces(tb),
    '[queues]',
    // Above what the veth lab can carry, so unshaped traffic is not capped by the link class.
    'downlink_bandwidth_mbps = 10000',
    'uplink_bandwidth_mbps = 10000',
    'generated_pn_download_mbps = 10000',
    'generated_pn_upload_mbps = 10000',
    'default_sqm = "cake diffserv4"',
    'override_available_queues = 4',
    // The lab shapes veths in namespaces: leave the host's CPU governor and irqbalance alone.
    '[tuning]',
    'set_cpu_governor_performance = false',
    'stop_irq_balance = false',
    '',
  ].join('\n');
}

async function ensureBpffsAt(dir: string): Promise<void> {
  const mounts = readFileSync('/proc/mounts', 'utf8').split('\n').map((l) => l.split(' '));
  if (mounts.some((m) => m[1] === dir && m[2] === 'bpf')) return;
  mkdirSync(dir, { recursive: true });
  await execa('mount', ['-t', 'bpf', 'bpf', dir]);
}

export async function startLab(
  opts: {
    id?: string; circuits?: LabCircuit[]; daemon?: boolean; web?: boolean; daemonEnv?: Record<string, string>;
    /** Who forwards in the shaper namespace (lab/testbed.ts). Default `linux-bridge`. */
    forwarding?: LabForwarding;
    /** More lqos.conf text (whole tables the lab config does not have, e.g. `[flows]`). */
    configExtra?: string;
  } = {},
): Promise<Lab> {
  const id = opts.id ?? 'lqlab';
  const circuits = opts.circuits ?? defaultLabCircuits;
  await stopLab(id);
  const plain = circuits.filter((c) => c.path === 'plain');
  const tb = await buildTestbed({
    id,
    forwarding: opts.forwarding,
    customers: {
      ipv4: [...plain.filter((c) => c.ipv4).map((c) => `${c.ipv4}/16`), `${UNSHAPED_IP}/16`],
      ipv6: plain.filter((c) => c.ipv6).map((c) => `${c.ipv6}/64`),
    },
  });
  await addVlanPath(tb, circuits.filter((c) => c.path === 'vlan').map((c) => c.ipv4));
  const dir = join('/run', 'lqos-lab', id);
  const bpffs = join('/run', 'lqos-lab', `${id}-bpf`);
  const pinRoot = join(bpffs, 'lqos');
  mkdirSync(dir, { recursive: true });
  await ensureBpffsAt(bpffs);
  const config = join(dir, 'lqos.conf');
  writeFileSync(config, labConfig(dir, tb) + (opts.configExtra ?? ''));
  writeFileSync(join(dir, 'network.json'), JSON.stringify(labNetwork, null, 2) + '\n');
  writeFileSync(join(dir, 'ShapedDevices.csv'), labShapedDevices(circuits));
  const lab: Lab = { id, dir, config, pinRoot, tb, circuits, busPath: join(dir, 'run', 'bus') };
  if (opts.daemon !== false) await startLabDaemon(lab, { web: opts.web ?? false, env: opts.daemonEnv });
  return lab;
}

function labEnv(lab: Lab): Record<string, string> {
  return { LQOS_BPF_PIN_ROOT: lab.pinRoot, LQOS_LOG_FORMAT: 'json', LQOS_RUN_DIR: join(lab.dir, 'run') };
}

/**
 * Starts lqosd inside the lab's shaper namespace (detached: it outlives `npm run lab`; the
 * namespace teardown kills it). Its log goes to <lab dir>/lqosd.log. Resolves when the bus answers.
 */
export async function startLabDaemon(lab: Lab, opts: { web?: boolean; env?: Record<string, string> } = {}): Promise<number> {
  const out = openSync(join(lab.dir, 'lqosd.log'), 'a');
  const web = opts.web ? [] : ['--no-web'];
  const child = spawn('ip', ['netns', 'exec', lab.tb.ns.shaper, join(repoRoot, 'lqosd'), '--config', lab.config, ...web], {
    detached: true,
    stdio: ['ignore', out, out],
    env: { ...process.env, ...labEnv(lab), ...(opts.env ?? {}) },
  });
  child.unref();
  closeSync(out);
  await waitForBus({ path: lab.busPath, timeoutMs: 30_000 });
  return child.pid!;
}

/** An lqosd command line: bin/lqosd.ts through tsx, or the compiled build/bin/lqosd.mjs (bin/launch picks). */
export const isLqosdCmdline = (cmd: string): boolean => /\/bin\/lqosd\.(ts|mjs)(\s|\0|$)/.test(cmd);

/** The PIDs of the lqosd processes running in the lab's shaper namespace. */
export async function labLqosdPids(lab: Lab): Promise<number[]> {
  const pids = await execa('ip', ['netns', 'pids', lab.tb.ns.shaper], { reject: false });
  const found: number[] = [];
  for (const pid of String(pids.stdout).split(/\s+/).filter(Boolean)) {
    try {
      if (isLqosdCmdline(readFileSync(`/proc/${pid}/cmdline`, 'utf8').replace(/\0/g, ' '))) found.push(Number(pid));
    } catch {
      // exited since `ip netns pids` listed it (a short-lived tc/ip run, a ping)
    }
  }
  return found;
}

/** Stops the lab's lqosd (SIGTERM, like systemctl stop) and waits until its bus is gone. */
export async function stopLabDaemon(lab: Lab): Promise<void> {
  const stopped = await labLqosdPids(lab);
  for (const pid of stopped) {
    try {
      process.kill(pid, 'SIGTERM');
    } catch {
      // exited since it was listed
    }
  }
  const end = Date.now() + 20_000;
  while (existsSync(lab.busPath) && Date.now() < end) await new Promise((r) => setTimeout(r, 100));
  // A restart test must not pass against an lqosd that never stopped.
  if (existsSync(lab.busPath)) {
    throw new Error(
      stopped.length === 0
        ? `stopLabDaemon: no lqosd process found in namespace ${lab.tb.ns.shaper}, yet its bus ${lab.busPath} is there (a command line isLqosdCmdline does not recognise?)`
        : `stopLabDaemon: lqosd (pid ${stopped.join(', ')}) still has its bus ${lab.busPath} 20 s after SIGTERM; see ${lab.dir}/lqosd.log`,
    );
  }
}

/**
 * A VLAN-tagged path across the shaper without the kernel's 8021q module (absent here): the
 * 10.98.0.0/16 addresses live on the end namespaces' eth0, and a small tc eBPF program
 * (lab/vlan_tag.c) pushes 802.1Q tag ${LAB_VLAN} on their egress and pops it on ingress. TX VLAN
 * offload is off, so the tag is inline in the frames the shaper's XDP and tc programs see. On a stick
 * the router's switch adds the trunk VLAN outside it (802.1Q in 802.1Q: outer 2 or 3, inner 100).
 */
async function addVlanPath(tb: Testbed, vlanCustomerIps: string[]): Promise<void> {
  const obj = await labBpfObject('vlan_tag');
  const sides = [
    { ns: tb.ns.cust, addrs: vlanCustomerIps.map((a) => `${a}/16`) },
    { ns: tb.ns.inet, addrs: [`${VLAN_SERVER}/16`] },
  ];
  for (const { ns, addrs } of sides) {
    for (const a of addrs) await execa('ip', ['-n', ns, 'addr', 'add', a, 'dev', 'eth0']);
    await nsExec(ns, 'ethtool', ['-K', 'eth0', 'txvlan', 'off'], { reject: false });
    await nsExec(ns, 'tc', ['qdisc', 'add', 'dev', 'eth0', 'clsact']);
    await nsExec(ns, 'tc', ['filter', 'add', 'dev', 'eth0', 'egress', 'bpf', 'da', 'obj', obj, 'sec', 'tc', 'program', 'vlan_push']);
    await nsExec(ns, 'tc', ['filter', 'add', 'dev', 'eth0', 'ingress', 'bpf', 'da', 'obj', obj, 'sec', 'tc', 'program', 'vlan_pop']);
  }
}

/** Runs the real LibreQoS command inside the lab's shaper namespace (it applies through lqosd). */
export async function runLabLibreQoS(lab: Lab, args: string[] = []) {
  const r = await execa(
    'ip',
    ['netns', 'exec', lab.tb.ns.shaper, join(repoRoot, 'LibreQoS'), '--config', lab.config, ...args],
    { reject: false, all: true, env: labEnv(lab) },
  );
  return { code: r.exitCode ?? -1, output: String(r.all ?? '') };
}

export function writeLabDevices(lab: Lab, circuits: LabCircuit[]): void {
  lab.circuits = circuits;
  writeFileSync(join(lab.dir, 'ShapedDevices.csv'), labShapedDevices(circuits));
}

/**
 * TCP goodput → the rate HTB counts (Ethernet frame without FCS): full-size frames are 1514 bytes
 * carrying 1448 (IPv4) or 1428 (IPv6) bytes of payload with TCP timestamps.
 */
export function wireRate(goodputMbps: number, ipv6: boolean): number {
  return (goodputMbps * 1514) / (ipv6 ? 1428 : 1448);
}

/** iperf3 TCP throughput (Mbit/s) for one customer address and direction. */
export async function measure(lab: Lab, ip: string, direction: 'download' | 'upload', seconds = 3): Promise<number> {
  const vlan = lab.circuits.some((c) => c.path === 'vlan' && c.ipv4 === ip);
  const r = await iperf(lab.tb, { custIp: ip, direction, seconds, server: vlan ? VLAN_SERVER : undefined });
  return r.mbps;
}

/** Removes the namespaces (of whichever forwarding mode is up), the bpffs mount and the lab directory. Idempotent. */
export async function stopLab(id = 'lqlab'): Promise<void> {
  await destroyTestbed(id);
  const pinRoot = join('/run', 'lqos-lab', `${id}-bpf`);
  const mounts = readFileSync('/proc/mounts', 'utf8');
  if (mounts.includes(` ${pinRoot} bpf `)) await execa('umount', [pinRoot], { reject: false });
  rmSync(pinRoot, { recursive: true, force: true });
  rmSync(join('/run', 'lqos-lab', id), { recursive: true, force: true });
}

/** Per-second receiver rates (Mbit/s) of one iperf3 download flow to customer address `ip`, started now. */
export function liveFlow(lab: Lab, ip: string, seconds: number): Promise<number[]> {
  const port = 6000 + Math.floor(Math.random() * 1000);
  const server = execa('ip', ['netns', 'exec', lab.tb.ns.inet, 'iperf3', '-s', '-1', '-p', String(port), '-B', lab.tb.inetIp4], { reject: false });
  return (async () => {
    await new Promise((r) => setTimeout(r, 300));
    const r = await nsExec(lab.tb.ns.cust, 'iperf3', ['-c', lab.tb.inetIp4, '-p', String(port), '-B', ip, '-t', String(seconds), '-R', '-J', '-i', '1'], { reject: false, timeout: (seconds + 20) * 1000 });
    server.kill('SIGKILL');
    await server.catch(() => undefined);
    try {
      const j = JSON.parse(r.stdout) as { intervals: Array<{ sum: { bits_per_second: number } }> };
      return j.intervals.map((i) => i.sum.bits_per_second / 1e6);
    } catch {
      throw new Error(`iperf3 flow to ${ip} failed: ${String(r.all).slice(0, 400)}`);
    }
  })();
}

/**
 * ICMP echo from customer address `ip` to the Internet host (the VLAN server for VLAN-path addresses),
 * `count` requests every `intervalMs`; resolves requests sent and replies missing. Every reply is waited
 * for (no deadline), so only real losses count.
 */
export async function pingStream(lab: Lab, ip: string, count: number, intervalMs = 10): Promise<{ packets: number; lost: number }> {
  const vlan = lab.circuits.some((c) => c.path === 'vlan' && c.ipv4 === ip);
  const to = vlan ? VLAN_SERVER : ip.includes(':') ? lab.tb.inetIp6 : lab.tb.inetIp4;
  const r = await nsExec(lab.tb.ns.cust, 'ping', ['-I', ip, '-i', String(intervalMs / 1000), '-c', String(count), '-W', '1', '-q', to], {
    reject: false, timeout: count * intervalMs * 2 + 20_000,
  });
  const m = /(\d+) packets transmitted, (\d+) received/.exec(String(r.stdout));
  if (!m) throw new Error(`ping from ${ip} to ${to}: output not understood: ${String(r.all).slice(0, 400)}`);
  return { packets: Number(m[1]), lost: Number(m[1]) - Number(m[2]) };
}
