// test-gate: shared (CPU only; see test/support/gate.ts)
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { run } from '../../lib/integrations/netzur.ts';
import { NETZUR_KEY, NETZUR_PATH, startFakeNetzur } from '../fixtures/crm/netzur.ts';
import { captureLogger, counts, crmConfig, expectFailureKeepsFiles, runGolden, runOpts, tempDir, useFakeServer } from './helpers.ts';

const srv = useFakeServer(startFakeNetzur);

const conf = (key = NETZUR_KEY) =>
  crmConfig(`
[uisp_integration]
exclude_sites = ["Lab"]
bandwidth_overhead_factor = 1.0
[netzur_integration]
enable_netzur = true
api_key = "${key}"
api_url = "${srv.url}${NETZUR_PATH}"
`);

describe('Netzur integration', () => {
  it('imports zones and customers (golden) with skip reasons', async (t) => {
    srv.control.mode = 'none';
    const { r, log, reasons } = await runGolden(t, 'netzur', srv, (o) => run(conf(), o));
    assert.equal(r.strategy, 'full');
    assert.deepEqual(counts(r), { sites: 4, aps: 0, circuits: 6, devices: 6 });
    assert.match(reasons['netzur_S-4'], /duplicate address 100\.64\.2\.6\/32 \(already used by circuit netzur_S-1\)/);
    assert.match(reasons['netzur_S-5'], /in ignore_subnets \(100\.64\.99\.0\/24\)/);
    assert.match(reasons['customers[5]'], /no subscriber_id/);
    assert.match(reasons['netzur_S-6'], /no IP address/);
    assert.match(reasons['netzur_S-7'], /exclude_sites/);
    assert.ok(!log.lines.some((l) => l.includes(NETZUR_KEY)));
    const req = srv.control.requests.at(-1)!;
    assert.equal(req.headers.authorization, `Bearer ${NETZUR_KEY}`);
  });

  it('dry run writes nothing and returns the preview', async (t) => {
    srv.control.mode = 'none';
    const dir = tempDir(t);
    const r = await run(conf(), { ...runOpts(dir), dryRun: true });
    assert.ok(r.preview?.shapedDevicesCsv.includes('netzur_S-1'));
    assert.equal(r.written, undefined);
    const { readdirSync } = await import('node:fs');
    assert.deepEqual(readdirSync(dir), []);
  });

  it('wrong credentials → 401 error naming the key, files untouched', async (t) => {
    srv.control.mode = 'none';
    await expectFailureKeepsFiles(t, (o) => run(conf('wrong-key'), o), [/^Netzur: GET \/api\/libreqos → 401 Unauthorized: check netzur_integration\.api_key$/], ['wrong-key']);
  });

  it('server error → 500 after retries', async (t) => {
    srv.control.mode = 'error500';
    const before = srv.control.requests.length;
    await expectFailureKeepsFiles(t, (o) => run(conf(), o), [/^Netzur: GET \/api\/libreqos → 500 Internal Server Error \(3 attempts\)$/], [NETZUR_KEY]);
    assert.equal(srv.control.requests.length - before, 3);
  });

  it('a timeout_secs below 5 is raised to 5 with a warning naming the key (it was raised silently)', async (t) => {
    srv.control.mode = 'none';
    const c = conf();
    const log = captureLogger();
    await run({ ...c, netzur_integration: { ...c.netzur_integration, timeout_secs: 2 } }, runOpts(tempDir(t), log));
    assert.ok(log.lines.includes('Netzur: netzur_integration.timeout_secs = 2 is below 5; 5 s is used (as upstream)'), log.lines.join('\n'));
    const quiet = captureLogger();
    await run(conf(), runOpts(tempDir(t), quiet));
    assert.ok(!quiet.lines.some((l) => l.includes('timeout_secs')), 'the default (60) says nothing');
  });

  it('timeout', async (t) => {
    srv.control.mode = 'slow';
    await expectFailureKeepsFiles(t, (o) => run(conf(), o), [/^Netzur: GET \/api\/libreqos → timed out after 250 ms \(3 attempts\)/]);
  });

  it('malformed JSON', async (t) => {
    srv.control.mode = 'malformed';
    await expectFailureKeepsFiles(t, (o) => run(conf(), o), [/^Netzur: GET \/api\/libreqos → 200 OK but the body is not valid JSON/]);
  });

  it('missing required field', async (t) => {
    srv.control.mode = 'missing-field';
    await expectFailureKeepsFiles(t, (o) => run(conf(), o), [/^Netzur: GET \/api\/libreqos: field "customers" is missing or not a list/]);
  });
});
