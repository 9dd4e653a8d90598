// test-gate: shared (CPU only; see test/support/gate.ts)
/**
 * Prefixes inside another circuit's wider prefix (lib/inputs/prefixNesting.ts and the validator's
 * `nested-prefixes` / `catch-all-prefix` warnings): found with the narrowest container, across IPv4
 * and IPv6 and lengths that are not multiples of 8 or 16; one circuit's own prefixes are not reported;
 * checked against a brute-force search on random prefixes.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { nestedPrefixes } from '../../lib/inputs/prefixNesting.ts';
import { parseIPv4Prefix, parseIPv6Prefix } from '../../lib/inputs/ipPrefix.ts';
import { formatIssue, validateInputs } from '../../lib/inputs/validate.ts';
import type { InputIssue } from '../../lib/model.ts';
import { BASE_ROWS, csvLine, DEVICES_FILE, HEADER_16, NETWORK_FILE } from '../fixtures/bad-inputs.ts';

/** ShapedDevices.csv with one row per [circuit, IPv4 cell, IPv6 cell] (line = index + 2), flat network. */
function validateRows(rows: Array<[circuit: string, ipv4: string, ipv6?: string]>) {
  const lines = rows.map(([c, ipv4, ipv6 = ''], i) => csvLine({ ...BASE_ROWS[0], circuitId: c, circuitName: c, deviceId: `d${i}`, deviceName: `dev ${i}`, mac: '', parentNode: '', ipv4, ipv6 }));
  return validateInputs({ devicesText: [HEADER_16.join(','), ...lines].join('\n') + '\n', devicesFile: DEVICES_FILE, networkText: '{}', networkFile: NETWORK_FILE });
}
const about = (issues: InputIssue[], code: string) => issues.filter((i) => i.code === code);

/** Owners map as the validator builds it: parse keys → the entry's text. */
function owners(entries: string[]): Map<number | string, string> {
  const m = new Map<number | string, string>();
  for (const e of entries) {
    const r = e.includes(':') ? parseIPv6Prefix(e) : parseIPv4Prefix(e);
    assert.ok(r.ok, `${e}: ${!r.ok && r.message}`);
    m.set(r.key, r.prefix);
  }
  return m;
}
const pairs = (entries: string[]) => nestedPrefixes(owners(entries)).map((n) => `${n.inner.prefix} in ${n.outer.prefix}`).sort();

test('an address of another circuit inside a wider prefix is warned about once, at the wider prefix, naming both lines', () => {
  const r = validateRows([
    ['pool', '10.0.0.0/22'],
    ['alice', '10.0.1.5'],
    ['bob', '10.0.3.255'],
    ['carol', '10.0.4.0'], // just outside the /22
  ]);
  assert.equal(r.ok, true, 'a warning, not an error: the longest prefix wins and that is well defined');
  const w = about(r.issues, 'nested-prefixes');
  assert.equal(w.length, 1, r.issues.map(formatIssue).join('\n'));
  assert.equal(w[0].severity, 'warning');
  assert.equal(w[0].line, 2);
  assert.equal(w[0].column, 'IPv4');
  assert.equal(w[0].value, '10.0.0.0/22');
  assert.equal(w[0].relatedLine, 3);
  assert.match(w[0].message, /^10\.0\.0\.0\/22 of circuit "pool" contains 2 addresses of other circuits \(10\.0\.1\.5\/32 of "alice" on line 3, 10\.0\.3\.255\/32 of "bob" on line 4\): addresses are looked up by longest prefix/);
  assert.ok(!w[0].message.includes('carol'));
});

test('one circuit\'s own prefixes inside each other are not reported; nothing without wider prefixes', () => {
  const r = validateRows([
    ['alice', '10.0.0.0/24,10.0.0.7'],
    ['alice', '10.0.0.9'], // a second device of the same circuit
    ['bob', '10.0.1.1', '2001:db8::1'],
  ]);
  assert.deepEqual(about(r.issues, 'nested-prefixes'), []);
  assert.deepEqual(pairs(['10.0.0.1', '10.0.0.2', '2001:db8::1', '2001:db8::2']), []);
});

test('the narrowest container is named: a /32 inside a /24 inside a /16 belongs to the /24', () => {
  assert.deepEqual(pairs(['10.0.0.0/16', '10.0.5.0/24', '10.0.5.9', '10.0.6.1']), [
    '10.0.5.0/24 in 10.0.0.0/16',
    '10.0.5.9/32 in 10.0.5.0/24',
    '10.0.6.1/32 in 10.0.0.0/16',
  ]);
  // The same network address at two lengths, and lengths that are not multiples of 8.
  assert.deepEqual(pairs(['10.0.0.0/24', '10.0.0.0/25', '10.0.0.128/26', '10.0.2.0/23']), [
    '10.0.0.0/25 in 10.0.0.0/24',
    '10.0.0.128/26 in 10.0.0.0/24',
  ]);
  assert.deepEqual(pairs(['10.0.0.0/23', '10.0.1.255', '10.0.2.0']), ['10.0.1.255/32 in 10.0.0.0/23']);
});

