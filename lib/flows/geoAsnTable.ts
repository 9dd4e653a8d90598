/**
 * IP → ASN from the CSV ranges of the npm package `@ip-location-db/asn` (RouteViews + NRO + DB-IP,
 * CC BY 4.0): `<start>,<end>,<asn>,<organization>` per line, inclusive ranges, sorted by start;
 * IPv4 in the `-num` file as integers, IPv6 in the `-num` file as 128-bit decimals. No MMDB of this
 * data is on the npm registry, so the rows are parsed into typed arrays (≈ 10 MB for ≈ 515k ranges,
 * plus one name per ASN) and looked up by binary search. Pure: parsing takes the file bytes.
 */

/** An ASN and its organization name. */
export interface AsnHit {
  asn: number;
  org: string;
}

const COMMA = 44, NL = 10, CR = 13, QUOTE = 34;
const MASK64 = (1n << 64n) - 1n;

/** Index of the next `ch` at or after `i` (buf.length when none). */
function next(buf: Uint8Array, i: number, ch: number): number {
  const j = buf.indexOf(ch, i);
  return j < 0 ? buf.length : j;
}

/** Unsigned decimal digits buf[a, b) as a number (exact below 2^53). */
function digits(buf: Uint8Array, a: number, b: number): number {
  let v = 0;
  for (let i = a; i < b; i++) v = v * 10 + (buf[i]! - 48);
  return v;
}

/** The organization field buf[a, b): quotes removed, doubled quotes undone. */
function orgText(buf: Buffer, a: number, b: number): string {
  if (b > a && buf[b - 1] === CR) b--;
  const s = buf.toString('utf8', a, b);
  return buf[a] === QUOTE ? s.slice(1, -1).replaceAll('""', '"') : s;
}

/** Calls `row(startField, endField, asn)` for each line; names of new ASNs go into `names`. */
function eachRow(buf: Buffer, names: Map<number, string>, row: (s0: number, s1: number, e0: number, e1: number, asn: number) => void): void {
  let p = 0;
  while (p < buf.length) {
    const eol = next(buf, p, NL);
    const c1 = next(buf, p, COMMA), c2 = next(buf, c1 + 1, COMMA), c3 = next(buf, c2 + 1, COMMA);
    if (c3 < eol) {
      const asn = digits(buf, c2 + 1, c3);
      if (!names.has(asn)) names.set(asn, orgText(buf, c3 + 1, eol));
      row(p, c1, c1 + 1, c2, asn);
    }
    p = eol + 1;
  }
}

function countLines(buf: Uint8Array): number {
  let n = 0;
  for (let i = buf.indexOf(NL); i >= 0; i = buf.indexOf(NL, i + 1)) n++;
  return n + 1;
}

/** IPv4 ranges (start/end as unsigned 32-bit) and IPv6 ranges (start/end as two 64-bit halves). */
export class AsnTable {
  private v4s: Uint32Array;
  private v4e: Uint32Array;
  private v4a: Uint32Array;
  private v4n = 0;
  private v6: BigUint64Array;
  private v6a: Uint32Array;
  private v6n = 0;
  readonly names = new Map<number, string>();

  /** `ipv4Csv`: the `-ipv4-num.csv` bytes; `ipv6Csv`: the `-ipv6-num.csv` bytes. */
  constructor(ipv4Csv: Buffer, ipv6Csv: Buffer) {
    const n4 = countLines(ipv4Csv), n6 = countLines(ipv6Csv);
    this.v4s = new Uint32Array(n4);
    this.v4e = new Uint32Array(n4);
    this.v4a = new Uint32Array(n4);
    eachRow(ipv4Csv, this.names, (s0, s1, e0, e1, asn) => {
      const i = this.v4n++;
      this.v4s[i] = digits(ipv4Csv, s0, s1);
      this.v4e[i] = digits(ipv4Csv, e0, e1);
      this.v4a[i] = asn;
    });
    // Per row: start hi, start lo, end hi, end lo.
    this.v6 = new BigUint64Array(n6 * 4);
    this.v6a = new Uint32Array(n6);
    eachRow(ipv6Csv, this.names, (s0, s1, e0, e1, asn) => {
      const i = this.v6n++, s = BigInt(ipv6Csv.toString('latin1', s0, s1)), e = BigInt(ipv6Csv.toString('latin1', e0, e1));
      this.v6.set([s >> 64n, s & MASK64, e >> 64n, e & MASK64], i * 4);
      this.v6a[i] = asn;
    });
  }

  get ranges(): number {
    return this.v4n + this.v6n;
  }

  /** The ASN of an IPv4 address given as an unsigned 32-bit number. */
  lookupV4(ip: number): AsnHit | null {
    let lo = 0, hi = this.v4n - 1, at = -1;
    while (lo <= hi) {
      const mid = (lo + hi) >>> 1;
      if (this.v4s[mid]! <= ip) { at = mid; lo = mid + 1; } else hi = mid - 1;
    }
    return at >= 0 && ip <= this.v4e[at]! ? this.hit(this.v4a[at]!) : null;
  }

  /** The ASN of an IPv6 address given as its upper and lower 64 bits. */
  lookupV6(ipHi: bigint, ipLo: bigint): AsnHit | null {
    const v = this.v6;
    const le = (h: bigint, l: bigint) => h < ipHi || (h === ipHi && l <= ipLo);
    let lo = 0, hi = this.v6n - 1, at = -1;
    while (lo <= hi) {
      const mid = (lo + hi) >>> 1;
      if (le(v[mid * 4]!, v[mid * 4 + 1]!)) { at = mid; lo = mid + 1; } else hi = mid - 1;
    }
    if (at < 0) return null;
    const eh = v[at * 4 + 2]!, el = v[at * 4 + 3]!;
    return ipHi < eh || (ipHi === eh && ipLo <= el) ? this.hit(this.v6a[at]!) : null;
  }

  private hit(asn: number): AsnHit {
    return { asn, org: this.names.get(asn) ?? '' };
  }
}
