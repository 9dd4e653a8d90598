/**
 * NetFlow v5, v9 and IPFIX from lib/flows/netflow against Debian's nfcapd on loopback: what nfdump
 * reads back is what was exported (addresses, ports, protocol, TCP flags, bytes, packets, start and
 * end), over many packets with no sequence failure; v5's 32-bit counters and IPv4-only records, and
 * the bounded queue, behave as documented.
 */
import { strict as assert } from 'node:assert';
import { test } from 'node:test';
import { NetflowExporter } from '../../lib/flows/netflow/exporter.ts';
import type { ExportRecord, NetflowVersion } from '../../lib/flows/netflow/record.ts';
import { startNfcapd, type NfdumpFlow } from '../support/nfcapd.ts';

const T0 = Date.UTC(2026, 11, 5, 12, 0, 0);

function v4(i: number): Uint8Array {
  return Uint8Array.from([100, 64, (i >> 8) & 255, i & 255]);
}
function v6(i: number): Uint8Array {
  const b = Buffer.from('20010db8000000000000000000000000', 'hex');
  b.writeUInt16BE(i, 14);
  return b;
}

/** 400 IPv4 and 100 IPv6 records with distinct counts, ports and times. */
function records(): ExportRecord[] {
  const out: ExportRecord[] = [];
  for (let i = 0; i < 500; i++) {
    const six = i >= 400;
    out.push({
      src: six ? v6(i) : v4(i),
      dst: six ? v6(60000 - i) : Uint8Array.from([192, 0, 2, i % 250]),
      srcPort: 10000 + i,
      dstPort: i % 2 ? 443 : 53,
      proto: i % 2 ? 6 : 17,
      tcpFlags: i % 2 ? 0x1b : 0,
      bytes: 1000 * i + 7,
      packets: i + 1,
      startMs: T0 + i * 10,
      endMs: T0 + 60_000 + i * 10,
      rttUs: 1000 + i,
      circuitId: `circuit-${i}`,
    });
  }
  return out;
}

const addr = (b: Uint8Array) => (b.length === 4 ? [...b].join('.') : Buffer.from(b).toString('hex'));
const expand6 = (s: string) => {
  const [head, tail = ''] = s.split('::');
  const h = head ? head.split(':') : [];
  const t = tail ? tail.split(':') : [];
  return [...h, ...Array(8 - h.length - t.length).fill('0'), ...t].map((x) => x.padStart(4, '0')).join('');
};
const srcOf = (f: NfdumpFlow) => (f.src4_addr ?? expand6(f.src6_addr!));
const dstOf = (f: NfdumpFlow) => (f.dst4_addr ?? expand6(f.dst6_addr!));
const ms = (s: string) => Date.parse(`${s}Z`);

async function roundTrip(version: NetflowVersion, sent: ExportRecord[]) {
  const c = await startNfcapd();
  try {
    const e = new NetflowExporter({ host: '127.0.0.1', port: c.port, version, bootMs: T0 - 3_600_000, maxPacketsPerSecond: 5000 });
    // Three batches, as the tracker hands over ended flows tick by tick.
    for (let i = 0; i < sent.length; i += 200) e.export(sent.slice(i, i + 200));
    await e.close();
    await new Promise((r) => setTimeout(r, 300));
    const flows = await c.stopAndRead();
    return { flows, stats: e.stats(), sequenceFailures: await c.sequenceFailures() };
  } finally {
    c.cleanup();
  }
}

function assertSame(version: NetflowVersion, sent: ExportRecord[], flows: NfdumpFlow[]) {
  assert.equal(flows.length, sent.length, `v${version}: nfdump must read back every record`);
  const byPort = new Map(flows.map((f) => [f.src_port, f]));
  for (const r of sent) {
    const f = byPort.get(r.srcPort);
    assert.ok(f, `v${version}: the flow from port ${r.srcPort} is missing`);
    const what = `v${version} flow ${r.srcPort}`;
    assert.equal(srcOf(f), addr(r.src), `${what}: source address`);
    assert.equal(dstOf(f), addr(r.dst), `${what}: destination address`);
    assert.equal(f.dst_port, r.dstPort, `${what}: destination port`);
    assert.equal(f.proto, r.proto, `${what}: protocol`);
    assert.equal(f.in_bytes, r.bytes, `${what}: bytes`);
    assert.equal(f.in_packets, r.packets, `${what}: packets`);
    assert.equal(ms(f.first), r.startMs, `${what}: start`);
    assert.equal(ms(f.last), r.endMs, `${what}: end`);
    assert.equal(f.tcp_flags, r.tcpFlags ? '...AP.SF' : '........', `${what}: TCP flags`);
  }
}

for (const version of [9, 10] as const) {
  test(`NetFlow v${version === 10 ? '10 (IPFIX)' : version}: 500 IPv4 and IPv6 records read back by nfdump exactly, no sequence failure`, async () => {
    const sent = records();
    const { flows, stats, sequenceFailures } = await roundTrip(version, sent);
    assertSame(version, sent, flows);
    assert.equal(sequenceFailures, 0, 'nfcapd counted sequence failures');
    assert.equal(stats.records, 500);
    assert.ok(stats.packets >= 10, `500 records need many packets (sent ${stats.packets})`);
  });
}

test('NetFlow v5: IPv4 records read back exactly, IPv6 skipped and counted, counters over 4 GiB split', async () => {
  const sent = records();
  const big: ExportRecord = { ...sent[1]!, srcPort: 9999, bytes: 10_000_000_007, packets: 7_000_000 };
  const { flows, stats, sequenceFailures } = await roundTrip(5, [...sent, big]);
  const v4sent = sent.filter((r) => r.src.length === 4);
  assertSame(5, v4sent, flows.filter((f) => f.src_port !== 9999));
  const parts = flows.filter((f) => f.src_port === 9999);
  assert.equal(parts.length, 3, 'a 10 GB flow is three v5 records');
  assert.equal(parts.reduce((n, f) => n + f.in_bytes, 0), big.bytes);
  assert.equal(parts.reduce((n, f) => n + f.in_packets, 0), big.packets);
  assert.equal(stats.skippedIpv6, 100);
  assert.equal(sequenceFailures, 0);
});

test('the export queue is bounded: records beyond it are dropped and counted, the rest still sent', async () => {
  const c = await startNfcapd();
  try {
    const e = new NetflowExporter({ host: '127.0.0.1', port: c.port, version: 10, maxPacketsPerSecond: 10, maxQueuedPackets: 3 });
    const many = Array.from({ length: 20 }, () => records()).flat();
    e.export(many);
    assert.ok(e.queued <= 3, `at most 3 packets wait (${e.queued})`);
    const { dropped } = e.stats();
    assert.ok(dropped > 0 && dropped < many.length, `some records dropped and counted (${dropped} of ${many.length})`);
    await e.close();
    await new Promise((r) => setTimeout(r, 300));
    const flows = await c.stopAndRead();
    assert.equal(flows.length, many.length - dropped, 'what was not dropped reached the collector');
  } finally {
    c.cleanup();
  }
});
