// test-gate: shared (CPU only; see test/support/gate.ts)
/**
 * Fuzz: ShapedDevices.csv text through the reader (lib/inputs/shapedDevices.ts) and the validator
 * (lib/inputs/validate.ts). Cases are mutations of the example files: columns dropped, duplicated,
 * swapped, renamed or added; cells replaced by random addresses, prefixes, MACs, rates, unicode and
 * huge numbers; quoting broken; BOMs, CRLF/CR line ends, comments and blank lines; then a few raw
 * edits. Every case must return issues (never throw) within the time bound, and a result without
 * errors must satisfy the invariants the planner relies on.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parse as csvParse } from 'csv-parse/sync';
import { parseShapedDevices, SHAPED_DEVICES_COLUMNS } from '../../lib/inputs/shapedDevices.ts';
import { formatIssue, MIN_RATE_MBPS, validateInputs } from '../../lib/inputs/validate.ts';
import type { ValidationResult } from '../../lib/model.ts';
import { fc, fixture, fuzzParams, Reach, ipv4, ipv4Odd, ipv6, mac, mutated, nastyText, rateText, timed, upstreamSeeds } from './support.ts';

interface CsvFixture {
  header: string[];
  rows: string[][];
}

function readFixture(text: string): CsvFixture {
  const records = csvParse(text, { comment: '#', relax_column_count: true, skip_empty_lines: true }) as string[][];
  return { header: records[0], rows: records.slice(1) };
}

const FIXTURES = [fixture('conf/example/ShapedDevices.csv'), ...upstreamSeeds('ShapedDevices.example.csv', 'v1.4-ShapedDevices.example.csv')].map(readFixture);
const NETWORKS = [fixture('conf/example/network.json'), ...upstreamSeeds('network.example.json', 'v1.4-network.example.json'), '{}'];
const NODE_NAMES = [...new Set(NETWORKS.flatMap((n) => [...n.matchAll(/"([A-Za-z_][\w-]*)"\s*:\s*\{/g)].map((m) => m[1])))].filter((k) => k !== 'children');

const HEADER_SPELLINGS = SHAPED_DEVICES_COLUMNS.flatMap((c) => [c.header, c.header.toUpperCase(), c.header.replace(/ /g, '_'), ` ${c.header} `, ...c.aliases]);

/** A cell value suited to the column `header` (by its normalised name), or anything at all. */
function cellFor(header: string): fc.Arbitrary<string> {
  const h = header.toLowerCase().replace(/[^a-z0-9]/g, '');
  const list = (a: fc.Arbitrary<string>) =>
    fc.tuple(fc.array(a, { minLength: 0, maxLength: 4 }), fc.constantFrom(', ', ',', ' ', ';', ' , ')).map(([xs, sep]) => xs.join(sep));
  let specific: fc.Arbitrary<string>;
  if (h.startsWith('ipv4')) specific = list(fc.oneof(ipv4, ipv4Odd, ipv6));
  else if (h.startsWith('ipv6')) specific = list(fc.oneof(ipv6, ipv4));
  else if (h === 'mac') specific = mac;
  else if (/min|max/.test(h)) specific = rateText;
  else if (h === 'circuitid' || h === 'deviceid') specific = fc.constantFrom('1', '2', '1001', '1002', 'c1', '', ' ', 'x'.repeat(300), '1.0', '01');
  else if (h === 'parentnode') specific = fc.oneof(fc.constantFrom(...NODE_NAMES, 'none', 'None', '', 'Generated_PN_1', 'Generated_PN_0'), nastyText);
  else if (h === 'parentnodeid' || h === 'anchornodeid') specific = fc.constantFrom('', 'olt-7', 'Site_1', 'AP_A', '42', 'missing');
  else if (h === 'sqm') specific = fc.constantFrom('', 'cake', 'fq_codel', 'none', 'CAKE', 'cake/fq_codel', '/none', 'fq_codel/', '/', 'cake diffserv4', 'cake/cake/cake', ' cake / none ');
  else specific = nastyText;
  return fc.oneof({ weight: 4, arbitrary: specific }, { weight: 1, arbitrary: nastyText });
}

type Quoting = 'auto' | 'always' | 'never' | 'broken';

