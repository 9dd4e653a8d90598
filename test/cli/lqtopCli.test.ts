// test-gate: shared (CPU only; see test/support/gate.ts)
/**
 * `./lqtop` against a bus server in this process that answers `top_circuits` as lqosd does
 * (lib/daemon/topCircuits.ts over canned telemetry): --once and --json for scripts, the exit codes
 * and messages (lqosd not running, stale socket, refused, not root, bad usage), and the live screen in
 * a real pseudo-terminal (tmux): refreshes, sort keys, names/ids, resize, lqosd going away and coming
 * back, q and Ctrl-C putting the terminal back. The lab test (test/telemetry/exportLab.test.ts) does the same against
 * lqosd with real traffic.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import type { CircuitRateView, Totals } from '../../lib/api/telemetry.ts';
import { BusError, type RequestOf, type TopCircuitsReply } from '../../lib/bus/protocol.ts';
import { startBusServer, type BusServer } from '../../lib/bus/server.ts';
import { topCircuitsData, type TopCircuitsSources } from '../../lib/daemon/topCircuits.ts';
import { quiet } from '../support/log.ts';
import { repoRoot } from '../support/paths.ts';
import { displayWidth } from '../../lib/cli/lqtopView.ts';
import { rowOf, Tmux } from './lqtopTmux.ts';

const LQTOP = join(repoRoot, 'lqtop');
const dirs: string[] = [];
const servers: BusServer[] = [];
const panes: Tmux[] = [];
after(async () => {
  for (const p of panes) await p.kill();
  for (const s of servers) await s.close();
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

const TOTALS: Totals = {
  downBps: 75e6, upBps: 30e6, downPps: 0, upPps: 0, shapedDownBps: 74e6, shapedUpBps: 29e6, unmappedDownBps: 0, unmappedUpBps: 0,
  unmappedDownPps: 0, unmappedUpPps: 0, hosts: 3, activeHosts: 3, unknownActiveHosts: 0,
};
const rate = (id: string, name: string, down: number, up: number, planDown: number, planUp: number): CircuitRateView => ({
  id, name, parentPath: 'Tower/AP', downBps: down, upBps: up, downPps: 0, upPps: 0, ceilDownMbps: planDown, ceilUpMbps: planUp,
  utilDownPct: Math.round(down / planDown / 1e3) / 10, utilUpPct: Math.round(up / planUp / 1e3) / 10,
});

/** A bus server answering top_circuits from `sources` (changeable), recording each request. */
async function fakeLqosd(path?: string) {
  const dir = mkdtempSync(join(tmpdir(), 'lqtop-'));
  dirs.push(dir);
  const sources: TopCircuitsSources = {
    at: Date.now(), dataplane: true, totals: TOTALS, shaped: 3, activeCount: 3, queueDtMs: 2000, flows: undefined,
    active: [rate('c-down', 'Downloader', 48.9e6, 1.1e6, 50, 15), rate('c-up', 'Uploader', 0.3e6, 7.9e6, 25, 8), rate('c-small', 'Small One', 2e6, 0.2e6, 10, 4)],
    queues: () => undefined,
  };
  const requests: RequestOf<'top_circuits'>[] = [];
  const handler = (r: RequestOf<'top_circuits'>): TopCircuitsReply => {
    requests.push(r);
    return { ...topCircuitsData(sources, r), lqosd: { version: '0.0.1-test', pid: process.pid, uptimeSeconds: 65, dataplane: 'attached', degraded: null } };
  };
  const busPath = path ?? join(dir, 'bus');
  const server = await startBusServer({ path: busPath, log: quiet, handlers: { top_circuits: handler } });
  servers.push(server);
  return { busPath, sources, requests, server, handler };
}

async function lqtop(args: string[], env: Record<string, string> = {}, prefix: string[] = []) {
  const [cmd, ...rest] = [...prefix, LQTOP, ...args];
  const r = await execa(cmd!, rest, { reject: false, env: { ...env }, stdin: 'ignore' });
  return { code: r.exitCode, stdout: String(r.stdout), stderr: String(r.stderr) };
}

