/**
 * Shared pieces of the fuzz tests (fast-check): how many cases and which seed, the per-case time
 * bound, and generators of the cell values, text mutations and JSON trees the targets share.
 *
 * FUZZ_RUNS (default 10,000 per target) and FUZZ_SEED (default DEFAULT_SEED) choose the run;
 * `npm run fuzz` sets FUZZ_RUNS=200000. A failure prints the seed and the shrunk counterexample,
 * so `FUZZ_SEED=<seed> scripts/run-tests test/fuzz/<file>` replays it.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import fc from 'fast-check';
import { test } from 'node:test';
import { needsUpstream, readUpstreamFixture, repoRoot } from '../support/paths.ts';

export { fc };

export const DEFAULT_SEED = 1414;

function envInt(name: string, fallback: number): number {
  const v = process.env[name];
  if (v === undefined || v.trim() === '') return fallback;
  const n = Number(v);
  if (!Number.isSafeInteger(n)) throw new Error(`${name} must be an integer, got ${JSON.stringify(v)}`);
  return n;
}

/** Cases per target (FUZZ_RUNS, default 10,000). */
export const FUZZ_RUNS = envInt('FUZZ_RUNS', 10_000);
/** The seed every target starts from (FUZZ_SEED, default DEFAULT_SEED). */
export const FUZZ_SEED = envInt('FUZZ_SEED', DEFAULT_SEED);

/** Cases for the targets that are costlier per case (real sockets): a tenth, at least 1,000 by default. */
export function scaledRuns(fraction: number, min = 0): number {
  return Math.max(min, Math.round(FUZZ_RUNS * fraction));
}

/** fast-check parameters for one target; `t.diagnostic` prints the seed so a run can be replayed. */
export function fuzzParams(t: { diagnostic(msg: string): void }, numRuns = FUZZ_RUNS): fc.Parameters<unknown> {
  t.diagnostic(`fast-check seed ${FUZZ_SEED}, ${numRuns} cases (FUZZ_SEED / FUZZ_RUNS to change)`);
  return { seed: FUZZ_SEED, numRuns, endOnFailure: false, verbose: 0 };
}

/**
 * Generous wall-clock bound of one synchronous parser call. Parsers are measured, not interrupted:
 * a case over the bound fails as a hang (catastrophic backtracking, quadratic loops).
 */
export const SYNC_BOUND_MS = 5_000;
/** Bound of one asynchronous case (a bus exchange, an HTTP request). */
export const ASYNC_BOUND_MS = 15_000;

/** Runs `fn` and fails when it took longer than `boundMs` (a hang), naming `what`. */
export function timed<T>(what: string, fn: () => T, boundMs = SYNC_BOUND_MS): T {
  const t0 = performance.now();
  const out = fn();
  const ms = performance.now() - t0;
  if (ms > boundMs) throw new Error(`${what} took ${Math.round(ms)} ms (bound ${boundMs} ms): a hang`);
  return out;
}

/** Rejects when `p` has not settled within `boundMs` (a hang). */
export async function withTimeout<T>(what: string, p: Promise<T>, boundMs = ASYNC_BOUND_MS): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} did not finish within ${boundMs} ms: a hang`)), boundMs);
  });
  try {
    return await Promise.race([p, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * An exception thrown from inside our code that is a bug rather than a typed error: TypeError,
 * RangeError (stack overflow), ReferenceError, SyntaxError from JSON.parse on our own output.
 */
export function describeThrown(e: unknown): string {
  if (e instanceof Error) return `${e.name}: ${e.message}\n${e.stack ?? ''}`;
  return `non-Error thrown: ${String(e)}`;
}

/**
 * How deep the generated cases got: valid results and the issue codes seen. `report` prints it and,
 * on a full-size run, fails when the generator stopped reaching valid results or one of the codes
 * (a generator that only produces garbage tests nothing beyond the first check).
 */
export class Reach {
  valid = 0;
  total = 0;
  readonly codes = new Map<string, number>();

  count(valid: boolean, issues: readonly { code: string }[] = []): void {
    this.total++;
    if (valid) this.valid++;
    for (const code of new Set(issues.map((i) => i.code))) this.codes.set(code, (this.codes.get(code) ?? 0) + 1);
  }

  report(t: { diagnostic(msg: string): void }, mustSee: readonly string[] = []): void {
    const top = [...this.codes].sort((a, b) => b[1] - a[1]).map(([c, n]) => `${c} ${n}`);
    t.diagnostic(`${this.valid} of ${this.total} cases valid; issue codes: ${top.join(', ') || 'none'}`);
    if (this.total < 5000) return;
    if (this.valid === 0) throw new Error('no generated case was valid: the generator no longer reaches the deep checks');
    const missing = mustSee.filter((c) => !this.codes.has(c));
    if (missing.length > 0) throw new Error(`the generator never produced ${missing.join(', ')}`);
  }
}

// ---------------------------------------------------------------------------------------------
// Fixtures

export function fixture(...parts: string[]): string {
  return readFileSync(join(repoRoot, ...parts), 'utf8');
}

/**
 * Upstream sample files (../shared) as extra seeds. Without ../shared they are left out and a
 * skipped test says so; the properties still run on the repository's own fixtures.
 */
export function upstreamSeeds(...names: string[]): string[] {
  const why = needsUpstream(...names);
  if (!why) return names.map(readUpstreamFixture);
  test(`upstream seed files ${names.join(', ')}`, { skip: `${why}; fuzzing from the repository's own fixtures only` }, () => {});
  return [];
}

