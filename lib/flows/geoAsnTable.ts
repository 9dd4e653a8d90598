/**
 * IP → ASN from the CSV ranges of the npm package `@ip-location-db/asn` (RouteViews + NRO + DB-IP,
 * CC BY 4.0): `<start>,<end>,<asn>,<organization>` per line, inclusive ranges, sorted by start;
 * IPv4 in the `-num` file as integers, IPv6 in the `-num` file as 128-bit decimals. No MMDB of this
 * data is on the npm registry, so the rows are parsed into typed arrays and looked up by binary
 * search: IPv4 start/end/ASN as u32 (12 B per range), IPv6 start/end as four u32 words each plus the
 * ASN (36 B per range), ≈ 8.7 MB for ≈ 515k ranges. The organization names (one per ASN, the first
 * line's) are kept as their CSV bytes in one buffer (≈ 3.4 MB for ≈ 100k ASNs) with a sorted ASN
 * index, and decoded only for a hit. Parsing allocates nothing per line (no strings, no BigInts);
 * `fromFiles` reads the files in 1 MiB pieces instead of whole. Pure apart from `fromFiles`.
 */
import { closeSync, openSync, readSync } from 'node:fs';

/** An ASN and its organization name. */
export interface AsnHit {
  asn: number;
  org: string;
}

const COMMA = 44, NL = 10, CR = 13, QUOTE = 34;
const TWO16 = 65536;
/** Bytes read from a file at a time by `fromFiles` (a line longer than this grows the buffer). */
const READ_CHUNK = 1 << 20;

/** Unsigned decimal digits buf[a, b) as a number (exact below 2^53). */
function digits(buf: Uint8Array, a: number, b: number): number {
  let v = 0;
  for (let i = a; i < b; i++) v = v * 10 + (buf[i]! - 48);
  return v;
}

/** 16-bit limbs of a 128-bit number, least significant first (scratch of `dec128`). */
const limbs = new Float64Array(8);

/**
 * Unsigned decimal digits buf[a, b) (a value below 2^128) into out[o … o + 3], most significant u32
 * word first: nine digits at a time folded into 16-bit limbs (every product stays below 2^53).
 */
function dec128(buf: Uint8Array, a: number, b: number, out: Uint32Array, o: number): void {
  const L = limbs;
  L.fill(0);
  for (let i = a; i < b;) {
    const e = Math.min(b, i + 9);
    let chunk = 0, mul = 1;
    for (; i < e; i++) { chunk = chunk * 10 + (buf[i]! - 48); mul *= 10; }
    let carry = chunk;
    for (let j = 0; j < 8; j++) {
      const v = L[j]! * mul + carry;
      carry = Math.floor(v / TWO16);
      L[j] = v - carry * TWO16;
    }
  }
  out[o] = L[7]! * TWO16 + L[6]!;
  out[o + 1] = L[5]! * TWO16 + L[4]!;
  out[o + 2] = L[3]! * TWO16 + L[2]!;
  out[o + 3] = L[1]! * TWO16 + L[0]!;
}

/** The organization field as stored (CSV bytes): quotes removed, doubled quotes undone. */
function orgText(buf: Buffer, a: number, b: number): string {
  const s = buf.toString('utf8', a, b);
  return buf[a] === QUOTE ? s.slice(1, -1).replaceAll('""', '"') : s;
}

/** `to` (length n) with the first `n` elements of `from`; `from` itself when it already has that length. */
function fit<T extends Uint32Array>(from: T, n: number, make: (n: number) => T): T {
  if (from.length === n) return from;
  const to = make(n);
  to.set(from.subarray(0, n));
  return to;
}

/** Collects the rows and names while the CSV lines stream in; `done()` gives the compact arrays. */
class Builder {
  v4 = new Uint32Array(3 * 65536);
  v4n = 0;
  /** Per IPv6 row: start words 0–3, end words 0–3 (most significant first). */
  v6 = new Uint32Array(8 * 16384);
  v6a = new Uint32Array(16384);
  v6n = 0;
  /** Name bytes of each new ASN, in order of first sight, and where each starts. */
  names = Buffer.alloc(1 << 20);
  namesLen = 0;
  nameAsn = new Uint32Array(16384);
  nameAt = new Uint32Array(16384);
  nNames = 0;
  /** ASN → its index in nameAsn (only while parsing). */
  private readonly seen = new Map<number, number>();

