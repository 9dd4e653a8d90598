/**
 * Namespaced veth lab for the dataplane. Three network namespaces in every forwarding mode:
 *
 *   <id>-inet  : "the Internet"  eth0
 *   <id>-shp   : the shaper      (XDP + tc + mq/HTB live here)
 *   <id>-cust  : customers       eth0 (several customer addresses)
 *
 * and how the shaper forwards between them:
 *
 *   linux-bridge (default)  shp: br0 = [ lq-inet , lq-cust ]      (the kernel bridge forwards)
 *   xdp-bridge              shp: lq-inet   lq-cust, no bridge      (only our tc-ingress redirect forwards)
 *   stick                   shp: lq-trunk, one 4-queue veth to a fourth namespace <id>-rtr, the
 *                           "router/switch": r-inet (access port of VLAN 2) ─ r-trunk (VLANs 2+3 tagged)
 *                           ─ r-cust (access port of VLAN 3). The two VLANs meet only through the
 *                           shaper (VLAN swap + hairpin back out of lq-trunk).
 *
 * The router is a small tc eBPF port-based VLAN switch (lab/vlan_switch.c): this kernel has neither
 * bridge VLAN filtering nor the 8021q module. Everything is one L2 segment, so no routing is involved.
 * Shaper ports are multi-queue veths (numtxqueues/numrxqueues, `ethtool -L`) so mq can host one HTB per
 * TX queue. Endpoint veths have TX checksum offload off (cpumap-redirected frames lose CHECKSUM_PARTIAL).
 *
 * Used by the lab (lab/labEnv.ts, `npm run lab`) and the kernel tests. Never touches the root namespace.
 */
import { execa, type ResultPromise } from 'execa';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, statSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { formatClassId, tcHex } from '../lib/util/classId.ts';

/** Who forwards between the Internet and customer sides (the `forwarding` of lqos.conf's interfaces). */
export type LabForwarding = 'linux-bridge' | 'xdp-bridge' | 'stick';
export const LAB_FORWARDING: readonly LabForwarding[] = ['linux-bridge', 'xdp-bridge', 'stick'];

/** VLAN ids of the stick lab's trunk (fixed in lab/lab_vlan.h for the lab's eBPF helpers). */
export const STICK_VLANS = { internet: 2, network: 3 } as const;
/** Fixed ifindexes of the router namespace's ports (lab/vlan_switch.c redirects by them). */
const ROUTER_PORTS = { inet: { name: 'r-inet', index: 11 }, cust: { name: 'r-cust', index: 12 }, trunk: { name: 'r-trunk', index: 13 } } as const;
/** Trunk MTU: a full 1500-byte frame plus the stick tag plus a subscriber's own tag. */
const TRUNK_MTU = 1508;

export interface TestbedSpec {
  /** Namespace name prefix; default `lqt-<6 hex>`. */
  id?: string;
  /** TX/RX queues of the shaper ports (the stick trunk too: download and offset upload majors share it). Default 4. */
  queues?: number;
  /** Who forwards between the two sides. Default `linux-bridge`. */
  forwarding?: LabForwarding;
  /** Address of the Internet host (CIDR). */
  inet?: { ipv4: string; ipv6: string };
  /** Addresses configured on the customer namespace's eth0 (CIDR). */
  customers?: { ipv4: string[]; ipv6: string[] };
}

export interface Testbed {
  id: string;
  forwarding: LabForwarding;
  /** `router` only in stick mode. */
  ns: { inet: string; shaper: string; cust: string; router?: string };
  /**
   * Shaper ports: `internet` faces the Internet (egress = upload), `customer` the customers (egress =
   * download); both are the trunk on a stick. `bridge` is '' when no Linux bridge exists.
   */
  shaperIfs: { internet: string; customer: string; bridge: string };
  /** Stick mode: the trunk's VLAN ids and the router's trunk port (capture there to see the tags). */
  stick?: { vlans: { internet: number; network: number }; routerTrunk: string };
  queues: number;
  inetIp4: string;
  inetIp6: string;
  custIps4: string[];
  custIps6: string[];
}

