// test-gate: shared (CPU only; see test/support/gate.ts)
/**
 * Fuzz: lqos.conf text through the loader's pure entry (parseConfigText, lib/config/load.ts: TOML,
 * legacy spellings, unknown keys, the zod schema, fidelity warnings) and, for a config that loads,
 * the pure code every program runs on it next (interfaces, input/state paths, the plan settings,
 * the web listen address, MTU targets). Cases are the example configs with values replaced by
 * random TOML literals (wrong types, out-of-range and huge numbers, dates, arrays, inline tables,
 * broken literals), commented keys switched on, keys misspelt or added, sections dropped or
 * duplicated, and structural rewrites through a TOML writer. Every case must load or throw a
 * ConfigError whose message names the file, within the time bound.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parse as parseToml, stringify as stringifyToml } from 'smol-toml';
import { ConfigError, interfacesOf, parseConfigText, type LoadedConfig } from '../../lib/config/load.ts';
import { inputPaths, statePaths } from '../../lib/config/paths.ts';
import { stickVlans } from '../../lib/config/resolve.ts';
import { mtuTargets, tuningFingerprint } from '../../lib/kernel/hostTuning.ts';
import { planConfigFromLqos } from '../../lib/plan/planConfig.ts';
import { webListenAddress } from '../../lib/web/listen.ts';
import { describeThrown, fc, fixture, fuzzParams, hugeNumberText, mutated, nastyText, prototypeKeys, Reach, timed, upstreamSeeds } from './support.ts';

const CONFIG_PATH = '/etc/lqos.conf';
const TEXTS = [fixture('conf/lqos.conf.example'), ...upstreamSeeds('lqos.example.toml'), fixture('conf/example/lqos.conf')];
const KEY_LINE = /^(\s*#?\s*)([A-Za-z0-9_."-]+)(\s*=\s*)(.*)$/;

/** A TOML literal as text: valid ones of every type, edge values and broken ones. */
const tomlLiteral: fc.Arbitrary<string> = fc.oneof(
  fc.integer({ min: -100, max: 100_000 }).map(String),
  fc.double().map((x) => (Number.isNaN(x) ? 'nan' : x === Infinity ? 'inf' : x === -Infinity ? '-inf' : Number.isInteger(x) ? `${x}.0` : String(x))),
  fc.boolean().map(String),
  nastyText.map((s) => JSON.stringify(s)),
  hugeNumberText,
  fc.constantFrom(
    '""', "''", '"eth0"', '"/opt/libreqos/src"', '"relative/dir"', '"shape"', '"observe"', '"cake diffserv4"', '"fq_codel"', '"No"', '"1.5"',
    '9223372036854775807', '9223372036854775808', '-9223372036854775809', '0x7FFFFFFF', '0o777', '0b1010', '1_000', '1__0', '+inf', 'nan', '-0.0', '1e400',
    '1979-05-27T07:32:00Z', '1979-05-27', '07:32:00', '1979-05-27T07:32:00.999999', '[]', '[1, "two", 3.0]', '[[1], [2]]', '["gso", "tso"]', '{}', '{ a = 1 }',
    '{ to_internet = "eth0" }', '"""multi\nline"""', "'''raw'''", '"unterminated', '[1, 2', '{ a = 1', 'bare', '= 1', '"\\uD800"', '"\\x41"', 'true false',
  ),
);

const section = fc.constantFrom('bridge', 'single_interface', 'queues', 'tuning', 'web', 'safety', 'flows', 'ip_ranges', 'uisp_integration', 'splynx_integration', 'spylnx_integration', 'rtt_thresholds', 'treeguard', 'unknown_section', 'integration_common');

/** A line-level edit of the config text. */
type LineEdit =
  | { kind: 'value'; line: number; value: string }
  | { kind: 'uncomment'; line: number }
  | { kind: 'rename'; line: number; name: string }
  | { kind: 'insert'; line: number; text: string };

const lineEdit: fc.Arbitrary<LineEdit> = fc.oneof(
  { weight: 6, arbitrary: fc.record({ kind: fc.constant('value' as const), line: fc.nat(), value: tomlLiteral }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('uncomment' as const), line: fc.nat() }) },
  {
    weight: 1,
    arbitrary: fc.record({
      kind: fc.constant('rename' as const),
      line: fc.nat(),
      name: fc.oneof(fc.constantFrom('to_internt', 'downlink_bandwith_mbps', 'enable_spylnx', 'monitor_only', 'queue_mode', '"quoted key"', 'a.b.c', 'x'.repeat(5000), 'k'.repeat(200_000)), prototypeKeys),
    }),
  },
  {
    weight: 1,
    arbitrary: fc.record({
      kind: fc.constant('insert' as const),
      line: fc.nat(),
      text: fc.oneof(
        section.map((s) => `[${s}]`),
        section.map((s) => `[[${s}]]`),
        fc.tuple(fc.oneof(prototypeKeys, fc.constantFrom('mtu', 'interface', 'internet_vlan', 'network_vlan', 'monitor_only', 'enable_uisp')), tomlLiteral).map(([k, v]) => `${k} = ${v}`),
        fc.integer({ min: 1000, max: 100_000 }).map((n) => 'x'.repeat(n)),
        fc.constantFrom('[bridge.extra]', '[queues]', '[single_interface]\ninterface = "eth0"\ninternet_vlan = 2\nnetwork_vlan = 3', '[web]\nallowed_hosts = ["lqos.example"]'),
      ),
    }),
  },
);

