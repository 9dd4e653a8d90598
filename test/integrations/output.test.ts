// test-gate: shared (CPU only; see test/support/gate.ts)
/**
 * What an integration run writes (bin/integration.ts against the fake Splynx): network.json kept or
 * written per `always_overwrite_network_json`, and the run summary file
 * (LQOS_INTEGRATION_SUMMARY_FILE) with circuits added/removed/changed against the file in place
 * before, warnings and the one-line summary on stdout.
 */
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { integrationSummarySchema } from '../../lib/bus/protocol.ts';
import { validateIntegrationOutput } from '../../lib/integrations/common/output.ts';
import { SPLYNX_KEY, SPLYNX_SECRET, startFakeSplynx } from '../fixtures/crm/splynx.ts';
import { integrationCli, logMessages, read, splynxConf, splynxGolden } from './cliRun.ts';
import { tempDir, useFakeServer } from './helpers.ts';

const srv = useFakeServer(startFakeSplynx);

/** The operator's hand-edited tree: the generated node names, other rates, one extra node. */
const OPERATOR_NETWORK = `{
  "North Site": { "downloadBandwidthMbps": 500, "uploadBandwidthMbps": 100, "children": {
    "Tower North_Sector A": { "downloadBandwidthMbps": 200, "uploadBandwidthMbps": 40 },
    "Tower North_Sector B": { "downloadBandwidthMbps": 200, "uploadBandwidthMbps": 40 } } },
  "South Site": { "downloadBandwidthMbps": 300, "uploadBandwidthMbps": 60, "children": {
    "Tower South_Sector A": { "downloadBandwidthMbps": 100, "uploadBandwidthMbps": 20 } } },
  "Backhaul Spare": { "downloadBandwidthMbps": 50, "uploadBandwidthMbps": 50 }
}
`;

