/**
 * Writing an integration's result: validate the pair first, then replace both files atomically.
 *
 * Order and why: both new files are written in full to temp files in the target directory (fsynced)
 * before anything visible changes. Then network.json is renamed into place, then ShapedDevices.csv.
 * Parents before children: circuits reference nodes, so during the instant between the two renames a
 * reader sees the new tree with the old circuits — old circuits still find their (usually unchanged)
 * parents, whereas new circuits with the old tree would find new parents missing. And a watcher that
 * reloads on a ShapedDevices.csv change fires only once both files are in place. If the second rename
 * fails, the previous network.json (kept as a hard link) is put back, so the old pair stays intact.
 */
import { linkSync, renameSync, rmSync, statSync } from 'node:fs';
import { formatIssue, validateInputs } from '../../inputs/validate.ts';
import type { InputIssue } from '../../model.ts';
import { IntegrationError } from './errors.ts';
import { inputPaths } from '../../config/paths.ts';
import { isDiskFull, mountOf, prepareFileAtomic, type PreparedWrite } from '../../util/atomicFile.ts';
import { DATA_FILE_MODE, modeAtMost } from '../../util/fileModes.ts';

export const NETWORK_JSON = 'network.json';
export const SHAPED_DEVICES_CSV = 'ShapedDevices.csv';

export interface IntegrationOutput {
  networkJson: string;
  shapedDevicesCsv: string;
  dir: string;
  /** CRM name for error messages. Default `integration`. */
  crm?: string;
}

export interface WrittenOutput {
  networkJson: string;
  shapedDevicesCsv: string;
  /** Validation warnings (non-fatal). */
  warnings: InputIssue[];
}

/** Validates the pair as LibreQoS would read it. Returns the issues (errors and warnings). */
export function validateIntegrationOutput(networkJson: string, shapedDevicesCsv: string): InputIssue[] {
  return validateInputs({ devicesText: shapedDevicesCsv, devicesFile: SHAPED_DEVICES_CSV, networkText: networkJson, networkFile: NETWORK_JSON }).issues;
}

/**
 * Validate with validateInputs; on any error throw an IntegrationError listing them and touch
 * nothing. Otherwise replace `<dir>/network.json` then `<dir>/ShapedDevices.csv` atomically.
 */
export function writeIntegrationOutput(out: IntegrationOutput): WrittenOutput {
  const crm = out.crm ?? 'integration';
  const issues = validateIntegrationOutput(out.networkJson, out.shapedDevicesCsv);
  const errors = issues.filter((i) => i.severity === 'error');
  if (errors.length > 0) {
    const lines = errors.map(formatIssue);
    const shown = lines.slice(0, 20).join('\n  ');
    const more = lines.length > 20 ? `\n  … and ${lines.length - 20} more` : '';
    throw new IntegrationError(
      `${crm}: the generated files fail validation (${errors.length} error${errors.length === 1 ? '' : 's'}); nothing was written:\n  ${shown}${more}`,
      { crm, details: lines },
    );
  }

  const { network: netPath, devices: csvPath } = inputPaths({ lqos_directory: out.dir });
  // Both files are written and fsynced before either is replaced (a full disk changes neither);
  // the replaced ones stay as rotated backups (<file>.bak, .bak.1 …), so an export that is wrong
  // but valid (e.g. a CRM answering with half its customers) can be undone by hand.
  if (!statSync(out.dir, { throwIfNoEntry: false })?.isDirectory()) {
    // Not created here: a wrong lqos_directory must not grow a directory tree.
    throw new IntegrationError(`${crm}: cannot write ${out.dir}: no such directory — check lqos_directory in lqos.conf; nothing was written`, { crm });
  }
  const prepared: PreparedWrite[] = [];
  const netPrev = `${netPath}.prev-${process.pid}`;
  let havePrev = false;
  try {
    const net = prepareFileAtomic(netPath, out.networkJson, { mode: modeAtMost(netPath, DATA_FILE_MODE), backup: true });
    prepared.push(net);
    const csv = prepareFileAtomic(csvPath, out.shapedDevicesCsv, { mode: modeAtMost(csvPath, DATA_FILE_MODE), backup: true });
    prepared.push(csv);
    try {
      linkSync(netPath, netPrev);
      havePrev = true;
    } catch {
      havePrev = false; // no previous network.json
    }
    net.commit();
    try {
      csv.commit();
    } catch (err) {
      // Never a new network.json beside the old ShapedDevices.csv.
      if (havePrev) renameSync(netPrev, netPath);
      else rmSync(netPath, { force: true });
      havePrev = false;
      throw err;
    }
  } catch (err) {
    const why = isDiskFull(err)
      ? `the disk holding it (mount ${mountOf(out.dir)}) is full (${(err as NodeJS.ErrnoException).code}) — free space there and run the integration again`
      : (err as Error).message;
    throw new IntegrationError(`${crm}: cannot write ${out.dir}: ${why}; the previous files are unchanged`, { crm, cause: err });
  } finally {
    for (const p of prepared) p.abort(); // no-op once committed
    if (havePrev) rmSync(netPrev, { force: true });
  }
  return { networkJson: netPath, shapedDevicesCsv: csvPath, warnings: issues };
}
