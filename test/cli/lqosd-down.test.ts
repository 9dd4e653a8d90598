// test-gate: shared (CPU only; see test/support/gate.ts)
/**
 * Exit 6 through the real `LibreQoS` command (issue 19 item 4): a real (not dry) run goes through
 * lqosd's bus; with no lqosd — no socket, or a stale socket nothing answers on — the command exits 6
 * naming the socket and the ways out (start lqosd, --dry-run, --direct), having planned and written
 * nothing; the advised --dry-run then works.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, lstatSync } from 'node:fs';
import { join } from 'node:path';
import { execa } from 'execa';
import { EXIT } from '../../lib/shaping/exitCodes.ts';
import { bridgeConfig } from '../support/configs.ts';
import { runCli, workspaceFactory } from '../support/workspace.ts';

const ws = workspaceFactory();
const HEADER = 'Circuit ID,Circuit Name,Device ID,Device Name,Parent Node,MAC,IPv4,IPv6,Download Min Mbps,Upload Min Mbps,Download Max Mbps,Upload Max Mbps,Comment';
const DEVICES = `${HEADER}\nc1,C1,d1,D1,,,100.64.0.1,,1,1,20,5,\n`;
const realRun = (dir: string) => bridgeConfig(dir).replace('dry_run = true', 'dry_run = false');

function assertLqosdDown(r: Awaited<ReturnType<typeof runCli>>, why: RegExp, stateDir: string): void {
  assert.equal(r.code, EXIT.lqosdDown, `exit 6 (lqosd not running); stderr:\n${r.stderr.slice(-2000)}`);
  const err = r.logs.find((l) => l.level === 50);
  assert.ok(err, r.stderr);
  assert.match(err.msg, why);
  assert.match(err.msg, /a real apply needs lqosd; start it \(systemctl start lqosd\), or use --dry-run to only plan, or --direct to apply without lqosd$/);
  assert.equal(existsSync(join(stateDir, 'shaping')), false, 'nothing planned or written');
}

test('a real run with no lqosd socket: exit 6, names the socket and the ways out; nothing written', async () => {
  const w = ws({ runDir: true, conf: realRun, devices: DEVICES, network: '{}' });
  const r = await runCli(['--config', w.config], { LQOS_RUN_DIR: w.runDir });
  assertLqosdDown(r, new RegExp(`^lqosd is not running \\(no socket at ${w.busPath}\\)`), w.stateDir);
  const dry = await runCli(['--config', w.config, '--dry-run'], { LQOS_RUN_DIR: w.runDir });
  assert.equal(dry.code, EXIT.ok, `the advised --dry-run works: ${dry.stderr.slice(-2000)}`);
});

test('a real run with a stale lqosd socket (lqosd killed): exit 6, says nothing answers', async () => {
  const w = ws({ runDir: true, conf: realRun, devices: DEVICES, network: '{}' });
  // A process that binds the bus socket and dies without removing it, like a killed lqosd.
  await execa(process.execPath, ['-e', `require('node:net').createServer().listen(${JSON.stringify(w.busPath)}, () => process.kill(process.pid, 'SIGKILL'))`], { reject: false });
  assert.ok(lstatSync(w.busPath).isSocket(), 'the stale socket is there');
  const r = await runCli(['--config', w.config], { LQOS_RUN_DIR: w.runDir });
  assertLqosdDown(r, new RegExp(`^lqosd is not running \\(stale socket at ${w.busPath}, nothing answers\\)`), w.stateDir);
});
