/**
 * NetFlow v5, NetFlow v9 and IPFIX (v10) packets from ExportRecords; pure functions. Packets stay
 * under MAX_PACKET_BYTES (no IP fragmentation on a 1500-byte path). v5 carries IPv4 only; v9 and
 * IPFIX have one template for IPv4 and one for IPv6. IPFIX adds two enterprise fields under
 * ENTERPRISE_NUMBER: the TCP RTT in microseconds and the circuit id (variable-length string).
 */
import type { ExportContext, ExportRecord } from './record.ts';

export const MAX_PACKET_BYTES = 1400;
/** RFC 5612's example enterprise number: lqos-ts has none registered; collectors skip unknown ones. */
export const ENTERPRISE_NUMBER = 32473;
export const TEMPLATE_V4 = 256;
export const TEMPLATE_V6 = 257;
const V5_RECORD = 48;
const V5_MAX_RECORDS = 30;

/** An encoded packet and how many records it carries. */
export interface EncodedPacket {
  bytes: Buffer;
  records: number;
}

const uptime = (ctx: ExportContext, ms: number) => Math.max(0, Math.min(0xffffffff, Math.round(ms - ctx.bootMs))) >>> 0;
const u32 = (n: number) => Math.max(0, Math.min(0xffffffff, Math.round(n))) >>> 0;

/** NetFlow v5: IPv4 records only (others are skipped by the caller), at most 30 per packet. */
export function encodeV5(records: readonly ExportRecord[], ctx: ExportContext): Buffer {
  if (records.length > V5_MAX_RECORDS) throw new RangeError(`NetFlow v5 carries at most ${V5_MAX_RECORDS} records per packet`);
  const b = Buffer.alloc(24 + V5_RECORD * records.length);
  b.writeUInt16BE(5, 0);
  b.writeUInt16BE(records.length, 2);
  b.writeUInt32BE(uptime(ctx, ctx.nowMs), 4);
  b.writeUInt32BE(Math.floor(ctx.nowMs / 1000), 8);
  b.writeUInt32BE((ctx.nowMs % 1000) * 1e6, 12);
  b.writeUInt32BE(ctx.sequence >>> 0, 16);
  records.forEach((r, i) => {
    const o = 24 + i * V5_RECORD;
    b.set(r.src, o);
    b.set(r.dst, o + 4);
    b.writeUInt32BE(u32(r.packets), o + 16);
    b.writeUInt32BE(u32(r.bytes), o + 20);
    b.writeUInt32BE(uptime(ctx, r.startMs), o + 24);
    b.writeUInt32BE(uptime(ctx, r.endMs), o + 28);
    b.writeUInt16BE(r.srcPort, o + 32);
    b.writeUInt16BE(r.dstPort, o + 34);
    b.writeUInt8(r.tcpFlags & 0xff, o + 37);
    b.writeUInt8(r.proto, o + 38);
  });
  return b;
}

export const V5_RECORDS_PER_PACKET = V5_MAX_RECORDS;

const V5_MAX_COUNT = 0xffffffff;

/**
 * v5's counters are 32-bit: a record with more bytes or packets becomes several records of the
 * same flow (same times), each within the limit, whose sums are the original counts.
 */
export function splitForV5(records: readonly ExportRecord[]): ExportRecord[] {
  const out: ExportRecord[] = [];
  for (const r of records) {
    const parts = Math.max(1, Math.ceil(r.bytes / V5_MAX_COUNT), Math.ceil(r.packets / V5_MAX_COUNT));
    if (parts === 1) {
      out.push(r);
      continue;
    }
    let bytesLeft = r.bytes;
    let packetsLeft = r.packets;
    for (let i = parts; i > 0; i--) {
      const bytes = Math.ceil(bytesLeft / i);
      const packets = Math.ceil(packetsLeft / i);
      out.push({ ...r, bytes, packets });
      bytesLeft -= bytes;
      packetsLeft -= packets;
    }
  }
  return out;
}

