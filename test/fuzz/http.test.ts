// test-gate: shared (CPU only; see test/support/gate.ts)
/**
 * Fuzz: HTTP bodies to every mutating route of the web API (the Fastify app of buildWebApp, driven
 * with app.inject) with an admin session. Bodies are valid ones with fields set to the wrong type,
 * dropped, added or replaced by prototype-pollution keys; random circuits, networks and config
 * patches; broken JSON text, wrong content types, empty bodies and deep nesting. Every request must
 * end in a 2xx with a JSON body or a 4xx `{error, message}` — never a 500, never a hang.
 *
 * Safety: the API writes files. Config patches never set `lqos_directory` or `state_directory`
 * (nor remove them), so every write stays in this test's temp directory; each case checks that.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { loadConfig } from '../../lib/config/load.ts';
import { validateInputs } from '../../lib/inputs/validate.ts';
import { planConfigFromLqos } from '../../lib/plan/planConfig.ts';
import { configPatchJsonSchema } from '../../lib/web/configEdit.ts';
import { isMutatingRoute } from '../../lib/web/http.ts';
import { buildWebApp } from '../../lib/web/server.ts';
import { SESSION_COOKIE } from '../../lib/web/sessions.ts';
import { webConfig } from '../support/configs.ts';
import { fakeContext } from '../support/context.ts';
import { buildPlan } from '../support/plan.ts';
import { tempDir } from '../support/workspace.ts';
import { deepJson, fc, fixture, fuzzParams, ipv4, ipv4Odd, ipv6, jsonLeaf, mac, mutated, nastyText, prototypeKeys, Reach, withTimeout } from './support.ts';

const DEVICES = fixture('conf/example/ShapedDevices.csv');
const NETWORK = fixture('conf/example/network.json');
const ADMIN = { username: 'fuzz-root', password: 'fuzz-root-password-1' };
/** Keys whose values move the files the API writes: never set or removed by a generated patch. */
const PATH_KEYS = new Set(['lqos_directory', 'state_directory']);

// ---------------------------------------------------------------------------------------------
// Bodies

const nastyJson: fc.Arbitrary<unknown> = fc.oneof(
  { weight: 4, arbitrary: jsonLeaf },
  fc.array(jsonLeaf, { maxLength: 3 }),
  fc.dictionary(fc.oneof(nastyText, prototypeKeys), jsonLeaf, { maxKeys: 3 }),
);

/** Own keys set (also `__proto__`, as JSON.parse would create them) on a copy of `obj`. */
function withField(obj: Record<string, unknown>, key: string, value: unknown): Record<string, unknown> {
  const out = { ...obj };
  Object.defineProperty(out, key, { value, enumerable: true, configurable: true, writable: true });
  return out;
}

type Edit = { key: string; drop: boolean; value: unknown };
/** 0–3 edits of an object: a field set (to a fitting or a wrong value) or dropped. */
function edited(base: fc.Arbitrary<Record<string, unknown>>, keys: string[], fitting: (key: string) => fc.Arbitrary<unknown>): fc.Arbitrary<Record<string, unknown>> {
  const edit: fc.Arbitrary<Edit> = fc.oneof({ weight: 12, arbitrary: fc.constantFrom(...keys) }, prototypeKeys, nastyText).chain((key) =>
    fc.record({
      key: fc.constant(key),
      drop: fc.oneof({ weight: 4, arbitrary: fc.constant(false) }, { weight: 1, arbitrary: fc.constant(true) }),
      value: fc.oneof({ weight: 4, arbitrary: fitting(key) }, { weight: 1, arbitrary: nastyJson }),
    }),
  );
  return fc
    .tuple(base, fc.oneof({ weight: 2, arbitrary: fc.constant([] as Edit[]) }, { weight: 3, arbitrary: fc.array(edit, { minLength: 1, maxLength: 3 }) }))
    .map(([b, edits]) => {
      let o = b;
      for (const e of edits) {
        if (e.drop) {
          o = { ...o };
          delete o[e.key];
        } else o = withField(o, e.key, e.value);
      }
      return o;
    });
}