test('IPv6: delegations inside a wider prefix, also at lengths that split a 16-bit group', () => {
  assert.deepEqual(pairs(['2001:db8::/48', '2001:db8:0:100::/56', '2001:db8:1::/56', '2001:db8:0:100::5']), [
    '2001:db8:0:100::/56 in 2001:db8::/48',
    '2001:db8:0:100::5/128 in 2001:db8:0:100::/56',
  ]);
  // /33 keeps one bit of the third group: 0xffff has it, 0x7fff does not.
  assert.deepEqual(pairs(['2001:db8:8000::/33', '2001:db8:ffff::/48', '2001:db8:7fff::/48']), ['2001:db8:ffff::/48 in 2001:db8:8000::/33']);
  const r = validateRows([['pool', '', '2001:db8::/48'], ['alice', '', '2001:db8:0:100::/56']]);
  const w = about(r.issues, 'nested-prefixes');
  assert.equal(w.length, 1);
  assert.equal(w[0].column, 'IPv6');
  assert.equal(w[0].value, '2001:db8::/48');
});

test('a /0 is a catch-all: warned about on its own (IPv4 and IPv6), and as holding the other circuits', () => {
  const r = validateRows([['everything', '0.0.0.0/0', '::/0'], ['alice', '10.0.0.1', '2001:db8::1']]);
  assert.equal(r.ok, true);
  const c = about(r.issues, 'catch-all-prefix');
  assert.deepEqual(c.map((i) => [i.line, i.column, i.value]), [[2, 'IPv4', '0.0.0.0/0'], [2, 'IPv6', '::/0']]);
  assert.match(c[0].message, /puts every address that no other circuit has into circuit "everything"/);
  assert.deepEqual(about(r.issues, 'nested-prefixes').map((i) => i.value), ['0.0.0.0/0', '::/0']);
});

test('many addresses inside one prefix: one warning naming the first three and how many more', () => {
  const rows: Array<[string, string]> = [['pool', '100.64.0.0/16']];
  for (let i = 1; i <= 250; i++) rows.push([`c${i}`, `100.64.${i >> 4}.${i}`]);
  const w = about(validateRows(rows).issues, 'nested-prefixes');
  assert.equal(w.length, 1);
  assert.match(w[0].message, /contains 250 addresses of other circuits \(100\.64\.0\.1\/32 of "c1" on line 3, 100\.64\.0\.2\/32 of "c2" on line 4, 100\.64\.0\.3\/32 of "c3" on line 5, and 247 more\)/);
});

test('agrees with a brute-force search on random IPv4 and IPv6 prefixes', () => {
  let seed = 12345;
  const rnd = (n: number) => ((seed = (seed * 1103515245 + 12345) & 0x7fffffff) >>> 4) % n;
  for (let round = 0; round < 40; round++) {
    const v4: Array<{ addr: number; len: number }> = [];
    const v6: Array<{ addr: bigint; len: number }> = [];
    for (let i = 0; i < 60; i++) {
      // A small space (10.0.0.0/20, 2001:db8::/116) so that nesting is common.
      const len4 = 20 + rnd(13);
      const a4 = (0x0a000000 + rnd(1 << 12)) & (len4 === 0 ? 0 : (0xffffffff << (32 - len4)) >>> 0);
      v4.push({ addr: a4 >>> 0, len: len4 });
      const len6 = 112 + rnd(17);
      const a6 = (0x20010db8n << 96n) + BigInt(rnd(1 << 16));
      v6.push({ addr: a6 & (((1n << 128n) - 1n) ^ ((1n << BigInt(128 - len6)) - 1n)), len: len6 });
    }
    const t4 = (p: { addr: number; len: number }) => `${[24, 16, 8, 0].map((s) => (p.addr >>> s) & 255).join('.')}/${p.len}`;
    const t6 = (p: { addr: bigint; len: number }) => `${Array.from({ length: 8 }, (_, k) => ((p.addr >> BigInt(112 - 16 * k)) & 0xffffn).toString(16)).join(':')}/${p.len}`;
    const uniq4 = [...new Map(v4.map((p) => [t4(p), p])).values()];
    const uniq6 = [...new Map(v6.map((p) => [t6(p), p])).values()];
    const expected: string[] = [];
    const canon = (t: string) => (t.includes(':') ? parseIPv6Prefix(t) : parseIPv4Prefix(t)) as { prefix: string };
    for (const p of uniq4) {
      const outer = uniq4.filter((o) => o.len < p.len && ((p.addr ^ o.addr) >>> 0) >>> (32 - o.len) === 0 || (o.len === 0 && p.len > 0)).sort((a, b) => b.len - a.len)[0];
      if (outer) expected.push(`${canon(t4(p)).prefix} in ${canon(t4(outer)).prefix}`);
    }
    for (const p of uniq6) {
      const outer = uniq6.filter((o) => o.len < p.len && (p.addr ^ o.addr) >> BigInt(128 - o.len) === 0n).sort((a, b) => b.len - a.len)[0];
      if (outer) expected.push(`${canon(t6(p)).prefix} in ${canon(t6(outer)).prefix}`);
    }
    assert.ok(expected.length > 0, 'the random prefixes nest');
    assert.deepEqual(pairs([...uniq4.map(t4), ...uniq6.map(t6)]), expected.sort(), `round ${round}`);
  }
});