/** One field of a template: information element id, length (0xffff = variable), enterprise number. */
interface Field {
  id: number;
  len: number;
  pen?: number;
  write(b: Buffer, o: number, r: ExportRecord, ctx: ExportContext): number;
}

const fixed = (id: number, len: number, get: (r: ExportRecord, ctx: ExportContext) => number | bigint | Uint8Array): Field => ({
  id,
  len,
  write(b, o, r, ctx) {
    const v = get(r, ctx);
    if (v instanceof Uint8Array) b.set(v, o);
    else if (len === 8) b.writeBigUInt64BE(BigInt(v), o);
    else if (len === 4) b.writeUInt32BE(Number(v) >>> 0, o);
    else if (len === 2) b.writeUInt16BE(Number(v) & 0xffff, o);
    else b.writeUInt8(Number(v) & 0xff, o);
    return len;
  },
});

const circuitField: Field = {
  id: 2,
  len: 0xffff,
  pen: ENTERPRISE_NUMBER,
  write(b, o, r) {
    const s = Buffer.from((r.circuitId ?? '').slice(0, 200), 'utf8').subarray(0, 254);
    b.writeUInt8(s.length, o);
    s.copy(b, o + 1);
    return 1 + s.length;
  },
};

function fieldsFor(family: 4 | 6, ipfix: boolean): Field[] {
  const a = family === 4 ? 4 : 16;
  const f: Field[] = [
    fixed(family === 4 ? 8 : 27, a, (r) => r.src),
    fixed(family === 4 ? 12 : 28, a, (r) => r.dst),
    fixed(7, 2, (r) => r.srcPort),
    fixed(11, 2, (r) => r.dstPort),
    fixed(4, 1, (r) => r.proto),
    fixed(6, 1, (r) => r.tcpFlags),
    fixed(1, 8, (r) => BigInt(Math.max(0, Math.round(r.bytes)))),
    fixed(2, 8, (r) => BigInt(Math.max(0, Math.round(r.packets)))),
  ];
  if (ipfix) {
    f.push(fixed(152, 8, (r) => BigInt(Math.round(r.startMs))), fixed(153, 8, (r) => BigInt(Math.round(r.endMs))));
    f.push({ ...fixed(1, 4, (r) => u32(r.rttUs ?? 0)), pen: ENTERPRISE_NUMBER }, circuitField);
  } else {
    f.push(fixed(22, 4, (r, ctx) => uptime(ctx, r.startMs)), fixed(21, 4, (r, ctx) => uptime(ctx, r.endMs)));
  }
  return f;
}

const TEMPLATES = {
  v9: { 4: fieldsFor(4, false), 6: fieldsFor(6, false) },
  ipfix: { 4: fieldsFor(4, true), 6: fieldsFor(6, true) },
} as const;

/** The template set / flowset with both templates. */
function templateSet(ipfix: boolean): Buffer {
  const parts: Buffer[] = [];
  for (const [tid, fields] of [[TEMPLATE_V4, TEMPLATES[ipfix ? 'ipfix' : 'v9'][4]], [TEMPLATE_V6, TEMPLATES[ipfix ? 'ipfix' : 'v9'][6]]] as const) {
    const size = 4 + fields.reduce((n, f) => n + (f.pen ? 8 : 4), 0);
    const t = Buffer.alloc(size);
    t.writeUInt16BE(tid, 0);
    t.writeUInt16BE(fields.length, 2);
    let o = 4;
    for (const f of fields) {
      t.writeUInt16BE(f.pen ? f.id | 0x8000 : f.id, o);
      t.writeUInt16BE(f.len, o + 2);
      if (f.pen) t.writeUInt32BE(f.pen, o + 4);
      o += f.pen ? 8 : 4;
    }
    parts.push(t);
  }
  const body = Buffer.concat(parts);
  const head = Buffer.alloc(4);
  head.writeUInt16BE(ipfix ? 2 : 0, 0);
  head.writeUInt16BE(4 + body.length, 2);
  return Buffer.concat([head, body]);
}

const TEMPLATE_SETS = { v9: templateSet(false), ipfix: templateSet(true) };

