// test-gate: shared (CPU only; see test/support/gate.ts)
/**
 * Key fidelity table (lib/config/fidelity.ts): every key of upstream's v2.2 example lqos.conf and every
 * key of our schema is either honoured (and a test file proves it), behaves the same as asked at the
 * stated value, or is warned about once — with what lqos-ts does instead — when set to a value that
 * would make upstream behave differently.
 */
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { parse as parseToml, stringify as stringifyToml } from 'smol-toml';
import { describeConfig } from '../../lib/config/describe.ts';
import { FIDELITY, type Fidelity } from '../../lib/config/fidelity.ts';
import { loadConfig, parseConfigText } from '../../lib/config/load.ts';
import { needsUpstream, repoRoot, upstreamFixturePath } from '../support/paths.ts';

const upstreamExample = upstreamFixturePath('lqos.example.toml');
const ourExample = join(repoRoot, 'conf/lqos.conf.example');
const sharedMissing = needsUpstream('lqos.example.toml');
const BRIDGE = { bridge: { to_internet: 'eth0', to_network: 'eth1' } };

type Table = Record<string, unknown>;
const isTable = (v: unknown): v is Table => typeof v === 'object' && v !== null && !Array.isArray(v) && !(v instanceof Date);

/** Key paths of every leaf (non-table value) of a TOML document. */
function leafKeys(t: Table, prefix = ''): string[] {
  return Object.entries(t).flatMap(([k, v]) => (isTable(v) ? leafKeys(v, `${prefix}${k}.`) : [`${prefix}${k}`]));
}

const schemaKeys = describeConfig(() => false).map((d) => d.key);
const camel = (s: string) => s.replace(/_([a-z])/g, (_m, c: string) => c.toUpperCase());

/** A config file: [bridge] + the trigger's other keys + the key itself at `value`. */
function configWith(key: string, value: unknown, extra?: string): string {
  const doc: Table = { ...structuredClone(BRIDGE), ...(extra ? (parseToml(extra) as Table) : {}) };
  const parts = key.split('.');
  let cur = doc;
  for (const p of parts.slice(0, -1)) cur = (cur[p] ??= {}) as Table;
  cur[parts.at(-1)!] = value;
  return stringifyToml(doc);
}

/** Warnings that name `key` (the loader starts each fidelity warning with the key path). */
const naming = (warnings: string[], key: string) => warnings.filter((w) => w.startsWith(`${key} in `));

function checkEntry(key: string, f: Fidelity): void {
  if (f.kind === 'honoured') {
    const proof = join(repoRoot, f.proof);
    assert.ok(existsSync(proof), `${key}: proof ${f.proof} does not exist`);
    const text = readFileSync(proof, 'utf8');
    const last = key.split('.').at(-1)!;
    assert.ok(text.includes(last) || text.includes(camel(last)), `${key}: proof ${f.proof} never mentions ${last}`);
    return;
  }
  // Without the trigger (a plain [bridge] file) nothing is said about the key.
  assert.deepEqual(naming(parseConfigText(stringifyToml(BRIDGE), 'plain.conf').warnings, key), [], `${key}: warned in a default config`);
  if (f.kind === 'same') {
    const { warnings } = parseConfigText(configWith(key, f.example), 'same.conf');
    assert.deepEqual(naming(warnings, key), [], `${key} = ${JSON.stringify(f.example)} is the same as upstream and must not warn`);
    assert.ok(f.holds(f.example), `${key}: the stated value must be one where lqos-ts behaves the same`);
    assert.ok(f.reason.length > 10, `${key}: say why it is the same`);
    if (!f.trigger) return;
  }
  const trigger = f.trigger!;
  const file = '/etc/lqos.conf';
  const { warnings } = parseConfigText(configWith(key, trigger.value, trigger.with), file);
  const mine = naming(warnings, key);
  assert.equal(mine.length, 1, `${key} = ${JSON.stringify(trigger.value)}: expected exactly one warning naming it, got ${JSON.stringify(warnings)}`);
  assert.equal(mine[0], `${key} in ${file}: ${f.kind === 'ignored' ? f.instead : f.instead}`);
  assert.ok(mine[0].length > `${key} in ${file}: `.length + 20, `${key}: the warning must say what happens instead`);
}

