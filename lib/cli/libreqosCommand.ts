/** `LibreQoS` after its arguments are parsed: the logger, the run, and the exit code of a failure. */
import { runLibreQoS } from './libreqos.ts';
import type { LibreQoSFlags } from './libreqosArgs.ts';
import { EXIT } from '../shaping/exitCodes.ts';
import { AtomicWriteError } from '../util/atomicFile.ts';
import { createLogger } from '../util/log.ts';

/** Runs `LibreQoS` with the parsed flags; resolves to the process's exit code. */
export async function runLibreQoSCommand(o: LibreQoSFlags): Promise<number> {
  const log = createLogger('LibreQoS', o.debug ? 'debug' : 'info');
  try {
    return await runLibreQoS(
      {
        config: o.config,
        validate: o.validate,
        updateonly: o.updateonly,
        clearrules: o.clearrules,
        plannerReset: o.plannerReset,
        dryRun: o.dryRun,
        direct: o.direct,
        force: o.force,
        debug: o.debug,
        verbose: o.verbose || o.debug,
        busyWaitMs: busyWaitMs(log),
      },
      log,
    );
  } catch (e) {
    if (e instanceof AtomicWriteError) {
      // Disk full or an I/O error: the message names the file and the disk; nothing was replaced.
      log.error(e.message);
      return EXIT.write;
    }
    log.fatal({ err: e }, `unexpected failure: ${(e as Error).message}`);
    return EXIT.unexpected;
  }
}

/**
 * LQOS_BUSY_WAIT_SECS: how long a run waits while lqosd runs another shaping job (a long refresh);
 * unset: the default (60 s). A value that is not a number of seconds ≥ 0 is warned about and ignored.
 */
function busyWaitMs(log: Pick<ReturnType<typeof createLogger>, 'warn'>): number | undefined {
  const v = process.env.LQOS_BUSY_WAIT_SECS;
  if (v === undefined || v === '') return undefined;
  const s = Number(v);
  if (Number.isFinite(s) && s >= 0) return s * 1000;
  log.warn(`LQOS_BUSY_WAIT_SECS must be a number of seconds (0 or more), not ${JSON.stringify(v)}; using the default`);
  return undefined;
}
