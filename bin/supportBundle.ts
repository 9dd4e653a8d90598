#!/usr/bin/env node
/**
 * `LibreQoS support-bundle` (bin/launch routes it here): one tar.gz for a support request, with no
 * credentials in it. Only commander is loaded before the arguments are parsed; the work is in
 * lib/cli/supportBundle.ts. Exit codes: 0 written, 2 bad usage, 8 the archive could not be written.
 */
import { Command } from 'commander';

const program = new Command()
  .name('LibreQoS support-bundle')
  .description('Collect versions, interface and queue state, lqosd status, urgent issues and recent logs into one tar.gz, credentials removed')
  .option('--config <path>', 'configuration file (default: $LQOS_CONFIG or /etc/lqos.conf)')
  .option('-o, --out <file>', 'archive to write (default: /tmp/lqos-support-<host>-<time>.tar.gz)')
  .option('--since <time>', 'journal since this time (journalctl --since)', '-24h')
  .option('--include-inputs', 'also add network.json, ShapedDevices.csv and lqos_overrides.json (customer data)')
  .option('--scheduler-log-dir <dir>', 'where the scheduler keeps failed integration logs', '/tmp')
  .showHelpAfterError()
  .exitOverride((err) => process.exit(err.exitCode === 0 ? 0 : 2));

program.parse(process.argv);
const o = program.opts<{ config?: string; out?: string; since: string; includeInputs?: boolean; schedulerLogDir: string }>();
const { runSupportBundle } = await import('../lib/cli/supportBundle.ts');
process.exit(await runSupportBundle(o));
