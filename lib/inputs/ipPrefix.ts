/**
 * ShapedDevices address entries, parsed by hand (strict dotted-quad IPv4, RFC 4291 IPv6) and
 * canonicalised with an explicit prefix length (RFC 5952 text for IPv6): ipaddr.js costs ~2 µs per IPv6
 * address and accepts non-standard IPv4 forms (octal/hex/short), so it is only used as a cross-check
 * in tests. Each parsed prefix carries a key for duplicate detection (IpParseResult).
 */
/** Strict dotted-quad IPv4 in s[from, to): 0–255 per octet, no leading zeros. Returns uint32 or -1. */
export function parseIPv4Number(s: string, from = 0, to = s.length): number {
  let value = 0;
  let octets = 0;
  let i = from;
  while (octets < 4) {
    const start = i;
    let o = 0;
    while (i < to) {
      const c = s.charCodeAt(i);
      if (c < 48 || c > 57) break;
      o = o * 10 + (c - 48);
      i++;
    }
    const len = i - start;
    if (len === 0 || len > 3 || o > 255 || (len > 1 && s.charCodeAt(start) === 48)) return -1;
    value = value * 256 + o;
    octets++;
    if (octets < 4) {
      if (i >= to || s.charCodeAt(i) !== 46) return -1;
      i++;
    }
  }
  return i === to ? value : -1;
}

export function formatIPv4(v: number): string {
  return `${(v >>> 24) & 255}.${(v >>> 16) & 255}.${(v >>> 8) & 255}.${v & 255}`;
}

function hexVal(c: number): number {
  if (c >= 48 && c <= 57) return c - 48;
  if (c >= 97 && c <= 102) return c - 87;
  if (c >= 65 && c <= 70) return c - 55;
  return -1;
}

/**
 * Parse an IPv6 address (no prefix, no zone) into `g` (8 groups). Returns false when invalid.
 * Allocation-free: called for every IPv6 entry of ShapedDevices.csv.
 */
function parseIPv6Into(s: string, g: Uint16Array | number[]): boolean {
  const n = s.length;
  if (n < 2 || n > 45) return false;
  let count = 0;
  let dbl = -1;
  let i = 0;
  if (s.charCodeAt(0) === 58) {
    if (s.charCodeAt(1) !== 58) return false;
    dbl = 0;
    i = 2;
  }
  while (i < n) {
    let j = i;
    let v = 0;
    while (j < n) {
      const h = hexVal(s.charCodeAt(j));
      if (h < 0) break;
      v = v * 16 + h;
      j++;
    }
    if (j < n && s.charCodeAt(j) === 46) {
      // Embedded dotted IPv4 as the last 32 bits.
      if (count > 6) return false;
      const v4 = parseIPv4Number(s, i, n);
      if (v4 < 0) return false;
      g[count++] = Math.floor(v4 / 65536);
      g[count++] = v4 & 0xffff;
      break;
    }
    const len = j - i;
    if (len === 0 || len > 4 || count >= 8) return false;
    g[count++] = v;
    if (j === n) break;
    if (s.charCodeAt(j) !== 58) return false;
    if (s.charCodeAt(j + 1) === 58) {
      if (dbl >= 0) return false;
      dbl = count;
      j += 2;
    } else {
      j += 1;
      if (j === n) return false;
    }
    i = j;
  }
  if (dbl < 0) return count === 8;
  if (count > 7) return false;
  const tail = count - dbl;
  for (let k = tail - 1; k >= 0; k--) g[8 - tail + k] = g[dbl + k];
  for (let k = dbl; k < 8 - tail; k++) g[k] = 0;
  return true;
}

/** Parse an IPv6 address (no prefix, no zone) into 8 groups, or null. */
export function parseIPv6Groups(s: string): number[] | null {
  const g = [0, 0, 0, 0, 0, 0, 0, 0];
  return parseIPv6Into(s, g) ? g : null;
}

const HEX16: string[] = new Array<string>(65536).fill('');
function hex16(v: number): string {
  let h = HEX16[v];
  if (h === '') {
    h = v.toString(16);
    HEX16[v] = h;
  }
  return h;
}

/** RFC 5952 text: lower-case, no leading zeros, the longest (first) run of ≥2 zero groups as `::`. */
export function formatIPv6(g: ArrayLike<number>): string {
  let bestStart = -1;
  let bestLen = 1;
  for (let i = 0; i < 8; ) {
    if (g[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && g[j] === 0) j++;
    if (j - i > bestLen) {
      bestStart = i;
      bestLen = j - i;
    }
    i = j;
  }
  let out = '';
  for (let i = 0; i < 8; i++) {
    if (i === bestStart) {
      out += '::';
      i += bestLen - 1;
      continue;
    }
    if (i > 0 && i !== bestStart + bestLen) out += ':';
    out += hex16(g[i]);
  }
  return out;
}

/** '/0' … '/128', shared. */
const SUFFIX: string[] = Array.from({ length: 129 }, (_, k) => `/${k}`);

/** Scratch groups for parseIPv6Prefix (single-threaded, never escapes). */
const G6 = new Uint16Array(8);

function parsePrefixLen(s: string, max: number): number {
  if (s.length === 0 || s.length > 3) return -1;
  let v = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 48 || c > 57) return -1;
    v = v * 10 + (c - 48);
  }
  return v <= max ? v : -1;
}