function quote(cell: string, q: Quoting): string {
  const needs = /[",\r\n#]/.test(cell) || cell.trim() !== cell;
  if (q === 'never') return cell;
  if (q === 'broken') return `"${cell}`;
  if (q === 'always' || needs) return `"${cell.replace(/"/g, '""')}"`;
  return cell;
}

/** Header operations on the column list (indices are taken modulo the current length). */
type HeaderOp = { op: 'drop' | 'dup' | 'swap' | 'rename' | 'add'; i: number; j: number; name: string };
const headerOp: fc.Arbitrary<HeaderOp> = fc.record({
  op: fc.constantFrom('drop', 'dup', 'swap', 'rename', 'add'),
  i: fc.nat(30),
  j: fc.nat(30),
  name: fc.oneof(fc.constantFrom(...HEADER_SPELLINGS, 'Extra', '', 'Comment', 'sqm'), nastyText),
});

/** One column of the generated file: its header text and the fixture column its cells come from. */
interface Col {
  header: string;
  source: number;
}

function applyHeaderOps(base: string[], ops: HeaderOp[]): Col[] {
  const cols: Col[] = base.map((header, source) => ({ header, source }));
  for (const o of ops) {
    if (cols.length === 0) {
      cols.push({ header: o.name, source: -1 });
      continue;
    }
    const i = o.i % cols.length;
    const j = o.j % cols.length;
    if (o.op === 'drop') cols.splice(i, 1);
    else if (o.op === 'dup') cols.splice(j, 0, { ...cols[i] });
    else if (o.op === 'swap') [cols[i], cols[j]] = [cols[j], cols[i]];
    else if (o.op === 'rename') cols[i] = { ...cols[i], header: o.name };
    else cols.splice(j, 0, { header: o.name, source: -1 });
  }
  return cols;
}

/** A generated row: a fixture row, cells replaced (by column position), maybe a field more or fewer. */
interface RowPlan {
  base: number;
  replace: { col: number; value: string }[];
  quoting: Quoting[];
  extraFields: -1 | 0 | 1;
  before: '' | '#' | 'blank';
}

const csvCase = fc
  .record({
    fixture: fc.nat(FIXTURES.length - 1),
    network: fc.nat(NETWORKS.length - 1),
    ops: fc.oneof({ weight: 6, arbitrary: fc.constant([] as HeaderOp[]) }, { weight: 1, arbitrary: fc.array(headerOp, { minLength: 1, maxLength: 4 }) }),
  })
  .chain(({ fixture: fx, network, ops }) => {
    const f = FIXTURES[fx];
    const cols = applyHeaderOps(f.header, ops);
    const quoting = fc.oneof({ weight: 10, arbitrary: fc.constant<Quoting>('auto') }, fc.constantFrom<Quoting>('always', 'never', 'broken'));
    const row: fc.Arbitrary<RowPlan> = fc.record({
      base: fc.nat(f.rows.length - 1),
      replace: fc.array(
        fc.nat(Math.max(0, cols.length - 1)).chain((c) => cellFor(cols[c]?.header ?? '').map((value) => ({ col: c, value }))),
        { maxLength: 4 },
      ),
      quoting: fc.oneof(
        { weight: 8, arbitrary: fc.constant([] as Quoting[]) },
        { weight: 1, arbitrary: fc.array(quoting, { minLength: cols.length, maxLength: cols.length }) },
      ),
      extraFields: fc.oneof({ weight: 15, arbitrary: fc.constant<0>(0) }, fc.constantFrom<-1 | 1>(-1, 1)),
      before: fc.oneof({ weight: 10, arbitrary: fc.constant<''>('') }, fc.constantFrom<'#' | 'blank'>('#', 'blank')),
    });
    return fc.record({ cols: fc.constant(cols), rows: fc.array(row, { maxLength: 25 }), network: fc.constant(NETWORKS[network]), fx: fc.constant(fx) });
  })
  .map(({ cols, rows, network, fx }) => {
    const f = FIXTURES[fx];
    const lines = [cols.map((c) => quote(c.header, 'auto')).join(',')];
    for (const r of rows) {
      if (r.before === '#') lines.push('# a comment, with "quotes"');
      if (r.before === 'blank') lines.push('   ');
      const cells = cols.map((c) => (c.source >= 0 ? (f.rows[r.base][c.source] ?? '') : ''));
      for (const { col, value } of r.replace) if (col < cells.length) cells[col] = value;
      if (r.extraFields === 1) cells.push('extra');
      if (r.extraFields === -1) cells.pop();
      lines.push(cells.map((cell, k) => quote(cell, r.quoting[k] ?? 'auto')).join(','));
    }
    return { csv: lines.join('\n') + '\n', network };
  });

const DEVICES_FILE = 'ShapedDevices.csv';
const NETWORK_FILE = 'network.json';

/** What every result must satisfy; a result without errors must also be shapeable. */
function checkResult(r: ValidationResult): void {
  assert.equal(r.ok, !r.issues.some((i) => i.severity === 'error'), 'ok ⇔ no error issue');
  for (const i of r.issues) {
    assert.ok(i.severity === 'error' || i.severity === 'warning', `severity ${i.severity}`);
    assert.ok(typeof i.code === 'string' && i.code !== '', 'issue code');
    assert.ok(i.file === DEVICES_FILE || i.file === NETWORK_FILE, `issue file ${i.file}`);
    assert.ok(typeof i.message === 'string' && i.message.length > 10, `issue message ${i.message}`);
    assert.ok(i.line === undefined || (Number.isInteger(i.line) && i.line >= 1), `issue line ${i.line}`);
    assert.equal(typeof formatIssue(i), 'string');
  }
  if (!r.ok) return;
  const ids = new Set<string>();
  const owners = new Map<string, string>();
  for (const c of r.inputs.circuits) {
    assert.ok(c.id !== '' && !ids.has(c.id), `circuit id "${c.id}" empty or repeated`);
    ids.add(c.id);
    for (const v of [c.downloadMinMbps, c.uploadMinMbps, c.downloadMaxMbps, c.uploadMaxMbps]) {
      assert.ok(Number.isFinite(v) && v >= MIN_RATE_MBPS, `circuit ${c.id}: rate ${v}`);
    }
    assert.ok(c.downloadMinMbps <= c.downloadMaxMbps, `circuit ${c.id}: download min ${c.downloadMinMbps} > max ${c.downloadMaxMbps}`);
    assert.ok(c.uploadMinMbps <= c.uploadMaxMbps, `circuit ${c.id}: upload min ${c.uploadMinMbps} > max ${c.uploadMaxMbps}`);
    for (const d of c.devices) {
      assert.ok(d.id !== '', `circuit ${c.id}: empty device id`);
      for (const p of [...d.ipv4, ...d.ipv6]) {
        assert.match(p, /\/\d{1,3}$/, `device ${d.id}: prefix ${p} without a length`);
        const owner = owners.get(p);
        assert.ok(owner === undefined || owner === d.id, `${p} on devices ${owner} and ${d.id} without an error`);
        owners.set(p, d.id);
      }
    }
  }
}

test(`ShapedDevices.csv: generated files give issues or a valid result, never an exception`, (t) => {
  const seen = new Reach();
  fc.assert(
    fc.property(mutated(csvCase.map((c) => c.csv)), fc.nat(NETWORKS.length - 1), (csv, n) => {
      const r = timed('validateInputs', () => validateInputs({ devicesText: csv, devicesFile: DEVICES_FILE, networkText: NETWORKS[n], networkFile: NETWORK_FILE }));
      checkResult(r);
      seen.count(r.ok, r.issues);
    }),
    fuzzParams(t),
  );
  seen.report(t, ['csv-syntax', 'missing-header', 'duplicate-header', 'field-count', 'invalid-ip', 'duplicate-ip', 'invalid-rate', 'min-above-max', 'invalid-sqm', 'unknown-parent']);
});

test('ShapedDevices.csv: the fast reader and csv-parse read the same rows', (t) => {
  fc.assert(
    // Real files are decoded from bytes, so they never hold lone surrogates (csv-parse reads bytes and would turn them into U+FFFD).
    fc.property(mutated(csvCase.map((c) => c.csv)).map((s) => Buffer.from(s, 'utf8').toString('utf8')), (csv) => {
      const fast = timed('parseShapedDevices', () => parseShapedDevices(csv, DEVICES_FILE));
      const reference = timed('parseShapedDevices (csv-parse)', () => parseShapedDevices(csv, DEVICES_FILE, { engine: 'csv-parse' }));
      const syntax = (p: typeof fast) => p.issues.some((i) => i.code === 'csv-syntax');
      if (syntax(fast) || syntax(reference)) return;
      assert.deepEqual(fast.rows, reference.rows);
    }),
    fuzzParams(t),
  );
});

// Fixed cases: every crash or hang the fuzzer found stays a regression example here.
test('ShapedDevices.csv: fixed regression cases', () => {
  const cases: string[] = [];
  for (const csv of cases) checkResult(validateInputs({ devicesText: csv, devicesFile: DEVICES_FILE, networkText: '{}', networkFile: NETWORK_FILE }));
});