test('--once: one frame without colour at the given width (80: no plan column), in the order asked; --json: the reply', async () => {
  const f = await fakeLqosd();
  const once = await lqtop(['--once', '--width', '80', '--limit', '2', '--sort', 'upload'], { LQOS_BUS_PATH: f.busPath });
  assert.equal(once.code, 0, once.stderr);
  assert.deepEqual(f.requests.map((r) => [r.limit, r.sortBy]), [[2, 'upload']]);
  const lines = once.stdout.trimEnd().split('\n');
  assert.ok(!once.stdout.includes('\x1b'), 'no escape sequences in --once output');
  for (const l of lines) assert.ok(displayWidth(l) <= 80, `wider than 80: ${l}`);
  assert.match(lines[0]!, /^lqtop  \d\d:\d\d:\d\d  lqosd 0\.0\.1-test \(attached, up 1m05s\)  3 circuits shaped, 3 ac…$/, 'cut at 80 columns');
  assert.match(lines[1]!, /^Down 75\.0 Mbps  Up 30\.0 Mbps  sort: upload/);
  assert.equal(lines[2], 'flow tracking is off: no RTT or retransmits');
  assert.match(lines[3]!, /^Circuit +Down +Up▼ +Util % +RTT p50 +Retx +Drops\/s$/);
  assert.deepEqual(lines.slice(4, 6).map((l) => l.trim().split(/\s{2,}/)), [
    ['Uploader', '300 kbps', '7.90 Mbps', '1/99', '—', '—', '—'],
    ['Downloader', '48.9 Mbps', '1.10 Mbps', '98/7', '—', '—', '—'],
  ]);
  assert.equal(lines.length, 7, 'header (4), 2 rows, keys');

  const ids = await lqtop(['--once', '--ids', '--limit', '1'], { LQOS_BUS_PATH: f.busPath });
  assert.match(ids.stdout.split('\n')[4]!, /^c-down +48\.9 Mbps/);
  assert.ok(ids.stdout.split('\n').some((l) => l.startsWith('Circuit ID')), 'non-terminal output is 120 wide: the plan column is there too');
  assert.match(ids.stdout, /Plan Mbps/);

  const json = await lqtop(['--json', '--sort', 'download', '--limit', '3'], { LQOS_BUS_PATH: f.busPath });
  assert.equal(json.code, 0, json.stderr);
  const parsed = JSON.parse(json.stdout) as TopCircuitsReply;
  assert.deepEqual(parsed.rows.map((r) => r.id), ['c-down', 'c-small', 'c-up']);
  assert.deepEqual(parsed, f.handler({ id: 0, type: 'top_circuits', limit: 3, sortBy: 'download' }));
});

test('exit codes: lqosd not running (6), stale socket (6), refused (1), not root (77), bad usage (2)', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'lqtop-'));
  dirs.push(dir);
  const none = await lqtop(['--once'], { LQOS_BUS_PATH: join(dir, 'nobus') });
  assert.deepEqual([none.code, none.stderr, none.stdout], [6, `lqtop: lqosd is not running (no socket at ${join(dir, 'nobus')}): systemctl status lqosd`, '']);
  // A socket nothing listens on (a killed lqosd).
  const stale = join(dir, 'stale');
  await execa(process.execPath, ['-e', `require('node:net').createServer().listen(${JSON.stringify(stale)}, () => process.kill(process.pid, 'SIGKILL'))`], { reject: false });
  const st = await lqtop(['--once'], { LQOS_BUS_PATH: stale });
  assert.deepEqual([st.code, st.stderr], [6, `lqtop: lqosd is not running (stale socket at ${stale}, nothing answers): systemctl status lqosd`]);

  const off = await startBusServer({ path: join(dir, 'off'), log: quiet, handlers: { top_circuits: () => { throw new BusError('unavailable', 'telemetry is off in this lqosd (LQOS_TELEMETRY=0): no circuit rates'); } } });
  servers.push(off);
  const refused = await lqtop(['--once'], { LQOS_BUS_PATH: off.path });
  assert.deepEqual([refused.code, refused.stderr], [1, 'lqtop: lqosd refused top_circuits: telemetry is off in this lqosd (LQOS_TELEMETRY=0): no circuit rates']);
  const old = await startBusServer({ path: join(dir, 'old'), log: quiet, handlers: {} });
  servers.push(old);
  const older = await lqtop(['--json'], { LQOS_BUS_PATH: old.path });
  assert.equal(older.code, 1);
  assert.match(older.stderr, /^lqtop: lqosd refused top_circuits: request type "top_circuits" is not available in this lqosd$/);

  const f = await fakeLqosd();
  const user = await lqtop(['--once'], { LQOS_BUS_PATH: f.busPath }, ['setpriv', '--reuid=65534', '--regid=65534', '--clear-groups']);
  assert.deepEqual([user.code, user.stderr], [77, 'lqtop: the lqosd bus is root-only: run lqtop as root (sudo lqtop)']);
  assert.equal(f.requests.length, 0, 'nothing asked of lqosd');
  const usage = await lqtop(['--sort', 'latency']);
  assert.equal(usage.code, 2);
  assert.match(usage.stderr, /argument 'latency' is invalid\. Allowed choices are total, download, upload, rtt/);
});

