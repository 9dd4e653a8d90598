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
 *
 * What is written (composeOutput): the generated ShapedDevices.csv rows, then the rows of
 * appendToShapedDevices.csv (./append.ts); network.json is the generated one, or — with
 * `always_overwrite_network_json = false` and a network.json already in place — the operator's file,
 * kept as it is (upstream v2.0 semantics; then only ShapedDevices.csv is replaced). The result is
 * validated as one pair before anything is written.
 */
import { linkSync, renameSync, rmSync, statSync } from 'node:fs';
import { basename } from 'node:path';
import { formatIssue, validateInputs } from '../../inputs/validate.ts';
import type { InputIssue } from '../../model.ts';
import { IntegrationError } from './errors.ts';
import { inputPaths } from '../../config/paths.ts';
import { isDiskFull, mountOf, prepareFileAtomic, readTextIfExists, type PreparedWrite } from '../../util/atomicFile.ts';
import { DATA_FILE_MODE, modeAtMost } from '../../util/fileModes.ts';
import { formatAppendIssue, readAppendFile, type AppendedRows } from './append.ts';
import type { IntegrationLogger } from './log.ts';

export const NETWORK_JSON = 'network.json';
export const SHAPED_DEVICES_CSV = 'ShapedDevices.csv';

export interface IntegrationOutput {
  networkJson: string;
  shapedDevicesCsv: string;
  dir: string;
  /** CRM name for error messages. Default `integration`. */
  crm?: string;
  /** False: network.json is the operator's file, kept; only ShapedDevices.csv is replaced. Default true. */
  writeNetworkJson?: boolean;
  /** The pair's issues when the caller has validated it already (composeOutput); errors must be absent. */
  issues?: InputIssue[];
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
  const writeNet = out.writeNetworkJson ?? true;
  const issues = out.issues ?? validateIntegrationOutput(out.networkJson, out.shapedDevicesCsv);
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
    const net = writeNet ? prepareFileAtomic(netPath, out.networkJson, { mode: modeAtMost(netPath, DATA_FILE_MODE), backup: true }) : undefined;
    if (net) prepared.push(net);
    const csv = prepareFileAtomic(csvPath, out.shapedDevicesCsv, { mode: modeAtMost(csvPath, DATA_FILE_MODE), backup: true });
    prepared.push(csv);
    if (!net) {
      csv.commit(); // network.json kept: nothing to pair with
      return { networkJson: netPath, shapedDevicesCsv: csvPath, warnings: issues };
    }
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

export interface ComposeInput {
  crm: string;
  dir: string;
  /** The builder's texts. */
  networkJson: string;
  shapedDevicesCsv: string;
  /** `always_overwrite_network_json`; false keeps an existing network.json. */
  alwaysOverwriteNetworkJson: boolean;
  log: IntegrationLogger;
}

export interface ComposedOutput {
  networkJson: string;
  /** `kept`: network.json is the operator's file (not to be written). */
  networkMode: 'written' | 'kept';
  shapedDevicesCsv: string;
  /** Rows taken from appendToShapedDevices.csv. */
  appended: number;
  /** Every issue of the pair (no errors: those throw). */
  issues: InputIssue[];
}

/** Physical lines of a text that ends with a newline. */
function lineCount(text: string): number {
  let n = 0;
  for (let i = text.indexOf('\n'); i >= 0; i = text.indexOf('\n', i + 1)) n++;
  return n;
}

/**
 * Moves the issues of appended rows to the append file's own lines (`<path>:<line>`), and says which
 * file a related line belongs to.
 */
function mapAppendIssues(issues: InputIssue[], generatedLines: number, append: AppendedRows | undefined, lineMap: Map<number, number>, crm: string): InputIssue[] {
  if (!append) return issues;
  const where = (line: number) => (line > generatedLines ? `line ${lineMap.get(line) ?? '?'} of ${append.path}` : `line ${line} of the ShapedDevices.csv ${crm} generated`);
  return issues.map((i) => {
    if (i.file !== SHAPED_DEVICES_CSV || i.line === undefined || i.line <= generatedLines) return i;
    let message = i.message;
    if (i.relatedLine !== undefined) message = message.replace(`line ${i.relatedLine}`, where(i.relatedLine));
    return { ...i, file: append.path, line: lineMap.get(i.line) ?? i.line, message, relatedLine: undefined };
  });
}

/** An appended row whose Circuit ID is one of the generated circuits is an error: the two would merge. */
function circuitClashes(circuits: { id: string; name: string; line: number }[], generatedLines: number, append: AppendedRows, crm: string): InputIssue[] {
  const generated = new Map<string, { name: string; line: number }>();
  for (const c of circuits) if (c.line <= generatedLines) generated.set(c.id, c);
  const out: InputIssue[] = [];
  for (const r of append.rows) {
    const g = generated.get(r.circuitId);
    if (!g) continue;
    out.push({
      severity: 'error',
      code: 'append-circuit-clash',
      file: append.path,
      line: r.line,
      column: 'Circuit ID',
      value: r.circuitId,
      message: `Circuit ID "${r.circuitId}" is also a circuit ${crm} generated ("${g.name}", line ${g.line} of the generated ShapedDevices.csv); appended rows need Circuit IDs of their own — change this one, or drop the row if the CRM now has this subscriber`,
    });
  }
  return out;
}

/** One warning for every circuit whose parent the kept network.json lacks (spec: such circuits are not shaped). */
function keptParentWarning(issues: InputIssue[], circuits: { line: number; parentNode: string; parentNodeId: string }[], crm: string, netPath: string): string | undefined {
  const missing = issues.filter((i) => i.code === 'unknown-parent' || i.code === 'unknown-parent-id');
  if (missing.length === 0) return undefined;
  const byLine = new Map(circuits.map((c) => [c.line, c]));
  // Name the nodes as the rows do (Parent Node), their id only when a row has no name.
  const parents = [...new Set(missing.map((i) => byLine.get(i.line ?? -1)?.parentNode || i.value || ''))];
  const shown = parents.slice(0, 5).map((p) => `"${p}"`).join(', ');
  return (
    `${crm}: ${missing.length} circuit(s) name parent nodes missing from the kept ${basename(netPath)}: ${shown}${parents.length > 5 ? ` and ${parents.length - 5} more` : ''}; ` +
    `they are not shaped until you add those nodes or set always_overwrite_network_json = true`
  );
}

/**
 * The pair a run writes: generated rows + appendToShapedDevices.csv, and the generated or the kept
 * network.json, validated together. Any error throws an IntegrationError naming the file, line and
 * column (appended rows: the append file's own line); nothing is written by this function.
 */
export function composeOutput(inp: ComposeInput): ComposedOutput {
  const { crm, dir, log } = inp;
  const { network: netPath } = inputPaths({ lqos_directory: dir });
  let kept: string | undefined;
  if (!inp.alwaysOverwriteNetworkJson) {
    try {
      kept = readTextIfExists(netPath);
    } catch (e) {
      throw new IntegrationError(`${crm}: cannot read ${netPath} (kept because always_overwrite_network_json = false): ${(e as Error).message}; nothing was written`, { crm, cause: e });
    }
  }
  const networkJson = kept ?? inp.networkJson;
  const append = readAppendFile(dir, crm);
  const generated = inp.shapedDevicesCsv.endsWith('\n') ? inp.shapedDevicesCsv : `${inp.shapedDevicesCsv}\n`;
  const generatedLines = lineCount(generated);
  const lineMap = new Map<number, number>();
  let at = generatedLines + 1;
  for (const [k, rec] of (append?.rendered ?? []).entries()) {
    lineMap.set(at, append!.rows[k].line);
    at += lineCount(rec);
  }
  const csv = generated + (append?.rendered.join('') ?? '');

  const result = validateInputs({ devicesText: csv, devicesFile: SHAPED_DEVICES_CSV, networkText: networkJson, networkFile: NETWORK_JSON });
  const issues = mapAppendIssues(result.issues, generatedLines, append, lineMap, crm);
  if (append) issues.push(...circuitClashes(result.inputs.circuits, generatedLines, append, crm));
  const fmt = (i: InputIssue) => (append && i.file === append.path ? formatAppendIssue(i) : formatIssue(i));
  const errors = issues.filter((i) => i.severity === 'error');
  if (errors.length > 0) {
    // The append file's problems first: they are the operator's to fix.
    errors.sort((a, b) => Number(b.file === append?.path) - Number(a.file === append?.path));
    const lines = errors.map(fmt);
    const keptNote = kept !== undefined ? ` (network.json is your file, kept because always_overwrite_network_json = false)` : '';
    const more = lines.length > 20 ? `\n  … and ${lines.length - 20} more` : '';
    throw new IntegrationError(
      `${crm}: the files to write fail validation (${errors.length} error${errors.length === 1 ? '' : 's'})${keptNote}; nothing was written:\n  ${lines.slice(0, 20).join('\n  ')}${more}`,
      { crm, details: lines },
    );
  }
  if (append) {
    const own = issues.filter((i) => i.file === append.path);
    for (const i of own.slice(0, 20)) log.warn(`${crm}: ${fmt(i)}`);
    if (own.length > 20) log.warn(`${crm}: ${append.path}: … and ${own.length - 20} more warnings`);
  }
  if (kept !== undefined) {
    const w = keptParentWarning(issues.filter((i) => i.file === SHAPED_DEVICES_CSV), result.inputs.circuits, crm, netPath);
    if (w) log.warn(w);
  }
  return { networkJson, networkMode: kept !== undefined ? 'kept' : 'written', shapedDevicesCsv: csv, appended: append?.rows.length ?? 0, issues };
}
