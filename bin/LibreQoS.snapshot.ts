/**
 * The start-up snapshot of `LibreQoS` (scripts/snapshot builds it into build/snapshot/LibreQoS.blob).
 * Node runs this file once at build time, with every module of the command loaded and evaluated,
 * and saves the heap; bin/launch then starts `node --snapshot-blob … -- ARGS`, which restores that
 * heap and calls the main function below: no module is read, compiled or evaluated at start
 * (≈ 80 ms of each run). Anything computed while this file is evaluated is frozen into the blob,
 * so nothing here may read the environment, the arguments or the clock outside the main function;
 * bin/launch uses the blob only where it was built, with the node binary that built it.
 */
import { fileURLToPath } from 'node:url';
import { startupSnapshot } from 'node:v8';
import { parseLibreQoSArgs } from '../lib/cli/libreqosArgs.ts';
import { runLibreQoSCommand } from '../lib/cli/libreqosCommand.ts';
import { mapStackTraces } from '../lib/util/bundleStackTraces.ts';

startupSnapshot.setDeserializeMainFunction(async () => {
  // A stack trace in the journal names the .ts line (LibreQoS.cjs.map beside the bundle).
  mapStackTraces(fileURLToPath(import.meta.url));
  // As the ES-module entry's unsettled top-level await would: a run whose promise never settles
  // (the event loop emptied under it) must not exit 0.
  process.exitCode = 13;
  // `node --snapshot-blob … -- ARGS`: node drops that `--` and puts ARGS at argv[1…] (no script path).
  process.exitCode = await runLibreQoSCommand(parseLibreQoSArgs(process.argv.slice(1)));
});