// ---------------------------------------------------------------------------------------------
// Values

const octet = fc.integer({ min: 0, max: 255 });
export const ipv4 = fc.tuple(octet, octet, octet, octet).map((o) => o.join('.'));
export const ipv4Odd = fc.oneof(
  fc.constantFrom('256.1.1.1', '1.2.3', '1.2.3.4.5', '01.2.3.4', '1..2.3', '0x7f.0.0.1', '127.1', ' 100.64.0.1 ', '100.64.0.1/', '100.64.0.1/33', '100.64.0.1/-1', '100.64.0.0/24', '100.64.0.1/24', '0.0.0.0/0', '255.255.255.255/32', '100.64.0.1/0032', '::ffff:100.64.0.1', '100.64.0.1;100.64.0.2'),
  fc.tuple(ipv4, fc.integer({ min: -1, max: 40 })).map(([a, n]) => `${a}/${n}`),
);
const hextet = fc.integer({ min: 0, max: 0xffff }).map((n) => n.toString(16));
export const ipv6 = fc.oneof(
  fc.array(hextet, { minLength: 8, maxLength: 8 }).map((g) => g.join(':')),
  fc.tuple(fc.array(hextet, { maxLength: 4 }), fc.array(hextet, { maxLength: 3 })).map(([a, b]) => `${a.join(':')}::${b.join(':')}`),
  fc.tuple(fc.array(hextet, { minLength: 1, maxLength: 4 }), fc.integer({ min: 0, max: 130 })).map(([g, n]) => `${g.join(':')}::/${n}`),
  fc.constantFrom('::', '::1', '2001:db8::/56', 'fdd7:b724:0:100::/56', '2001:db8:::1', '2001:db8::1::2', ':::', '2001:db8::g', '::ffff:1.2.3.4', '2001:db8::/129', 'fe80::1%eth0', '2001:0db8:0000:0000:0000:0000:0000:0001/128'),
);
export const mac = fc.oneof(
  fc.array(fc.integer({ min: 0, max: 255 }).map((n) => n.toString(16).padStart(2, '0')), { minLength: 6, maxLength: 6 }).map((b) => b.join(':')),
  fc.constantFrom('', '02:00:00:00:00:01', 'zz:zz', '02-00-00-00-00-01', '0200.0000.0001', 'ff:ff:ff:ff:ff:ff:ff'),
);
export const hugeNumberText = fc.constantFrom('1e309', '-1e309', '1e308', '9007199254740993', '123456789012345678901234567890', '0.0000000000000000001', '5e-324', '1e-400', '-0', '0e0', '1E+2', '.5', '5.', '+5', '00012', '1_000');
export const rateText = fc.oneof(
  fc.integer({ min: -5, max: 100_000 }).map(String),
  fc.double({ noNaN: false }).map(String),
  fc.tuple(fc.float({ min: 0, max: 10_000, noNaN: true }), fc.integer({ min: 0, max: 4 })).map(([x, d]) => x.toFixed(d)),
  hugeNumberText,
  fc.constantFrom('', ' ', '0', '0.1', '0.09', '1,5', '100mbps', '100 Mbps', '1G', '1e3', 'NaN', 'Infinity', '-Infinity', '10 ', ' 10', '１００', '٣', 'null', 'true', '0x10', '1/2', '1e', 'e1'),
);
/** Text that stresses encodings, quoting and line handling. */
export const nastyText = fc.oneof(
  fc.string({ unit: 'binary', maxLength: 30 }),
  fc.string({ unit: 'grapheme', maxLength: 30 }),
  fc.constantFrom('', ' ', '"', '""', '"a"b', 'a"b', ',', ', ,', '\n', '\r', '\r\n', '\t', '#comment', '\u0000', '\uFEFF', '\uD800', '\uDFFF', 'é', 'Ä\u0308', '𝔘𝔫𝔦', '\u202Eevil', '=SUM(1)', 'none', 'None', 'NONE', '__proto__', 'constructor', 'prototype', 'toString', 'hasOwnProperty'),
  fc.integer({ min: 200, max: 5000 }).map((n) => 'x'.repeat(n)),
);

// ---------------------------------------------------------------------------------------------
// Text mutations

/** One edit of a text at a relative position (0..1). */
type Edit =
  | { kind: 'insert'; at: number; text: string }
  | { kind: 'delete'; at: number; len: number }
  | { kind: 'duplicate'; at: number; len: number }
  | { kind: 'truncate'; at: number }
  | { kind: 'swapLines'; a: number; b: number }
  | { kind: 'dropLine'; at: number }
  | { kind: 'dupLine'; at: number };

