#!/usr/bin/env node
/**
 * `scheduler` (lqos_scheduler): runs the CRM integration every queue_refresh_interval_mins and has
 * lqosd re-shape; re-shapes when network.json, ShapedDevices.csv or lqos_overrides.json change.
 * See lib/scheduler/README.md.
 *
 *   scheduler [--once] [--debug] [--config PATH] [--bus-wait SECS]
 *
 * Exit codes of `--once`:
 *   0  integrations (if any) and shaping worked
 *   1  shaping failed: invalid inputs, invalid lqos_overrides.json or lqos.conf, LibreQoS/lqosd failure
 *      (nothing applied; the shaping in force is unchanged)
 *   2  an integration failed (or timed out), but shaping with the last good inputs worked
 *   3  lqosd did not answer on its bus within the wait
 *   64 bad command-line usage
 * Without --once the scheduler runs until SIGTERM/SIGINT (exit 0); it exits 3 only when lqosd never
 * came up (systemd restarts it).
 */
import { Command } from 'commander';
import { DEFAULT_BUS_WAIT_MS } from '../lib/scheduler/busWait.ts';

// Only commander (and the import-free default above) is loaded before the arguments are parsed (as
// bin/LibreQoS.ts): `--help` answers without loading the scheduler.

const program = new Command()
  .name('scheduler')
  .description('lqos-ts scheduler: periodic CRM integration + shaping refresh, and refresh on input file changes')
  .option('--once', 'run the integrations and one shaping refresh, then exit (codes: 0 ok, 1 shaping failed, 2 integration failed, 3 lqosd unreachable)')
  .option('-d, --debug', 'debug logging')
  .option('--config <path>', 'configuration file (default: $LQOS_CONFIG or /etc/lqos.conf)')
  .option('--bus-wait <secs>', `how long to wait for lqosd at start (default ${DEFAULT_BUS_WAIT_MS / 1000})`)
  .showHelpAfterError()
  .exitOverride((err) => process.exit(err.exitCode === 0 ? 0 : 64));
program.parse(process.argv);
const o = program.opts<{ once?: boolean; debug?: boolean; config?: string; busWait?: string }>();

const [{ BusWaitTimeoutError, Scheduler, SCHEDULER_EXIT }, { createLogger }] = await Promise.all([
  import('../lib/scheduler/scheduler.ts'),
  import('../lib/util/log.ts'),
]);

const log = createLogger('scheduler', o.debug ? 'debug' : 'info');
let busWaitMs = DEFAULT_BUS_WAIT_MS;
const envWait = process.env.LQOS_SCHEDULER_BUS_WAIT_SECS;
for (const v of [envWait, o.busWait]) {
  if (v === undefined) continue;
  const n = Number(v);
  if (!Number.isFinite(n) || n <= 0) {
    log.error(`--bus-wait / LQOS_SCHEDULER_BUS_WAIT_SECS must be a positive number of seconds, got ${JSON.stringify(v)}`);
    process.exit(64);
  }
  busWaitMs = n * 1000;
}

const scheduler = new Scheduler({ configPath: o.config, log, busWaitMs });
// A bug somewhere must not take the scheduler down silently: log it and keep going.
process.on('unhandledRejection', (reason) => log.error({ err: reason }, `unhandled rejection: ${String((reason as Error)?.message ?? reason)}`));

if (o.once) {
  const code = await scheduler.once();
  await scheduler.stop();
  process.exit(code);
}

let stopping = false;
const shutdown = (signal: string) => {
  if (stopping) return;
  stopping = true;
  log.info(`${signal} received; stopping`);
  const force = setTimeout(() => process.exit(0), 10_000);
  force.unref();
  scheduler.stop().finally(() => process.exit(0));
};
process.on('SIGTERM', () => shutdown('SIGTERM'));
process.on('SIGINT', () => shutdown('SIGINT'));
// Not the default (the process would end): re-read lqos.conf, as lqosd does on SIGHUP.
process.on('SIGHUP', () => scheduler.reloadConfig());

try {
  await scheduler.start();
} catch (e) {
  if (e instanceof BusWaitTimeoutError) {
    log.error(`${e.message}; exiting (systemd restarts the scheduler)`);
    await scheduler.stop();
    process.exit(SCHEDULER_EXIT.lqosdUnreachable);
  }
  throw e;
}
