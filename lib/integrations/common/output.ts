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
import { closeSync, fchmodSync, fsyncSync, linkSync, openSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { formatIssue, validateInputs } from '../../inputs/validate.ts';
import type { InputIssue } from '../../model.ts';
import { IntegrationError } from './errors.ts';
import { inputPaths } from '../../config/paths.ts';
import { isDiskFull, keepBackups, mountOf } from '../../util/atomicFile.ts';
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

/** Writes a temp file with `mode` exactly (subscriber data: 0640 at most, see lib/util/fileModes.ts). */
function writeTemp(path: string, text: string, mode: number): void {
  const fd = openSync(path, 'wx', mode);
  try {
    fchmodSync(fd, mode); // the umask may have narrowed it
    writeFileSync(fd, text);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

function fsyncDir(dir: string): void {
  try {
    const fd = openSync(dir, 'r');
    try {
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
  } catch {
    // Not supported everywhere; the renames are still atomic.
  }
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
  const tag = `.${process.pid}.${Date.now().toString(36)}.tmp`;
  const netTmp = `${netPath}${tag}`;
  const csvTmp = `${csvPath}${tag}`;
  const netPrev = `${netPath}${tag}.prev`;
  let havePrev = false;
  try {
    writeTemp(netTmp, out.networkJson, modeAtMost(netPath, DATA_FILE_MODE));
    writeTemp(csvTmp, out.shapedDevicesCsv, modeAtMost(csvPath, DATA_FILE_MODE));
    // The files being replaced stay as rotated backups (<file>.bak, .bak.1 …): an export that is
    // wrong but valid (e.g. a CRM answering with half its customers) can be undone by hand.
    keepBackups(netPath);
    keepBackups(csvPath);
    try {
      linkSync(netPath, netPrev);
      havePrev = true;
    } catch {
      havePrev = false; // no previous network.json
    }
    renameSync(netTmp, netPath);
    try {
      renameSync(csvTmp, csvPath);
    } catch (err) {
      if (havePrev) renameSync(netPrev, netPath);
      else rmSync(netPath, { force: true });
      havePrev = false;
      throw err;
    }
    fsyncDir(out.dir);
  } catch (err) {
    const why = isDiskFull(err)
      ? `the disk holding it (mount ${mountOf(out.dir)}) is full (${(err as NodeJS.ErrnoException).code}) — free space there and run the integration again`
      : (err as Error).message;
    throw new IntegrationError(`${crm}: cannot write ${out.dir}: ${why}; the previous files are unchanged`, { crm, cause: err });
  } finally {
    rmSync(netTmp, { force: true });
    rmSync(csvTmp, { force: true });
    if (havePrev) rmSync(netPrev, { force: true });
  }
  return { networkJson: netPath, shapedDevicesCsv: csvPath, warnings: issues };
}