const EXAMPLE = validateInputs({ devicesText: DEVICES, devicesFile: 'ShapedDevices.csv', networkText: NETWORK, networkFile: 'network.json' });
const CIRCUITS = EXAMPLE.inputs.circuits.map(({ line: _l, devices, ...c }) => ({ ...c, devices: devices.map(({ line: _d, ...d }) => d) })) as unknown as Record<string, unknown>[];
const CIRCUIT_KEYS = ['id', 'name', 'parentNode', 'parentNodeId', 'anchorNodeId', 'downloadMinMbps', 'uploadMinMbps', 'downloadMaxMbps', 'uploadMaxMbps', 'sqm', 'comment', 'line', 'devices'];
const DEVICE_KEYS = ['id', 'name', 'mac', 'ipv4', 'ipv6', 'comment', 'line'];
const rate = fc.oneof(fc.double({ min: -10, max: 1e6, noNaN: true }), fc.constantFrom(0, 0.1, 0.05, 1e308, -1, 100));

const device = edited(fc.constantFrom(...CIRCUITS.flatMap((c) => c.devices as Record<string, unknown>[])), DEVICE_KEYS, (k) =>
  k === 'ipv4' ? fc.array(fc.oneof(ipv4, ipv4Odd), { maxLength: 3 }) : k === 'ipv6' ? fc.array(ipv6, { maxLength: 3 }) : k === 'mac' ? mac : k === 'line' ? fc.integer() : nastyText,
);
const circuit = edited(fc.constantFrom(...CIRCUITS), CIRCUIT_KEYS, (k) =>
  /Mbps$/.test(k)
    ? rate
    : k === 'devices'
      ? fc.array(device, { maxLength: 3 })
      : k === 'sqm'
        ? fc.record({ download: fc.constantFrom('cake', 'fq_codel', 'none', 'x') }, { requiredKeys: [] })
        : k === 'parentNode'
          ? fc.constantFrom('AP_West_1', 'Dundas', 'none', '', 'missing')
          : k === 'line'
            ? fc.integer()
            : fc.oneof(fc.constantFrom('1001', '1002', 'c9'), nastyText),
);
const shapedDevicesBody = fc.oneof(
  // The current circuits with a few of them edited and a few added (so the mass-removal guard lets most through)…
  {
    weight: 6,
    arbitrary: fc.tuple(fc.array(fc.tuple(fc.nat(CIRCUITS.length - 1), circuit), { maxLength: 3 }), fc.array(circuit, { maxLength: 3 })).map(([replace, extra]) => {
      const circuits = [...CIRCUITS];
      for (const [i, c] of replace) circuits[i] = c;
      return { circuits: [...circuits, ...extra] } as Record<string, unknown>;
    }),
  },
  // …or a new list.
  { weight: 2, arbitrary: fc.array(circuit, { maxLength: 8 }).map((circuits) => ({ circuits }) as Record<string, unknown>) },
  { weight: 1, arbitrary: edited(fc.constant({ circuits: CIRCUITS }), ['circuits'], () => fc.array(nastyJson, { maxLength: 3 })) },
);

const NODE_KEYS = ['downloadBandwidthMbps', 'uploadBandwidthMbps', 'downloadBandwidthMbpsMin', 'uploadBandwidthMbpsMin', 'children', 'type', 'virtual', 'id', 'name', 'latitude', 'longitude'];
const { nodes } = fc.letrec<{ nodes: Record<string, unknown>; node: Record<string, unknown> }>((tie) => ({
  nodes: fc.dictionary(fc.oneof({ weight: 4, arbitrary: fc.constantFrom('AP_West_1', 'Dundas', 'Site_1', 'AP_A') }, prototypeKeys, nastyText), tie('node'), { maxKeys: 3, depthIdentifier: 'http-net' }),
  node: edited(fc.constant({ downloadBandwidthMbps: 100, uploadBandwidthMbps: 50 }), NODE_KEYS, (k) =>
    k === 'children' ? tie('nodes') : /Mbps/.test(k) ? rate : k === 'virtual' ? fc.boolean() : k === 'type' ? fc.constantFrom('site', 'ap', 'virtual') : nastyText,
  ),
}));
const networkBody = fc.oneof(
  { weight: 4, arbitrary: fc.oneof(nodes, fc.constant(JSON.parse(NETWORK) as Record<string, unknown>)).map((network) => ({ network }) as Record<string, unknown>) },
  { weight: 1, arbitrary: edited(fc.constant({ network: {} }), ['network'], () => nastyJson) },
);

