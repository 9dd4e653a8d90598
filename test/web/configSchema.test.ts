// test-gate: shared (CPU only; see test/support/gate.ts)
/**
 * GET /api/config/schema: the config schema's description of every lqos.conf key, which the web UI's
 * configuration forms are built from. Every key a form names must be described: a key the server
 * does not know would silently drop out of its form.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { mock, test } from 'node:test';
import * as api from '../../lib/api/auth.ts';
import type { ConfigKeyDescription, ConfigSchemaPayload } from '../../lib/api/config.ts';
import { describeConfig } from '../../lib/config/describe.ts';
import { FIDELITY, fidelityOf } from '../../lib/config/fidelity.ts';
import { isSecretKey, KNOWN_CONFIG_SECRETS } from '../../lib/web/redact.ts';
import * as users from '../../lib/web/users.ts';
import { isRestartOnly } from '../../lib/config/restart.ts';
import { BRIDGE, FLOWS, GENERAL, IP_RANGES, QUEUES, resolveFields, resolveGroups, SINGLE, TUNING, WEB } from '../../webui/src/lib/configFields.ts';
import { HINTS, INTEGRATIONS, integrationGroups } from '../../webui/src/lib/integrationFields.ts';
import { setupUsers } from '../support/users.ts';
import { testDir } from '../support/workspace.ts';
import { withHarness } from './helpers.ts';

const byKey = (keys: ConfigKeyDescription[]) => new Map(keys.map((k) => [k.key, k]));

test('GET /api/config/schema describes the keys with the schema ranges, values, defaults and secrets', async () => {
  await withHarness(async (h) => {
    const anonymous = await fetch(`${h.base}/api/config/schema`);
    assert.equal(anonymous.status, 409); // first run: no users yet
    const { viewer } = await setupUsers(h);
    assert.equal((await fetch(`${h.base}/api/config/schema`)).status, 401);
    const r = await viewer.get('/api/config/schema');
    assert.equal(r.status, 200, r.text);
    const keys = byKey((r.json as ConfigSchemaPayload).keys);
    assert.deepEqual(keys.get('web.port'), {
      key: 'web.port',
      type: 'integer',
      min: 1,
      max: 65535,
      default: 9123,
      optional: false,
      required: false,
      secret: false,
      fidelity: { kind: 'honoured' },
      description: 'TCP port of the web UI and API.',
      restartOnly: true,
    });
    assert.equal(keys.get('ip_ranges.allow_subnets')?.format, 'cidr');
    assert.equal(keys.get('flows.netflow_ip')?.format, 'ip');
    assert.deepEqual(keys.get('flows.netflow_version')?.values, [5, 9, 10]);
    assert.deepEqual(keys.get('bridge.to_internet'), { key: 'bridge.to_internet', type: 'string', nonEmpty: true, optional: false, required: true, secret: false, fidelity: { kind: 'honoured' } });
    assert.deepEqual(keys.get('bridge.mtu'), { key: 'bridge.mtu', type: 'integer', min: 68, max: 65535, optional: true, required: false, secret: false, fidelity: { kind: 'honoured' } });
    // positive integers: the exclusive bound 0 reads as "at least 1"; numbers keep exclusive bounds
    assert.equal(keys.get('packet_capture_time')?.min, 1);
    assert.equal(keys.get('queues.fast_queues_fq_codel')?.above, 0);
    assert.deepEqual([keys.get('stormguard.decrease_multiplier')?.above, keys.get('stormguard.decrease_multiplier')?.below], [0, 1]);
    assert.deepEqual(keys.get('queues.queue_mode')?.values, ['shape', 'observe']);
    assert.deepEqual(keys.get('queues.lazy_queues')?.values, ['No', 'Htb', 'Full']);
    assert.deepEqual(keys.get('topology.compile_mode')?.values, ['', 'flat', 'ap_only', 'ap_site', 'full']);
    assert.equal(keys.get('sonar_integration.recurring_service_rates')?.type, 'object_list');
    assert.equal(keys.get('uisp_integration.exclude_sites')?.type, 'string_list');
    assert.equal(keys.get('visp_integration.isp_id')?.optional, true);
    // Keys lqos-ts does not honour say so, with what it does instead (lib/config/fidelity.ts).
    assert.deepEqual(keys.get('stormguard.enabled')?.fidelity, { kind: 'ignored', note: 'StormGuard is not implemented in lqos-ts; site rates stay as planned' });
    assert.equal(keys.get('sonar_integration.snmp_community')?.fidelity.kind, 'honoured');
    assert.equal(keys.get('queues.lazy_queues')?.fidelity.kind, 'honoured');
    assert.equal(keys.get('long_term_stats.gather_stats')?.fidelity.kind, 'ignored');
    const notHonoured = [...keys.values()].filter((k) => k.fidelity.kind !== 'honoured');
    assert.ok(notHonoured.every((k) => (k.fidelity.note ?? '').length > 10), 'every key not honoured says what happens instead');
    const secrets = [...keys.values()].filter((k) => k.secret).map((k) => k.key);
    assert.deepEqual(secrets.sort(), [...KNOWN_CONFIG_SECRETS].sort());
  });
});

test('every key the web UI forms name is described by the server', () => {
  const keys = byKey(describeConfig(isSecretKey));
  const named = [...GENERAL, ...QUEUES, ...TUNING, ...IP_RANGES, ...FLOWS, ...WEB].flatMap((g) => g.fields.map((f) => f.key));
  named.push(...BRIDGE.map((f) => f.key), ...SINGLE.map((f) => f.key), ...Object.keys(HINTS));
  assert.deepEqual(named.filter((k) => !keys.has(k)), []);
  for (const [name, def] of Object.entries(INTEGRATIONS)) {
    for (const s of def.sections) assert.ok([...keys.keys()].some((k) => k.startsWith(`${s.key}.`)), `${name}: section ${s.key}`);
    if (def.enable) assert.equal(keys.get(def.enable)?.type, 'boolean', `${name}: ${def.enable}`);
  }
});

test('every web UI field maps to a fidelity entry; fields of keys lqos-ts ignores are shown disabled with a note', () => {
  const schema = byKey(describeConfig(isSecretKey));
  const named = [...GENERAL, ...QUEUES, ...TUNING, ...IP_RANGES, ...FLOWS, ...WEB].flatMap((g) => g.fields.map((f) => f.key));
  named.push(...BRIDGE.map((f) => f.key), ...SINGLE.map((f) => f.key));
  for (const name of Object.keys(INTEGRATIONS)) named.push(...integrationGroups(schema, name).flatMap((g) => g.fields.map((f) => f.key)));
  assert.deepEqual(named.filter((k) => !fidelityOf(k)), [], 'UI fields without a fidelity entry');
  const general = resolveFields([...GENERAL, ...QUEUES].flatMap((g) => g.fields), schema);
  const lts = general.find((f) => f.key === 'long_term_stats.gather_stats')!;
  assert.equal(lts.unsupported, `ignored by lqos-ts: ${(FIDELITY['long_term_stats.gather_stats'] as { instead: string }).instead}`);
  assert.equal(general.find((f) => f.key === 'queues.lazy_queues')!.unsupported, undefined);
  assert.equal(general.find((f) => f.key === 'queues.downlink_bandwidth_mbps')!.unsupported, undefined);
  const uisp = integrationGroups(schema, 'uisp')[0].fields;
  assert.ok(uisp.find((f) => f.key === 'uisp_integration.insecure_ssl')!.unsupported);
  assert.equal(uisp.find((f) => f.key === 'uisp_integration.squash_sites')!.unsupported, undefined);
  assert.equal(uisp.find((f) => f.key === 'uisp_integration.token')!.unsupported, undefined);
  // Every field the UI offers as editable is a key lqos-ts honours.
  for (const f of [...general, ...integrationGroups(schema, 'sonar')[0].fields]) {
    assert.equal(Boolean(f.unsupported), fidelityOf(f.key)!.kind !== 'honoured', f.key);
  }
});

test('the forms take type, range, choices and secret-ness from the description; unknown keys are dropped', () => {
  const schema = byKey(describeConfig(isSecretKey));
  const warn = mock.method(console, 'warn', () => undefined);
  try {
    const fields = resolveFields([...[...GENERAL, ...WEB].flatMap((g) => g.fields), { key: 'web.no_such_key', label: 'Gone' }], schema);
    assert.equal(fields.some((f) => f.key === 'web.no_such_key'), false);
    assert.match(String(warn.mock.calls[0]?.arguments[0]), /web\.no_such_key/);
    const port = fields.find((f) => f.key === 'web.port');
    assert.deepEqual([port?.type, port?.min, port?.max], ['int', 1, 65535]);
    assert.equal(fields.find((f) => f.key === 'long_term_stats.license_key')?.type, 'secret');
    const mode = resolveFields(QUEUES[0].fields, schema).find((f) => f.key === 'queues.queue_mode');
    assert.deepEqual(mode?.options?.map((o) => o.value), ['shape', 'observe']);
    const uisp = integrationGroups(schema, 'uisp')[0].fields;
    assert.equal(uisp[0].key, 'uisp_integration.enable_uisp');
    assert.equal(uisp.find((f) => f.key === 'uisp_integration.token')?.type, 'secret');
    assert.equal(uisp.find((f) => f.key === 'uisp_integration.exception_cpes')?.type, 'json');
  } finally {
    warn.mock.restore();
  }
});

test('the server enforces the user rules the first-run form checks (lib/api/auth.ts)', async (t) => {
  const store = new users.UserStore(join(testDir(t), 'lqusers.toml'));
  const ok = 'x'.repeat(api.PASSWORD_MIN);
  await assert.rejects(store.createFirstAdmin('ab', ok), (e: Error) => e instanceof users.UserError && e.code === 'invalid_user');
  assert.equal(api.USERNAME_RE.test('ab'), false);
  await assert.rejects(store.createFirstAdmin('admin', 'x'.repeat(api.PASSWORD_MIN - 1)), (e: Error) => e instanceof users.UserError && e.code === 'invalid_user');
  await assert.rejects(store.createFirstAdmin('admin', 'x'.repeat(api.PASSWORD_MAX + 1)), (e: Error) => e instanceof users.UserError && e.code === 'invalid_user');
  assert.equal((await store.createFirstAdmin('admin', ok)).username, 'admin');
});

test('the [tuning], [ip_ranges], [flows] and [web] pages show every key of their sections, each with what it does and whether it waits for a restart', () => {
  const schema = byKey(describeConfig(isSecretKey));
  const pages = { tuning: TUNING, ip_ranges: IP_RANGES, flows: FLOWS, web: WEB };
  for (const [section, groups] of Object.entries(pages)) {
    const fields = resolveGroups(groups, schema).flatMap((g) => g.fields);
    const inSchema = [...schema.keys()].filter((k) => k.startsWith(`${section}.`));
    assert.deepEqual(inSchema.filter((k) => !fields.some((f) => f.key === k)), [], `${section}: keys of the schema missing from the page`);
    for (const f of fields) {
      assert.ok((f.description ?? '').length >= 20, `${f.key}: a description`);
      assert.equal(Boolean(f.restartOnly), isRestartOnly(f.key), `${f.key}: restart flag`);
    }
  }
  const web = resolveGroups(WEB, schema).flatMap((g) => g.fields);
  assert.equal(web.find((f) => f.key === 'web.metrics_token')?.type, 'secret');
  const flows = resolveGroups(FLOWS, schema).flatMap((g) => g.fields);
  const version = flows.find((f) => f.key === 'flows.netflow_version')!;
  assert.deepEqual([version.type, version.numeric, version.options?.map((o) => o.value)], ['select', true, ['', '5', '9', '10']]);
  assert.equal(flows.find((f) => f.key === 'flows.do_not_track_subnets')?.format, 'cidr');
  // tuning: the CPU and kernel keys are re-applied on reload; what the dataplane attach sets is not
  assert.deepEqual(resolveGroups(TUNING, schema).flatMap((g) => g.fields).filter((f) => f.restartOnly).map((f) => f.key), [
    'tuning.rx_usecs', 'tuning.tx_usecs', 'tuning.disable_rxvlan', 'tuning.disable_txvlan', 'tuning.disable_offload', 'tuning.xdp_mode',
  ]);
});
