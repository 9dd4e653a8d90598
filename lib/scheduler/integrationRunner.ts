/**
 * Runs one integration as a child process (./childRunner.ts: own process group, timeout, capped
 * capture, full log file kept on failure) and picks up its run summary: the child gets
 * `LQOS_INTEGRATION_SUMMARY_FILE=<fresh path>`; after a successful exit the file is read, bounded
 * and validated (./summary.ts). No file or a bad one leaves `runSummary` unset with a
 * `runSummaryWarning`, never a failure.
 */
import type { IntegrationRunSummary } from '../api/scheduler.ts';
import { runChild, type ChildCommand, type ChildRunResult, type RunChildOptions } from './childRunner.ts';
import { freshSummaryPath, readRunSummary, removeSummaryDir, SUMMARY_FILE_ENV } from './summary.ts';

export { KILL_GRACE_MS, MAX_CAPTURE_BYTES, schedulerLogDir, timestamp } from './childRunner.ts';

export type IntegrationCommand = ChildCommand;

export interface IntegrationRunResult extends ChildRunResult {
  /** What the run did (from its summary file), after a successful run that wrote one. */
  runSummary?: IntegrationRunSummary;
  /** Why there is no runSummary after a successful run. */
  runSummaryWarning?: string;
}

export interface RunIntegrationOptions extends Omit<RunChildOptions, 'label' | 'consequence'> {
  /** Credential values hidden from the summary's warnings. */
  secrets?: readonly string[];
}

export async function runIntegration(cmd: IntegrationCommand, opts: RunIntegrationOptions): Promise<IntegrationRunResult> {
  const where = freshSummaryPath();
  try {
    const r: IntegrationRunResult = await runChild({ ...cmd, env: { ...cmd.env, [SUMMARY_FILE_ENV]: where.file } }, opts);
    if (!r.ok) return r;
    const s = readRunSummary(where.file, cmd.name, opts.secrets);
    if (s.ok) r.runSummary = s.summary;
    else r.runSummaryWarning = s.warning;
    return r;
  } finally {
    removeSummaryDir(where.dir);
  }
}
