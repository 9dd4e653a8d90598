// test-gate: shared (CPU only; see test/support/gate.ts)
/**
 * Legacy integration*Bandwidths.csv files (bin/integration.ts against the fake Splynx): migrated once
 * into adjust_site_speed entries of lqos_overrides.json (the operator's own entries win), the old file
 * renamed *.migrated, and the rates in effect on the next shaping run (the effective inputs every run
 * path builds, lib/shaping/effectiveInputs.ts).
 */
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { inputPaths } from '../../lib/config/paths.ts';
import { buildEffectiveInputs } from '../../lib/shaping/effectiveInputs.ts';
import { RecordingLog } from '../../lib/util/logRecords.ts';
import { startFakeSplynx } from '../fixtures/crm/splynx.ts';
import { integrationCli, logMessages, read, splynxConf } from './cliRun.ts';
import { tempDir, useFakeServer } from './helpers.ts';

const srv = useFakeServer(startFakeSplynx);
const LEGACY = 'integrationSplynxBandwidths.csv';

/** The rates of `node` (a key anywhere in the tree) in the network.json the next shaping run shapes. */
function effectiveRates(dir: string, node: string): [number, number] {
  const log = new RecordingLog();
  const eff = buildEffectiveInputs({ inputs: inputPaths({ lqos_directory: dir }), state: { effectiveDir: join(dir, 'state-effective') } }, log, { write: false });
  assert.ok(eff.ok, `effective inputs failed: ${JSON.stringify(log.records)}`);
  const find = (t: Record<string, { downloadBandwidthMbps: number; uploadBandwidthMbps: number; children?: Record<string, never> }>): [number, number] | undefined => {
    for (const [k, v] of Object.entries(t)) {
      if (k === node) return [v.downloadBandwidthMbps, v.uploadBandwidthMbps];
      const c = v.children ? find(v.children) : undefined;
      if (c) return c;
    }
    return undefined;
  };
  const r = find(JSON.parse(eff.inputs.networkText));
  assert.ok(r, `no node "${node}" in the effective network.json`);
  return r;
}

const overrides = (dir: string) => JSON.parse(read(dir, 'lqos_overrides.json'));

