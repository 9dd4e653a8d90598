// test-gate: shared (CPU only; see test/support/gate.ts)
/**
 * Fuzz: network.json text through its reader (lib/inputs/network.ts) and the validator
 * (lib/inputs/validate.ts). Cases are the example trees with random edits (keys set to values of
 * the wrong type, entries dropped or duplicated, subtrees replaced), random trees built from the
 * keys network.json uses, prototype-pollution keys, huge and out-of-range numbers, deep nesting,
 * and raw text edits. Every case must give issues or nodes (never an exception) within the time
 * bound; nodes without errors must satisfy the invariants the planner relies on.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseNetworkJson } from '../../lib/inputs/network.ts';
import { formatIssue, validateInputs } from '../../lib/inputs/validate.ts';
import type { InputIssue, NetworkNode } from '../../lib/model.ts';
import { deepJson, fc, fixture, fuzzParams, hugeNumberText, jsonLeaf, mutated, nastyText, prototypeKeys, Reach, timed, upstreamSeeds } from './support.ts';

/** JSON as text pieces, so that duplicate keys and numbers like 1e999 survive. */
type J = { k: 'obj'; entries: [string, J][] } | { k: 'arr'; items: J[] } | { k: 'raw'; text: string };

function fromValue(v: unknown): J {
  if (Array.isArray(v)) return { k: 'arr', items: v.map(fromValue) };
  if (v !== null && typeof v === 'object') return { k: 'obj', entries: Object.entries(v).map(([key, x]) => [key, fromValue(x)]) };
  return { k: 'raw', text: JSON.stringify(v) ?? 'null' };
}

function render(j: J, indent: boolean, depth = 0): string {
  const pad = indent ? '\n' + '  '.repeat(depth + 1) : '';
  const end = indent ? '\n' + '  '.repeat(depth) : '';
  if (j.k === 'raw') return j.text;
  if (j.k === 'arr') return j.items.length === 0 ? '[]' : `[${j.items.map((x) => pad + render(x, indent, depth + 1)).join(',')}${end}]`;
  if (j.entries.length === 0) return '{}';
  return `{${j.entries.map(([key, v]) => `${pad}${JSON.stringify(key)}: ${render(v, indent, depth + 1)}`).join(',')}${end}}`;
}

const FIXTURES = [fixture('conf/example/network.json'), ...upstreamSeeds('network.example.json', 'v1.4-network.example.json')].map((t) => fromValue(JSON.parse(t)));
const NAMES = ['Site_1', 'Site_2', 'AP_A', 'AP_9', 'PoP_5', 'Northfield', 'AP_West_1', 'Dundas_Township', 'olt-7', 'Generated_PN_1', ''];
const CSV = fixture('conf/example/ShapedDevices.csv');

const BW_KEYS = ['downloadBandwidthMbps', 'uploadBandwidthMbps', 'downloadBandwidthMbpsMin', 'uploadBandwidthMbpsMin'];
const NODE_KEYS = [...BW_KEYS, 'children', 'type', 'virtual', 'id', 'name', 'active_attachment_name', 'latitude', 'longitude', 'lat', 'lon', 'lng'];

const raw = (text: string): J => ({ k: 'raw', text });
const numberJ = fc.oneof(
  fc.integer({ min: -10, max: 100_000 }).map((n) => raw(String(n))),
  fc.double({ noNaN: true, noDefaultInfinity: true }).map((x) => raw(JSON.stringify(x))),
  hugeNumberText.filter((s) => /^-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?$/.test(s)).map(raw),
  fc.constantFrom('1e999', '-1e999', '1e-999', '0', '-0', '0.5', '1000', '300').map(raw),
);
const leafJ = fc.oneof(jsonLeaf.map(fromValue), numberJ, fc.constantFrom(NAMES).map((n) => raw(JSON.stringify(n))));

