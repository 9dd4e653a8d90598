// test-gate: shared (CPU only; see test/support/gate.ts)
/** The web UI's search ranking (webui/src/lib/search.ts): what Enter opens is the hit the operator meant. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { CircuitInfo, TreeNode } from '../../lib/api/index.ts';
import { containsLength, parseAddress, searchPlan } from '../../webui/src/lib/search.ts';

const circuit = (id: string, name: string, ipv4: string[], ipv6: string[] = [], devices: Partial<CircuitInfo['devices'][number]>[] = []) =>
  ({ id, name, parent: 'Site/AP', ipv4, ipv6, devices: devices.map((d) => ({ id: 'd', name: '', mac: '', ...d })) }) as unknown as CircuitInfo;

const CIRCUITS = [
  circuit('c-123', 'Owner of .123', ['100.64.0.123/32']),
  circuit('c-12', 'Owner of .12', ['100.64.0.12/32']),
  circuit('c-net', 'Business /29', ['100.64.1.8/29'], ['2001:db8:20::/56']),
  circuit('c-host6', 'Inside the /56', [], ['2001:db8:20::5/128']),
  circuit('c-10', 'Alice', ['100.64.9.10/32'], [], [{ id: 'dev-1', name: 'Alice router', mac: '02:00:00:00:00:01' }]),
];
const NODES = [{ name: 'Alice', path: 'Alice' } as TreeNode];

const first = (q: string) => searchPlan(CIRCUITS, NODES, q)[0];

test('an exact address beats a longer address that starts with it', () => {
  assert.equal(first('100.64.0.12')?.circuit?.id, 'c-12');
  assert.equal(first('100.64.0.123')?.circuit?.id, 'c-123');
  // A prefix of both lists both, in plan order.
  assert.deepEqual(searchPlan(CIRCUITS, NODES, '100.64.0.1').map((h) => h.circuit?.id), ['c-123', 'c-12']);
});

test('an address inside a routed prefix finds its circuit; the longest prefix first', () => {
  assert.equal(first('100.64.1.13')?.circuit?.id, 'c-net', 'IPv4 /29');
  assert.equal(first('2001:db8:20:0:ffff::1')?.circuit?.id, 'c-net', 'IPv6 /56');
  assert.deepEqual(searchPlan(CIRCUITS, NODES, '2001:db8:20::5').map((h) => h.circuit?.id), ['c-host6', 'c-net'], 'a /128 beats the /56 around it');
  assert.equal(searchPlan(CIRCUITS, NODES, '100.64.1.16').length, 0, 'just outside the /29');
});

test('exact names, ids and MACs before prefixes and substrings; sites too', () => {
  const hits = searchPlan(CIRCUITS, NODES, 'alice');
  assert.deepEqual(hits.map((h) => h.key), ['c:c-10', 's:Alice', 'd:c-10:dev-1'], 'exact circuit and site names, then the device whose name starts with it');
  assert.equal(first('02:00:00:00:00:01')?.kind, 'Device');
});

test('address parsing and containment', () => {
  assert.deepEqual(parseAddress('10.1.2.3')!.toByteArray(), [10, 1, 2, 3]);
  assert.equal(parseAddress('10.1.2.256'), null);
  assert.equal(parseAddress('2001:db8::1')?.toByteArray().length, 16);
  assert.equal(parseAddress('2001:db8::1::2'), null);
  assert.equal(parseAddress('alice'), null);
  assert.equal(containsLength('10.0.0.0/8', parseAddress('10.9.9.9')!), 8);
  assert.equal(containsLength('10.0.0.0/8', parseAddress('11.0.0.1')!), -1);
  assert.equal(containsLength('2001:db8::/32', parseAddress('10.0.0.1')!), -1, 'families differ');
});
