#!/usr/bin/env node
/**
 * Run one CRM/NMS integration by hand:
 *
 *   ./LibreQoS integration <name> [--dry-run] [--config PATH] [--out DIR] [--verbose]
 *
 * Fetches from the CRM, builds network.json + ShapedDevices.csv, validates them and writes both into
 * `lqos_directory` (or --out). --dry-run prints what would be written and writes nothing.
 * Exit codes: 0 success, 1 integration failed (IntegrationError; nothing written), 2 bad usage or an
 * invalid/missing configuration file.
 */
import { Command, CommanderError } from 'commander';
import { INTEGRATION_NAMES } from '../lib/integrations/names.ts';
import { exitWithParent, watchParent } from '../lib/util/parentWatch.ts';

// Only commander and the import-free name list are loaded before the arguments are parsed (as
// bin/LibreQoS.ts), so `--help` does not load every integration.

// Started by the scheduler: stop as soon as the scheduler is gone (even after kill -9), never run on as an orphan.
watchParent(exitWithParent);

const program = new Command()
  .name('integration')
  .description('Import sites and circuits from a CRM/NMS into network.json and ShapedDevices.csv')
  .argument('<name>', `integration to run: ${INTEGRATION_NAMES.join(', ')}`)
  .option('--config <path>', 'configuration file (default: $LQOS_CONFIG or /etc/lqos.conf)')
  .option('--out <dir>', 'write the files here instead of lqos_directory')
  .option('--dry-run', 'build and validate, print what would be written, write nothing')
  .option('-v, --verbose', 'print every warning and debug logs')
  .showHelpAfterError()
  .exitOverride();

try {
  program.parse(process.argv);
} catch (err) {
  process.exit(err instanceof CommanderError && err.exitCode === 0 ? 0 : 2);
}
const [name] = program.args;
const o = program.opts<{ config?: string; out?: string; dryRun?: boolean; verbose?: boolean }>();

const { runIntegrationCommand } = await import('../lib/cli/integration.ts');
process.exit(await runIntegrationCommand(name!, o));