/** A value for `key`: usually the right kind, sometimes anything. */
function valueFor(key: string, node: fc.Arbitrary<J>, tree: fc.Arbitrary<J>): fc.Arbitrary<J> {
  let right: fc.Arbitrary<J>;
  if (BW_KEYS.includes(key)) right = numberJ;
  else if (key === 'children') right = tree;
  else if (key === 'type') right = fc.constantFrom('site', 'ap', 'virtual', 'Virtual', 'VIRTUAL', '').map((s) => raw(JSON.stringify(s)));
  else if (key === 'virtual') right = fc.boolean().map((b) => raw(String(b)));
  else if (key === 'id' || key === 'name' || key === 'active_attachment_name') right = fc.oneof(fc.constantFrom(...NAMES).map((s) => raw(JSON.stringify(s))), numberJ);
  else if (/^l(at|on|ng)/.test(key)) right = fc.oneof(numberJ, fc.constantFrom('"44.5"', '"x"', '" "', '91', '-181').map(raw));
  else right = leafJ;
  return fc.oneof({ weight: 5, arbitrary: right }, { weight: 1, arbitrary: fc.oneof(leafJ, node, fc.constant<J>({ k: 'arr', items: [] })) });
}

const { tree } = fc.letrec<{ tree: J; node: J }>((tie) => ({
  tree: fc
    .array(fc.tuple(fc.oneof({ weight: 4, arbitrary: fc.constantFrom(...NAMES) }, prototypeKeys, nastyText), tie('node')), { maxLength: 4, depthIdentifier: 'net' })
    .map((entries) => ({ k: 'obj', entries }) as J),
  node: fc
    .array(
      fc.oneof({ weight: 6, arbitrary: fc.constantFrom(...NODE_KEYS) }, prototypeKeys, nastyText).chain((key) => valueFor(key, tie('node'), tie('tree')).map((v) => [key, v] as [string, J])),
      { maxLength: 7, depthIdentifier: 'net' },
    )
    .map((entries) => ({ k: 'obj', entries }) as J),
}));

/** Every object of a tree in pre-order (the edit targets). */
function objects(j: J, out: Extract<J, { k: 'obj' }>[] = []): Extract<J, { k: 'obj' }>[] {
  if (j.k === 'obj') {
    out.push(j);
    for (const [, v] of j.entries) objects(v, out);
  } else if (j.k === 'arr') for (const x of j.items) objects(x, out);
  return out;
}

type TreeEdit = { target: number; op: 'set' | 'drop' | 'dup'; key: string; entry: number; value: J };
const treeEdit: fc.Arbitrary<TreeEdit> = fc
  .record({ target: fc.nat(), op: fc.constantFrom('set', 'set', 'drop', 'dup'), key: fc.oneof({ weight: 6, arbitrary: fc.constantFrom(...NODE_KEYS) }, prototypeKeys, nastyText), entry: fc.nat() })
  .chain((e) => valueFor(e.key, tree, tree).map((value) => ({ ...e, value }) as TreeEdit));

function editTree(base: J, edits: TreeEdit[]): J {
  const copy = fromValue(null);
  Object.assign(copy, structuredClone(base));
  for (const e of edits) {
    const objs = objects(copy);
    if (objs.length === 0) break;
    const o = objs[e.target % objs.length];
    if (e.op === 'set') o.entries.push([e.key, e.value]);
    else if (o.entries.length > 0 && e.op === 'drop') o.entries.splice(e.entry % o.entries.length, 1);
    else if (o.entries.length > 0) o.entries.push(o.entries[e.entry % o.entries.length]);
  }
  return copy;
}

/** A chain of `depth` nodes, each the only child of the one before. */
function chain(depth: number): string {
  let s = '{"downloadBandwidthMbps": 10, "uploadBandwidthMbps": 10}';
  for (let i = depth; i > 0; i--) s = `{"downloadBandwidthMbps": 100, "uploadBandwidthMbps": 100, "children": {"N${i}": ${s}}}`;
  return `{"N0": ${s}}`;
}

