// test-gate: shared (CPU only; see test/support/gate.ts)
import assert from 'node:assert/strict';
import { readdirSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { describe, it } from 'node:test';
import { execa } from 'execa';
import { NETZUR_KEY, NETZUR_PATH, startFakeNetzur } from '../fixtures/crm/netzur.ts';
import { tempDir, useFakeServer } from './helpers.ts';

const repo = resolve(import.meta.dirname, '../..');
const srv = useFakeServer(startFakeNetzur);

/** `./LibreQoS integration <args>` through bin/launch (test/integrations/cliRun.ts says why). */
function cli(args: string[]) {
  return execa(join(repo, 'LibreQoS'), ['integration', ...args], { reject: false, cwd: repo, env: { LQOS_LOG_FORMAT: 'json' } });
}
function conf(dir: string, key: string): string {
  const path = join(dir, 'lqos.conf');
  writeFileSync(
    path,
    `lqos_directory = "${dir}"\n[bridge]\nto_internet = "eth0"\nto_network = "eth1"\n[netzur_integration]\nenable_netzur = true\napi_key = "${key}"\napi_url = "${srv.url}${NETZUR_PATH}"\n`,
  );
  return path;
}

describe('bin/integration.ts', () => {
  it('usage errors exit 2', async () => {
    const r = await cli(['nosuchcrm', '--config', '/dev/null']);
    assert.equal(r.exitCode, 2);
    assert.match(r.stderr, /unknown integration "nosuchcrm"; choose one of: uisp, splynx, visp, netzur, powercode, sonar, wispgate, rest/);
  });

  it('--dry-run prints the summary and the files, writes nothing (exit 0)', async (t) => {
    const dir = tempDir(t);
    const r = await cli(['netzur', '--dry-run', '--config', conf(dir, NETZUR_KEY)]);
    assert.equal(r.exitCode, 0, r.stderr);
    assert.match(r.stdout, /^Netzur \(strategy full\): 5 sites, 0 APs, 8 circuits, 8 devices, 3 skipped/m);
    assert.match(r.stdout, /netzur_S-6 "Mac Only Max": no IP address/);
    assert.match(r.stdout, /dry run: nothing written/);
    assert.match(r.stdout, /Circuit ID,Circuit Name/);
    assert.deepEqual(readdirSync(dir), ['lqos.conf']);
  });

  it('wrong key exits 1 with the message, no secret printed', async (t) => {
    const dir = tempDir(t);
    const bad = await cli(['netzur', '--config', conf(dir, 'bad-key-xyz')]);
    assert.equal(bad.exitCode, 1);
    assert.match(bad.stderr, /Netzur: GET \/api\/libreqos → 401 Unauthorized: check netzur_integration\.api_key/);
    assert.ok(!bad.stderr.includes('bad-key-xyz') && !bad.stdout.includes('bad-key-xyz'));
  });
});