export interface ShapingClass {
  major: number;
  minor: number;
  downloadMbit: number;
  uploadMbit: number;
}

export interface ShapingTreeSpec {
  queues: number;
  /** Rate of each queue's root class N:1 and ceil of the default class N:2. */
  linkMbit: number;
  classes: ShapingClass[];
  /** pfifo limit of circuit leaves (packets). Default 100. */
  leafLimit?: number;
}

const strip = (cidr: string) => cidr.split('/')[0]!;
const repoRoot = resolve(import.meta.dirname, '..');

export async function nsExec(ns: string, cmd: string, args: string[], opts: { reject?: boolean; timeout?: number } = {}) {
  return execa('ip', ['netns', 'exec', ns, cmd, ...args], { reject: opts.reject ?? true, all: true, timeout: opts.timeout });
}

async function sh(cmd: string, args: string[]) {
  return execa(cmd, args, { all: true });
}

/** Every namespace a lab of this id can have, whatever its mode (so `--down` removes any of them). */
export function testbedNames(id: string): Required<Testbed['ns']> {
  return { inet: `${id}-inet`, shaper: `${id}-shp`, cust: `${id}-cust`, router: `${id}-rtr` };
}

/**
 * Compiles a lab helper program (lab/<name>.c → dataplane/build/lab_<name>.o) when missing or older
 * than its source or the shared lab/lab_vlan.h, and returns the object's path.
 */
export async function labBpfObject(name: string): Promise<string> {
  const obj = join(repoRoot, 'dataplane', 'build', `lab_${name}.o`);
  const src = join(repoRoot, 'lab', `${name}.c`);
  const newestSource = Math.max(statSync(src).mtimeMs, statSync(join(repoRoot, 'lab', 'lab_vlan.h')).mtimeMs);
  if (!existsSync(obj) || statSync(obj).mtimeMs < newestSource) {
    mkdirSync(dirname(obj), { recursive: true });
    await execa('clang', ['-target', 'bpf', '-O2', '-g', '-I/usr/include/x86_64-linux-gnu', '-c', src, '-o', obj]);
  }
  return obj;
}

/** Create the namespaces and the shaper's wiring for the chosen mode, and configure addresses. */
export async function buildTestbed(spec: TestbedSpec = {}): Promise<Testbed> {
  const id = spec.id ?? `lqt-${randomBytes(3).toString('hex')}`;
  const forwarding = spec.forwarding ?? 'linux-bridge';
  const q = spec.queues ?? 4;
  const inet = spec.inet ?? { ipv4: '10.99.0.1/16', ipv6: 'fd00:99::1/64' };
  const customers = spec.customers ?? { ipv4: ['10.99.1.10/16', '10.99.1.11/16', '10.99.1.99/16'], ipv6: ['fd00:99::1:10/64'] };
  const all = testbedNames(id);
  const ns: Testbed['ns'] = { inet: all.inet, shaper: all.shaper, cust: all.cust, ...(forwarding === 'stick' ? { router: all.router } : {}) };
  const tb: Testbed = {
    id, forwarding, ns, queues: q,
    shaperIfs: forwarding === 'stick'
      ? { internet: 'lq-trunk', customer: 'lq-trunk', bridge: '' }
      : { internet: 'lq-inet', customer: 'lq-cust', bridge: forwarding === 'linux-bridge' ? 'br0' : '' },
    ...(forwarding === 'stick' ? { stick: { vlans: { ...STICK_VLANS }, routerTrunk: ROUTER_PORTS.trunk.name } } : {}),
    inetIp4: strip(inet.ipv4), inetIp6: strip(inet.ipv6),
    custIps4: customers.ipv4.map(strip), custIps6: customers.ipv6.map(strip),
  };
  try {
    for (const n of Object.values(ns)) {
      await sh('ip', ['netns', 'add', n]);
      await sh('ip', ['-n', n, 'link', 'set', 'lo', 'up']);
    }
    if (forwarding === 'stick') await wireStick(tb);
    else await wireTwoPorts(tb);
    await sh('ip', ['-n', ns.inet, 'addr', 'add', inet.ipv4, 'dev', 'eth0']);
    await sh('ip', ['-n', ns.inet, 'addr', 'add', inet.ipv6, 'dev', 'eth0', 'nodad']);
    for (const a of customers.ipv4) await sh('ip', ['-n', ns.cust, 'addr', 'add', a, 'dev', 'eth0']);
    for (const a of customers.ipv6) await sh('ip', ['-n', ns.cust, 'addr', 'add', a, 'dev', 'eth0', 'nodad']);
    await waitReady(tb);
    return tb;
  } catch (e) {
    await destroyTestbed(tb).catch(() => undefined);
    throw e;
  }
}