describe('legacy integrationSplynxBandwidths.csv', () => {
  it('migrated once into lqos_overrides.json (operator entries win), renamed .migrated; the rates apply on the next run; a second run changes nothing', async (t) => {
    const dir = tempDir(t);
    writeFileSync(join(dir, LEGACY), '# site overrides\nParentNode,Download Mbps,Upload Mbps\nNorth Site,500,100\n"Tower North_Sector A",200.5,50\n');
    const mine = { type: 'adjust_site_speed', site_name: 'Tower North_Sector A', download_bandwidth_mbps: 300, upload_bandwidth_mbps: 60 };
    writeFileSync(join(dir, 'lqos_overrides.json'), JSON.stringify({ network_adjustments: [mine], rtt_excluded_circuits: ['93'] }));
    const conf = splynxConf(dir, srv.url);
    const summary = join(dir, 's.json');

    const r = await integrationCli(['splynx', '--config', conf], { LQOS_INTEGRATION_SUMMARY_FILE: summary });
    assert.equal(r.exitCode, 0, r.stderr);
    const o = overrides(dir);
    assert.deepEqual(o.network_adjustments, [
      mine,
      { type: 'adjust_site_speed', site_name: 'North Site', download_bandwidth_mbps: 500, upload_bandwidth_mbps: 100 },
    ]);
    assert.deepEqual(o.rtt_excluded_circuits, ['93'], 'other content of lqos_overrides.json is kept');
    assert.ok(!existsSync(join(dir, LEGACY)), 'the legacy file is still in place');
    assert.equal(read(dir, `${LEGACY}.migrated`).split('\n')[2], 'North Site,500,100');
    const msg = logMessages(r.stderr).find((m) => m.includes('one-time migration'));
    assert.ok(msg, `no one-time message:\n${r.stderr}`);
    assert.match(msg, new RegExp(`Splynx: one-time migration: 1 site rate\\(s\\) from \\S*${LEGACY} are now adjust_site_speed entries in \\S*lqos_overrides\\.json`));
    assert.match(msg, /1 name\(s\) already had a rate override there, which is kept \("Tower North_Sector A"\)/);
    assert.match(msg, /renamed \S*integrationSplynxBandwidths\.csv\.migrated/);
    assert.ok(JSON.parse(readFileSync(summary, 'utf8')).warnings.some((w: string) => w.includes('one-time migration')), 'the summary does not carry the message');

    // The next shaping run: the migrated rate for North Site, the operator's own for the AP.
    assert.deepEqual(effectiveRates(dir, 'North Site'), [500, 100]);
    assert.deepEqual(effectiveRates(dir, 'Tower North_Sector A'), [300, 60]);
    assert.deepEqual(effectiveRates(dir, 'South Site'), [10000, 10000], 'a site without an entry keeps the generated rate');

    const again = await integrationCli(['splynx', '--config', conf]);
    assert.equal(again.exitCode, 0, again.stderr);
    assert.deepEqual(overrides(dir), o, 'a second run changed lqos_overrides.json');
    assert.ok(!logMessages(again.stderr).some((m) => m.includes('migrat')), 'the message is one-time');
  });

  it('without lqos_overrides.json it is created; an existing .migrated file is not overwritten', async (t) => {
    const dir = tempDir(t);
    writeFileSync(join(dir, LEGACY), 'name,download,upload\nSouth Site,750,250\n');
    writeFileSync(join(dir, `${LEGACY}.migrated`), 'older\n');
    const r = await integrationCli(['splynx', '--config', splynxConf(dir, srv.url)]);
    assert.equal(r.exitCode, 0, r.stderr);
    assert.deepEqual(overrides(dir).network_adjustments, [{ type: 'adjust_site_speed', site_name: 'South Site', download_bandwidth_mbps: 750, upload_bandwidth_mbps: 250 }]);
    assert.equal(read(dir, `${LEGACY}.migrated`), 'older\n');
    const renamed = readdirSync(dir).filter((f) => /^integrationSplynxBandwidths\.csv\.migrated-\d+$/.test(f));
    assert.equal(renamed.length, 1, readdirSync(dir).join(' '));
    assert.deepEqual(effectiveRates(dir, 'South Site'), [750, 250]);
  });

  it('a row that cannot be read migrates nothing: a warning names file and line, the file stays, the run succeeds', async (t) => {
    const dir = tempDir(t);
    const text = 'name,download,upload\nNorth Site,500,100\nSouth Site,fast,100\n';
    writeFileSync(join(dir, LEGACY), text);
    const summary = join(dir, 's.json');
    const r = await integrationCli(['splynx', '--config', splynxConf(dir, srv.url)], { LQOS_INTEGRATION_SUMMARY_FILE: summary });
    assert.equal(r.exitCode, 0, r.stderr);
    assert.equal(read(dir, LEGACY), text);
    assert.ok(!existsSync(join(dir, 'lqos_overrides.json')));
    const w = JSON.parse(readFileSync(summary, 'utf8')).warnings.find((x: string) => x.includes(LEGACY));
    assert.ok(w, 'no warning in the summary');
    assert.match(w, /integrationSplynxBandwidths\.csv:3: download "fast" is not a rate in Mbps \(a number > 0\); its site rates were NOT migrated/);
  });

  it('a dry run only says what it would migrate; another CRM\'s legacy file is left alone', async (t) => {
    const dir = tempDir(t);
    writeFileSync(join(dir, LEGACY), 'name,download,upload\nNorth Site,500,100\n');
    writeFileSync(join(dir, 'integrationUISPbandwidths.csv'), 'name,download,upload\nNorth Site,1,1\n');
    const dry = await integrationCli(['splynx', '--dry-run', '--config', splynxConf(dir, srv.url)]);
    assert.equal(dry.exitCode, 0, dry.stderr);
    assert.ok(logMessages(dry.stderr).some((m) => /dry run: \S*integrationSplynxBandwidths\.csv would be migrated: 1 site rate\(s\) added/.test(m)), dry.stderr);
    assert.deepEqual(readdirSync(dir).sort(), ['integrationSplynxBandwidths.csv', 'integrationUISPbandwidths.csv', 'lqos.conf']);
    const r = await integrationCli(['splynx', '--config', splynxConf(dir, srv.url)]);
    assert.equal(r.exitCode, 0, r.stderr);
    assert.ok(existsSync(join(dir, 'integrationUISPbandwidths.csv')), 'the UISP file was touched by a Splynx run');
    assert.equal(overrides(dir).network_adjustments.length, 1);
  });
});
