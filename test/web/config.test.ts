// test-gate: shared (CPU only; see test/support/gate.ts)
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { parse as parseToml } from 'smol-toml';
import { isSecretKey, KNOWN_CONFIG_SECRETS, redactSecrets } from '../../lib/web/redact.ts';
import { SECRETS } from '../support/configs.ts';
import { setupUsers } from '../support/users.ts';
import { withHarness } from './helpers.ts';

test('isSecretKey: exactly the credential keys', () => {
  for (const path of KNOWN_CONFIG_SECRETS) assert.ok(isSecretKey(path.split('.').pop()!), path);
  for (const k of ['password_hash', 'api_secret', 'client_secret', 'password', 'token', 'api_key', 'license_key', 'snmp_community', 'bearer_token']) {
    assert.ok(isSecretKey(k), k);
  }
  for (const k of ['token_url', 'keys', 'subnet_keys', 'client_id', 'username', 'url', 'api_url', 'allow_subnets', 'key_count', 'monkey_mode']) {
    assert.ok(!isSecretKey(k), k);
  }
  assert.deepEqual(redactSecrets({ a: { token: 'x', api_key: '', keys: ['10.0.0.0/8'] }, list: [{ password: 'p' }] }), {
    a: { token: 'set', api_key: 'not set', keys: ['10.0.0.0/8'] },
    list: [{ password: 'set' }],
  });
});

test('config PUT: a valid change persists, keeps a .bak and reloads the daemon config', async () => {
  await withHarness(async (h) => {
    const { admin } = await setupUsers(h);
    const before = readFileSync(h.configPath, 'utf8');
    const r = await admin.put('/api/config', { queues: { uplink_bandwidth_mbps: 750 }, node_name: 'edge-1' });
    assert.equal(r.status, 200, r.text);
    assert.equal(r.json.ok, true);
    assert.deepEqual(r.json.restartRequired, [], 'both keys apply on reload');
    assert.equal(r.json.config.queues.uplink_bandwidth_mbps, 750);
    assert.equal(h.reloads, 1);
    assert.equal(h.ctx.config().queues.uplink_bandwidth_mbps, 750);

    const raw = parseToml(readFileSync(h.configPath, 'utf8')) as any;
    assert.equal(raw.queues.uplink_bandwidth_mbps, 750);
    assert.equal(raw.queues.dry_run, true, 'other keys of the section kept');
    assert.equal(raw.node_name, 'edge-1');
    assert.equal(raw.uisp_integration.token, SECRETS.uisp, 'secrets untouched');
    assert.equal(readFileSync(`${h.configPath}.bak`, 'utf8'), before);
    assert.equal((await admin.get('/api/config')).json.config.node_name, 'edge-1');
    // keys lqosd reads only at start are named (not their values)
    const later = await admin.put('/api/config', { web: { port: 9124 }, flows: { flow_timeout_seconds: 60 }, ip_ranges: { ignore_subnets: ['192.0.2.0/24'] } });
    assert.equal(later.status, 200, later.text);
    assert.deepEqual(later.json.restartRequired, ['flows.flow_timeout_seconds', 'web.port']);
    assert.equal((parseToml(readFileSync(h.configPath, 'utf8')) as any).web.port, 9124);
  });
});