export type IpParseResult =
  /** `key` identifies the prefix for duplicate detection (a number for IPv4, the prefix for IPv6). */
  | { ok: true; prefix: string; key: number | string }
  | { ok: false; code: string; message: string };

const LEADING_ZERO_RE = /(?:^|\.)0\d/;
const V4_EXAMPLE = 'e.g. 100.64.0.1 or 100.64.0.0/24';
const V6_EXAMPLE = 'e.g. 2001:db8::1 or 2001:db8:0:100::/56';

/** Validate and canonicalise one IPv4 address/CIDR entry (`1.2.3.4` → `1.2.3.4/32`). */
export function parseIPv4Prefix(entry: string): IpParseResult {
  const slash = entry.indexOf('/');
  const addr = slash < 0 ? entry : entry.slice(0, slash);
  if (addr.indexOf(':') >= 0) {
    if (parseIPv6Into(addr, G6)) {
      return { ok: false, code: 'ipv6-in-ipv4-column', message: 'this is an IPv6 address; move it to the IPv6 column' };
    }
    return { ok: false, code: 'invalid-ip', message: `not a valid IPv4 address or CIDR (${V4_EXAMPLE})` };
  }
  const v = parseIPv4Number(addr);
  if (v < 0) {
    const hint = LEADING_ZERO_RE.test(addr) ? '; octets must not have leading zeros' : '';
    return { ok: false, code: 'invalid-ip', message: `not a valid IPv4 address or CIDR (${V4_EXAMPLE})${hint}` };
  }
  let len = 32;
  if (slash >= 0) {
    len = parsePrefixLen(entry.slice(slash + 1), 32);
    if (len < 0) return { ok: false, code: 'invalid-ip', message: `invalid prefix length; use /0 to /32 (${V4_EXAMPLE})` };
  }
  if (len < 32) {
    const host = v % 2 ** (32 - len);
    if (host !== 0) {
      return {
        ok: false,
        code: 'host-bits-set',
        message: `CIDR has host bits set; use ${formatIPv4(v - host)}/${len} (or ${addr}/32 for the single host)`,
      };
    }
  }
  const prefix = addr + SUFFIX[len];
  // Hosts (the common case) get an int32 key (a small integer for V8's Map hashing); networks use the text.
  return { ok: true, prefix, key: len === 32 ? v | 0 : `v4 ${prefix}` };
}

/** Validate and canonicalise one IPv6 address/CIDR entry (`2001:DB8::1` → `2001:db8::1/128`). */
export function parseIPv6Prefix(entry: string): IpParseResult {
  const slash = entry.indexOf('/');
  const addr = slash < 0 ? entry : entry.slice(0, slash);
  if (addr.indexOf(':') < 0 && parseIPv4Number(addr) >= 0) {
    return { ok: false, code: 'ipv4-in-ipv6-column', message: 'this is an IPv4 address; move it to the IPv4 column' };
  }
  if (addr.indexOf('%') >= 0) {
    return { ok: false, code: 'invalid-ip', message: `zone ids (%…) are not allowed; write the address only (${V6_EXAMPLE})` };
  }
  const g = G6;
  if (!parseIPv6Into(addr, g)) return { ok: false, code: 'invalid-ip', message: `not a valid IPv6 address or CIDR (${V6_EXAMPLE})` };
  let len = 128;
  if (slash >= 0) {
    len = parsePrefixLen(entry.slice(slash + 1), 128);
    if (len < 0) return { ok: false, code: 'invalid-ip', message: `invalid prefix length; use /0 to /128 (${V6_EXAMPLE})` };
  }
  if (g[0] === 0 && g[1] === 0 && g[2] === 0 && g[3] === 0 && g[4] === 0 && g[5] === 0xffff) {
    const v4 = formatIPv4(g[6] * 65536 + g[7]);
    return {
      ok: false,
      code: 'ipv4-mapped-ipv6',
      message: `this is an IPv4-mapped IPv6 address; put ${v4} in the IPv4 column instead`,
    };
  }
  if (len < 128) {
    let hostBits = false;
    for (let k = 0; k < 8; k++) {
      const keep = len - k * 16;
      if (keep >= 16) continue;
      const mask = keep <= 0 ? 0 : (0xffff << (16 - keep)) & 0xffff;
      if ((g[k] & ~mask & 0xffff) !== 0) {
        hostBits = true;
        break;
      }
    }
    if (hostBits) {
      const net = Array.from(g);
      for (let k = 0; k < 8; k++) {
        const keep = Math.max(0, Math.min(16, len - k * 16));
        net[k] &= keep === 0 ? 0 : (0xffff << (16 - keep)) & 0xffff;
      }
      return {
        ok: false,
        code: 'host-bits-set',
        message: `CIDR has host bits set; use ${formatIPv6(net)}/${len} (or ${formatIPv6(g)}/128 for the single host)`,
      };
    }
  }
  // Key: a flat 9-character string (cheap to hash); IPv4 keys are numbers or longer strings.
  const key = String.fromCharCode(g[0], g[1], g[2], g[3], g[4], g[5], g[6], g[7], len);
  return { ok: true, prefix: formatIPv6(g) + SUFFIX[len], key };
}