/** Config patches over the schema's sections and keys (never the directories, see above). */
const PATCH_SCHEMA = configPatchJsonSchema() as { properties: Record<string, { properties?: Record<string, unknown> }> };
const SECTIONS = Object.entries(PATCH_SCHEMA.properties).filter(([k]) => !PATH_KEYS.has(k));
const patchValue: fc.Arbitrary<unknown> = fc.oneof(
  { weight: 3, arbitrary: jsonLeaf },
  fc.constantFrom('eth0', 'eth1', 'shape', 'observe', 'cake diffserv4', 'fq_codel', 'set', 'not set', '', '1.5', 'No', 'https://other.example', '127.0.0.1:9123'),
  fc.integer({ min: -1, max: 100_000 }),
  fc.array(fc.oneof(fc.string(), fc.integer()), { maxLength: 3 }),
  fc.dictionary(fc.string(), jsonLeaf, { maxKeys: 2 }),
);
const patchEntry: fc.Arbitrary<[string, unknown]> = fc.constantFrom(...SECTIONS).chain(([key, sec]) => {
  const inner = sec.properties ? Object.keys(sec.properties) : [];
  if (inner.length === 0) return patchValue.map((v) => [key, v] as [string, unknown]);
  return fc
    .oneof(
      { weight: 8, arbitrary: fc.dictionary(fc.oneof({ weight: 6, arbitrary: fc.constantFrom(...inner) }, prototypeKeys), fc.oneof(patchValue, fc.constant(null)), { minKeys: 1, maxKeys: 3 }) },
      { weight: 1, arbitrary: fc.constantFrom<unknown>(null, 1, 'x', []) },
    )
    .map((v) => [key, v] as [string, unknown]);
});
const configBody = fc.array(patchEntry, { maxLength: 3 }).map((entries) => entries.reduce<Record<string, unknown>>((o, [k, v]) => withField(o, k, v), {}));

const username = fc.oneof(fc.constantFrom('viewer', 'admin', 'nobody', 'ab', 'a'.repeat(33), 'new.user-1', ''), nastyText);
const password = fc.oneof(fc.constantFrom('short', 'long-enough-1', 'x'.repeat(1025), ''), nastyText);
const role = fc.oneof(fc.constantFrom('admin', 'read_only', 'root'), nastyText);
const usersBody = edited(fc.record({ username, password, role }), ['username', 'password', 'role'], (k) => (k === 'username' ? username : k === 'password' ? password : role));

/** A body for `path` (unknown routes get generic JSON). */
function bodyFor(path: string): fc.Arbitrary<unknown> {
  if (path === '/api/shaped-devices') return shapedDevicesBody;
  if (path === '/api/network') return networkBody;
  if (path === '/api/config') return configBody;
  if (path === '/api/users' || path.startsWith('/api/auth/')) return usersBody;
  if (path.endsWith('/password')) return edited(fc.record({ password }), ['password'], () => password);
  if (path.endsWith('/role')) return edited(fc.record({ role }), ['role'], () => role);
  return nastyJson;
}

/** How the body goes on the wire. */
type Wire = { kind: 'json' } | { kind: 'text'; text: string } | { kind: 'type'; contentType: string } | { kind: 'empty' } | { kind: 'deep'; depth: number };
const wire: fc.Arbitrary<Wire> = fc.oneof(
  { weight: 20, arbitrary: fc.constant<Wire>({ kind: 'json' }) },
  { weight: 2, arbitrary: mutated(fc.constantFrom('{"circuits": []}', '{"network": {}}', '{"queues": {"dry_run": true}}', '{"__proto__": {"admin": true}}', '{"constructor": {"prototype": {"x": 1}}}')).map((text) => ({ kind: 'text' as const, text })) },
  { weight: 1, arbitrary: fc.constantFrom('text/plain', 'application/x-www-form-urlencoded', 'multipart/form-data; boundary=x', 'application/json; charset=latin1', 'application/json; charset=utf-16', '').map((contentType) => ({ kind: 'type' as const, contentType })) },
  { weight: 1, arbitrary: fc.constant<Wire>({ kind: 'empty' }) },
  { weight: 1, arbitrary: fc.integer({ min: 100, max: 200_000 }).map((depth) => ({ kind: 'deep' as const, depth })) },
);

const segment = fc.oneof(fc.constantFrom('viewer', 'admin', 'nobody', '1', '999', '..', '%2e%2e', '%00', 'x'.repeat(300)), nastyText.map((s) => encodeURIComponent(Buffer.from(s, 'utf8').toString('utf8'))));

// ---------------------------------------------------------------------------------------------
// The app