test('config PUT keeps the operator\'s lqos.conf as written: comments, order and spacing; only the changed lines differ', async () => {
  await withHarness(async (h) => {
    const { admin } = await setupUsers(h);
    const commented = `# POP 3 shaper — do not edit during business hours\n${readFileSync(h.configPath, 'utf8')
      .replace('[queues]\n', '[queues]\n# sized for the 1G uplink\n')
      .replace('node_name = "test-node"', 'node_name   =   "test-node"   # shown in the title')}`;
    writeFileSync(h.configPath, commented);
    const r = await admin.put('/api/config', { node_name: 'edge-1', queues: { uplink_bandwidth_mbps: 750 } });
    assert.equal(r.status, 200, r.text);
    const after = readFileSync(h.configPath, 'utf8');
    assert.match(after, /^# POP 3 shaper — do not edit during business hours$/m);
    assert.match(after, /^node_name {3}= {3}"edge-1" {3}# shown in the title$/m, 'the changed line keeps its spacing and comment');
    assert.match(after, /^\[queues\]\n# sized for the 1G uplink\n/m);
    const was = commented.split('\n');
    const now = after.split('\n');
    assert.deepEqual(now.filter((l) => !was.includes(l)), ['node_name   =   "edge-1"   # shown in the title', 'uplink_bandwidth_mbps = 750'], 'lines added or changed');
    assert.deepEqual(was.filter((l) => !now.includes(l)), ['node_name   =   "test-node"   # shown in the title'], 'lines removed');
    assert.equal((parseToml(after) as any).queues.uplink_bandwidth_mbps, 750);
  });
});

test('config PUT: [[…]] blocks elsewhere stay and the change is made in place; a dotted key forces a whole-file write, which the reply says', async () => {
  await withHarness(async (h) => {
    const { admin } = await setupUsers(h);
    const blocks = `${readFileSync(h.configPath, 'utf8')}\n# CPEs wired to another site\n[[uisp_integration.exception_cpes]]\ncpe = "barn" # Smith farm\nparent = "AP_1"\n`;
    writeFileSync(h.configPath, blocks);
    const r = await admin.put('/api/config', { node_name: 'edge-2' });
    assert.equal(r.status, 200, r.text);
    assert.equal(readFileSync(h.configPath, 'utf8'), blocks.replace('node_name = "test-node"', 'node_name = "edge-2"'));
    assert.ok(!r.json.warnings.some((w: string) => /written whole/.test(w)), r.json.warnings.join('\n'));
    // A dotted key: not changed in place; the file is written whole and the reply says so.
    writeFileSync(h.configPath, readFileSync(h.configPath, 'utf8').replace(/^node_name = "edge-2"$/m, 'node_name = "edge-2"\nrtt_thresholds.red_ms = 200'));
    const whole = await admin.put('/api/config', { node_name: 'edge-3' });
    assert.equal(whole.status, 200, whole.text);
    assert.ok(whole.json.warnings.some((w: string) => /lqos\.conf was written whole, so its comments and layout were not kept .*lqos\.conf\.bak/.test(w)), whole.json.warnings.join('\n'));
  });
});

test('config PUT: invalid values are refused naming the key; nothing is written', async () => {
  await withHarness(async (h) => {
    const { admin } = await setupUsers(h);
    const before = readFileSync(h.configPath, 'utf8');

    const wrongType = await admin.put('/api/config', { queues: { uplink_bandwidth_mbps: 'fast' } });
    assert.equal(wrongType.status, 422, wrongType.text);
    assert.equal(wrongType.json.error, 'invalid_config');
    assert.match(wrongType.json.message, /queues\.uplink_bandwidth_mbps/);
    assert.match(wrongType.json.details[0], /queues\.uplink_bandwidth_mbps: expected a number, got "fast"/);

    const range = await admin.put('/api/config', { web: { port: 70000 } });
    assert.equal(range.status, 422);
    assert.match(range.json.message, /web\.port/);

    // A CAKE mode that does not exist would only fail when tc applies it: refused here, naming the modes.
    const sqm = await admin.put('/api/config', { queues: { default_sqm: 'cake diffserv5' } });
    assert.equal(sqm.status, 422, sqm.text);
    assert.match(sqm.json.details[0], /queues\.default_sqm: "cake diffserv5": CAKE has no mode "diffserv5"; use one of besteffort, diffserv3, diffserv4, diffserv8, precedence/);

    const unknownKey = await admin.put('/api/config', { queues: { uplink_bandwith_mbps: 5 } });
    assert.equal(unknownKey.status, 400);
    assert.match(unknownKey.json.message, /additional properties/i);
    const unknownSection = await admin.put('/api/config', { nonsense: {} });
    assert.equal(unknownSection.status, 400);
    assert.equal((await admin.put('/api/config', {})).status, 400);
    assert.equal((await admin.put('/api/config', [1, 2])).status, 400);

    // Removing the only interface section is refused too.
    const noIf = await admin.put('/api/config', { bridge: null });
    assert.equal(noIf.status, 422);
    assert.match(noIf.json.message, /interfaces/);

    assert.equal(readFileSync(h.configPath, 'utf8'), before);
    assert.ok(!existsSync(`${h.configPath}.bak`));
    assert.equal(h.reloads, 0);
  });
});

test('config PUT: a secret sent as "set" keeps the stored value; a new value replaces it; "" clears it', async () => {
  await withHarness(async (h) => {
    const { admin } = await setupUsers(h);
    // Round trip: what GET returns can be sent back unchanged.
    const got = (await admin.get('/api/config')).json.config;
    const r = await admin.put('/api/config', { uisp_integration: got.uisp_integration, splynx_integration: got.splynx_integration });
    assert.equal(r.status, 200, r.text);
    let raw = parseToml(readFileSync(h.configPath, 'utf8')) as any;
    assert.equal(raw.uisp_integration.token, SECRETS.uisp);
    assert.equal(raw.splynx_integration.api_secret, SECRETS.splynxSecret);

    assert.equal((await admin.put('/api/config', { uisp_integration: { token: 'NEW-TOKEN-999' } })).status, 200);
    raw = parseToml(readFileSync(h.configPath, 'utf8')) as any;
    assert.equal(raw.uisp_integration.token, 'NEW-TOKEN-999');

    const cleared = await admin.put('/api/config', { splynx_integration: { api_key: '' } });
    assert.equal(cleared.json.config.splynx_integration.api_key, 'not set');
    assert.equal(cleared.json.config.splynx_integration.api_secret, 'set');
  });
});

test('config PUT: switching bridge → single_interface with null removal; the file is 0600 after the save', async () => {
  await withHarness(async (h) => {
    const { admin } = await setupUsers(h);
    const r = await admin.put('/api/config', { bridge: null, single_interface: { interface: 'eth9', internet_vlan: 10, network_vlan: 20 } });
    assert.equal(r.status, 200, r.text);
    assert.equal(r.json.config.bridge, undefined);
    assert.equal(r.json.config.single_interface.interface, 'eth9');
    assert.equal(statSync(h.configPath).mode & 0o777, 0o600, 'lqos.conf holds CRM credentials: root only');
  });
});
