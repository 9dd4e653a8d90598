// test-gate: shared (CPU only; see test/support/gate.ts)
/**
 * appendToShapedDevices.csv (bin/integration.ts against the fake Splynx): its rows come after the
 * generated ones on every run, validated with them; a bad row, a clashing Circuit ID or IP fails the
 * run naming appendToShapedDevices.csv:<line>:<column> and leaves the files in place untouched.
 */
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { validateIntegrationOutput } from '../../lib/integrations/common/output.ts';
import { startFakeSplynx } from '../fixtures/crm/splynx.ts';
import { integrationCli, read, splynxConf, splynxGolden } from './cliRun.ts';
import { OLD_CSV, OLD_NETWORK, tempDir, useFakeServer } from './helpers.ts';

const srv = useFakeServer(startFakeSplynx);
const APPEND = 'appendToShapedDevices.csv';

/** The generated rows, then `rows` (already in the 16-column layout). */
const expected = (...rows: string[]) => splynxGolden.csv() + rows.map((r) => `${r}\n`).join('');

/** Runs Splynx into a dir holding an old pair and `append`; expects exit 1 and the old pair untouched. Returns stderr. */
async function failing(t: { after(fn: () => void): void }, append: string): Promise<string> {
  const dir = tempDir(t);
  writeFileSync(join(dir, 'network.json'), OLD_NETWORK);
  writeFileSync(join(dir, 'ShapedDevices.csv'), OLD_CSV);
  writeFileSync(join(dir, APPEND), append);
  const r = await integrationCli(['splynx', '--config', splynxConf(dir, srv.url, 'always_overwrite_network_json = true')]);
  assert.equal(r.exitCode, 1, `expected exit 1\n${r.stdout}\n${r.stderr}`);
  assert.equal(read(dir, 'network.json'), OLD_NETWORK, 'network.json changed by a failed run');
  assert.equal(read(dir, 'ShapedDevices.csv'), OLD_CSV, 'ShapedDevices.csv changed by a failed run');
  assert.match(r.stderr, /nothing was written/);
  return r.stderr;
}