/**
 * A multi-queue veth `port` in the shaper namespace whose peer `peer` lives in `peerNs`. With
 * `peerIndex` the pair is created from the peer's side, where `index` is honoured.
 */
async function shaperVeth(tb: Testbed, port: string, peerNs: string, peer: string, peerIndex?: number): Promise<void> {
  const qs = ['numtxqueues', String(tb.queues), 'numrxqueues', String(tb.queues)];
  if (peerIndex) {
    await sh('ip', ['-n', peerNs, 'link', 'add', peer, 'index', String(peerIndex), ...qs, 'type', 'veth', 'peer', 'name', port, 'netns', tb.ns.shaper, ...qs]);
  } else {
    await sh('ip', ['-n', tb.ns.shaper, 'link', 'add', port, ...qs, 'type', 'veth', 'peer', 'name', peer, 'netns', peerNs, ...qs]);
  }
  await nsExec(tb.ns.shaper, 'ethtool', ['-L', port, 'rx', String(tb.queues), 'tx', String(tb.queues)]);
  await nsExec(peerNs, 'ethtool', ['-K', peer, 'tx', 'off']);
  await sh('ip', ['-n', peerNs, 'link', 'set', peer, 'up']);
}

/** linux-bridge / xdp-bridge: lq-inet and lq-cust, bridged by br0 only in linux-bridge mode. */
async function wireTwoPorts(tb: Testbed): Promise<void> {
  const { ns, shaperIfs: s } = tb;
  await shaperVeth(tb, s.internet, ns.inet, 'eth0');
  await shaperVeth(tb, s.customer, ns.cust, 'eth0');
  if (s.bridge) {
    await sh('ip', ['-n', ns.shaper, 'link', 'add', s.bridge, 'type', 'bridge', 'stp_state', '0', 'forward_delay', '0']);
    for (const port of [s.internet, s.customer]) await sh('ip', ['-n', ns.shaper, 'link', 'set', port, 'master', s.bridge]);
    await sh('ip', ['-n', ns.shaper, 'link', 'set', s.bridge, 'up']);
  }
  for (const port of [s.internet, s.customer]) await sh('ip', ['-n', ns.shaper, 'link', 'set', port, 'up']);
}

/**
 * stick: the shaper's one trunk veth (lq-trunk) to the router namespace, whose port-based VLAN switch
 * (lab/vlan_switch.c on tc ingress of each port) tags the Internet host's frames with VLAN 2 and the
 * customers' with VLAN 3 toward the trunk, and untags them back. TX VLAN offload is off on the
 * router's ports, so the tags are inline in the frames the shaper's XDP program sees.
 */
