// test-gate: shared (CPU only; see test/support/gate.ts)
/** lib/config/tomlPatch.ts: lqos.conf saved as the operator wrote it, only the changed keys rewritten. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parse } from 'smol-toml';
import { patchTomlText } from '../../lib/config/tomlPatch.ts';

const CONF = `# lqos.conf of POP 3 — edited by hand
lqos_directory = "/opt/libreqos/src"   # inputs live here

[bridge]
# the two NICs
to_internet = "eth0"
to_network  = "eth1"   # customer side

[queues]
default_sqm = "cake diffserv4"
monitor_only = false
exclude = [
  "a#b",   # a hash inside a string
  'c',
]

# integrations below
[uisp_integration]
enable_uisp = false
token = "x"
`;

type T = Record<string, any>;
const edit = (fn: (d: T) => void) => {
  const d = structuredClone(parse(CONF)) as T;
  fn(d);
  return d;
};

test('a changed value is rewritten on its own line; comments, spacing and order elsewhere stay', () => {
  const after = edit((d) => {
    d.bridge.to_network = 'eth2';
    d.queues.monitor_only = true;
  });
  assert.equal(patchTomlText(CONF, after), CONF.replace('to_network  = "eth1"   # customer side', 'to_network  = "eth2"   # customer side').replace('monitor_only = false', 'monitor_only = true'));
});

test('a multi-line array is replaced whole; a removed key loses its line; a new key goes to the end of its table', () => {
  const after = edit((d) => {
    d.queues.exclude = ['z'];
    delete d.uisp_integration.token;
    d.bridge.use_xdp_bridge = true;
  });
  const out = patchTomlText(CONF, after)!;
  assert.ok(out, 'patched');
  assert.match(out, /^exclude = \[ "z" \]$/m);
  assert.doesNotMatch(out, /token = "x"/);
  assert.match(out, /to_network {2}= "eth1" {3}# customer side\nuse_xdp_bridge = true\n\n\[queues\]/);
  assert.match(out, /# integrations below/);
  assert.deepEqual(JSON.parse(JSON.stringify(parse(out))), JSON.parse(JSON.stringify(after)));
});

test('a new table is appended at the end; a top-level key is added after the last top-level key', () => {
  const after = edit((d) => {
    d.flows = { flow_timeout_seconds: 10 };
    d.node_name = 'pop-3';
  });
  const out = patchTomlText(CONF, after)!;
  assert.match(out, /^lqos_directory = "\/opt\/libreqos\/src" {3}# inputs live here\nnode_name = "pop-3"\n/m);
  assert.ok(out.endsWith('token = "x"\n\n[flows]\nflow_timeout_seconds = 10\n'), out);
});

test('what it cannot do in place (an edit of an array of tables, deeper tables) is left to the caller', () => {
  assert.equal(patchTomlText('[[routers]]\nname = "a"\n', { routers: [{ name: 'b' }] }), undefined);
  assert.equal(patchTomlText('[a]\nx = 1\n', { a: { b: { c: { d: 1 } } } }), undefined);
});

test('an array of tables elsewhere in the file stays as it is while other keys change in place (comments kept)', () => {
  const text = `# mine\nnode_name = "a" # the POP\n[uisp_integration]\nenable_uisp = true # since March\n\n[[uisp_integration.exception_cpes]]\ncpe = "x" # barn\nparent = "AP_1"\n\n[web]\nport = 9123\n`;
  const doc = parse(text) as Record<string, any>;
  const out = patchTomlText(text, { ...doc, node_name: 'b', uisp_integration: { ...doc.uisp_integration, enable_uisp: false }, web: { port: 9200 } });
  assert.equal(out, text.replace('node_name = "a"', 'node_name = "b"').replace('enable_uisp = true', 'enable_uisp = false').replace('port = 9123', 'port = 9200'));
  // A key added to the table that owns the array goes before the [[…]] blocks.
  const added = patchTomlText(text, { ...doc, uisp_integration: { ...doc.uisp_integration, token: 't' } });
  assert.ok(added !== undefined, 'written in place');
  assert.deepEqual(plain(parse(added)), plain({ ...doc, uisp_integration: { ...doc.uisp_integration, token: 't' } }));
  assert.match(added!, /enable_uisp = true # since March\ntoken = "t"\n\n\[\[uisp_integration\.exception_cpes\]\]\ncpe = "x" # barn/);
});

const INTEGRATIONS = `# lqos.conf — integrations
[uisp_integration]
enable_uisp = true   # on since March
exception_cpes = []  # CPEs wired to another site

# Sonar billing
[sonar_integration]
enable_sonar = false
recurring_service_rates = [] # none yet
`;
const plain = (v: unknown) => JSON.parse(JSON.stringify(v));

test('a list of tables is written inline in place (not as [[...]] blocks); comments stay', () => {
  const after = structuredClone(parse(INTEGRATIONS)) as T;
  after.uisp_integration.exception_cpes = [{ cpe: 'a', parent: 'b' }, { cpe: 'cpe 2', parent: 'AP-1' }];
  after.sonar_integration.recurring_service_rates = [{ service_name: 'Business 100', download_mbps: 100, upload_mbps: 20, enabled: true }];
  const out = patchTomlText(INTEGRATIONS, after);
  assert.ok(out, 'patched in place');
  assert.equal(
    out,
    INTEGRATIONS.replace('exception_cpes = []  #', 'exception_cpes = [ { cpe = "a", parent = "b" }, { cpe = "cpe 2", parent = "AP-1" } ]  #').replace(
      'recurring_service_rates = [] #',
      'recurring_service_rates = [ { service_name = "Business 100", download_mbps = 100, upload_mbps = 20, enabled = true } ] #',
    ),
  );
  assert.doesNotMatch(out, /\[\[/);
  assert.deepEqual(plain(parse(out)), plain(after));
});

test('a list of tables set back to empty, a new one added to its section, nested tables inline', () => {
  const start = INTEGRATIONS.replace('exception_cpes = []', 'exception_cpes = [\n  { cpe = "a", parent = "b" },  # the old one\n]');
  const after = structuredClone(parse(start)) as T;
  after.uisp_integration.exception_cpes = [];
  after.sonar_integration.extra = [{ name: 'x', limits: { down: 1, up: 2 }, tags: ['p', 'q'] }, {}];
  const out = patchTomlText(start, after)!;
  assert.ok(out, 'patched in place');
  assert.match(out, /^exception_cpes = \[\] {2}# CPEs wired to another site\n\n# Sonar billing$/m);
  assert.doesNotMatch(out, /the old one/);
  assert.match(out, /^recurring_service_rates = \[\] # none yet\nextra = \[ \{ name = "x", limits = \{ down = 1, up = 2 \}, tags = \[ "p", "q" \] \}, \{\} \]\n$/m);
  assert.match(out, /# Sonar billing/);
  assert.deepEqual(plain(parse(out)), plain(after));
});

test('strings and keys needing escapes survive the round trip', () => {
  const after = structuredClone(parse(INTEGRATIONS)) as T;
  const tricky = 'quote " backslash \\ tab \t newline \n hash # brace } bracket ] del \x7f ünï';
  after.uisp_integration.exception_cpes = [{ cpe: tricky, parent: "it's" }];
  after.sonar_integration.recurring_service_rates = [{ 'odd key = "x"': tricky, 'ü': 1 }];
  const out = patchTomlText(INTEGRATIONS, after)!;
  assert.ok(out, 'patched in place');
  assert.equal(out.split('\n').length, INTEGRATIONS.split('\n').length, 'each value on its own single line');
  assert.match(out, /# CPEs wired to another site/);
  assert.deepEqual(plain(parse(out).uisp_integration), { enable_uisp: true, exception_cpes: [{ cpe: tricky, parent: "it's" }] });
  assert.deepEqual(plain(parse(out)), plain(after));
});

test('a list holding a null is not written in place (left to the caller)', () => {
  const after = structuredClone(parse(INTEGRATIONS)) as T;
  after.uisp_integration.exception_cpes = [{ cpe: 'a', parent: null }];
  assert.equal(patchTomlText(INTEGRATIONS, after), undefined);
});