describe('appendToShapedDevices.csv', () => {
  it('a file with a header line (13-column legacy layout, other order allowed): rows added after the generated ones in the 16-column layout, cell text unchanged', async (t) => {
    const dir = tempDir(t);
    writeFileSync(
      join(dir, APPEND),
      [
        '# static customers the CRM does not know',
        'Circuit ID,Circuit Name,Device ID,Device Name,Parent Node,MAC,IPv4,IPv6,Download Min Mbps,Upload Min Mbps,Download Max Mbps,Upload Max Mbps,Comment',
        'static-1,Tower Office,static-1-d,Office Router,North Site,,100.64.50.1,,10,10,100.0,100,office',
        '',
        'static-2,Depot,static-2-d,Depot Router,,,"100.64.50.2, 100.64.60.0/24",2001:db8:50::/56,5,5,50,20,',
      ].join('\n'),
    );
    const summary = join(dir, 's.json');
    const r = await integrationCli(['splynx', '--config', splynxConf(dir, srv.url)], { LQOS_INTEGRATION_SUMMARY_FILE: summary });
    assert.equal(r.exitCode, 0, r.stderr);
    const csv = read(dir, 'ShapedDevices.csv');
    assert.equal(
      csv,
      expected(
        'static-1,Tower Office,static-1-d,Office Router,North Site,,,,100.64.50.1,,10,10,100.0,100,office,',
        'static-2,Depot,static-2-d,Depot Router,,,,,"100.64.50.2, 100.64.60.0/24",2001:db8:50::/56,5,5,50,20,,',
      ),
    );
    assert.deepEqual(validateIntegrationOutput(read(dir, 'network.json'), csv).filter((i) => i.severity === 'error'), []);
    const s = JSON.parse(readFileSync(summary, 'utf8'));
    assert.deepEqual(s.circuits, { total: 6, added: 6, removed: 0, changed: 0 });
    assert.deepEqual(s.devices, { total: 6 });
  });

  it('a file without a header: 15-field rows are upstream\'s layout (Parent Node ID, Anchor Node ID, no sqm); the rows are added on every run', async (t) => {
    const dir = tempDir(t);
    writeFileSync(join(dir, APPEND), 'static-3,Kiosk,static-3-d,Kiosk AP,Tower South_Sector A,splynx:ap:1124,,00:11:22:33:44:55,100.64.50.3,,2,2,20,5,\n');
    const conf = splynxConf(dir, srv.url);
    const row = 'static-3,Kiosk,static-3-d,Kiosk AP,Tower South_Sector A,splynx:ap:1124,,00:11:22:33:44:55,100.64.50.3,,2,2,20,5,,';
    for (let run = 1; run <= 2; run++) {
      const r = await integrationCli(['splynx', '--config', conf]);
      assert.equal(r.exitCode, 0, r.stderr);
      assert.equal(read(dir, 'ShapedDevices.csv'), expected(row), `run ${run}`);
    }
  });

  it('an invalid value fails the run naming appendToShapedDevices.csv:<line>:<column>; the files in place stay', async (t) => {
    const err = await failing(
      t,
      'Circuit ID,Circuit Name,Device ID,Device Name,Parent Node,MAC,IPv4,IPv6,Download Min Mbps,Upload Min Mbps,Download Max Mbps,Upload Max Mbps,Comment\n' +
        'static-1,A,static-1-d,A,,,100.64.50.1,,10,10,100,100,\n' +
        '# a comment line still counts\n' +
        'static-2,B,static-2-d,B,,,100.64.50.300,,10,10,100,100,\n' +
        'static-3,C,static-3-d,C,,,100.64.50.3,,10,10,fast,100,\n',
    );
    assert.match(err, /Splynx: the files to write fail validation \(2 errors\); nothing was written/);
    assert.match(err, /error: \S*appendToShapedDevices\.csv:4:IPv4: value "100\.64\.50\.300": not a valid IPv4 address/);
    assert.match(err, /error: \S*appendToShapedDevices\.csv:5:Download Max Mbps: value "fast":/);
  });

  it('a Circuit ID the integration generated is a clash naming both the row and the generated circuit', async (t) => {
    const err = await failing(t, '93,Someone Else,static-93-d,Router,,,,,100.64.50.93,,10,10,100,100,,\n');
    assert.match(
      err,
      /appendToShapedDevices\.csv:1:Circuit ID: value "93": Circuit ID "93" is also a circuit Splynx generated \("Jane Doe", line 2 of the generated ShapedDevices\.csv\); appended rows need Circuit IDs of their own/,
    );
  });

  it('an IP the integration generated is a clash naming the generated row', async (t) => {
    const err = await failing(t, 'static-1,A,static-1-d,A,,,,,100.64.1.20,,10,10,100,100,,\n');
    assert.match(err, /appendToShapedDevices\.csv:1:IPv4: value "100\.64\.1\.20": 100\.64\.1\.20\/32 is already used on line 3 of the ShapedDevices\.csv Splynx generated \(device "splynx_service_94"\)/);
  });

  it('without a header, a row of a width no layout has is an error naming the line and the layouts', async (t) => {
    const err = await failing(t, '# note\nstatic-1,A,static-1-d,A,,,100.64.50.1,,10,10,100,100\n');
    assert.match(err, /appendToShapedDevices\.csv:2: this row has 12 fields; without a header line every row needs 13, 14, 15 or 16 fields/);
  });

  it('a later row of another width than the first is an error naming its line', async (t) => {
    const err = await failing(t, 'static-1,A,static-1-d,A,,,,,100.64.50.1,,10,10,100,100,,\nstatic-2,B,static-2-d,B,,,100.64.50.2,,10,10,100,100,\n');
    assert.match(err, /appendToShapedDevices\.csv has 1 problem; nothing was written/);
    assert.match(err, /error: \S*appendToShapedDevices\.csv:2: this row has a different number of fields than the first row \(line 1, 16 fields\); without a header line every row needs the same layout/);
  });
});
