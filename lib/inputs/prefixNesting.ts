/**
 * Which ShapedDevices prefixes lie inside another one: the dataplane looks addresses up by longest
 * prefix, so an address inside a wider prefix of another circuit is shaped by its own circuit and only
 * the rest of the wider prefix by the wider one's. Pure: works on the duplicate-detection keys of
 * parseIPv4Prefix / parseIPv6Prefix (validate.ts IpParseResult):
 *   IPv4 host      the address as an int32;
 *   IPv4 network   `v4 a.b.c.d/len`;
 *   IPv6           nine UTF-16 units: the eight 16-bit groups, then the prefix length.
 *
 * Cost: one pass when no prefix is wider than a host or all have one length; otherwise one hash lookup
 * per prefix and per shorter length in use (most files use a handful of lengths).
 */
import { formatIPv4, formatIPv6, parseIPv4Number } from './ipPrefix.ts';

export interface NestedPrefix<T> {
  /** The narrower prefix (canonical text) and its owner. */
  inner: { prefix: string; owner: T };
  /** The narrowest prefix of another key that contains it. */
  outer: { prefix: string; owner: T };
}

interface V4 { addr: number; len: number; key: number | string }

const v4Mask = (len: number) => (len === 0 ? 0 : (0xffffffff << (32 - len)) >>> 0);
const v4Text = (p: V4) => `${formatIPv4(p.addr)}/${p.len}`;
const v6Text = (key: string) => `${formatIPv6(Array.from({ length: 8 }, (_, k) => key.charCodeAt(k)))}/${key.charCodeAt(8)}`;

/** `key`'s first `len` bits (the groups it keeps, the last one masked) as a lookup string. */
function v6Masked(key: string, len: number): string {
  const whole = len >> 4;
  const rest = len & 15;
  const head = key.slice(0, whole);
  return rest === 0 ? head : head + String.fromCharCode(key.charCodeAt(whole) & ((0xffff << (16 - rest)) & 0xffff));
}

/**
 * For one family: every entry inside a wider one, with the narrowest. `masked(e, len)` is e's first
 * `len` bits as a lookup key. Only lengths shorter than the longest in use get a lookup table, so a
 * file whose prefixes all have one length (every customer a /56, say) costs one pass and no table.
 */
function nestWithin<E>(entries: readonly E[], lenOf: (e: E) => number, masked: (e: E, len: number) => number | string): Array<[inner: E, outer: E]> {
  let maxLen = -1;
  for (const e of entries) maxLen = Math.max(maxLen, lenOf(e));
  const tables = new Map<number, Map<number | string, E>>();
  for (const e of entries) {
    const len = lenOf(e);
    if (len === maxLen) continue;
    let t = tables.get(len);
    if (!t) tables.set(len, (t = new Map()));
    t.set(masked(e, len), e);
  }
  if (tables.size === 0) return [];
  const lens = [...tables.keys()].sort((a, b) => b - a);
  const shortest = lens[lens.length - 1];
  const out: Array<[E, E]> = [];
  for (const e of entries) {
    const own = lenOf(e);
    if (own <= shortest) continue;
    for (const len of lens) {
      if (len >= own) continue;
      const outer = tables.get(len)!.get(masked(e, len));
      if (outer !== undefined) {
        out.push([e, outer]);
        break;
      }
    }
  }
  return out;
}

/** Every prefix (key of `owners`) that lies inside a wider one, with the narrowest such. */
export function nestedPrefixes<T>(owners: ReadonlyMap<number | string, T>): NestedPrefix<T>[] {
  // Which families have a prefix wider than a host at all: only those are gathered (IPv4 hosts are most keys).
  let v4Wide = false;
  let v6Wide = false;
  for (const key of owners.keys()) {
    if (typeof key === 'number') continue;
    if (key.startsWith('v4 ')) v4Wide = true;
    else if (key.charCodeAt(8) < 128) v6Wide = true;
    if (v4Wide && v6Wide) break;
  }
  const out: NestedPrefix<T>[] = [];
  if (v4Wide) {
    const v4: V4[] = [];
    for (const key of owners.keys()) {
      if (typeof key === 'number') v4.push({ addr: key >>> 0, len: 32, key });
      else if (key.startsWith('v4 ')) {
        const slash = key.indexOf('/');
        v4.push({ addr: parseIPv4Number(key, 3, slash), len: Number(key.slice(slash + 1)), key });
      }
    }
    for (const [inner, outer] of nestWithin(v4, (p) => p.len, (p, len) => (p.addr & v4Mask(len)) >>> 0)) {
      out.push({ inner: { prefix: v4Text(inner), owner: owners.get(inner.key)! }, outer: { prefix: v4Text(outer), owner: owners.get(outer.key)! } });
    }
  }
  if (v6Wide) {
    const v6: string[] = [];
    for (const key of owners.keys()) if (typeof key === 'string' && !key.startsWith('v4 ')) v6.push(key);
    for (const [inner, outer] of nestWithin(v6, (k) => k.charCodeAt(8), v6Masked)) {
      out.push({ inner: { prefix: v6Text(inner), owner: owners.get(inner)! }, outer: { prefix: v6Text(outer), owner: owners.get(outer)! } });
    }
  }
  return out;
}