function recordBytes(r: ExportRecord, fields: readonly Field[], ctx: ExportContext): Buffer {
  const b = Buffer.alloc(fields.reduce((n, f) => n + (f.len === 0xffff ? 256 : f.len), 0));
  let o = 0;
  for (const f of fields) o += f.write(b, o, r, ctx);
  return b.subarray(0, o);
}

/**
 * NetFlow v9 or IPFIX packets for `records` (any mix of IPv4 and IPv6): as many records per packet
 * as fit; templates at the front of the first packet when `ctx.withTemplates`. `ctx.sequence` is
 * advanced per packet (v9) or per data record (IPFIX) by the caller from the returned counts.
 */
export function encodeTemplated(version: 9 | 10, records: readonly ExportRecord[], ctx: ExportContext): EncodedPacket[] {
  const ipfix = version === 10;
  const tables = TEMPLATES[ipfix ? 'ipfix' : 'v9'];
  const encoded = records.map((r) => ({ family: r.src.length === 4 ? 4 : 6, bytes: recordBytes(r, tables[r.src.length === 4 ? 4 : 6], ctx) }));
  const packets: EncodedPacket[] = [];
  let i = 0;
  let sequence = ctx.sequence;
  let withTemplates = ctx.withTemplates;
  while (i < encoded.length || (withTemplates && packets.length === 0)) {
    const sets: Buffer[] = withTemplates ? [TEMPLATE_SETS[ipfix ? 'ipfix' : 'v9']] : [];
    let size = 20 - (ipfix ? 4 : 0) + (sets[0]?.length ?? 0);
    let count = withTemplates ? 2 : 0;
    let dataRecords = 0;
    while (i < encoded.length && size + 4 + encoded[i]!.bytes.length + 3 <= MAX_PACKET_BYTES) {
      const family = encoded[i]!.family;
      const run: Buffer[] = [];
      let runSize = 4;
      while (i < encoded.length && encoded[i]!.family === family && size + runSize + encoded[i]!.bytes.length + 3 <= MAX_PACKET_BYTES) {
        run.push(encoded[i]!.bytes);
        runSize += encoded[i]!.bytes.length;
        i++;
      }
      const pad = (4 - (runSize % 4)) % 4;
      const head = Buffer.alloc(4);
      head.writeUInt16BE(family === 4 ? TEMPLATE_V4 : TEMPLATE_V6, 0);
      head.writeUInt16BE(runSize + pad, 2);
      sets.push(head, ...run, Buffer.alloc(pad));
      size += runSize + pad;
      count += run.length;
      dataRecords += run.length;
    }
    packets.push({ bytes: header(version, Buffer.concat(sets), { ...ctx, sequence }, count), records: dataRecords });
    sequence += ipfix ? dataRecords : 1;
    withTemplates = false;
  }
  return packets;
}

function header(version: 9 | 10, body: Buffer, ctx: ExportContext, count: number): Buffer {
  if (version === 9) {
    const h = Buffer.alloc(20);
    h.writeUInt16BE(9, 0);
    h.writeUInt16BE(count, 2);
    // No sub-second field in v9's header: the uptime is taken at the whole second written beside
    // it, so collectors computing "unix_secs − sysUptime + FIRST_SWITCHED" get exact times.
    h.writeUInt32BE(uptime(ctx, Math.floor(ctx.nowMs / 1000) * 1000), 4);
    h.writeUInt32BE(Math.floor(ctx.nowMs / 1000), 8);
    h.writeUInt32BE(ctx.sequence >>> 0, 12);
    h.writeUInt32BE(ctx.sourceId >>> 0, 16);
    return Buffer.concat([h, body]);
  }
  const h = Buffer.alloc(16);
  h.writeUInt16BE(10, 0);
  h.writeUInt16BE(16 + body.length, 2);
  h.writeUInt32BE(Math.floor(ctx.nowMs / 1000), 4);
  h.writeUInt32BE(ctx.sequence >>> 0, 8);
  h.writeUInt32BE(ctx.sourceId >>> 0, 12);
  return Buffer.concat([h, body]);
}
