/** Reading the operator's input files for a shaping run. */
import { existsSync, readFileSync } from 'node:fs';
import type { InputPaths } from '../config/paths.ts';
import type { InputIssue } from '../model.ts';
import { formatIssue } from '../inputs/validate.ts';
import type { Log } from '../util/log.ts';

export interface ShapingInputs {
  /** File names for messages. */
  devicesFile: string;
  networkFile: string;
  devicesText: string;
  networkText: string;
}

/** Both files' text, or null (after logging what to do) when one is missing. */
export function readShapingInputs(paths: Pick<InputPaths, 'devices' | 'network'>, log: Log): ShapingInputs | null {
  for (const f of [paths.devices, paths.network]) {
    if (!existsSync(f)) {
      log.error(`${f} does not exist; create it (see the examples in the project's conf/example directory) or set lqos_directory in the config`);
      return null;
    }
  }
  return {
    devicesFile: paths.devices,
    networkFile: paths.network,
    devicesText: readFileSync(paths.devices, 'utf8'),
    networkText: readFileSync(paths.network, 'utf8'),
  };
}

/** Logs every error and the first 20 warnings (all with `verbose`). */
export function reportIssues(issues: InputIssue[], log: Log, verbose: boolean): void {
  const errors = issues.filter((i) => i.severity === 'error');
  const warnings = issues.filter((i) => i.severity === 'warning');
  for (const e of errors) log.error(formatIssue(e));
  const shown = verbose ? warnings : warnings.slice(0, 20);
  for (const w of shown) log.warn(formatIssue(w));
  if (shown.length < warnings.length) log.warn(`… and ${warnings.length - shown.length} more warning(s); run with --verbose to see all`);
}
