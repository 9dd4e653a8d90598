#!/usr/bin/env node
/**
 * `lqtop`: a live top of circuits in the terminal (throughput, plan, utilisation, RTT, retransmits,
 * drops) from lqosd's bus; keys q, s/d/u/r (sort), n (names/ids). Only commander is loaded before the
 * arguments are parsed; the work is in lib/cli/lqtop.ts. Exit codes: 0 done, 1 lqosd refused the
 * request (telemetry off, an older lqosd), 2 bad usage, 6 lqosd is not running, 77 not root.
 */
import { Command, InvalidArgumentError, Option } from 'commander';

// Inline parsers only: a named top-level function makes tsx (keepNames) put a helper before the
// imports, which its import scanner then fails to read ("Parse error").

const program = new Command()
  .name('lqtop')
  .description('Live top of circuits: rates, plan, utilisation, RTT, retransmits and drops, from lqosd (run as root)')
  .addOption(new Option('--sort <by>', 'initial order').choices(['total', 'download', 'upload', 'rtt']).default('total'))
  .option('--once', 'print one frame without colour and exit (for scripts)')
  .option('--json', "print lqosd's top_circuits reply as JSON and exit")
  .option('--limit <n>', 'rows of --once and --json (1 to 1000)', (v: string) => {
    if (!/^\d{1,4}$/.test(v) || +v < 1 || +v > 1000) throw new InvalidArgumentError('a whole number from 1 to 1000');
    return +v;
  }, 20)
  .option('--ids', 'show circuit ids instead of names')
  .option('--interval <seconds>', 'seconds between refreshes (0.2 to 60)', (v: string) => {
    const n = Number(v);
    if (!Number.isFinite(n) || n < 0.2 || n > 60) throw new InvalidArgumentError('seconds from 0.2 to 60');
    return n;
  }, 1)
  .option('--width <columns>', 'width of a --once frame, 20 to 1000 (default: the terminal, else 120)', (v: string) => {
    if (!/^\d{1,4}$/.test(v) || +v < 20 || +v > 1000) throw new InvalidArgumentError('a whole number from 20 to 1000');
    return +v;
  })
  .option('--bus <path>', 'lqosd bus socket (default: $LQOS_BUS_PATH, else /run/lqos/bus)')
  .addHelpText(
    'after',
    '\nKeys: q quit, s sort by throughput, d by download, u by upload, r by RTT, n names/ids.\n' +
      'RTT is the p50 of TCP round trips flow tracking saw (customer side, else Internet side), shown as — when unknown.',
  )
  .showHelpAfterError()
  .exitOverride((err) => process.exit(err.exitCode === 0 ? 0 : 2));

program.parse(process.argv);
const opts = program.opts<{ sort: 'total' | 'download' | 'upload' | 'rtt'; once?: boolean; json?: boolean; limit: number; ids?: boolean; interval: number; width?: number; bus?: string }>();
const { runLqtop } = await import('../lib/cli/lqtop.ts');
process.exit(await runLqtop(opts));