function applyLineEdits(text: string, edits: LineEdit[]): string {
  const lines = text.split('\n');
  for (const e of edits) {
    const i = e.line % lines.length;
    const m = KEY_LINE.exec(lines[i]);
    if (e.kind === 'insert') lines.splice(i, 0, e.text);
    else if (!m) continue;
    else if (e.kind === 'value') lines[i] = `${m[1]}${m[2]}${m[3]}${e.value}`;
    else if (e.kind === 'uncomment') lines[i] = lines[i].replace(/^\s*#\s*/, '');
    else lines[i] = `${m[1]}${e.name}${m[3]}${m[4]}`;
  }
  return lines.join('\n');
}

/** Structural rewrites through the TOML writer: a table dropped, duplicated under another name or replaced by a scalar. */
type TreeEdit = { op: 'drop' | 'copy' | 'scalar' | 'nest'; from: number; to: string; value: unknown };
const treeEdit: fc.Arbitrary<TreeEdit> = fc.record({
  op: fc.constantFrom('drop', 'copy', 'scalar', 'nest'),
  from: fc.nat(),
  to: fc.oneof(section, prototypeKeys),
  value: fc.oneof(fc.integer(), fc.string(), fc.boolean(), fc.array(fc.integer(), { maxLength: 3 }), fc.constant(new Date(0))),
});

function applyTreeEdits(text: string, edits: TreeEdit[]): string {
  const doc = parseToml(text) as Record<string, unknown>;
  for (const e of edits) {
    const keys = Object.keys(doc);
    if (keys.length === 0) break;
    const k = keys[e.from % keys.length];
    if (e.op === 'drop') delete doc[k];
    else if (e.op === 'copy') Object.defineProperty(doc, e.to, { value: structuredClone(doc[k]), enumerable: true, configurable: true, writable: true });
    else if (e.op === 'scalar') doc[k] = e.value;
    else doc[k] = { [e.to]: doc[k] };
  }
  try {
    return stringifyToml(doc);
  } catch {
    return text;
  }
}

const configText = mutated(
  fc.oneof(
    { weight: 6, arbitrary: fc.tuple(fc.nat(TEXTS.length - 1), fc.array(lineEdit, { minLength: 1, maxLength: 6 })).map(([t, edits]) => applyLineEdits(TEXTS[t], edits)) },
    { weight: 2, arbitrary: fc.tuple(fc.nat(TEXTS.length - 1), fc.array(treeEdit, { minLength: 1, maxLength: 3 })).map(([t, edits]) => applyTreeEdits(TEXTS[t], edits)) },
    { weight: 1, arbitrary: fc.nat(TEXTS.length - 1).map((t) => TEXTS[t]) },
  ),
);

/** The pure code that runs on a loaded config next; none of it may throw. */
function useConfig(loaded: LoadedConfig): void {
  const { config } = loaded;
  assert.ok(Array.isArray(loaded.warnings) && loaded.warnings.every((w) => typeof w === 'string'));
  const ifaces = interfacesOf(config);
  if (ifaces) planConfigFromLqos(config, ifaces, 1 + (config.queues.override_available_queues ?? 0));
  stickVlans(config);
  inputPaths(config);
  statePaths(config.state_directory);
  webListenAddress(config);
  mtuTargets(config);
  tuningFingerprint(config);
}

/** Loads `text`; true when it loaded. Anything thrown other than a ConfigError naming the file fails. */
function load(text: string, requireInterfaces: boolean): boolean {
  let loaded: LoadedConfig;
  try {
    loaded = timed('parseConfigText', () => parseConfigText(text, CONFIG_PATH, { requireInterfaces }));
  } catch (e) {
    if (!(e instanceof ConfigError)) assert.fail(`parseConfigText threw something other than a ConfigError: ${describeThrown(e)}`);
    assert.ok(e.message.includes(CONFIG_PATH), `error does not name the file: ${e.message}`);
    assert.ok(Array.isArray(e.details));
    return false;
  }
  useConfig(loaded);
  return true;
}

test('lqos.conf: generated files load or give a ConfigError naming the file, never another exception', (t) => {
  const seen = new Reach();
  fc.assert(
    fc.property(configText, fc.boolean(), (text, requireInterfaces) => {
      seen.count(load(text, requireInterfaces));
    }),
    fuzzParams(t),
  );
  seen.report(t);
});

// Fixed cases: every crash or hang the fuzzer found stays a regression example here.
test('lqos.conf: fixed regression cases', () => {
  const example = TEXTS[0];
  const cases: string[] = [
    // A 200,000-character unknown key: the "did you mean" hint built a key × key edit-distance table
    // per known key (seconds, hundreds of MB); candidates whose length differs by 3+ are now skipped.
    example.replace('node_name =', `${'x'.repeat(200_000)} =`),
    `${'y'.repeat(200_000)} = 1\n${example}`,
  ];
  for (const text of cases) assert.equal(load(text, true), true);
  // A TOML syntax error on a 100,000-character line: hiding secret values in the error's source
  // lines retried the key pattern from every position of the line (16 s); now linear.
  const broken = [`a = 1\n${'x'.repeat(100_000)}\n`, `${example}\n${'token'.repeat(20_000)}\n`];
  for (const text of broken) assert.equal(load(text, true), false);
});
