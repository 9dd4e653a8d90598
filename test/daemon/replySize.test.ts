// test-gate: shared (CPU only; see test/support/gate.ts)
/**
 * submit_plan replies stay small at ISP scale (issue 14): 28,000 generated circuits (as many as one interface on a stick takes:
 * qdisc handles), planned by
 * lqosd with `verbose` (every warning) — the reply carries no debug lines and at most
 * MAX_REPLY_RECORDS records; the run's full log is written to debug/lqosd_run.log and the planned
 * commands to debug/linux_tc.txt. `LibreQoS --debug` through that lqosd exits 0 and says where the
 * full log is. lqosd here believes it is attached (fake attach, no kernel) and its shaping service
 * plans as a dry run.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { generateDataset, writeDataset } from '../../bench/dataset.ts';
import { ShapingService } from '../../lib/shaping/service.ts';
import { MAX_REPLY_RECORDS } from '../../lib/shaping/runLog.ts';
import { startTestDaemon } from '../support/daemon.ts';
import { runCli, workspaceFactory } from '../support/workspace.ts';
import { RawConn } from './helpers.ts';

const newWorkspace = workspaceFactory();
/** The bus's limit of unread reply bytes per client (lib/bus/server.ts): a reply above it drops the client. */
const BUS_REPLY_CAP = 32 * 1024 * 1024;

test('a submit_plan of 28,000 circuits with verbose gets a reply far under the bus cap; LibreQoS --debug exits 0 and names the full log', async (t) => {
  // Not a dry run in the config: LibreQoS then submits to lqosd instead of planning itself.
  const w = newWorkspace({
    prefix: 'lqosd-big-',
    runDir: true,
    conf: (dir) =>
      `lqos_directory = "${dir}"\nstate_directory = "${join(dir, 'state')}"\ndisable_webserver = true\n` +
      `[single_interface]\ninterface = "lo"\ninternet_vlan = 2\nnetwork_vlan = 3\n[queues]\noverride_available_queues = 2\ndownlink_bandwidth_mbps = 10000\nuplink_bandwidth_mbps = 10000\n`,
  });
  const ds = generateDataset({ circuits: 28_000, seed: 7 });
  const files = writeDataset(w.dir, ds);
  const real = new ShapingService();
  let debugLines = 0;
  const d = await startTestDaemon(w, {
    attachDataplane: async () => undefined,
    shaping: {
      run: async (req, env) => {
        const r = await real.run(req, { ...env, config: { ...env.config, queues: { ...env.config.queues, dry_run: true } } });
        debugLines = r.outcome.omitted?.debug ?? 0;
        return r;
      },
    },
  });
  t.after(() => d.stop());

  const conn = await RawConn.open(w.busPath);
  t.after(() => conn.close());
  let bytes = 0;
  conn.sock.on('data', (chunk: string) => (bytes += Buffer.byteLength(chunk)));
  conn.write(JSON.stringify({ id: 1, type: 'submit_plan', mode: 'incremental', devicesPath: files.devices, networkPath: files.network, verbose: true }) + '\n');
  const reply = await conn.next(600_000);
  assert.equal(reply.ok, true, JSON.stringify(reply).slice(0, 2000));
  const o = reply.result;
  assert.equal(o.exitCode, 0, JSON.stringify(o.records.slice(-5)));
  assert.ok(debugLines > 100_000, `the run logged ${debugLines} debug lines (tc and map lines of 28k circuits)`);
  assert.equal(o.records.filter((r: any) => r.level === 'debug').length, 0, 'no debug line in the reply');
  assert.ok(o.records.length <= MAX_REPLY_RECORDS + 1, `${o.records.length} records`);
  assert.ok(bytes < 1024 * 1024, `reply of ${bytes} bytes (cap ${BUS_REPLY_CAP})`);
  assert.equal(o.omitted.debug, debugLines);
  // The full log and the debug files are where the reply says.
  assert.equal(o.logFiles.log, join(w.stateDir, 'debug', 'lqosd_run.log'));
  const full = readFileSync(o.logFiles.log, 'utf8');
  assert.match(full, /planned 28000 circuits/);
  const total = o.records.length - (o.omitted.lines > 0 ? 1 : 0) + o.omitted.lines;
  assert.match(full.split('\n')[0]!, new RegExp(`: ${total} line\\(s\\)$`), 'the file has every (non-debug) line of the run');
  assert.ok(statSync(o.logFiles.tc).size > 1_000_000, 'linux_tc.txt holds the planned commands');

  const cli = await runCli(['--config', w.config, '--debug', '--verbose'], { LQOS_RUN_DIR: w.runDir });
  assert.equal(cli.code, 0, cli.stderr.slice(-3000));
  const where = cli.logs.find((l: any) => l.logFile) as any;
  assert.ok(where, 'the CLI says where the full log is');
  assert.equal(where.logFile, o.logFiles.log);
  assert.match(where.msg, /full log in .*lqosd_run\.log; the tc commands it planned are in .*linux_tc\.txt and the IP mappings in .*ip_mappings\.txt/);
  assert.ok(existsSync(where.mappingsFile));
  const echoed = statSync(o.logFiles.tc).size + statSync(o.logFiles.mappings).size;
  console.log(`# 28k circuits: the debug lines alone were ~${echoed} bytes; reply ${bytes} bytes, ${o.records.length} records, ${debugLines} debug lines left out, ${o.omitted.lines} lines only in the log file`);
});