describe('always_overwrite_network_json', () => {
  it('false (the default, key not written): an existing network.json is kept byte for byte; only ShapedDevices.csv is written', async (t) => {
    const dir = tempDir(t);
    writeFileSync(join(dir, 'network.json'), OPERATOR_NETWORK);
    const r = await integrationCli(['splynx', '--config', splynxConf(dir, srv.url)]);
    assert.equal(r.exitCode, 0, r.stderr);
    assert.equal(read(dir, 'network.json'), OPERATOR_NETWORK, 'the operator network.json was replaced');
    assert.equal(read(dir, 'ShapedDevices.csv'), splynxGolden.csv());
    assert.ok(!existsSync(join(dir, 'network.json.bak')), 'a kept network.json gets no backup: it was not replaced');
    assert.match(r.stdout, /kept .*network\.json \(always_overwrite_network_json = false\)/);
    assert.match(r.stdout, /network\.json kept/);
    // Every parent exists in the kept tree: no "missing parent" warning.
    assert.doesNotMatch(r.stderr, /parent nodes that/);
  });

  it('false: a circuit whose parent the kept network.json lacks is a warning naming the node and the key (exit 0)', async (t) => {
    const dir = tempDir(t);
    const lacking = '{\n  "North Site": { "downloadBandwidthMbps": 500, "uploadBandwidthMbps": 100, "children": {\n    "Tower North_Sector A": { "downloadBandwidthMbps": 200, "uploadBandwidthMbps": 40 } } }\n}\n';
    writeFileSync(join(dir, 'network.json'), lacking);
    const summary = join(dir, 'summary.json');
    const r = await integrationCli(['splynx', '--config', splynxConf(dir, srv.url)], { LQOS_INTEGRATION_SUMMARY_FILE: summary });
    assert.equal(r.exitCode, 0, r.stderr);
    assert.equal(read(dir, 'network.json'), lacking);
    assert.match(logMessages(r.stderr).join('\n'), /^Splynx: 3 circuit\(s\) name parent nodes missing from the kept network\.json: "Tower North_Sector B", "Tower South_Sector A"; they are not shaped until you add those nodes or set always_overwrite_network_json = true$/m);
    const s = JSON.parse(readFileSync(summary, 'utf8'));
    assert.equal(s.networkJson, 'kept');
    assert.ok(
      s.warnings.some((w: string) => /missing from the kept network\.json: "Tower North_Sector B", "Tower South_Sector A".*always_overwrite_network_json = true$/.test(w)),
      JSON.stringify(s.warnings),
    );
  });

  it('false with a broken network.json in place: the run fails naming the file and the key; ShapedDevices.csv stays', async (t) => {
    const dir = tempDir(t);
    const broken = '{ "North Site": { "downloadBandwidthMbps": 500, \n';
    writeFileSync(join(dir, 'network.json'), broken);
    writeFileSync(join(dir, 'ShapedDevices.csv'), PREVIOUS_CSV);
    const r = await integrationCli(['splynx', '--config', splynxConf(dir, srv.url)]);
    assert.equal(r.exitCode, 1, r.stdout);
    assert.match(r.stderr, /Splynx: the files to write fail validation \(1 error\) \(network\.json is your file, kept because always_overwrite_network_json = false\); nothing was written:\n  error: network\.json/);
    assert.equal(read(dir, 'network.json'), broken);
    assert.equal(read(dir, 'ShapedDevices.csv'), PREVIOUS_CSV);
  });

  it('false with no network.json in place: the generated one is written', async (t) => {
    const dir = tempDir(t);
    const r = await integrationCli(['splynx', '--config', splynxConf(dir, srv.url)]);
    assert.equal(r.exitCode, 0, r.stderr);
    assert.equal(read(dir, 'network.json'), splynxGolden.network());
    assert.match(r.stdout, /network\.json written/);
  });

  it('true: an existing network.json is replaced by the generated one (the old one kept as network.json.bak)', async (t) => {
    const dir = tempDir(t);
    writeFileSync(join(dir, 'network.json'), OPERATOR_NETWORK);
    const r = await integrationCli(['splynx', '--config', splynxConf(dir, srv.url, 'always_overwrite_network_json = true')]);
    assert.equal(r.exitCode, 0, r.stderr);
    assert.equal(read(dir, 'network.json'), splynxGolden.network());
    assert.equal(read(dir, 'network.json.bak'), OPERATOR_NETWORK);
    assert.equal(read(dir, 'ShapedDevices.csv'), splynxGolden.csv());
  });

  it('a dry run with a kept network.json says so and previews only ShapedDevices.csv', async (t) => {
    const dir = tempDir(t);
    writeFileSync(join(dir, 'network.json'), OPERATOR_NETWORK);
    const r = await integrationCli(['splynx', '--dry-run', '--config', splynxConf(dir, srv.url)]);
    assert.equal(r.exitCode, 0, r.stderr);
    assert.match(r.stdout, /network\.json would be kept \(always_overwrite_network_json = false\)/);
    assert.ok(r.stdout.includes(splynxGolden.csv().trimEnd()), 'the preview shows the CSV to be written');
    assert.ok(!r.stdout.includes('"Tower North_Sector A": {\n'), 'the generated network.json is not previewed');
    assert.deepEqual(readdirSync(dir).sort(), ['lqos.conf', 'network.json']);
  });
});

/** The file "in place before": 93 unchanged, 94 with other rates, 95 absent, 99 unchanged (IPs without /32), and a circuit the CRM no longer has. */
const PREVIOUS_CSV = `Circuit ID,Circuit Name,Device ID,Device Name,Parent Node,Parent Node ID,Anchor Node ID,MAC,IPv4,IPv6,Download Min Mbps,Upload Min Mbps,Download Max Mbps,Upload Max Mbps,Comment,sqm
93,Jane Doe,splynx_service_93,Jane Doe,Tower North_Sector A,splynx:ap:1122,,AA:BB:CC:00:11:22,100.64.1.10/32,2001:db8:93::5/128,112.7,22.54,115,23,,
94,Acme Ltd,splynx_service_94,Acme Ltd,Tower North_Sector B,splynx:ap:1123,,AA:BB:CC:00:11:23,"100.64.1.20/32, 100.64.8.0/29","2001:db8:1::1/128, 2001:db8:1100::/56",50,10,60,12,,
99,Online Olga,splynx_service_99,Online Olga,Tower South_Sector A,splynx:ap:1124,,,100.64.1.50,,28.17,5.63,28.75,5.75,,
gone,Gone Gus,gone-d,Gone Gus,Tower South_Sector A,,,,100.64.1.99,,1,1,10,10,,
`;