async function wireStick(tb: Testbed): Promise<void> {
  const rtr = tb.ns.router!;
  const obj = await labBpfObject('vlan_switch');
  const trunk = ROUTER_PORTS.trunk;
  await shaperVeth(tb, tb.shaperIfs.customer, rtr, trunk.name, trunk.index);
  for (const [end, port] of [[tb.ns.inet, ROUTER_PORTS.inet], [tb.ns.cust, ROUTER_PORTS.cust]] as const) {
    await sh('ip', ['-n', rtr, 'link', 'add', port.name, 'index', String(port.index), 'type', 'veth', 'peer', 'name', 'eth0', 'netns', end]);
    await nsExec(end, 'ethtool', ['-K', 'eth0', 'tx', 'off']);
    await sh('ip', ['-n', end, 'link', 'set', 'eth0', 'up']);
  }
  for (const [dev, mtuNs] of [[trunk.name, rtr], [tb.shaperIfs.customer, tb.ns.shaper]] as const) {
    await sh('ip', ['-n', mtuNs, 'link', 'set', dev, 'mtu', String(TRUNK_MTU)]);
  }
  const programs = [[ROUTER_PORTS.inet.name, 'sw_access_inet'], [ROUTER_PORTS.cust.name, 'sw_access_cust'], [trunk.name, 'sw_trunk']] as const;
  for (const [dev, prog] of programs) {
    await nsExec(rtr, 'ethtool', ['-K', dev, 'tx', 'off', 'txvlan', 'off', 'tx-vlan-stag-hw-insert', 'off'], { reject: false });
    await nsExec(rtr, 'tc', ['qdisc', 'add', 'dev', dev, 'clsact']);
    await nsExec(rtr, 'tc', ['filter', 'add', 'dev', dev, 'ingress', 'bpf', 'da', 'obj', obj, 'sec', 'tc', 'program', prog]);
    await sh('ip', ['-n', rtr, 'link', 'set', dev, 'up']);
  }
  await sh('ip', ['-n', tb.ns.shaper, 'link', 'set', tb.shaperIfs.customer, 'up']);
}

/** Linux bridge: both ports forwarding. Otherwise: every veth of the lab up (operstate UP). */
async function waitReady(tb: Testbed): Promise<void> {
  const { ns } = tb;
  if (tb.shaperIfs.bridge) {
    // No ping on minimal hosts; iperf() retries connects anyway.
    return waitFor(async () => {
      const r = await execa('bridge', ['-n', ns.shaper, '-j', 'link', 'show'], { reject: false });
      let ports: Array<{ ifname: string; state?: string }> = [];
      try { ports = JSON.parse(r.stdout || '[]'); } catch { /* retry */ }
      return ports.filter((p) => p.state === 'forwarding').length >= 2;
    }, 5000, 'bridge ports to forward');
  }
  const devs: Array<[string, string]> = [[ns.inet, 'eth0'], [ns.cust, 'eth0'], [ns.shaper, tb.shaperIfs.internet], [ns.shaper, tb.shaperIfs.customer]];
  if (ns.router) for (const p of Object.values(ROUTER_PORTS)) devs.push([ns.router, p.name]);
  return waitFor(async () => {
    for (const [n, dev] of devs) {
      const r = await execa('ip', ['-n', n, '-j', 'link', 'show', 'dev', dev], { reject: false });
      if (!String(r.stdout).includes('"operstate":"UP"')) return false;
    }
    return true;
  }, 5000, `links of the ${tb.forwarding} lab to come up`);
}

/**
 * How the end hosts (eth0 in the Internet and customer namespaces) receive. `inline` (as built): a veth
 * hands a frame to its peer on the sending CPU, so the receiver's TCP stack runs in the sender's context
 * (on the redirect path, inside the shaper's cpumap kthread). `napi`: GRO + threaded NAPI on eth0, so
 * receive work runs in the host's own kernel thread, as on a separate machine. The shaper is not touched.
 */
export type EndHostReceive = 'inline' | 'napi';

