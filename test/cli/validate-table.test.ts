// test-gate: shared (CPU only; see test/support/gate.ts)
/**
 * `LibreQoS --validate` on the table of malformed inputs (test/fixtures/bad-inputs.ts): every
 * case that is an error exits 1 and prints the expected `file:line` message; warnings exit 0.
 * All cases go through the command's own code (runLibreQoS, as bin/LibreQoS.ts calls it); a
 * sample also runs the real executable.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { pino } from 'pino';
import { BAD_INPUTS } from '../fixtures/bad-inputs.ts';
import { runLibreQoS } from '../../lib/cli/libreqos.ts';
import { makeWorkspace, runCli, type Workspace } from '../support/workspace.ts';

const spaces: Workspace[] = [];
after(() => spaces.forEach((w) => w.cleanup()));

function capture() {
  const lines: Array<{ level: number; msg: string }> = [];
  const log = pino({ level: 'info' }, { write: (l: string) => void lines.push(JSON.parse(l)) });
  return { log, lines };
}

test('the table has at least 25 error cases', () => {
  assert.ok(BAD_INPUTS.filter((c) => c.expect.severity === 'error').length >= 25);
});

for (const c of BAD_INPUTS) {
  test(`--validate: ${c.name}`, async () => {
    const w = makeWorkspace({ devices: c.csv, network: c.network });
    spaces.push(w);
    const { log, lines } = capture();
    const code = await runLibreQoS({ config: w.config, validate: true, verbose: true }, log);
    const where = `${c.expect.file}:${c.expect.line}`;
    // Messages name files by full path; compare without the workspace directory.
    const plain = (m: string) => m.split(`${w.dir}/`).join('');
    const hit = lines.find((l) => plain(l.msg).includes(where) && plain(l.msg).includes(c.expect.messageIncludes));
    assert.ok(hit, `no message naming ${where} with "${c.expect.messageIncludes}"; got:\n${lines.map((l) => plain(l.msg)).join('\n')}`);
    if (c.expect.severity === 'error') {
      assert.equal(code, 1);
      assert.equal(hit.level, 50);
    } else {
      assert.equal(code, 0);
      assert.equal(hit.level, 40);
    }
  });
}

test('the real executable prints the same message and exit code (sample of 3)', async () => {
  for (const c of BAD_INPUTS.filter((x) => x.expect.severity === 'error').slice(0, 3)) {
    const w = makeWorkspace({ devices: c.csv, network: c.network });
    spaces.push(w);
    const r = await runCli(['--config', w.config, '--validate']);
    assert.equal(r.code, 1, r.stderr);
    const plain = (m: string) => m.split(`${w.dir}/`).join('');
    assert.ok(r.logs.some((l) => plain(l.msg).includes(`${c.expect.file}:${c.expect.line}`) && plain(l.msg).includes(c.expect.messageIncludes)), r.stderr);
  }
});