async function startApp() {
  const dir = tempDir('lqos-fuzz-web-');
  const configPath = join(dir, 'lqos.conf');
  writeFileSync(configPath, webConfig(dir));
  writeFileSync(join(dir, 'ShapedDevices.csv'), DEVICES);
  writeFileSync(join(dir, 'network.json'), NETWORK);
  let config = loadConfig({ path: configPath }).config;
  const { plan } = buildPlan({ devices: DEVICES, network: NETWORK }, { config: planConfigFromLqos(config, { download: 'eth1', upload: 'eth0', onAStick: false }, 2) });
  const ctx = fakeContext({
    configPath,
    config: () => config,
    reloadConfig: async () => {
      config = loadConfig({ path: configPath }).config;
    },
    appliedPlan: () => plan,
  });
  const built = await buildWebApp(ctx, { webRoot: join(dir, 'no-webui'), usersFile: join(dir, 'state', 'lqusers.toml') });
  await built.users.createFirstAdmin(ADMIN.username, ADMIN.password);
  await built.users.add('viewer', 'viewer-password-1', 'read_only');
  let cookie = '';
  return {
    ...built,
    dir,
    config: () => config,
    /** The admin session's cookie, a new session when the last one ended (logout, password change). */
    cookie: () => {
      if (!cookie || !built.sessions.get(cookie)) cookie = built.sessions.create(ADMIN.username).id;
      return `${SESSION_COOKIE}=${cookie}`;
    },
    close: async () => {
      await built.app.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

test('HTTP: generated bodies to every mutating route end in 2xx or a 4xx {error, message}, never a 500', async (t) => {
  const app = await startApp();
  t.after(() => app.close());
  const routes = app.routes.filter((r) => isMutatingRoute(r) && !r.websocket);
  assert.ok(routes.length >= 10, `mutating routes: ${routes.map((r) => `${r.method} ${r.path}`).join(', ')}`);
  t.diagnostic(`routes: ${routes.map((r) => `${r.method} ${r.path}`).join(', ')}`);
  const seen = new Reach();
  // Routes that hash or verify a password (argon2, ~0.15 s each) get fewer cases.
  const slow = (path: string) => path === '/api/users' || path.startsWith('/api/auth/') || path.endsWith('/password');
  const caseArb = fc
    .oneof(...routes.map((r) => ({ weight: slow(r.path) ? 1 : 10, arbitrary: fc.constant(r) })))
    .chain((route) => fc.record({ route: fc.constant(route), body: bodyFor(route.path), wire, params: fc.array(segment, { minLength: 2, maxLength: 2 }) }));
  await fc.assert(
    fc.asyncProperty(caseArb, async ({ route, body, wire: w, params }) => {
      let k = 0;
      const url = route.path.replace(/:[A-Za-z]+/g, () => params[k++] || 'x');
      const headers: Record<string, string> = { cookie: app.cookie(), host: 'localhost' };
      let payload: string | undefined;
      if (w.kind === 'json' || w.kind === 'type') payload = JSON.stringify(body) ?? 'null';
      else if (w.kind === 'text') payload = w.text;
      else if (w.kind === 'deep') payload = deepJson(w.depth, w.depth % 2 ? 'array' : 'object');
      if (payload !== undefined) headers['content-type'] = w.kind === 'type' ? w.contentType : 'application/json';
      if (w.kind === 'empty') headers['content-type'] = 'application/json';
      if (headers['content-type'] === '') delete headers['content-type'];
      const res = await withTimeout(`${route.method} ${url}`, app.app.inject({ method: route.method as 'POST', url, headers, payload }));
      const what = `${route.method} ${url} (${w.kind}) → ${res.statusCode} ${res.body.slice(0, 300)}`;
      assert.ok(res.statusCode < 500, what);
      const json = res.body === '' ? undefined : (JSON.parse(res.body) as Record<string, unknown>);
      if (res.statusCode >= 400) {
        assert.ok(json && typeof json.error === 'string' && typeof json.message === 'string' && json.message !== '', `not {error, message}: ${what}`);
      } else {
        assert.ok(res.statusCode >= 200 && res.statusCode < 300, what);
      }
      // Every write stayed in this test's directory.
      assert.equal(app.config().lqos_directory, app.dir, 'lqos_directory moved');
      assert.equal(({} as Record<string, unknown>).admin, undefined, 'Object.prototype polluted');
      seen.count(res.statusCode < 300, [{ code: `${route.method} ${route.path} ${res.statusCode}` }]);
    }),
    fuzzParams(t),
  );
  seen.report(t);
});