export async function setEndHostReceive(tb: Pick<Testbed, 'ns'>, mode: EndHostReceive): Promise<void> {
  for (const ns of [tb.ns.inet, tb.ns.cust]) {
    // veth has NAPI only while GRO is on: GRO first when turning on, threaded NAPI off first when turning
    // off. sysfs is per network namespace, so it is written from inside.
    const threaded = (v: number) => nsExec(ns, 'sh', ['-c', `echo ${v} > /sys/class/net/eth0/threaded`], { reject: v === 1 });
    if (mode === 'inline') await threaded(0);
    await nsExec(ns, 'ethtool', ['-K', 'eth0', 'gro', mode === 'napi' ? 'on' : 'off']);
    if (mode === 'napi') await threaded(1);
    const got = (await nsExec(ns, 'cat', ['/sys/class/net/eth0/threaded'], { reject: false })).stdout.trim();
    if (mode === 'napi' && got !== '1') throw new Error(`${ns} eth0: threaded NAPI reads ${JSON.stringify(got)}, wanted 1 (needs GRO on a veth)`);
  }
}

/**
 * Stick lab without lqos-ts (bench:dataplane's plain stick baseline): lab/stick_hairpin.c on tc ingress
 * of the trunk swaps VLAN 2 <-> 3 and hairpins the frame back out, nothing else.
 */
export async function attachPlainHairpin(tb: Testbed): Promise<void> {
  if (tb.forwarding !== 'stick') throw new Error(`attachPlainHairpin: ${tb.id} is a ${tb.forwarding} lab, not a stick`);
  const obj = await labBpfObject('stick_hairpin');
  const dev = tb.shaperIfs.customer;
  await nsExec(tb.ns.shaper, 'tc', ['qdisc', 'add', 'dev', dev, 'clsact']);
  await nsExec(tb.ns.shaper, 'tc', ['filter', 'add', 'dev', dev, 'ingress', 'bpf', 'da', 'obj', obj, 'sec', 'tc', 'program', 'stick_hairpin']);
}

/** Delete the namespaces (and with them every interface, qdisc and attached program). Idempotent. */
export async function destroyTestbed(tb: Pick<Testbed, 'ns'> | string): Promise<void> {
  const ns = typeof tb === 'string' ? testbedNames(tb) : tb.ns;
  for (const n of Object.values(ns)) {
    // Kill anything still running inside (iperf3 servers) before deleting.
    const pids = await execa('ip', ['netns', 'pids', n], { reject: false });
    for (const pid of (pids.stdout ?? '').split(/\s+/).filter(Boolean)) {
      try { process.kill(Number(pid), 'SIGKILL'); } catch { /* gone */ }
    }
    await execa('ip', ['netns', 'del', n], { reject: false });
  }
}

