/**
 * `LibreQoS`'s command line (commander only): shared by bin/LibreQoS.ts, which parses it before
 * loading anything else, and bin/LibreQoS.snapshot.ts (the start-up snapshot, scripts/snapshot).
 */
import { Command } from 'commander';

export interface LibreQoSFlags {
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
}

/** Parses `args` (the arguments after the command name); `--help` and bad usage exit here (0 / 2). */
export function parseLibreQoSArgs(args: readonly string[]): LibreQoSFlags {
  const program = new Command()
    .name('LibreQoS')
    .addHelpText('after', '\nAlso: LibreQoS integration <name> [--dry-run] runs one CRM integration (uisp, splynx, visp, netzur, powercode, sonar, wispgate, rest);\nLibreQoS support-bundle [--out FILE] collects state and logs into one tar.gz without credentials.\nWhile lqosd runs another shaping job a run waits up to 60 s for it (LQOS_BUSY_WAIT_SECS=N: N seconds), then exits 5.')
    .description('Validate ShapedDevices.csv and network.json, plan the queue tree and apply it')
    .option('--config <path>', 'configuration file (default: $LQOS_CONFIG or /etc/lqos.conf)')
    .option('-d, --debug', 'log every planned and executed command')
    .option('-v, --verbose', 'log more detail (every warning)')
    .option('--validate', 'only validate the input files; exit 1 if they are invalid')
    .option('--updateonly', 'apply only when the compiled result differs from what is applied')
    .option('--clearrules', 'remove all shaping (queues, IP mappings, eBPF programs) from the interfaces')
    .option('--planner-reset', 'plan with fresh class ids and queue assignments; they replace the stored ones only if the apply succeeds')
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
  program.parse(args, { from: 'user' });
  return program.opts<LibreQoSFlags>();
}