  /** The complete lines of buf[0, end) (a last line without a newline only when `last`); returns where the unparsed rest starts. */
  lines(buf: Buffer, end: number, v6: boolean, last: boolean): number {
    let p = 0;
    while (p < end) {
      let eol = buf.indexOf(NL, p);
      if (eol < 0 || eol >= end) {
        if (!last) return p;
        eol = end;
      }
      const c1 = buf.indexOf(COMMA, p), c2 = c1 < 0 ? -1 : buf.indexOf(COMMA, c1 + 1), c3 = c2 < 0 ? -1 : buf.indexOf(COMMA, c2 + 1);
      if (c1 >= 0 && c3 >= 0 && c3 < eol) {
        const asn = digits(buf, c2 + 1, c3);
        this.name(asn, buf, c3 + 1, eol > c3 + 1 && buf[eol - 1] === CR ? eol - 1 : eol);
        if (v6) this.row6(buf, p, c1, c2, asn);
        else this.row4(digits(buf, p, c1), digits(buf, c1 + 1, c2), asn);
      }
      p = eol + 1;
    }
    return Math.min(p, end);
  }

  private row4(s: number, e: number, asn: number): void {
    if ((this.v4n + 1) * 3 > this.v4.length) this.v4 = grown(this.v4);
    const i = this.v4n++ * 3;
    this.v4[i] = s;
    this.v4[i + 1] = e;
    this.v4[i + 2] = asn;
  }

  private row6(buf: Buffer, p: number, c1: number, c2: number, asn: number): void {
    if (this.v6n === this.v6a.length) {
      this.v6 = grown(this.v6);
      this.v6a = grown(this.v6a);
    }
    const i = this.v6n++;
    dec128(buf, p, c1, this.v6, i * 8);
    dec128(buf, c1 + 1, c2, this.v6, i * 8 + 4);
    this.v6a[i] = asn;
  }

  private name(asn: number, buf: Buffer, a: number, b: number): void {
    if (this.seen.has(asn)) return;
    if (this.nNames === this.nameAsn.length) {
      this.nameAsn = grown(this.nameAsn);
      this.nameAt = grown(this.nameAt);
    }
    if (this.namesLen + (b - a) > this.names.length) {
      const to = Buffer.alloc(Math.max(this.names.length * 2, this.namesLen + (b - a)));
      this.names.copy(to, 0, 0, this.namesLen);
      this.names = to;
    }
    this.seen.set(asn, this.nNames);
    this.nameAsn[this.nNames] = asn;
    this.nameAt[this.nNames++] = this.namesLen;
    this.namesLen += buf.copy(this.names, this.namesLen, a, b);
  }
}

/** A typed array twice as long with `a` copied into its start. */
function grown<T extends Uint32Array>(a: T): T {
  const to = new (a.constructor as new (n: number) => T)(a.length * 2);
  to.set(a);
  return to;
}

/** IPv4 ranges (start/end as unsigned 32-bit) and IPv6 ranges (start/end as four u32 words). */
export class AsnTable {
  /** Per IPv4 row: start, end, ASN. */
  private readonly v4: Uint32Array;
  private readonly v4n: number;
  /** Per IPv6 row: start words 0–3, end words 0–3; and the ASN of each row. */
  private readonly v6: Uint32Array;
  private readonly v6a: Uint32Array;
  private readonly v6n: number;
  /** ASNs with a name, sorted; name i is names[nameAt[i], nameAt[i + 1]) (CSV bytes). */
  private readonly nameAsn: Uint32Array;
  private readonly nameAt: Uint32Array;
  private readonly names: Buffer;