async function waitFor(fn: () => Promise<boolean>, ms: number, what: string): Promise<void> {
  const end = Date.now() + ms;
  for (;;) {
    if (await fn()) return;
    if (Date.now() > end) throw new Error(`testbed: timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/**
 * mq root + one HTB per TX queue on both shaper ports, with the given circuit classes (download
 * rates on the customer-facing port, upload rates on the Internet-facing port). One `tc -batch`
 * per port. Default class N:2 is ceil'd at the link rate (i.e. effectively unlimited).
 */
export async function buildShapingTree(tb: Testbed, spec: ShapingTreeSpec): Promise<void> {
  for (const [dev, dirKey] of [[tb.shaperIfs.customer, 'downloadMbit'], [tb.shaperIfs.internet, 'uploadMbit']] as const) {
    const lines: string[] = [`qdisc replace dev ${dev} root handle 7fff: mq`];
    for (let n = 1; n <= spec.queues; n++) {
      lines.push(`qdisc add dev ${dev} parent ${formatClassId(0x7fff, n)} handle ${tcHex(n)}: htb default 2`);
      lines.push(`class add dev ${dev} parent ${tcHex(n)}: classid ${formatClassId(n, 1)} htb rate ${spec.linkMbit}mbit ceil ${spec.linkMbit}mbit quantum 60000`);
      lines.push(`class add dev ${dev} parent ${formatClassId(n, 1)} classid ${formatClassId(n, 2)} htb rate ${Math.max(1, Math.floor(spec.linkMbit / 4))}mbit ceil ${spec.linkMbit}mbit quantum 60000 prio 5`);
    }
    for (const c of spec.classes) {
      const r = c[dirKey];
      lines.push(`class add dev ${dev} parent ${formatClassId(c.major, 1)} classid ${formatClassId(c.major, c.minor)} htb rate ${r}mbit ceil ${r}mbit quantum 1514 prio 3`);
      lines.push(`qdisc add dev ${dev} parent ${formatClassId(c.major, c.minor)} pfifo limit ${spec.leafLimit ?? 100}`);
    }
    await execa('ip', ['netns', 'exec', tb.ns.shaper, 'tc', '-batch', '-'], { input: lines.join('\n') + '\n', all: true });
  }
}

/** Bytes sent per HTB class id ("1:10" style, hex as tc prints it) on a shaper port. */
export async function classBytes(tb: Testbed, dev: string): Promise<Map<string, number>> {
  // `tc -j class show` is not JSON for every qdisc kind in iproute2 6.1: parse the text form.
  const r = await nsExec(tb.ns.shaper, 'tc', ['-s', 'class', 'show', 'dev', dev]);
  const out = new Map<string, number>();
  let current: string | null = null;
  for (const line of r.stdout.split('\n')) {
    const head = /^class (\S+) (\S+)/.exec(line);
    if (head) { current = head[1] === 'htb' ? head[2]! : null; continue; }
    const sent = /^\s*Sent (\d+) bytes/.exec(line);
    if (sent && current) { out.set(current, Number(sent[1])); current = null; }
  }
  return out;
}

export interface IperfResult {
  /** Receiver-side throughput, Mbit/s. */
  mbps: number;
  retransmits: number;
}

let nextPort = 5201 + Math.floor(Math.random() * 2000);

/**
 * One iperf3 test between a customer address and the Internet host: a one-shot server in the inet
 * namespace (`-J` too when `serverJson`, so that `--get-server-output` brings its intervals as JSON),
 * the client in the customer namespace with `args` after `-c/-p/-B`; retried while the server is not
 * listening yet. Returns the client's parsed JSON.
 */
export async function iperfClient(
  tb: Testbed,
  opts: {
    custIp: string; server: string; args: string[]; seconds: number; serverJson?: boolean; what: string;
    /** When the client's JSON is a result (default: it has `end` and no `error`: a refused attempt prints JSON too). */
    done?: (json: Record<string, unknown>) => boolean;
  },
): Promise<Record<string, unknown>> {
  const done = opts.done ?? ((j: Record<string, unknown>) => j.end !== undefined && j.error === undefined);
  const port = nextPort++;
  const srv: ResultPromise = execa('ip', ['netns', 'exec', tb.ns.inet, 'iperf3', '-s', '-1', ...(opts.serverJson ? ['-J'] : []), '-p', String(port), '-B', opts.server], { reject: false, all: true });
  try {
    const args = ['-c', opts.server, '-p', String(port), '-B', opts.custIp, ...opts.args];
    let lastErr = '';
    for (let attempt = 0; attempt < 30; attempt++) {
      const r = await nsExec(tb.ns.cust, 'iperf3', args, { reject: false, timeout: (opts.seconds + 15) * 1000 });
      let j: Record<string, unknown> & { error?: string; end?: unknown } = {};
      try { j = JSON.parse(r.stdout || '{}'); } catch { /* not JSON */ }
      if (done(j)) return j;
      lastErr = j.error ?? r.all ?? '';
      if (!/refused|unable to connect/i.test(lastErr)) break;
      await new Promise((res) => setTimeout(res, 100));
    }
    throw new Error(`iperf3 ${opts.what} ${opts.custIp} -> ${opts.server} failed: ${lastErr}`);
  } finally {
    srv.kill('SIGKILL');
    await srv.catch(() => undefined);
  }
}

/**
 * One iperf3 TCP test between a customer address and the Internet host.
 * direction 'upload' = customer sends (leaves on the Internet-facing port), 'download' = customer
 * receives (iperf3 -R). The server runs in the inet namespace for a single test.
 */
export async function iperf(
  tb: Testbed,
  opts: { custIp: string; direction: 'upload' | 'download'; seconds?: number; omit?: number; server?: string },
): Promise<IperfResult> {
  const v6 = opts.custIp.includes(':');
  const seconds = opts.seconds ?? 3;
  // -O 1: leave slow start out of the average.
  const args = ['-t', String(seconds), '-O', String(opts.omit ?? 1), '-J', '--connect-timeout', '1000', ...(opts.direction === 'download' ? ['-R'] : [])];
  type End = { sum_received?: { bits_per_second: number }; sum_sent?: { retransmits?: number } };
  const json = await iperfClient(tb, {
    custIp: opts.custIp, server: opts.server ?? (v6 ? tb.inetIp6 : tb.inetIp4), args, seconds, what: opts.direction,
    done: (j) => (j.end as End | undefined)?.sum_received !== undefined,
  });
  const end = json.end as End;
  return { mbps: end.sum_received!.bits_per_second / 1e6, retransmits: end.sum_sent?.retransmits ?? 0 };
}

/** Frames counted by captureVlanTags, keyed `in:<vlan>[/<inner>…]` or `out:…` ('' when untagged). */
export type VlanTagCounts = Record<string, number>;

const CAPTURE_PY = String.raw`
import json, socket, struct, sys, time
dev, secs = sys.argv[1], float(sys.argv[2])
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(3))
s.bind((dev, 0))
s.setsockopt(263, 8, 1)  # SOL_PACKET, PACKET_AUXDATA: the tag the stack moved into skb metadata
s.settimeout(0.2)
print("ready", flush=True)
counts, end = {}, time.time() + secs
while time.time() < end:
    try:
        data, anc, _, addr = s.recvmsg(65535, socket.CMSG_SPACE(20))
    except socket.timeout:
        continue
    tags = []
    for lvl, typ, d in anc:
        if lvl == 263 and typ == 8:
            status, _, _, _, _, tci, _ = struct.unpack("IIIHHHH", d[:20])
            if status & 0x10:
                tags.append(tci & 0xFFF)
    off = 12
    while off + 4 <= len(data) and struct.unpack("!H", data[off:off + 2])[0] in (0x8100, 0x88A8):
        tags.append(struct.unpack("!H", data[off + 2:off + 4])[0] & 0xFFF)
        off += 4
    key = ("out:" if addr[2] == 4 else "in:") + "/".join(map(str, tags))
    counts[key] = counts.get(key, 0) + 1
print(json.dumps(counts), flush=True)
`;

/**
 * Captures on `dev` in namespace `ns` for `seconds` (a raw AF_PACKET socket, python3) and counts frames
 * by direction and VLAN tags, outer first: a tag the receive path moved into skb metadata is read from
 * PACKET_AUXDATA, inline tags from the frame. Resolves once the socket is bound (`done` gives the counts).
 */
export async function captureVlanTags(ns: string, dev: string, seconds: number): Promise<{ done: Promise<VlanTagCounts> }> {
  const p = execa('ip', ['netns', 'exec', ns, 'python3', '-c', CAPTURE_PY, dev, String(seconds)], { all: true, timeout: (seconds + 10) * 1000 });
  await new Promise<void>((res, rej) => {
    p.stdout!.on('data', (b: Buffer) => { if (String(b).includes('ready')) res(); });
    p.catch((e: Error) => rej(new Error(`capture on ${dev} in ${ns} failed: ${e.message}`)));
  });
  const done = p.then((r) => {
    const last = String(r.stdout).trim().split('\n').pop() ?? '{}';
    return JSON.parse(last) as VlanTagCounts;
  });
  return { done };
}
