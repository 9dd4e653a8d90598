/** Small hand-made plans and counters for the telemetry tests. */
import type { HostCounters } from '../../dataplane/abi.ts';
import type { UnmappedSnapshot } from '../../lib/telemetry/unmapped.ts';
import type { IpMapping, PlannedCircuit, PlannedNode, ShapingPlan } from '../../lib/model.ts';

const leaf = { leaf: null, leafHandle: 0 };

export function node(name: string, path: string, queue: number, minor: number, parentMinor: number, depth: number, down = 1000, up = 500): PlannedNode {
  return { name, path, generated: false, queue, minor, parentMinor, depth, download: { rateMbps: down, ceilMbps: down }, upload: { rateMbps: up, ceilMbps: up } };
}

export function circuit(id: string, parentPath: string, queue: number, minor: number, prefixes: string[], down = 100, up = 20): PlannedCircuit {
  return {
    id,
    name: `Circuit ${id}`,
    parentPath,
    queue,
    minor,
    parentMinor: 0,
    download: { rateMbps: down, ceilMbps: down, ...leaf },
    upload: { rateMbps: up, ceilMbps: up, ...leaf },
    devices: [
      {
        id: `${id}-d`, name: `${id}-d`, mac: '', comment: '', line: 0,
        ipv4: prefixes.filter((p) => !p.includes(':')),
        ipv6: prefixes.filter((p) => p.includes(':')),
      },
    ],
    circuitHash: 0n,
  };
}

/**
 *  Tower (q1 1:3) ─┬─ AP_A (1:4) ── c1 10.0.0.1/32 (1:6)
 *                  └─ AP_B (1:5) ── c2 10.1.2.0/24 + 2001:db8:1::/48 (1:7)
 *  Site2 (q2 2:3) ──── c3 10.1.2.128/25 (2:4)   (more specific than c2's /24)
 *  (no parent) ────── c4 10.9.0.0/16 (2:5)
 */
export function testPlan(opts: { stickOffset?: number; download?: string; upload?: string } = {}): ShapingPlan {
  const nodes = [
    node('Tower', 'Tower', 1, 3, 1, 0, 1000, 500),
    node('AP_A', 'Tower/AP_A', 1, 4, 3, 1, 300, 100),
    node('AP_B', 'Tower/AP_B', 1, 5, 3, 1, 300, 100),
    node('Site2', 'Site2', 2, 3, 1, 0, 800, 400),
  ];
  const circuits = [
    circuit('c1', 'Tower/AP_A', 1, 6, ['10.0.0.1/32'], 50, 10),
    circuit('c2', 'Tower/AP_B', 1, 7, ['10.1.2.0/24', '2001:db8:1::/48'], 100, 20),
    circuit('c3', 'Site2', 2, 4, ['10.1.2.128/25'], 200, 40),
    circuit('c4', '', 2, 5, ['10.9.0.0/16'], 25, 5),
  ];
  const mappings: IpMapping[] = circuits.flatMap((c) =>
    c.devices.flatMap((d) => [...d.ipv4, ...d.ipv6].map((prefix) => ({ prefix, cpu: c.queue - 1, major: c.queue, minor: c.minor, circuitId: c.id, deviceId: d.id, circuitHash: 0n, deviceHash: 0n }))),
  );
  return {
    interfaces: { download: opts.download ?? 'eth-isp', upload: opts.upload ?? 'eth-inet', onAStick: (opts.download ?? 'eth-isp') === (opts.upload ?? 'eth-inet') },
    queues: 2,
    stickOffset: opts.stickOffset ?? 0,
    link: { downloadMbps: 10000, uploadMbps: 10000 },
    defaultLeaf: { kind: 'cake', args: ['diffserv4'] },
    mode: 'shape',
    nodes,
    circuits,
    mappings,
    warnings: [],
  };
}

export function hc(down: number | bigint, up: number | bigint, dp = 0, upk = 0, tcHandle = 0): HostCounters {
  return {
    downloadBytes: BigInt(down), uploadBytes: BigInt(up), downloadPackets: BigInt(dp), uploadPackets: BigInt(upk),
    lastSeenNs: 1n, tcHandle, circuitHash: 0n, deviceHash: 0n,
  };
}

/**
 * An unmapped-traffic read: the aggregate (bytes down/up, packets down = `pktsDown`) and the sampled
 * table (`[ip, counters]`, as hc() builds them), `sampled` addresses ever admitted.
 */
export function unmapped(bytesDown: number, bytesUp: number, table: [string, HostCounters][], pktsDown = 0, sampled = table.length): UnmappedSnapshot {
  return {
    stats: { unmappedBytesDown: BigInt(bytesDown), unmappedBytesUp: BigInt(bytesUp), unmappedPacketsDown: BigInt(pktsDown), unmappedPacketsUp: 0n, unknownSampled: BigInt(sampled) },
    unknownIps: table.map(([ip, c]) => ({
      ip, downloadBytes: c.downloadBytes, uploadBytes: c.uploadBytes, downloadPackets: c.downloadPackets, uploadPackets: c.uploadPackets, firstSeenNs: 1n, lastSeenNs: c.lastSeenNs,
    })),
  };
}
