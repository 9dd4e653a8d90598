/**
 * Namespaced veth lab for the dataplane: three network namespaces
 *
 *   <id>-inet  : "the Internet"  eth0 ─┐
 *   <id>-shp   : the shaper      br0 = [ lq-inet , lq-cust ]   (XDP + tc + mq/HTB live here)
 *   <id>-cust  : customers       eth0 ─┘ (several customer addresses)
 *
 * Everything is one L2 segment bridged by br0, so no routing is involved. The two shaper ports are
 * multi-queue veths (numtxqueues/numrxqueues, `ethtool -L`) so mq can host one HTB per TX queue.
 * Endpoint veths have TX checksum offload off (cpumap-redirected frames lose CHECKSUM_PARTIAL).
 *
 * Used by the lab (lab/labEnv.ts, `npm run lab`) and the kernel tests. Never touches the root namespace.
 */
import { execa, type ResultPromise } from 'execa';
import { randomBytes } from 'node:crypto';
import { formatClassId, tcHex } from '../lib/util/classId.ts';

export interface TestbedSpec {
  /** Namespace name prefix; default `lqt-<6 hex>`. */
  id?: string;
  /** TX/RX queues of the two shaper ports. Default 4. */
  queues?: number;
  /** Address of the Internet host (CIDR). */
  inet?: { ipv4: string; ipv6: string };
  /** Addresses configured on the customer namespace's eth0 (CIDR). */
  customers?: { ipv4: string[]; ipv6: string[] };
}

