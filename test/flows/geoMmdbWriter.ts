/**
 * A tiny MaxMind DB (MMDB v2) writer for tests: an IPv6 tree (IPv4 networks under ::/96) with
 * 24-bit records, the data section (maps, strings, doubles, unsigned ints, arrays) and the metadata.
 * Enough to make operator-supplied files with known records and a known build date.
 */
import ipaddr from 'ipaddr.js';

type Value = string | number | { double: number } | Value[] | { [k: string]: Value };

function ctrl(type: number, size: number): Buffer {
  const ext = type > 7;
  const head = (ext ? 0 : type << 5);
  const extByte = ext ? [type - 7] : [];
  if (size < 29) return Buffer.from([head | size, ...extByte]);
  if (size < 285) return Buffer.from([head | 29, ...extByte, size - 29]);
  const s = size - 285;
  return Buffer.from([head | 30, ...extByte, s >> 8, s & 255]);
}

function uintBytes(v: number | bigint): Buffer {
  const out: number[] = [];
  for (let x = BigInt(v); x > 0n; x >>= 8n) out.unshift(Number(x & 255n));
  return Buffer.from(out);
}

/** Encodes a value: strings, unsigned ints (uint32, or uint64 when `bigint`), doubles ({double}), arrays, maps. */
export function encode(v: Value | bigint): Buffer {
  if (typeof v === 'string') {
    const b = Buffer.from(v, 'utf8');
    return Buffer.concat([ctrl(2, b.length), b]);
  }
  if (typeof v === 'bigint') {
    const b = uintBytes(v);
    return Buffer.concat([ctrl(9, b.length), b]);
  }
  if (typeof v === 'number') {
    const b = uintBytes(v);
    return Buffer.concat([ctrl(6, b.length), b]);
  }
  if (Array.isArray(v)) return Buffer.concat([ctrl(11, v.length), ...v.map(encode)]);
  if ('double' in v && typeof v.double === 'number') {
    const b = Buffer.alloc(8);
    b.writeDoubleBE(v.double);
    return Buffer.concat([ctrl(3, 8), b]);
  }
  const entries = Object.entries(v as Record<string, Value>);
  return Buffer.concat([ctrl(7, entries.length), ...entries.flatMap(([k, x]) => [encode(k), encode(x)])]);
}

/** The 128 bits of a network (IPv4 under ::/96) and its prefix length in the IPv6 tree. */
function bitsOf(cidr: string): { bits: number[]; len: number } {
  const [addr, len] = ipaddr.parseCIDR(cidr);
  const bytes = addr.kind() === 'ipv4' ? [...new Array(12).fill(0), ...addr.toByteArray()] : addr.toByteArray();
  const bits = bytes.flatMap((b) => [7, 6, 5, 4, 3, 2, 1, 0].map((i) => (b >> i) & 1));
  return { bits, len: addr.kind() === 'ipv4' ? len + 96 : len };
}

type Rec = { node: number } | { data: number } | null;

/** An MMDB file with `records` (CIDR → record; networks must not overlap). */
export function writeMmdb(records: Record<string, Value>, meta: { databaseType: string; buildEpoch: number }): Buffer {
  const data: Buffer[] = [];
  let dataLen = 0;
  const nodes: [Rec, Rec][] = [[null, null]];
  for (const [cidr, value] of Object.entries(records)) {
    const offset = dataLen;
    const enc = encode(value);
    data.push(enc);
    dataLen += enc.length;
    const { bits, len } = bitsOf(cidr);
    let n = 0;
    for (let i = 0; i < len - 1; i++) {
      const r = nodes[n]![bits[i]!];
      if (r && 'node' in r) n = r.node;
      else {
        nodes.push([null, null]);
        nodes[n]![bits[i]!] = { node: nodes.length - 1 };
        n = nodes.length - 1;
      }
    }
    nodes[n]![bits[len - 1]!] = { data: offset };
  }
  const count = nodes.length;
  const tree = Buffer.alloc(count * 6);
  const value = (r: Rec) => (r === null ? count : 'node' in r ? r.node : count + 16 + r.data);
  nodes.forEach(([l, r], i) => {
    tree.writeUIntBE(value(l), i * 6, 3);
    tree.writeUIntBE(value(r), i * 6 + 3, 3);
  });
  const metadata = Buffer.concat([
    ctrl(7, 9),
    encode('node_count'), encode(count),
    encode('record_size'), Buffer.concat([ctrl(5, 1), Buffer.from([24])]),
    encode('ip_version'), Buffer.concat([ctrl(5, 1), Buffer.from([6])]),
    encode('database_type'), encode(meta.databaseType),
    encode('languages'), encode(['en']),
    encode('binary_format_major_version'), Buffer.concat([ctrl(5, 1), Buffer.from([2])]),
    encode('binary_format_minor_version'), ctrl(5, 0),
    encode('build_epoch'), encode(BigInt(meta.buildEpoch)),
    encode('description'), encode({ en: 'lqos-ts test data' }),
  ]);
  return Buffer.concat([tree, Buffer.alloc(16), ...data, Buffer.from('abcdef4d61784d696e642e636f6d', 'hex'), metadata]);
}
