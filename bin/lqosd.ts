/**
 * `lqosd`: the shaper daemon (bus, urgent issues, scheduler status, dataplane, web UI).
 * SIGHUP reloads the config; SIGTERM/SIGINT stop it and leave the shaping in the kernel.
 * Only commander is loaded before the arguments are parsed: `--help` and bad usage answer without
 * loading the daemon (start-up figures: bench/startup.bench.ts). Started through bin/launch; no
 * `#!` line: with one, tsx's import scanner fails on this file (a shebang, a dynamic import and a
 * named function together).
 */
import { Command } from 'commander';

const program = new Command()
  .name('lqosd')
  .description('lqos-ts daemon: serves the local bus and the web UI, attaches the eBPF dataplane')
  .option('--config <path>', 'configuration file (default: $LQOS_CONFIG or /etc/lqos.conf)')
  .option('-d, --debug', 'debug logging')
  .option('--no-web', 'do not start the web UI')
  .showHelpAfterError()
  .exitOverride((err) => process.exit(err.exitCode === 0 ? 0 : 2));
program.parse(process.argv);
const o = program.opts<{ config?: string; debug?: boolean; web: boolean }>();

const [{ ConfigError }, { BusAlreadyRunningError }, { DaemonAlreadyRunningError, startDaemon }, { createLogger }] = await Promise.all([
  import('../lib/config/load.ts'),
  import('../lib/bus/server.ts'),
  import('../lib/daemon/daemon.ts'),
  import('../lib/util/log.ts'),
]);
const log = createLogger('lqosd', o.debug ? 'debug' : 'info');

let daemon;
try {
  daemon = await startDaemon({ configPath: o.config, log, ...(o.web ? {} : { web: false as const }) });
} catch (e) {
  if (e instanceof DaemonAlreadyRunningError || e instanceof BusAlreadyRunningError) {
    log.error(e.message);
    process.exit(3);
  }
  if (e instanceof ConfigError) {
    log.error(e.message);
    process.exit(2);
  }
  log.fatal({ err: e }, `lqosd failed to start: ${(e as Error).message}`);
  process.exit(1);
}

const running = daemon;
let stopping = false;
const shutdown = (signal: string) => {
  if (stopping) return;
  stopping = true;
  log.info(`${signal} received`);
  running
    .stop()
    .then(() => process.exit(0))
    .catch((e: unknown) => {
      log.error(`stop failed: ${(e as Error).message}`);
      process.exit(1);
    });
};
process.on('SIGTERM', () => shutdown('SIGTERM'));
process.on('SIGINT', () => shutdown('SIGINT'));
process.on('SIGHUP', () => {
  log.info('SIGHUP received: reloading the config');
  running.context.reloadConfig().catch(() => {
    /* already logged; the old config stays in force */
  });
});
// A bug in a handler must not take shaping management down silently: log it and stay up.
process.on('unhandledRejection', (reason) => log.error({ err: reason }, `unhandled rejection: ${String((reason as Error)?.message ?? reason)}`));
