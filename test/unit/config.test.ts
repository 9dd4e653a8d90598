// test-gate: shared (CPU only; see test/support/gate.ts)
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ConfigError, interfacesOf, loadConfig, parseConfigText } from '../../lib/config/load.ts';
import { loadResolvedConfig } from '../../lib/config/resolve.ts';
import { configSchema, defaultStateDirectory } from '../../lib/config/schema.ts';
import { needsUpstream, repoRoot, upstreamFixturePath } from '../support/paths.ts';

const examplePath = join(repoRoot, 'conf/lqos.conf.example');
const upstreamFixture = upstreamFixturePath('lqos.example.toml');
const BRIDGE = '[bridge]\nto_internet = "eth0"\nto_network = "eth1"\n';

/** Runs fn expecting a ConfigError and returns it. */
function configError(fn: () => unknown): ConfigError {
  try {
    fn();
  } catch (err) {
    assert.ok(err instanceof ConfigError, `expected ConfigError, got ${String(err)}`);
    return err;
  }
  assert.fail('expected a ConfigError');
}

function withTempDir<T>(fn: (dir: string) => T): T {
  const dir = mkdtempSync(join(tmpdir(), 'lqos-config-'));
  try {
    return fn(dir);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

test('example file parses cleanly and its values are the defaults', () => {
  const { config, warnings } = loadConfig({ path: examplePath, requireInterfaces: true });
  assert.deepEqual(warnings, []);
  assert.deepEqual(config.bridge, { use_xdp_bridge: false, to_internet: 'eth0', to_network: 'eth1' });
  assert.equal(config.single_interface, undefined);
  assert.equal(config.queues.default_sqm, 'cake diffserv4');
  assert.equal(config.state_directory, '/opt/libreqos/state');
  // The example documents the defaults: a bare [bridge] file yields the same config.
  assert.deepEqual(config, parseConfigText(BRIDGE, 'bare.conf').config);
});

test('every commented-out key in the example (incl. [single_interface]) is known and valid', () => {
  const text = readFileSync(examplePath, 'utf8')
    .replace(/^\[bridge\]\n(?:[^\n]+\n)*/m, '') // drop the [bridge] block
    .replace(/^# ?(\[[a-z_]+\]|[a-z_]+ = .*)$/gm, '$1'); // uncomment keys and tables
  const { config, warnings } = parseConfigText(text, 'uncommented.conf', { requireInterfaces: true });
  // Only the two commented-out keys of features lqos-ts does not implement are warned about (lib/config/fidelity.ts).
  assert.deepEqual(
    warnings.map((w) => w.split(' ')[0]),
    ['qoo_profile_id', 'topology.queue_auto_virtualize_threshold_mbps'],
  );
  assert.deepEqual(config.single_interface, { interface: 'eth0', internet_vlan: 2, network_vlan: 3, mtu: 1500 });
  assert.equal(config.flows.netflow_version, 9);
});

test('upstream example lqos.conf parses', { skip: needsUpstream('lqos.example.toml') }, () => {
  const { config, warnings } = loadConfig({ path: upstreamFixture, requireInterfaces: true });
  assert.deepEqual(warnings, []);
  assert.equal(config.version, '1.5');
  assert.equal(config.node_name, 'Example Node');
  assert.equal(config.queues.uplink_bandwidth_mbps, 100000);
  assert.equal(config.queues.lazy_queues, 'No');
  assert.equal(config.stormguard.strategy, 'delay_probe');
  assert.deepEqual(config.ip_ranges.ignore_subnets, ['192.168.0.0/16']);
  assert.deepEqual(interfacesOf(config), { download: 'eth1', upload: 'eth0', onAStick: false, forwarding: 'linux-bridge' });
});

test('empty file plus [bridge] gets every default', () => {
  const { config, warnings } = parseConfigText(BRIDGE, '/etc/lqos.conf');
  assert.deepEqual(warnings, []);
  assert.equal(config.version, '1.5');
  assert.equal(config.lqos_directory, '/opt/libreqos/src');
  assert.equal(config.state_directory, '/opt/libreqos/state');
  assert.equal(config.node_name, 'LibreQoS');
  assert.equal(config.queues.default_sqm, 'cake diffserv4');
  assert.equal(config.queues.queue_mode, 'shape');
  assert.equal(config.queues.uplink_bandwidth_mbps, 1000);
  assert.equal(config.queues.override_available_queues, 0);
  assert.equal(config.queues.fast_queues_fq_codel, 1000);
  assert.equal(config.queues.lazy_queues, 'No');
  assert.equal(config.queues.use_binpacking, false);
  assert.equal(config.queues.dry_run, false);
  assert.equal(config.queues.integration_timeout_secs, 300);
  assert.equal(config.integration_common.queue_refresh_interval_mins, 30);
  assert.equal(config.netzur_integration.timeout_secs, 60);
  assert.equal(config.visp_integration.timeout_secs, 20);
  assert.equal(config.sonar_integration.snmp_community, 'public');
  assert.equal(config.wispgate_integration.enable_wispgate, false);
  assert.deepEqual(config.tuning.disable_offload, ['gso', 'tso', 'lro', 'sg', 'gro']);
  assert.equal(config.ip_ranges.allow_subnets.length, 4);
  assert.equal(config.flows.flow_timeout_seconds, 30);
  assert.equal(config.stormguard.dry_run, true);
  assert.deepEqual(config.web, {
    bind_address: '0.0.0.0',
    port: 9123,
    tls_cert_file: '',
    tls_key_file: '',
    trust_proxy: false,
    allowed_hosts: [],
    metrics_token: '',
    metrics_top_circuits: 20,
    metrics_per_circuit: false,
  });
  assert.deepEqual(config.safety, { max_removed_percent: 20, scheduler_allow_mass_removal: false });
  // a file with no interfaces at all is fine unless interfaces are required
  assert.equal(parseConfigText('', 'empty.conf').config.bridge, undefined);
});

test('unknown keys are warnings naming the key path, with a suggestion when close', () => {
  const { config, warnings } = parseConfigText(
    `${BRIDGE}[queues]\ndefualt_sqm = "fq_codel"\nsomething_else = 1\n[treeguard]\nenabled = true\n[nonsense]\nx = 1\n`,
    '/etc/lqos.conf',
  );
  assert.equal(config.queues.default_sqm, 'cake diffserv4');
  assert.ok(
    warnings.includes('unknown key queues.defualt_sqm in /etc/lqos.conf (ignored); did you mean queues.default_sqm?'),
    warnings.join('\n'),
  );
  assert.ok(warnings.includes('unknown key queues.something_else in /etc/lqos.conf (ignored)'), warnings.join('\n'));
  assert.ok(warnings.some((w) => w.startsWith('unknown key nonsense in /etc/lqos.conf')));
  assert.ok(warnings.some((w) => w.includes('[treeguard]') && w.includes('(ignored)')));
  assert.equal(warnings.length, 4);
  // A name operators reach for that is no typo of ours: the key that does its job.
  const web = parseConfigText(`${BRIDGE}[web]\nlisten = "127.0.0.1:9123"\nhost = "127.0.0.1"\n`, '/etc/lqos.conf');
  assert.deepEqual(web.warnings, [
    'unknown key web.listen in /etc/lqos.conf (ignored); did you mean web.bind_address?',
    // not web.port, two edits away
    'unknown key web.host in /etc/lqos.conf (ignored); did you mean web.bind_address?',
  ]);
});

test('timers: queue_refresh_interval_mins and integration_timeout_secs at most what a timer can wait (a longer one would fire at once)', () => {
  assert.equal(parseConfigText(`${BRIDGE}[integration_common]\nqueue_refresh_interval_mins = 35791\n[queues]\nintegration_timeout_secs = 2147483\n`, 'x.conf').config.integration_common.queue_refresh_interval_mins, 35791);
  assert.throws(() => parseConfigText(`${BRIDGE}[integration_common]\nqueue_refresh_interval_mins = 40000\n`, 'x.conf'), /integration_common\.queue_refresh_interval_mins: expected a number <= 35791, got 40000/);
  assert.throws(() => parseConfigText(`${BRIDGE}[queues]\nintegration_timeout_secs = 3000000\n`, 'x.conf'), /queues\.integration_timeout_secs: expected a number <= 2147483, got 3000000/);
});

test('wrong types and invalid values: one error per key, naming path, expectation and value', () => {
  const err = configError(() =>
    parseConfigText(
      `${BRIDGE}[queues]\nuplink_bandwidth_mbps = "fast"\nqueue_mode = "turbo"\noverride_available_queues = -1\n` +
        '[ip_ranges]\nallow_subnets = ["10.0.0.0"]\n',
      '/etc/lqos.conf',
    ),
  );
  assert.equal(err.path, '/etc/lqos.conf');
  assert.deepEqual(err.details, [
    'queues.queue_mode: expected one of "shape", "observe", got "turbo"',
    'queues.uplink_bandwidth_mbps: expected a number, got "fast"',
    'queues.override_available_queues: expected a number >= 0, got -1',
    'ip_ranges.allow_subnets[0]: expected a subnet in CIDR form such as 10.0.0.0/8, got "10.0.0.0"',
  ]);
  assert.match(err.message, /\/etc\/lqos\.conf/);
  assert.match(err.message, /queues\.uplink_bandwidth_mbps: expected a number, got "fast"/);
});

test('missing or empty interface names are errors', () => {
  const err = configError(() => parseConfigText('[bridge]\nto_internet = ""\n', 'x.conf'));
  assert.deepEqual(err.details, [
    'bridge.to_internet: expected a non-empty string, got ""',
    'bridge.to_network: missing (expected a string)',
  ]);
});

test('enum values are accepted case-insensitively and canonicalised', () => {
  const { config } = parseConfigText(
    `${BRIDGE}[queues]\nlazy_queues = "htb"\nqueue_mode = "Observe"\n[topology]\ncompile_mode = "full2"\n`,
    'x.conf',
  );
  assert.equal(config.queues.lazy_queues, 'Htb');
  assert.equal(config.queues.queue_mode, 'observe');
  assert.equal(config.topology.compile_mode, 'full');
});

test('TOML syntax error names the file, line and column', () => {
  const err = configError(() => parseConfigText('version = "1.5"\n[queues]\ndefault_sqm = = "x"\n', '/etc/lqos.conf'));
  assert.match(err.message, /^\/etc\/lqos\.conf: TOML syntax error at line 3, column \d+/);
});

test('[bridge] and [single_interface] together are an error', () => {
  const err = configError(() => parseConfigText(`${BRIDGE}[single_interface]\ninterface = "eth0"\ninternet_vlan = 2\nnetwork_vlan = 3\n`, 'x.conf'));
  assert.equal(err.details.length, 1);
  assert.match(err.details[0], /^single_interface: both \[bridge\] and \[single_interface\]/);
});

test('requireInterfaces rejects a file with neither section', () => {
  const err = configError(() => parseConfigText('[queues]\n', 'x.conf', { requireInterfaces: true }));
  assert.match(err.message, /no interfaces configured/);
});

test('missing file error names the path and says what to do', () => {
  const path = '/nonexistent/dir/lqos.conf';
  const err = configError(() => loadConfig({ path }));
  assert.equal(err.path, path);
  assert.match(err.message, /\/nonexistent\/dir\/lqos\.conf not found/);
  assert.match(err.message, /conf\/lqos\.conf\.example/);
  assert.match(err.message, /--config/);
});

test('LQOS_CONFIG selects the file when no path is given; an explicit path wins', () => {
  withTempDir((dir) => {
    const file = join(dir, 'lqos.conf');
    writeFileSync(file, `node_name = "from-env"\n${BRIDGE}`);
    const saved = process.env.LQOS_CONFIG;
    process.env.LQOS_CONFIG = file;
    try {
      const loaded = loadConfig();
      assert.equal(loaded.path, file);
      assert.equal(loaded.config.node_name, 'from-env');
      assert.equal(loadConfig({ path: examplePath }).path, examplePath);
    } finally {
      if (saved === undefined) delete process.env.LQOS_CONFIG;
      else process.env.LQOS_CONFIG = saved;
    }
  });
});

test('state_directory derivation', () => {
  const stateOf = (extra: string) => parseConfigText(`${extra}\n${BRIDGE}`, 'x.conf').config.state_directory;
  assert.equal(stateOf(''), '/opt/libreqos/state');
  assert.equal(stateOf('lqos_directory = "/srv/lqos/src/"'), '/srv/lqos/state');
  assert.equal(stateOf('lqos_directory = "/srv/lqos"'), '/srv/lqos/state');
  assert.equal(stateOf('lqos_directory = "/srv/lqos"\nstate_directory = "/var/lib/lqos"'), '/var/lib/lqos');
  assert.equal(defaultStateDirectory('/src'), '/state');
});

test('a relative state_directory that resolves to a system directory is refused by the resolver (every program), naming file and key', () => {
  withTempDir((dir) => {
    const file = join(dir, 'lqos.conf');
    // As `state_directory = "."` in /etc/lqos.conf is /etc: relative to the config file's directory.
    const up = '../'.repeat(dir.split('/').length + 2);
    for (const rel of [`${up}var/lib`, `${up}etc/`, `${up}`]) {
      writeFileSync(file, `state_directory = "${rel}"\n${BRIDGE}`);
      assert.equal(parseConfigText(readFileSync(file, 'utf8'), file).config.state_directory, rel, 'the schema cannot judge it');
      const err = configError(() => loadResolvedConfig({ path: file }));
      assert.equal(err.path, file);
      assert.match(err.message, new RegExp(`^${file.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}: invalid configuration:`));
      assert.match(err.details.join('\n'), /^state_directory: ".*" \(relative to .*\) resolves to \/[a-z/]*; "\/[a-z/]*" is a system directory: .*set state_directory to one such as \/var\/lib\/lqos/, rel);
    }
    // A relative directory of its own is fine, resolved against the config file.
    writeFileSync(file, `state_directory = "state"\n${BRIDGE}`);
    assert.equal(loadResolvedConfig({ path: file }).config.state_directory, join(dir, 'state'));
  });
});

test('legacy monitor_only maps to queue_mode with a deprecation warning', () => {
  const observe = parseConfigText(`${BRIDGE}[queues]\nmonitor_only = true\n`, 'x.conf');
  assert.equal(observe.config.queues.queue_mode, 'observe');
  assert.ok(!('monitor_only' in observe.config.queues));
  assert.equal(observe.warnings.length, 1);
  assert.match(observe.warnings[0], /queues\.monitor_only .*deprecated/);

  const explicit = parseConfigText(`${BRIDGE}[queues]\nmonitor_only = true\nqueue_mode = "shape"\n`, 'x.conf');
  assert.equal(explicit.config.queues.queue_mode, 'shape');
  assert.match(explicit.warnings[0], /ignored because queues\.queue_mode is set/);
});

test('enable_actual_shell_commands = false forces dry_run', () => {
  const { config } = parseConfigText(`${BRIDGE}[queues]\nenable_actual_shell_commands = false\n`, 'x.conf');
  assert.equal(config.queues.dry_run, true);
});

test('legacy Splynx spelling is accepted with a warning', () => {
  const { config, warnings } = parseConfigText(`${BRIDGE}[spylnx_integration]\nenable_spylnx = true\n`, 'x.conf');
  assert.equal(config.splynx_integration.enable_splynx, true);
  assert.equal(warnings.length, 2);
});

test('interfacesOf', () => {
  const bridged = parseConfigText(BRIDGE, 'x.conf').config;
  assert.deepEqual(interfacesOf(bridged), { download: 'eth1', upload: 'eth0', onAStick: false, forwarding: 'linux-bridge' });
  const xdpBridge = parseConfigText(`${BRIDGE.replace('[bridge]', '[bridge]\nuse_xdp_bridge = true')}`, 'x.conf').config;
  assert.equal(interfacesOf(xdpBridge)?.forwarding, 'xdp-bridge');
  const stick = parseConfigText('[single_interface]\ninterface = "ens1"\ninternet_vlan = 2\nnetwork_vlan = 3\n', 'x.conf').config;
  assert.deepEqual(interfacesOf(stick), { download: 'ens1', upload: 'ens1', onAStick: true, forwarding: 'stick' });
  assert.deepEqual(stick.single_interface, { interface: 'ens1', internet_vlan: 2, network_vlan: 3 });
  assert.equal(interfacesOf(configSchema.parse({})), null);
});

test('default_sqm: a CAKE mode that does not exist is refused naming the modes; real modes and other qdiscs pass', () => {
  const conf = (sqm: string) => `lqos_directory = "/tmp"\n[bridge]\nto_internet = "a"\nto_network = "b"\n[queues]\ndefault_sqm = "${sqm}"\n`;
  for (const ok of ['cake diffserv4', 'cake besteffort', 'cake diffserv8 nat', 'fq_codel']) assert.equal(parseConfigText(conf(ok), '/etc/lqos.conf').config.queues.default_sqm, ok);
  assert.throws(
    () => parseConfigText(conf('cake diffserv5'), '/etc/lqos.conf'),
    (e: ConfigError) => e.details.some((d) => /queues\.default_sqm: "cake diffserv5": CAKE has no mode "diffserv5"; use one of besteffort, diffserv3, diffserv4, diffserv8, precedence/.test(d)),
  );
});