const position = fc.double({ min: 0, max: 1, noNaN: true, maxExcluded: true });
const editArb: fc.Arbitrary<Edit> = fc.oneof(
  fc.record({ kind: fc.constant('insert' as const), at: position, text: fc.oneof(nastyText, fc.constantFrom('{', '}', '[', ']', '"', ',', ':', '\n', '=', '[[', ']]', "'''", '"""', '\\', '\\u', '#')) }),
  fc.record({ kind: fc.constant('delete' as const), at: position, len: fc.integer({ min: 1, max: 40 }) }),
  fc.record({ kind: fc.constant('duplicate' as const), at: position, len: fc.integer({ min: 1, max: 200 }) }),
  fc.record({ kind: fc.constant('truncate' as const), at: position }),
  fc.record({ kind: fc.constant('swapLines' as const), a: position, b: position }),
  fc.record({ kind: fc.constant('dropLine' as const), at: position }),
  fc.record({ kind: fc.constant('dupLine' as const), at: position }),
);

function applyEdit(text: string, e: Edit): string {
  const pos = (r: number) => Math.floor(r * (text.length + 1));
  switch (e.kind) {
    case 'insert':
      return text.slice(0, pos(e.at)) + e.text + text.slice(pos(e.at));
    case 'delete':
      return text.slice(0, pos(e.at)) + text.slice(pos(e.at) + e.len);
    case 'duplicate': {
      const p = pos(e.at);
      return text.slice(0, p + e.len) + text.slice(p, p + e.len) + text.slice(p + e.len);
    }
    case 'truncate':
      return text.slice(0, pos(e.at));
    default: {
      const lines = text.split('\n');
      const li = (r: number) => Math.min(lines.length - 1, Math.floor(r * lines.length));
      if (e.kind === 'swapLines') {
        const [a, b] = [li(e.a), li(e.b)];
        [lines[a], lines[b]] = [lines[b], lines[a]];
      } else if (e.kind === 'dropLine') lines.splice(li(e.at), 1);
      else lines.splice(li(e.at), 0, lines[li(e.at)]);
      return lines.join('\n');
    }
  }
}

/** Whole-file changes: BOM, line endings, trailing newline. */
export interface Framing {
  bom: 'none' | 'utf8' | 'double';
  eol: 'lf' | 'crlf' | 'cr' | 'mixed';
  trailingNewline: boolean;
}
export const framingArb: fc.Arbitrary<Framing> = fc.record({
  bom: fc.oneof({ weight: 12, arbitrary: fc.constant('none' as const) }, { weight: 2, arbitrary: fc.constant('utf8' as const) }, { weight: 1, arbitrary: fc.constant('double' as const) }),
  eol: fc.oneof({ weight: 10, arbitrary: fc.constant('lf' as const) }, { weight: 4, arbitrary: fc.constant('crlf' as const) }, { weight: 1, arbitrary: fc.constantFrom('cr' as const, 'mixed' as const) }),
  trailingNewline: fc.boolean(),
});

export function frame(text: string, f: Framing): string {
  let t = text.replace(/\n+$/, '');
  if (f.trailingNewline) t += '\n';
  if (f.eol === 'crlf') t = t.replace(/\n/g, '\r\n');
  else if (f.eol === 'cr') t = t.replace(/\n/g, '\r');
  else if (f.eol === 'mixed') {
    let k = 0;
    t = t.replace(/\n/g, () => ['\n', '\r\n', '\r'][k++ % 3]);
  }
  if (f.bom === 'utf8') t = '\uFEFF' + t;
  else if (f.bom === 'double') t = '\uFEFF\uFEFF' + t;
  return t;
}

/** `text` with 0–3 random edits (most cases get none, so structure-aware generators reach deep code). */
export function mutated(text: fc.Arbitrary<string>): fc.Arbitrary<string> {
  return fc
    .tuple(text, fc.oneof({ weight: 3, arbitrary: fc.constant([] as Edit[]) }, { weight: 1, arbitrary: fc.array(editArb, { minLength: 1, maxLength: 3 }) }), framingArb)
    .map(([t, edits, f]) => frame(edits.reduce(applyEdit, t), f));
}

// ---------------------------------------------------------------------------------------------
// JSON

/** JSON-ish leaf values including the awkward ones. */
export const jsonLeaf: fc.Arbitrary<unknown> = fc.oneof(
  fc.integer(),
  fc.double(),
  fc.boolean(),
  fc.constant(null),
  nastyText,
  fc.constantFrom(0, -0, -1, 1e308, -1e308, Number.MAX_SAFE_INTEGER + 2, 5e-324, 0.1, 100, 1000),
);

/** Keys that JavaScript treats specially. */
export const prototypeKeys = fc.constantFrom('__proto__', 'constructor', 'prototype', 'toString', 'valueOf', 'hasOwnProperty', '__defineGetter__');

/** Text of a JSON array/object nested `depth` deep (parsers must refuse or handle it, not overflow). */
export function deepJson(depth: number, kind: 'array' | 'object'): string {
  return kind === 'array' ? '['.repeat(depth) + ']'.repeat(depth) : '{"a":'.repeat(depth) + '1' + '}'.repeat(depth);
}