  /** `ipv4Csv`: the `-ipv4-num.csv` bytes; `ipv6Csv`: the `-ipv6-num.csv` bytes. */
  constructor(ipv4Csv: Buffer, ipv6Csv: Buffer);
  /** (internal) from a finished builder */
  constructor(b: Builder);
  constructor(a: Buffer | Builder, ipv6Csv?: Buffer) {
    let b: Builder;
    if (a instanceof Builder) b = a;
    else {
      b = new Builder();
      b.lines(a, a.length, false, true);
      b.lines(ipv6Csv!, ipv6Csv!.length, true, true);
    }
    this.v4n = b.v4n;
    this.v4 = fit(b.v4, b.v4n * 3, (n) => new Uint32Array(n));
    this.v6n = b.v6n;
    this.v6 = fit(b.v6, b.v6n * 8, (n) => new Uint32Array(n));
    this.v6a = fit(b.v6a, b.v6n, (n) => new Uint32Array(n));
    // Names sorted by ASN (an index permutation; the bytes stay in order of first sight).
    const n = b.nNames, order = new Uint32Array(n);
    for (let i = 0; i < n; i++) order[i] = i;
    order.sort((x, y) => b.nameAsn[x]! - b.nameAsn[y]!);
    this.nameAsn = new Uint32Array(n);
    this.nameAt = new Uint32Array(n + 1);
    this.names = Buffer.alloc(b.namesLen);
    let at = 0;
    for (let r = 0; r < n; r++) {
      const i = order[r]!, s = b.nameAt[i]!, e = i + 1 < n ? b.nameAt[i + 1]! : b.namesLen;
      this.nameAsn[r] = b.nameAsn[i]!;
      this.nameAt[r] = at;
      at += b.names.copy(this.names, at, s, e);
    }
    this.nameAt[n] = at;
  }

  /** Parse the two CSV files, reading each in 1 MiB pieces (the whole files are never in memory). */
  static fromFiles(ipv4Path: string, ipv6Path: string): AsnTable {
    const b = new Builder();
    let buf = Buffer.alloc(READ_CHUNK);
    for (const [path, v6] of [[ipv4Path, false], [ipv6Path, true]] as const) {
      const fd = openSync(path, 'r');
      try {
        let have = 0;
        for (;;) {
          if (have === buf.length) {
            const to = Buffer.alloc(buf.length * 2);
            buf.copy(to, 0, 0, have);
            buf = to;
          }
          const got = readSync(fd, buf, have, buf.length - have, null);
          have += got;
          const used = b.lines(buf, have, v6, got === 0);
          if (got === 0) break;
          buf.copy(buf, 0, used, have);
          have -= used;
        }
      } finally {
        closeSync(fd);
      }
    }
    return new AsnTable(b);
  }

  get ranges(): number {
    return this.v4n + this.v6n;
  }

  /** The ASN of an IPv4 address given as an unsigned 32-bit number. */
  lookupV4(ip: number): AsnHit | null {
    const v = this.v4;
    let lo = 0, hi = this.v4n - 1, at = -1;
    while (lo <= hi) {
      const mid = (lo + hi) >>> 1;
      if (v[mid * 3]! <= ip) { at = mid; lo = mid + 1; } else hi = mid - 1;
    }
    return at >= 0 && ip <= v[at * 3 + 1]! ? this.hit(v[at * 3 + 2]!) : null;
  }

  /** The ASN of an IPv6 address given as four unsigned 32-bit words, most significant first. */
  lookupV6(w0: number, w1: number, w2: number, w3: number): AsnHit | null {
    const v = this.v6;
    let lo = 0, hi = this.v6n - 1, at = -1;
    while (lo <= hi) {
      const mid = (lo + hi) >>> 1;
      if (cmp4(v, mid * 8, w0, w1, w2, w3) <= 0) { at = mid; lo = mid + 1; } else hi = mid - 1;
    }
    return at >= 0 && cmp4(v, at * 8 + 4, w0, w1, w2, w3) >= 0 ? this.hit(this.v6a[at]!) : null;
  }

  /** The organization name of an ASN ('' when the data has none). */
  nameOf(asn: number): string {
    const a = this.nameAsn;
    let lo = 0, hi = a.length - 1;
    while (lo <= hi) {
      const mid = (lo + hi) >>> 1, x = a[mid]!;
      if (x === asn) return this.nameAt[mid + 1]! > this.nameAt[mid]! ? orgText(this.names, this.nameAt[mid]!, this.nameAt[mid + 1]!) : '';
      if (x < asn) lo = mid + 1; else hi = mid - 1;
    }
    return '';
  }

  private hit(asn: number): AsnHit {
    return { asn, org: this.nameOf(asn) };
  }
}

/** Sign of (words v[o … o + 3]) − (w0, w1, w2, w3), both most significant first. */
function cmp4(v: Uint32Array, o: number, w0: number, w1: number, w2: number, w3: number): number {
  let d = v[o]! - w0;
  if (d !== 0) return d;
  d = v[o + 1]! - w1;
  if (d !== 0) return d;
  d = v[o + 2]! - w2;
  return d !== 0 ? d : v[o + 3]! - w3;
}
