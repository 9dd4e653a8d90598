#!/usr/bin/env node
/**
 * `LibreQoS`: validate inputs, plan and apply the shaping queues (see README "Commands").
 * Only commander is loaded before the arguments are parsed: `--help` and bad usage answer without
 * loading the planner, the dataplane or the logger (start-up figures: bench/startup.bench.ts).
 * bin/launch usually starts this command from its start-up snapshot instead (bin/LibreQoS.snapshot.ts).
 */
import { parseLibreQoSArgs } from '../lib/cli/libreqosArgs.ts';

const flags = parseLibreQoSArgs(process.argv.slice(2));
const { runLibreQoSCommand } = await import('../lib/cli/libreqosCommand.ts');
process.exitCode = await runLibreQoSCommand(flags);