test('live in a terminal (tmux): refreshes, sort keys, names/ids, resize, lqosd away and back, q restores the terminal', async () => {
  const f = await fakeLqosd();
  const t = await Tmux.start(LQTOP, { width: 110, height: 12, env: { LQOS_BUS_PATH: f.busPath } });
  panes.push(t);
  let s = await t.waitForScreen((l) => l.some((x) => x.startsWith('Downloader')), 'the first frame');
  assert.match(s[1]!, /sort: throughput/);
  assert.deepEqual([rowOf(s, 'Downloader')![1], rowOf(s, 'Uploader')![2]], ['48.9 Mbps', '7.90 Mbps']);
  assert.ok(f.requests.every((r) => r.limit === 12 - 5), `asks for the rows the screen has (7): ${JSON.stringify(f.requests)}`);
  assert.match(await t.screenWithEscapes(), /\x1b\[7m/, 'colour (inverse column header) on a terminal');

  // A new second, new rates.
  f.sources.active = [rate('c-down', 'Downloader', 33.3e6, 1.1e6, 50, 15), ...f.sources.active.slice(1)];
  s = await t.waitForScreen((l) => rowOf(l, 'Downloader')?.[1] === '33.3 Mbps', 'the refreshed download rate');

  await t.keys('u');
  s = await t.waitForScreen((l) => /sort: upload/.test(l[1] ?? '') && l[4]?.startsWith('Uploader') === true, 'the upload order after u');
  assert.equal(f.requests.at(-1)!.sortBy, 'upload');
  assert.match(s[3]!, /Up▼/);
  await t.keys('r');
  await t.waitForScreen((l) => /sort: RTT/.test(l[1] ?? ''), 'the RTT sort after r');
  await t.keys('d');
  s = await t.waitForScreen((l) => /sort: download/.test(l[1] ?? '') && l[4]?.startsWith('Downloader') === true, 'the download order after d');
  await t.keys('n');
  s = await t.waitForScreen((l) => l[3]?.startsWith('Circuit ID') === true && l[4]?.startsWith('c-down') === true, 'ids after n');

  await f.server.close();
  s = await t.waitForScreen((l) => /lqosd is not running \(no socket at .*\): systemctl status lqosd; retrying every 1 s/.test(l.join(' ')), 'the lqosd-gone line');
  assert.ok(rowOf(s, 'c-down'), 'the last rows stay on screen');
  const back = await fakeLqosd(f.busPath);
  back.sources.active = [rate('c-down', 'Downloader', 44.4e6, 1e6, 50, 15)];
  await t.waitForScreen((l) => rowOf(l, 'c-down')?.[1] === '44.4 Mbps' && !l.join(' ').includes('not running'), 'recovery once lqosd is back');

  await t.resize(60, 10);
  s = await t.waitForScreen((l) => l[3] !== undefined && !l[3].includes('Plan') && l.filter((x) => /^c-/.test(x)).length === 1, 'the narrow layout');
  for (const l of s) assert.ok(displayWidth(l) <= 60, `wider than the 60-column terminal: ${l}`);

  await t.keys('q');
  assert.deepEqual(await t.waitForExit(), { status: 0, alternate: false, cursor: true }, 'q exits 0, leaves the alternate screen, shows the cursor');

  // Ctrl-C too.
  const t2 = await Tmux.start(`${LQTOP} --sort upload`, { width: 100, height: 10, env: { LQOS_BUS_PATH: f.busPath } });
  panes.push(t2);
  await t2.waitForScreen((l) => l.some((x) => x.startsWith('Downloader')), 'the first frame');
  await t2.keys('C-c');
  assert.deepEqual(await t2.waitForExit(), { status: 0, alternate: false, cursor: true }, 'Ctrl-C too');
});
