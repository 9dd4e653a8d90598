#!/usr/bin/env node
/**
 * `LibreQoS`: validate inputs, plan and apply the shaping queues (see README "Commands").
 * Only commander is loaded before the arguments are parsed: `--help` and bad usage answer without
 * loading the planner, the dataplane or the logger (start-up figures: bench/startup.bench.ts).
 */
import { Command } from 'commander';

const program = new Command()
  .name('LibreQoS')
  .addHelpText('after', '\nAlso: LibreQoS integration <name> [--dry-run] runs one CRM integration (uisp, splynx, visp, netzur, powercode, sonar, wispgate, rest);\nLibreQoS support-bundle [--out FILE] collects state and logs into one tar.gz without credentials.')
  .description('Validate ShapedDevices.csv and network.json, plan the queue tree and apply it')
  .option('--config <path>', 'configuration file (default: $LQOS_CONFIG or /etc/lqos.conf)')
  .option('-d, --debug', 'log every planned and executed command')
  .option('-v, --verbose', 'log more detail (every warning)')
  .option('--validate', 'only validate the input files; exit 1 if they are invalid')
  .option('--updateonly', 'apply only when the compiled result differs from what is applied')
  .option('--clearrules', 'remove all shaping (queues, IP mappings, eBPF programs) from the interfaces')
  .option('--planner-reset', 'forget stored class ids and queue assignments before planning')
  .option('--dry-run', 'plan and write files only; touch nothing in the kernel')
  .option('--direct', 'apply in this process instead of through lqosd (labs, tests, recovery)')
  .option('--force', 'apply even if the run removes more than [safety] max_removed_percent of the shaped circuits')
  // Python-style negations accepted for runbook compatibility.
  .option('--no-validate', 'ignored (compatibility)')
  .option('--no-updateonly', 'ignored (compatibility)')
  .option('--no-clearrules', 'ignored (compatibility)')
  .option('--no-planner-reset', 'ignored (compatibility)')
  .showHelpAfterError()
  .exitOverride((err) => process.exit(err.exitCode === 0 ? 0 : 2));

program.parse(process.argv);
const o = program.opts<{
  config?: string;
  debug?: boolean;
  verbose?: boolean;
  validate?: boolean;
  updateonly?: boolean;
  clearrules?: boolean;
  plannerReset?: boolean;
  dryRun?: boolean;
  direct?: boolean;
  force?: boolean;
}>();

const [{ runLibreQoS }, { EXIT }, { AtomicWriteError }, { createLogger }] = await Promise.all([
  import('../lib/cli/libreqos.ts'),
  import('../lib/shaping/exitCodes.ts'),
  import('../lib/util/atomicFile.ts'),
  import('../lib/util/log.ts'),
]);
const log = createLogger('LibreQoS', o.debug ? 'debug' : 'info');
try {
  const code = await runLibreQoS(
    {
      config: o.config,
      validate: o.validate,
      updateonly: o.updateonly,
      clearrules: o.clearrules,
      plannerReset: o.plannerReset,
      dryRun: o.dryRun,
      direct: o.direct || process.env.LQOS_DIRECT === '1',
      force: o.force,
      debug: o.debug,
      verbose: o.verbose || o.debug,
    },
    log,
  );
  process.exitCode = code;
} catch (e) {
  if (e instanceof AtomicWriteError) {
    // Disk full or an I/O error: the message names the file and the disk; nothing was replaced.
    log.error(e.message);
    process.exitCode = EXIT.write;
  } else {
    log.fatal({ err: e }, `unexpected failure: ${(e as Error).message}`);
    process.exitCode = 70;
  }
}
