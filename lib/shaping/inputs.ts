/** Reading the operator's input files for a shaping run. */
import { existsSync, readFileSync } from 'node:fs';
import type { InputPaths } from '../config/paths.ts';
import type { InputIssue } from '../model.ts';
import { decodeInputFile, type InputEncoding } from '../inputs/encoding.ts';
import { formatIssue } from '../inputs/validate.ts';
import type { Log } from '../util/log.ts';

export interface ShapingInputs {
  /** File names for messages. */
  devicesFile: string;
  networkFile: string;
  devicesText: string;
  networkText: string;
  /** Problems met reading the files (a file that is not UTF-8, lib/inputs/encoding.ts); already logged. */
  readWarnings?: InputIssue[];
}

/**
 * An input file decoded like every input read (lib/inputs/encoding.ts: BOMs honoured, non-UTF-8
 * read as Windows-1252 with a warning naming `name`), or undefined when it does not exist.
 * Warnings are logged when a `log` is given.
 */
export function readInputFile(path: string, opts: { name?: string; log?: Log } = {}): { text: string; issues: InputIssue[]; encoding: InputEncoding } | undefined {
  let bytes: Buffer;
  try {
    bytes = readFileSync(path);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
  const { text, issues, encoding } = decodeInputFile(bytes, opts.name ?? path);
  if (opts.log) for (const w of issues) opts.log.warn({ code: w.code, file: w.file, line: w.line }, formatIssue(w));
  return { text, issues, encoding };
}

/**
 * Both files' text, or null (after logging what to do) when one is missing. Encoding warnings are
 * logged here and returned in `readWarnings`.
 */
export function readShapingInputs(paths: Pick<InputPaths, 'devices' | 'network'>, log: Log): ShapingInputs | null {
  for (const f of [paths.devices, paths.network]) {
    if (!existsSync(f)) {
      log.error(`${f} does not exist; create it (see the examples in the project's conf/example directory) or set lqos_directory in the config`);
      return null;
    }
  }
  const read = (f: string) => {
    try {
      const r = readInputFile(f, { log });
      if (!r) log.error(`${f} disappeared while it was being read; run again`);
      return r ?? null;
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (typeof code !== 'string') throw err;
      // A directory in the file's place, no read permission, an I/O error: say which file and why.
      log.error(`${f} cannot be read (${(err as Error).message}); it must be a readable file — fix it and run again`);
      return null;
    }
  };
  const devices = read(paths.devices);
  const network = devices && read(paths.network);
  if (!devices || !network) return null;
  const readWarnings = [...devices.issues, ...network.issues];
  return {
    devicesFile: paths.devices,
    networkFile: paths.network,
    devicesText: devices.text,
    networkText: network.text,
    ...(readWarnings.length > 0 ? { readWarnings } : {}),
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