export interface Testbed {
  id: string;
  ns: { inet: string; shaper: string; cust: string };
  /** Shaper ports: `internet` faces the Internet (egress = upload), `customer` the customers (egress = download). */
  shaperIfs: { internet: string; customer: string; bridge: string };
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

export async function nsExec(ns: string, cmd: string, args: string[], opts: { reject?: boolean; timeout?: number } = {}) {
  return execa('ip', ['netns', 'exec', ns, cmd, ...args], { reject: opts.reject ?? true, all: true, timeout: opts.timeout });
}

async function sh(cmd: string, args: string[]) {
  return execa(cmd, args, { all: true });
}

export function testbedNames(id: string): Testbed['ns'] {
  return { inet: `${id}-inet`, shaper: `${id}-shp`, cust: `${id}-cust` };
}

/** Create the three namespaces, the bridge and the veths, and configure addresses. */
export async function buildTestbed(spec: TestbedSpec = {}): Promise<Testbed> {
  const id = spec.id ?? `lqt-${randomBytes(3).toString('hex')}`;
  const q = spec.queues ?? 4;
  const inet = spec.inet ?? { ipv4: '10.99.0.1/16', ipv6: 'fd00:99::1/64' };
  const customers = spec.customers ?? { ipv4: ['10.99.1.10/16', '10.99.1.11/16', '10.99.1.99/16'], ipv6: ['fd00:99::1:10/64'] };
  const ns = testbedNames(id);
  const tb: Testbed = {
    id, ns, shaperIfs: { internet: 'lq-inet', customer: 'lq-cust', bridge: 'br0' }, queues: q,
    inetIp4: strip(inet.ipv4), inetIp6: strip(inet.ipv6),
    custIps4: customers.ipv4.map(strip), custIps6: customers.ipv6.map(strip),
  };
  try {
    for (const n of Object.values(ns)) {
      await sh('ip', ['netns', 'add', n]);
      await sh('ip', ['-n', n, 'link', 'set', 'lo', 'up']);
    }
    const qs = ['numtxqueues', String(q), 'numrxqueues', String(q)];
    for (const [port, peerNs] of [[tb.shaperIfs.internet, ns.inet], [tb.shaperIfs.customer, ns.cust]] as const) {
      await sh('ip', ['-n', ns.shaper, 'link', 'add', port, ...qs, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', peerNs, ...qs]);
      await nsExec(ns.shaper, 'ethtool', ['-L', port, 'rx', String(q), 'tx', String(q)]);
      await nsExec(peerNs, 'ethtool', ['-K', 'eth0', 'tx', 'off']);
      await sh('ip', ['-n', peerNs, 'link', 'set', 'eth0', 'up']);
    }
    await sh('ip', ['-n', ns.shaper, 'link', 'add', tb.shaperIfs.bridge, 'type', 'bridge', 'stp_state', '0', 'forward_delay', '0']);
    for (const port of [tb.shaperIfs.internet, tb.shaperIfs.customer]) {
      await sh('ip', ['-n', ns.shaper, 'link', 'set', port, 'master', tb.shaperIfs.bridge]);
      await sh('ip', ['-n', ns.shaper, 'link', 'set', port, 'up']);
    }
    await sh('ip', ['-n', ns.shaper, 'link', 'set', tb.shaperIfs.bridge, 'up']);
    await sh('ip', ['-n', ns.inet, 'addr', 'add', inet.ipv4, 'dev', 'eth0']);
    await sh('ip', ['-n', ns.inet, 'addr', 'add', inet.ipv6, 'dev', 'eth0', 'nodad']);
    for (const a of customers.ipv4) await sh('ip', ['-n', ns.cust, 'addr', 'add', a, 'dev', 'eth0']);
    for (const a of customers.ipv6) await sh('ip', ['-n', ns.cust, 'addr', 'add', a, 'dev', 'eth0', 'nodad']);
    // Wait until both bridge ports forward (no ping on minimal hosts; iperf() retries connects anyway).
    await waitFor(async () => {
      const r = await execa('bridge', ['-n', ns.shaper, '-j', 'link', 'show'], { reject: false });
      let ports: Array<{ ifname: string; state?: string }> = [];
      try { ports = JSON.parse(r.stdout || '[]'); } catch { /* retry */ }
      return ports.filter((p) => p.state === 'forwarding').length >= 2;
    }, 5000, 'bridge ports to forward');
    return tb;
  } catch (e) {
    await destroyTestbed(tb).catch(() => undefined);
    throw e;
  }
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
 * One iperf3 TCP test between a customer address and the Internet host.
 * direction 'upload' = customer sends (leaves on the Internet-facing port), 'download' = customer
 * receives (iperf3 -R). The server runs in the inet namespace for a single test.
 */
export async function iperf(
  tb: Testbed,
  opts: { custIp: string; direction: 'upload' | 'download'; seconds?: number; omit?: number; server?: string },
): Promise<IperfResult> {
  const v6 = opts.custIp.includes(':');
  const server = opts.server ?? (v6 ? tb.inetIp6 : tb.inetIp4);
  const port = nextPort++;
  const srv: ResultPromise = execa('ip', ['netns', 'exec', tb.ns.inet, 'iperf3', '-s', '-1', '-p', String(port), '-B', server], { reject: false, all: true });
  try {
    // -O 1: leave slow start out of the average.
    const args = ['-c', server, '-p', String(port), '-B', opts.custIp, '-t', String(opts.seconds ?? 3), '-O', String(opts.omit ?? 1), '-J', '--connect-timeout', '1000'];
    if (opts.direction === 'download') args.push('-R');
    let lastErr = '';
    for (let attempt = 0; attempt < 30; attempt++) {
      const r = await nsExec(tb.ns.cust, 'iperf3', args, { reject: false, timeout: ((opts.seconds ?? 3) + 15) * 1000 });
      let j: { error?: string; end?: { sum_received?: { bits_per_second: number }; sum_sent?: { retransmits?: number } } } = {};
      try { j = JSON.parse(r.stdout || '{}'); } catch { /* not JSON */ }
      if (j.end?.sum_received) {
        return { mbps: j.end.sum_received.bits_per_second / 1e6, retransmits: j.end.sum_sent?.retransmits ?? 0 };
      }
      lastErr = j.error ?? r.all ?? '';
      if (!/refused|unable to connect/i.test(lastErr)) break;
      await new Promise((res) => setTimeout(res, 100));
    }
    throw new Error(`iperf3 ${opts.direction} ${opts.custIp} -> ${server} failed: ${lastErr}`);
  } finally {
    srv.kill('SIGKILL');
    await srv.catch(() => undefined);
  }
}