test('every key of our schema has a fidelity entry, and the registry names no unknown key', () => {
  const missing = schemaKeys.filter((k) => !(k in FIDELITY));
  assert.deepEqual(missing, [], 'schema keys without a fidelity entry');
  const stale = Object.keys(FIDELITY).filter((k) => !schemaKeys.includes(k));
  assert.deepEqual(stale, [], 'fidelity entries for keys the schema does not have');
});

/** Checks every key and reports all failures at once. */
function checkAll(keys: string[]): void {
  const problems: string[] = [];
  for (const key of keys) {
    try {
      checkEntry(key, FIDELITY[key]);
    } catch (err) {
      problems.push((err as Error).message.split('\n')[0]);
    }
  }
  assert.deepEqual(problems, []);
}

test('every key of our schema: honoured with proof, same at the stated value, or warned once', () => {
  checkAll(schemaKeys);
});

test('every leaf key of the upstream v2.2 example has a fidelity entry', { skip: sharedMissing }, () => {
  const raw = parseToml(readFileSync(upstreamExample, 'utf8')) as Table;
  const keys = leafKeys(raw);
  assert.ok(keys.length > 100, `only ${keys.length} keys found in ${upstreamExample}`);
  assert.deepEqual(keys.filter((k) => !(k in FIDELITY)), [], 'upstream keys without a fidelity entry');
  checkAll(keys);
});

test('loading the upstream example gives no fidelity warning', { skip: sharedMissing }, () => {
  const { warnings } = loadConfig({ path: upstreamExample });
  assert.deepEqual(warnings, []);
});

test('loading conf/lqos.conf.example gives no warning at all', () => {
  assert.deepEqual(loadConfig({ path: ourExample }).warnings, []);
});

test('an upstream config using unimplemented features gets one warning per key, each saying what happens instead', () => {
  const text = `${stringifyToml(BRIDGE)}
[queues]
lazy_queues = "Full"
lazy_expire_seconds = 120
sudo = true
[long_term_stats]
gather_stats = true
license_key = "abcd"
[stormguard]
enabled = true
all_sites = true
[sonar_integration]
enable_sonar = true
`;
  const { warnings } = parseConfigText(text, '/etc/lqos.conf');
  assert.deepEqual(warnings.map((w) => w.split(' ')[0]), [
    'queues.sudo',
    'long_term_stats.gather_stats',
    'long_term_stats.license_key',
    'stormguard.enabled',
    'stormguard.all_sites',
  ]);
  // Lazy queues are implemented (lib/shaping/lazyQueues.ts): lazy_queues = "Full" is not warned about.
  assert.equal(warnings.find((w) => w.startsWith('queues.lazy')), undefined);
  // NetFlow and InfluxDB export are implemented (lib/flows/netflow, lib/telemetry/influx): not warned about.
  assert.equal(parseConfigText(`${stringifyToml(BRIDGE)}\n[influxdb]\nenable_influxdb = true\nurl = "http://influx:8086"\n[flows]\nnetflow_enabled = true\nnetflow_version = 10\n`, 'x.conf').warnings.length, 0);
  // SNMP AP discovery is implemented: the default community "public" with Sonar on is not warned about.
  assert.equal(warnings.find((w) => w.startsWith('sonar_integration.')), undefined);
});

test('a parameter of a feature that is off is not warned about, even when set', () => {
  const text = `${stringifyToml(BRIDGE)}
[stormguard]
enabled = false
strategy = "delay_probe_active"
increase_multiplier = 1.5
[flows]
netflow_enabled = false
netflow_port = 2055
[queues]
lazy_queues = "No"
lazy_expire_seconds = 5
`;
  assert.deepEqual(parseConfigText(text, 'x.conf').warnings, []);
});