const networkText = mutated(
  fc.oneof(
    { weight: 5, arbitrary: fc.tuple(fc.nat(FIXTURES.length - 1), fc.array(treeEdit, { maxLength: 5 }), fc.boolean()).map(([f, edits, indent]) => render(editTree(FIXTURES[f], edits), indent)) },
    { weight: 4, arbitrary: fc.tuple(tree, fc.boolean()).map(([t, indent]) => render(t, indent)) },
    { weight: 1, arbitrary: fc.oneof(fc.integer({ min: 1, max: 400 }).map(chain), fc.tuple(fc.integer({ min: 1, max: 20_000 }), fc.constantFrom<'array' | 'object'>('array', 'object')).map(([d, k]) => deepJson(d, k))) },
    { weight: 1, arbitrary: fc.oneof(jsonLeaf.map((v) => JSON.stringify(v) ?? ''), fc.constantFrom('', ' ', '\uFEFF', '{', '}', '[]', 'null', '{"a":1,}', "{'a':1}", '{"a":{"b":1}', '{"__proto__": {"polluted": true}}')) },
  ),
);

const NETWORK_FILE = 'network.json';
const DEVICES_FILE = 'ShapedDevices.csv';

function checkIssues(issues: InputIssue[]): void {
  for (const i of issues) {
    assert.ok(i.severity === 'error' || i.severity === 'warning');
    assert.ok(typeof i.code === 'string' && i.code !== '');
    assert.ok(typeof i.message === 'string' && i.message.length > 10, `message ${i.message}`);
    assert.ok(i.line === undefined || (Number.isInteger(i.line) && i.line >= 1), `line ${i.line}`);
    assert.equal(typeof formatIssue(i), 'string');
  }
}

/** Nodes read without any network error: unique names, usable rates. */
function checkNodes(nodes: NetworkNode[], names = new Set<string>()): void {
  for (const n of nodes) {
    assert.ok(!names.has(n.name), `node name ${n.name} twice without an error`);
    names.add(n.name);
    for (const v of [n.downloadMbps, n.uploadMbps]) assert.ok(Number.isFinite(v) && v >= 0, `node ${n.name}: rate ${v}`);
    if (n.downloadMinMbps !== undefined && n.downloadMbps > 0) assert.ok(n.downloadMinMbps <= n.downloadMbps, `node ${n.name}: download min > max`);
    if (n.uploadMinMbps !== undefined && n.uploadMbps > 0) assert.ok(n.uploadMinMbps <= n.uploadMbps, `node ${n.name}: upload min > max`);
    assert.ok(Array.isArray(n.children));
    checkNodes(n.children, names);
  }
}

function checkNetwork(text: string): { ok: boolean; codes: InputIssue[] } {
  const r = timed('parseNetworkJson', () => parseNetworkJson(text, NETWORK_FILE));
  checkIssues(r.issues);
  const ok = !r.issues.some((i) => i.severity === 'error');
  if (ok) checkNodes(r.nodes);
  const v = timed('validateInputs', () => validateInputs({ devicesText: CSV, devicesFile: DEVICES_FILE, networkText: text, networkFile: NETWORK_FILE }));
  checkIssues(v.issues);
  assert.equal(v.ok, !v.issues.some((i) => i.severity === 'error'));
  assert.equal(({} as Record<string, unknown>).polluted, undefined, 'Object.prototype polluted');
  return { ok, codes: r.issues };
}

test('network.json: generated files give issues or nodes, never an exception', (t) => {
  const seen = new Reach();
  fc.assert(
    fc.property(networkText, (text) => {
      const r = checkNetwork(text);
      seen.count(r.ok, r.codes);
    }),
    fuzzParams(t),
  );
  seen.report(t, ['json-syntax', 'invalid-network', 'invalid-node', 'duplicate-node', 'invalid-bandwidth', 'min-above-max', 'invalid-children', 'invalid-field', 'duplicate-node-alias', 'missing-bandwidth', 'duplicate-key', 'invalid-coordinate']);
});

// Fixed cases: every crash or hang the fuzzer found stays a regression example here.
test('network.json: fixed regression cases', () => {
  const cases: string[] = [chain(300), deepJson(100_000, 'array'), deepJson(100_000, 'object')];
  for (const text of cases) checkNetwork(text);
});