describe('the run summary file (LQOS_INTEGRATION_SUMMARY_FILE)', () => {
  it('counts circuits added / removed / changed against the file in place before, devices, warnings; one summary line on stdout', async (t) => {
    const dir = tempDir(t);
    writeFileSync(join(dir, 'ShapedDevices.csv'), PREVIOUS_CSV);
    const file = join(dir, 'run-summary.json');
    const before = Date.now();
    const r = await integrationCli(['splynx', '--config', splynxConf(dir, srv.url)], { LQOS_INTEGRATION_SUMMARY_FILE: file });
    assert.equal(r.exitCode, 0, r.stderr);
    const s = JSON.parse(readFileSync(file, 'utf8'));
    assert.equal(s.integration, 'splynx');
    // What the scheduler accepts (the shared contract, lib/bus/protocol.ts).
    const checked = integrationSummarySchema.safeParse(s);
    assert.ok(checked.success, JSON.stringify(checked.error?.issues));
    assert.deepEqual(s.circuits, { total: 4, added: 1, removed: 1, changed: 1 });
    assert.deepEqual(s.devices, { total: 4 });
    assert.equal(s.networkJson, 'written');
    assert.ok(Number.isInteger(s.durationMs) && s.durationMs > 0, `durationMs ${s.durationMs}`);
    const finished = Date.parse(s.finishedAt);
    assert.ok(finished >= before && finished <= Date.now(), `finishedAt ${s.finishedAt}`);
    // The builder's non-fatal findings, routed through the run's logger.
    assert.ok(s.warnings.length > 0, 'no warnings gathered');
    assert.ok(s.warnings.some((w: string) => /duplicate address 100\.64\.1\.10\/32 already used by circuit 93; omitted/.test(w)), JSON.stringify(s.warnings));
    for (const w of s.warnings) {
      assert.ok(w.length <= 300, `warning longer than 300 characters: ${w}`);
      assert.ok(!w.includes(SPLYNX_SECRET) && !w.includes(SPLYNX_KEY), `a warning carries a credential: ${w}`);
    }
    assert.ok(!readFileSync(file, 'utf8').includes(SPLYNX_SECRET));
    // One line at the end of stdout (the scheduler's log keeps it).
    const last = r.stdout.trimEnd().split('\n').at(-1)!;
    assert.match(last, new RegExp(`^integration summary: Splynx: 4 circuits \\(1 added, 1 removed, 1 changed\\), 4 devices, ${s.warnings.length} warnings?, network\\.json written, \\d+\\.\\d s$`));
  });

  it('a second run with nothing changed: 0 added / removed / changed', async (t) => {
    const dir = tempDir(t);
    const file = join(dir, 'run-summary.json');
    const conf = splynxConf(dir, srv.url);
    assert.equal((await integrationCli(['splynx', '--config', conf])).exitCode, 0);
    const r = await integrationCli(['splynx', '--config', conf], { LQOS_INTEGRATION_SUMMARY_FILE: file });
    assert.equal(r.exitCode, 0, r.stderr);
    const s = JSON.parse(readFileSync(file, 'utf8'));
    assert.deepEqual(s.circuits, { total: 4, added: 0, removed: 0, changed: 0 });
    assert.equal(s.networkJson, 'kept', 'the second run keeps the network.json the first one wrote (default false)');
    const issues = validateIntegrationOutput(read(dir, 'network.json'), read(dir, 'ShapedDevices.csv')).filter((i) => i.severity === 'error');
    assert.deepEqual(issues, []);
  });

  it('no summary file on a dry run or a failed run', async (t) => {
    const dir = tempDir(t);
    const file = join(dir, 'run-summary.json');
    const dry = await integrationCli(['splynx', '--dry-run', '--config', splynxConf(dir, srv.url)], { LQOS_INTEGRATION_SUMMARY_FILE: file });
    assert.equal(dry.exitCode, 0, dry.stderr);
    assert.match(dry.stdout, /^\(dry run\) integration summary: Splynx: 4 circuits \(4 added, 0 removed, 0 changed\)/m);
    assert.ok(!existsSync(file), 'a dry run wrote the summary file');
    const bad = await integrationCli(['splynx', '--config', splynxConf(dir, 'http://127.0.0.1:9')], { LQOS_INTEGRATION_SUMMARY_FILE: file });
    assert.equal(bad.exitCode, 1);
    assert.ok(!existsSync(file), 'a failed run wrote the summary file');
  });
});
